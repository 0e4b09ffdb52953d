"""Cubic Bezier paths in the roto form (anchors + relative handles): build, move, flatten.

The renderer and the ground truth share these paths: a shape is transformed once (affine, which
maps a Bezier exactly onto a Bezier), then flattened for the raster and exported as the roto key,
so the rendered edge and the exported curve are the same curve.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike

#: Flattening step along a segment, in the units of the path (image px after transforming).
DEFAULT_STEP = 0.5
#: Bounds on samples per cubic segment when flattening.
MIN_SEGMENT_SAMPLES = 4
MAX_SEGMENT_SAMPLES = 512


@dataclass(frozen=True, eq=False)
class BezierPath:
    """A cubic Bezier spline: anchors with relative incoming (left) and outgoing (right) handles.

    Shape: ``points``, ``left``, ``right`` are (N, 2) float64 in one 2-D space (face units or
    _img px). A closed path has N segments (the last returns to point 0), an open one N - 1.
    """

    points: np.ndarray
    left: np.ndarray
    right: np.ndarray
    closed: bool

    @property
    def count(self) -> int:
        """Number of anchors."""
        return int(self.points.shape[0])

    def transformed(self, matrix: np.ndarray) -> BezierPath:
        """Apply a 2x3 affine matrix: anchors get the full map, relative handles the linear part."""
        lin, off = matrix[:, :2], matrix[:, 2]
        return BezierPath(
            self.points @ lin.T + off, self.left @ lin.T, self.right @ lin.T, self.closed
        )

    def mirrored_x(self) -> BezierPath:
        """Mirror across x = 0 (left eye -> right eye); point order is kept."""
        flip = np.array([-1.0, 1.0])
        return BezierPath(self.points * flip, self.left * flip, self.right * flip, self.closed)

    def segments(self) -> np.ndarray:
        """Control polygons of every segment.

        Shape: (S, 4, 2) float64 [p0, p1, p2, p3].
        """
        n = self.count
        idx = np.arange(n if self.closed else n - 1)
        nxt = (idx + 1) % n
        return np.stack(
            [
                self.points[idx],
                self.points[idx] + self.right[idx],
                self.points[nxt] + self.left[nxt],
                self.points[nxt],
            ],
            axis=1,
        )

    def flatten(self, step: float = DEFAULT_STEP) -> np.ndarray:
        """Dense polyline through every anchor (each anchor is a vertex, exactly).

        Shape: (M, 2) float64; a closed path does not repeat its first vertex.
        """
        out = []
        for seg in self.segments():
            length = float(np.linalg.norm(np.diff(seg, axis=0), axis=1).sum())
            n = int(np.clip(np.ceil(length / step), MIN_SEGMENT_SAMPLES, MAX_SEGMENT_SAMPLES))
            out.append(eval_segment(seg, np.arange(n) / n))
        if not self.closed:
            out.append(self.points[-1:])
        return np.concatenate(out, axis=0)

    def to_rows(self) -> np.ndarray:
        """Rows laid out as ``RotoShape.points_array`` (x, y, left, right, zero feather).

        Shape: (N, 8) float64.
        """
        zeros = np.zeros_like(self.points)
        return np.concatenate([self.points, self.left, self.right, zeros], axis=1)


def eval_segment(seg: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Points of one cubic segment at parameters ``t``.

    Shape: seg (4, 2), t (T,) -> (T, 2).
    """
    t = t[:, None]
    u = 1.0 - t
    return (
        u * u * u * seg[0] + 3.0 * u * u * t * seg[1] + 3.0 * u * t * t * seg[2] + t * t * t * seg[3]
    )


def catmull_rom(points: ArrayLike, closed: bool, tension: float = 1.0) -> BezierPath:
    """Smooth path through ``points`` with Catmull-Rom tangents (handles = tangent / 3).

    Why: characters are described by a few anchors; this gives smooth, editable roto handles
    without hand-placing every tangent. Open ends use the one-sided difference, and the unused
    outer handle mirrors the inner one, as an artist's open roto curve usually looks.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    n = p.shape[0]
    if closed:
        tangent = (np.roll(p, -1, axis=0) - np.roll(p, 1, axis=0)) * 0.5
    else:
        tangent = np.empty_like(p)
        tangent[1:-1] = (p[2:] - p[:-2]) * 0.5
        tangent[0] = p[1] - p[0] if n > 1 else 0.0
        tangent[-1] = p[-1] - p[-2] if n > 1 else 0.0
    handle = tangent * (tension / 3.0)
    return BezierPath(p, -handle, handle.copy(), closed)


def chain(parts: Sequence[BezierPath]) -> BezierPath:
    """Join open paths end to start into one closed path with cusps at the joins.

    Consecutive parts share their joining anchor (the end of one is the start of the next, and
    the last ends where the first starts). The joined anchor takes its incoming handle from the
    part that ends there and its outgoing handle from the part that starts there.
    """
    pts, lefts, rights = [], [], []
    for i, part in enumerate(parts):
        prev = parts[i - 1]
        pts.append(part.points[:-1])
        left = part.left[:-1].copy()
        left[0] = prev.left[-1]
        lefts.append(left)
        rights.append(part.right[:-1])
    return BezierPath(
        np.concatenate(pts), np.concatenate(lefts), np.concatenate(rights), closed=True
    )


def circle(centre: ArrayLike, radius: float, count: int = 4) -> BezierPath:
    """A closed circle of ``count`` anchors, clockwise in a y-down space, starting at the top."""
    ang = -np.pi / 2 + np.arange(count) * (2 * np.pi / count)
    k = (4.0 / 3.0) * np.tan(np.pi / (2 * count)) * radius
    c = np.asarray(centre, dtype=np.float64)
    pts = c + radius * np.stack([np.cos(ang), np.sin(ang)], axis=1)
    tangent = np.stack([-np.sin(ang), np.cos(ang)], axis=1) * k
    return BezierPath(pts, -tangent, tangent.copy(), closed=True)


def lerp_paths(a: BezierPath, b: BezierPath, t: float) -> BezierPath:
    """Blend two paths of equal topology control point by control point (exact for the curve)."""
    return BezierPath(
        a.points + (b.points - a.points) * t,
        a.left + (b.left - a.left) * t,
        a.right + (b.right - a.right) * t,
        a.closed,
    )


def reversed_path(path: BezierPath) -> BezierPath:
    """The same curve traversed backwards: point order flips and left/right handles swap."""
    return BezierPath(
        path.points[::-1].copy(), path.right[::-1].copy(), path.left[::-1].copy(), path.closed
    )


def sub_path(path: BezierPath, start: int, stop: int) -> BezierPath:
    """Open path over anchors ``start..stop`` inclusive (indices taken modulo the count)."""
    idx = np.arange(start, stop + 1) % path.count
    return BezierPath(path.points[idx], path.left[idx], path.right[idx], closed=False)
