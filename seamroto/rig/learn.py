"""Learning a roto rig from the artists' shapes (``learn_rig``): one ``ShapeRig`` per shape.

Per shape: gather and validate its keys (``rigsamples``), find its face frames (``rigframe``),
fit every candidate parametrisation (``rigcandidates``) by cross-validated ridge regression
(``rigridge``) and keep the one with the smallest cross-validated curve distance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import List, Mapping, Optional, Sequence, Tuple

import numpy as np

from seamroto import curves
from seamroto.datamodel import Annotation
from seamroto.errors import AnnotationError
from seamroto.rig.candidates import _Candidate, _Fit, _fit_candidate, _natively_consistent, _revec_candidates
from seamroto.rig.frame import FRAME_KINDS, POINT_COLS, _fit_frames, _procrustes_mean
from seamroto.rig.model import DEFAULT_LANDMARK_NOISE_PX, Rig, ShapeRig
from seamroto.rig.ridge import RIDGE_GRID, _cv_folds, _ridge_fit
from seamroto.rig.samples import _choose_landmarks, _gather, _landmark_distances, _Samples

logger = logging.getLogger(__name__)

#: Fewest landmarks a shape is rigged from (a similarity needs two; more carry expression).
MIN_LANDMARKS = 4
#: A landmark belongs to a shape when its median distance to the shape's curve over the
#: training frames is within this fraction of the face size (RMS landmark radius).
NEAR_FRACTION = 0.02
#: Consistent artist points whose cross-validated curve error is below this (px) are kept
#: without trying a re-vectorisation.
NATIVE_EXACT_PX = 0.05
#: Keys scored (evenly spread) when candidates are compared on the curve, and the Bezier
#: samples per segment for that comparison.
CV_SCORE_ROWS = 48
CV_SCORE_SAMPLES = 16
REVEC_MODES = ("auto", "always", "never")


def learn_rig(
    annotations: Sequence[Annotation],
    landmark_names: Sequence[str],
    shape_names: Optional[Sequence[str]] = None,
    *,
    ridge: Optional[float] = None,
    point_counts: Optional[Mapping[str, int]] = None,
    landmark_subsets: Optional[Mapping[str, Sequence[str]]] = None,
    revectorise: str = "auto",
    near_fraction: float = NEAR_FRACTION,
    min_landmarks: int = MIN_LANDMARKS,
    frame: str = "similarity",
    landmark_noise_px: float = DEFAULT_LANDMARK_NOISE_PX,
) -> Rig:
    """Learn each shape's points, handles and feather as a function of the landmarks.

    Args:
        annotations: Training ground truth: landmark tracks plus the artists' shapes, either
            animated (``shapes``) or per frame with varying point counts (``frame_shapes``).
        landmark_names: The rig's landmark order (``Rig.apply`` takes points in this order).
        shape_names: Shapes to rig (default: every shape found, in first-seen order).
        ridge: Ridge strength relative to the number of training frames; None chooses it by
            cross-validation (leave one annotation out when there are several, else 5-fold).
        point_counts: Force ``K`` for some shapes (default: the artists' median count).
        landmark_subsets: Force the landmarks some shapes are rigged from.
        revectorise: ``"auto"`` keeps the artist's own points when every key already agrees
            (same count and order), else re-vectorises; ``"always"`` or ``"never"``.
        near_fraction: Distance (fraction of face size) within which a landmark is the shape's.
        min_landmarks: Fewest landmarks per shape (the nearest ones fill up).
        frame: Per-frame landmark normalisation, ``"similarity"`` or ``"affine"``.
        landmark_noise_px: The tracker's expected landmark jitter (standard deviation per
            coordinate, px). The regression is regularised as if trained on landmarks that
            noisy, so exact ground truth does not teach it to amplify jitter; 0 fits the
            ground truth as closely as possible.

    Returns:
        The rig, with per-shape statistics (re-vectorisation fit error, training error).

    Raises:
        AnnotationError: A shape with too few points or that crosses itself (naming the shape,
            frame and annotation), a shape missing from every annotation, a shape that never
            has its landmarks, or ``revectorise="never"`` with keys that disagree.
    """
    if frame not in FRAME_KINDS:
        raise AnnotationError(f"frame must be one of {FRAME_KINDS}, not {frame!r}")
    if revectorise not in REVEC_MODES:
        raise AnnotationError(f"revectorise must be one of {REVEC_MODES}, not {revectorise!r}")
    if landmark_noise_px < 0:
        raise AnnotationError(f"landmark_noise_px must be 0 or more, not {landmark_noise_px}")
    names = tuple(landmark_names)
    gathered = _gather(annotations, names, shape_names)
    shapes = []
    for name, samples in gathered.items():
        opts = _Options(
            ridge=ridge,
            k=None if point_counts is None else point_counts.get(name),
            subset=None if landmark_subsets is None else landmark_subsets.get(name),
            mode=revectorise,
            near_fraction=near_fraction,
            min_landmarks=min_landmarks,
            frame=frame,
            noise_var=float(landmark_noise_px) ** 2,
        )
        shapes.append(_learn_shape(samples, names, opts))
    meta = {
        "trained_on": [a.source for a in annotations],
        "train_frames": int(sum(len(s.keys) for s in gathered.values())),
        "landmark_noise_px": float(landmark_noise_px),
    }
    return Rig(names, tuple(shapes), meta)


@dataclass(frozen=True)
class _Options:
    """``learn_rig``'s settings for one shape."""

    ridge: Optional[float]
    k: Optional[int]
    subset: Optional[Sequence[str]]
    mode: str
    near_fraction: float
    min_landmarks: int
    frame: str
    noise_var: float


def _learn_shape(samples: _Samples, names: Tuple[str, ...], opts: _Options) -> ShapeRig:
    """Rig one shape (see the module docstring for the recipe)."""
    name, closed = samples.name, samples.closed
    ridge, k, subset, mode = opts.ridge, opts.k, opts.subset, opts.mode
    frame, noise_var = opts.frame, opts.noise_var
    dist = _landmark_distances(samples)
    if subset is None:
        idx = _choose_landmarks(samples.name, dist, opts.near_fraction, opts.min_landmarks)
    else:
        unknown = [n for n in subset if n not in names]
        if unknown:
            raise AnnotationError(
                f"shape '{name}': landmark(s) {', '.join(unknown)} are not in the rig's landmarks"
            )
        idx = [names.index(n) for n in subset]
    lms = np.stack(samples.landmarks)[:, idx]
    usable = np.all(np.isfinite(lms), axis=(1, 2))
    if usable.sum() < 2:
        raise AnnotationError(
            f"shape '{name}' has fewer than two training frames on which all of its landmarks "
            f"({', '.join(names[i] for i in idx)}) are known; annotate them or pass "
            "landmark_subsets"
        )
    if not usable.all():
        logger.info("%s: %d key(s) skipped, a landmark is unknown there", name, int((~usable).sum()))
    keep = np.flatnonzero(usable)
    x = lms[keep]
    mean = _procrustes_mean(x)
    frames, good = _fit_frames(x, mean, frame)
    if frame != "similarity" and not good.all():
        logger.info("%s: landmarks too thin for an %s frame; using a similarity", name, frame)
        frame = "similarity"
        frames, good = _fit_frames(x, mean, frame)
    if not good.all():
        bad = samples.where[keep[int(np.argmin(good))]]
        raise AnnotationError(
            f"shape '{name}': its landmarks coincide or lie on a line, so no face frame can be "
            "found; rig it from more landmarks (landmark_subsets) or another frame kind",
            path=bad[0],
            frame=bad[1],
        )
    keys = [samples.keys[i] for i in keep]
    face_keys = [frames.key_to_face(key, j) for j, key in enumerate(keys)]
    feats = frames.features(x)
    folds = _cv_folds(np.asarray(samples.groups)[keep])
    grid = RIDGE_GRID if ridge is None else (float(ridge),)
    rows = np.unique(np.linspace(0, len(keys) - 1, CV_SCORE_ROWS).astype(int))

    def score(fit: _Fit) -> float:
        """Cross-validated curve distance to the artist's keys (image px), on a sample of keys."""
        if not folds:
            return 0.0
        img = frames.take(rows).keys_from_face(fit.cv_pred[rows].reshape(len(rows), -1, POINT_COLS))
        return float(
            np.mean(
                [
                    curves.shape_distance(img[i], keys[r], closed, CV_SCORE_SAMPLES)
                    for i, r in enumerate(rows)
                ]
            )
        )

    # Different parametrisations only compare on the curve itself, so candidates are scored by
    # their cross-validated curve distance. Consistent artist points come first: when they are
    # already (near) exact there is nothing a re-vectorisation could add.
    fits: List[Tuple[float, _Fit]] = []
    if _natively_consistent(name, face_keys, k, mode):
        targets = np.stack([fk.reshape(-1) for fk in face_keys])
        (native,) = _fit_candidate(
            _Candidate(None, (), targets, np.zeros_like(targets)), feats, folds, grid, closed,
            noise_var,
        )
        fits.append((score(native), native))
    if mode != "never" and not (fits and fits[0][0] <= NATIVE_EXACT_PX):
        cands = _revec_candidates(
            name, closed, keys, face_keys, x, idx, dist[keep], frames, mean, k, bool(fits)
        )
        revec_fits = [f for c in cands for f in _fit_candidate(c, feats, folds, grid, closed, noise_var)]
        for fit in revec_fits:
            fits.append((score(fit) if fits or len(revec_fits) > 1 else 0.0, fit))
    chosen = min(fits, key=lambda sf: sf[0])[1]
    logger.debug(
        "%s: cross-validated curve distance per candidate %s",
        name,
        [(round(f[0], 3), f[1].candidate.arc is not None, f[1].encoding, f[1].ridge) for f in fits],
    )
    cand, encoding, lam = chosen.candidate, chosen.encoding, chosen.ridge
    plan, guide, fit_errors = cand.plan, cand.guide, cand.fit_errors
    k_out = cand.targets.shape[1] // POINT_COLS
    weights, f_mean, t_mean = _ridge_fit(feats, cand.encode(encoding, closed), lam, noise_var)
    pred = cand.decode(encoding, closed, (feats - f_mean) @ weights + t_mean, slice(None))
    img_pred = frames.take(rows).keys_from_face(pred[rows].reshape(len(rows), k_out, POINT_COLS))
    train_err = [
        curves.shape_distance(img_pred[i], keys[r], closed, CV_SCORE_SAMPLES)
        for i, r in enumerate(rows)
    ]
    stats = {
        "train_frames": float(len(keys)),
        "train_error_px": float(np.mean(train_err)),
        "revec_error_px": float(np.mean(fit_errors)) if fit_errors else 0.0,
        "revec_error_max_px": float(np.max(fit_errors)) if fit_errors else 0.0,
    }
    logger.info(
        "%s: K=%d from %d landmarks (%d on the curve), %s, %s frame, ridge %.3g, train error "
        "%.3f px",
        name,
        k_out,
        len(idx),
        len(guide),
        "native points" if plan is None else f"re-vectorised (fit {stats['revec_error_px']:.3f} px)",
        frame,
        lam,
        stats["train_error_px"],
    )
    return ShapeRig(
        name=name,
        closed=closed,
        layer=samples.layer,
        k=k_out,
        landmarks=tuple(names[i] for i in idx),
        mean_landmarks=mean,
        weights=weights,
        feature_mean=f_mean,
        target_mean=t_mean,
        feather=float(np.median(samples.feathers)),
        feather_falloff=float(np.median(samples.falloffs)),
        plan=plan,
        guide=tuple(names[g] for g in guide),
        encoding=encoding,
        arc_mu=None if cand.arc is None else cand.arc.mu,
        arc_weight=None if cand.arc is None else cand.arc.weight,
        frame=frame,
        ridge=lam,
        stats=stats,
    )
