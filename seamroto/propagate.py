"""Carry keyed roto shapes through a shot with motion, so every frame is animated and keys hold.

Each shape is carried one frame at a time, forward from each key and backward from each key.
A step fits the motion of the shape's own region (flow samples inside it that pass a
forward-backward round trip) with a robust affine map, then adds the local non-affine part
of the flow near each point. Fitting the region instead of reading the flow at each point
matters because roto points sit on edges, where dense flow mixes foreground and background,
and tangent handles often lie off the object altogether. Every control point, both tangent
handles and the feather point with its handles are carried as absolute positions.

Between two keys the forward and backward propagations cross-fade linearly in time, so the
result equals each key on its frame. Where a step fails (the round trip disagrees, the region
is occluded or leaves the frame) that chain stops; frames it can no longer cover use the other
direction alone, or are interpolated between the nearest covered frames, and are flagged.
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
from seamroto.flowfield import FlowField, FlowProvider
from seamroto.progress import NullProgress, Progress

logger = logging.getLogger(__name__)

#: Absolute positions carried per control point: centre, left, right, feather, feather left/right.
SLOTS = 6
SAMPLES_PER_SEGMENT = 12


@dataclass(frozen=True)
class PropagationParams:
    """Settings of one propagation step.

    Attributes:
        fb_max_px: a region sample whose forward-then-backward round trip misses by more than
            this is not trusted (occluded, or the flow is wrong there).
        min_consistent: a step fails when fewer of the region's samples than this fraction
            pass the round trip (the shape is occluded, swapped or left the frame).
        min_samples: fewest trusted samples an affine fit accepts.
        ransac_px: inlier distance of the robust affine fit.
        target_samples: about how many flow samples a region gets (the grid step adapts).
        edge_margin_px: samples closer than this to the region's outline are skipped, because
            flow at a motion boundary belongs to both sides.
        open_band_px: half-width of the region around an open shape (a seam line).
        residual_sigma_px: reach of the local correction around each point; 0 = affine only.
        residual_prior: weight that pulls the correction to 0 where few samples are near.
    """

    fb_max_px: float = 1.0
    min_consistent: float = 0.5
    min_samples: int = 12
    ransac_px: float = 1.0
    target_samples: int = 1500
    edge_margin_px: float = 3.0
    open_band_px: float = 6.0
    residual_sigma_px: float = 12.0
    residual_prior: float = 4.0


@dataclass(frozen=True)
class StepResult:
    """One frame step of one shape: carried points and whether the step can be trusted.

    Attributes:
        points: Shape: (M, 2) float64, _img space.
        reliable: False when too few region samples passed the round trip or no fit was found.
        consistent: fraction of region samples that passed the round trip.
    """

    points: np.ndarray
    reliable: bool
    consistent: float


@dataclass(frozen=True)
class ShapeMotion:
    """A shape animated on every frame, and what could not be trusted.

    Attributes:
        shape: the shape keyed on every frame of the range (its keys unchanged).
        flagged: frames where a direction was missing (one direction alone, interpolation or
            a held pose), worth a look by the artist.
        failed: frames where a propagation step failed, with the direction ("forward" or
            "backward") of each failure.
    """

    shape: RotoShape
    flagged: Tuple[int, ...] = ()
    failed: Tuple[Tuple[int, str], ...] = ()


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
    """Control points (relative handles) from ``pack_points`` positions."""
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


# -------------------------------------------------------------------- one step


def region_samples(packed: np.ndarray, closed: bool, params: PropagationParams) -> np.ndarray:
    """Grid points inside a shape's region (a band around an open shape), away from its edge.

    Returns:
        Shape: (K, 2) float64, _img space (pixel centres of the sampling grid).
    """
    poly = sample_bezier(_rows(packed), closed, SAMPLES_PER_SEGMENT)
    if len(poly) == 0 or not np.isfinite(poly).all():
        return np.zeros((0, 2))
    band = 0.0 if closed and len(poly) >= 3 else params.open_band_px
    lo = poly.min(axis=0) - band - 1.0
    hi = poly.max(axis=0) + band + 1.0
    if closed and len(poly) >= 3:
        area = max(float(abs(cv2.contourArea(poly.astype(np.float32)))), 1.0)
    else:
        area = max(float(np.linalg.norm(np.diff(poly, axis=0), axis=1).sum()) * 2.0 * band, 1.0)
    step = max(1.0, float(np.sqrt(area / params.target_samples)))
    size = np.ceil((hi - lo) / step).astype(int) + 1
    mask = np.zeros((int(size[1]), int(size[0])), np.uint8)
    grid_poly = np.round((poly - lo) / step * 16.0).astype(np.int32).reshape(-1, 1, 2)
    if band == 0.0:
        cv2.fillPoly(mask, [grid_poly], 1, lineType=cv2.LINE_8, shift=4)
        margin = int(round(params.edge_margin_px / step))
        if margin > 0:
            eroded = cv2.erode(mask, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8))
            if int(eroded.sum()) >= params.min_samples:
                mask = eroded
    else:
        thickness = max(1, int(round(2.0 * band / step)))
        cv2.polylines(mask, [grid_poly], False, 1, thickness=thickness, shift=4)
    ys, xs = np.nonzero(mask)
    return np.column_stack([xs, ys]).astype(np.float64) * step + lo


def step_shape(
    packed: np.ndarray, closed: bool, ahead: FlowField, back: FlowField, params: PropagationParams
) -> StepResult:
    """Carry a shape's points from one frame to its neighbour.

    Args:
        packed: Shape: (N, 6, 2), ``pack_points`` layout, on the source frame.
        closed: whether the shape is closed (else its region is a band around it).
        ahead: field from the source frame to the neighbour.
        back: field from the neighbour to the source frame (the round-trip check).
        params: step settings.

    Returns:
        The carried points (Shape: (N * 6, 2)) with the step's reliability.
    """
    pts = packed.reshape(-1, 2)
    samples = region_samples(packed, closed, params)
    if len(samples) < params.min_samples:
        samples = np.vstack([samples, sample_bezier(_rows(packed), closed, SAMPLES_PER_SEGMENT)])
    d = ahead.sample(samples)
    landed = samples + d
    trip = d + back.sample(landed)
    err = np.linalg.norm(trip, axis=1)
    good = np.isfinite(err) & (err <= params.fb_max_px)
    consistent = float(good.mean()) if len(good) else 0.0
    src, dst = samples[good], landed[good]
    if len(src) < params.min_samples:
        return StepResult(pts.copy(), False, consistent)
    matrix, inliers = cv2.estimateAffine2D(
        src.astype(np.float32), dst.astype(np.float32), method=cv2.RANSAC,
        ransacReprojThreshold=params.ransac_px, refineIters=10,
    )
    if matrix is None or not np.isfinite(matrix).all():
        return StepResult(pts.copy(), False, consistent)
    a = np.asarray(matrix, dtype=np.float64)
    moved = pts @ a[:, :2].T + a[:, 2]
    if params.residual_sigma_px > 0:
        residual = dst - (src @ a[:, :2].T + a[:, 2])
        d2 = ((pts[:, None, :] - src[None, :, :]) ** 2).sum(axis=2)
        w = np.exp(-d2 / (2.0 * params.residual_sigma_px**2))
        moved += (w @ residual) / (w.sum(axis=1, keepdims=True) + params.residual_prior)
    reliable = consistent >= params.min_consistent and bool(np.isfinite(moved).all())
    return StepResult(moved, reliable, consistent)


# -------------------------------------------------------------------- chains and blending


@dataclass
class _Chain:
    """One direction of propagation from a key, over the frames up to the next key (or the end)."""

    start: int
    stop: int  # inclusive, the far end of the span
    step: int  # +1 forward, -1 backward
    closed: bool
    positions: Dict[int, np.ndarray] = field(default_factory=dict)
    failed_at: Optional[int] = None

    @property
    def last_valid(self) -> int:
        """The farthest frame this chain reached."""
        return max(self.positions) if self.step > 0 else min(self.positions)

    def covers(self, frame: int) -> bool:
        """True when the chain reached ``frame``."""
        return frame in self.positions


def _chains(keys: Sequence[int], first: int, last: int, closed: bool, step: int) -> List[_Chain]:
    out = []
    for i, k in enumerate(keys):
        if step > 0:
            stop = keys[i + 1] if i + 1 < len(keys) else last
        else:
            stop = keys[i - 1] if i > 0 else first
        out.append(_Chain(k, stop, step, closed))
    return out


def _blend_shape(
    shape: RotoShape, first: int, last: int, fwd: Sequence[_Chain], bwd: Sequence[_Chain], keep_ft: bool
) -> ShapeMotion:
    """Cross-fade the chains of one shape into a key on every frame (see the module docstring)."""
    keys = shape.key_frames
    packed_keys = {k: pack_points(shape.keys[k]) for k in keys}
    result: Dict[int, np.ndarray] = dict(packed_keys)
    flagged: List[int] = []

    def fill(lo: int, hi: int, src_lo: int, src_hi: int) -> None:
        """Interpolate frames lo..hi linearly between result[src_lo] and result[src_hi]."""
        for t in range(lo, hi + 1):
            w = (t - src_lo) / float(src_hi - src_lo) if src_hi != src_lo else 0.0
            result[t] = (1.0 - w) * result[src_lo] + w * result[src_hi]
            flagged.append(t)

    for i in range(len(keys) - 1):
        a, b = keys[i], keys[i + 1]
        f, g = fwd[i], bwd[i + 1]
        vf, vb = f.last_valid, g.last_valid
        lo, hi = max(a, vb), min(b, vf)
        for t in range(a + 1, b):
            if f.covers(t) and g.covers(t):
                w = 0.5 if hi == lo else (t - lo) / float(hi - lo)
                result[t] = (1.0 - w) * f.positions[t] + w * g.positions[t]
            elif f.covers(t):
                result[t] = f.positions[t]
                flagged.append(t)
            elif g.covers(t):
                result[t] = g.positions[t]
                flagged.append(t)
        if vf + 1 < vb:
            fill(vf + 1, vb - 1, vf, vb)
    head = bwd[0]
    for t in range(head.last_valid, keys[0]):
        result[t] = head.positions[t]
    if head.last_valid > first:
        fill(first, head.last_valid - 1, head.last_valid, head.last_valid)
    tail = fwd[-1]
    for t in range(keys[-1] + 1, tail.last_valid + 1):
        result[t] = tail.positions[t]
    if tail.last_valid < last:
        fill(tail.last_valid + 1, last, tail.last_valid, tail.last_valid)
    new_keys = {t: unpack_points(result[t], keep_ft) for t in range(first, last + 1)}
    for k in keys:
        new_keys[k] = tuple(shape.keys[k])  # bit-exact keys, whatever the arithmetic did
    failed = [(c.failed_at, "forward") for c in fwd if c.failed_at is not None]
    failed += [(c.failed_at, "backward") for c in bwd if c.failed_at is not None]
    return ShapeMotion(
        replace(shape, keys=new_keys),
        tuple(sorted(set(flagged) - set(keys))),
        tuple(sorted(failed)),
    )


def check_keys_in_range(shapes: Sequence[RotoShape], first: int, last: int, path: Optional[str] = None) -> None:
    """Every key of every shape must lie on a plate frame.

    Raises:
        KeyRangeError: names the shapes and frames outside ``first..last``.
    """
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
    params: PropagationParams = PropagationParams(),
    progress: Optional[Progress] = None,
) -> List[ShapeMotion]:
    """Animate keyed shapes over ``first..last`` with the provider's motion.

    Flow for each frame pair is fetched once and shared by every shape (forward pass, then
    backward pass); a shape keyed once is carried both ways from its key.

    Args:
        shapes: shapes with at least one key each, every key inside ``first..last``.
        first: first frame to animate.
        last: last frame to animate.
        provider: the motion between neighbouring frames.
        params: step settings.
        progress: told about each frame pair; cancelling raises ``CancelledError``.

    Returns:
        One ``ShapeMotion`` per shape, in order.

    Raises:
        KeyRangeError: a key lies outside ``first..last`` or a shape has no key.
        CancelledError: ``progress`` was cancelled.
    """
    sink = progress if progress is not None else NullProgress()
    for s in shapes:
        if not s.keys:
            raise KeyRangeError(f"shape {s.name!r} has no key; key it on at least one frame")
    check_keys_in_range(shapes, first, last)
    fwd = [_chains(s.key_frames, first, last, s.closed, +1) for s in shapes]
    bwd = [_chains(s.key_frames, first, last, s.closed, -1) for s in shapes]
    for s, fc, bc in zip(shapes, fwd, bwd):
        for c in fc + bc:
            c.positions[c.start] = pack_points(s.keys[c.start])
    total = 2 * (last - first)
    done = 0
    for direction, all_chains in ((+1, fwd), (-1, bwd)):
        frames = range(first, last) if direction > 0 else range(last, first, -1)
        for src in frames:
            if sink.cancelled:
                raise CancelledError("Motion2Roto was cancelled; nothing was written", frame=src)
            dst = src + direction
            active = [_active(chains, src, direction) for chains in all_chains]
            if any(c is not None for c in active):
                ahead, back = provider.flow(src, dst), provider.flow(dst, src)
                for chain in active:
                    if chain is None:
                        continue
                    current = chain.positions[src]
                    res = step_shape(current, chain.closed, ahead, back, params)
                    if res.reliable:
                        chain.positions[dst] = res.points.reshape(current.shape)
                    else:
                        chain.failed_at = dst
                        logger.debug("step %d -> %d failed (%.0f%% consistent)", src, dst, 100 * res.consistent)
            done += 1
            sink.update(done, total, f"{'forward' if direction > 0 else 'backward'} {src} -> {dst}")
    out = []
    for s, fc, bc in zip(shapes, fwd, bwd):
        keep_ft = any(p.feather_left is not None or p.feather_right is not None for k in s.keys.values() for p in k)
        motion = _blend_shape(s, first, last, fc, bc, keep_ft)
        if motion.flagged:
            logger.info("shape %s: %d frame(s) flagged for review", s.name, len(motion.flagged))
        out.append(motion)
    return out


def _active(chains: Sequence[_Chain], src: int, direction: int) -> Optional[_Chain]:
    """The chain that steps from ``src`` in ``direction``, if it is still alive there."""
    for c in chains:
        lo, hi = (c.start, c.stop) if direction > 0 else (c.stop, c.start)
        inside = lo <= src < hi if direction > 0 else lo < src <= hi
        if inside:
            return c if c.failed_at is None and src in c.positions else None
    return None


def flagged_frames(motions: Sequence[ShapeMotion]) -> Mapping[int, List[str]]:
    """Frame -> names of the shapes flagged there, in frame order."""
    out: Dict[int, List[str]] = {}
    for m in motions:
        for f in m.flagged:
            out.setdefault(f, []).append(m.shape.name)
    return dict(sorted(out.items()))
