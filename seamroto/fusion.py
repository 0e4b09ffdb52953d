"""Temporal fusion of per-frame landmark detections with optical flow, offline and bidirectional.

Why this model: a detector is unbiased but jittery (each frame is independent), optical flow is
precise frame-to-frame but drifts. For every continuous landmark we solve, per shot, the
maximum a-posteriori track of a constant-velocity model::

    E(x) = sum_t a_t |x_t - z_t|^2                      detections z (weight = confidence / s_det^2)
         + sum_t b_t |x_{t+1} - x_t - d_t|^2            flow displacements d, forward and backward
         + sum_t g_t |x_{t+1} - 2 x_t + x_{t-1}|^2      constant-velocity prior (smoothing)

This is the same estimate a forward Kalman filter plus Rauch-Tung-Striebel backward pass gives
for that Gaussian model, solved directly as one banded (pentadiagonal) linear system per
landmark, which also yields the posterior variance of every point. Iteratively reweighted least
squares with Cauchy weights on all three terms makes it robust: outlier detections and bad flow
lose their weight, and a large *real* acceleration (a step, a fast move) loses its smoothing
weight, so the track follows it instead of smearing it.

Landmarks declared *discontinuous* (replacement mouth pieces, swapped every frame) are never
flow-propagated or smoothed: they keep their per-frame detection, and get their confidence
from a face-stabilised comparison with their temporal neighbours. Frames with no data stay NaN.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Collection, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
from scipy.linalg import cholesky_banded, cho_solve_banded

from seamroto.config import DEFAULT_CONFIDENCE_THRESHOLD, DEFAULT_SMOOTHING
from seamroto.datamodel import LandmarkSample, LandmarkTrack
from seamroto.errors import ShapeError
from seamroto.flow import PointFlow

logger = logging.getLogger(__name__)

# A 2-D isotropic Gaussian error with per-axis variance v has median |e|^2 = 2 ln 2 * v.
MEDIAN_CHI2_2DOF = 2.0 * math.log(2.0)
# Below this much weight a detection, flow link or prior term counts as absent.
MIN_WEIGHT = 1e-9
# Tikhonov term keeping every banded system positive definite (frames without data).
RIDGE = 1e-9
# Landmarks whose track needs this many detections before its noise is estimated from it.
MIN_SAMPLES_FOR_ESTIMATE = 8
REASON_LANDMARKS_SHOWN = 5


@dataclass(frozen=True)
class FusionParams:
    """How strongly to smooth and when to flag; defaults suit 2K plates with 300-600 px faces.

    Attributes:
        smoothing: multiplies the constant-velocity prior (0 = none, 1 = default, 4 = heavy).
            The prior mostly matters where flow is missing; with good flow, flow dominates.
        acceleration_sigma_px: expected change of velocity between frames (px/frame^2) at
            ``smoothing`` 1; accelerations well beyond it are treated as real motion.
        detection_sigma_px: detector noise per axis at confidence 1 (px); None estimates it
            from the shot (flow-compensated frame differences), clamped to
            ``[min_detection_sigma_px, max_detection_sigma_px]``.
        flow_sigma_px: LK displacement noise per axis at reliability 1; None estimates it from
            forward/backward disagreement, clamped below at ``min_flow_sigma_px``.
        robust_scale: Cauchy scale in sigmas: a residual of this many sigmas keeps half its
            weight, five times it keeps ~4%.
        iterations: least-squares solves; each reweights from the previous solution.
        init_median_window: half-width of the running median of detections whose
            accelerations give the prior's first weights, so a step is not smeared by a plain
            least-squares start.
        tolerance_px: confidence is the estimated probability that a point is within this
            distance of the truth.
        confidence_threshold: a frame with any landmark below it is flagged for review.
        discontinuous_window: half-width (frames) of the temporal median a discontinuous
            landmark is compared with, in face-stabilised coordinates.
        discontinuous_outlier_sigmas: a discontinuous detection further than this many
            robust sigmas (and ``discontinuous_outlier_px``) from that median is suspect.
        discontinuous_outlier_px: lower bound of that distance, so a steady mouth does not
            make every small change suspect.
    """

    smoothing: float = DEFAULT_SMOOTHING
    acceleration_sigma_px: float = 1.0
    detection_sigma_px: Optional[float] = None
    flow_sigma_px: Optional[float] = None
    min_detection_sigma_px: float = 0.3
    max_detection_sigma_px: float = 8.0
    fallback_detection_sigma_px: float = 1.5
    min_flow_sigma_px: float = 0.05
    fallback_flow_sigma_px: float = 0.25
    robust_scale: float = 3.0
    iterations: int = 8
    init_median_window: int = 2
    tolerance_px: float = 3.0
    confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD
    discontinuous_window: int = 3
    discontinuous_outlier_sigmas: float = 4.0
    discontinuous_outlier_px: float = 5.0


@dataclass(frozen=True)
class FusedTracks:
    """Fused landmark tracks of one shot, with confidences and the frames to review.

    Attributes:
        frames: frame numbers, one per row.
        points: Shape: (F, L, 2) float64, _img space; NaN where there is no data.
        confidence: probability that the point is within ``tolerance_px`` of the truth.
            Shape: (F, L) float64 in [0, 1]; 0 where ``points`` is NaN.
        sigma_px: estimated per-axis error std. Shape: (F, L) float64; inf where NaN.
        detection_weight: how much each detection counted after outlier rejection (0 =
            rejected or absent, 1 = fully used). Shape: (F, L) float64.
        flagged_frames: frames to review, sorted.
        reasons: why each flagged frame was flagged (only flagged frames appear).
        detection_sigma_px: detector noise used (estimated or given).
        flow_sigma_px: flow noise used (estimated or given).
    """

    frames: Tuple[int, ...]
    points: np.ndarray
    confidence: np.ndarray
    sigma_px: np.ndarray
    detection_weight: np.ndarray
    flagged_frames: Tuple[int, ...]
    reasons: Mapping[int, str] = field(default_factory=dict)
    detection_sigma_px: float = float("nan")
    flow_sigma_px: float = float("nan")

    def to_tracks(self, names: Sequence[str]) -> Tuple[LandmarkTrack, ...]:
        """Datamodel tracks; ``keyed`` is False where the point rests on flow and prior only."""
        if len(names) != self.points.shape[1]:
            raise ShapeError("names", len(names), self.points.shape[1])
        tracks = []
        for j, name in enumerate(names):
            samples: Dict[int, LandmarkSample] = {}
            for i, frame in enumerate(self.frames):
                x, y = self.points[i, j]
                if np.isfinite(x) and np.isfinite(y):
                    samples[frame] = LandmarkSample(
                        float(x),
                        float(y),
                        float(self.confidence[i, j]),
                        bool(self.detection_weight[i, j] > 0.5),
                    )
            tracks.append(LandmarkTrack(name, samples))
        return tuple(tracks)


def _cauchy(r2: np.ndarray, scale2: np.ndarray) -> np.ndarray:
    """Cauchy IRLS weight for squared residual ``r2`` at squared scale ``scale2``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        w = 1.0 / (1.0 + r2 / scale2)
    return np.where(np.isfinite(w), w, 0.0)


def _robust_var(sq: np.ndarray) -> float:
    """Per-axis variance of 2-D residuals from the median of their squared norms (NaN-safe)."""
    sq = sq[np.isfinite(sq)]
    if len(sq) < MIN_SAMPLES_FOR_ESTIMATE:
        return float("nan")
    return float(np.median(sq) / MEDIAN_CHI2_2DOF)


def _flow_terms(
    flow_fwd: Optional[PointFlow], flow_bwd: Optional[PointFlow], f: int, n: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Flow displacements and reliabilities per link t -> t+1: (2, F-1, L, 2), (2, F-1, L)."""
    disp = np.full((2, max(f - 1, 0), n, 2), np.nan)
    rel = np.zeros((2, max(f - 1, 0), n))
    if f < 2:
        return disp, rel
    for k, (flow, sign, rows) in enumerate(
        ((flow_fwd, 1.0, slice(0, f - 1)), (flow_bwd, -1.0, slice(1, f)))
    ):
        if flow is None:
            continue
        d = np.asarray(flow.displacement, dtype=np.float64)
        r = np.asarray(flow.reliability, dtype=np.float64)
        if d.shape != (f, n, 2) or r.shape != (f, n):
            raise ShapeError("flow", (d.shape, r.shape), ((f, n, 2), (f, n)))
        disp[k] = sign * d[rows]
        rel[k] = np.where(np.isfinite(d[rows]).all(axis=2), np.clip(r[rows], 0.0, 1.0), 0.0)
    disp = np.where(rel[..., None] > 0, disp, 0.0)
    return disp, rel


def _estimate_sigmas(
    det: np.ndarray,
    det_ok: np.ndarray,
    disp: np.ndarray,
    rel: np.ndarray,
    cont: np.ndarray,
    params: FusionParams,
) -> Tuple[float, float]:
    """Detector and flow noise (per axis, px) from the shot itself, independent of the fit."""
    sig_f = params.flow_sigma_px
    if sig_f is None:
        both = (rel[0] > 0) & (rel[1] > 0) & cont[None, :]
        diff = disp[0] - disp[1]
        var = _robust_var(np.where(both, (diff**2).sum(axis=-1), np.nan))
        # forward and backward each carry the noise once.
        sig_f = params.fallback_flow_sigma_px if math.isnan(var) else math.sqrt(var / 2.0)
        sig_f = max(sig_f, params.min_flow_sigma_px)
    sig_d = params.detection_sigma_px
    if sig_d is None:
        var = float("nan")
        if len(det) >= 2:
            link = det_ok[1:] & det_ok[:-1] & cont[None, :]
            frel = rel.max(axis=0)
            use = link & (frel > 0)
            if use.sum() >= MIN_SAMPLES_FOR_ESTIMATE:
                best = np.where((rel[0] >= rel[1])[..., None], disp[0], disp[1])
                u = det[1:] - det[:-1] - best
                v = _robust_var(np.where(use, (u**2).sum(axis=-1), np.nan))
                var = (v - sig_f**2) / 2.0
        if math.isnan(var) and len(det) >= 3:
            link2 = det_ok[2:] & det_ok[1:-1] & det_ok[:-2] & cont[None, :]
            acc = det[2:] - 2.0 * det[1:-1] + det[:-2]
            v = _robust_var(np.where(link2, (acc**2).sum(axis=-1), np.nan))
            var = v / 6.0
        sig_d = (
            params.fallback_detection_sigma_px
            if math.isnan(var) or var <= 0
            else math.sqrt(var)
        )
        sig_d = min(max(sig_d, params.min_detection_sigma_px), params.max_detection_sigma_px)
    return float(sig_d), float(sig_f)


def _components(linked: np.ndarray, has_det: np.ndarray) -> np.ndarray:
    """Per frame: True if its run of linked frames contains at least one detection."""
    f = len(has_det)
    out = np.zeros(f, dtype=bool)
    start = 0
    for t in range(1, f + 1):
        if t == f or not linked[t - 1]:
            if has_det[start:t].any():
                out[start:t] = True
            start = t
    return out


def _band(a: np.ndarray, b: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Upper band (3, F) of the normal matrix for detection, link and prior weights."""
    f = len(a)
    ab = np.zeros((3, f))
    ab[2] = a + RIDGE
    if f >= 2:
        ab[2, :-1] += b
        ab[2, 1:] += b
        ab[1, 1:] -= b
    if f >= 3:
        ab[2, :-2] += g
        ab[2, 1:-1] += 4.0 * g
        ab[2, 2:] += g
        ab[1, 1:-1] -= 2.0 * g
        ab[1, 2:] -= 2.0 * g
        ab[0, 2:] += g
    return ab


def _diag_inverse(u: np.ndarray) -> np.ndarray:
    """Diagonal of H^-1 from the upper banded Cholesky factor (Takahashi's recursion).

    ``u`` is in ``cholesky_banded`` upper form, bandwidth 2: u[2, j] = U[j, j],
    u[1, j] = U[j-1, j], u[0, j] = U[j-2, j].
    """
    f = u.shape[1]
    s0 = np.zeros(f + 2)
    s1 = np.zeros(f + 2)
    s2 = np.zeros(f + 2)
    for i in range(f - 1, -1, -1):
        d = u[2, i]
        u1 = u[1, i + 1] if i + 1 < f else 0.0
        u2 = u[0, i + 2] if i + 2 < f else 0.0
        s2[i] = -(u1 * s1[i + 1] + u2 * s0[i + 2]) / d
        s1[i] = -(u1 * s0[i + 1] + u2 * s1[i + 1]) / d
        s0[i] = 1.0 / (d * d) - (u1 * s1[i] + u2 * s2[i]) / d
    return s0[:f]


def _median_init(z: np.ndarray, has_det: np.ndarray, half: int) -> np.ndarray:
    """Running median of the detections: keeps steps, drops isolated outliers (IRLS start).

    Frames whose window holds no detection get NaN, and then no robust weighting at first.
    """
    f = len(z)
    out = np.full((f, 2), np.nan)
    for i in range(f):
        lo, hi = max(0, i - half), min(f, i + half + 1)
        win = z[lo:hi][has_det[lo:hi]]
        if len(win):
            out[i] = np.median(win, axis=0)
    return out


def _robust_weights(
    x: np.ndarray,
    z: np.ndarray,
    d: np.ndarray,
    has_det: np.ndarray,
    sig_d: np.ndarray,
    sig_f: np.ndarray,
    rs2: float,
    params: FusionParams,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cauchy weights of detection, flow and prior terms given the current track ``x``.

    A residual that cannot be computed (NaN in ``x``) keeps full weight.
    """
    f = len(z)
    r2 = ((x - z) ** 2).sum(axis=1)
    wa = np.where(has_det & np.isfinite(r2), _cauchy(r2, rs2 * sig_d**2 * 2.0), 1.0)
    wb = np.ones((2, max(f - 1, 0)))
    wg = np.ones(max(f - 2, 0))
    if f >= 2:
        step = x[1:] - x[:-1]
        s2 = ((step[None] - d) ** 2).sum(axis=-1)
        wb = np.where(np.isfinite(s2), _cauchy(s2, rs2 * sig_f**2 * 2.0), 1.0)
    if f >= 3:
        acc = x[2:] - 2.0 * x[1:-1] + x[:-2]
        q2 = (acc**2).sum(axis=1)
        scale2 = rs2 * params.acceleration_sigma_px**2 * 2.0
        wg = np.where(np.isfinite(q2), _cauchy(q2, scale2), 1.0)
    return wa, wb, wg


def _smooth_one(
    z: np.ndarray,
    a0: np.ndarray,
    d: np.ndarray,
    b0: np.ndarray,
    g0: float,
    sig_d: np.ndarray,
    sig_f: np.ndarray,
    params: FusionParams,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Robust MAP track of one landmark.

    Args:
        z: detections (F, 2), 0 where absent. a0: detection weights (F,) 1/px^2, 0 = absent.
        d: flow displacements (2, F-1, 2). b0: flow weights (2, F-1) 1/px^2.
        g0: prior weight 1/px^2 (per active term); sig_d/sig_f: per-term sigmas for the
        robust scales, same shapes as a0/b0.

    Returns:
        (x (F, 2), variance (F,), final detection weight factor (F,)).
    """
    f = len(z)
    has_det = a0 > MIN_WEIGHT
    flow_link = (b0 > MIN_WEIGHT).any(axis=0) if f >= 2 else np.zeros(0, dtype=bool)
    det_link = has_det[1:] & has_det[:-1]
    linked = flow_link | det_link
    live = _components(linked, has_det)
    linked &= live[1:] & live[:-1]
    prior_on = (linked[1:] & linked[:-1]) if f >= 3 else np.zeros(0, dtype=bool)
    b0 = b0 * linked[None, :]
    g_base = np.where(prior_on, g0, 0.0)
    rs2 = params.robust_scale**2
    # Start from plain least squares except for the prior, whose weights come from a running
    # median of the detections: it keeps steps, so a real jump is not smeared by the start.
    x = _median_init(z, has_det, params.init_median_window)
    _, _, wg = _robust_weights(x, z, d, has_det, sig_d, sig_f, rs2, params)
    wa = np.ones(f)
    wb = np.ones_like(b0)
    u = None
    for it in range(max(params.iterations, 1)):
        a = a0 * wa
        b = b0 * wb
        g = g_base * wg
        ab = _band(a, b.sum(axis=0), g)
        rhs = a[:, None] * z
        if f >= 2:
            flow_rhs = (b[..., None] * d).sum(axis=0)
            rhs[:-1] -= flow_rhs
            rhs[1:] += flow_rhs
        u = cholesky_banded(ab, lower=False)
        x = cho_solve_banded((u, False), rhs)
        if it == params.iterations - 1:
            break
        wa, wb, wg = _robust_weights(x, z, d, has_det, sig_d, sig_f, rs2, params)
    assert u is not None
    var = _diag_inverse(u)
    x[~live] = np.nan
    var = np.where(live, var, np.inf)
    return x, var, np.where(has_det, wa, 0.0)


def _similarity(src: np.ndarray, dst: np.ndarray) -> Optional[np.ndarray]:
    """Least-squares similarity (2, 3) mapping src points onto dst points (Umeyama)."""
    if len(src) < 2:
        return None
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    s, t = src - ms, dst - md
    var = (s**2).sum()
    if var <= 0:
        return None
    cov = t.T @ s / len(src)
    uu, sv, vt = np.linalg.svd(cov)
    sign = np.sign(np.linalg.det(uu @ vt)) or 1.0
    dmat = np.diag([1.0, sign])
    rot = uu @ dmat @ vt
    scale = float(np.trace(np.diag(sv) @ dmat) / (var / len(src)))
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = md - m[:, :2] @ ms
    return m


def _stabilised(
    fused: np.ndarray, det: np.ndarray, det_ok: np.ndarray, cont: np.ndarray
) -> np.ndarray:
    """Discontinuous detections mapped into a common face frame (NaN where impossible)."""
    f, n = det.shape[:2]
    out = np.full((f, n, 2), np.nan)
    disc = ~cont
    ref_rows = np.isfinite(fused[:, cont]).all(axis=2).sum(axis=1) if cont.any() else np.zeros(f)
    ref = fused[int(np.argmax(ref_rows)), cont] if cont.any() else np.zeros((0, 2))
    for i in range(f):
        pts = det[i, disc]
        ok = det_ok[i, disc]
        m = None
        if cont.sum() >= 2:
            sel = np.isfinite(fused[i, cont]).all(axis=1) & np.isfinite(ref).all(axis=1)
            m = _similarity(fused[i, cont][sel], ref[sel])
        if m is None:
            if cont.sum() >= 2:
                continue
            m = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        mapped = pts @ m[:, :2].T + m[:, 2]
        out[i, disc] = np.where(ok[:, None], mapped, np.nan)
    return out


def _discontinuous_sigma(
    stab: np.ndarray, base_sigma: np.ndarray, disc: np.ndarray, params: FusionParams
) -> np.ndarray:
    """Per-axis sigma of each discontinuous detection: detector noise, inflated when suspect."""
    f = stab.shape[0]
    sigma = base_sigma.copy()
    w = params.discontinuous_window
    for j in np.flatnonzero(disc):
        q = stab[:, j]
        med = np.full((f, 2), np.nan)
        for i in range(f):
            win = q[max(0, i - w) : i + w + 1]
            win = win[np.isfinite(win).all(axis=1)]
            if len(win) >= 3:
                med[i] = np.median(win, axis=0)
        dev = np.linalg.norm(q - med, axis=1)
        finite = np.isfinite(dev)
        if finite.sum() < 3:
            continue
        robust = math.sqrt(float(np.median(dev[finite] ** 2)) / MEDIAN_CHI2_2DOF)
        limit = max(params.discontinuous_outlier_sigmas * robust, params.discontinuous_outlier_px)
        suspect = finite & (dev > limit)
        sigma[suspect, j] = np.hypot(base_sigma[suspect, j], dev[suspect])
    return sigma


def _confidence(sigma: np.ndarray, tolerance_px: float) -> np.ndarray:
    """P(|error| < tolerance) for a 2-D isotropic Gaussian error of per-axis std ``sigma``."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        c = -np.expm1(-(tolerance_px**2) / (2.0 * sigma**2))
    return np.where(np.isfinite(sigma), np.clip(c, 0.0, 1.0), 0.0)


def discontinuous_mask(
    names: Sequence[str], discontinuous: Collection[str]
) -> np.ndarray:
    """Boolean mask (L,) of the landmarks named in ``discontinuous``; unknown names raise.

    Raises:
        ValueError: if a discontinuous name is not a landmark (a typo would silently smooth a
            replacement mouth).
    """
    unknown = sorted(set(discontinuous) - set(names))
    if unknown:
        raise ValueError(f"discontinuous landmarks {unknown} are not among {list(names)}")
    wanted = set(discontinuous)
    return np.array([n in wanted for n in names], dtype=bool)


def fuse_tracks(
    frames: Sequence[int],
    detections: np.ndarray,
    det_conf: np.ndarray,
    flow_fwd: Optional[PointFlow] = None,
    flow_bwd: Optional[PointFlow] = None,
    *,
    landmark_names: Optional[Sequence[str]] = None,
    discontinuous: Collection[str] = (),
    face_flags: Optional[Mapping[int, str]] = None,
    face_absent: Collection[int] = (),
    params: FusionParams = FusionParams(),
) -> FusedTracks:
    """Fuse per-frame detections and flow into steady, honest landmark tracks for one shot.

    Args:
        frames: frame number of each row, consecutive (flow links row i to row i+1).
        detections: per-frame detector output, NaN where the detector gave nothing.
            Shape: (F, L, 2), _img space.
        det_conf: detector confidence. Shape: (F, L) in [0, 1]; 0 = ignore the detection.
        flow_fwd: displacement of each landmark from row i to i+1 (``flow.landmark_flow``).
        flow_bwd: displacement from row i to i-1.
        landmark_names: names for ``discontinuous`` and for the flag reasons.
        discontinuous: names of landmarks swapped every frame (replacement mouth): kept
            per-frame, never propagated or smoothed.
        face_flags: frame -> reason for face boxes the locator flagged; those frames are
            flagged with that reason.
        face_absent: frames where the face is not in shot: every landmark is NaN there.
        params: smoothing and flagging settings.

    Returns:
        The fused tracks, confidences and frames to review.

    Raises:
        ShapeError: if the arrays do not agree in shape.
        ValueError: if ``discontinuous`` names a landmark not in ``landmark_names``.
    """
    det = np.array(detections, dtype=np.float64)
    if det.ndim != 3 or det.shape[2] != 2 or det.shape[0] != len(frames):
        raise ShapeError("detections", det.shape, f"({len(frames)}, L, 2)")
    f, n = det.shape[:2]
    conf = np.asarray(det_conf, dtype=np.float64)
    if conf.shape != (f, n):
        raise ShapeError("det_conf", conf.shape, (f, n))
    names = list(landmark_names) if landmark_names is not None else [f"l{j:02d}" for j in range(n)]
    if len(names) != n:
        raise ShapeError("landmark_names", len(names), n)
    disc = discontinuous_mask(names, discontinuous)
    cont = ~disc
    frame_list = [int(fr) for fr in frames]
    absent = np.array([fr in set(face_absent) for fr in frame_list], dtype=bool)

    conf = np.where(np.isfinite(conf), np.clip(conf, 0.0, 1.0), 0.0)
    det_ok = np.isfinite(det).all(axis=2) & (conf > 0) & ~absent[:, None]
    z = np.where(det_ok[..., None], det, 0.0)
    disp, rel = _flow_terms(flow_fwd, flow_bwd, f, n)
    if f >= 2:
        gone = absent[1:] | absent[:-1]
        rel = np.where(gone[None, :, None] | disc[None, None, :], 0.0, rel)
    sig_d, sig_f = _estimate_sigmas(z, det_ok, disp, rel, cont, params)
    logger.info("fusion: detection sigma %.2f px, flow sigma %.3f px", sig_d, sig_f)

    with np.errstate(divide="ignore"):
        det_sigma = np.where(det_ok, sig_d / np.sqrt(np.maximum(conf, MIN_WEIGHT)), np.inf)
        flow_sigma = np.where(rel > 0, sig_f / np.sqrt(np.maximum(rel, MIN_WEIGHT)), np.inf)
    a0 = np.where(det_ok, conf / sig_d**2, 0.0)
    b0 = rel / sig_f**2
    g0 = params.smoothing / params.acceleration_sigma_px**2

    points = np.full((f, n, 2), np.nan)
    sigma = np.full((f, n), np.inf)
    weight = np.zeros((f, n))
    for j in np.flatnonzero(cont):
        x, var, wa = _smooth_one(
            z[:, j], a0[:, j], disp[:, :, j], b0[:, :, j], g0,
            det_sigma[:, j], flow_sigma[:, :, j], params,
        )
        points[:, j] = x
        sigma[:, j] = np.sqrt(var)
        weight[:, j] = wa
    if disc.any():
        points[:, disc] = np.where(det_ok[:, disc, None], det[:, disc], np.nan)
        weight[:, disc] = det_ok[:, disc].astype(np.float64)
        stab = _stabilised(points, det, det_ok, cont)
        sigma[:, disc] = _discontinuous_sigma(stab, det_sigma, disc, params)[:, disc]
    points[absent] = np.nan
    sigma[absent] = np.inf
    weight[absent] = 0.0
    confidence = _confidence(sigma, params.tolerance_px)
    confidence[~np.isfinite(points).all(axis=2)] = 0.0

    reasons = _flag_reasons(frame_list, points, confidence, names, absent, face_flags, params)
    return FusedTracks(
        frames=tuple(frame_list),
        points=points,
        confidence=confidence,
        sigma_px=sigma,
        detection_weight=weight,
        flagged_frames=tuple(sorted(reasons)),
        reasons=reasons,
        detection_sigma_px=sig_d,
        flow_sigma_px=sig_f,
    )


def _flag_reasons(
    frames: Sequence[int],
    points: np.ndarray,
    confidence: np.ndarray,
    names: Sequence[str],
    absent: np.ndarray,
    face_flags: Optional[Mapping[int, str]],
    params: FusionParams,
) -> Dict[int, str]:
    """Frame -> human reason for every frame a reviewer should look at."""
    reasons: Dict[int, str] = {}
    for i, frame in enumerate(frames):
        parts = []
        if face_flags and frame in face_flags:
            parts.append(f"face box: {face_flags[frame]}")
        if absent[i]:
            parts.append("face not in shot: no landmarks")
        else:
            missing = [names[j] for j in np.flatnonzero(~np.isfinite(points[i]).all(axis=1))]
            if missing:
                parts.append("no data for " + _name_list(missing))
            low = [
                j
                for j in np.argsort(confidence[i])
                if np.isfinite(points[i, j]).all() and confidence[i, j] < params.confidence_threshold
            ]
            if low:
                shown = ", ".join(f"{names[j]} ({confidence[i, j]:.2f})" for j in low[:REASON_LANDMARKS_SHOWN])
                more = len(low) - REASON_LANDMARKS_SHOWN
                parts.append(
                    f"low confidence (< {params.confidence_threshold:g}): {shown}"
                    + (f" and {more} more" if more > 0 else "")
                )
        if parts:
            reasons[frame] = "; ".join(parts)
    return reasons


def _name_list(items: Sequence[str]) -> str:
    """Short, readable list of landmark names."""
    if len(items) <= REASON_LANDMARKS_SHOWN:
        return ", ".join(items)
    return ", ".join(items[:REASON_LANDMARKS_SHOWN]) + f" and {len(items) - REASON_LANDMARKS_SHOWN} more"
