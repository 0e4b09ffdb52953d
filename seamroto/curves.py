"""Cubic Bezier geometry for roto shapes: sampling, curve distance, rasterising, IoU.

Control points use the datamodel layout: rows of ``[x, y, lx, ly, rx, ry(, fx, fy)]`` with the
tangent handles *relative* to the point (as Nuke stores them), in ``_img`` space (origin top-left,
y down, pixel centres at +0.5). A segment from point ``i`` to ``i + 1`` has the Bezier control
polygon ``P_i, P_i + right_i, P_{i+1} + left_{i+1}, P_{i+1}``; a closed shape also has the segment
from the last point back to the first. An array with only two columns is a polygon (no handles).
"""

from __future__ import annotations

import logging
from typing import Optional, Tuple

import cv2
import numpy as np
from scipy.spatial import cKDTree

from seamroto.errors import ShapeError

logger = logging.getLogger(__name__)

DEFAULT_SAMPLES_PER_SEGMENT = 16
DENSE_SAMPLES_PER_SEGMENT = 64
SUPERSAMPLING = 4
FILL_SHIFT_BITS = 8
OPEN_LINE_WIDTH_PX = 1.0
IOU_MARGIN_PX = 2.0
EPS = 1e-12
NEAREST_VERTICES = 4
#: Below this many point-edge pairs every edge is measured (faster than building a k-d tree).
BRUTE_FORCE_PAIRS = 1024


def check_points(name: str, points: np.ndarray, min_cols: int = 2) -> np.ndarray:
    """Return ``points`` as float64 (N, C>=min_cols), or raise ShapeError naming ``name``.

    Args:
        name: The argument name shown in the error.
        points: Control points or polyline.
        min_cols: Fewest columns accepted (2 for a polygon, 6 for points with handles).

    Returns:
        The same data as a float64 array.

    Raises:
        ShapeError: Not two-dimensional, or too few columns.
    """
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < min_cols:
        raise ShapeError(name, arr.shape, f"(N, >={min_cols})")
    return arr


def bezier_segments(points: np.ndarray, closed: bool) -> np.ndarray:
    """Absolute control polygons of every segment of a shape.

    Args:
        points: Control points (N, 2|6|8), relative handles; two columns means no handles.
        closed: Whether the last point joins the first.

    Returns:
        Shape: (S, 4, 2) float64, S = N for closed and N - 1 for open shapes.
    """
    pts = check_points("points", points)
    n = len(pts)
    xy = pts[:, :2]
    if pts.shape[1] >= 6:
        left, right = pts[:, 2:4], pts[:, 4:6]
    else:
        left = right = np.zeros_like(xy)
    idx0 = np.arange(n if closed else max(n - 1, 0))
    idx1 = (idx0 + 1) % max(n, 1)
    seg = np.empty((len(idx0), 4, 2))
    seg[:, 0] = xy[idx0]
    seg[:, 1] = xy[idx0] + right[idx0]
    seg[:, 2] = xy[idx1] + left[idx1]
    seg[:, 3] = xy[idx1]
    return seg


def bernstein(t: np.ndarray) -> np.ndarray:
    """Cubic Bernstein basis at parameters ``t``. Shape: (..., 4)."""
    s = 1.0 - t
    return np.stack([s * s * s, 3.0 * s * s * t, 3.0 * s * t * t, t * t * t], axis=-1)


def eval_segments(segments: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Points on each segment at the parameters ``t`` (shared by all segments).

    Args:
        segments: Control polygons (S, 4, 2).
        t: Parameters in [0, 1] (M,).

    Returns:
        Shape: (S, M, 2).
    """
    return np.einsum("mk,skd->smd", bernstein(np.asarray(t, dtype=np.float64)), segments)


def sample_bezier(
    points: np.ndarray, closed: bool, n_per_segment: int = DEFAULT_SAMPLES_PER_SEGMENT
) -> np.ndarray:
    """Sample a shape into a polyline, ``n_per_segment`` points per segment.

    A closed shape's polyline does not repeat its first point; an open one ends on its last
    control point, so the result runs knot to knot.

    Args:
        points: Control points (N, 2|6|8), relative handles.
        closed: Whether the last point joins the first.
        n_per_segment: Samples per segment (the segment's end point belongs to the next one).

    Returns:
        Shape: (M, 2) float64, _img space; M = N * n for closed, (N - 1) * n + 1 for open.
    """
    pts = check_points("points", points)
    if len(pts) == 0:
        return np.zeros((0, 2))
    if len(pts) == 1:
        return pts[:, :2].copy()
    seg = bezier_segments(pts, closed)
    t = np.arange(n_per_segment) / float(n_per_segment)
    out = eval_segments(seg, t).reshape(-1, 2)
    if not closed:
        out = np.vstack([out, pts[-1:, :2]])
    return out


def polyline_length(poly: np.ndarray, closed: bool = False) -> float:
    """Total length of a polyline in pixels (closed adds the closing edge)."""
    p = np.asarray(poly, dtype=np.float64)
    if closed and len(p) > 1:
        p = np.vstack([p, p[:1]])
    return float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum())


def point_to_polyline(points: np.ndarray, poly: np.ndarray, closed: bool = False) -> np.ndarray:
    """Distance from each point to the nearest place on a polyline (edges, not just vertices).

    Small inputs are measured against every edge; large ones only against the edges next to each
    query's few nearest vertices (a k-d tree finds them), which is exact for the evenly and
    densely sampled curves used here and keeps a 1000 x 1000 comparison to milliseconds.

    Args:
        points: Query points (P, 2).
        poly: Polyline vertices (M, 2).
        closed: Whether an edge joins the last vertex to the first.

    Returns:
        Shape: (P,) float64 distances in pixels.
    """
    q = np.asarray(points, dtype=np.float64)[:, :2]
    v = np.asarray(poly, dtype=np.float64)[:, :2]
    m = len(v)
    if m == 1:
        return np.linalg.norm(q - v[0], axis=1)
    a_all = v if closed else v[:-1]
    if len(q) * len(a_all) <= BRUTE_FORCE_PAIRS:
        b_all = np.roll(v, -1, axis=0) if closed else v[1:]
        ab = b_all - a_all
        denom = np.maximum((ab * ab).sum(axis=1), EPS)
        t = np.clip(((q[:, None, :] - a_all) * ab).sum(axis=2) / denom, 0.0, 1.0)
        d = q[:, None, :] - (a_all + t[..., None] * ab)
        return np.sqrt((d * d).sum(axis=2).min(axis=1))
    k = min(NEAREST_VERTICES, m)
    _, near = cKDTree(v).query(q, k=k)
    near = np.asarray(near).reshape(len(q), k)
    # Candidate edges: the edge starting at each near vertex and the one ending there.
    if closed:
        cand = np.concatenate([near, (near - 1) % m], axis=1)
        ends = (cand + 1) % m
    else:
        cand = np.clip(np.concatenate([near, near - 1], axis=1), 0, m - 2)
        ends = cand + 1
    a = v[cand]
    ab = v[ends] - a
    denom = np.maximum((ab * ab).sum(axis=2), EPS)
    t = np.clip(((q[:, None, :] - a) * ab).sum(axis=2) / denom, 0.0, 1.0)
    d = q[:, None, :] - (a + t[..., None] * ab)
    return np.sqrt((d * d).sum(axis=2).min(axis=1))


def curve_distance(a: np.ndarray, b: np.ndarray, *, closed: bool = False) -> float:
    """Mean symmetric distance between two polylines, in pixels.

    The mean of (a's points to b) and (b's points to a): unlike a vertex-to-vertex error it does
    not depend on where either curve puts its points, so shapes with different point counts
    (artists' roto against a re-vectorised rig) compare fairly. Sample both densely and evenly
    (``sample_bezier``) so the mean is a mean along the curve.

    Args:
        a: First polyline (M, 2).
        b: Second polyline (K, 2).
        closed: Both polylines are closed (adds the closing edge).

    Returns:
        Mean symmetric distance in pixels.
    """
    pa = check_points("a", a)
    pb = check_points("b", b)
    dab = point_to_polyline(pa, pb, closed)
    dba = point_to_polyline(pb, pa, closed)
    return float(0.5 * (dab.mean() + dba.mean()))


def shape_distance(
    a: np.ndarray, b: np.ndarray, closed: bool, n_per_segment: int = DENSE_SAMPLES_PER_SEGMENT
) -> float:
    """``curve_distance`` of two shapes given as control points (any point counts)."""
    return curve_distance(
        sample_bezier(a, closed, n_per_segment), sample_bezier(b, closed, n_per_segment),
        closed=closed,
    )


def rasterise(
    shape_points: np.ndarray,
    closed: bool,
    width: int,
    height: int,
    ss: int = SUPERSAMPLING,
    *,
    n_per_segment: int = DEFAULT_SAMPLES_PER_SEGMENT,
) -> np.ndarray:
    """Rasterise a shape to an anti-aliased coverage mask (for IoU and paint masks).

    The polygon is sampled on an ``ss``-times finer grid at the fine pixels' centres (even-odd
    rule) and box-filtered down, so a pixel's value is its covered fraction (to 1/ss^2) and a
    shape's mask sums to its area. (``cv2.fillPoly`` is not used for closed shapes: it rounds
    vertices and fills both boundary rows/columns, which grows every shape by about one fine
    pixel per axis, a 1-2 % area bias on an eye.) An open shape is stroked
    ``OPEN_LINE_WIDTH_PX`` wide with ``cv2.polylines``.

    Args:
        shape_points: Control points (N, 2|6|8), relative handles, _img space; two columns are a
            polygon.
        closed: Fill (closed) or stroke (open).
        width: Mask width in pixels.
        height: Mask height in pixels.
        ss: Supersampling factor per axis.
        n_per_segment: Bezier samples per segment.

    Returns:
        Shape: (height, width) float32 in [0, 1].
    """
    pts = check_points("shape_points", shape_points)
    poly = pts[:, :2] if pts.shape[1] < 6 else sample_bezier(pts, closed, n_per_segment)
    big = np.zeros((height * ss, width * ss), dtype=np.uint8)
    if len(poly) >= 2 and np.all(np.isfinite(poly)):
        if closed:
            _fill_even_odd(big, poly * ss)
        else:
            # _img x maps to fine x * ss; cv2 puts fine pixel j's centre at integer j, i.e. at
            # fine x = j + 0.5, hence the half-pixel shift.
            scale = float(1 << FILL_SHIFT_BITS)
            fine = np.round((poly * ss - 0.5) * scale).astype(np.int32).reshape(-1, 1, 2)
            thick = max(1, int(round(OPEN_LINE_WIDTH_PX * ss)))
            cv2.polylines(big, [fine], False, 1, thick, cv2.LINE_8, FILL_SHIFT_BITS)
    covered = big.reshape(height, ss, width, ss).sum(axis=(1, 3), dtype=np.uint32)
    return (covered.astype(np.float32) / np.float32(ss * ss)).astype(np.float32)


def _fill_even_odd(grid: np.ndarray, poly: np.ndarray) -> None:
    """Set ``grid`` pixels whose centres lie inside a closed polygon (even-odd), in place.

    Pixel (i, j) covers [j, j + 1) x [i, i + 1) in the polygon's coordinates.
    """
    h, w = grid.shape
    a = poly
    b = np.roll(poly, -1, axis=0)
    lo = max(int(np.floor(poly[:, 1].min() - 0.5)), 0)
    hi = min(int(np.ceil(poly[:, 1].max() + 0.5)), h)
    if hi <= lo:
        return
    yc = np.arange(lo, hi, dtype=np.float64) + 0.5  # row centres
    y0, y1 = a[:, 1][None, :], b[:, 1][None, :]
    # Half-open rule on each edge so a vertex on a row is counted once.
    spans = ((y0 <= yc[:, None]) & (yc[:, None] < y1)) | ((y1 <= yc[:, None]) & (yc[:, None] < y0))
    dy = np.where(y1 != y0, y1 - y0, 1.0)
    xc = a[:, 0][None, :] + (yc[:, None] - y0) * (b[:, 0] - a[:, 0])[None, :] / dy
    xc = np.sort(np.where(spans, xc, np.inf), axis=1)
    count = spans.sum(axis=1)
    diff = np.zeros((hi - lo, w + 1), dtype=np.int32)
    rows = np.arange(hi - lo)
    for k in range(0, int(count.max(initial=0)) - 1, 2):
        ok = count > k + 1
        # Pixel j is inside when x_a <= j + 0.5 < x_b.
        start = np.clip(np.ceil(xc[ok, k] - 0.5), 0, w).astype(int)
        stop = np.clip(np.ceil(xc[ok, k + 1] - 0.5), 0, w).astype(int)
        np.add.at(diff, (rows[ok], start), 1)
        np.add.at(diff, (rows[ok], stop), -1)
    inside = (np.cumsum(diff, axis=1)[:, :w] % 2).astype(np.uint8)
    grid[lo:hi] |= inside


def iou(mask_a: np.ndarray, mask_b: np.ndarray) -> float:
    """Soft intersection over union of two coverage masks: sum(min) / sum(max).

    Two empty masks agree perfectly (1.0).

    Raises:
        ShapeError: The masks differ in shape.
    """
    a = np.asarray(mask_a, dtype=np.float64)
    b = np.asarray(mask_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ShapeError("mask_b", b.shape, a.shape)
    union = np.maximum(a, b).sum()
    if union <= 0.0:
        return 1.0
    return float(np.minimum(a, b).sum() / union)


def shape_iou(
    a: np.ndarray,
    b: np.ndarray,
    *,
    ss: int = SUPERSAMPLING,
    margin_px: float = IOU_MARGIN_PX,
    n_per_segment: int = DEFAULT_SAMPLES_PER_SEGMENT,
) -> float:
    """IoU of two closed shapes, rasterised only over their joint bounding box.

    Rasterising a whole 2K plate at 4x supersampling for one eye is wasteful; both shapes are
    shifted by the same whole-pixel offset, so the result equals the full-frame IoU.

    Args:
        a: Control points (N, 2|6|8).
        b: Control points (K, 2|6|8).
        ss: Supersampling factor per axis.
        margin_px: Border kept around the joint bounding box.
        n_per_segment: Bezier samples per segment.

    Returns:
        Soft IoU in [0, 1].
    """
    pa = check_points("a", a).copy()
    pb = check_points("b", b).copy()
    both = np.vstack([sample_bezier(pa, True, n_per_segment), sample_bezier(pb, True, n_per_segment)])
    lo = np.floor(both.min(axis=0) - margin_px)
    hi = np.ceil(both.max(axis=0) + margin_px)
    w, h = (int(v) for v in (hi - lo))
    pa[:, :2] -= lo
    pb[:, :2] -= lo
    ma = rasterise(pa, True, w, h, ss, n_per_segment=n_per_segment)
    mb = rasterise(pb, True, w, h, ss, n_per_segment=n_per_segment)
    return iou(ma, mb)


def catmull_rom_handles(points: np.ndarray, closed: bool) -> np.ndarray:
    """Smooth Bezier handles through a polyline of knots, e.g. a seam's landmarks.

    Catmull-Rom directions (from each knot's neighbours) with each handle a third of its own
    chord, which stays well-behaved when the knots are unevenly spaced (uniform Catmull-Rom
    overshoots next to a short span).

    Args:
        points: Knots (N, 2), _img space.
        closed: Whether the curve closes.

    Returns:
        Shape: (N, 6) [x, y, lx, ly, rx, ry] with relative handles; an open curve's end handles
        point along its first/last chord.
    """
    p = check_points("points", points)[:, :2]
    n = len(p)
    out = np.zeros((n, 6))
    out[:, :2] = p
    if n < 2:
        return out
    if closed:
        nxt, prv = np.roll(p, -1, axis=0), np.roll(p, 1, axis=0)
    else:
        nxt = np.vstack([p[1:], 2.0 * p[-1:] - p[-2:-1]])
        prv = np.vstack([2.0 * p[:1] - p[1:2], p[:-1]])
    d = nxt - prv
    t = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), EPS)
    out_len = np.linalg.norm(nxt - p, axis=1, keepdims=True) / 3.0
    in_len = np.linalg.norm(p - prv, axis=1, keepdims=True) / 3.0
    out[:, 2:4] = -t * in_len
    out[:, 4:6] = t * out_len
    return out


def signed_area(poly: np.ndarray) -> float:
    """Shoelace area of a closed polyline; positive when clockwise on screen (_img, y down)."""
    p = np.asarray(poly, dtype=np.float64)
    x, y = p[:, 0], p[:, 1]
    return float(0.5 * (x * np.roll(y, -1) - np.roll(x, -1) * y).sum())


def self_intersection(poly: np.ndarray, closed: bool) -> Optional[Tuple[int, int]]:
    """First pair of non-adjacent polyline edges that cross, or None if the curve is simple.

    Args:
        poly: Polyline vertices (M, 2).
        closed: Whether an edge joins the last vertex to the first.

    Returns:
        Indices of two crossing edges, or None.
    """
    v = np.asarray(poly, dtype=np.float64)[:, :2]
    a = v if closed else v[:-1]
    b = np.roll(v, -1, axis=0) if closed else v[1:]
    e = len(a)
    if e < 3:
        return None

    def orient(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
        return (q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (
            r[..., 0] - p[..., 0]
        )

    i, j = np.triu_indices(e, k=2)
    if closed:
        keep = ~((i == 0) & (j == e - 1))
        i, j = i[keep], j[keep]
    a1, b1, a2, b2 = a[i], b[i], a[j], b[j]
    d1 = orient(a2, b2, a1)
    d2 = orient(a2, b2, b1)
    d3 = orient(a1, b1, a2)
    d4 = orient(a1, b1, b2)
    # Strict crossings only: touching at a vertex (a duplicated knot) is not a loop.
    hit = (d1 * d2 < 0) & (d3 * d4 < 0)
    if not hit.any():
        return None
    k = int(np.argmax(hit))
    return int(i[k]), int(j[k])


def excess_jitter_px(error: np.ndarray) -> float:
    """Frame-to-frame jitter of a per-frame error, in pixels: the RMS of its second difference.

    The project's one definition (the fusion benchmark uses it for landmarks): the 2-D norm of
    ``e[t+1] - 2 e[t] + e[t-1]``, RMS over frames and points. A constant or steadily drifting
    error scores 0; white noise of sigma per axis scores sqrt(12) sigma (about 3.5 sigma).
    Frames with NaN are skipped.

    Args:
        error: Shape: (F, K, 2) per-frame error (fitted minus true positions), or positions
            when the truth is static.

    Returns:
        Excess jitter in pixels (0.0 with fewer than three frames).
    """
    e = np.asarray(error, dtype=np.float64)
    if e.shape[0] < 3:
        return 0.0
    dd = e[2:] - 2.0 * e[1:-1] + e[:-2]
    norm2 = (dd * dd).sum(axis=-1)
    norm2 = norm2[np.isfinite(norm2)]
    if norm2.size == 0:
        return 0.0
    return float(np.sqrt(norm2.mean()))
