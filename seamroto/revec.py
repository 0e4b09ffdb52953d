"""Re-vectorise artists' roto shapes to a stable parametrisation: same points, same order, every frame.

Real roto changes point count and placement from frame to frame (an eyebrow drawn with 8 points
on one frame and 12 on another), so a rig cannot learn "point 3" until every key is rewritten with
the same ``K`` points at consistent places. The recipe keeps the few points an artist would:

1. Orientation is normalised (closed shapes run clockwise on screen; open ones run along an axis).
2. Knots sit at consistent places: a closed, elongated shape (eye, eyebrow) gets a knot on each
   extreme along its long axis (the corners an artist would click) and the rest spread along the
   two arcs between them; a round one starts where a fixed direction from its centroid meets it;
   an open curve is spread from its start. "Spread" is even in a blend of arc length and turning
   angle, so tight bends get more knots. With anchors (``plan_anchored``: landmarks that lie on
   the curve) knots sit where the anchors project onto the curve, plus a planned number between.
3. Tangent handles are fitted by least squares (with parameter refinement) so the new curve
   reproduces the artist's curve; the fit error is reported.
4. Per-point feather offsets are carried over by interpolating along the curve.

All arrays are ``_img`` pixels with relative handles, rows ``[x, y, lx, ly, rx, ry(, fx, fy)]``.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from seamroto import curves
from seamroto.errors import AnnotationError, ShapeError

logger = logging.getLogger(__name__)

#: Fewest points of a re-vectorised closed / open shape.
MIN_POINTS_CLOSED = 4
MIN_POINTS_OPEN = 2
#: Bezier samples per artist segment for arc lengths, and artist-curve samples per new segment
#: the handles are fitted to; Newton re-parametrisation rounds of that fit.
DENSE_PER_SEGMENT = 32
FIT_SAMPLES_PER_SEGMENT = 24
REPARAM_ITERATIONS = 4
#: A closed shape whose long/short spread ratio is below this is "round" (anchored by direction).
ROUND_ASPECT = 1.15
MIN_SHAPE_EXTENT_PX = 1e-3
#: Bezier samples per segment when measuring the fit error.
EVAL_PER_SEGMENT = 16
#: Share of turning angle (vs arc length) in the measure knots are spread evenly in.
CURVATURE_WEIGHT = 0.3
#: Bezier samples per segment when checking ground truth for loops.
CHECK_SAMPLES_PER_SEGMENT = 6
#: Weight of the handle prior (artist tangent, a third of the span) per fitted sample.
HANDLE_PRIOR = 1e-3
#: Step (fraction of a segment) used to read the artist's tangent direction at a knot.
TANGENT_PROBE = 1e-3
#: An open curve whose end runs on past its last anchor by more than this fraction of its length
#: gets a knot of its own there.
OPEN_END_FRACTION = 0.04


@dataclass(frozen=True)
class RevecPlan:
    """How one shape is re-vectorised; decided once per shape so every frame agrees.

    ``axis`` is a unit vector in the frame the curves are given in (the rig uses its normalised
    face frame, so "left corner of the eye" means the same thing on every frame).
    ``first_arc_knots``: for a closed, elongated shape, how many of the ``k`` knots lie on the arc
    from the +axis extreme to the -axis extreme (the rest lie on the way back). ``round``: anchor
    a closed shape by direction from its centroid instead of by its two extremes.

    Anchored plans (``plan_anchored``) put knots where given anchors (landmarks lying on the
    curve, in curve order) project onto it, so those knots move exactly with the landmarks:
    ``gaps`` holds the number of extra knots between consecutive fixed knots; ``ends`` says
    whether an open curve runs on past its first / last anchor (then its end is a knot of its
    own; otherwise the first / last anchor's knot is put on the curve's end).
    """

    k: int
    closed: bool
    axis: Tuple[float, float] = (1.0, 0.0)
    first_arc_knots: int = 0
    round: bool = False
    gaps: Tuple[int, ...] = ()
    ends: Tuple[bool, bool] = (False, False)

    @property
    def anchored(self) -> bool:
        """Knots sit on given anchor points (landmarks on the curve) plus ``gaps`` in between."""
        return bool(self.gaps)


@dataclass(frozen=True, eq=False)
class Revec:
    """One re-vectorised key and how faithfully it reproduces the artist's curve.

    ``points``: Shape (K, 8) float64 ``[x, y, lx, ly, rx, ry, fx, fy]``, relative handles.
    ``fit_error_px``: mean symmetric distance to the artist's curve; ``max_error_px``: the largest
    distance from a point of either curve to the other.
    """

    points: np.ndarray
    fit_error_px: float
    max_error_px: float


def validate_shape(
    points: np.ndarray,
    closed: bool,
    *,
    name: str = "shape",
    frame: Optional[int] = None,
    path: Optional[str] = None,
) -> None:
    """Reject ground truth a rig cannot learn from, naming the shape and frame.

    Args:
        points: Control points (N, 2|6|8), relative handles.
        closed: Whether the shape is closed.
        name: Shape name for the message.
        frame: Frame for the message.
        path: Annotation file for the message.

    Raises:
        AnnotationError: Too few points, non-finite values, zero size, or a curve that crosses
            itself.
    """
    pts = np.asarray(points, dtype=np.float64)
    fix = "Fix or delete this key in the artist's roto and export the annotation again."
    need = 2
    if pts.ndim != 2 or len(pts) < need:
        count = len(pts) if pts.ndim == 2 else 0
        raise AnnotationError(
            f"shape '{name}' has {count} point(s); a {'closed' if closed else 'open'} shape needs "
            f"at least {need}. {fix}",
            path=path,
            frame=frame,
        )
    if not np.all(np.isfinite(pts)):
        raise AnnotationError(f"shape '{name}' has NaN/inf coordinates. {fix}", path=path, frame=frame)
    extent = np.ptp(pts[:, :2], axis=0).max()
    if extent < MIN_SHAPE_EXTENT_PX:
        raise AnnotationError(
            f"shape '{name}' has all its points in one place. {fix}", path=path, frame=frame
        )
    poly = curves.sample_bezier(pts, closed, CHECK_SAMPLES_PER_SEGMENT)
    hit = curves.self_intersection(poly, closed)
    if hit is not None:
        n = CHECK_SAMPLES_PER_SEGMENT
        raise AnnotationError(
            f"shape '{name}' crosses itself (segment {hit[0] // n} crosses segment {hit[1] // n}); "
            f"a rig cannot learn a twisted shape. {fix}",
            path=path,
            frame=frame,
        )
    if closed and abs(curves.signed_area(poly)) < MIN_SHAPE_EXTENT_PX * extent:
        raise AnnotationError(
            f"shape '{name}' is closed but encloses no area. {fix}", path=path, frame=frame
        )


def reverse_points(points: np.ndarray, closed: bool) -> np.ndarray:
    """The same curve traversed the other way (order reversed, left and right handles swapped).

    A closed shape keeps its first point first so only the direction changes.
    """
    pts = np.asarray(points, dtype=np.float64)
    out = pts[::-1].copy()
    if pts.shape[1] >= 6:
        out[:, 2:4], out[:, 4:6] = pts[::-1, 4:6], pts[::-1, 2:4]
    if closed:
        out = np.roll(out, 1, axis=0)
    return out


def principal_axis(poly: np.ndarray) -> Tuple[np.ndarray, float]:
    """Long axis of a point cloud and its aspect ratio (major / minor standard deviation).

    The axis sign is fixed to point towards +x (or +y when vertical) so it is repeatable.
    """
    p = np.asarray(poly, dtype=np.float64)
    c = p - p.mean(axis=0)
    w, v = np.linalg.eigh(c.T @ c / max(len(p), 1))
    axis = v[:, 1]
    if axis[0] < -1e-9 or (abs(axis[0]) <= 1e-9 and axis[1] < 0):
        axis = -axis
    aspect = float(np.sqrt(max(w[1], 0.0) / max(w[0], 1e-12)))
    return axis, aspect


def choose_k(counts: Sequence[int], closed: bool) -> int:
    """Points per re-vectorised shape: the artists' median count, at least 4 closed / 2 open."""
    k = int(round(float(np.median(np.asarray(counts, dtype=np.float64))))) if counts else 0
    return max(k, MIN_POINTS_CLOSED if closed else MIN_POINTS_OPEN)


def plan_shape(
    keys: Sequence[np.ndarray], closed: bool, k: Optional[int] = None
) -> RevecPlan:
    """Decide ``K``, the anchor axis and the knot split for a shape from all its training keys.

    The keys must already be in one common frame (the rig's normalised face frame) and
    oriented; the axis is the long axis of all of them pooled, so it does not flip between frames.

    Args:
        keys: Control points per key, (N_i, 2|6|8) each.
        closed: Whether the shape is closed.
        k: Force this many points; default ``choose_k`` of the artists' counts.

    Returns:
        The plan every key of this shape is re-vectorised with.
    """
    k = choose_k([len(p) for p in keys], closed) if k is None else int(k)
    polys = [curves.sample_bezier(p, closed, DENSE_PER_SEGMENT // 4) for p in keys]
    axis, aspect = principal_axis(np.vstack([p - p.mean(axis=0) for p in polys]))
    if not closed:
        # Orient along the mean chord, so a seam drawn either way round gets one direction.
        chord = np.mean([p[-1] - p[0] for p in polys], axis=0)
        if float(np.dot(chord, axis)) < 0:
            axis = -axis
        return RevecPlan(k, False, (float(axis[0]), float(axis[1])))
    is_round = aspect < ROUND_ASPECT
    first = 0
    if not is_round:
        fractions = []
        for p in keys:
            curve = _Curve.build(_orient(_with_feather(np.asarray(p, dtype=np.float64)), True, axis), True)
            dense, s = curve.dense, curve.s
            ia, ib = _extremes(dense, axis)
            fractions.append(_arc_fraction(s, ia, ib))
        first = int(np.clip(round(k * float(np.median(fractions))), 1, k - 1))
    return RevecPlan(k, True, (float(axis[0]), float(axis[1])), first, is_round)


def plan_anchored(
    base: RevecPlan,
    keys: Sequence[np.ndarray],
    anchors: Sequence[np.ndarray],
    k: Optional[int] = None,
) -> RevecPlan:
    """Extend a plan so knots sit on anchor points (landmarks on the curve) on every key.

    Args:
        base: The shape's ordinary plan (gives orientation and the axis).
        keys: Control points per key (N_i, 2|6|8), any frame per key.
        anchors: Per key, the anchors in curve order (A, 2), in the same frame as its key.
        k: Total points wanted (default ``base.k``); raised to the number of fixed knots.

    Returns:
        The anchored plan; extra knots go to the gaps with the most curve (arc and turning).
    """
    axis = np.asarray(base.axis, dtype=np.float64)
    n_anchor = len(anchors[0])
    gap_share = []
    ext = []
    for key, anc in zip(keys, anchors):
        pts = _orient(_with_feather(np.asarray(key, dtype=np.float64)), base.closed, axis)
        curve = _Curve.build(pts, base.closed)
        dense, s = curve.dense, curve.s
        m = _measure(dense, s, base.closed)
        sa = _anchor_positions(dense, s, np.asarray(anc, dtype=np.float64), base.closed)
        if base.closed:
            ma = np.interp(sa, s, m)
            gap_share.append(np.diff(np.append(ma, ma[0] + 1.0)))
        else:
            ext.append((sa[0] / s[-1], 1.0 - sa[-1] / s[-1]))
            gap_share.append(np.interp(sa, s, m))
    ends = (False, False)
    if not base.closed:
        med = np.median(np.asarray(ext), axis=0)
        ends = (bool(med[0] > OPEN_END_FRACTION), bool(med[1] > OPEN_END_FRACTION))
        fixed_m = []
        for ma in gap_share:
            fm = np.concatenate([[0.0] if ends[0] else [], ma, [1.0] if ends[1] else []])
            fm[0], fm[-1] = 0.0, 1.0
            fixed_m.append(fm)
        shares = np.median(np.stack([np.diff(fm) for fm in fixed_m]), axis=0)
    else:
        shares = np.median(np.stack(gap_share), axis=0)
    n_fixed = n_anchor + int(ends[0]) + int(ends[1])
    want = base.k if k is None else int(k)
    total = max(want, n_fixed, MIN_POINTS_CLOSED if base.closed else MIN_POINTS_OPEN)
    extra = _largest_remainder(np.maximum(shares, 0.0), total - n_fixed)
    return dataclasses.replace(base, k=total, gaps=tuple(int(e) + 1 for e in extra), ends=ends)


def revectorise(
    points: np.ndarray,
    plan: RevecPlan,
    *,
    anchors: Optional[np.ndarray] = None,
    measure: bool = True,
) -> Revec:
    """Rewrite one key with the plan's ``K`` points at consistent places and fitted handles.

    Args:
        points: The artist's control points (N, 2|6|8), relative handles, any N and start.
        plan: From ``plan_shape`` / ``plan_anchored`` (or built by hand).
        anchors: For an anchored plan, this key's anchors in curve order (A, 2).
        measure: Measure the fit error (the costly part); False reports NaN.

    Returns:
        The re-vectorised key with its fit error.

    Raises:
        ShapeError: An anchored plan without the right number of anchors.
    """
    return revectorise_many([points], [plan], None if anchors is None else [anchors], measure)[0]


def revectorise_many(
    keys: Sequence[np.ndarray],
    plans: Sequence[RevecPlan],
    anchors: Optional[Sequence[np.ndarray]] = None,
    measure: bool = True,
) -> List[Revec]:
    """``revectorise`` for many keys of one shape at once (one least-squares solve for all).

    Args:
        keys: Control points per key (N_i, 2|6|8).
        plans: One plan per key (the same ``k`` and ``closed``; axes may differ per frame).
        anchors: Per key anchors for anchored plans.
        measure: Measure fit errors.

    Returns:
        One Revec per key.

    Raises:
        ShapeError: Plans that disagree in ``k``/``closed``, or wrong anchor counts.
    """
    if not keys:
        return []
    k, closed = plans[0].k, plans[0].closed
    if any(p.k != k or p.closed != closed for p in plans):
        raise ShapeError("plans", [(p.k, p.closed) for p in plans], f"all ({k}, {closed})")
    preps = []
    for i, (key, plan) in enumerate(zip(keys, plans)):
        curve = _Curve.build(
            _orient(_with_feather(curves.check_points("points", key)), closed, _axis(plan)), closed
        )
        if plan.anchored:
            n_fixed = len(plan.gaps) + (0 if closed else 1)
            n_anchor = n_fixed - int(plan.ends[0]) - int(plan.ends[1])
            raw = None if anchors is None else anchors[i]
            anc = curves.check_points("anchors", np.zeros((0, 2)) if raw is None else raw)
            if len(anc) != n_anchor:
                raise ShapeError("anchors", anc.shape, (n_anchor, 2))
            knots_s = _anchored_positions(curve.dense, curve.s, plan, anc[:, :2])
        else:
            knots_s = _knot_positions(curve.dense, curve.s, plan, _axis(plan))
        preps.append(_setup_fit(curve, knots_s))
    fitted = _solve_fits(preps, closed)
    out = []
    for prep, pts in zip(preps, fitted):
        if not measure:
            out.append(Revec(pts, float("nan"), float("nan")))
            continue
        mine = curves.sample_bezier(pts, closed, EVAL_PER_SEGMENT)
        theirs = curves.sample_bezier(prep.curve.pts, closed, EVAL_PER_SEGMENT)
        d1 = curves.point_to_polyline(mine, theirs, closed)
        d2 = curves.point_to_polyline(theirs, mine, closed)
        out.append(Revec(pts, float(0.5 * (d1.mean() + d2.mean())), float(max(d1.max(), d2.max()))))
    return out


def _axis(plan: RevecPlan) -> np.ndarray:
    return np.asarray(plan.axis, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class _Curve:
    """One oriented artist key with its dense samples and arc-length table, computed once."""

    pts: np.ndarray  # (N, 8)
    closed: bool
    seg: np.ndarray  # (S, 4, 2)
    dense: np.ndarray  # (S * D (+1), 2); closed: last sample repeats the first
    s: np.ndarray  # cumulative arc length at each dense sample

    @classmethod
    def build(cls, pts: np.ndarray, closed: bool) -> _Curve:
        seg = curves.bezier_segments(pts, closed)
        t = np.arange(DENSE_PER_SEGMENT + 1) / DENSE_PER_SEGMENT
        samp = curves.eval_segments(seg, t)  # (S, D+1, 2)
        dense = np.vstack([samp[:, :-1].reshape(-1, 2), samp[-1:, -1]])
        s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))])
        return cls(pts, closed, seg, dense, s)

    @property
    def total(self) -> float:
        return float(self.s[-1])

    def locate(self, s_query: np.ndarray) -> np.ndarray:
        """Exact points of the curve at arc-length positions.

        Returns:
            Shape: (..., 3): x, y and the fractional knot index (segment + t).
        """
        n_seg = len(self.seg)
        q = np.asarray(s_query, dtype=np.float64)
        total = self.total
        q = np.mod(q, total) if self.closed else np.clip(q, 0.0, total)
        u = np.interp(q, self.s, np.arange(len(self.s)) / DENSE_PER_SEGMENT)
        si = np.minimum(np.floor(u).astype(int), n_seg - 1)
        b = curves.bernstein(u - si)
        xy = np.einsum("...k,...kd->...d", b, self.seg[si])
        return np.concatenate([xy, u[..., None]], axis=-1)


@dataclass(frozen=True, eq=False)
class _FitSetup:
    """Everything the least-squares handle fit needs for one key."""

    curve: _Curve
    knots: np.ndarray  # (K, 3) x, y, fractional knot index in the artist's key
    target: np.ndarray  # (S, Q, 2) samples of the artist's curve inside each new segment
    prior: np.ndarray  # (S, 2, 2) default handles (artist's tangent, a third of the span)


def _setup_fit(curve: _Curve, knots_s: np.ndarray) -> _FitSetup:
    """Sample the artist's curve inside each new segment and build the handle prior."""
    closed, total = curve.closed, curve.total
    k = len(knots_s)
    ends = np.append(knots_s, knots_s[0] + total) if closed else knots_s
    knots = curve.locate(knots_s)
    frac = (np.arange(1, FIT_SAMPLES_PER_SEGMENT + 1)) / (FIT_SAMPLES_PER_SEGMENT + 1)
    seg_len = ends[1:] - ends[:-1]
    target = curve.locate(ends[:-1, None] + frac[None, :] * seg_len[:, None])[..., :2]
    n_seg = len(seg_len)
    p0 = knots[:n_seg, :2]
    p3 = knots[(np.arange(n_seg) + 1) % k, :2]
    h = np.maximum(seg_len * TANGENT_PROBE, 1e-6)
    d0 = _unit(curve.locate(ends[:-1] + h)[:, :2] - p0)
    d3 = _unit(p3 - curve.locate(ends[1:] - h)[:, :2])
    third = (seg_len / 3.0)[:, None]
    prior = np.stack([p0 + d0 * third, p3 - d3 * third], axis=1)
    return _FitSetup(curve, knots, target, prior)


def _solve_fits(preps: Sequence[_FitSetup], closed: bool) -> List[np.ndarray]:
    """Least-squares cubic handles between fixed knots, refining sample parameters (Schneider).

    All segments of all keys are solved together. A weak prior pulls each handle towards the
    artist's tangent direction at a third of the segment length: a nearly straight segment
    otherwise has a free direction along which handles and parameters drift together into a
    loop. Each segment keeps its best iteration.
    """
    k = len(preps[0].knots)
    n_seg = k if closed else k - 1
    nxt = (np.arange(n_seg) + 1) % k
    target = np.concatenate([p.target for p in preps])  # (B*S, Q, 2)
    prior = np.concatenate([p.prior for p in preps])
    p0 = np.concatenate([p.knots[:n_seg, :2] for p in preps])
    p3 = np.concatenate([p.knots[nxt, :2] for p in preps])
    q_count = target.shape[1]
    frac = (np.arange(1, q_count + 1)) / (q_count + 1)
    lam = HANDLE_PRIOR * q_count
    u = np.broadcast_to(frac, target.shape[:2]).copy()
    best = prior.copy()
    best_err = np.full(len(target), np.inf)
    for _ in range(REPARAM_ITERATIONS):
        b = curves.bernstein(u)  # (S, Q, 4)
        rhs = target - b[..., 0:1] * p0[:, None] - b[..., 3:4] * p3[:, None]
        a = b[..., 1:3]  # (S, Q, 2)
        ata = np.einsum("sqi,sqj->sij", a, a) + lam * np.eye(2)
        atr = np.einsum("sqi,sqd->sid", a, rhs) + lam * prior
        sol = np.linalg.solve(ata, atr)  # (S, 2, 2): rows c1, c2
        ctrl = np.concatenate([p0[:, None], sol, p3[:, None]], axis=1)  # (S, 4, 2)
        u = _reparametrise(ctrl, target, u)
        pos = np.einsum("sqk,skd->sqd", curves.bernstein(u), ctrl)
        err = ((pos - target) ** 2).sum(axis=(1, 2))
        better = err < best_err
        best[better] = sol[better]
        best_err[better] = err[better]
    out = []
    for i, prep in enumerate(preps):
        c = best[i * n_seg : (i + 1) * n_seg]
        pts = np.zeros((k, 8))
        pts[:, :2] = prep.knots[:, :2]
        pts[:n_seg, 4:6] = c[:, 0] - prep.knots[:n_seg, :2]
        pts[nxt, 2:4] = c[:, 1] - prep.knots[nxt, :2]
        if not closed:
            # Mirror the unused end handles so a lead grabbing an end gets a symmetric handle.
            pts[0, 2:4] = -pts[0, 4:6]
            pts[-1, 4:6] = -pts[-1, 2:4]
        pts[:, 6:8] = _feather_at(prep.curve.pts, closed, prep.knots[:, 2])
        out.append(pts)
    return out


def _with_feather(pts: np.ndarray) -> np.ndarray:
    """Pad (N, 2|6) to (N, 8) with zero handles/feather."""
    out = np.zeros((len(pts), 8))
    out[:, : min(pts.shape[1], 8)] = pts[:, :8]
    return out


def _orient(pts: np.ndarray, closed: bool, axis: np.ndarray) -> np.ndarray:
    """Closed: clockwise on screen. Open: from the -axis end towards the +axis end."""
    if closed:
        poly = curves.sample_bezier(pts, True, 8)
        return reverse_points(pts, True) if curves.signed_area(poly) < 0 else pts
    return reverse_points(pts, False) if float(np.dot(pts[-1, :2] - pts[0, :2], axis)) < 0 else pts


def _extremes(dense: np.ndarray, axis: np.ndarray) -> Tuple[int, int]:
    """Indices of the +axis and -axis extremes (the shape's two 'corners')."""
    proj = (dense[:-1] - dense[:-1].mean(axis=0)) @ axis
    return int(np.argmax(proj)), int(np.argmin(proj))


def _arc_fraction(s: np.ndarray, ia: int, ib: int) -> float:
    """Fraction of a closed curve's length on the forward arc from sample ia to sample ib."""
    total = s[-1]
    d = (s[ib] - s[ia]) % total
    return float(d / total)


def _knot_positions(
    dense: np.ndarray, s: np.ndarray, plan: RevecPlan, axis: np.ndarray
) -> np.ndarray:
    """Arc-length positions of the K new knots, increasing from the first (may exceed total).

    Knots are spread evenly in a blend of arc length and turning angle (``CURVATURE_WEIGHT``),
    so tight bends get more of them, as an artist would place them.
    """
    total = s[-1]
    k = plan.k
    m = _measure(dense, s, plan.closed)
    if not plan.closed:
        return np.interp(np.linspace(0.0, 1.0, k), m, s)
    if plan.round:
        c = dense[:-1].mean(axis=0)
        d = dense[:-1] - c
        cos = (d @ axis) / np.maximum(np.linalg.norm(d, axis=1), 1e-12)
        ia = int(np.argmax(cos))
        return _spread(m, s, ia, ia, k)
    ia, ib = _extremes(dense, axis)
    arc1 = (s[ib] - s[ia]) % total
    k1 = plan.first_arc_knots
    if not 0 < k1 < k:
        k1 = int(np.clip(round(k * arc1 / total), 1, k - 1))
    first = _spread(m, s, ia, ib, k1)
    second = _spread(m, s, ib, ia, k - k1)
    second = np.where(second < first[0], second + total, second)
    return np.concatenate([first, second])


def _anchor_positions(
    dense: np.ndarray, s: np.ndarray, anchors: np.ndarray, closed: bool
) -> np.ndarray:
    """Arc-length positions where the anchors project onto the curve, kept in curve order.

    Closed curves: the first anchor's position comes first and the rest follow it around the
    curve (values may exceed the length). A projection out of order (an anchor far off the
    curve) is pushed just past the previous one so the order never flips.
    """
    d = np.abs(_as_complex(dense[:-1] if closed else dense)[None, :] - _as_complex(anchors)[:, None])
    sa = s[np.argmin(d, axis=1)].astype(np.float64)
    total = s[-1]
    if closed:
        sa = sa[0] + np.mod(sa - sa[0], total)
    return np.maximum.accumulate(sa)


def _anchored_positions(
    dense: np.ndarray, s: np.ndarray, plan: RevecPlan, anchors: np.ndarray
) -> np.ndarray:
    """Knot positions of an anchored plan: the fixed knots plus ``gaps - 1`` between each pair."""
    total = s[-1]
    sa = _anchor_positions(dense, s, anchors, plan.closed)
    m = _measure(dense, s, plan.closed)
    if plan.closed:
        fixed = np.append(sa, sa[0] + total)
    else:
        fixed = sa.copy()
        fixed = np.concatenate([[0.0] if plan.ends[0] else [], fixed, [total] if plan.ends[1] else []])
        fixed[0], fixed[-1] = 0.0, total
    out = []
    for j, count in enumerate(plan.gaps):
        a, b = fixed[j], fixed[j + 1]
        ma = _measure_at(m, s, a, plan.closed)
        mb = ma + _measure_span(m, s, a, b, plan.closed)
        targets = ma + (mb - ma) * np.arange(count) / count
        out.append(_position_at(m, s, targets, a, plan.closed))
    knots = np.concatenate(out)
    if not plan.closed:
        knots = np.append(knots, total)
    return knots


def _measure_at(m: np.ndarray, s: np.ndarray, pos: float, closed: bool) -> float:
    """Measure at an arc-length position (periodic for closed curves)."""
    total = s[-1]
    turns = np.floor(pos / total) if closed else 0.0
    return float(np.interp(pos - turns * total, s, m) + turns)


def _measure_span(m: np.ndarray, s: np.ndarray, a: float, b: float, closed: bool) -> float:
    """Measure between two arc-length positions, a <= b (b may wrap past the length)."""
    return _measure_at(m, s, b, closed) - _measure_at(m, s, a, closed)


def _position_at(
    m: np.ndarray, s: np.ndarray, targets: np.ndarray, start: float, closed: bool
) -> np.ndarray:
    """Arc-length positions of measure values, unwrapped to be >= ``start``."""
    total = s[-1]
    if not closed:
        return np.interp(targets, m, s)
    turns = np.floor(targets)
    pos = np.interp(targets - turns, m, s) + turns * total
    return np.where(pos < start - 1e-9, pos + total, pos)


def _largest_remainder(shares: np.ndarray, count: int) -> np.ndarray:
    """Split ``count`` items proportionally to ``shares`` (integers summing to ``count``)."""
    if count <= 0:
        return np.zeros(len(shares), dtype=int)
    w = shares / shares.sum() if shares.sum() > 0 else np.full(len(shares), 1.0 / len(shares))
    raw = w * count
    out = np.floor(raw).astype(int)
    rest = count - int(out.sum())
    out[np.argsort(-(raw - out), kind="stable")[:rest]] += 1
    return out


def _as_complex(xy: np.ndarray) -> np.ndarray:
    return xy[..., 0] + 1j * xy[..., 1]


def _measure(dense: np.ndarray, s: np.ndarray, closed: bool) -> np.ndarray:
    """Cumulative blend of arc-length and turning-angle fractions along the dense curve, 0..1."""
    total = max(s[-1], 1e-12)
    seg = np.diff(dense, axis=0)
    heading = np.arctan2(seg[:, 1], seg[:, 0])
    prev = np.roll(heading, 1) if closed else np.concatenate([heading[:1], heading[:-1]])
    turn = np.abs(np.angle(np.exp(1j * (heading - prev))))
    turned = np.concatenate([[0.0], np.cumsum(turn)])
    frac_turn = turned / turned[-1] if turned[-1] > 1e-9 else s / total
    return (1.0 - CURVATURE_WEIGHT) * s / total + CURVATURE_WEIGHT * frac_turn


def _spread(m: np.ndarray, s: np.ndarray, i0: int, i1: int, count: int) -> np.ndarray:
    """``count`` arc-length positions evenly in measure ``m`` from sample i0 towards i1 (closed)."""
    m0, m1 = m[i0], m[i1]
    span = (m1 - m0) % 1.0 if i1 != i0 else 1.0
    targets = m0 + np.arange(count) * span / count
    wraps = targets >= 1.0
    pos = np.interp(np.mod(targets, 1.0), m, s)
    return pos + np.where(wraps, s[-1], 0.0)


def _unit(v: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.where(n > 1e-12, v / np.where(n > 1e-12, n, 1.0), 0.0)


def _reparametrise(ctrl: np.ndarray, target: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One Newton step per sample towards its closest point on the current segment."""
    d1 = 3.0 * (ctrl[:, 1:] - ctrl[:, :-1])  # (S, 3, 2)
    d2 = 2.0 * (d1[:, 1:] - d1[:, :-1])  # (S, 2, 2)
    s = 1.0 - u
    b = curves.bernstein(u)
    pos = np.einsum("sqk,skd->sqd", b, ctrl)
    b2 = np.stack([s * s, 2.0 * s * u, u * u], axis=-1)
    vel = np.einsum("sqk,skd->sqd", b2, d1)
    b1 = np.stack([s, u], axis=-1)
    acc = np.einsum("sqk,skd->sqd", b1, d2)
    diff = pos - target
    num = (diff * vel).sum(-1)
    den = (vel * vel).sum(-1) + (diff * acc).sum(-1)
    step = np.where(np.abs(den) > 1e-12, num / np.where(den == 0, 1.0, den), 0.0)
    u_new = np.clip(u - step, 0.0, 1.0)
    # Keep the samples in order along the segment (a Newton step can overshoot at a corner).
    return np.maximum.accumulate(u_new, axis=1)


def _feather_at(pts: np.ndarray, closed: bool, param: np.ndarray) -> np.ndarray:
    """Per-point feather offsets interpolated along the curve at fractional knot indices."""
    feather = pts[:, 6:8]
    n = len(pts)
    if not np.any(feather):
        return np.zeros((len(param), 2))
    i0 = np.floor(param).astype(int)
    t = (param - i0)[:, None]
    i0 = i0 % n if closed else np.minimum(i0, n - 1)
    i1 = (i0 + 1) % n if closed else np.minimum(i0 + 1, n - 1)
    return (1.0 - t) * feather[i0] + t * feather[i1]
