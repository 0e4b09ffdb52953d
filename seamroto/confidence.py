"""Calibrated landmark error model: how far a fused point is likely to be from the truth.

Why: the smoother's posterior variance only knows the noise it models (detector jitter, flow
noise), but the errors an artist sees are mostly what it cannot model: a detector that is
consistently a few pixels off on a silhouette point, a pupil under a lid, a detection the track
had to overrule. Each of those leaves evidence that fusion has in hand, so the per-axis error
variance is modelled as a non-negative mix of it::

    sigma^2 = posterior_gain * posterior^2          smoother's own variance (and its inflation)
            + residual_gain * t^2 |fused - detection|^2   tension: a detection the track
                                                        disagrees with yet half-trusts (t its
                                                        robust weight times its relative
                                                        confidence; 0 for a clear outlier)
            + (detector_px / conf)^2                 the detector's own confidence
            + spread_gain * spread^2                 test-time crop disagreement, when measured
            + floor_px^2
            + hidden_gain * jump^2                   a hidden point that moved while hidden

with weights fitted by maximum likelihood of measured errors on shots with ground truth
(``calibrate_error_model``), on the character's training shots so that a held-out shot is
judged by numbers it did not set. ``confidence`` is then P(|error| < tolerance).

The last term is for points the detector could not see (a pupil under a closed lid): the track
carries them with the face, so if the point sits elsewhere relative to the face after the
occlusion than before it (a gaze change during a blink), it moved while hidden, at a time
nothing shows. ``jump`` is that displacement; a move equally likely on any frame of the run
leaves a per-axis error variance of about ``jump^2 / 4`` (``HIDDEN_MOVE_GAIN``), so that gain is
set, not fitted.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Tuple

import numpy as np
from scipy.optimize import minimize

from seamroto.errors import ShapeError

logger = logging.getLogger(__name__)

# Detector confidences below this are treated as this (1 / conf^2 stays finite).
MIN_CONFIDENCE = 1e-3
# Fitted gains below this are reported as 0 (log-parameterised fit never reaches 0 exactly).
NEGLIGIBLE_GAIN = 1e-6
# Start of the log-gain search and its stopping rule.
FIT_START_LOG = -3.0
FIT_MAX_ITERATIONS = 4000
FIT_TOLERANCE = 1e-7
FEATURES = ("posterior", "residual", "detector", "spread", "floor", "hidden")
#: Per-axis error variance per squared jump of a point that moved while hidden (see above).
HIDDEN_MOVE_GAIN = 0.25


@dataclass(frozen=True)
class ErrorModel:
    """Weights of the per-axis error variance (see the module docstring); defaults are fitted.

    The defaults were fitted on a calibration shot that the bundled demo character neither
    trained on nor is scored on (``seamroto synth --character mara --seed 21 --frames 100
    --size 2048x1080``; real detections; ``benchmarks/bench_fusion.py --write-cache DIR --model
    models/mara/v7 --shot-dirs SHOT`` then ``--calibrate DIR/SHOT.npz``). The training shots
    would be optimistic: the detector has seen them. A character whose detector is better or
    worse calibrated can carry its own.

    Attributes:
        posterior_gain: multiplies the smoother's posterior variance.
        residual_gain: multiplies the squared trusted residual (see ``error_features``).
        detector_px: per-axis error (px) of a detection with confidence 1; scales as 1/conf.
        spread_gain: multiplies the squared spread of test-time crops (0: not measured).
        floor_px: per-axis error every point has at least.
        hidden_gain: multiplies the squared jump of a point that moved while hidden
            (``HIDDEN_MOVE_GAIN``; 0, the default, ignores it as earlier models did).
    """

    posterior_gain: float = 1.0
    residual_gain: float = 1.11
    detector_px: float = 0.163
    spread_gain: float = 0.0
    floor_px: float = 0.0
    hidden_gain: float = 0.0

    def as_vector(self) -> np.ndarray:
        """Gains in ``FEATURES`` order, as the fit sees them (variance per unit feature)."""
        return np.array(
            [
                self.posterior_gain,
                self.residual_gain,
                self.detector_px**2,
                self.spread_gain,
                self.floor_px**2,
                self.hidden_gain,
            ]
        )

    @staticmethod
    def from_vector(w: Sequence[float]) -> ErrorModel:
        """Inverse of ``as_vector``."""
        g = [0.0 if v < NEGLIGIBLE_GAIN else float(v) for v in w]
        g += [0.0] * (len(FEATURES) - len(g))
        return ErrorModel(g[0], g[1], math.sqrt(g[2]), g[3], math.sqrt(g[4]), g[5])


def error_features(
    posterior_px: np.ndarray,
    residual_px: np.ndarray,
    det_conf: np.ndarray,
    spread_px: Optional[np.ndarray] = None,
    hidden_jump_px: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Stack the evidence per point as squared px, in ``FEATURES`` order.

    Args:
        posterior_px: the smoother's per-axis sigma (inf where there is no data).
        residual_px: distance between fused point and its detection, times the trust the
            detection kept (0 or NaN where none; ``fusion.fuse_tracks`` computes it).
        det_conf: the detector's own confidence in [0, 1].
        spread_px: RMS distance of test-time crop detections from their mean, or None.
        hidden_jump_px: on frames where the point was hidden, how far it moved relative to the
            face between the frames either side of the occlusion (0 elsewhere), or None.

    Shape: each (F, L) -> (F, L, 6) float64; NaN rows where the point has no data.

    Raises:
        ShapeError: when the inputs differ in shape.
    """
    post = np.asarray(posterior_px, dtype=np.float64)
    for name, arr in (
        ("residual_px", residual_px), ("det_conf", det_conf), ("spread_px", spread_px),
        ("hidden_jump_px", hidden_jump_px),
    ):
        if arr is not None and np.shape(arr) != post.shape:
            raise ShapeError(name, np.shape(arr), post.shape)
    res = np.nan_to_num(np.asarray(residual_px, dtype=np.float64), nan=0.0)
    conf = np.clip(np.nan_to_num(np.asarray(det_conf, dtype=np.float64), nan=0.0), MIN_CONFIDENCE, 1.0)
    spread = np.zeros_like(post) if spread_px is None else np.nan_to_num(np.asarray(spread_px, float), nan=0.0)
    jump = (
        np.zeros_like(post) if hidden_jump_px is None else np.nan_to_num(np.asarray(hidden_jump_px, float), nan=0.0)
    )
    out = np.stack([post**2, res**2, 1.0 / conf**2, spread**2, np.ones_like(post), jump**2], axis=-1)
    out[~np.isfinite(post)] = np.nan
    return out


def error_sigma(features: np.ndarray, model: ErrorModel = ErrorModel()) -> np.ndarray:
    """Per-axis error sigma (px) of every point: sqrt of the modelled variance.

    Shape: (F, L, 6) -> (F, L) float64; inf where the features are NaN (no data). Five
    columns (features of an older version, without ``hidden``) are accepted too.
    """
    x = np.asarray(features, dtype=np.float64)
    var = x @ model.as_vector()[: x.shape[-1]]
    return np.where(np.isfinite(var), np.sqrt(np.maximum(var, 0.0)), np.inf)


def within_probability(sigma_px: np.ndarray, tolerance_px: float) -> np.ndarray:
    """P(|error| < tolerance) for a 2-D isotropic Gaussian error of per-axis std ``sigma_px``."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        c = -np.expm1(-(tolerance_px**2) / (2.0 * np.asarray(sigma_px, dtype=np.float64) ** 2))
    return np.where(np.isfinite(sigma_px), np.clip(c, 0.0, 1.0), 0.0)


def _nll(log_w: np.ndarray, feats: np.ndarray, err2: np.ndarray, active: np.ndarray, base: np.ndarray) -> float:
    """Mean negative log-likelihood of squared 2-D errors under per-axis variance feats @ w."""
    w = base.copy()
    w[active] = np.exp(log_w)
    var = np.maximum(feats @ w, 1e-12)
    return float(np.mean(np.log(var) + err2 / (2.0 * var)))


def calibrate_error_model(
    features: np.ndarray,
    error_px: np.ndarray,
    use: Sequence[str] = FEATURES,
    fixed: Optional[Mapping[str, float]] = None,
) -> Tuple[ErrorModel, float]:
    """Fit the gains to measured errors by maximum likelihood (2-D Gaussian, per-axis variance).

    Args:
        features: ``error_features`` of many points, any leading shape (..., 6).
        error_px: their measured distance to the truth, same leading shape.
        use: which features may get a non-zero gain (others stay 0).
        fixed: gains held at a given value instead of fitted, in ``as_vector`` units (a
            variance per unit feature). Holding ``posterior`` at 1 keeps the smoother's own
            variance as it is where its noise model holds, and fits only what it misses.

    Returns:
        (the fitted model, its mean negative log-likelihood per point).

    Raises:
        ShapeError: when the shapes do not agree.
        ValueError: when fewer than ten points have both features and a measured error.
    """
    x = np.asarray(features, dtype=np.float64)
    e = np.asarray(error_px, dtype=np.float64)
    if x.shape[:-1] != e.shape or x.shape[-1] != len(FEATURES):
        raise ShapeError("features", x.shape, e.shape + (len(FEATURES),))
    x = x.reshape(-1, len(FEATURES))
    e = e.reshape(-1)
    ok = np.isfinite(x).all(axis=1) & np.isfinite(e)
    if ok.sum() < 10:
        raise ValueError(f"need at least 10 points with ground truth to calibrate, got {int(ok.sum())}")
    fixed = dict(fixed or {})
    unknown = sorted(set(fixed) - set(FEATURES))
    if unknown:
        raise ValueError(f"unknown error-model features {unknown}; known: {list(FEATURES)}")
    base = np.array([float(fixed.get(name, 0.0)) for name in FEATURES])
    active = np.array([name in use and name not in fixed for name in FEATURES])
    res = minimize(
        _nll,
        np.full(int(active.sum()), FIT_START_LOG),
        args=(x[ok], e[ok] ** 2, active, base),
        method="Nelder-Mead",
        options={"maxiter": FIT_MAX_ITERATIONS, "xatol": FIT_TOLERANCE, "fatol": FIT_TOLERANCE},
    )
    w = base.copy()
    w[active] = np.exp(res.x)
    logger.info("error model fitted on %d points: gains %s", int(ok.sum()), np.round(w, 4))
    return ErrorModel.from_vector(w), float(res.fun)
