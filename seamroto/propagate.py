"""Carry keyed roto shapes through a shot with motion, so every frame is animated and keys hold.

Each shape is carried forward from each key and backward from each key. A frame's position is
measured *from an anchor* (the key, or a confidently tracked frame at most ``anchor_span``
frames back) rather than chained frame to frame, so small flow errors do not pile up over a
span. A measurement fits the motion of the shape's own region (its inside and a band around
its outline) with a robust affine map, using only flow samples that survive a
forward-backward round trip, then adds the local non-affine part of the flow near each point.
Fitting a region instead of reading the flow at each point matters because roto points sit
on edges, where dense flow mixes foreground and background, and tangent handles often lie
off the object. Every control point, both tangent handles and the feather point with its
handles are carried as absolute positions.

With the frames at hand (optical flow), each measurement is then refined on the shape's own
outline (``seamroto.outline``): short grey profiles across the outline on the anchor frame are
found again along the moved normals, and the affine that explains them replaces the flow's,
which on smooth skin is only as good as what the flow filled in from around. A thin shape (a
seam stroke, a narrow band) cannot tell from its outline how far it slid along itself; it
leans there on the closed shape around it that is keyed on the same frames (the face).

A replacement piece (a shape whose keys differ by more than a motion: a stop-motion mouth is
another print on every frame) has no motion to follow. With the frames at hand its every
non-key frame is found again in the image instead (``seamroto.snap``): each key's print, moved
with the shape that holds the piece (the face), and the propagated estimate are snapped onto
the frame's edges and the best match is kept.

Between two keys the two directions cross-fade linearly in time, so the result equals each
key on its frame. Each direction's weight also falls with its round-trip consistency,
relative to what is normal for that shape: where a blink, a replacement piece or an
occluder breaks the flow, the other direction takes over, and frames where neither can be
trusted are interpolated between the nearest trusted frames and flagged for review.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

from seamroto.curves import sample_bezier
from seamroto.datamodel import ControlPoint, RotoShape
from seamroto.errors import CancelledError, KeyRangeError
from seamroto.flowfield import FlowField, FlowProvider, FrameSource
from seamroto.outline import DEFAULT_OUTLINE, Outline, OutlineParams, fit_outline, make_outline
from seamroto.progress import NullProgress, Progress
from seamroto.snap import (
    DEFAULT_REPLACEMENT_TEST,
    DEFAULT_SNAP,
    KeyPrint,
    ReplacementTest,
    SnapParams,
    changes_shape,
    fit_affine,
    make_key_prints,
    snap_frame,
)

logger = logging.getLogger(__name__)

#: Absolute positions carried per control point: centre, left, right, feather, feather left/right.
SLOTS = 6
SAMPLES_PER_SEGMENT = 12
#: Consistency percentile taken as "normal" for a shape (its baseline).
BASELINE_PERCENTILE = 75.0
IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
#: A thin shape leans on a closed one that holds this share of it (within the slack, px).
CONTAINER_SHARE = 0.8
CONTAINER_SLACK_PX = 2.0
#: A closed shape narrower than this part of its length is a band (it leans on a container).
THIN_ASPECT = 0.2
#: Grey frames kept converted to float (an anchor and the frames around it).
FLOAT_FRAMES_KEPT = 4


@dataclass(frozen=True)
class PropagationParams:
    """Settings of Motion2Roto's propagation (distances in plate pixels).

    Attributes:
        fb_max_px: a region sample whose forward-then-backward round trip misses by more than
            this is not trusted (occluded, or the flow is wrong there).
        min_samples: fewest trusted samples an affine fit accepts.
        ransac_px: inlier distance of the robust affine fit.
        target_samples: about how many flow samples a region gets (the grid step adapts).
        band_px: half-width of the band around the outline added to the region (both sides),
            because the outline's own edge is usually the best-textured part of a shape.
        residual_sigma_px: reach of the local correction around each point; 0 = affine only.
        residual_prior: weight that pulls the correction to 0 where few samples are near.
        anchor_span: frames measured from one anchor before a confident frame becomes the
            next anchor (long spans from a single key).
        trust_low: relative consistency (to the shape's baseline) at and below which a
            direction gets no weight.
        trust_full: relative consistency from which a direction gets its full weight.
        outline: settings of the outline matching (``seamroto.outline``).
        match_outlines: refine each measurement by matching the shape's outline on the
            frames (when the frames are given).
        replacement_shapes: names of the shapes to find again on every frame's edges instead
            of following motion (``seamroto.snap``); None decides from each shape's keys
            (``replacement_test``), an empty tuple turns it off. Needs the frames.
        replacement_test: when a shape's keys make it a replacement piece.
        snap: settings of the edge snap.
        snap_review_cost: a snapped frame whose profile cost is above this is flagged for
            review (0 = a perfect match; ``snap.cost_cap`` = nothing found).
    """

    fb_max_px: float = 1.0
    min_samples: int = 12
    ransac_px: float = 1.0
    target_samples: int = 1500
    band_px: float = 12.0
    residual_sigma_px: float = 12.0
    residual_prior: float = 4.0
    anchor_span: int = 12
    trust_low: float = 0.5
    trust_full: float = 0.85
    outline: OutlineParams = DEFAULT_OUTLINE
    match_outlines: bool = True
    replacement_shapes: Optional[Tuple[str, ...]] = None
    replacement_test: ReplacementTest = DEFAULT_REPLACEMENT_TEST
    snap: SnapParams = DEFAULT_SNAP
    snap_review_cost: float = 1.0


DEFAULT_PARAMS = PropagationParams()


@dataclass(frozen=True)
class StepResult:
    """One measurement of a shape on a frame, from an anchor frame.

    Attributes:
        points: Shape: (M, 2) float64, _img space.
        consistent: fraction of region samples that passed the round trip (0 when no fit).
        matrix: the region's affine motion from the anchor (2, 3), plate px; None when no fit.
    """

    points: np.ndarray
    consistent: float
    matrix: Optional[np.ndarray] = None


@dataclass(frozen=True)
class ShapeMotion:
    """A shape animated on every frame, and which frames deserve a look.

    Attributes:
        shape: the shape keyed on every frame of the range (its own keys unchanged).
        keys: the frames the source shape was keyed on.
        flagged: frames where a direction was dropped or none could be trusted (the pose was
            interpolated or held there).
        interpolated: the flagged frames that no direction covered.
        trust: frame -> (forward, backward) trust in [0, 1]; -1 where a direction does not
            reach the frame.
    """

    shape: RotoShape
    keys: Tuple[int, ...] = ()
    flagged: Tuple[int, ...] = ()
    interpolated: Tuple[int, ...] = ()
    trust: Mapping[int, Tuple[float, float]] = field(default_factory=dict)


# -------------------------------------------------------------------- packing points


def pack_points(points: Sequence[ControlPoint]) -> np.ndarray:
    """Absolute positions of every slot of every control point.

    Shape: (N, 6, 2) float64 [centre, left, right, feather, feather left, feather right].
    """
    out = np.empty((len(points), SLOTS, 2))
    for i, p in enumerate(points):
        fl, fr = p.feather_tangents
        fx, fy = p.x + p.feather[0], p.y + p.feather[1]
        out[i] = [
            (p.x, p.y),
            p.left_abs,
            p.right_abs,
            (fx, fy),
            (fx + fl[0], fy + fl[1]),
            (fx + fr[0], fy + fr[1]),
        ]
    return out


def unpack_points(packed: np.ndarray, keep_feather_tangents: bool) -> Tuple[ControlPoint, ...]:
    """Control points (relative handles) from ``pack_points`` positions.

    Args:
        packed: Shape: (N, 6, 2).
        keep_feather_tangents: write the feather handles; False leaves them None (equal to
            the main handles), as the source shape had them.
    """
    out = []
    for row in np.asarray(packed, dtype=np.float64):
        c, left, right, fp, fl, fr = row
        feather_left: Optional[Tuple[float, float]] = None
        feather_right: Optional[Tuple[float, float]] = None
        if keep_feather_tangents:
            feather_left = (float(fl[0] - fp[0]), float(fl[1] - fp[1]))
            feather_right = (float(fr[0] - fp[0]), float(fr[1] - fp[1]))
        out.append(
            ControlPoint(
                float(c[0]),
                float(c[1]),
                (float(left[0] - c[0]), float(left[1] - c[1])),
                (float(right[0] - c[0]), float(right[1] - c[1])),
                (float(fp[0] - c[0]), float(fp[1] - c[1])),
                feather_left,
                feather_right,
            )
        )
    return tuple(out)


def _rows(packed: np.ndarray) -> np.ndarray:
    """``curves`` layout [x, y, lx, ly, rx, ry] (relative handles) of packed points."""
    c = packed[:, 0]
    return np.hstack([c, packed[:, 1] - c, packed[:, 2] - c])


# -------------------------------------------------------------------- one measurement


def region_samples(packed: np.ndarray, closed: bool, params: PropagationParams) -> np.ndarray:
    """Grid points inside a shape and in a band around its outline (an open shape: the band).

    Returns:
        Shape: (K, 2) float64, _img space.
    """
    poly = sample_bezier(_rows(packed), closed, SAMPLES_PER_SEGMENT)
    if len(poly) == 0 or not np.isfinite(poly).all():
        return np.zeros((0, 2))
    fill = closed and len(poly) >= 3
    lo = poly.min(axis=0) - params.band_px - 1.0
    hi = poly.max(axis=0) + params.band_px + 1.0
    length = float(np.linalg.norm(np.diff(poly, axis=0), axis=1).sum())
    area = 2.0 * params.band_px * length
    if fill:
        area += float(abs(cv2.contourArea(poly.astype(np.float32))))
    step = max(1.0, float(np.sqrt(max(area, 1.0) / params.target_samples)))
    size = np.ceil((hi - lo) / step).astype(int) + 1
    mask = np.zeros((int(size[1]), int(size[0])), np.uint8)
    grid_poly = np.round((poly - lo) / step * 16.0).astype(np.int32).reshape(-1, 1, 2)
    if fill:
        cv2.fillPoly(mask, [grid_poly], 1, lineType=cv2.LINE_8, shift=4)
    thickness = max(1, int(round(2.0 * params.band_px / step)))
    cv2.polylines(mask, [grid_poly], closed, 1, thickness=thickness, shift=4)
    ys, xs = np.nonzero(mask)
    return np.column_stack([xs, ys]).astype(np.float64) * step + lo


def measure_shape(
    packed: np.ndarray, closed: bool, ahead: FlowField, back: FlowField, params: PropagationParams
) -> StepResult:
    """Carry a shape's points from an anchor frame to another frame with one pair of fields.

    Args:
        packed: Shape: (N, 6, 2), ``pack_points`` layout, on the anchor frame.
        closed: whether the shape is closed.
        ahead: field from the anchor frame to the target frame.
        back: field from the target frame back to the anchor (the round-trip check).
        params: settings.

    Returns:
        The carried points (Shape: (N * 6, 2)) and the round-trip consistency.
    """
    pts = packed.reshape(-1, 2)
    samples = region_samples(packed, closed, params)
    d = ahead.sample(samples)
    landed = samples + d
    err = np.linalg.norm(d + back.sample(landed), axis=1)
    good = np.isfinite(err) & (err <= params.fb_max_px)
    consistent = float(good.mean()) if len(good) else 0.0
    src, dst = samples[good], landed[good]
    if len(src) < params.min_samples:
        return StepResult(pts.copy(), 0.0)
    matrix, _ = cv2.estimateAffine2D(
        src.astype(np.float32), dst.astype(np.float32), method=cv2.RANSAC,
        ransacReprojThreshold=params.ransac_px, refineIters=10,
    )
    if matrix is None or not np.isfinite(matrix).all():
        return StepResult(pts.copy(), 0.0)
    a = np.asarray(matrix, dtype=np.float64)
    moved = pts @ a[:, :2].T + a[:, 2]
    if params.residual_sigma_px > 0:
        residual = dst - (src @ a[:, :2].T + a[:, 2])
        d2 = ((pts[:, None, :] - src[None, :, :]) ** 2).sum(axis=2)
        w = np.exp(-d2 / (2.0 * params.residual_sigma_px**2))
        moved += (w @ residual) / (w.sum(axis=1, keepdims=True) + params.residual_prior)
    if not np.isfinite(moved).all():
        return StepResult(pts.copy(), 0.0)
    return StepResult(moved, consistent, a)


# -------------------------------------------------------------------- one direction


@dataclass
class _Track:
    """One direction of one shape from one key over its span, with a moving anchor."""

    key: int
    stop: int  # the far end of the span, inclusive (before the next key, or the end of the range)
    step: int  # +1 forward, -1 backward
    anchor: int
    anchor_points: np.ndarray
    anchor_quality: float = -1.0
    estimates: Dict[int, np.ndarray] = field(default_factory=dict)
    consistency: Dict[int, float] = field(default_factory=dict)
    motion: Dict[int, Tuple[int, np.ndarray]] = field(default_factory=dict)  # frame -> (anchor, affine)
    outline: Optional[Outline] = None  # of the current anchor, made when first needed

    def covers(self, frame: int) -> bool:
        """True when ``frame`` lies in this track's span (the key excluded)."""
        lo, hi = sorted((self.key, self.stop))
        return lo <= frame <= hi and frame != self.key


def _tracks(shape: RotoShape, first: int, last: int, step: int) -> List[_Track]:
    """One track per key in direction ``step``, over the frames up to (not onto) the next key."""
    keys = shape.key_frames
    out = []
    for i, k in enumerate(keys):
        if step > 0:
            stop = keys[i + 1] - 1 if i + 1 < len(keys) else last
        else:
            stop = keys[i - 1] + 1 if i > 0 else first
        if (stop - k) * step > 0:
            out.append(_Track(k, stop, step, k, pack_points(shape.keys[k])))
    return out


class _Frames:
    """The grey working frames (float32, converted once each) of a ``FrameSource``."""

    def __init__(self, source: FrameSource) -> None:
        self.source = source
        self.scale = source.scale
        self._last: Dict[int, np.ndarray] = {}

    def gray(self, frame: int) -> np.ndarray:
        hit = self._last.get(frame)
        if hit is None:
            if len(self._last) >= FLOAT_FRAMES_KEPT:
                self._last.pop(next(iter(self._last)))
            hit = self._last[frame] = np.asarray(self.source.gray(frame), np.float32)
        return hit


def _advance(
    track: _Track,
    frame: int,
    closed: bool,
    provider: FlowProvider,
    params: PropagationParams,
    frames: Optional[_Frames] = None,
    container: Optional[_Track] = None,
) -> None:
    """Measure ``frame`` from the track's anchor; a confident frame far enough on re-anchors.

    With frames, the flow's estimate is refined by matching the shape's outline; a thin
    shape (an open stroke, a narrow band) leans on the motion of the closed shape around it
    (``container``) where its own outline says nothing (along itself).
    """
    res = measure_shape(
        track.anchor_points, closed, provider.flow(track.anchor, frame), provider.flow(frame, track.anchor),
        params,
    )
    if frames is not None and res.matrix is not None:
        res = _refined(track, frame, closed, res, frames, container, params)
    shaped = res.points.reshape(track.anchor_points.shape)
    track.estimates[frame] = shaped
    track.consistency[frame] = res.consistent
    if res.matrix is not None:
        track.motion[frame] = (track.anchor, res.matrix)
    if abs(frame - track.anchor) == 1:
        track.anchor_quality = res.consistent
    if abs(frame - track.anchor) >= params.anchor_span and res.consistent >= params.trust_full * max(
        track.anchor_quality, 0.0
    ):
        track.anchor, track.anchor_points, track.outline = frame, shaped, None


def _refined(
    track: _Track,
    frame: int,
    closed: bool,
    res: StepResult,
    frames: _Frames,
    container: Optional[_Track],
    params: PropagationParams,
) -> StepResult:
    """``res`` with its affine refined on the shape's outline (unchanged when that fails).

    The fit starts where the last two frames' motion puts the shape (else at the flow's
    estimate) and leans on the flow's estimate, or on the container's motion for a thin
    shape. The flow's local non-affine part is not kept: on smooth skin it is mostly noise.
    The round-trip consistency stays the flow's (it is what tells blinks and swaps apart).
    """
    assert res.matrix is not None
    pts = track.anchor_points.reshape(-1, 2)
    if track.outline is None:
        track.outline = make_outline(frames.gray(track.anchor), _rows(track.anchor_points), closed, frames.scale,
                                     params.outline, stroke_ends=container is None)
    if track.outline is None:
        return res
    start = _predicted(track, frame)
    if start is None:
        start = res.matrix
    prior = res.matrix
    if container is not None:
        held = container.motion.get(frame)
        if held is not None and held[0] == track.anchor:
            prior = held[1]
    fit = fit_outline(track.outline, frames.gray(frame), start, prior, pts, frames.scale, params.outline)
    if fit is None:
        return res
    moved = pts @ fit.matrix[:, :2].T + fit.matrix[:, 2]
    if not np.isfinite(moved).all():
        return res
    return StepResult(moved, res.consistent, fit.matrix)


def _predicted(track: _Track, frame: int) -> Optional[np.ndarray]:
    """The region's affine on ``frame`` from the two frames before it (constant velocity), or None."""
    prev = track.motion.get(frame - track.step)
    if prev is None or prev[0] != track.anchor:
        return None
    if frame - 2 * track.step == track.anchor:
        return np.asarray(2.0 * prev[1] - IDENTITY)
    before = track.motion.get(frame - 2 * track.step)
    if before is None or before[0] != track.anchor:
        return np.asarray(prev[1])
    return np.asarray(2.0 * prev[1] - before[1])


def _is_thin(poly: np.ndarray) -> bool:
    """True for a stroke-like outline (its narrowest extent a small part of its length)."""
    if len(poly) < 3:
        return True
    (_, _), (w, h), _ = cv2.minAreaRect(poly.astype(np.float32))
    return min(w, h) < THIN_ASPECT * max(w, h, 1e-6)


def _containers(
    shapes: Sequence[RotoShape], leaning: Optional[Sequence[bool]] = None, same_keys: bool = True,
    excluded: Sequence[bool] = (),
) -> List[Optional[int]]:
    """The shape each leaning shape (by default: thin ones, open or narrow bands) leans on: None, or an index.

    That is the smallest other closed, not thin (and not ``excluded``) shape, with the same
    keys when ``same_keys``, that holds most of the leaning one on its first key.
    """
    polys = []
    for shape in shapes:
        key = shape.key_frames[0] if shape.keys else None
        polys.append(sample_bezier(_rows(pack_points(shape.keys[key])), shape.closed, SAMPLES_PER_SEGMENT)
                     if key is not None else np.zeros((0, 2)))
    thin = [not shape.closed or _is_thin(poly) for shape, poly in zip(shapes, polys)]
    leans = thin if leaning is None else list(leaning)
    skip = list(excluded) or [False] * len(shapes)
    out: List[Optional[int]] = []
    for i, shape in enumerate(shapes):
        best: Optional[int] = None
        best_area = np.inf
        for j, other in enumerate(shapes):
            if not leans[i] or j == i or thin[j] or skip[j] or not other.closed or len(polys[i]) == 0:
                continue
            if same_keys and other.key_frames != shape.key_frames:
                continue
            contour = polys[j].astype(np.float32).reshape(-1, 1, 2)
            inside = np.mean([cv2.pointPolygonTest(contour, (float(x), float(y)), True) >= -CONTAINER_SLACK_PX
                              for x, y in polys[i]])
            area = abs(float(cv2.contourArea(contour)))
            if inside >= CONTAINER_SHARE and area < best_area:
                best, best_area = j, area
        out.append(best)
    return out


# -------------------------------------------------------------------- blending


def _trust(consistency: float, baseline: float, params: PropagationParams) -> float:
    """Weight in [0, 1] of a measurement, from its consistency relative to the shape's normal."""
    rel = consistency / max(baseline, 1e-6)
    return float(np.clip((rel - params.trust_low) / (params.trust_full - params.trust_low), 0.0, 1.0))


def _blend_shape(
    shape: RotoShape,
    first: int,
    last: int,
    forward: Sequence[_Track],
    backward: Sequence[_Track],
    params: PropagationParams,
) -> ShapeMotion:
    """Cross-fade the two directions of one shape into a pose on every frame."""
    keys = shape.key_frames
    values = [c for t in (*forward, *backward) for c in t.consistency.values()]
    baseline = float(np.percentile(values, BASELINE_PERCENTILE)) if values else 1.0
    fwd = {f: t for t in forward for f in t.estimates}
    bwd = {f: t for t in backward for f in t.estimates}
    trusted: Dict[int, np.ndarray] = {k: pack_points(shape.keys[k]) for k in keys}
    trust: Dict[int, Tuple[float, float]] = {}
    flagged: List[int] = []
    for frame in range(first, last + 1):
        if frame in trusted:
            continue
        ft = fwd.get(frame)
        bt = bwd.get(frame)
        tf = _trust(ft.consistency[frame], baseline, params) if ft is not None else -1.0
        tb = _trust(bt.consistency[frame], baseline, params) if bt is not None else -1.0
        trust[frame] = (tf, tb)
        if ft is not None and bt is not None:
            w = (frame - ft.key) / float(bt.key - ft.key)
            wf, wb = (1.0 - w) * tf, w * tb
            if wf + wb > 0:
                trusted[frame] = (wf * ft.estimates[frame] + wb * bt.estimates[frame]) / (wf + wb)
            if tf == 0.0 or tb == 0.0:
                flagged.append(frame)
        elif ft is not None or bt is not None:
            track, t = (ft, tf) if ft is not None else (bt, tb)
            assert track is not None
            if t > 0:
                trusted[frame] = track.estimates[frame]
            else:
                flagged.append(frame)
    result = dict(trusted)
    known = sorted(trusted)
    interpolated = [f for f in range(first, last + 1) if f not in trusted]
    for frame in interpolated:
        i = int(np.searchsorted(known, frame))
        lo = known[i - 1] if i > 0 else known[i]
        hi = known[i] if i < len(known) else known[-1]
        w = 0.0 if hi == lo else (frame - lo) / float(hi - lo)
        result[frame] = (1.0 - w) * trusted[lo] + w * trusted[hi]
    keep_ft = any(p.feather_left is not None or p.feather_right is not None for k in shape.keys.values() for p in k)
    new_keys = {f: unpack_points(result[f], keep_ft) for f in range(first, last + 1)}
    for k in keys:
        new_keys[k] = tuple(shape.keys[k])  # bit-exact keys, whatever the arithmetic did
    return ShapeMotion(
        replace(shape, keys=new_keys),
        tuple(keys),
        tuple(sorted(set(flagged) | set(interpolated))),
        tuple(interpolated),
        trust,
    )


# -------------------------------------------------------------------- replacement pieces


def replacement_flags(shapes: Sequence[RotoShape], params: PropagationParams = DEFAULT_PARAMS) -> List[bool]:
    """Which shapes are replacement pieces (found on each frame's edges rather than moved).

    The names in ``params.replacement_shapes`` when given, else the shapes whose consecutive
    keys mostly differ by more than a motion (``seamroto.snap.changes_shape``).
    """
    if params.replacement_shapes is not None:
        names = set(params.replacement_shapes)
        return [s.name in names for s in shapes]
    return [changes_shape([pack_points(s.keys[k]) for k in s.key_frames], params.replacement_test) for s in shapes]


def _print_moves(prints: Sequence[KeyPrint], frame: int, holder: Optional[RotoShape], near: int,
                 estimate: np.ndarray) -> List[np.ndarray]:
    """The affine map from each print's key frame onto ``frame``.

    With a holder (the face around a mouth), its motion between the two frames; without,
    the shape's own propagated motion from its nearest key, after centring each print on it.
    """
    if holder is not None:
        now = pack_points(holder.keys[frame]).reshape(-1, 2)
        return [fit_affine(pack_points(holder.keys[p.frame]).reshape(-1, 2), now) for p in prints]
    base = fit_affine(prints[near].packed.reshape(-1, 2), estimate.reshape(-1, 2))
    out = []
    for p in prints:
        shift = prints[near].packed[:, 0].mean(axis=0) - p.packed[:, 0].mean(axis=0)
        out.append(np.column_stack([base[:, :2], base[:, :2] @ shift + base[:, 2]]))
    return out


def _snap_replacements(
    shapes: Sequence[RotoShape],
    motions: List[ShapeMotion],
    swapped: Sequence[bool],
    first: int,
    last: int,
    frames: FrameSource,
    params: PropagationParams,
    sink: Progress,
    done: int,
    total: int,
) -> List[ShapeMotion]:
    """``motions`` with every replacement piece's non-key frames snapped onto the frame's edges.

    A snapped frame whose match stays poor is flagged for review; a frame no print could be
    snapped on keeps its propagated pose (and its flags).
    """
    holders = _containers(shapes, swapped, same_keys=False, excluded=swapped)
    prints: Dict[int, List[KeyPrint]] = {}
    for i, shape in enumerate(shapes):
        if swapped[i]:
            keys = shape.key_frames
            prints[i] = make_key_prints([(k, pack_points(shape.keys[k])) for k in keys],
                                        [frames.gray(k) for k in keys], shape.closed, frames.scale, params.snap)
            logger.info("shape %s: a replacement piece (its keys differ by more than a motion); snapped on "
                        "every frame%s", shape.name,
                        f", moved with {shapes[h].name}" if (h := holders[i]) is not None else "")
    new_keys = {i: dict(motions[i].shape.keys) for i in prints}
    feather_tangents = {i: any(p.feather_left is not None or p.feather_right is not None
                               for k in shapes[i].keys.values() for p in k) for i in prints}
    snapped: Dict[int, List[int]] = {i: [] for i in prints}
    review: Dict[int, List[int]] = {i: [] for i in prints}
    for frame in range(first, last + 1):
        if sink.cancelled:
            raise CancelledError("Motion2Roto was cancelled; nothing was written", frame=frame)
        gray = frames.gray(frame)
        for i, key_prints in prints.items():
            shape = shapes[i]
            if frame in shape.keys or not key_prints:
                continue
            estimate = pack_points(motions[i].shape.keys[frame])
            near = min(range(len(key_prints)), key=lambda j: (abs(key_prints[j].frame - frame), key_prints[j].frame))
            holder = holders[i]
            moves = _print_moves(key_prints, frame, motions[holder].shape if holder is not None else None, near,
                                 estimate)
            res = snap_frame(key_prints, gray, moves, (near, estimate), frames.scale, params.snap)
            if res is None:
                continue
            new_keys[i][frame] = unpack_points(res.packed, feather_tangents[i])
            snapped[i].append(frame)
            if res.cost > params.snap_review_cost:
                review[i].append(frame)
        done += 1
        sink.update(done, total, f"replacement pieces, frame {frame}")
    out = list(motions)
    for i in prints:
        m = motions[i]
        kept = set(m.flagged) - set(snapped[i])
        out[i] = ShapeMotion(
            replace(m.shape, keys=new_keys[i]), m.keys, tuple(sorted(kept | set(review[i]))),
            tuple(f for f in m.interpolated if f not in snapped[i]), m.trust,
        )
        logger.info("shape %s: %d frame(s) snapped, %d flagged for review", shapes[i].name, len(snapped[i]),
                    len(out[i].flagged))
    return out


# -------------------------------------------------------------------- public


def check_keys_in_range(shapes: Sequence[RotoShape], first: int, last: int, path: Optional[str] = None) -> None:
    """Every shape needs a key, and every key must lie on a plate frame.

    Raises:
        KeyRangeError: names the shapes and frames outside ``first..last`` (or without keys).
    """
    empty = [s.name for s in shapes if not s.keys]
    if empty:
        raise KeyRangeError(
            f"shape(s) {', '.join(empty)} have no key; key each shape on at least one frame", path=path
        )
    outside = {s.name: [k for k in s.key_frames if not first <= k <= last] for s in shapes}
    bad = {n: ks for n, ks in outside.items() if ks}
    if bad:
        listing = "; ".join(f"{n}: {', '.join(map(str, ks))}" for n, ks in bad.items())
        frame = next(iter(bad.values()))[0]
        raise KeyRangeError(
            f"roto keys lie outside the plate frames {first}-{last} ({listing}); give plates that "
            "cover every key, or move the keys onto plate frames",
            path=path,
            frame=frame,
        )


def propagate_shapes(
    shapes: Sequence[RotoShape],
    first: int,
    last: int,
    provider: FlowProvider,
    *,
    frames: Optional[FrameSource] = None,
    params: PropagationParams = DEFAULT_PARAMS,
    progress: Optional[Progress] = None,
) -> List[ShapeMotion]:
    """Animate keyed shapes over ``first..last`` with the provider's motion.

    Frames are visited in order (forward pass, then backward pass) and every shape is measured
    on each, so shapes keyed on the same frames share their flow fields. A shape keyed once is
    carried both ways from that key.

    Args:
        shapes: shapes with at least one key each, every key inside ``first..last``.
        first: first frame to animate.
        last: last frame to animate.
        provider: motion between any two frames of the range.
        frames: the grey frames the motion was measured on; with them (and
            ``params.match_outlines``) every measurement is refined on the shape's outline,
            and replacement pieces are snapped onto every frame's edges.
        params: settings.
        progress: told about each frame; cancelling raises ``CancelledError``.

    Returns:
        One ``ShapeMotion`` per shape, in order.

    Raises:
        KeyRangeError: a shape has no key, or a key lies outside ``first..last``.
        CancelledError: ``progress`` was cancelled.
    """
    sink = progress if progress is not None else NullProgress()
    check_keys_in_range(shapes, first, last)
    forward = [_tracks(s, first, last, +1) for s in shapes]
    backward = [_tracks(s, first, last, -1) for s in shapes]
    grays = _Frames(frames) if frames is not None and params.match_outlines else None
    holders = _containers(shapes) if grays is not None else [None] * len(shapes)
    order = sorted(range(len(shapes)), key=lambda i: holders[i] is not None)  # containers first
    swapped = replacement_flags(shapes, params) if frames is not None else [False] * len(shapes)
    total = (3 if any(swapped) else 2) * (last - first + 1)
    done = 0
    for direction, all_tracks in ((+1, forward), (-1, backward)):
        visit = range(first, last + 1) if direction > 0 else range(last, first - 1, -1)
        for frame in visit:
            if sink.cancelled:
                raise CancelledError("Motion2Roto was cancelled; nothing was written", frame=frame)
            for i in order:
                for track in all_tracks[i]:
                    if track.covers(frame):
                        holder = holders[i]
                        container = _same_key(all_tracks[holder], track.key) if holder is not None else None
                        _advance(track, frame, shapes[i].closed, provider, params, grays, container)
            done += 1
            sink.update(done, total, f"{'forward' if direction > 0 else 'backward'} pass, frame {frame}")
    out = []
    for shape, fwd, bwd in zip(shapes, forward, backward):
        motion = _blend_shape(shape, first, last, fwd, bwd, params)
        if motion.flagged:
            logger.info(
                "shape %s: %d frame(s) flagged for review (%d interpolated)",
                shape.name, len(motion.flagged), len(motion.interpolated),
            )
        out.append(motion)
    if frames is not None and any(swapped):
        out = _snap_replacements(shapes, out, swapped, first, last, frames, params, sink, done, total)
    return out


def _same_key(tracks: Sequence[_Track], key: int) -> Optional[_Track]:
    return next((t for t in tracks if t.key == key), None)


def flagged_frames(motions: Sequence[ShapeMotion]) -> Dict[int, List[str]]:
    """Frame -> names of the shapes flagged there, in frame order."""
    out: Dict[int, List[str]] = {}
    for m in motions:
        for f in m.flagged:
            out.setdefault(f, []).append(m.shape.name)
    return dict(sorted(out.items()))
