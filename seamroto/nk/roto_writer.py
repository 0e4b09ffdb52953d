"""Write Roto nodes: shapes as keyed Bezier curvegroups in the ``curves`` tree, laid out as Nuke 13-15 saves it.

The ``curves`` tree keeps Nuke's own absolute indentation (FORMAT.md section 2). Points arrive in
``_img`` space (y down, relative handles) and leave in Nuke space (y up) through ``seamroto.coords``
only; layer and shape names are made safe and unique.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from seamroto.coords import dy_flip, y_nuke_from_img
from seamroto.datamodel import ControlPoint, RotoShape, Vec2
from seamroto.errors import NkWriteError
from seamroto.nk.escaping import ROOT_LAYER_NAME, _checked_node_name, sanitize_shape_name, tcl_word
from seamroto.nk.roto_numbers import _roto_number, _roto_numbers
from seamroto.nk.script_writer import _format_value, write_node

logger = logging.getLogger(__name__)

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

Tree = Union[str, List["Tree"]]


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
