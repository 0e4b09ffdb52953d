"""Optical flow helpers: sparse LK of landmarks with a forward-backward check, and dense DIS flow.

Both work on 8-bit grayscale in a display-referred space: the caller hands images already in the
model colour space (``colour.to_model_space``), because LK and DIS assume perceptually even steps
and scene-linear values would starve the shadows of gradient.

Coordinates are the project convention (``_img``: origin at the top-left *corner*, y down, pixel
centres at +0.5). OpenCV puts pixel centres on integers, so points are shifted by
``PIXEL_CENTRE`` on the way in and out of ``cv2.calcOpticalFlowPyrLK``. Flow vectors are
displacements and need no shift.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np

from seamroto.errors import ShapeError

logger = logging.getLogger(__name__)

PIXEL_CENTRE = 0.5
LK_WINDOW_PX = 21
LK_MAX_LEVEL = 3
LK_MAX_ITERATIONS = 30
LK_EPSILON = 0.01
FB_MAX_ERROR_PX = 1.0
# Mean absolute intensity residual (0-255 scale) above which a tracked window is not trusted.
LK_MAX_PATCH_ERROR = 40.0
# Region used to normalise gain/offset between frames: point bounding box grown by this much.
NORMALISE_MARGIN_PX = 64
NORMALISED_MEAN = 128.0
NORMALISED_STD = 48.0
DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
REC709_LUMA = (0.2126, 0.7152, 0.0722)
# Mean squared gradient (grey levels^2 per pixel) below which a window is flat: no flow.
APERTURE_MIN_ENERGY = 0.25


@dataclass(frozen=True)
class LKParams:
    """Settings of the pyramidal Lucas-Kanade tracker.

    Attributes:
        window_px: side of the square LK window at each pyramid level.
        max_level: pyramid levels above the base (3 follows ~60 px motions on 2K plates).
        fb_max_error_px: a point whose forward-then-backward track misses its start by more than
            this gets reliability 0 (occluded, swapped or lost).
        max_patch_error: LK's own mean absolute residual (0-255 grey levels) above which a
            point is rejected.
        normalise: match each frame's gain and offset to a fixed mean/std over the points'
            region before tracking, because LK assumes constant brightness and stage lights
            flicker.
    """

    window_px: int = LK_WINDOW_PX
    max_level: int = LK_MAX_LEVEL
    fb_max_error_px: float = FB_MAX_ERROR_PX
    max_patch_error: float = LK_MAX_PATCH_ERROR
    normalise: bool = True


@dataclass(frozen=True)
class PointTrack:
    """Points carried from one frame to the next.

    Attributes:
        points: propagated positions, NaN where the point could not be tracked.
            Shape: (N, 2) float64, _img space.
        reliability: 1 for a perfect forward-backward round trip, falling to 0 at
            ``fb_max_error_px``. Shape: (N,) float64 in [0, 1].
        fb_error_px: forward-backward round-trip error (inf where tracking failed).
            Shape: (N,) float64.
    """

    points: np.ndarray
    reliability: np.ndarray
    fb_error_px: np.ndarray


@dataclass(frozen=True)
class PointFlow:
    """Per-landmark frame-to-frame displacements over a shot, as ``fusion.fuse_tracks`` takes.

    Attributes:
        displacement: for a forward flow, ``displacement[i]`` is the motion of each landmark from
            frame i to i+1, measured from the landmark's position on frame i (last row NaN);
            for a backward flow, the motion from frame i to i-1 (first row NaN).
            Shape: (F, L, 2) float64 px.
        reliability: Shape: (F, L) float64 in [0, 1]; 0 where the displacement is NaN.
        aperture: how well each direction is constrained (the aperture problem: a point on a
            straight contour slides along it): the LK window's structure tensor divided by its
            largest eigenvalue, so the best direction has weight 1 and the direction along an
            edge ~0. None means isotropic. Shape: (F, L, 2, 2) float64, symmetric.
    """

    displacement: np.ndarray
    reliability: np.ndarray
    aperture: Optional[np.ndarray] = None


def to_gray_u8(image: np.ndarray) -> np.ndarray:
    """Grayscale uint8 from an image in the model (display-referred) colour space.

    Args:
        image: (H, W, 3) or (H, W) float in [0, 1], or uint8 already.

    Returns:
        Shape: (H, W) uint8.

    Raises:
        ShapeError: for any other layout.
    """
    if image.ndim == 3 and image.shape[2] >= 3:
        if image.dtype == np.uint8:
            return cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
        rgb = np.asarray(image[..., :3], dtype=np.float32)
        luma = rgb @ np.asarray(REC709_LUMA, dtype=np.float32)
    elif image.ndim == 2:
        if image.dtype == np.uint8:
            return image
        luma = np.asarray(image, dtype=np.float32)
    else:
        raise ShapeError("image", image.shape, "(H, W, 3) or (H, W)")
    return np.clip(luma * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _check_points(points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ShapeError("points", pts.shape, "(N, 2)")
    return pts


def _normalise_pair(
    prev: np.ndarray, nxt: np.ndarray, points: np.ndarray
) -> Tuple[np.ndarray, np.ndarray]:
    """Give both frames the same mean/std over the points' region (flicker compensation)."""
    finite = points[np.isfinite(points).all(axis=1)]
    h, w = prev.shape
    if len(finite):
        x0, y0 = np.floor(finite.min(axis=0) - NORMALISE_MARGIN_PX).astype(int)
        x1, y1 = np.ceil(finite.max(axis=0) + NORMALISE_MARGIN_PX).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    else:
        x0, y0, x1, y1 = 0, 0, w, h
    if x1 - x0 < 2 or y1 - y0 < 2:
        x0, y0, x1, y1 = 0, 0, w, h
    out = []
    for g in (prev, nxt):
        roi = g[y0:y1, x0:x1]
        mean, std = cv2.meanStdDev(roi)
        gain = NORMALISED_STD / max(float(std[0, 0]), 1.0)
        out.append(cv2.convertScaleAbs(g, alpha=gain, beta=NORMALISED_MEAN - gain * mean[0, 0]))
    return out[0], out[1]


def _lk(
    src: np.ndarray, dst: np.ndarray, pts_cv: np.ndarray, params: LKParams
) -> Tuple[np.ndarray, np.ndarray]:
    """One LK pass in OpenCV coordinates; returns (points, ok) with ok False where it failed."""
    n = len(pts_cv)
    if n == 0:
        return np.zeros((0, 2)), np.zeros(0, dtype=bool)
    p0 = pts_cv.astype(np.float32).reshape(-1, 1, 2)
    p1, status, err = cv2.calcOpticalFlowPyrLK(
        src,
        dst,
        p0,
        p0.copy(),
        winSize=(params.window_px, params.window_px),
        maxLevel=params.max_level,
        criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, LK_MAX_ITERATIONS, LK_EPSILON),
    )
    ok = (status.reshape(-1) == 1) & (err.reshape(-1) <= params.max_patch_error)
    out = p1.reshape(-1, 2).astype(np.float64)
    h, w = dst.shape[:2]
    ok &= np.isfinite(out).all(axis=1)
    ok &= (out[:, 0] >= 0) & (out[:, 0] <= w - 1) & (out[:, 1] >= 0) & (out[:, 1] <= h - 1)
    return out, ok


def track_points(
    prev: np.ndarray,
    nxt: np.ndarray,
    points: np.ndarray,
    params: LKParams = LKParams(),
) -> PointTrack:
    """Carry points from ``prev`` to ``nxt`` with pyramidal LK and a forward-backward check.

    Why the check: LK always returns *an* answer; a point that is occluded, swapped (a
    replacement mouth) or leaves the frame comes back somewhere else when tracked backwards, so
    the round-trip error is a cheap, honest reliability.

    Args:
        prev: first image, (H, W) uint8 gray or an image ``to_gray_u8`` accepts.
        nxt: second image, same size.
        points: positions on ``prev``; NaN rows are passed through as NaN.
            Shape: (N, 2), _img space.
        params: tracker settings.

    Returns:
        The propagated points with per-point reliability and round-trip error.

    Raises:
        ShapeError: if the images differ in size or ``points`` is not (N, 2).
    """
    g0, g1 = to_gray_u8(prev), to_gray_u8(nxt)
    if g0.shape != g1.shape:
        raise ShapeError("nxt", g1.shape, g0.shape)
    pts = _check_points(points)
    n = len(pts)
    valid = np.isfinite(pts).all(axis=1)
    if not valid.any():
        return PointTrack(np.full((n, 2), np.nan), np.zeros(n), np.full(n, np.inf))
    x0, y0, x1, y1 = _search_region(pts[valid], g0.shape, params)
    g0, g1 = g0[y0:y1, x0:x1], g1[y0:y1, x0:x1]
    origin = np.array([x0, y0], dtype=np.float64)
    if params.normalise:
        g0, g1 = _normalise_pair(g0, g1, pts - origin)
    start = pts[valid] - origin - PIXEL_CENTRE
    fwd, ok_f = _lk(g0, g1, start, params)
    back, ok_b = _lk(g1, g0, fwd, params)
    return _round_trip(fwd, back, start, ok_f, ok_b, valid, origin + PIXEL_CENTRE, params)


def _search_region(
    points: np.ndarray, shape: Tuple[int, ...], params: LKParams
) -> Tuple[int, int, int, int]:
    """The part of a frame LK can reach from ``points``: (x0, y0, x1, y1), corner-origin px.

    Why: a 2K frame is mostly background; LK's pyramid, the gain normalisation and the search
    only need the points' bounding box grown by the deepest level's reach. The origin is
    aligned to the pyramid's step so every level samples the same pixels as the full frame.
    """
    h, w = shape[:2]
    step = 2 ** params.max_level
    reach = max(NORMALISE_MARGIN_PX, params.window_px * step) + params.window_px
    lo = np.floor(points.min(axis=0) - reach)
    hi = np.ceil(points.max(axis=0) + reach)
    x0 = max(0, int(lo[0]) // step * step)
    y0 = max(0, int(lo[1]) // step * step)
    return x0, y0, min(w, int(hi[0])), min(h, int(hi[1]))


def aperture_matrices(
    gray: np.ndarray, points: np.ndarray, window_px: int = LK_WINDOW_PX
) -> np.ndarray:
    """Normalised structure tensor of the LK window around each point.

    Why: LK's error covariance is proportional to the inverse structure tensor, so a point on
    an edge is precise across the edge and unreliable along it; fusion weights the flow with
    this matrix instead of a single number.

    Args:
        gray: (H, W) uint8 or float image.
        points: Shape: (N, 2), _img space; NaN rows give zero matrices.
        window_px: window side (LK's ``window_px``).

    Returns:
        Shape: (N, 2, 2) float64, largest eigenvalue 1 (0 for a flat or NaN window).
    """
    g = gray if gray.dtype in (np.uint8, np.float32) else np.asarray(gray, dtype=np.float32)
    pts = _check_points(points)
    out = np.zeros((len(pts), 2, 2))
    idx = np.flatnonzero(np.isfinite(pts).all(axis=1))
    if len(idx) == 0:
        return out
    size = (window_px + 2, window_px + 2)
    patches = np.stack(
        [
            cv2.getRectSubPix(g, size, (float(p[0] - PIXEL_CENTRE), float(p[1] - PIXEL_CENTRE)), patchType=cv2.CV_32F)
            for p in pts[idx]
        ]
    ).astype(np.float64)
    gx = 0.5 * (patches[:, 1:-1, 2:] - patches[:, 1:-1, :-2])
    gy = 0.5 * (patches[:, 2:, 1:-1] - patches[:, :-2, 1:-1])
    xx, xy, yy = (gx * gx).sum(axis=(1, 2)), (gx * gy).sum(axis=(1, 2)), (gy * gy).sum(axis=(1, 2))
    # largest eigenvalue of [[xx, xy], [xy, yy]] in closed form
    top = 0.5 * (xx + yy) + np.sqrt(0.25 * (xx - yy) ** 2 + xy * xy)
    strong = top > APERTURE_MIN_ENERGY * window_px * window_px
    t = np.stack([np.stack([xx, xy], axis=-1), np.stack([xy, yy], axis=-1)], axis=-2)
    out[idx[strong]] = t[strong] / top[strong, None, None]
    return out


def landmark_flow(
    images: Sequence[np.ndarray],
    points: np.ndarray,
    *,
    skip: Optional[np.ndarray] = None,
    params: LKParams = LKParams(),
) -> Tuple[PointFlow, PointFlow]:
    """Forward and backward LK displacements of every landmark between consecutive frames.

    Each displacement starts from the landmark's own position on its frame (typically the
    per-frame detection), so a detection error does not travel with the flow.

    Args:
        images: the shot's frames in order, gray uint8 or anything ``to_gray_u8`` accepts.
        points: landmark positions per frame, NaN where unknown.
            Shape: (F, L, 2), _img space.
        skip: landmarks not to track (replacement pieces that change every frame); their flow
            is NaN with reliability 0. Shape: (L,) bool.
        params: tracker settings.

    Returns:
        ``(forward, backward)`` as described in ``PointFlow``.

    Raises:
        ShapeError: if ``points`` is not (F, L, 2) with F == len(images).
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 3 or pts.shape[2] != 2 or pts.shape[0] != len(images):
        raise ShapeError("points", pts.shape, f"({len(images)}, L, 2)")
    f_count, l_count = pts.shape[:2]
    keep = np.ones(l_count, dtype=bool) if skip is None else ~np.asarray(skip, dtype=bool)
    fwd, bwd = FlowBuilder(f_count, l_count), FlowBuilder(f_count, l_count)
    grays = [to_gray_u8(im) for im in images]
    for i in range(f_count - 1):
        a = np.where(keep[:, None], pts[i], np.nan)
        b = np.where(keep[:, None], pts[i + 1], np.nan)
        step_f, step_b = flow_pair(grays[i], grays[i + 1], a, b, params)
        fwd.set(i, step_f)
        bwd.set(i + 1, step_b)
    return fwd.build(), bwd.build()


class FlowStep(NamedTuple):
    """LK motion of every landmark from one frame to a neighbour.

    Attributes:
        displacement: Shape: (L, 2) float64 px, NaN where untracked.
        reliability: Shape: (L,) float64 in [0, 1].
        aperture: Shape: (L, 2, 2) float64 (see ``PointFlow.aperture``).
    """

    displacement: np.ndarray
    reliability: np.ndarray
    aperture: np.ndarray


def pair_region(
    prev_points: np.ndarray, next_points: np.ndarray, shape: Tuple[int, ...], params: LKParams = LKParams()
) -> Optional[Tuple[int, int, int, int]]:
    """The part of a frame ``flow_pair`` looks at for these points: (x0, y0, x1, y1), or None.

    A caller that holds only regions of its frames (a streaming tracker) crops both frames to
    this and passes ``origin=(x0, y0)``: the result is the same as on the whole frames.
    """
    both = np.concatenate([_check_points(prev_points), _check_points(next_points)])
    finite = both[np.isfinite(both).all(axis=1)]
    if not len(finite):
        return None
    return _search_region(finite, shape, params)


def flow_pair(
    prev: np.ndarray,
    nxt: np.ndarray,
    prev_points: np.ndarray,
    next_points: np.ndarray,
    params: LKParams = LKParams(),
    *,
    origin: Tuple[int, int] = (0, 0),
) -> Tuple[FlowStep, FlowStep]:
    """LK both ways between two frames: ``prev_points`` to ``nxt`` and ``next_points`` to ``prev``.

    Why together: the two directions share the crop and gain normalisation, and the forward
    track's round-trip check runs in the same LK pass as the backward track, so a pair of frames
    costs three LK passes instead of four. (OpenCV's Python binding cannot take prebuilt
    pyramids, so each pass still builds its own.)

    Args:
        prev: first frame (or the crop of it at ``origin``), gray uint8.
        nxt: second frame, the same size and crop.
        prev_points: positions on ``prev``, NaN = skip. Shape: (L, 2), _img space of the frame.
        next_points: positions on ``nxt``. Shape: (L, 2).
        params: tracker settings.
        origin: top-left of the crops in the frame (``pair_region``).

    Returns:
        ``(forward, backward)``: the motion of ``prev_points`` to ``nxt`` and of
        ``next_points`` back to ``prev``.

    Raises:
        ShapeError: if the images differ in size or a point array is not (L, 2).
    """
    g0, g1 = to_gray_u8(prev), to_gray_u8(nxt)
    if g0.shape != g1.shape:
        raise ShapeError("nxt", g1.shape, g0.shape)
    off = np.asarray(origin, dtype=np.float64)
    pts = [_check_points(prev_points) - off, _check_points(next_points) - off]
    valid = [np.asarray(np.isfinite(p).all(axis=1)) for p in pts]
    tracks = [
        PointTrack(np.full((len(p), 2), np.nan), np.zeros(len(p)), np.full(len(p), np.inf)) for p in pts
    ]
    if any(v.any() for v in valid):
        region = pair_region(pts[0], pts[1], g0.shape, params)
        assert region is not None
        x0, y0, x1, y1 = region
        c0, c1 = g0[y0:y1, x0:x1], g1[y0:y1, x0:x1]
        local = [p - np.array([x0, y0], dtype=np.float64) for p in pts]
        if params.normalise:
            c0, c1 = _normalise_pair(c0, c1, np.concatenate(local))
        starts = [loc[v] - PIXEL_CENTRE for loc, v in zip(local, valid)]
        n0 = len(starts[0])
        ahead, ok_a = _lk(c0, c1, starts[0], params)
        # the forward round trip and the backward track: both from nxt to prev
        back, ok_b = _lk(c1, c0, np.concatenate([ahead, starts[1]]), params)
        behind, ok_bh = back[n0:], ok_b[n0:]
        again, ok_g = _lk(c0, c1, behind, params)
        shift = np.array([x0, y0], dtype=np.float64) + off + PIXEL_CENTRE
        tracks = [
            _round_trip(ahead, back[:n0], starts[0], ok_a, ok_b[:n0], valid[0], shift, params),
            _round_trip(behind, again, starts[1], ok_bh, ok_g, valid[1], shift, params),
        ]
    steps = []
    for image, p, track in zip((g0, g1), pts, tracks):
        ap = aperture_matrices(image, np.where((track.reliability > 0)[:, None], p, np.nan), params.window_px)
        steps.append(FlowStep(track.points - (p + off), track.reliability, ap))
    return steps[0], steps[1]


def _round_trip(
    there: np.ndarray,
    back: np.ndarray,
    start: np.ndarray,
    ok_there: np.ndarray,
    ok_back: np.ndarray,
    valid: np.ndarray,
    shift: np.ndarray,
    params: LKParams,
) -> PointTrack:
    """A ``PointTrack`` from one LK pass and its backward check (OpenCV coordinates of a crop)."""
    n = len(valid)
    out, fb, rel = np.full((n, 2), np.nan), np.full(n, np.inf), np.zeros(n)
    err = np.linalg.norm(back - start, axis=1)
    ok = ok_there & ok_back & (err <= params.fb_max_error_px)
    idx = np.flatnonzero(valid)
    fb[idx] = np.where(ok_there & ok_back, err, np.inf)
    good = idx[ok]
    out[good] = there[ok] + shift
    rel[good] = np.clip(1.0 - (err[ok] / params.fb_max_error_px) ** 2, 0.0, 1.0)
    return PointTrack(out, rel, fb)


class FlowBuilder:
    """Collects ``FlowStep`` rows of one direction into a ``PointFlow`` (unset rows: no flow)."""

    def __init__(self, frames: int, landmarks: int) -> None:
        """Room for ``frames`` rows of ``landmarks`` points."""
        self._disp = np.full((frames, landmarks, 2), np.nan)
        self._rel = np.zeros((frames, landmarks))
        self._ap = np.zeros((frames, landmarks, 2, 2))

    def set(self, row: int, step: FlowStep) -> None:
        """Store the step measured from frame index ``row``."""
        self._disp[row], self._rel[row], self._ap[row] = step

    def clear(self, row: int) -> None:
        """Forget row ``row`` (its frame's detections were dropped)."""
        self._disp[row], self._rel[row], self._ap[row] = np.nan, 0.0, 0.0

    def build(self) -> PointFlow:
        """The collected flow."""
        return PointFlow(self._disp.copy(), self._rel.copy(), self._ap.copy())


def dense_flow(
    prev: np.ndarray, nxt: np.ndarray, scale: float = 0.5, preset: str = "fast"
) -> np.ndarray:
    """Dense DIS optical flow computed at ``scale`` and returned at full resolution in pixels.

    Why reduced resolution: DIS at half resolution costs about a quarter of full resolution and
    roto-level motion is smooth at that scale; vectors are rescaled to full-resolution pixels.

    Args:
        prev: first image (gray uint8 or anything ``to_gray_u8`` accepts), (H, W).
        nxt: second image, same size.
        scale: working resolution as a fraction of full resolution, in (0, 1].
        preset: "ultrafast", "fast" or "medium".

    Returns:
        ``flow`` with ``prev[y, x] ~ nxt[y + flow[y, x, 1], x + flow[y, x, 0]]``.
        Shape: (H, W, 2) float32 px.

    Raises:
        ValueError: for an unknown preset or a scale outside (0, 1].
        ShapeError: if the images differ in size.
    """
    if preset not in DIS_PRESETS:
        raise ValueError(f"unknown DIS preset {preset!r}; use one of {sorted(DIS_PRESETS)}")
    if not 0.0 < scale <= 1.0:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    g0, g1 = to_gray_u8(prev), to_gray_u8(nxt)
    if g0.shape != g1.shape:
        raise ShapeError("nxt", g1.shape, g0.shape)
    h, w = g0.shape
    if scale < 1.0:
        size = (max(8, round(w * scale)), max(8, round(h * scale)))
        s0 = cv2.resize(g0, size, interpolation=cv2.INTER_AREA)
        s1 = cv2.resize(g1, size, interpolation=cv2.INTER_AREA)
    else:
        s0, s1 = g0, g1
    dis = cv2.DISOpticalFlow.create(DIS_PRESETS[preset])
    flow_small = np.zeros(s0.shape + (2,), np.float32)
    flow_small = np.asarray(dis.calc(s0, s1, flow_small), dtype=np.float32)
    if s0.shape == g0.shape:
        return flow_small
    sx, sy = w / s0.shape[1], h / s0.shape[0]
    flow = np.asarray(cv2.resize(flow_small, (w, h), interpolation=cv2.INTER_LINEAR))
    flow[..., 0] *= sx
    flow[..., 1] *= sy
    return flow
