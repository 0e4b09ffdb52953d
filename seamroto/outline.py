"""Match a roto shape's outline between two frames: intensity profiles across it, found along its normals.

Roto points sit on edges, and an edge is where an image says most precisely where a shape
is, across the edge. Dense flow measures a region and blurs its edges with whatever lies
beside them; this module takes short grey profiles across the outline on the anchor frame
(every few pixels, along the normal), finds each one again on the target frame by
zero-mean normalised correlation along the predicted normal (gain and offset drop out, so
stage-light flicker does not move it), and fits the affine motion that explains the normal
offsets, leaning on a prior motion where the outline says nothing (along a straight stroke).

Coordinates: plate pixels in ``_img`` space (origin at the top-left corner, y down, pixel
centre at +0.5); the grey frames may be at a working resolution (``scale`` working px per
plate px).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np

from seamroto.curves import sample_bezier

logger = logging.getLogger(__name__)

PIXEL_CENTRE = 0.5
#: Dense samples per Bezier segment before the outline is resampled evenly.
DENSE_SAMPLES = 32
#: Fewest profiles on an outline, and fewest matched ones for a fit.
MIN_PROFILES = 8
MIN_MATCHED = 6
#: Profiles along the stroke at each end of an open shape (they fix its slide along itself).
END_PROFILES = 6
#: Robust (Huber) rounds per fit and relinearisations of the fit.
IRLS_ROUNDS = 3
FIT_ROUNDS = 3
EPS = 1e-9


@dataclass(frozen=True)
class OutlineParams:
    """Settings of outline matching.

    Attributes:
        spacing_px: distance between profiles along the outline (plate px).
        half_width: half-length of a profile (working px, at 1 px steps).
        search: how far a profile is searched either side of its predicted place (working px).
        min_score: correlation from which a profile's match counts.
        noise_px: expected error of one matched profile (plate px); sets the weight of the
            matches against the prior.
        huber_px: residual from which a match's weight falls off (plate px).
        prior_px: how sure the prior motion is about where the shape is (plate px, for the
            shape as a whole); against ``noise_px`` per matched profile it decides how far the
            outline's evidence may move the fit away from the prior.
    """

    spacing_px: float = 4.0
    half_width: int = 4
    search: int = 4
    min_score: float = 0.7
    noise_px: float = 0.5
    huber_px: float = 1.0
    prior_px: float = 0.4


DEFAULT_OUTLINE = OutlineParams()


@dataclass(frozen=True)
class Outline:
    """Profiles across a shape's outline on its anchor frame.

    Attributes:
        points: profile centres. Shape: (M, 2) float64, plate px.
        normals: unit normals. Shape: (M, 2).
        template: grey values along each normal. Shape: (M, 2 * half_width + 1) float32.
    """

    points: np.ndarray
    normals: np.ndarray
    template: np.ndarray


@dataclass(frozen=True)
class OutlineFit:
    """The outline's motion from the anchor, and how much of the outline was found.

    Attributes:
        matrix: affine anchor -> target. Shape: (2, 3) float64, plate px.
        support: fraction of the profiles matched with at least ``min_score``.
    """

    matrix: np.ndarray
    support: float


def outline_samples(
    rows: np.ndarray, closed: bool, spacing_px: float, stroke_ends: bool = True
) -> Tuple[np.ndarray, np.ndarray]:
    """Evenly spaced points on a shape's curve with unit normals (plus along-stroke ends when open).

    Args:
        rows: control points in the ``curves`` layout [x, y, lx, ly, rx, ry].
        closed: whether the shape is closed.
        spacing_px: distance between samples (plate px).
        stroke_ends: for an open shape, add profiles along the stroke at both ends (where
            whatever the stroke ends on fixes its slide along itself).

    Returns:
        ``(points, normals)``, both Shape: (M, 2) float64; M = 0 for a degenerate shape.
    """
    empty = (np.zeros((0, 2)), np.zeros((0, 2)))
    poly = sample_bezier(rows, closed, DENSE_SAMPLES)
    path = np.vstack([poly, poly[:1]]) if closed and len(poly) else poly
    if len(path) < 2 or not np.isfinite(path).all():
        return empty
    cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    if cum[-1] <= EPS:
        return empty
    count = max(MIN_PROFILES, int(cum[-1] / spacing_px))
    t = np.linspace(0.0, cum[-1], count, endpoint=not closed)
    pts = np.column_stack([np.interp(t, cum, path[:, 0]), np.interp(t, cum, path[:, 1])])
    if closed:
        tangent = np.roll(pts, -1, axis=0) - np.roll(pts, 1, axis=0)
    else:
        tangent = np.gradient(pts, axis=0)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), EPS)
    normals = np.column_stack([-tangent[:, 1], tangent[:, 0]])
    if not closed and stroke_ends:
        ends = [0] * END_PROFILES + [-1] * END_PROFILES
        pts = np.vstack([pts, pts[ends]])
        normals = np.vstack([normals, tangent[ends]])
    return pts, normals


def sample_profiles(
    gray: np.ndarray, points: np.ndarray, normals: np.ndarray, offsets: np.ndarray, scale: Tuple[float, float]
) -> np.ndarray:
    """Grey values at ``points + t * normals`` for each working-pixel offset ``t``.

    Args:
        gray: Shape: (h, w) float32 working frame.
        points: Shape: (M, 2), plate px.
        normals: Shape: (M, 2), unit.
        offsets: Shape: (T,), working px.
        scale: (sx, sy) working px per plate px.

    Returns:
        Shape: (M, T) float32 (the border pixel beyond the frame).
    """
    s = np.asarray(scale, dtype=np.float64)
    centre = points * s - PIXEL_CENTRE
    x = (centre[:, None, 0] + offsets[None, :] * normals[:, None, 0]).astype(np.float32)
    y = (centre[:, None, 1] + offsets[None, :] * normals[:, None, 1]).astype(np.float32)
    return np.asarray(cv2.remap(gray, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), np.float32)


def match_profiles(template: np.ndarray, search: np.ndarray, steps: int) -> Tuple[np.ndarray, np.ndarray]:
    """Best shift of each template row along its search row, by zero-mean normalised correlation.

    Args:
        template: Shape: (M, T).
        search: Shape: (M, T + 2 * steps), centred on the prediction.
        steps: shifts tried either side (1 sample each).

    Returns:
        ``(shift, score)``: Shape: (M,) each; shift in samples (sub-sample by a parabola
        through the peak), score in [-1, 1].
    """
    m, t_len = template.shape
    t0 = template - template.mean(axis=1, keepdims=True)
    t_norm = np.sqrt((t0 * t0).sum(axis=1)) + EPS
    scores = np.empty((m, 2 * steps + 1))
    for k in range(2 * steps + 1):
        win = search[:, k:k + t_len]
        w0 = win - win.mean(axis=1, keepdims=True)
        scores[:, k] = (t0 * w0).sum(axis=1) / (t_norm * (np.sqrt((w0 * w0).sum(axis=1)) + EPS))
    rows = np.arange(m)
    best = scores.argmax(axis=1)
    peak = scores[rows, best]
    left = scores[rows, np.clip(best - 1, 0, 2 * steps)]
    right = scores[rows, np.clip(best + 1, 0, 2 * steps)]
    den = left - 2.0 * peak + right
    inner = (best > 0) & (best < 2 * steps) & (den < 0)
    sub = np.where(inner, 0.5 * (left - right) / np.where(inner, den, -1.0), 0.0)
    return best + np.clip(sub, -0.5, 0.5) - steps, peak


def make_outline(
    gray: np.ndarray,
    rows: np.ndarray,
    closed: bool,
    scale: Tuple[float, float],
    params: OutlineParams = DEFAULT_OUTLINE,
    stroke_ends: bool = True,
) -> Optional[Outline]:
    """The profiles of a shape on its anchor frame (None for a degenerate shape).

    Args:
        gray: the anchor's grey working frame, Shape: (h, w) uint8 or float32.
        rows: control points in the ``curves`` layout, plate px.
        closed: whether the shape is closed.
        scale: (sx, sy) working px per plate px.
        params: settings.
        stroke_ends: as ``outline_samples``.
    """
    pts, normals = outline_samples(rows, closed, params.spacing_px, stroke_ends)
    if len(pts) < MIN_PROFILES:
        return None
    offsets = np.arange(-params.half_width, params.half_width + 1, dtype=np.float64)
    template = sample_profiles(np.asarray(gray, np.float32), pts, normals, offsets, scale)
    return Outline(pts, normals, template)


def _apply(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return np.asarray(pts @ matrix[:, :2].T + matrix[:, 2])


def fit_outline(
    outline: Outline,
    gray: np.ndarray,
    matrix: np.ndarray,
    prior: np.ndarray,
    anchor_points: np.ndarray,
    scale: Tuple[float, float],
    params: OutlineParams = DEFAULT_OUTLINE,
) -> Optional[OutlineFit]:
    """Refine a shape's affine motion so its outline profiles land where they match best.

    Each round moves the profiles with the current estimate, finds every profile along its
    moved normal, and solves for the affine that best explains the normal offsets (robust
    weights), with the shape's own points pulled towards ``prior`` by ``prior_px``.

    Args:
        outline: ``make_outline`` on the anchor frame.
        gray: the target's grey working frame, Shape: (h, w) uint8 or float32.
        matrix: starting estimate, anchor -> target (2, 3), plate px.
        prior: motion the fit leans on where the outline is silent (2, 3).
        anchor_points: the shape's points on the anchor (where the prior pulls). Shape: (K, 2).
        scale: (sx, sy) working px per plate px.
        params: settings.

    Returns:
        The refined motion and its support, or None when too few profiles match.
    """
    target = np.asarray(gray, np.float32)
    unit = float(np.mean(scale))
    steps = params.search
    offsets = np.arange(-params.half_width - steps, params.half_width + steps + 1, dtype=np.float64)
    current = np.asarray(matrix, dtype=np.float64)
    support = 0.0
    for _ in range(FIT_ROUNDS):
        lin = current[:, :2]
        if abs(np.linalg.det(lin)) < EPS:
            return None
        moved = _apply(current, outline.points)
        normals = outline.normals @ np.linalg.inv(lin)  # normals move with the inverse transpose
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), EPS)
        search = sample_profiles(target, moved, normals, offsets, scale)
        shift, score = match_profiles(outline.template, search, steps)
        ok = score >= params.min_score
        support = float(ok.mean())
        if int(ok.sum()) < MIN_MATCHED:
            return None
        update = _solve_update(
            moved[ok], normals[ok], shift[ok] / unit, score[ok], _apply(current, anchor_points),
            _apply(prior, anchor_points), params,
        )
        current = np.column_stack([update[:, :2] @ current[:, :2], update[:, :2] @ current[:, 2] + update[:, 2]])
    return OutlineFit(current, support)


def _solve_update(
    points: np.ndarray,
    normals: np.ndarray,
    offsets_px: np.ndarray,
    score: np.ndarray,
    shape_now: np.ndarray,
    shape_prior: np.ndarray,
    params: OutlineParams,
) -> np.ndarray:
    """Affine update ``V`` (target space) with ``n . (V p - p) = offset`` per profile, robustly.

    The shape's own points are pulled from where they are now towards where the prior puts
    them, with ``prior_px`` against the profiles' ``noise_px``.
    """
    c = points.mean(axis=0)
    q = points - c
    rows = np.column_stack([normals[:, 0] * q[:, 0], normals[:, 0] * q[:, 1], normals[:, 1] * q[:, 0],
                            normals[:, 1] * q[:, 1], normals[:, 0], normals[:, 1]])
    qk = shape_now - c
    zeros = np.zeros(len(qk))
    ones = np.ones(len(qk))
    prior_rows = np.vstack([
        np.column_stack([qk[:, 0], qk[:, 1], zeros, zeros, ones, zeros]),
        np.column_stack([zeros, zeros, qk[:, 0], qk[:, 1], zeros, ones]),
    ])
    prior_rhs = np.concatenate([(shape_prior - shape_now)[:, 0], (shape_prior - shape_now)[:, 1]])
    prior_w = 1.0 / (params.prior_px**2 * len(qk))  # the whole shape, however many points it has
    theta = np.zeros(6)
    for _ in range(IRLS_ROUNDS):
        res = rows @ theta - offsets_px
        huber = np.where(np.abs(res) <= params.huber_px, 1.0, params.huber_px / np.maximum(np.abs(res), EPS))
        w = score * huber / params.noise_px**2
        lhs = (rows * w[:, None]).T @ rows + prior_w * prior_rows.T @ prior_rows
        rhs = (rows * w[:, None]).T @ offsets_px + prior_w * prior_rows.T @ prior_rhs
        theta = np.linalg.solve(lhs + EPS * np.eye(6), rhs)
    lin = np.eye(2) + theta[:4].reshape(2, 2)
    return np.column_stack([lin, c + theta[4:] - lin @ c])
