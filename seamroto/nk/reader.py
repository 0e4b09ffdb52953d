"""Read Nuke ``.nk`` scripts into nodes, and Read/Tracker4/Roto nodes into SeamRoto data.

This is the public entry point; each job lives in its own module:

* :mod:`seamroto.nk.script`: the grammar (``NkScript``/``NkNode``/``NkFormat``, ``read_script``,
  ``parse_script``, ``parse_format``) and the node-class sets.
* :mod:`seamroto.nk.nodes`: finding nodes (``find_node``), their format (``node_format``) and
  brace-tree knobs.
* :mod:`seamroto.nk.plate_reader`: a Read node's plates as a ``Shot`` (``read_node_shot``).
* :mod:`seamroto.nk.anim_reader`: animation curves (``parse_anim_curve``).
* :mod:`seamroto.nk.tracker_reader`: Tracker4 tracks (``tracker_tracks``).
* :mod:`seamroto.nk.roto_reader`: Roto/RotoPaint shapes (``roto_shapes``).

Nothing in a script is executed. Coordinates are converted once, with ``seamroto.coords``, from
Nuke (y up) to ours (y down). Every failure is an :class:`~seamroto.errors.NkParseError` (or
``NkNodeNotFoundError`` from :func:`find_node`), whatever the input bytes.
"""

from __future__ import annotations

from seamroto.nk.anim_reader import parse_anim_curve
from seamroto.nk.nodes import find_node, node_format
from seamroto.nk.plate_reader import read_node_shot
from seamroto.nk.roto_reader import roto_shapes
from seamroto.nk.script import (
    MAX_WARNINGS,
    READ_CLASSES,
    ROTO_CLASSES,
    TRACKER_CLASSES,
    NkNode,
    NkScript,
    parse_format,
    parse_script,
    read_script,
)
from seamroto.nk.tracker_reader import tracker_tracks

__all__ = [
    "MAX_WARNINGS",
    "READ_CLASSES",
    "ROTO_CLASSES",
    "TRACKER_CLASSES",
    "NkNode",
    "NkScript",
    "find_node",
    "node_format",
    "parse_anim_curve",
    "parse_format",
    "parse_script",
    "read_node_shot",
    "read_script",
    "roto_shapes",
    "tracker_tracks",
]
