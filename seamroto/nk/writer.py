"""Nuke script text for ``nuke.nodePaste``: Read, Tracker4, Roto and Backdrop nodes as Nuke 13-15 saves them.

The layout follows real Nuke-saved files (``../shared/reference/nk/FORMAT.md``): a clipboard header
(``set cut_paste_input [stack 0]``, ``version 13.2 v8``, ``push $cut_paste_input``), knob lines
indented one space, the roto ``curves`` tree with Nuke's own absolute indentation, and the Tracker4
``tracks`` table with the 31-column header every Nuke since 8.0 writes byte for byte.

Coordinates arrive in the project space (``_img``: y down, relative handles) and leave in Nuke
space (``_nuke``: y up) through ``seamroto.coords`` only. Every name that reaches the script is
either restricted to Nuke's identifier rules (node, layer and shape names) or written as an escaped
Tcl string (track names, labels, paths), so no name can inject Tcl (``[python ...]``) into a paste.
"""

from __future__ import annotations

import logging
import math
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from seamroto.coords import dy_flip, y_nuke_from_img
from seamroto.datamodel import ControlPoint, LandmarkTrack, RotoShape, Shot, Vec2
from seamroto.errors import NkWriteError
from seamroto.fileio import PathLike, atomic_write_text
from seamroto.nk.numbers import format_decimal, format_hex_float

logger = logging.getLogger(__name__)

DEFAULT_VERSION = "13.2 v8"
KNOB_INDENT = " "  # clipboard files of Nuke 10 and 15 indent top-level knob lines by one space
CLIPBOARD_HEADER = ("set cut_paste_input [stack 0]", "push $cut_paste_input")

# Knobs Nuke writes after ``name`` (node-graph state); write_node puts ``name`` before the first.
KNOBS_AFTER_NAME = frozenset(
    {
        "tile_color",
        "gl_color",
        "label",
        "note_font",
        "note_font_size",
        "note_font_color",
        "selected",
        "hide_input",
        "xpos",
        "ypos",
        "bdwidth",
        "bdheight",
        "disable",
    }
)
RESERVED_NODE_NAMES = frozenset({"Root", "root", "this", "thisNode", "parent", "input"})
NODE_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # always used with fullmatch
NODE_CLASS_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")  # OFX classes carry dots
KNOB_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
STACK_VAR_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
VERSION_RE = re.compile(r"\d+\.\d+ v\d+")
BARE_WORD_RE = re.compile(r"[A-Za-z0-9_./:+\-#%@,=~]+")
INVALID_NAME_CHARS_RE = re.compile(r"[^A-Za-z0-9_]+")
DEFAULT_NODE_NAME = "Node"
DEFAULT_SHAPE_NAME = "Shape"
ROOT_LAYER_NAME = "Root"

# ---- roto curves tree (FORMAT.md §2) ----
ROTO_TREE_VERSION = "x3f99999a"  # 1.2, the only version Nuke 7-15 write
ROTO_TREE_FLAGS = 0
LAYER_FLAGS = 2097664  # what Nuke 13.2 writes on Root and nested layers (2097152 | 512 renderable)
SHAPE_FLAGS = 512  # eRenderableFlag; 576 would add eSelectedFlag
CC_FLAG_RELATIVE_TANGENTS = 8192  # bit 13, eRelativeTangentFlag
CC_FLAG_OPEN = 32  # bit 5, eOpenFlag
OPEN_SPLINE_WIDTH = 10.0  # ``osw``: Nuke's default open-spline stroke width
TOOL_BEZIER = 4.0  # ``tt``: created by the Bezier tool
RUN_MIN_LENGTH = 2  # Nuke itself writes ``{x 2 {v -}}``
# Hex floats are float32: at 2048-4096 px half an ulp is 1.2e-4 px, more than the 1e-4 px our
# write/read round trip promises. A value float32 would move by more than this is written as a
# decimal instead (the NDK grammar allows ``float = "0x" 8HEXDIG / decimal``); Nuke rounds it to the
# same float32 on load, so Nuke sees no difference, and every value float32 holds well enough
# stays in Nuke's own hex form.
HEX_MAX_ERROR_PX = 5e-5
DECIMAL_PLACES = 6
FLOAT32_MAX = 3.4028234663852886e38
INDENT_FOLD_DEPTH = 8  # Nuke indents curves lines by depth up to 8, then by depth - 3
INDENT_FOLD = 3
CURVEGROUP_FOLD_OFFSET = 4  # a Root curvegroup sits at depth 4, so its fold is at depth 8

ROTO_TOOLBOX = """{selectAll {
  { selectAll str 1 ssx 1 ssy 1 sf 1 }
  { createBezier str 1 ssx 1 ssy 1 sf 1 sb 1 tt 4 }
  { createBezierCusped str 1 ssx 1 ssy 1 sf 1 sb 1 }
  { createBSpline str 1 ssx 1 ssy 1 sf 1 sb 1 }
  { createEllipse str 1 ssx 1 ssy 1 sf 1 sb 1 }
  { createRectangle str 1 ssx 1 ssy 1 sf 1 sb 1 }
  { createRectangleCusped str 1 ssx 1 ssy 1 sf 1 sb 1 }
  { brush str 1 ssx 1 ssy 1 sf 1 sb 1 }
  { eraser src 2 str 1 ssx 1 ssy 1 sf 1 sb 1 }
  { clone src 1 str 1 ssx 1 ssy 1 sf 1 sb 1 }
  { reveal src 3 str 1 ssx 1 ssy 1 sf 1 sb 1 }
  { dodge src 1 str 1 ssx 1 ssy 1 sf 1 sb 1 }
  { burn src 1 str 1 ssx 1 ssy 1 sf 1 sb 1 }
  { blur src 1 str 1 ssx 1 ssy 1 sf 1 sb 1 }
  { sharpen src 1 str 1 ssx 1 ssy 1 sf 1 sb 1 }
  { smear src 1 str 1 ssx 1 ssy 1 sf 1 sb 1 }
} }"""

# ---- Tracker4 tracks table (FORMAT.md §3) ----
TRACKER_COLUMNS = 31
TRACKER_HEADER_CELLS: Tuple[str, ...] = (
    "{ 5 1 20 enable e 1 }",
    "{ 3 1 75 name name 1 }",
    "{ 2 1 58 track_x track_x 1 }",
    "{ 2 1 58 track_y track_y 1 }",
    "{ 2 1 63 offset_x offset_x 1 }",
    "{ 2 1 63 offset_y offset_y 1 }",
    "{ 4 1 27 T T 1 }",
    "{ 4 1 27 R R 1 }",
    "{ 4 1 27 S S 1 }",
    "{ 2 0 45 error error 1 }",
    "{ 1 1 0 error_min error_min 1 }",
    "{ 1 1 0 error_max error_max 1 }",
    "{ 1 1 0 pattern_x pattern_x 1 }",
    "{ 1 1 0 pattern_y pattern_y 1 }",
    "{ 1 1 0 pattern_r pattern_r 1 }",
    "{ 1 1 0 pattern_t pattern_t 1 }",
    "{ 1 1 0 search_x search_x 1 }",
    "{ 1 1 0 search_y search_y 1 }",
    "{ 1 1 0 search_r search_r 1 }",
    "{ 1 1 0 search_t search_t 1 }",
    "{ 2 1 0 key_track key_track 1 }",
    "{ 2 1 0 key_search_x key_search_x 1 }",
    "{ 2 1 0 key_search_y key_search_y 1 }",
    "{ 2 1 0 key_search_r key_search_r 1 }",
    "{ 2 1 0 key_search_t key_search_t 1 }",
    "{ 2 1 0 key_track_x key_track_x 1 }",
    "{ 2 1 0 key_track_y key_track_y 1 }",
    "{ 2 1 0 key_track_r key_track_r 1 }",
    "{ 2 1 0 key_track_t key_track_t 1 }",
    "{ 2 1 0 key_centre_offset_x key_centre_offset_x 1 }",
    "{ 2 1 0 key_centre_offset_y key_centre_offset_y 1 }",
)
TRACK_TRS_FLAGS = ("1", "0", "0")  # the track drives translate, not rotate/scale
EMPTY_CURVE = "{curve}"
# Pattern box relative to the track point and search margins added to it (x, y, r, t), in pixels.
DEFAULT_PATTERN_BOX: Tuple[float, float, float, float] = (-15.0, -15.0, 15.0, 15.0)
DEFAULT_SEARCH_BOX: Tuple[float, float, float, float] = (-21.0, -21.0, 21.0, 21.0)

Box = Tuple[float, float, float, float]
Tree = Union[str, List["Tree"]]


# ------------------------------------------------------------------ names and strings


def escape_string(text: str) -> str:
    r"""Escape ``text`` for use inside a double-quoted Tcl word in a .nk script.

    Brackets, ``$``, backslashes, quotes and braces are backslash-escaped so Nuke neither runs a
    command substitution (``[python ...]``) nor miscounts braces when it scans a node block;
    newlines, tabs and carriage returns become ``\n``, ``\t``, ``\r``. Other control characters
    carry no meaning in a name and are dropped.

    Args:
        text: Any string (track name, label, path).

    Returns:
        The escaped text, without the surrounding quotes.
    """
    out: List[str] = []
    for ch in text:
        if ch in '\\"[]${}':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            logger.warning("dropping control character %r from %r", ch, text)
        else:
            out.append(ch)
    return "".join(out)


def tcl_literal(text: str) -> str:
    r"""Protect text that Nuke itself Tcl-evaluates whenever it uses the knob (labels).

    A ``label`` is run through Tcl substitution every time it is drawn (``[value x]`` shows a
    knob value), so escaping ``[`` in the file alone is not enough: the stored text must keep
    ``\[``. Apply this first, then ``quote_string``.
    """
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("$", "\\$")


def quote_string(text: str) -> str:
    """``text`` as a double-quoted, escaped Tcl word (how Nuke writes track names)."""
    return '"' + escape_string(text) + '"'


def tcl_word(text: str) -> str:
    """``text`` bare when it is plainly safe (paths, enum values), else quoted and escaped.

    Nuke itself writes ``file /plates/a.####.exr`` and ``output alpha`` bare and ``"all frames"``
    quoted; this keeps the same look without ever leaving a special character unquoted.
    """
    return text if BARE_WORD_RE.fullmatch(text) else quote_string(text)


def _identifier(name: str, default: str) -> str:
    cleaned = INVALID_NAME_CHARS_RE.sub("_", name)
    if not cleaned:
        return default
    if cleaned[0].isdigit():
        cleaned = "_" + cleaned
    return cleaned


def sanitize_node_name(name: str) -> str:
    """A valid Nuke node name close to ``name``: letters, digits and ``_``, not starting with a digit.

    Nuke refuses other names on paste and Tcl would read ``[``/``$`` in them, so anything else is
    replaced by ``_``; names Nuke reserves (``Root``, ``this``...) get a ``_1`` suffix.
    """
    cleaned = _identifier(name, DEFAULT_NODE_NAME)
    if cleaned in RESERVED_NODE_NAMES:
        cleaned += "_1"
    return cleaned


def sanitize_shape_name(name: str) -> str:
    """A shape or layer name safe inside the roto ``curves`` tree (no spaces, braces or quotes).

    The tree is whitespace-separated Tcl-list text, so the name is reduced to the same identifier
    rules as node names; ``Root`` is the root layer's name and is never used for an element.
    """
    cleaned = _identifier(name, DEFAULT_SHAPE_NAME)
    if cleaned == ROOT_LAYER_NAME:
        cleaned += "_1"
    return cleaned


def _checked_node_name(name: str) -> str:
    clean = sanitize_node_name(name)
    if clean != name:
        logger.warning("node name %r is not a valid Nuke name; writing %r", name, clean)
    return clean


# ------------------------------------------------------------------ generic nodes and scripts


def _check_knob_value(knob: str, value: str) -> None:
    """Refuse knob text that would end the node block early or run Tcl when pasted."""
    if not value:
        raise NkWriteError("empty knob value; write {} for an empty value", knob=knob)
    body = value[:-1] if value.endswith("\n") else value
    if "\\" not in body and "[" not in body and "$" not in body and _braces_ok(body):
        return  # the common case (a shot's curves knob is ~10^6 characters), checked in bulk
    _scan_knob_value(knob, body)


def _braces_ok(body: str) -> bool:
    """Braces balanced, never closed below zero, no newline outside them (no escapes in ``body``)."""
    # UTF-8 continuation bytes are >= 0x80, so only real braces and newlines match
    codes = np.frombuffer(body.encode("utf-8"), dtype=np.uint8)
    if not codes.size:
        return True
    depth = np.cumsum((codes == ord("{")).astype(np.int64) - (codes == ord("}")))
    return bool(depth.min(initial=0) >= 0 and depth[-1] == 0 and not (depth[codes == ord("\n")] == 0).any())


def _scan_knob_value(knob: str, body: str) -> None:
    """The character-by-character check, which also names the first problem."""
    depth = 0
    escaped = False
    for ch in body:
        if escaped:
            escaped = False
            continue
        if ch == "\\":
            escaped = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                raise NkWriteError("unbalanced '}' in knob value", knob=knob)
        elif ch in "[$":
            raise NkWriteError(
                f"unescaped {ch!r} in knob value would run Tcl on paste; escape it "
                "(writer.escape_string) or quote the value (writer.quote_string)",
                knob=knob,
            )
        elif ch == "\n" and depth == 0:
            raise NkWriteError("newline outside braces in knob value", knob=knob)
    if depth != 0:
        raise NkWriteError("unbalanced '{' in knob value", knob=knob)


def write_node(
    cls: str, name: str, knobs: Sequence[Tuple[str, str]], *, indent: str = KNOB_INDENT
) -> str:
    r"""One node block, knob lines in the order given, ``name`` where Nuke puts it.

    This is the single place node text is assembled, so every node we emit (Read, Tracker4, Roto,
    BackdropNode, later F_WireRemoval) gets the same validation.

    Args:
        cls: Node class (``Roto``, ``Tracker4``; OFX classes with dots are allowed).
        name: Node name; must already follow Nuke's rules (see ``sanitize_node_name``).
        knobs: ``(knob, value)`` pairs; values are finished knob text (use ``tcl_word`` /
            ``quote_string`` for strings).
        indent: Prefix of each knob line.

    Returns:
        ``Class {\n knob value\n ...\n}\n``.

    Raises:
        NkWriteError: A class, knob or node name is invalid, or a value is unbalanced or would run
            Tcl on paste.
    """
    if not NODE_CLASS_RE.fullmatch(cls):
        raise NkWriteError(f"invalid node class {cls!r}")
    if not NODE_NAME_RE.fullmatch(name) or name in RESERVED_NODE_NAMES:
        raise NkWriteError(
            f"invalid node name {name!r}; pass it through writer.sanitize_node_name first",
            knob="name",
        )
    lines = [f"{cls} {{"]
    named = False
    for knob, value in knobs:
        if not KNOB_NAME_RE.fullmatch(knob):
            raise NkWriteError(f"invalid knob name {knob!r} on node {name}", knob=knob)
        if knob == "name":
            raise NkWriteError("pass the node name as the name argument", knob=knob)
        _check_knob_value(knob, value)
        if not named and knob in KNOBS_AFTER_NAME:
            lines.append(f"{indent}name {name}")
            named = True
        lines.append(f"{indent}{knob} {value}")
    if not named:
        lines.append(f"{indent}name {name}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def stack_set(var: str) -> str:
    """``set VAR [stack 0]``: remember the node on top of the stack (to feed a second node)."""
    if not STACK_VAR_RE.fullmatch(var):
        raise NkWriteError(f"invalid stack variable name {var!r}")
    return f"set {var} [stack 0]\n"


def stack_push(var: str) -> str:
    """``push $VAR``: put a remembered node back on the stack as the next node's input."""
    if not STACK_VAR_RE.fullmatch(var):
        raise NkWriteError(f"invalid stack variable name {var!r}")
    return f"push ${var}\n"


def write_script(node_texts: Sequence[str], *, version: str = DEFAULT_VERSION) -> str:
    """A paste-ready clipboard script around ``node_texts`` (for ``nuke.nodePaste``).

    Like Nuke's own clipboard files: the current selection is saved as ``cut_paste_input`` and
    pushed, so the first node that takes an input connects to what the artist had selected; nodes
    written with ``inputs 0`` ignore it.

    Args:
        node_texts: Node blocks (``write_*``) and stack lines (``stack_set``/``stack_push``), in
            script order.
        version: Nuke version line, ``"13.2 v8"`` form.

    Returns:
        The script text, ending in a newline.
    """
    if not VERSION_RE.fullmatch(version):
        raise NkWriteError(f"invalid Nuke version {version!r}; expected e.g. '13.2 v8'")
    lines = [CLIPBOARD_HEADER[0], f"version {version}", CLIPBOARD_HEADER[1]]
    body = "".join(t if t.endswith("\n") else t + "\n" for t in node_texts)
    return "\n".join(lines) + "\n" + body


def write_script_file(path: PathLike, text: str) -> Path:
    """Write a script atomically (temp file + rename), so a crash leaves no half-written .nk."""
    target = atomic_write_text(path, text)
    logger.info("wrote Nuke script %s (%d bytes)", target, len(text.encode("utf-8")))
    return target


# ------------------------------------------------------------------ Read and Backdrop


def _format_value(width: int, height: int, pixel_aspect: float, format_name: str) -> str:
    if width <= 0 or height <= 0:
        raise NkWriteError(f"invalid format {width}x{height}", knob="format")
    if any(ch.isspace() for ch in format_name):
        raise NkWriteError(
            f"format name {format_name!r} has whitespace; Nuke splits the format string on "
            "spaces, so use e.g. 'UHD_4K'",
            knob="format",
        )
    # An unnamed format is written with an empty name, as Nuke 10 does ("... 1 ").
    name = escape_string(format_name)
    return f'"{width} {height} 0 0 {width} {height} {_decimal(pixel_aspect, "format")} {name}"'


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


# ------------------------------------------------------------------ numbers


def _decimal(value: float, what: str) -> str:
    try:
        return format_decimal(float(value))
    except ValueError as err:
        raise NkWriteError(f"{what}: {err}") from err


def _float32(value: float) -> float:
    return float(struct.unpack(">f", struct.pack(">f", value))[0])


def _fixed(value: float) -> str:
    text = f"{value:.{DECIMAL_PLACES}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _roto_number(value: float, hex_only: bool, what: str) -> str:
    """A roto value: Nuke's hex float, or a decimal where float32 would lose > HEX_MAX_ERROR_PX."""
    value = float(value)
    if not math.isfinite(value):
        raise NkWriteError(f"{what}: cannot write non-finite value {value!r}", knob="curves")
    try:
        f32 = _float32(value)
    except OverflowError as err:
        raise NkWriteError(f"{what}: {value!r} is out of float32 range", knob="curves") from err
    if hex_only or abs(f32 - value) <= HEX_MAX_ERROR_PX:
        return format_hex_float(f32)
    return _fixed(value)


# ------------------------------------------------------------------ Tracker4


def _track_curve(values: Sequence[Tuple[int, float]], what: str) -> str:
    """``{curve x1001 v v ... x1010 v}``: ``xN`` wherever the frame is not the implicit one.

    Nuke extrapolates an omitted frame linearly from the last two keys (NDK curve format), so
    after ``x1001 v x1003 v`` the next bare value lands on 1005, not 1004: an ``x`` is written
    whenever the frame differs from that prediction (what Nuke does: ``x89 a b x94 c x95 d``).
    """
    if not values:
        return EMPTY_CURVE
    parts = ["curve"]
    prev: Optional[int] = None
    step = 1
    for frame, value in values:
        if prev is None or frame != prev + step:
            parts.append(f"x{frame}")
        if prev is not None:
            step = frame - prev
        parts.append(_decimal(value, f"{what} frame {frame}"))
        prev = frame
    return "{" + " ".join(parts) + "}"


def _key_curve(frame: int, value: float) -> str:
    return "{curve x%d %s}" % (frame, format_decimal(value))


def _key_cells(frame: int, x_nuke: float, y_nuke: float, pattern: Box, search: Box) -> List[str]:
    """Keyframe boxes as Nuke leaves them after tracking from ``frame`` (13.2/14.1 samples).

    Integer pattern box around the float32 track point (right/top inclusive), search box grown by
    the margins, and the point's offset from the box corner pixel centre.
    """
    try:
        x32, y32 = _float32(x_nuke), _float32(y_nuke)
    except OverflowError as err:
        raise NkWriteError(
            f"track position ({x_nuke}, {y_nuke}) on frame {frame} is out of range", knob="tracks"
        ) from err
    kx = math.floor(x32 + pattern[0] + 0.5)
    ky = math.floor(y32 + pattern[1] + 0.5)
    kr = math.floor(x32 + pattern[2] + 0.5) - 1
    kt = math.floor(y32 + pattern[3] + 0.5) - 1
    sx = math.floor(kx + search[0] + 0.5)
    sy = math.floor(ky + search[1] + 0.5)
    sr = math.floor(kr + search[2] + 0.5)
    st = math.floor(kt + search[3] + 0.5)
    cells = [_key_curve(frame, v) for v in (sx, sy, sr, st, kx, ky, kr, kt)]
    cells += [_key_curve(frame, x32 - kx - 0.5), _key_curve(frame, y32 - ky - 0.5)]
    return cells


def _track_row(
    track: LandmarkTrack,
    height: float,
    enable_frame: int,
    frame_range: Tuple[Optional[int], Optional[int]],
    pattern: Box,
    search: Box,
) -> List[str]:
    lo, hi = frame_range
    frames = [
        f for f in track.frames if (lo is None or f >= lo) and (hi is None or f <= hi)
    ]
    xs = [(f, track.samples[f].x) for f in frames]
    ys = [(f, y_nuke_from_img(track.samples[f].y, height)) for f in frames]
    # Nuke's error is 0 for a perfect match; ours is a confidence in 0..1.
    errors = [(f, min(1.0, max(0.0, 1.0 - track.samples[f].confidence))) for f in frames]
    err_values = [e for _, e in errors] or [0.0]
    what = f"track {track.name!r}"
    cells = [
        f"{{curve K x{enable_frame} 1}}",
        quote_string(track.name),
        _track_curve(xs, what + " x"),
        _track_curve(ys, what + " y"),
        f"{{curve K x{enable_frame} 0}}",
        f"{{curve K x{enable_frame} 0}}",
        *TRACK_TRS_FLAGS,
        _track_curve(errors, what + " error"),
        "%g" % min(err_values),
        "%g" % max(err_values),
        *(_decimal(v, what + " pattern") for v in pattern),
        *(_decimal(v, what + " search") for v in search),
        EMPTY_CURVE,
    ]
    if frames:
        cells += _key_cells(frames[0], xs[0][1], ys[0][1], pattern, search)
    else:
        cells += [EMPTY_CURVE] * (TRACKER_COLUMNS - len(cells))
    assert len(cells) == TRACKER_COLUMNS
    return cells


def tracks_knob_value(rows: Sequence[Sequence[str]]) -> str:
    """The ``tracks`` knob text: ``{ 1 31 N }``, the 31-column header, one line per row.

    Spacing (trailing spaces, two spaces before a row's closing brace, the blank line after the
    knob) is the one Nuke 13.2 and 14.1 write.
    """
    lines = [f"{{ {{ 1 {TRACKER_COLUMNS} {len(rows)} }} "]
    lines.append("{ " + TRACKER_HEADER_CELLS[0] + " ")
    lines += [cell + " " for cell in TRACKER_HEADER_CELLS[1:]]
    lines += ["} ", "{ "]
    lines += [" { " + "".join(cell + " " for cell in row) + " } " for row in rows]
    lines += ["} ", "}"]
    return "\n".join(lines) + "\n"


def write_tracker(
    tracks: Sequence[LandmarkTrack],
    *,
    height: float,
    name: str = "Tracker1",
    xpos: int = 0,
    ypos: int = 0,
    first: Optional[int] = None,
    last: Optional[int] = None,
    width: Optional[float] = None,
    pattern_box: Box = DEFAULT_PATTERN_BOX,
    search_box: Box = DEFAULT_SEARCH_BOX,
    connect_input: bool = True,
) -> str:
    """A Tracker4 node with one track per landmark, every sample baked as a per-frame value.

    Args:
        tracks: Landmark tracks (``_img`` space); names are written escaped, duplicates allowed.
        height: Plate height in pixels (for the y flip).
        name: Node name (sanitized).
        xpos: Node-graph x.
        ypos: Node-graph y.
        first: First frame kept and the frame of the enable/offset keys and ``reference_frame``;
            default: the earliest sample.
        last: Last frame kept; default: no limit.
        width: Plate width; accepted for symmetry with ``write_roto`` (Tracker4 takes its format
            from its input, so nothing is written).
        pattern_box: Pattern box relative to the track point (x, y, r, t), pixels.
        search_box: Search margins added to the pattern box (x, y, r, t), pixels.
        connect_input: False writes ``inputs 0``; True takes the node above on the stack.

    Returns:
        The node block.
    """
    del width
    if first is None:
        starts = [t.frames[0] for t in tracks if t.samples]
        first = min(starts) if starts else 1
    rows = [
        _track_row(t, height, first, (first, last), pattern_box, search_box) for t in tracks
    ]
    knobs: List[Tuple[str, str]] = []
    if not connect_input:
        knobs.append(("inputs", "0"))
    knobs += [
        ("tracks", tracks_knob_value(rows)),
        ("reference_frame", str(first)),
        ("xpos", str(int(xpos))),
        ("ypos", str(int(ypos))),
    ]
    return write_node("Tracker4", _checked_node_name(name), knobs)


# ------------------------------------------------------------------ Roto curves tree


def format_tree(node: List[Tree], depth: int = 0, fold: int = INDENT_FOLD_DEPTH) -> str:
    """Serialise a brace tree the way Nuke lays out a ``curves`` knob.

    A sub-list after the first item starts a new line indented by its depth; a bare word after a
    sub-list follows on the same line after depth - 1 spaces; words after words are separated by
    one space. Past ``fold`` (4 levels below a curvegroup, i.e. inside a point's dimensions) Nuke
    indents by depth - 3. This reproduces the whitespace of real 13.2 and 15.0 files byte for byte
    for shapes in Root; for shapes in nested layers (no real sample) the fold moves down with the
    curvegroup so the point data keeps the same shape.
    """
    if all(type(child) is str for child in node):
        return "{" + " ".join(node) + "}"  # type: ignore[arg-type]
    if node and node[0] == "curvegroup":
        fold = depth + CURVEGROUP_FOLD_OFFSET

    def indent(d: int) -> int:
        return d if d <= fold else d - INDENT_FOLD

    parts = ["{"]
    prev_list = False
    for i, child in enumerate(node):
        is_list = isinstance(child, list)
        if i:
            if is_list:
                parts.append("\n" + " " * indent(depth + 1))
            elif prev_list:
                parts.append(" " * max(1, indent(depth + 1) - 1))
            else:
                parts.append(" ")
        parts.append(format_tree(child, depth + 1, fold) if isinstance(child, list) else child)
        prev_list = is_list
    parts.append("}")
    return "".join(parts)


@dataclass
class _Layer:
    name: str
    children: List[Union[_Layer, Tuple[str, int]]] = field(default_factory=list)
    sublayers: Dict[str, _Layer] = field(default_factory=dict)


class _Names:
    """Unique element names across one curves tree (Nuke addresses shapes by name)."""

    def __init__(self) -> None:
        self.used = {ROOT_LAYER_NAME}

    def claim(self, raw: str) -> str:
        base = sanitize_shape_name(raw)
        name, n = base, 1
        while name in self.used:
            n += 1
            name = f"{base}_{n}"
        if name != raw:
            logger.warning("roto element name %r written as %r", raw, name)
        self.used.add(name)
        return name


def _build_layers(shapes: Sequence[RotoShape]) -> _Layer:
    names = _Names()
    root = _Layer(ROOT_LAYER_NAME)
    for index, shape in enumerate(shapes):
        layer = root
        for part in shape.layer:
            sub = layer.sublayers.get(part)
            if sub is None:
                sub = _Layer(names.claim(part))
                layer.sublayers[part] = sub
                layer.children.append(sub)
            layer = sub
        layer.children.append((names.claim(shape.name), index))
    return root


@dataclass(frozen=True)
class _NukePoint:
    """One control point in Nuke space: main and feather (left, centre, right), as Nuke orders them."""

    main: Tuple[Vec2, Vec2, Vec2]
    feather: Tuple[Vec2, Vec2, Vec2]


def _to_nuke(p: ControlPoint, height: float) -> _NukePoint:
    def rel(v: Vec2) -> Vec2:
        return (v[0], dy_flip(v[1]))

    fl, fr = p.feather_tangents
    centre = (p.x, y_nuke_from_img(p.y, height))
    return _NukePoint(
        main=(rel(p.left), centre, rel(p.right)),
        feather=(rel(fl), rel(p.feather), rel(fr)),
    )


def _dim_entries(tokens: Sequence[str]) -> List[Tree]:
    """One animated dimension: a single entry when constant, else one per key with ``x N`` runs."""
    if all(t == tokens[0] for t in tokens):
        return [[tokens[0], "-"]]
    out: List[Tree] = []
    i = 0
    while i < len(tokens):
        j = i
        while j + 1 < len(tokens) and tokens[j + 1] == tokens[i]:
            j += 1
        run = j - i + 1
        entry: List[Tree] = [tokens[i], "-"]
        out.append(["x", str(run), entry] if run >= RUN_MIN_LENGTH else entry)
        i = j + 1
    return out


def _roto_numbers(values: Union[Sequence[float], np.ndarray], hex_only: bool, what: str) -> List[str]:
    """``_roto_number`` of many values at once (a shot's shapes hold ~10^5 of them)."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    bad = ~np.isfinite(arr)
    if bad.any():
        value = float(arr[np.flatnonzero(bad)[0]])
        raise NkWriteError(f"{what}: cannot write non-finite value {value!r}", knob="curves")
    big = np.abs(arr) > FLOAT32_MAX
    if big.any():
        value = float(arr[np.flatnonzero(big)[0]])
        raise NkWriteError(f"{what}: {value!r} is out of float32 range", knob="curves")
    f32 = arr.astype(np.float32)
    use_hex = np.abs(f32.astype(np.float64) - arr) <= HEX_MAX_ERROR_PX
    if hex_only:
        use_hex[:] = True
    out = []
    for value, bits, single, hexed in zip(arr.tolist(), f32.view(np.uint32).tolist(), f32.tolist(), use_hex.tolist()):
        if not hexed:
            out.append(_fixed(value))
        elif single == 0.0:
            out.append("0")
        elif single == 1.0:
            out.append("1")
        else:
            out.append("x%08x" % bits)
    return out


def _cc(
    frames: Sequence[int],
    slots: Sequence[Sequence[Vec2]],
    flags: int,
    hex_only: bool,
    what: str,
) -> List[Tree]:
    """``{cc {f FLAGS} {px ...}}`` from slots[k][key] = (x, y) in Nuke space."""
    times = _roto_numbers(frames, True, what)
    # (slot, key, axis) -> text, formatted in one pass
    text = _roto_numbers(np.asarray(slots, dtype=np.float64).reshape(-1), hex_only, what)
    step = 2 * len(frames)
    px: List[Tree] = ["px"]
    if len(frames) == 1:
        px.append(times[0])
        for at in range(0, len(text), step):
            px.append([text[at], text[at + 1]])
    else:
        px.append(list(times))
        for at in range(0, len(text), step):
            px.append([_dim_entries(text[at : at + step : 2]), _dim_entries(text[at + 1 : at + step : 2])])
    return ["cc", ["f", str(flags)], px]


def _curvegroup(
    name: str, shape: RotoShape, width: float, height: float, hex_only: bool
) -> List[Tree]:
    what = f"shape {shape.name!r}"
    frames = shape.key_frames
    if not frames:
        raise NkWriteError(f"{what} has no keys; give it at least one keyed frame", knob="curves")
    count = shape.point_count
    if count == 0:
        raise NkWriteError(f"{what} has no control points", knob="curves", frame=frames[0])
    keys: List[List[_NukePoint]] = []
    for f in frames:
        pts = shape.keys[f]
        if len(pts) != count:
            raise NkWriteError(
                f"{what} has {len(pts)} points on frame {f} but {count} on frame {frames[0]}; "
                "every key needs the same number of points",
                knob="curves",
                frame=f,
            )
        keys.append([_to_nuke(p, height) for p in pts])

    main_slots = [[k[i].main[s] for k in keys] for i in range(count) for s in range(3)]
    feather_slots = [[k[i].feather[s] for k in keys] for i in range(count) for s in range(3)]
    flags = CC_FLAG_RELATIVE_TANGENTS | (0 if shape.closed else CC_FLAG_OPEN)
    main_cc = _cc(frames, main_slots, flags, hex_only, what)
    feather_cc = _cc(frames, feather_slots, flags, hex_only, what)
    # ``idem`` = feather curve identical to the main one: no point has a feather offset and every
    # feather handle equals its main handle (then the feather cc would only repeat the main one).
    has_feather = any(
        p.feather[1] != (0.0, 0.0) or p.feather[0] != p.main[0] or p.feather[2] != p.main[2]
        for k in keys
        for p in k
    )
    ccs: List[Tree] = [main_cc, feather_cc if has_feather else "idem"]

    first_centres = [p.main[1] for p in keys[0]]
    xs = [c[0] for c in first_centres]
    ys = [c[1] for c in first_centres]
    # The transform centre is only a pivot (Nuke puts it at the drawn shape's bbox centre): float32
    # precision is plenty, so it stays in hex.
    centre: List[Tree] = [
        "t",
        _roto_number((min(xs) + max(xs)) / 2, True, what),
        _roto_number((min(ys) + max(ys)) / 2, True, what),
    ]
    attrs: List[Tree] = ["a"]
    if shape.feather != 0.0:
        fx = _roto_number(shape.feather, True, what)
        attrs += ["fx", fx, "fy", fx]
    if shape.feather_falloff != 1.0:
        attrs += ["ff", _roto_number(shape.feather_falloff, True, what)]
    start = _roto_number(frames[0], True, what)
    attrs += [
        "osw", _roto_number(OPEN_SPLINE_WIDTH, True, what),
        "osf", "0",
        "str", "1",
        "spx", _roto_number(width / 2, True, what),
        "spy", _roto_number(height / 2, True, what),
        "sb", "1",
        "ltn", start,
        "ltm", start,
        "tt", _roto_number(TOOL_BEZIER, True, what),
    ]
    return ["curvegroup", name, str(SHAPE_FLAGS), "bezier", ccs, centre, attrs]


def _layer_tree(
    layer: _Layer, shapes: Sequence[RotoShape], width: float, height: float, hex_only: bool
) -> List[Tree]:
    out: List[Tree] = [
        "layer",
        layer.name,
        ["f", str(LAYER_FLAGS)],
        ["t", _roto_number(width / 2, True, "layer"), _roto_number(height / 2, True, "layer")],
        ["a"],
    ]
    for child in layer.children:
        if isinstance(child, _Layer):
            out.append(_layer_tree(child, shapes, width, height, hex_only))
        else:
            out.append(_curvegroup(child[0], shapes[child[1]], width, height, hex_only))
    return out


def curves_knob_value(
    shapes: Sequence[RotoShape], *, width: float, height: float, hex_only: bool = False
) -> str:
    """The Roto ``curves`` knob text: ``{{{v x3f99999a} {f 0} {n {layer Root ...}}}}``.

    Shapes with the same ``layer`` path share one layer; element names are made safe and unique.

    Args:
        shapes: Shapes in ``_img`` space.
        width: Format width (layer centre and source pivot attributes).
        height: Format height (y flip).
        hex_only: Write every value as a float32 hex float, exactly like Nuke, even where float32
            moves it by more than ``HEX_MAX_ERROR_PX``.

    Returns:
        The knob value text.
    """
    root = _build_layers(shapes)
    tree: List[Tree] = [
        ["v", ROTO_TREE_VERSION],
        ["f", str(ROTO_TREE_FLAGS)],
        ["n", _layer_tree(root, shapes, width, height, hex_only)],
    ]
    return format_tree([tree])


def write_roto(
    shapes: Sequence[RotoShape],
    *,
    width: int,
    height: int,
    name: str = "Roto1",
    xpos: int = 0,
    ypos: int = 0,
    output: str = "alpha",
    connect_input: bool = False,
    pixel_aspect: float = 1.0,
    format_name: str = "",
    hex_only: bool = False,
    curves: Optional[str] = None,
) -> str:
    """A Roto node holding ``shapes`` as keyed Bezier curvegroups, with the knobs Nuke 13.2 writes.

    Args:
        shapes: Roto shapes in ``_img`` space (relative handles, y down).
        width: Format width in pixels.
        height: Format height in pixels (y flip).
        name: Node name (sanitized).
        xpos: Node-graph x.
        ypos: Node-graph y.
        output: Channels the Roto writes (``alpha``, ``rgba``...).
        connect_input: False writes ``inputs 0`` and a ``format`` knob (the Roto then renders at
            the plate size on its own); True takes the node above on the stack.
        pixel_aspect: Pixel aspect of that format.
        format_name: Name in the ``format`` knob; empty writes an unnamed format.
        hex_only: See ``curves_knob_value``.
        curves: ``curves_knob_value(shapes, ...)`` already made, when the same shapes go into
            several scripts (it is most of the work).

    Returns:
        The node block.

    Raises:
        NkWriteError: A shape has no keys, changes its point count, or holds a non-finite value.
    """
    starts = [s.key_frames[0] for s in shapes if s.keys]
    start = str(min(starts)) if starts else "1"
    knobs: List[Tuple[str, str]] = []
    if not connect_input:
        knobs += [
            ("inputs", "0"),
            ("format", _format_value(width, height, pixel_aspect, format_name)),
        ]
    knobs.append(("output", tcl_word(output)))
    if not connect_input:
        knobs.append(("cliptype", "none"))
    knobs += [
        ("curves", curves or curves_knob_value(shapes, width=width, height=height, hex_only=hex_only)),
        ("toolbox", ROTO_TOOLBOX),
        ("colorOverlay", "{0 0 0 0}"),
        ("lifetime_type", '"all frames"'),
        ("lifetime_start", start),
        ("lifetime_end", start),
        ("motionblur_shutter_offset_type", "centred"),
        ("source_black_outside", "true"),
        ("xpos", str(int(xpos))),
        ("ypos", str(int(ypos))),
    ]
    return write_node("Roto", _checked_node_name(name), knobs)


def element_names(shapes: Sequence[RotoShape]) -> List[Tuple[Tuple[str, ...], str]]:
    """Per shape, the (layer path, shape name) ``write_roto`` gives it, after sanitizing and dedup.

    Lets a caller (or a test) find a shape again by the names Nuke will show.
    """
    out: Dict[int, Tuple[Tuple[str, ...], str]] = {}

    def walk(layer: _Layer, path: Tuple[str, ...]) -> None:
        for child in layer.children:
            if isinstance(child, _Layer):
                walk(child, (*path, child.name))
            else:
                out[child[1]] = (path, child[0])

    walk(_build_layers(shapes), ())
    return [out[i] for i in range(len(shapes))]


def animation_curve(values: Sequence[Tuple[int, float]], what: str = "value") -> str:
    """A decimal knob animation ``{curve x1001 v v ...}`` (XY knobs, F_WireRemoval points)."""
    return _track_curve(values, what)
