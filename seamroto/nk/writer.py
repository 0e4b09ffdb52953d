"""Nuke script text for ``nuke.nodePaste``: Read, Tracker4, Roto and Backdrop nodes as Nuke 13-15 saves them.

This is the public entry point; each job lives in its own module:

* :mod:`seamroto.nk.escaping`: Tcl-safe strings and Nuke names (``escape_string``, ``quote_string``,
  ``tcl_word``, ``tcl_literal``, ``sanitize_node_name``, ``sanitize_shape_name``).
* :mod:`seamroto.nk.script_writer`: node blocks with knob validation (``write_node``), stack lines
  and clipboard scripts (``write_script``, ``write_script_file``).
* :mod:`seamroto.nk.plate_writer`: the Read and Backdrop nodes.
* :mod:`seamroto.nk.anim_writer`: animation curves (``animation_curve``).
* :mod:`seamroto.nk.tracker_writer`: Tracker4 nodes and their ``tracks`` table.
* :mod:`seamroto.nk.roto_numbers`, :mod:`seamroto.nk.roto_writer`: Roto nodes and their ``curves``
  tree.

Coordinates arrive in the project space (``_img``: y down, relative handles) and leave in Nuke
space (``_nuke``: y up) through ``seamroto.coords`` only, and no name can inject Tcl into a paste.
"""

from __future__ import annotations

from seamroto.nk.anim_writer import animation_curve
from seamroto.nk.escaping import (
    escape_string,
    quote_string,
    sanitize_node_name,
    sanitize_shape_name,
    tcl_literal,
    tcl_word,
)
from seamroto.nk.plate_writer import write_backdrop, write_read
from seamroto.nk.roto_numbers import _roto_number as _roto_number
from seamroto.nk.roto_writer import Tree, curves_knob_value, element_names, format_tree, write_roto
from seamroto.nk.script_writer import (
    NODE_NAME_RE,
    stack_push,
    stack_set,
    write_node,
    write_script,
    write_script_file,
)
from seamroto.nk.tracker_writer import tracks_knob_value, write_tracker

__all__ = [
    "NODE_NAME_RE",
    "Tree",
    "animation_curve",
    "curves_knob_value",
    "element_names",
    "escape_string",
    "format_tree",
    "quote_string",
    "sanitize_node_name",
    "sanitize_shape_name",
    "stack_push",
    "stack_set",
    "tcl_literal",
    "tcl_word",
    "tracks_knob_value",
    "write_backdrop",
    "write_node",
    "write_read",
    "write_roto",
    "write_script",
    "write_script_file",
    "write_tracker",
]
