"""Write the Read node of a shot's plates and the Backdrop that frames a result in the node graph."""

from __future__ import annotations

import logging
from typing import List, Optional, Tuple, Union

from seamroto.datamodel import Shot
from seamroto.errors import NkWriteError
from seamroto.nk.escaping import _checked_node_name, quote_string, tcl_literal, tcl_word
from seamroto.nk.script_writer import _format_value, write_node

logger = logging.getLogger(__name__)


def _plate_path(plates: str) -> str:
    """The ``file`` knob text: forward slashes, and no Tcl that Nuke would evaluate on use."""
    # Nuke evaluates file knobs as Tcl ("[getenv X]/a.exr"), so "[" or "$" in a path would run.
    for ch in "[$":
        if ch in plates:
            raise NkWriteError(
                f"the plate path contains {ch!r}, which Nuke evaluates as Tcl in a Read node's "
                "file knob; rename the folder or file so the path has no '[' or '$'",
                path=plates,
                knob="file",
            )
    # Nuke uses "/" on every platform; a backslash would start a Tcl escape on evaluation.
    return plates.replace("\\", "/")


def write_read(
    shot: Shot,
    name: str = "Read1",
    xpos: int = 0,
    ypos: int = 0,
    colorspace: Optional[str] = None,
    *,
    format_name: str = "",
) -> str:
    """A Read node for the shot's plates with its frame range locked (``origset true``).

    Args:
        shot: Plates pattern in Nuke syntax, frame range and size.
        name: Node name (sanitized to Nuke's rules).
        xpos: Node-graph x.
        ypos: Node-graph y.
        colorspace: Value of the ``colorspace`` knob; not written when None (Nuke's default).
        format_name: Name in the ``format`` knob; empty writes an unnamed format.

    Returns:
        The node block.

    Raises:
        NkWriteError: The range is empty, or the path holds ``[``/``$`` (Nuke would run them).
    """
    if shot.last < shot.first:
        raise NkWriteError(f"shot range {shot.first}-{shot.last} is empty", path=shot.plates)
    knobs: List[Tuple[str, str]] = [
        ("inputs", "0"),
        ("file", tcl_word(_plate_path(shot.plates))),
        ("format", _format_value(shot.width, shot.height, shot.pixel_aspect, format_name)),
        ("first", str(shot.first)),
        ("last", str(shot.last)),
        ("origfirst", str(shot.first)),
        ("origlast", str(shot.last)),
        ("origset", "true"),
    ]
    if colorspace is not None:
        knobs.append(("colorspace", tcl_word(colorspace)))
    knobs += [("xpos", str(int(xpos))), ("ypos", str(int(ypos)))]
    return write_node("Read", _checked_node_name(name), knobs)


def _tile_color(color: Union[int, Tuple[float, float, float]]) -> str:
    if isinstance(color, int):
        if not 0 <= color <= 0xFFFFFFFF:
            raise NkWriteError(f"tile colour {color:#x} is not 0xRRGGBBAA", knob="tile_color")
        return f"0x{color:08x}"
    rgb = [max(0, min(255, int(round(c * 255)))) for c in color]
    return "0x{:02x}{:02x}{:02x}ff".format(*rgb)


def write_backdrop(
    label: str,
    x: int,
    y: int,
    w: int,
    h: int,
    color: Union[int, Tuple[float, float, float]],
    name: str = "BackdropNode1",
    *,
    font_size: Optional[int] = None,
) -> str:
    """A BackdropNode grouping our nodes; the label is shown literally (Nuke Tcl-evaluates labels).

    Args:
        label: Text shown on the backdrop.
        x: Left edge in node-graph units.
        y: Top edge in node-graph units.
        w: Width.
        h: Height.
        color: ``0xRRGGBBAA`` int or (r, g, b) floats in 0..1.
        name: Node name (sanitized).
        font_size: ``note_font_size``; Nuke's default when None.

    Returns:
        The node block.
    """
    knobs: List[Tuple[str, str]] = [
        ("inputs", "0"),
        ("tile_color", _tile_color(color)),
        ("label", quote_string(tcl_literal(label))),
    ]
    if font_size is not None:
        knobs.append(("note_font_size", str(int(font_size))))
    knobs += [
        ("xpos", str(int(x))),
        ("ypos", str(int(y))),
        ("bdwidth", str(int(w))),
        ("bdheight", str(int(h))),
    ]
    return write_node("BackdropNode", _checked_node_name(name), knobs)
