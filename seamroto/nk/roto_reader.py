"""Read the ``curves`` tree of a Roto or RotoPaint node as roto shapes in image space (y down).

Coordinates are converted once, here, with ``seamroto.coords``: Nuke (y up, origin bottom-left)
to ours (y down, origin top-left). Absolute y becomes ``height - y``; relative offsets (tangents,
feather) change sign.
"""

from __future__ import annotations

import bisect
import logging
import math
from dataclasses import dataclass
from typing import Dict, Iterator, List, Mapping, Optional, Set, Tuple, Union

from seamroto import coords
from seamroto.datamodel import ControlPoint, RotoShape, Vec2
from seamroto.errors import NkParseError
from seamroto.nk.anim_reader import _frame_of, _interp
from seamroto.nk.nodes import _guard, knob_tree
from seamroto.nk.script import (
    DEFAULT_FIRST_FRAME,
    ROTO_CLASSES,
    NkNode,
    NkScript,
    _parse_int,
    _parse_number,
)
from seamroto.nk.tokens import TreeItem, word_value

logger = logging.getLogger(__name__)

# Roto control-point flags (FORMAT.md 2.3, bit list from NukeFXSExporter).
ROTO_OPEN_FLAG = 1 << 5
# Number of slots in the Nuke 15 curvegroup/layer transform block and the identity values.
TRANSFORM_SLOTS = 13
TRANSFORM_IDENTITY = {3: 0.0, 4: 0.0, 5: 0.0, 6: 0.0, 7: 0.0, 8: 0.0, 9: 1.0, 10: 1.0, 11: 1.0, 12: 0.0}


Dim = Union[float, List[Tuple[float, float]]]  # constant, or (time, value) keys sorted by time


@dataclass(frozen=True)
class _CC:
    """One ``{cc ...}`` block: flags, the shared key times (``px``) and 3 elements per point."""

    flags: int
    times: Optional[List[float]]
    elements: List[Tuple[Dim, Dim]]


class _RotoContext:
    """What a shape read needs to know about its node (for messages and fallbacks)."""

    def __init__(
        self, script: NkScript, node: NkNode, height: float, warnings: Optional[List[str]]
    ) -> None:
        self.script = script
        self.node = node
        self.height = height
        self.warnings = warnings
        self.line = node.knob_lines.get("curves", node.line)

    def fail(self, shape: str, message: str) -> NkParseError:
        return NkParseError(
            f"{self.node.path}: shape '{shape}' {message}",
            path=self.script.path,
            knob="curves",
            line=self.line,
        )

    def note(self, message: str) -> None:
        text = f"{self.node.path}: {message}"
        logger.warning("%s", text)
        if self.warnings is not None:
            self.warnings.append(text)

    def static_frame(self, attrs: Mapping[str, TreeItem]) -> int:
        """Frame for a shape with no key times: its ``ltn`` (drawn-on frame) or the node's."""
        ltn = attrs.get("ltn")
        if isinstance(ltn, str):
            value = _parse_number(ltn)
            frame = None if value is None else _frame_of(value)
            if frame is not None:
                return frame
        start = _parse_int(self.node.value("lifetime_start"))
        if start is not None:
            return start
        if self.script.first_frame is not None:
            return self.script.first_frame
        return DEFAULT_FIRST_FRAME


def roto_shapes(
    script: NkScript,
    node: NkNode,
    height: float,
    *,
    warnings: Optional[List[str]] = None,
) -> List[RotoShape]:
    """The Bezier/B-spline shapes of a Roto or RotoPaint node, in image space (y down).

    Every control point (left tangent, centre, right tangent, FORMAT.md 2.4) is evaluated at
    every key time of its shape; a dimension with one entry is constant. Tangents stay relative
    to the centre, the feather point relative to the centre, feather tangents relative to the
    feather point; feather tangents equal to the main ones become None (``idem``). Shapes with
    no key times (untimed ``{p ...}``) are keyed once, at the frame they were drawn on
    (attribute ``ltn``). Paint strokes (``cubiccurve``) are skipped. Curvegroup and layer
    transforms are not applied (a warning says when one is not identity).

    Args:
        script: Parsed script.
        node: A Roto or RotoPaint node.
        height: Height in pixels of the node's format (``node_format``), for the y flip.
        warnings: Optional list that collects what was skipped.

    Raises:
        NkParseError: The ``curves`` knob is malformed; the message names the shape.
    """
    return _guard(script, node, "curves", lambda: _roto_shapes(script, node, height, warnings))


def _roto_shapes(
    script: NkScript, node: NkNode, height: float, warnings: Optional[List[str]]
) -> List[RotoShape]:
    if "curves" not in node.knobs:
        if node.node_class in ROTO_CLASSES:
            return []
        raise NkParseError(
            f"{node.path} is a {node.node_class}, not a Roto or RotoPaint node",
            path=script.path,
            knob="curves",
            line=node.line,
        )
    content = word_value(node.knobs["curves"]).lstrip()
    ctx = _RotoContext(script, node, height, warnings)
    if content.startswith("AnimTree:"):
        raise NkParseError(
            f"{node.path}: roto data is in the pre-Nuke-7 AnimTree format; open the script in "
            "Nuke 7 or later and save it again",
            path=script.path,
            knob="curves",
            line=ctx.line,
        )
    tree = knob_tree(script, node, "curves")
    top = _find_list(tree, "n")
    if top is None:
        if not content:
            return []
        raise NkParseError(
            f"{node.path}: knob 'curves' has no '{{n ...}}' node list",
            path=script.path,
            knob="curves",
            line=ctx.line,
        )
    shapes: List[RotoShape] = []
    # Depth-first, file order, without recursion: (children iterator, layer path below Root).
    stack: List[Tuple[Iterator[TreeItem], Tuple[str, ...]]] = []
    for item in top[1:]:
        if isinstance(item, list) and item and item[0] == "layer":
            _check_transform(ctx, item, f"layer {_name_of(item)}")
            stack.append((iter(item[2:]), ()))
            while stack:
                children, path = stack[-1]
                child = next(children, None)
                if child is None:
                    stack.pop()
                    continue
                if not isinstance(child, list) or not child:
                    continue
                head = child[0]
                if head == "layer":
                    _check_transform(ctx, child, f"layer {_name_of(child)}")
                    stack.append((iter(child[2:]), (*path, _name_of(child))))
                elif head == "curvegroup":
                    shape = _read_curvegroup(ctx, child, path)
                    if shape is not None:
                        shapes.append(shape)
    return shapes


def _find_list(tree: List[TreeItem], head: str) -> Optional[List[TreeItem]]:
    """Breadth-first search (a few levels) for the list whose first token is ``head``."""
    level: List[List[TreeItem]] = [tree]
    for _ in range(4):
        nxt: List[List[TreeItem]] = []
        for lst in level:
            for item in lst:
                if isinstance(item, list) and item:
                    if item[0] == head:
                        return item
                    nxt.append(item)
        level = nxt
    return None


def _name_of(item: List[TreeItem]) -> str:
    return item[1] if len(item) > 1 and isinstance(item[1], str) else "?"


def _read_curvegroup(
    ctx: _RotoContext, cg: List[TreeItem], layer: Tuple[str, ...]
) -> Optional[RotoShape]:
    name = _name_of(cg)
    flags = _parse_int(cg[2]) if len(cg) > 2 and isinstance(cg[2], str) else None
    kind = cg[3] if len(cg) > 3 and isinstance(cg[3], str) else "bezier"
    main: Optional[List[TreeItem]] = None
    feather: Optional[List[TreeItem]] = None
    attrs: Dict[str, TreeItem] = {}
    for item in cg[4:]:
        if not isinstance(item, list) or not item:
            continue
        head = item[0]
        if head == "cc":
            if main is None:
                main = item
        elif head in ("t", "tx"):
            _check_transform(ctx, item, f"shape {name}")
        elif head == "a":
            attrs = _attributes(item)
        elif isinstance(head, list) or head == "idem":
            ccs = [x for x in item if isinstance(x, list) and x and x[0] == "cc"]
            if ccs and main is None:
                main = ccs[0]
                feather = ccs[1] if len(ccs) > 1 else None
    if main is None:
        raise ctx.fail(name, "has no control-point data ('cc' block)")
    if kind == "bspline":
        ctx.note(f"shape '{name}' is a B-spline; its points are read as Bezier control points")
    main_cc = _read_cc(ctx, name, main)
    feather_cc = _read_cc(ctx, name, feather) if feather is not None else None
    npts = len(main_cc.elements) // 3
    if feather_cc is not None and len(feather_cc.elements) != len(main_cc.elements):
        raise ctx.fail(
            name,
            f"has {len(main_cc.elements)} main and {len(feather_cc.elements)} feather "
            "elements; they must match",
        )
    closed = not ((flags or 0) & ROTO_OPEN_FLAG or main_cc.flags & ROTO_OPEN_FLAG)
    times = _shape_times(main_cc)
    if not times:
        times = [float(ctx.static_frame(attrs))]
    keys: Dict[int, Tuple[ControlPoint, ...]] = {}
    dropped = 0
    for t in times:
        frame = _frame_of(t)
        if frame is None:
            dropped += 1
            continue
        keys[frame] = tuple(_point(ctx, name, main_cc, feather_cc, i, t) for i in range(npts))
    if dropped:
        ctx.note(f"shape '{name}': skipped {dropped} sub-frame or non-finite key times")
    feather_width = _attr_number(attrs, "fx", 0.0)
    falloff = _attr_number(attrs, "ff", 1.0)
    return RotoShape(name, closed, keys, layer, feather_width, falloff)


def _attributes(item: List[TreeItem]) -> Dict[str, TreeItem]:
    out: Dict[str, TreeItem] = {}
    values = item[1:]
    for k in range(0, len(values) - 1, 2):
        key = values[k]
        if isinstance(key, str):
            out[key] = values[k + 1]
    return out


def _attr_number(attrs: Mapping[str, TreeItem], name: str, default: float) -> float:
    value = attrs.get(name)
    number = _parse_number(value) if isinstance(value, str) else None
    return number if number is not None and math.isfinite(number) else default


def _check_transform(ctx: _RotoContext, item: List[TreeItem], what: str) -> None:
    """Warn when a shape/layer carries a non-identity transform (points are not moved)."""
    for sub in item[2:] if item and item[0] == "layer" else [item]:
        if not (isinstance(sub, list) and sub and sub[0] == "t"):
            continue
        slots = sub[1:]
        if len(slots) != TRANSFORM_SLOTS:
            continue
        for index, identity in TRANSFORM_IDENTITY.items():
            for value in _slot_values(slots[index]):
                if value != identity:
                    ctx.note(
                        f"{what} has a transform (slot {index} = {value:g}); its points are "
                        "read untransformed"
                    )
                    return


def _slot_values(slot: TreeItem) -> List[float]:
    if isinstance(slot, str):
        value = _parse_number(slot)
        return [] if value is None else [value]
    out: List[float] = []
    for key in slot:
        if isinstance(key, list) and len(key) >= 2 and isinstance(key[1], str):
            value = _parse_number(key[1])
            if value is not None:
                out.append(value)
        elif isinstance(key, str):
            value = _parse_number(key)
            if value is not None:
                out.append(value)
    return out


def _read_cc(ctx: _RotoContext, shape: str, cc: List[TreeItem]) -> _CC:
    flags = 0
    data: Optional[List[TreeItem]] = None
    for item in cc[1:]:
        if isinstance(item, list) and item:
            if item[0] == "f" and len(item) > 1 and isinstance(item[1], str):
                flags = _parse_int(item[1]) or 0
            elif item[0] in ("p", "px"):
                data = item
    if data is None:
        raise ctx.fail(shape, "has a 'cc' block without point data ('p' or 'px')")
    times: Optional[List[float]] = None
    raw_elements: List[TreeItem]
    if data[0] == "px":
        if len(data) < 2:
            raise ctx.fail(shape, "has 'px' without key times")
        spec = data[1]
        tokens = [spec] if isinstance(spec, str) else spec
        times = []
        for tok in tokens:
            value = _parse_number(tok) if isinstance(tok, str) else None
            if value is None or not math.isfinite(value):
                raise ctx.fail(shape, f"has a bad key time {str(tok)[:30]!r}")
            times.append(value)
        if not times:
            raise ctx.fail(shape, "has an empty key-time list")
        raw_elements = data[2:]
    else:
        raw_elements = data[1:]
    if len(raw_elements) % 3:
        raise ctx.fail(
            shape,
            f"has {len(raw_elements)} elements; Bezier points come in threes (left tangent, "
            "centre, right tangent)",
        )
    elements: List[Tuple[Dim, Dim]] = []
    for el in raw_elements:
        if not isinstance(el, list):
            raise ctx.fail(shape, f"has a bare {el[:30]!r} where a point element belongs")
        dx = _read_dim(ctx, shape, el[0] if len(el) > 0 else "0", times)
        dy = _read_dim(ctx, shape, el[1] if len(el) > 1 else "0", times)
        elements.append((dx, dy))
    return _CC(flags, times, elements)


def _read_dim(
    ctx: _RotoContext, shape: str, item: TreeItem, times: Optional[List[float]]
) -> Dim:
    """One coordinate of one element: constant, keyed per shared time, or keyed per point."""
    if isinstance(item, str):
        return _number_or_fail(ctx, shape, item)
    if not item:
        return 0.0
    entries: TreeItem = item
    first = item[0]
    if isinstance(first, str) and first.startswith("="):
        # Expression-linked ({=expr {f N} value}): keep the value Nuke stored with it.
        rest = [x for x in item[1:] if not (isinstance(x, list) and x and x[0] == "f")]
        if not rest:
            return 0.0
        entries = rest[-1]
        if isinstance(entries, str):
            return _number_or_fail(ctx, shape, entries)
    elif isinstance(first, list) and first and first[0] == "f":
        if len(item) < 2:
            return 0.0
        entries = item[1]
        if isinstance(entries, str):
            return _number_or_fail(ctx, shape, entries)
    if not isinstance(entries, list):
        return 0.0
    if times is None:
        return _timed_entries(ctx, shape, entries)
    values = _untimed_entries(ctx, shape, entries, len(times))
    if len(values) == 1:
        return values[0]
    if len(values) != len(times):
        raise ctx.fail(
            shape,
            f"has a curve with {len(values)} values for {len(times)} key times",
        )
    return sorted(zip(times, values))


def _number_or_fail(ctx: _RotoContext, shape: str, token: TreeItem) -> float:
    value = _parse_number(token) if isinstance(token, str) else None
    if value is None or not math.isfinite(value):
        raise ctx.fail(shape, f"has {str(token)[:30]!r} where a number belongs")
    return value


def _untimed_entries(
    ctx: _RotoContext, shape: str, entries: List[TreeItem], limit: int
) -> List[float]:
    """Entries of a ``px`` curve: ``v``, ``{v -}``, ``{v ls la rs ra}``, ``{x N entry}``.

    ``limit`` is the number of key times; a run longer than that is malformed.
    """
    out: List[float] = []
    for entry in entries:
        if isinstance(entry, str):
            out.append(_number_or_fail(ctx, shape, entry))
            continue
        if not entry:
            out.append(0.0)
            continue
        head = entry[0]
        if head == "x":
            count = _parse_int(entry[1]) if len(entry) > 2 and isinstance(entry[1], str) else None
            if count is None or count < 0 or len(out) + count > limit:
                raise ctx.fail(shape, "has a malformed run '{x N ...}'")
            inner = entry[2]
            token = inner if isinstance(inner, str) else (inner[0] if inner else "0")
            out.extend([_number_or_fail(ctx, shape, token)] * count)
            continue
        out.append(_number_or_fail(ctx, shape, head))
    return out


def _timed_entries(
    ctx: _RotoContext, shape: str, entries: List[TreeItem]
) -> List[Tuple[float, float]]:
    """Entries of a ``p`` curve keyed per point: ``{t v ...}``; ``{t}`` means value 0."""
    keys: Dict[float, float] = {}
    for entry in entries:
        if not isinstance(entry, list) or not entry:
            raise ctx.fail(shape, "has a per-point keyed curve with an entry without a time")
        t = _number_or_fail(ctx, shape, entry[0])
        v = 0.0
        if len(entry) > 1 and entry[1] != "-":
            v = _number_or_fail(ctx, shape, entry[1])
        keys[t] = v
    return sorted(keys.items())


def _shape_times(cc: _CC) -> List[float]:
    if cc.times is not None:
        return sorted(set(cc.times))
    found: Set[float] = set()
    for dx, dy in cc.elements:
        for d in (dx, dy):
            if isinstance(d, list):
                found.update(t for t, _ in d)
    return sorted(found)


def _eval(dim: Dim, t: float) -> float:
    if isinstance(dim, float):
        return dim
    if not dim:
        return 0.0
    xs = [k for k, _ in dim]
    i = bisect.bisect_left(xs, t)
    if i < len(xs) and xs[i] == t:
        return dim[i][1]
    return _interp(xs, [v for _, v in dim], t)


def _pair(cc: _CC, index: int, t: float) -> Vec2:
    dx, dy = cc.elements[index]
    return (_eval(dx, t), _eval(dy, t))


def _rel(v: Vec2) -> Vec2:
    """A relative offset, Nuke -> image: dy changes sign (``+ 0.0`` turns -0.0 into 0.0)."""
    return (v[0] + 0.0, coords.dy_flip(v[1]) + 0.0)


def _point(
    ctx: _RotoContext, shape: str, main: _CC, feather: Optional[_CC], i: int, t: float
) -> ControlPoint:
    left = _pair(main, 3 * i, t)
    centre = _pair(main, 3 * i + 1, t)
    right = _pair(main, 3 * i + 2, t)
    if not all(math.isfinite(v) for v in (*left, *centre, *right)):
        raise ctx.fail(shape, f"point {i} is not finite at frame {t:g}")
    x = centre[0]
    y = coords.y_img_from_nuke(centre[1], ctx.height)
    left_img, right_img = _rel(left), _rel(right)
    if feather is None:
        return ControlPoint(x, y, left_img, right_img)
    f_left = _rel(_pair(feather, 3 * i, t))
    f_off = _rel(_pair(feather, 3 * i + 1, t))
    f_right = _rel(_pair(feather, 3 * i + 2, t))
    if not all(math.isfinite(v) for v in (*f_left, *f_off, *f_right)):
        raise ctx.fail(shape, f"feather of point {i} is not finite at frame {t:g}")
    return ControlPoint(
        x,
        y,
        left_img,
        right_img,
        f_off,
        None if f_left == left_img else f_left,
        None if f_right == right_img else f_right,
    )
