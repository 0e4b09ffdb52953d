"""Snap a roto shape onto a frame's own edges, for pieces whose outline changes from frame to frame.

A replacement piece (a stop-motion mouth, swapped for another print on every frame) has no
motion to follow: flow and interpolation both carry the wrong print. The frame itself shows
the piece's outline, though, so each frame's shape is found again in the image:

1. Candidates: every key's shape (the prints the artist drew), moved onto the frame with the
   motion of the shape that holds the piece (the face), plus the propagated estimate. Each is
   refined with the affine that best lines up its outline (``seamroto.outline``); real
   productions reuse a small library of prints, so one of the keys is often the same print.
2. Each candidate's outline is snapped onto the frame's edges: grey profiles across the
   outline on its key frame are searched for along the normals (one gain for flicker, no
   offset, so the same skin-to-lip step is found and not the darker lip-to-mouth one), and
   sharp corners (a mouth's cusps) along their bisector. A first, wide round keeps the
   offsets smooth along the outline (a dynamic programme); a few narrow rounds follow. Each
   round fits the spline's control points and tangents to the found edge by regularised
   least squares (same point count and order, feather carried along), so the result stays
   an editable shape.
3. The candidate whose snapped outline matches its key's profiles best wins.

Coordinates: plate pixels, ``_img`` space (origin top-left, y down, pixel centre at +0.5).
Shapes are in the ``seamroto.propagate.pack_points`` layout (N, 6, 2): centre, left, right,
feather, feather left, feather right, all absolute. Grey frames may be at a working
resolution (``scale`` working px per plate px).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import List, Optional, Sequence, Tuple

import numpy as np

from seamroto.curves import bernstein, sample_bezier, signed_area
from seamroto.outline import DEFAULT_OUTLINE, PIXEL_CENTRE, Outline, OutlineParams, fit_outline, make_outline

logger = logging.getLogger(__name__)

EPS = 1e-9
#: Slots of a packed point that the snap moves as curve control points: centre, left, right.
CURVE_SLOTS = 3
#: Dense samples per segment when measuring segment lengths.
LENGTH_SAMPLES = 32
#: Fewest profiles per segment.
MIN_PER_SEGMENT = 2
#: Extra working px around a shape's box when cropping the frame.
CROP_MARGIN = 4
#: The first (coarse) search reaches at least this far (working px).
MIN_COARSE_REACH = 4
#: A control point whose outline turns by more than this is a corner (degrees).
CORNER_TURN_DEG = 60.0


@dataclass(frozen=True)
class SnapParams:
    """Settings of the edge snap (working px unless named ``_px``, which are plate px).

    The defaults were chosen on the synthetic replacement mouths of ``mara:3`` and ``otto:7``
    (``benchmarks/bench_motion2roto.py``) and checked on ``pip:11`` and ``lionel:4``.

    Attributes:
        spacing_px: distance between profiles along the outline.
        inside: length of a profile inside the outline (thin lips: keep it short).
        outside: length of a profile outside the outline.
        coarse_reach: how far the first round searches either side of the candidate's
            outline, as a share of the shape's longer side (a print can be that much wider
            or taller than another); its offsets are kept smooth along the outline.
        smoothness: cost of a unit offset step between neighbouring profiles in the first
            round (in units of the normalised profile cost).
        fine_reaches: how far each later round searches (each profile on its own).
        noise: grey-level difference (0-255 scale) that counts as one unit of profile cost.
        cost_cap: a profile's cost never exceeds this (an occluded or missing edge).
        prior: pull of every control slot towards where the round before left it (per plate
            px squared; the candidate, in the first round).
        stiffness: pull of neighbouring control points' relative placement towards the round
            before's: the found edge only says where the outline is, across it, so this keeps
            the points from sliding along it (where they sit on the print is the key's call).
        handle_stiffness: pull of each tangent handle towards the round before's vector.
        corner_weight: profiles' worth of weight of a corner's tip (found along its bisector).
        corner_reach: a corner's tip is searched this many times further than the outline.
        duplicate_px: a candidate whose points lie this close (mean, plate px) to one already
            tried is the same print again and is skipped.
        good_cost: candidates are snapped best-matching first, and once one snaps to this
            cost or lower (the same print, found) the rest are not tried.
        outline: settings of each candidate's affine refinement (``seamroto.outline``).
    """

    spacing_px: float = 2.0
    inside: int = 2
    outside: int = 5
    coarse_reach: float = 0.17
    smoothness: float = 0.05
    fine_reaches: Tuple[int, ...] = (3, 2, 2)
    noise: float = 8.0
    cost_cap: float = 4.0
    prior: float = 0.001
    stiffness: float = 0.3
    handle_stiffness: float = 1.0
    corner_weight: float = 4.0
    corner_reach: float = 1.5
    duplicate_px: float = 1.0
    good_cost: float = 0.15
    outline: OutlineParams = DEFAULT_OUTLINE


DEFAULT_SNAP = SnapParams()


@dataclass(frozen=True)
class EdgeModel:
    """A shape's outline on one key frame: where its profiles sit and what they look like.

    Attributes:
        count: control points of the shape.
        closed: whether the shape is closed.
        segment: segment of each profile. Shape: (M,) int.
        t: Bezier parameter of each profile on its segment. Shape: (M,).
        side: +1 or -1 so that the normals point out of a closed shape.
        template: grey values across the outline at offsets ``-inside..outside`` (working
            px, along the outward normal). Shape: (M, inside + outside + 1) float64.
        position: rows mapping stacked control slots to the profile centres. Shape: (M, 3N).
        derivative: the same for the curve's derivative there. Shape: (M, 3N).
        corners: control points where the outline turns sharply (a cusp: its tip is found along
            the turn's bisector, where the normals say nothing). Shape: (C,) int.
        corner_template: grey values along each corner's bisector, as ``template``.
    """

    count: int
    closed: bool
    segment: np.ndarray
    t: np.ndarray
    side: float
    template: np.ndarray
    position: np.ndarray
    derivative: np.ndarray
    corners: np.ndarray
    corner_template: np.ndarray


@dataclass(frozen=True)
class SnapResult:
    """A snapped shape and how well its outline matches the model's profiles.

    Attributes:
        packed: Shape: (N, 6, 2), ``pack_points`` layout, plate px.
        cost: mean normalised profile cost at the final outline (0 = a perfect match,
            ``cost_cap`` = nothing matches).
    """

    packed: np.ndarray
    cost: float


# -------------------------------------------------------------------- spline algebra


def _to_slots(packed: np.ndarray) -> np.ndarray:
    """Curve control slots stacked: centres, then left handles, then right handles (absolute)."""
    return np.vstack([packed[:, 0], packed[:, 1], packed[:, 2]])


def _from_slots(slots: np.ndarray, packed: np.ndarray) -> np.ndarray:
    """``packed`` with its curve slots replaced; the feather point and handles move with the centre."""
    n = len(packed)
    out = np.array(packed, dtype=np.float64, copy=True)
    delta = slots[:n] - packed[:, 0]
    out[:, 0], out[:, 1], out[:, 2] = slots[:n], slots[n:2 * n], slots[2 * n:]
    out[:, 3:6] += delta[:, None, :]
    return out


def _weights(count: int, segment: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Rows mapping stacked slots to points on the curve (``coef``: Bernstein-like, (M, 4))."""
    rows = np.arange(len(segment))
    nxt = (segment + 1) % count
    w = np.zeros((len(segment), CURVE_SLOTS * count))
    np.add.at(w, (rows, segment), coef[:, 0])
    np.add.at(w, (rows, 2 * count + segment), coef[:, 1])
    np.add.at(w, (rows, count + nxt), coef[:, 2])
    np.add.at(w, (rows, nxt), coef[:, 3])
    return w


def _basis(count: int, segment: np.ndarray, t: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Position and derivative rows of the curve at ``(segment, t)``."""
    s = 1.0 - t
    deriv = np.stack([-3.0 * s * s, 3.0 * s * s - 6.0 * s * t, 6.0 * s * t - 3.0 * t * t, 3.0 * t * t], axis=1)
    return _weights(count, segment, bernstein(t)), _weights(count, segment, deriv)


def _profile_params(packed: np.ndarray, closed: bool, spacing_px: float) -> Tuple[np.ndarray, np.ndarray]:
    """(segment, t) of profiles about ``spacing_px`` apart, centred in equal steps of each segment."""
    n = len(packed)
    slots = _to_slots(packed)
    segments, ts = [], []
    dense = np.linspace(0.0, 1.0, LENGTH_SAMPLES + 1)
    for i in range(n if closed else n - 1):
        pos, _ = _basis(n, np.full(len(dense), i), dense)
        length = float(np.linalg.norm(np.diff(pos @ slots, axis=0), axis=1).sum())
        k = max(MIN_PER_SEGMENT, int(round(length / spacing_px)))
        segments.append(np.full(k, i))
        ts.append((np.arange(k) + 0.5) / k)
    return np.concatenate(segments), np.concatenate(ts)


def _outline(slots: np.ndarray, model: EdgeModel) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Curve rows, profile centres (plate px) and unit outward normals of a shape."""
    pos = model.position
    points = pos @ slots
    tangent = model.derivative @ slots
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), EPS)
    normals = np.column_stack([-tangent[:, 1], tangent[:, 0]]) * model.side
    return pos, points, normals


def _outward_side(packed: np.ndarray, closed: bool) -> float:
    """+1 when the (-ty, tx) normals point out of a closed shape, else -1 (open shapes: +1)."""
    if not closed:
        return 1.0
    rows = np.hstack([packed[:, 0], packed[:, 1] - packed[:, 0], packed[:, 2] - packed[:, 0]])
    # (-ty, tx) points out of a shape that runs anticlockwise on screen (negative area, y down)
    return 1.0 if signed_area(sample_bezier(rows, True)) < 0 else -1.0


def _directions(slots: np.ndarray, count: int, closed: bool) -> Tuple[np.ndarray, np.ndarray]:
    """Unit directions the outline arrives at and leaves each control point with. Shape: (N, 2) each."""
    centre, left, right = slots[:count], slots[count:2 * count], slots[2 * count:]
    prev = np.roll(centre, 1, axis=0)
    nxt = np.roll(centre, -1, axis=0)
    arrive = centre - left
    leave = right - centre
    # a zero-length handle: the chord to the neighbour gives the direction
    arrive = np.where(np.linalg.norm(arrive, axis=1, keepdims=True) > EPS, arrive, centre - prev)
    leave = np.where(np.linalg.norm(leave, axis=1, keepdims=True) > EPS, leave, nxt - centre)
    if not closed:
        arrive[0], leave[-1] = leave[0], arrive[-1]
    arrive = arrive / np.maximum(np.linalg.norm(arrive, axis=1, keepdims=True), EPS)
    leave = leave / np.maximum(np.linalg.norm(leave, axis=1, keepdims=True), EPS)
    return arrive, leave


def _find_corners(slots: np.ndarray, count: int, closed: bool) -> np.ndarray:
    """Control points where the outline turns by more than ``CORNER_TURN_DEG`` (indices)."""
    arrive, leave = _directions(slots, count, closed)
    turn = np.degrees(np.arccos(np.clip((arrive * leave).sum(axis=1), -1.0, 1.0)))
    inner = np.arange(count) if closed else np.arange(1, count - 1)
    return np.asarray([i for i in inner if turn[i] > CORNER_TURN_DEG], dtype=np.int64)


def _corner_axes(slots: np.ndarray, model: EdgeModel) -> Tuple[np.ndarray, np.ndarray]:
    """Tips and unit tip directions (the bisector pointing out of the corner) of the corners."""
    arrive, leave = _directions(slots, model.count, model.closed)
    tip = arrive[model.corners] - leave[model.corners]
    tip /= np.maximum(np.linalg.norm(tip, axis=1, keepdims=True), EPS)
    return slots[model.corners], tip


# -------------------------------------------------------------------- image sampling


class _Crop:
    """A float32 crop of a grey working frame around a shape, sampled in plate px."""

    def __init__(self, gray: np.ndarray, points_px: np.ndarray, reach: int, scale: Tuple[float, float]) -> None:
        s = np.asarray(scale, dtype=np.float64)
        w = points_px * s
        pad = reach + CROP_MARGIN
        h_img, w_img = gray.shape[:2]
        # clipped to the frame, and never empty (a shape off screen samples the nearest border)
        self.x0 = int(np.clip(np.floor(w[:, 0].min()) - pad, 0, w_img - 1))
        self.y0 = int(np.clip(np.floor(w[:, 1].min()) - pad, 0, h_img - 1))
        x1 = int(np.clip(np.ceil(w[:, 0].max()) + pad + 1, self.x0 + 1, w_img))
        y1 = int(np.clip(np.ceil(w[:, 1].max()) + pad + 1, self.y0 + 1, h_img))
        self.image = np.asarray(gray[self.y0:y1, self.x0:x1], np.float32)
        self.scale = s

    def profiles(self, points_px: np.ndarray, normals: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Grey values at ``points + offset * normal`` (offsets in working px). Shape: (M, T) float64."""
        import cv2

        if len(points_px) == 0:
            return np.zeros((0, len(offsets)))
        centre = points_px * self.scale - PIXEL_CENTRE - (self.x0, self.y0)
        x = (centre[:, None, 0] + offsets[None, :] * normals[:, None, 0]).astype(np.float32)
        y = (centre[:, None, 1] + offsets[None, :] * normals[:, None, 1]).astype(np.float32)
        return np.asarray(cv2.remap(self.image, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), np.float64)


def make_edge_model(
    gray: np.ndarray, packed: np.ndarray, closed: bool, scale: Tuple[float, float], params: SnapParams = DEFAULT_SNAP
) -> Optional[EdgeModel]:
    """The profiles across a shape's outline on its key frame (None for a degenerate shape).

    Args:
        gray: the key's grey working frame, Shape: (h, w) uint8 or float32.
        packed: the shape on that frame. Shape: (N, 6, 2), plate px.
        closed: whether the shape is closed.
        scale: (sx, sy) working px per plate px.
        params: settings.
    """
    packed = np.asarray(packed, dtype=np.float64)
    if len(packed) < 2 or not np.isfinite(packed).all():
        return None
    segment, t = _profile_params(packed, closed, params.spacing_px)
    side = _outward_side(packed, closed)
    pos, deriv = _basis(len(packed), segment, t)
    slots = _to_slots(packed)
    corners = _find_corners(slots, len(packed), closed)
    empty = np.zeros((0, params.inside + params.outside + 1))
    model = EdgeModel(len(packed), closed, segment, t, side, empty, pos, deriv, corners, empty)
    _, points, normals = _outline(slots, model)
    tips, axes = _corner_axes(slots, model)
    offsets = np.arange(-params.inside, params.outside + 1, dtype=np.float64)
    crop = _Crop(gray, points, params.outside, scale)
    return replace(model, template=crop.profiles(points, normals, offsets),
                   corner_template=crop.profiles(tips, axes, offsets))


def restore_edge_model(
    count: int,
    closed: bool,
    segment: np.ndarray,
    t: np.ndarray,
    side: float,
    template: np.ndarray,
    corners: np.ndarray,
    corner_template: np.ndarray,
) -> EdgeModel:
    """An ``EdgeModel`` from its stored fields (the curve rows are rebuilt, not stored).

    Raises:
        ValueError: the fields disagree with each other (a damaged file).
    """
    segment = np.asarray(segment, dtype=np.int64)
    t = np.asarray(t, dtype=np.float64)
    template = np.asarray(template, dtype=np.float64).reshape(len(segment), -1)
    corners = np.asarray(corners, dtype=np.int64).reshape(-1)
    corner_template = np.asarray(corner_template, dtype=np.float64).reshape(len(corners), template.shape[1])
    if len(t) != len(segment) or (len(segment) and not 0 <= segment.min() <= segment.max() < count):
        raise ValueError(f"profile segments do not fit a shape of {count} points")
    if len(corners) and not 0 <= corners.min() <= corners.max() < count:
        raise ValueError(f"corner indices do not fit a shape of {count} points")
    pos, deriv = _basis(count, segment, t)
    return EdgeModel(count, closed, segment, t, float(side), template, pos, deriv, corners, corner_template)


# -------------------------------------------------------------------- snapping


def _gain(model: EdgeModel, crop: _Crop, points: np.ndarray, normals: np.ndarray, params: SnapParams) -> float:
    """One grey gain for the whole outline (stage-light flicker), from what lies just outside it."""
    offsets = np.arange(1, params.outside + 1, dtype=np.float64)
    now = float(np.median(crop.profiles(points, normals, offsets)))
    return now / max(float(np.median(model.template[:, -params.outside:])), EPS)


def _costs(template: np.ndarray, crop: _Crop, points: np.ndarray, normals: np.ndarray, reach: int, gain: float,
           params: SnapParams) -> np.ndarray:
    """Normalised cost of the edge at each offset ``-reach..reach`` of each profile. Shape: (M, 2R+1)."""
    offsets = np.arange(-params.inside - reach, params.outside + reach + 1, dtype=np.float64)
    prof = crop.profiles(points, normals, offsets)
    width = params.inside + params.outside + 1
    windows = np.lib.stride_tricks.sliding_window_view(prof, width, axis=1)  # (M, 2R+1, width)
    diff = windows / max(gain, EPS) - template[:, None, :]
    return np.asarray(np.minimum((diff * diff).mean(axis=2) / params.noise**2, params.cost_cap))


def _smooth_path(cost: np.ndarray, smoothness: float) -> np.ndarray:
    """Offset index per profile minimising cost plus ``smoothness * step^2`` between neighbours (Viterbi)."""
    m, d = cost.shape
    idx = np.arange(d)
    step = smoothness * (idx[:, None] - idx[None, :]) ** 2.0
    acc = cost[0].copy()
    back = np.zeros((m, d), dtype=np.int64)
    for j in range(1, m):
        total = acc[:, None] + step
        back[j] = total.argmin(axis=0)
        acc = total[back[j], idx] + cost[j]
    path = np.empty(m, dtype=np.int64)
    path[-1] = int(acc.argmin())
    for j in range(m - 1, 0, -1):
        path[j - 1] = back[j, path[j]]
    return path


def _subsample(cost: np.ndarray, path: np.ndarray) -> np.ndarray:
    """Sub-step offsets around the chosen indices (a parabola through each minimum)."""
    rows = np.arange(len(path))
    last = cost.shape[1] - 1
    left = cost[rows, np.clip(path - 1, 0, last)]
    mid = cost[rows, path]
    right = cost[rows, np.clip(path + 1, 0, last)]
    den = left - 2.0 * mid + right
    inner = (path > 0) & (path < last) & (den > EPS)
    sub = np.where(inner, 0.5 * (left - right) / np.where(inner, den, 1.0), 0.0)
    return path + np.clip(sub, -0.5, 0.5)


class EdgeFitter:
    """Regularised least squares of a shape's control slots onto found edge points (one model)."""

    def __init__(self, model: EdgeModel, params: SnapParams) -> None:
        n = model.count
        k = CURVE_SLOTS * n
        rows: List[np.ndarray] = []
        weights: List[float] = []
        for i in range(n if model.closed else n - 1):
            j = (i + 1) % n
            for slot in range(CURVE_SLOTS):
                r = np.zeros(k)
                r[slot * n + i], r[slot * n + j] = 1.0, -1.0
                rows.append(r)
                weights.append(params.stiffness)
        for i in range(n):
            for slot in (1, 2):
                r = np.zeros(k)
                r[slot * n + i], r[i] = 1.0, -1.0
                rows.append(r)
                weights.append(params.handle_stiffness)
        d = np.asarray(rows)
        w = np.asarray(weights)
        # the same regulariser on x and y: (D^T W D + prior I) acting on each coordinate
        self.reg = d.T @ (d * w[:, None]) + params.prior * np.eye(k)
        self.count = k

    def fit(self, anchor: np.ndarray, pos: np.ndarray, normals: np.ndarray, target: np.ndarray,
            weight: np.ndarray) -> np.ndarray:
        """Slots that put each curve point's normal offset on its target, held to ``anchor``'s layout.

        Args:
            anchor: stacked slots the regularisers hold to. Shape: (3N, 2).
            pos: rows mapping stacked slots to the curve points. Shape: (M, 3N).
            normals: unit normals at the curve points. Shape: (M, 2).
            target: where each curve point should move, along its normal. Shape: (M, 2).
            weight: confidence of each target. Shape: (M,).

        Returns:
            Stacked slots. Shape: (3N, 2).
        """
        k = self.count
        a = np.hstack([pos * normals[:, :1], pos * normals[:, 1:2]])  # (M, 2k): n . (W X)
        b = (normals * target).sum(axis=1)
        lhs = (a * weight[:, None]).T @ a
        rhs = (a * weight[:, None]).T @ b
        lhs[:k, :k] += self.reg
        lhs[k:, k:] += self.reg
        rhs[:k] += self.reg @ anchor[:, 0]
        rhs[k:] += self.reg @ anchor[:, 1]
        x = np.linalg.solve(lhs + EPS * np.eye(2 * k), rhs)
        return np.column_stack([x[:k], x[k:]])


def snap_shape(
    model: EdgeModel,
    gray: np.ndarray,
    packed: np.ndarray,
    scale: Tuple[float, float],
    params: SnapParams = DEFAULT_SNAP,
    fitter: Optional[EdgeFitter] = None,
) -> SnapResult:
    """Move a shape's control points and tangents so its outline lies on the frame's edges.

    Args:
        model: ``make_edge_model`` of the shape (same point count and order) on a key frame.
        gray: the frame's grey working image, Shape: (h, w) uint8 or float32.
        packed: the starting shape on this frame. Shape: (N, 6, 2), plate px.
        scale: (sx, sy) working px per plate px.
        params: settings.
        fitter: a cached ``EdgeFitter`` of ``model`` (made when None).

    Returns:
        The snapped shape (same point count and order, feather moved with each point) and its
        final profile cost.
    """
    start = np.asarray(packed, dtype=np.float64)
    fitter = fitter if fitter is not None else EdgeFitter(model, params)
    unit = float(np.mean(scale))
    extent = float(np.ptp(start[:, 0] * np.asarray(scale), axis=0).max())
    coarse = max(MIN_COARSE_REACH, int(round(params.coarse_reach * extent)))
    reaches = (coarse, *params.fine_reaches)
    pad = int(np.ceil(params.corner_reach * max(reaches))) + sum(reaches[1:]) + params.outside
    slots = _to_slots(start)
    crop = _Crop(gray, start[:, :3].reshape(-1, 2), pad, scale)
    corner_rows = np.zeros((len(model.corners), CURVE_SLOTS * model.count))
    corner_rows[np.arange(len(model.corners)), model.corners] = 1.0
    for round_index, reach in enumerate(reaches):
        pos, points, normals = _outline(slots, model)
        gain = _gain(model, crop, points, normals, params)
        cost = _costs(model.template, crop, points, normals, reach, gain, params)
        path = _smooth_path(cost, params.smoothness) if round_index == 0 else cost.argmin(axis=1)
        offset = (_subsample(cost, path) - reach) / unit
        weight = np.exp(-cost[np.arange(len(path)), path])
        target = points + offset[:, None] * normals
        if len(model.corners):
            tips, axes = _corner_axes(slots, model)
            tip_reach = int(np.ceil(params.corner_reach * reach))
            tip_cost = _costs(model.corner_template, crop, tips, axes, tip_reach, gain, params)
            tip_path = tip_cost.argmin(axis=1)
            tip_offset = (_subsample(tip_cost, tip_path) - tip_reach) / unit
            tip_weight = params.corner_weight * np.exp(-tip_cost[np.arange(len(tip_path)), tip_path])
            pos = np.vstack([pos, corner_rows])
            normals = np.vstack([normals, axes])
            target = np.vstack([target, tips + tip_offset[:, None] * axes])
            weight = np.concatenate([weight, tip_weight])
        # held to the previous round's shape, so the regularisers steer each step without
        # pulling the final outline back towards the candidate it started from
        slots = fitter.fit(slots, pos, normals, target, weight)
        if not np.isfinite(slots).all():
            return SnapResult(start, params.cost_cap)
    return SnapResult(_from_slots(slots, start), _final_cost(model, crop, slots, params))


def start_cost(
    model: EdgeModel, gray: np.ndarray, packed: np.ndarray, scale: Tuple[float, float], params: SnapParams
) -> float:
    """Profile cost of a shape where it is, without moving it."""
    crop = _Crop(gray, packed[:, :3].reshape(-1, 2), params.outside, scale)
    return _final_cost(model, crop, _to_slots(packed), params)


class ProfileRanker:
    """``start_cost`` of one shape under many edge models at once: ranking a print library per frame.

    Every model's profile rows are stacked, so a frame costs one image lookup for all of them
    instead of one per model (the models must share the shape's point count and closure).
    """

    def __init__(self, models: Sequence[EdgeModel], params: SnapParams = DEFAULT_SNAP) -> None:
        if not models:
            raise ValueError("no edge models to rank")
        self.count, self.closed, self.params = models[0].count, models[0].closed, params
        self.rows = np.array([len(m.segment) for m in models])
        self.starts = np.concatenate([[0], np.cumsum(self.rows)[:-1]])
        self.position = np.vstack([m.position for m in models])
        self.derivative = np.vstack([m.derivative for m in models])
        self.side = np.repeat([m.side for m in models], self.rows)
        self.template = np.vstack([m.template for m in models])
        self.reference = np.array([max(float(np.median(m.template[:, -params.outside:])), EPS) for m in models])
        self.corners = np.concatenate([m.corners for m in models]).astype(np.int64)
        self.corner_owner = np.concatenate([np.full(len(m.corners), i) for i, m in enumerate(models)]).astype(np.int64)
        self.corner_template = np.vstack([m.corner_template for m in models])
        self.weight = self.rows + params.corner_weight * np.bincount(self.corner_owner, minlength=len(models))

    def costs(self, gray: np.ndarray, packed: np.ndarray, scale: Tuple[float, float]) -> np.ndarray:
        """Each model's profile cost of the shape where it is. Shape: (models,)."""
        p = self.params
        packed = np.asarray(packed, dtype=np.float64)
        slots = _to_slots(packed)
        crop = _Crop(gray, packed[:, :3].reshape(-1, 2), p.outside, scale)
        points = self.position @ slots
        tangent = self.derivative @ slots
        tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), EPS)
        normals = np.column_stack([-tangent[:, 1], tangent[:, 0]]) * self.side[:, None]
        offsets = np.arange(-p.inside, p.outside + 1, dtype=np.float64)
        prof = crop.profiles(points, normals, offsets)
        outside = prof[:, p.inside + 1:]  # the offsets 1..outside that ``_gain`` reads
        now = np.array([np.median(outside[s:s + n]) for s, n in zip(self.starts, self.rows)])
        gain = np.maximum(now / self.reference, EPS)
        total = np.add.reduceat(self._cost(prof, self.template, np.repeat(gain, self.rows)), self.starts)
        if len(self.corners):
            arrive, leave = _directions(slots, self.count, self.closed)
            axes = arrive[self.corners] - leave[self.corners]
            axes /= np.maximum(np.linalg.norm(axes, axis=1, keepdims=True), EPS)
            tips = crop.profiles(slots[self.corners], axes, offsets)
            tip_cost = self._cost(tips, self.corner_template, gain[self.corner_owner])
            total = total + p.corner_weight * np.bincount(self.corner_owner, tip_cost, minlength=len(self.rows))
        return np.asarray(total / self.weight)

    def _cost(self, prof: np.ndarray, template: np.ndarray, gain: np.ndarray) -> np.ndarray:
        diff = prof / gain[:, None] - template
        return np.asarray(np.minimum((diff * diff).mean(axis=1) / self.params.noise**2, self.params.cost_cap))


def _final_cost(model: EdgeModel, crop: _Crop, slots: np.ndarray, params: SnapParams) -> float:
    """Mean profile cost of an outline where it is (corners count ``corner_weight`` profiles each)."""
    _, points, normals = _outline(slots, model)
    gain = _gain(model, crop, points, normals, params)
    total = float(_costs(model.template, crop, points, normals, 0, gain, params).sum())
    count = float(len(points))
    if len(model.corners):
        tips, axes = _corner_axes(slots, model)
        total += params.corner_weight * float(_costs(model.corner_template, crop, tips, axes, 0, gain, params).sum())
        count += params.corner_weight * len(model.corners)
    return total / count


# -------------------------------------------------------------------- candidates


def fit_affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares affine map of one point set onto another.

    Args:
        src: Shape: (K, 2), plate px.
        dst: Shape: (K, 2), plate px.

    Returns:
        Shape: (2, 3) float64.
    """
    x = np.column_stack([src, np.ones(len(src))])
    sol = np.linalg.lstsq(x, dst, rcond=None)[0]
    return np.asarray(sol.T)


def apply_affine(matrix: np.ndarray, packed: np.ndarray) -> np.ndarray:
    """Every slot of a packed shape moved by an affine map (same shape as ``packed``)."""
    flat = np.asarray(packed, dtype=np.float64).reshape(-1, 2)
    return np.asarray((flat @ matrix[:, :2].T + matrix[:, 2]).reshape(np.shape(packed)))


def nonrigid_residual_px(a: np.ndarray, b: np.ndarray) -> float:
    """Mean control-point distance left after the best affine map of shape ``a`` onto ``b``.

    Zero for two keys of a rigid piece however it moved (a single depth of a puppet head moves
    affinely on screen); several pixels for two different replacement prints.
    """
    move = fit_affine(a.reshape(-1, 2), b.reshape(-1, 2))
    return float(np.linalg.norm(apply_affine(move, a)[:, 0] - b[:, 0], axis=1).mean())


@dataclass(frozen=True)
class ReplacementTest:
    """When a shape counts as a replacement piece, from its keys.

    The median non-rigid residual between consecutive keys (``nonrigid_residual_px``) must
    reach both thresholds: hand-drawn keys of a rigid piece differ by a fraction of a pixel,
    two replacement mouths by a few pixels (1-3% of their width).

    Attributes:
        min_px: residual in plate px.
        min_share: residual as a share of the shape's longer side on its first key.
    """

    min_px: float = 1.5
    min_share: float = 0.01


DEFAULT_REPLACEMENT_TEST = ReplacementTest()


def changes_shape(keys: Sequence[np.ndarray], params: ReplacementTest = DEFAULT_REPLACEMENT_TEST) -> bool:
    """True when most pairs of consecutive keys differ by more than a motion (a replacement piece).

    Args:
        keys: the shape's keys in frame order, each Shape: (N, 6, 2), plate px.
        params: thresholds.
    """
    pairs = [(a, b) for a, b in zip(keys[:-1], keys[1:]) if a.shape == b.shape]
    if not pairs:
        return False
    residual = float(np.median([nonrigid_residual_px(a, b) for a, b in pairs]))
    extent = float(np.ptp(keys[0][:, 0], axis=0).max())
    return residual >= params.min_px and residual >= params.min_share * extent


@dataclass(frozen=True)
class KeyPrint:
    """One key of a replacement shape: the print the artist drew, and what it looks like there.

    Attributes:
        frame: the key frame.
        packed: the key's shape. Shape: (N, 6, 2), plate px.
        model: its edge profiles (``make_edge_model``).
        fitter: the least-squares fitter of ``model``.
        outline: its outline profiles for the affine refinement, or None (degenerate).
    """

    frame: int
    packed: np.ndarray
    model: EdgeModel
    fitter: EdgeFitter
    outline: Optional[Outline]


def make_key_prints(
    keys: Sequence[Tuple[int, np.ndarray]],
    grays: Sequence[np.ndarray],
    closed: bool,
    scale: Tuple[float, float],
    params: SnapParams = DEFAULT_SNAP,
) -> List[KeyPrint]:
    """The profiles of every key of a shape (degenerate keys are left out).

    Args:
        keys: (frame, packed shape) per key.
        grays: each key frame's grey working image, in the same order.
        closed: whether the shape is closed.
        scale: (sx, sy) working px per plate px.
        params: settings.
    """
    out: List[KeyPrint] = []
    for (frame, packed), gray in zip(keys, grays):
        packed = np.asarray(packed, dtype=np.float64)
        model = make_edge_model(gray, packed, closed, scale, params)
        if model is None:
            continue
        rows = np.hstack([packed[:, 0], packed[:, 1] - packed[:, 0], packed[:, 2] - packed[:, 0]])
        outline = make_outline(gray, rows, closed, scale, params.outline)
        out.append(KeyPrint(frame, packed, model, EdgeFitter(model, params), outline))
    return out


def snap_frame(
    prints: Sequence[KeyPrint],
    gray: np.ndarray,
    moves: Sequence[np.ndarray],
    estimate: Optional[Tuple[int, np.ndarray]],
    scale: Tuple[float, float],
    params: SnapParams = DEFAULT_SNAP,
) -> Optional[SnapResult]:
    """The best snapped shape on one frame, from every key's print and the propagated estimate.

    Every key's print is moved onto the frame, its affine refined on its outline, and
    snapped, best-matching first (the same print drawn on several keys gives several starts);
    a candidate within ``duplicate_px`` of one already tried is skipped.

    Args:
        prints: ``make_key_prints`` of the shape.
        gray: the frame's grey working image, Shape: (h, w) uint8 or float32.
        moves: per print, the affine map (2, 3) from its key frame onto this frame.
        estimate: (index into ``prints`` of the key it was carried from, packed shape) of the
            propagated estimate, or None.
        scale: (sx, sy) working px per plate px.
        params: settings.

    Returns:
        The lowest-cost snapped candidate, or None without prints.
    """
    candidates: List[Tuple[int, np.ndarray]] = []
    if estimate is not None:
        candidates.append((estimate[0], np.asarray(estimate[1], dtype=np.float64)))
    for i, (key, move) in enumerate(zip(prints, moves)):
        start = np.asarray(move, dtype=np.float64)
        if key.outline is not None:
            fit = fit_outline(key.outline, gray, start, start, key.packed[:, 0], scale, params.outline)
            if fit is not None:
                start = fit.matrix
        candidates.append((i, apply_affine(start, key.packed)))
    tried: List[np.ndarray] = []
    ranked: List[Tuple[float, int, np.ndarray]] = []
    for i, start_packed in candidates:
        centres = start_packed[:, 0]
        if any(float(np.linalg.norm(centres - t, axis=1).mean()) < params.duplicate_px for t in tried):
            continue
        tried.append(centres)
        ranked.append((start_cost(prints[i].model, gray, start_packed, scale, params), i, start_packed))
    best: Optional[SnapResult] = None
    for _, i, start_packed in sorted(ranked, key=lambda item: item[0]):
        key = prints[i]
        res = snap_shape(key.model, gray, start_packed, scale, params, key.fitter)
        if best is None or res.cost < best.cost:
            best = res
        if best.cost <= params.good_cost:
            break
    return best
