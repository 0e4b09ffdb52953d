"""Guide curves of a rig shape: smooth curves through the landmarks that lie on it (``BASELINES``).

Catmull-Rom through the landmarks, or a curve whose length between each pair of landmarks is
predicted from their chords (``_ArcModel``), re-vectorised like the artist's keys so the
regression only learns the difference from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from seamroto import curves, revec
from seamroto.rig.frame import POINT_COLS, _Frames

#: Gap-length model (``_ArcModel``): lengths and chords are floored at this (px) before logs;
#: variance floor of the log-ratio predictors; a landmark's tangent weighs each neighbouring
#: chord by (chord / predicted length) to this power; bisection steps for the handle length,
#: and chords per Bezier when measuring length.
ARC_MIN_PX = 1e-3
ARC_VAR_FLOOR = 1e-4
ARC_TANGENT_POWER = 4.0
ARC_BISECTIONS = 20
ARC_SAMPLES = 24
BASELINES = ("catmull_rom", "arc")


@dataclass(frozen=True, eq=False)
class _ArcModel:
    """How long the curve is between consecutive guide landmarks, from the landmarks' chords.

    Landmarks are often defined by where they sit along the artist's contour (evenly spaced
    along an arc, as in the LAIKA data and most face-landmark conventions), so the curve's
    length between two of them is predictable from a neighbouring chord even where the curve
    bulges far away from its own: a sideburn drawn longer hangs further below its last pair of
    landmarks. Each gap's length is the inverse-variance weighted combination of the
    predictions ``log L_j = log c_k + mu[j, k]`` from every chord ``k``; the weights come from
    the training keys, so a gap whose length follows no chord keeps about its own chord.

    ``mu``, ``weight``: Shape (G, G), G gaps between guide landmarks; ``weight`` rows sum to 1.
    """

    mu: np.ndarray
    weight: np.ndarray

    @classmethod
    def learn(cls, lengths: np.ndarray, chords: np.ndarray) -> _ArcModel:
        """From the artist's gap lengths and the landmark chords (S, G) of the training keys."""
        r = np.log(np.maximum(lengths, ARC_MIN_PX))[:, :, None] - np.log(
            np.maximum(chords, ARC_MIN_PX)
        )[:, None, :]
        mu = r.mean(axis=0)
        inv = 1.0 / (r.var(axis=0) + ARC_VAR_FLOOR)
        return cls(mu, inv / inv.sum(axis=1, keepdims=True))

    def lengths(self, chords: np.ndarray) -> np.ndarray:
        """Predicted gap lengths (F, G) from chords (F, G); never shorter than the chord."""
        logc = np.log(np.maximum(chords, ARC_MIN_PX))
        pred = np.exp(np.einsum("jk,fjk->fj", self.weight, logc[:, None, :] + self.mu[None]))
        return np.maximum(pred, chords)


def _gap_chords(guide: np.ndarray, closed: bool) -> np.ndarray:
    """Chord vectors between consecutive guide landmarks (F, G, 2); closed curves wrap."""
    nxt = np.roll(guide, -1, axis=1) if closed else guide[:, 1:]
    return nxt - guide[:, : nxt.shape[1]]


def _gap_lengths(keys: Sequence[np.ndarray], plan: revec.RevecPlan) -> np.ndarray:
    """Arc length of each key between consecutive anchor knots of an anchored plan.

    Args:
        keys: Re-vectorised keys (K, 8) with knots on the anchors (``plan_anchored``).
        plan: Their plan.

    Returns:
        Shape: (S, G), G gaps between anchors.
    """
    starts = np.concatenate([[0], np.cumsum(plan.gaps)]).astype(int)
    closed = plan.closed
    if closed:
        fixed = starts[: len(plan.gaps) + 1]
    else:
        lead, n_anchor = int(plan.ends[0]), len(plan.gaps) + 1 - int(plan.ends[0]) - int(plan.ends[1])
        fixed = starts[lead : lead + n_anchor]
    t = np.linspace(0.0, 1.0, ARC_SAMPLES + 1)
    out = []
    for key in keys:
        seg = curves.eval_segments(curves.bezier_segments(key, closed), t)
        seg_len = np.linalg.norm(np.diff(seg, axis=1), axis=2).sum(axis=1)
        cum = np.concatenate([[0.0], np.cumsum(seg_len)])
        out.append(cum[fixed[1:]] - cum[fixed[:-1]])
    return np.asarray(out)


def _bezier_length(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray) -> np.ndarray:
    """Lengths of cubic Beziers given by control points (..., 2), by ``ARC_SAMPLES`` chords."""
    t = np.linspace(0.0, 1.0, ARC_SAMPLES + 1)
    b = curves.bernstein(t)  # (Q, 4)
    pts = sum(b[:, i, None] * c[..., None, :] for i, c in enumerate((p0, p1, p2, p3)))
    return np.linalg.norm(np.diff(pts, axis=-2), axis=-1).sum(axis=-1)


def _arc_handles(guide: np.ndarray, arc: _ArcModel, closed: bool) -> np.ndarray:
    """A smooth curve through the guide landmarks whose gaps have the predicted lengths.

    At each landmark the curve runs along its neighbouring chords, weighted by how straight
    the curve is predicted to be there (chord over length, to ``ARC_TANGENT_POWER``), so a
    gap that bulges (the bottom of a sideburn) takes its direction from the straight sides
    around it. Each gap's two handles get the one length that gives the gap its predicted arc
    length (never less than the Catmull-Rom third of the chord).

    Args:
        guide: Landmarks per frame in curve order (F, g, 2).
        arc: The gap-length model.
        closed: Whether the curve closes.

    Returns:
        Shape: (F, g, 6) knots with relative handles.
    """
    chord = _gap_chords(guide, closed)
    c = np.linalg.norm(chord, axis=-1)
    d = chord / np.maximum(c, ARC_MIN_PX)[..., None]
    target = arc.lengths(c)
    wd = ((c / np.maximum(target, ARC_MIN_PX)) ** ARC_TANGENT_POWER)[..., None] * d
    if closed:
        t = wd + np.roll(wd, 1, axis=1)
    else:
        t = np.zeros_like(guide)
        t[:, :-1] += wd
        t[:, 1:] += wd
    tn = np.linalg.norm(t, axis=-1, keepdims=True)
    t = np.where(tn > 1e-12, t / np.maximum(tn, 1e-12), 0.0)
    nxt = (lambda a: np.roll(a, -1, axis=1)) if closed else (lambda a: a[:, 1:])
    a0, a1 = guide[:, : chord.shape[1]], nxt(guide)
    t0, t1 = t[:, : chord.shape[1]], nxt(t)
    # Bisection for the handle length giving each gap its length (monotone once past c/3).
    lo = np.zeros_like(c)
    hi = np.maximum(target, ARC_MIN_PX)
    for _ in range(ARC_BISECTIONS):
        mid = 0.5 * (lo + hi)
        m = mid[..., None]
        short = _bezier_length(a0, a0 + m * t0, a1 - m * t1, a1) < target
        lo = np.where(short, mid, lo)
        hi = np.where(short, hi, mid)
    h = np.maximum(0.5 * (lo + hi), c / 3.0)
    out = np.zeros(guide.shape[:2] + (6,))
    out[..., :2] = guide
    n_gaps = chord.shape[1]
    out[:, :n_gaps, 4:6] = h[..., None] * t0
    if closed:
        out[..., 2:4] = -np.roll(h, 1, axis=1)[..., None] * t
    else:
        out[:, 1:, 2:4] = -h[..., None] * t1
        out[:, 0, 2:4] = -out[:, 0, 4:6]
        out[:, -1, 4:6] = -out[:, -1, 2:4]
    return out


def _baseline(
    guide: np.ndarray, plan: revec.RevecPlan, frames: _Frames, arc: Optional[_ArcModel] = None
) -> np.ndarray:
    """A smooth curve through the guide landmarks, re-vectorised like the targets, face frame.

    Args:
        guide: Guide landmarks per frame, curve order (F, g, 2), _img space.
        plan: The shape's anchored plan (face-frame axis).
        frames: The frames' face frames.
        arc: Gap lengths to give the curve (``_arc_handles``); None = Catmull-Rom.

    Returns:
        Shape: (F, 8K).
    """
    if len(guide) == 0:
        return np.zeros((0, plan.k * POINT_COLS))
    if arc is None:
        smooth = [curves.catmull_rom_handles(g, plan.closed) for g in guide]
    else:
        smooth = list(_arc_handles(guide, arc, plan.closed))
    fitted = revec.revectorise_many(smooth, frames.plans_in_frames(plan), list(guide), False)
    return np.stack([frames.key_to_face(rv.points, j).reshape(-1) for j, rv in enumerate(fitted)])
