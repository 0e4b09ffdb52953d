"""Temporal fusion of per-frame landmark detections with optical flow, offline and bidirectional.

Why this model: a detector is unbiased but jittery (each frame on its own), optical flow is
precise from frame to frame but drifts and is blind along contours. For every continuous
landmark we solve, once per shot, the maximum a-posteriori track of::

    E(x, b) = sum_t a_t |x_t - z_t|^2                          detections z
            + sum_t (x_{t+1} - x_t + b_t - d_t)' B_t (...)     LK flow d, both directions,
                                                               and the face's affine motion
            + sum_t g_t |x_{t+1} - 2 x_t + x_{t-1}|^2          constant-velocity prior
            + |b_t|^2 / s_b^2 + |b_{t+1} - b_t|^2 / s_db^2     slowly varying flow bias b

with ``B_t`` a 2x2 information matrix (LK is precise across an edge, not along it). That is
the estimate a forward Kalman filter plus a Rauch-Tung-Striebel backward pass give for this
linear-Gaussian model; it is solved directly as one banded linear system per landmark, whose
Cholesky factor also gives every point's posterior variance (Takahashi's recursion). Robust
reweighting (Cauchy for detections and the prior, Geman-McClure for flow) rejects outlier
detections and wrong flow and lets a real step or blink through instead of smearing it.

With the character's shape prior (``seamroto.shapeprior``), silhouette and seam landmarks are
solved a second time with one more term, ``(x_t - p_t)' P_t (x_t - p_t)``: the prior's position
``p_t`` predicted from the fused interior landmarks, with information ``P_t`` only along the weak
direction of the landmark's LK window (``I - aperture``), where the detection also keeps only
``prior_detection_along`` of its weight. Across the silhouette, detector and flow decide as before.
A part the prior pins in one direction only (an upper lid, along itself) gets the term only on
frames where its track stays on the line the prior learned (``_off_line``: not in a blink).

Landmarks declared *discontinuous* (replacement mouth pieces, swapped every frame) are never
flow-propagated or smoothed: they keep their per-frame detection and get their confidence by
comparison with other frames showing the same print. Frames with no data stay NaN.

A detection whose confidence drops well below its landmark's usual level counts as occluded:
it weighs less and its own flow is ignored (LK follows the occluder). Confidence is not the
posterior alone, which knows only the noise it models, but a calibrated error model over the
posterior, the detector's confidence and how much the track had to overrule it
(``seamroto.confidence``).
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field
from typing import Collection, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.linalg import cho_solve_banded, cholesky_banded

from seamroto.confidence import ErrorModel, error_features, error_sigma, within_probability
from seamroto.config import DEFAULT_CONFIDENCE_THRESHOLD, DEFAULT_SMOOTHING
from seamroto.datamodel import LandmarkSample, LandmarkTrack
from seamroto.errors import ShapeError
from seamroto.faceframe import face_frames, to_face
from seamroto.flow import PointFlow
from seamroto.shapeprior import ShapePrior

logger = logging.getLogger(__name__)

# A 2-D isotropic Gaussian error with per-axis variance v has median |e|^2 = 2 ln 2 * v.
MEDIAN_CHI2_2DOF = 2.0 * math.log(2.0)
# Median of a chi-square with one degree of freedom (a 1-D Gaussian residual squared).
MEDIAN_CHI2_1DOF = 0.454936
# A link's face motion is checked against at least this many detected landmarks, and only a
# disagreement beyond this factor of what detection noise explains raises its noise.
LINK_CHECK_MIN_POINTS = 5
LINK_CHECK_MARGIN = 2.0
LINK_CHECK_ITERATIONS = 40
# One landmark whose detections moved this many squared sigmas away from the face's motion (a
# lid closing while the face turns) gets that disagreement as face-motion noise on the link.
# 5 sigma: chosen on the calibration shot (seed 21); lower thresholds let one outlier detection
# silence the face motion that should carry the point past it.
LANDMARK_CHECK_CHI2 = 25.0
# Flow windows whose weak direction keeps this much weight count as isotropic (not an edge).
ISOTROPIC_APERTURE = 0.3
# Unknowns per frame (x, y, flow bias x, flow bias y) and the normal matrix's half-bandwidth
# (the constant-velocity prior couples x_{t-1} with y_{t+1}).
STATE = 4
BAND = 2 * STATE + 1
# The face-motion fit: conditioning limit, Cauchy scale (times the median residual) and a
# floor of that median (1/px^2-weighted squared residual).
AFFINE_MAX_CONDITION = 1e10
ROBUST_AFFINE = 9.0
AFFINE_MIN_SCALE = 1e-2
# Below this much weight a detection, flow link or prior term counts as absent.
MIN_WEIGHT = 1e-9
# Tikhonov term keeping every banded system positive definite (frames without data).
RIDGE = 1e-9
# Landmarks whose track needs this many detections before its noise is estimated from it.
MIN_SAMPLES_FOR_ESTIMATE = 8
REASON_LANDMARKS_SHOWN = 5
# A prior target whose two sigmas differ this many times is pinned in one direction only.
ONE_DIRECTION_RATIO = 4.0
# An anchor further than this from the face frame of the others is covered (face-frame units,
# the anchors' RMS radius: about twice what the artists' own landmarks of mara ever show).
OFF_FACE_UNITS = 0.12
# Fewest anchors left to define the face frame when dropping covered ones.
MIN_FRAME_ANCHORS = 5
# ... and how many times its usual distance on the shot a covered anchor is off, at least.
OFF_FACE_MEDIANS = 4.0


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
        fallback_detection_sigma_px, fallback_flow_sigma_px: used when the shot is too short
            to estimate them.
        aperture_power: how much less than linearly a flow direction is trusted as the LK
            window's structure weakens in it (2: an edge-like window, eigenvalue ratio 0.1,
            keeps 1% of the flow weight along the edge).
        rigid_motion: also measure each landmark's motion by the face's affine motion fitted
            to all landmarks' flow (fills flow gaps, constrains motion along contours).
        rigid_iterations: reweighting rounds of that fit.
        rigid_join_late: the face-motion term joins halfway through the reweighting, judged
            against the track found without it, so it cannot smooth away a blink.
        min_rigid_sigma_px: floor of the face-motion noise estimated from its residuals.
        rigid_link_check: raise a link's face-motion noise where the detections on both its
            frames disagree with it beyond their own noise (``_rigid_terms``).
        drift_lag: frames over which flow is compared with the detections to catch
            landmarks where LK is consistently wrong (``_landmark_flow_sigma``).
        drift_excess: how clear that disagreement must be (a fraction of the detection
            noise's share) before a landmark's flow is trusted less.
        link_excess: the same for single links (``_link_flow_sigma``): flow that is off by
            more than the detections' own noise link after link.
        bias_sigma_px: expected size of the flow's own bias (px/frame). Many landmarks are
            not material points (a silhouette extreme, a point at a fixed fraction along a
            seam) and slide over the texture LK follows, so flow is consistently off by a
            fraction of a pixel per frame; the model estimates that bias jointly, as a slowly
            varying offset, so it is removed without letting flow noise through.
        bias_step_sigma_px: how fast that bias may change (px/frame per frame).
        robust_scale: Cauchy scale in sigmas: a residual of this many sigmas keeps half its
            weight, five times it keeps ~4%.
        iterations: least-squares solves; each reweights from the previous solution.
        init_median_window: half-width of the running median of detections whose
            accelerations give the prior's first weights, so a step is not smeared by a plain
            least-squares start.
        tolerance_px: confidence is the estimated probability that a point is within this
            distance of the truth.
        confidence_threshold: a frame with any landmark below it is flagged for review.
        disagreement_px: a detection rejected by more than this on two consecutive frames
            makes the track itself suspect there (``_disagreement_sigma``).
        mouth_match_sigmas: two frames show the same replacement print when their other
            discontinuous landmarks agree within this many detector sigmas (face-stabilised).
        mouth_min_matches: frames showing the same print needed before judging a landmark.
        mouth_max_matches: closest such frames used.
        discontinuous_outlier_sigmas: a discontinuous detection further than this many
            detector sigmas (and ``discontinuous_outlier_px``) from where it sat on frames
            with the same print is suspect.
        discontinuous_outlier_px: lower bound of that distance.
        occlusion_ratio: a detection whose confidence falls below this fraction of its
            landmark's median on the shot counts as occluded (a pupil under a closing lid):
            the landmark's own flow into and out of that frame is ignored, since LK then
            follows the occluder, and the face's motion carries the point instead.
        occlusion_margin: frames either side of an occluded one whose flow is ignored too: a
            lid opens over more than one frame, and on the first frame it looks open again it
            still covers part of the pupil's LK window (chosen on the calibration shot, seed
            21: continuous jitter 0.316 -> 0.299 px; 2 frames change nothing more).
        occlusion_power: a detection's weight is its confidence times (confidence over the
            landmark's median, at most 1) to this power, so a sudden drop counts for more
            than the landmark's usual level does.
        error_model: turns the evidence (posterior, how far the track overruled the
            detection, the detector's confidence, test-time spread) into the per-axis error
            sigma behind ``confidence`` (``seamroto.confidence``); None keeps the smoother's
            posterior alone, which knows only the noise it models and is far too sure.
        frame_flag_probability: a frame is also flagged when the probability that at least
            one of its landmarks is off by more than ``tolerance_px`` exceeds this (each
            landmark may be fairly sure on its own while the frame, as a whole, is not).
        prior_detection_along: with a shape prior (``fuse_tracks(shape_prior=...)``), the
            share of its weight a detection of a landmark the prior covers keeps along the
            weak direction of its LK window (a silhouette or a line): there the detector's
            error is a slowly varying bias of several px, not noise, and the prior knows the
            position better. 1 keeps the detection isotropic.
        prior_line_sigmas: a target the prior pins in one direction only (its sigmas differ
            ``ONE_DIRECTION_RATIO`` times: an upper lid) gets no prior on frames where its
            track sits further than this many sigmas from the prior along the free direction
            (a blink: ``_off_line``).
    """

    smoothing: float = DEFAULT_SMOOTHING
    acceleration_sigma_px: float = 1.8
    detection_sigma_px: Optional[float] = None
    flow_sigma_px: Optional[float] = None
    min_detection_sigma_px: float = 0.3
    max_detection_sigma_px: float = 8.0
    fallback_detection_sigma_px: float = 1.5
    min_flow_sigma_px: float = 0.05
    fallback_flow_sigma_px: float = 0.25
    aperture_power: float = 2.0
    rigid_motion: bool = True
    rigid_iterations: int = 4
    rigid_join_late: bool = True
    min_rigid_sigma_px: float = 0.1
    rigid_link_check: bool = True
    drift_lag: int = 8
    drift_excess: float = 1.0
    link_excess: float = 1.0
    bias_sigma_px: float = 1.0
    bias_step_sigma_px: float = 0.05
    robust_scale: float = 3.0
    iterations: int = 8
    init_median_window: int = 1
    tolerance_px: float = 3.0
    confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD
    disagreement_px: float = 2.0
    mouth_match_sigmas: float = 2.0
    mouth_min_matches: int = 1
    mouth_max_matches: int = 3
    discontinuous_outlier_sigmas: float = 5.0
    discontinuous_outlier_px: float = 6.0
    occlusion_ratio: float = 0.5
    occlusion_margin: int = 1
    occlusion_power: float = 2.0
    error_model: Optional[ErrorModel] = ErrorModel()
    frame_flag_probability: float = 0.5
    prior_detection_along: float = 0.1
    prior_line_sigmas: float = 2.0


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
        error_features: the evidence the error model turned into ``sigma_px``
            (``confidence.error_features``), for calibrating it. Shape: (F, L, 6) (None only
            in tracks built by older code).
        prior_landmarks: landmarks the shape prior took part in.
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
    error_features: Optional[np.ndarray] = None
    prior_landmarks: Tuple[str, ...] = ()

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


def _cauchy(r2: np.ndarray, scale2: Union[np.ndarray, float]) -> np.ndarray:
    """Cauchy IRLS weight for squared residual ``r2`` at squared scale ``scale2``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        w = 1.0 / (1.0 + r2 / scale2)
    return np.where(np.isfinite(w), w, 0.0)


def _geman_mcclure(r2: np.ndarray, scale2: np.ndarray) -> np.ndarray:
    """Geman-McClure IRLS weight: like Cauchy near zero, but falls as 1/r^4.

    Used for flow and face-motion terms, which are far stronger than a detection: with a
    Cauchy weight a contradicted flow term would still outvote several agreeing detections
    (a blink), and reweighting would slide back to trusting it.
    """
    c = _cauchy(r2, scale2)
    return c * c


def _robust_var(sq: np.ndarray, median_chi2: float = MEDIAN_CHI2_2DOF) -> float:
    """Per-axis variance from the median of squared residuals (NaN-safe, outlier-proof)."""
    sq = sq[np.isfinite(sq)]
    if len(sq) < MIN_SAMPLES_FOR_ESTIMATE:
        return float("nan")
    return float(np.median(sq) / median_chi2)


def _widened(occluded: np.ndarray, det_ok: np.ndarray, margin: int) -> np.ndarray:
    """Occluded frames (F, L) grown by ``margin`` frames either way, over frames with a detection."""
    out = occluded.copy()
    for _ in range(margin):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        out = grown & det_ok  # occluded frames have a detection themselves
    return out


def _flow_terms(
    flow_fwd: Optional[PointFlow], flow_bwd: Optional[PointFlow], f: int, n: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Flow per link t -> t+1 from both directions, with reliability * aperture matrices.

    Returns displacement (2, F-1, L, 2) and unit-less information (2, F-1, L, 2, 2).
    """
    links = max(f - 1, 0)
    disp = np.zeros((2, links, n, 2))
    info = np.zeros((2, links, n, 2, 2))
    if f < 2:
        return disp, info
    for k, (flow, sign, rows) in enumerate(
        ((flow_fwd, 1.0, slice(0, f - 1)), (flow_bwd, -1.0, slice(1, f)))
    ):
        if flow is None:
            continue
        d = np.asarray(flow.displacement, dtype=np.float64)
        r = np.asarray(flow.reliability, dtype=np.float64)
        if d.shape != (f, n, 2) or r.shape != (f, n):
            raise ShapeError("flow", (d.shape, r.shape), ((f, n, 2), (f, n)))
        if flow.aperture is None:
            ap = np.broadcast_to(np.eye(2), (f, n, 2, 2))
        else:
            ap = np.asarray(flow.aperture, dtype=np.float64)
            if ap.shape != (f, n, 2, 2):
                raise ShapeError("flow.aperture", ap.shape, (f, n, 2, 2))
        ok = np.isfinite(d[rows]).all(axis=2) & np.isfinite(r[rows]) & (r[rows] > 0)
        ok &= np.isfinite(ap[rows]).all(axis=(2, 3))
        rel = np.where(ok, np.clip(r[rows], 0.0, 1.0), 0.0)
        disp[k] = np.where(ok[..., None], sign * d[rows], 0.0)
        info[k] = rel[..., None, None] * np.where(ok[..., None, None], ap[rows], 0.0)
    return disp, info


def _sharpen(info: np.ndarray, power: float) -> np.ndarray:
    """Raise the eigenvalues of each (relative) information matrix to ``power``.

    LK along a contour is much worse than the structure tensor's eigenvalue ratio says (the
    error there is bias, not noise), so weak directions are trusted less than linearly.
    """
    if power == 1.0 or not info.size:
        return info
    vals, vecs = np.linalg.eigh(info)
    top = np.maximum(vals[..., 1:2], MIN_WEIGHT)
    vals = np.clip(vals, 0.0, None)
    scaled = top * (vals / top) ** power
    return np.einsum("...ik,...k,...jk->...ij", vecs, scaled, vecs)


def _clip_eigen(m: np.ndarray, top: float) -> np.ndarray:
    """Symmetric 2x2 matrices with their eigenvalues clipped to [0, top]."""
    vals, vecs = np.linalg.eigh(m)
    vals = np.clip(vals, 0.0, top)
    return np.einsum("...ik,...k,...jk->...ij", vecs, vals, vecs)


def _strong_direction(info: np.ndarray) -> np.ndarray:
    """Unit eigenvector of the largest eigenvalue of each 2x2 matrix. Shape: (..., 2)."""
    _, vecs = np.linalg.eigh(info)
    return vecs[..., :, 1]


def _estimate_sigmas(
    det: np.ndarray,
    det_ok: np.ndarray,
    disp: np.ndarray,
    info: np.ndarray,
    cont: np.ndarray,
    params: FusionParams,
) -> Tuple[float, float]:
    """Detector and flow noise (per axis, px) from the shot itself, independent of the fit.

    Flow: forward and backward LK of the same link disagree by twice the flow noise, measured
    along each window's best-constrained direction. Detector: consecutive detections differ by
    the motion (which flow measures) plus twice the detector noise.
    """
    sig_f = params.flow_sigma_px
    trace = np.trace(info, axis1=-2, axis2=-1) if info.size else np.zeros(info.shape[:3])
    if sig_f is None:
        both = (trace[0] > 0) & (trace[1] > 0) & cont[None, :]
        var = float("nan")
        if both.any():
            axis = _strong_direction(info[0] + info[1])
            along = ((disp[0] - disp[1]) * axis).sum(axis=-1)
            var = _robust_var(np.where(both, along**2, np.nan), MEDIAN_CHI2_1DOF) / 2.0
        sig_f = params.fallback_flow_sigma_px if math.isnan(var) else math.sqrt(var)
        sig_f = max(sig_f, params.min_flow_sigma_px)
    sig_d = params.detection_sigma_px
    if sig_d is None:
        var = float("nan")
        if len(det) >= 2:
            link = det_ok[1:] & det_ok[:-1] & cont[None, :]
            best = np.where((trace[0] >= trace[1])[..., None], disp[0], disp[1])
            best_info = np.where((trace[0] >= trace[1])[..., None, None], info[0], info[1])
            # isotropic windows only: along an edge the flow says nothing about the motion.
            weak = np.linalg.eigvalsh(best_info)[..., 0] if best_info.size else np.zeros(link.shape)
            use = link & (weak >= ISOTROPIC_APERTURE)
            if use.sum() >= MIN_SAMPLES_FOR_ESTIMATE:
                u = det[1:] - det[:-1] - best
                v = _robust_var(np.where(use, (u**2).sum(axis=-1), np.nan))
                var = (v - sig_f**2) / 2.0
        if math.isnan(var) and len(det) >= 3:
            link2 = det_ok[2:] & det_ok[1:-1] & det_ok[:-2] & cont[None, :]
            acc = det[2:] - 2.0 * det[1:-1] + det[:-2]
            var = _robust_var(np.where(link2, (acc**2).sum(axis=-1), np.nan)) / 6.0
        sig_d = (
            params.fallback_detection_sigma_px
            if math.isnan(var) or var <= 0
            else math.sqrt(var)
        )
        sig_d = min(max(sig_d, params.min_detection_sigma_px), params.max_detection_sigma_px)
    return float(sig_d), float(sig_f)


def _affine_fit(
    p: np.ndarray, q: np.ndarray, info: np.ndarray, iterations: int
) -> Tuple[Optional[np.ndarray], np.ndarray]:
    """Robust affine (2, 3) mapping points p onto q, each pair weighted by its 2x2 ``info``.

    Anisotropic weights let a contour point vote only across its contour. Cauchy reweighting
    keeps non-rigid features (a raised brow, a blinking lid) out of the face's motion.

    Returns:
        (affine or None when under-determined, final per-pair weights).
    """
    n = len(p)
    w = np.ones(n)
    if n < 3:
        return None, w
    centre = p.mean(axis=0)
    pc = p - centre
    design = np.zeros((n, 2, 6))
    design[:, 0, 0:2] = pc
    design[:, 1, 2:4] = pc
    design[:, 0, 4] = 1.0
    design[:, 1, 5] = 1.0
    theta = None
    for _ in range(iterations):
        wi = info * w[:, None, None]
        lhs = np.einsum("nai,nab,nbj->ij", design, wi, design)
        rhs = np.einsum("nai,nab,nb->i", design, wi, q)
        if np.linalg.cond(lhs) > AFFINE_MAX_CONDITION:
            return None, w
        theta = np.linalg.solve(lhs, rhs)
        res = np.einsum("naj,j->na", design, theta) - q
        m2 = np.einsum("na,nab,nb->n", res, info, res)
        scale = max(float(np.median(m2)), AFFINE_MIN_SCALE)
        w = _cauchy(m2, np.full(n, ROBUST_AFFINE * scale))
    assert theta is not None
    m = np.array([[theta[0], theta[1], 0.0], [theta[2], theta[3], 0.0]])
    m[:, 2] = theta[4:] - m[:, :2] @ centre
    return m, w


def _rigid_terms(
    det: np.ndarray,
    det_ok: np.ndarray,
    disp: np.ndarray,
    info: np.ndarray,
    cont: np.ndarray,
    params: FusionParams,
    det_sigma: Optional[np.ndarray] = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """The face's own motion, as a displacement measurement for every continuous landmark.

    Why: the face halves move almost rigidly (affinely, with head turns), so the motion of the
    well-tracked landmarks says how a landmark whose own flow failed (eye corners in a blink)
    or is ill-posed (along a contour) moved. The fit runs per link on the landmarks' own
    forward and backward flows.

    With ``det_sigma`` (per-frame detection sigma, (F, L)), each link's fit is also checked
    against the detections' own displacement across it: where a blink hides the eye corners'
    flow, the fit rests on a few contour and brow points and can be off by pixels on that one
    link, and at the face-motion noise (0.1 px) it would drag every track with it for frames.
    Such a link's noise is raised until the detections' disagreement is what their own noise
    explains (``_link_excess_var``); and a single landmark the detections see moving far from
    the face's motion (``LANDMARK_CHECK_CHI2``: a lid in a blink, whose own flow fails there)
    gets its disagreement as extra noise on that link, so the face cannot carry it through.

    Returns:
        displacement (F-1, L, 2) and information (F-1, L, 2, 2) in 1/px^2 (0 where the face
        motion could not be fitted or the landmark has no position to map).
    """
    f, n = det.shape[:2]
    out_d = np.zeros((max(f - 1, 0), n, 2))
    out_i = np.zeros((max(f - 1, 0), n, 2, 2))
    residuals: list = []
    fits = []
    for t in range(f - 1):
        ps, qs, infos = [], [], []
        use_f = (np.trace(info[0, t], axis1=-2, axis2=-1) > 0) & det_ok[t] & cont
        use_b = (np.trace(info[1, t], axis1=-2, axis2=-1) > 0) & det_ok[t + 1] & cont
        ps += [det[t, use_f], det[t + 1, use_b] - disp[1, t, use_b]]
        qs += [det[t, use_f] + disp[0, t, use_f], det[t + 1, use_b]]
        infos += [info[0, t, use_f], info[1, t, use_b]]
        p, q, inf = np.concatenate(ps), np.concatenate(qs), np.concatenate(infos)
        m, w = _affine_fit(p, q, inf, params.rigid_iterations)
        fits.append(m)
        if m is not None:
            pred = p @ m[:, :2].T + m[:, 2]
            res = pred - q
            axis = _strong_direction(inf)
            residuals.append(((res * axis).sum(axis=1) ** 2)[w > 0.5])
    if not residuals:
        return out_d, out_i
    fit_var = _robust_var(np.concatenate(residuals), MEDIAN_CHI2_1DOF)
    sig_r = max(math.sqrt(fit_var) if not math.isnan(fit_var) else params.min_rigid_sigma_px,
                params.min_rigid_sigma_px)
    logger.info("fusion: face motion residual %.3f px", sig_r)
    for t, m in enumerate(fits):
        if m is None:
            continue
        start = np.where(det_ok[t, :, None], det[t], np.nan)
        moved = start @ m[:, :2].T + m[:, 2] - start
        ok = np.isfinite(moved).all(axis=1) & cont
        var = np.full(n, sig_r**2)
        if det_sigma is not None:
            both = ok & det_ok[t + 1]
            res = moved[both] - (det[t + 1, both] - det[t, both])
            dvar = det_sigma[t, both] ** 2 + det_sigma[t + 1, both] ** 2
            var += _link_excess_var(res, dvar)
            r2 = (res**2).sum(axis=1)
            off = np.isfinite(r2) & (r2 > LANDMARK_CHECK_CHI2 * (dvar + var[both]))
            var[np.flatnonzero(both)[off]] += 0.5 * r2[off]
        out_d[t] = np.where(ok[:, None], moved, 0.0)
        out_i[t] = np.where(ok[:, None, None], np.eye(2)[None] / var[:, None, None], 0.0)
    return out_d, out_i


def _link_excess_var(residual: np.ndarray, det_var: np.ndarray) -> float:
    """Per-axis variance the face motion of one link needs beyond its own for the detections to agree.

    ``residual`` (K, 2): face-motion displacement minus the detections' displacement of K
    landmarks; ``det_var`` (K,): their detection variance per axis, both frames together. The
    smallest v >= 0 with median(|r|^2 / (det_var + v)) at the 2-dof median is found by
    bisection; the median keeps the landmarks that move on their own (a lid, a brow) out.
    """
    finite = np.isfinite(residual).all(axis=1) & np.isfinite(det_var)
    if finite.sum() < LINK_CHECK_MIN_POINTS:
        return 0.0
    r2 = (residual[finite] ** 2).sum(axis=1)
    dv = det_var[finite]

    def excess(v: float) -> float:
        return float(np.median(r2 / (dv + v))) - MEDIAN_CHI2_2DOF * LINK_CHECK_MARGIN

    if excess(0.0) <= 0.0:
        return 0.0
    lo, hi = 0.0, float(np.max(r2))
    for _ in range(LINK_CHECK_ITERATIONS):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if excess(mid) > 0.0 else (lo, mid)
    return hi


def _landmark_flow_sigma(
    det: np.ndarray,
    det_ok: np.ndarray,
    disp: np.ndarray,
    info: np.ndarray,
    sig_d: float,
    sig_f: float,
    params: FusionParams,
    det_sigma: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Flow noise per landmark (L,): ``sig_f``, unless the flow visibly disagrees with the shot.

    Why: LK can be consistently wrong at a landmark while forward and backward agree (the
    window holds texture that moves on its own, like hair at the top of the head, or the
    landmark slides along a silhouette). Over ``drift_lag`` frames, detections' displacement
    minus summed flow has variance ``2 sig_d^2 + lag * sig_flow^2``; only a clear excess
    (``drift_excess`` times the detection part) raises that landmark's flow noise, so the
    estimate's own scatter cannot weaken good flow.
    """
    f, n = det.shape[:2]
    lag = params.drift_lag
    out = np.full(n, sig_f)
    if f <= lag:
        return out
    trace = np.trace(info, axis1=-2, axis2=-1)
    best = np.where((trace[0] >= trace[1])[..., None], disp[0], disp[1])
    has = (trace > 0).any(axis=0)
    csum = np.concatenate([np.zeros((1, n, 2)), np.cumsum(best, axis=0)])
    cnt = np.concatenate([np.zeros((1, n)), np.cumsum(has, axis=0)])
    isum = np.concatenate([np.zeros((1, n, 2, 2)), np.cumsum(info.sum(axis=0), axis=0)])
    t = np.arange(f - lag)
    ok = ((cnt[t + lag] - cnt[t]) == lag) & det_ok[t] & det_ok[t + lag]
    drift = det[t + lag] - det[t] - (csum[t + lag] - csum[t])
    axis = _strong_direction(isum[t + lag] - isum[t])
    along2 = ((drift * axis).sum(axis=-1)) ** 2
    for j in range(n):
        var = _robust_var(np.where(ok[:, j], along2[:, j], np.nan), MEDIAN_CHI2_1DOF)
        if math.isnan(var):
            continue
        extra = (var - 2.0 * sig_d**2 * (1.0 + params.drift_excess)) / lag
        if extra > 0:
            out[j] = math.sqrt(sig_f**2 + extra)
    if det_sigma is not None:
        out = np.maximum(out, _link_flow_sigma(det, det_ok, best, has, info, det_sigma, sig_f, params))
    return out


def _link_flow_sigma(
    det: np.ndarray,
    det_ok: np.ndarray,
    best: np.ndarray,
    has: np.ndarray,
    info: np.ndarray,
    det_sigma: np.ndarray,
    sig_f: float,
    params: FusionParams,
) -> np.ndarray:
    """Flow noise per landmark (L,) from single links: LK wrong by pixels, link after link.

    Why: at a silhouette point LK's window straddles the face and the static background, and
    can be several px off on every link, forward and backward alike, in alternating directions
    (the right cheek of one held-out shot: 3.7 px RMS), which no drift over ``drift_lag`` frames
    shows and which the drift check cannot even measure when links are missing. One frame
    apart, the detections' displacement minus the flow, in LK's own metric and over the two
    detections' variance (``det_sigma``), scores about 1 (robust, 2 dof); a clear excess
    (``link_excess``) is the flow's noise.
    """
    f, n = det.shape[:2]
    out = np.full(n, sig_f)
    t = np.arange(f - 1)
    ok = has[t] & det_ok[t] & det_ok[t + 1]
    resid = det[t + 1] - det[t] - best[t]
    # LK's error in the metric it claims for itself: a window it calls a corner is checked both ways
    metric = _clip_eigen(info.sum(axis=0)[t], 1.0)
    r2 = np.einsum("fli,flij,flj->fl", resid, metric, resid)
    with np.errstate(invalid="ignore", over="ignore"):
        dvar = det_sigma[t] ** 2 + det_sigma[t + 1] ** 2
        q = r2 / dvar
    for j in range(n):
        use = ok[:, j] & np.isfinite(q[:, j])
        v = _robust_var(np.where(use, q[:, j], np.nan), MEDIAN_CHI2_2DOF)
        if math.isnan(v) or v <= 1.0 + params.link_excess:
            continue
        out[j] = math.sqrt(sig_f**2 + (v - 1.0) * float(np.median(dvar[use, j])))
    return out


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


def _pack(ab: np.ndarray, rows: np.ndarray, cols: np.ndarray, blocks: np.ndarray) -> None:
    """Add 2x2 ``blocks[k]`` at H[rows[k]:+2, cols[k]:+2] into the upper band ``ab``.

    ``rows - cols`` must be the same for every block (one kind of coupling per call), so each
    entry lands in one band row at distinct columns. Only entries on or above the diagonal
    are stored; a block on the diagonal contributes its upper triangle.
    """
    if len(rows) == 0:
        return
    u = ab.shape[0] - 1
    delta = int(rows[0] - cols[0])
    for p in range(2):
        for q in range(2):
            if delta + p <= q:
                ab[u + delta + p - q, cols + q] += blocks[:, p, q]


def _normal_matrix(
    a: np.ndarray, b: np.ndarray, g: np.ndarray, bias_step: float, bias_size: float
) -> np.ndarray:
    """Upper band (BAND + 1, STATE * F) of the normal matrix of the track-with-flow-bias model.

    Unknowns per frame t: x_t (2) then the flow bias b_t (2) of the link t -> t+1.

    Args:
        a: detection weights (F,), or per-frame information matrices (F, 2, 2) (a detection
            trusted less along a contour, plus the shape prior).
        b: flow information per link (F-1, 2, 2).
        g: prior weights per centre frame (F,) (0 at both ends).
        bias_step: weight of |b_{t+1} - b_t|^2.
        bias_size: weight of |b_t|^2.
    """
    f = len(a)
    ab = np.zeros((BAND + 1, STATE * f))
    eye = np.eye(2)
    x = STATE * np.arange(f)
    bias = x + 2
    a_blocks = a[:, None, None] * eye if np.ndim(a) == 1 else np.asarray(a)
    _pack(ab, x, x, a_blocks + RIDGE * eye)
    _pack(ab, bias, bias, np.full((f, 1, 1), bias_size + RIDGE) * eye)
    if f >= 2:
        t = np.arange(f - 1)
        # flow residual x_{t+1} - x_t + b_t - d_t
        _pack(ab, x[t], x[t], b)
        _pack(ab, x[t + 1], x[t + 1], b)
        _pack(ab, bias[t], bias[t], b)
        _pack(ab, x[t], x[t + 1], -b)
        _pack(ab, x[t], bias[t], -b)
        _pack(ab, bias[t], x[t + 1], b)
        # bias random walk
        step = np.full((f - 1, 1, 1), bias_step) * eye
        _pack(ab, bias[t], bias[t], step)
        _pack(ab, bias[t + 1], bias[t + 1], step)
        _pack(ab, bias[t], bias[t + 1], -step)
    if f >= 3:
        k = np.arange(1, f - 1)
        gk = g[k][:, None, None] * eye
        coef = (1.0, -2.0, 1.0)
        for i in range(3):
            for j in range(i, 3):
                blocks = (coef[i] * coef[j]) * gk
                if i == j:
                    _pack(ab, x[k - 1 + i], x[k - 1 + i], blocks)
                else:
                    _pack(ab, x[k - 1 + i], x[k - 1 + j], blocks)
    return ab


def _diag_inverse(ub: np.ndarray) -> np.ndarray:
    """Diagonal of H^-1 from H's upper banded Cholesky factor (Takahashi's recursion).

    ``ub`` is in ``cholesky_banded`` upper form, ub[u + i - j, j] = U[i, j], for one matrix
    (u + 1, n) or a stack of them (K, u + 1, n), computed together. Only the entries of H^-1
    inside the band are needed: O(n u^2).

    Returns:
        Shape: (n,) or (K, n).
    """
    single = ub.ndim == 2
    stack = ub[None] if single else ub
    k_count, rows, n = stack.shape
    u = rows - 1
    # upper[k - 1][:, i] = U[i, i + k] (0 beyond the matrix)
    padded = np.zeros((k_count, rows, n + u))
    padded[:, :, :n] = stack
    upper = [padded[:, u - k, k : n + k] for k in range(1, u + 1)]
    diag = stack[:, u, :]
    # sig[d][:, i] = (H^-1)[i, i + d], padded so that i + d may run past the end
    sig = np.zeros((u + 1, k_count, n + u + 1))
    for i in range(n - 1, -1, -1):
        dii = diag[:, i]
        for d in range(min(u, n - 1 - i), 0, -1):
            acc = np.zeros(k_count)
            for k in range(1, u + 1):
                term = sig[d - k, :, i + k] if k <= d else sig[k - d, :, i + d]
                acc += upper[k - 1][:, i] * term
            sig[d, :, i] = -acc / dii
        acc = np.zeros(k_count)
        for k in range(1, u + 1):
            acc += upper[k - 1][:, i] * sig[k, :, i]
        sig[0, :, i] = 1.0 / (dii * dii) - acc / dii
    out = sig[0, :, :n]
    return out[0] if single else out


def _median_init(z: np.ndarray, has_det: np.ndarray, half: int) -> np.ndarray:
    """Running median of the detections: keeps steps, drops isolated outliers (IRLS start).

    Frames whose window holds no detection get NaN, and then no robust weighting at first.
    """
    f = len(z)
    padded = np.full((f + 2 * half, 2), np.nan)
    padded[half : half + f][has_det] = z[has_det]
    windows = sliding_window_view(padded, 2 * half + 1, axis=0)  # (F, 2, 2 * half + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN window is the NaN we want
        return np.nanmedian(windows, axis=2)


def _acc_weights(x: np.ndarray, params: FusionParams) -> np.ndarray:
    """Cauchy weights of the prior per centre frame (F,), from the accelerations of ``x``."""
    f = len(x)
    wg = np.ones(f)
    if f >= 3:
        acc = x[2:] - 2.0 * x[1:-1] + x[:-2]
        q2 = (acc**2).sum(axis=1)
        scale2 = params.robust_scale**2 * params.acceleration_sigma_px**2 * 2.0
        wg[1:-1] = np.where(np.isfinite(q2), _cauchy(q2, scale2), 1.0)
    return wg


def _smooth_one(
    z: np.ndarray,
    a0: np.ndarray,
    d: np.ndarray,
    b0: np.ndarray,
    g0: float,
    sig_d: np.ndarray,
    params: FusionParams,
    late: int = 0,
    det_shape: Optional[np.ndarray] = None,
    prior: Optional[Tuple[np.ndarray, np.ndarray]] = None,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Robust MAP track of one landmark.

    Args:
        z: detections (F, 2), 0 where absent.
        a0: detection weights (F,) in 1/px^2, 0 = absent.
        d: displacement measurements per link (K, F-1, 2).
        b0: their information (K, F-1, 2, 2) in 1/px^2.
        g0: prior weight 1/px^2 per active term.
        sig_d: detection sigma per frame (F,).
        params: fusion settings.
        late: how many of the last displacement sets (the face-motion term) join only after
            the first half of the iterations, weighted by how well they agree with the track
            found without them: they are precise but blind to non-rigid moves (a blink), and
            joining from the start they would outvote the detections that see the move.
        det_shape: per-frame shape of the detection's information (F, 2, 2), eigenvalues in
            (0, 1]: a detection trusted less along a contour (None: isotropic).
        prior: the shape prior as (positions (F, 2), information (F, 2, 2) in 1/px^2), an
            absolute measurement of each frame (0 information where it has none); Cauchy
            reweighted like a detection.

    Returns:
        (x (F, 2) NaN where unsupported, banded Cholesky factor of the final normal matrix
        (for the posterior variance), support mask (F,), final detection weights (F,)).
    """
    f = len(z)
    has_det = a0 > MIN_WEIGHT
    tr = np.trace(b0, axis1=-2, axis2=-1)  # (2, F-1)
    flow_link = (tr > MIN_WEIGHT).any(axis=0) if f >= 2 else np.zeros(0, dtype=bool)
    linked = flow_link | (has_det[1:] & has_det[:-1])
    live = _components(linked, has_det)
    linked &= live[1:] & live[:-1]
    g_base = np.zeros(f)
    if f >= 3:
        g_base[1:-1] = np.where(linked[1:] & linked[:-1], g0, 0.0)
    b0 = b0 * linked[None, :, None, None]
    rs2 = params.robust_scale**2
    # Flow information split into its two eigen-directions, each reweighted on its own: an
    # error along a contour must not throw away the precise motion across it.
    lam, vec = np.linalg.eigh(b0) if f >= 2 else (np.zeros((2, 0, 2)), np.zeros((2, 0, 2, 2)))
    lam = np.clip(lam, 0.0, None)
    # Plain least squares to start, except for the prior, whose weights come from a running
    # median of the detections: it keeps steps, so a real jump is not smeared by the start.
    med = _median_init(z, has_det, params.init_median_window)
    wg = _acc_weights(med, params)
    wa = np.ones(f)
    wb = np.ones_like(lam)
    if f >= 2:
        # flow that contradicts the (outlier-free) running median of the detections by far
        # more than both noises allow starts with little weight (blinks, fast moves).
        along = np.einsum("kfiv,kfi->kfv", vec, (med[1:] - med[:-1])[None] - d)
        noise = float(np.median(sig_d[has_det])) if has_det.any() else 1.0
        start_var = 1.0 / np.maximum(lam, MIN_WEIGHT) + 2.0 * noise**2
        wb = np.where(np.isfinite(along), _geman_mcclure(along**2, rs2 * start_var), 1.0)
    join = max(params.iterations, 1) // 2 if late else 0
    if late:
        wb[len(wb) - late :] = 0.0
    x = np.zeros((f, 2))
    ub = np.zeros((BAND + 1, STATE * f))
    bias_step = 1.0 / params.bias_step_sigma_px**2
    bias_size = 1.0 / params.bias_sigma_px**2
    shape = np.broadcast_to(np.eye(2), (f, 2, 2)) if det_shape is None else det_shape
    wp = np.ones(f)
    for it in range(max(params.iterations, 1)):
        a = (a0 * wa)[:, None, None] * shape
        rhs = np.zeros((f, STATE))
        rhs[:, :2] = np.einsum("fij,fj->fi", a, z)
        if prior is not None:
            p_info = wp[:, None, None] * prior[1]
            a = a + p_info
            rhs[:, :2] += np.einsum("fij,fj->fi", p_info, prior[0])
        bk = np.einsum("kfiv,kfv,kfjv->kfij", vec, lam * wb, vec)
        ab = _normal_matrix(a, bk.sum(axis=0), g_base * wg, bias_step, bias_size)
        if f >= 2:
            flow_rhs = np.einsum("kfij,kfj->fi", bk, d)
            rhs[:-1, :2] -= flow_rhs
            rhs[1:, :2] += flow_rhs
            rhs[:-1, 2:] += flow_rhs
        ub = cholesky_banded(ab, lower=False)
        sol = cho_solve_banded((ub, False), rhs.reshape(-1)).reshape(f, STATE)
        x, bias = sol[:, :2], sol[:-1, 2:]
        if it == params.iterations - 1:
            break
        r = x - z
        r2 = np.einsum("fi,fij,fj->f", r, shape, r)
        wa = np.where(has_det, _cauchy(r2, rs2 * sig_d**2 * 2.0), 1.0)
        if prior is not None:
            rp = x - prior[0]
            wp = _cauchy(np.einsum("fi,fij,fj->f", rp, prior[1], rp), rs2)
        if f >= 2:
            s = (x[1:] - x[:-1] + bias)[None] - d
            along = np.einsum("kfiv,kfi->kfv", vec, s)
            wb = _geman_mcclure(lam * along**2, np.full_like(lam, rs2))
            if it + 1 < join:
                wb[len(wb) - late :] = 0.0
            elif it + 1 == join:
                # joining terms are judged against a track that may be off by a detection's
                # noise along directions only they constrain: allow for it, as at the start.
                k = slice(len(wb) - late, len(wb))
                wb[k] = _geman_mcclure(along[k] ** 2, rs2 * start_var[k])
        wg = _acc_weights(x, params)
    x[~live] = np.nan
    return x, ub, live, np.where(has_det, wa, 0.0)


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
    stab: np.ndarray, base_sigma: np.ndarray, disc: np.ndarray, sig_d: float, params: FusionParams
) -> np.ndarray:
    """Per-axis sigma of each discontinuous detection: detector noise, inflated when suspect.

    A replacement mouth cannot be compared with its neighbours in time (the next frame has
    another print), but a shot reuses the character's small library of mouths. So each
    landmark is checked against the frames whose *other* discontinuous landmarks, in
    face-stabilised coordinates, match this frame's (the same print, presumably): if it sits
    far from where it sat on those frames, it is suspect. A print seen once gives no evidence
    and keeps the detector's own sigma.
    """
    f = stab.shape[0]
    sigma = base_sigma.copy()
    cols = np.flatnonzero(disc)
    if len(cols) < 2:
        return sigma
    q = stab[:, cols]  # (F, D, 2)
    finite = np.isfinite(q).all(axis=2)
    match_px = params.mouth_match_sigmas * sig_d * math.sqrt(2.0 * (len(cols) - 1))
    devs = np.full((f, len(cols)), np.nan)
    for k in range(len(cols)):
        others = [m for m in range(len(cols)) if m != k]
        rest = q[:, others].reshape(f, -1)
        rest_ok = finite[:, others].all(axis=1)
        for t in range(f):
            if not (finite[t, k] and rest_ok[t]):
                continue
            dist = np.linalg.norm(rest - rest[t], axis=1)
            dist[t] = np.inf
            dist[~(rest_ok & finite[:, k])] = np.inf
            near = np.flatnonzero(dist < match_px)
            if len(near) < params.mouth_min_matches:
                continue
            best = near[np.argsort(dist[near])[: params.mouth_max_matches]]
            devs[t, k] = float(np.linalg.norm(q[t, k] - np.median(q[best, k], axis=0)))
    # prints are not identical from frame to frame (each is a separate print, placed by hand),
    # so the scale of "the same" is measured on the shot itself.
    scale = math.sqrt(_robust_var(devs.reshape(-1) ** 2)) if np.isfinite(devs).sum() else sig_d
    scale = sig_d if math.isnan(scale) else max(scale, sig_d)
    limit = max(params.discontinuous_outlier_sigmas * scale, params.discontinuous_outlier_px)
    suspect = np.isfinite(devs) & (devs > limit)
    for k, j in enumerate(cols):
        sigma[suspect[:, k], j] = np.hypot(base_sigma[suspect[:, k], j], devs[suspect[:, k], k])
    return sigma


def _disagreement_sigma(
    points: np.ndarray,
    det: np.ndarray,
    det_ok: np.ndarray,
    weight: np.ndarray,
    sigma: np.ndarray,
    params: FusionParams,
    metric: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Posterior sigma, widened where the detector disagreed with the track several frames running.

    One rejected detection next to agreeing ones is an outlier, and the track is fine. When
    consecutive detections are rejected, the track may instead be what is wrong (a move too
    fast for flow, a blink smoothed away): the error may then be as large as the
    disagreement, which is what the confidence must say. ``metric`` (F, L, 2, 2) measures the
    disagreement as the detection was trusted (``_detection_residual``).
    """
    resid = _detection_residual(points, det, det_ok, metric)
    rejected = np.where(det_ok, (1.0 - weight) * resid, 0.0)
    big = rejected > params.disagreement_px
    run = np.zeros_like(big)
    run[1:] |= big[1:] & big[:-1]
    run[:-1] |= big[:-1] & big[1:]
    return np.where(run, np.hypot(sigma, resid), sigma)


def _detection_residual(
    points: np.ndarray, det: np.ndarray, det_ok: np.ndarray, metric: Optional[np.ndarray]
) -> np.ndarray:
    """Distance (F, L) of each track point from its detection, in the detection's own metric.

    A detection trusted only across a contour (``metric`` with a small eigenvalue along it)
    does not contradict a track that moved it along the contour. 0 where there is no detection.
    """
    r = np.nan_to_num(np.where(det_ok[..., None], points - det, 0.0), nan=0.0)
    if metric is None:
        return np.linalg.norm(r, axis=2)
    return np.sqrt(np.maximum(np.einsum("fli,flij,flj->fl", r, metric, r), 0.0))


def _hidden_jumps(points: np.ndarray, hidden: np.ndarray, cont: np.ndarray) -> np.ndarray:
    """How far each hidden point moved relative to the face across its occlusion (F, L) px.

    For every run of frames on which a continuous landmark is hidden (occluded, or not
    detected while the face is in shot) with a visible frame on each side, the face's motion
    between those two frames (a similarity of the other visible landmarks) maps the point's
    position before onto where it would be after if it had moved with the face; the distance
    to where it is after is the jump, given to every frame of the run. 0 elsewhere (also for
    runs touching the ends of the shot: nothing to compare).
    """
    f, n = hidden.shape
    out = np.zeros((f, n))
    finite = np.isfinite(points).all(axis=2)
    for j in np.flatnonzero(cont & hidden.any(axis=0)):
        i = 0
        while i < f:
            if not hidden[i, j]:
                i += 1
                continue
            start = i
            while i < f and hidden[i, j]:
                i += 1
            before, after = start - 1, i
            if before < 0 or after >= f or not (finite[before, j] and finite[after, j]):
                continue
            ref = cont & ~hidden[before] & ~hidden[after] & finite[before] & finite[after]
            ref[j] = False
            m = _similarity(points[before, ref], points[after, ref])
            if m is None:
                continue
            moved = points[before, j] @ m[:, :2].T + m[:, 2]
            out[start:after, j] = float(np.linalg.norm(moved - points[after, j]))
    return out


def _aperture_per_frame(
    flow_fwd: Optional[PointFlow], flow_bwd: Optional[PointFlow], f: int, n: int
) -> np.ndarray:
    """Mean of the forward and backward LK aperture at each point (F, L, 2, 2); NaN if neither."""
    acc = np.zeros((f, n, 2, 2))
    cnt = np.zeros((f, n))
    for flow in (flow_fwd, flow_bwd):
        if flow is None or flow.aperture is None:
            continue
        ap = np.asarray(flow.aperture, dtype=np.float64)
        if ap.shape != (f, n, 2, 2):
            raise ShapeError("flow.aperture", ap.shape, (f, n, 2, 2))
        ok: np.ndarray = np.asarray(np.isfinite(ap).all(axis=(2, 3)))
        acc += np.where(ok[..., None, None], ap, 0.0)
        cnt += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((cnt > 0)[..., None, None], acc / cnt[..., None, None], np.nan)


def _prior_terms(
    prediction_mean: np.ndarray, prediction_cov: np.ndarray, aperture: np.ndarray, along: float
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detection shape and prior measurement of one landmark from its LK window's aperture.

    The weak direction of the window (``I - aperture``: 1 along a straight edge, 0 across it
    and on a corner) is where the detector only guesses from context: the detection keeps
    ``along`` of its weight there, and the prior speaks there only. A frame whose window is
    unknown counts as a corner (the prior stays silent).

    Returns:
        detection shape (F, 2, 2), prior positions (F, 2) (0 where none) and prior
        information (F, 2, 2) in 1/px^2.
    """
    eye = np.eye(2)
    known = np.isfinite(aperture).all(axis=(1, 2))
    weak = np.where(known[:, None, None], eye - _clip_eigen(np.nan_to_num(aperture), 1.0), 0.0)
    ok = known & np.isfinite(prediction_mean).all(axis=1) & np.isfinite(prediction_cov).all(axis=(1, 2))
    cov = np.where(ok[:, None, None], prediction_cov, eye)
    # a part pinned in one direction (a lid along itself): the prior knows nothing across, so
    # the detection keeps its weight there however weak the window
    _, vecs, one_way = _one_way(cov)
    tight = vecs[:, :, 0]
    pin = np.einsum("fi,fj->fij", tight, tight)
    weak = np.where(one_way[:, None, None], np.einsum("fij,fjk,fkl->fil", pin, weak, pin), weak)
    shape = eye - (1.0 - along) * weak
    info = np.einsum("fij,fjk,fkl->fil", weak, np.linalg.inv(cov), weak)
    info = np.where(ok[:, None, None], 0.5 * (info + np.swapaxes(info, 1, 2)), 0.0)
    return shape, np.where(ok[:, None], prediction_mean, 0.0), info


def _off_line(track: np.ndarray, mean: np.ndarray, cov: np.ndarray, gate: float) -> np.ndarray:
    """Frames (F,) where a target pinned in one direction only has left the line its prior learned.

    Why: such a prior (an upper lid: pinned along the lid, free to slide down it) is learned on
    mostly open eyes, and a blink bends the lid's path off that line; a track (the first pass,
    without the prior) further than ``gate`` sigmas along the free direction says the lid is
    in a blink, where the prior's tight direction is wrong by pixels.

    Shape: track, mean (F, 2) px; cov (F, 2, 2) px^2.
    """
    out = np.zeros(len(track), bool)
    ok = np.isfinite(track).all(axis=1) & np.isfinite(mean).all(axis=1) & np.isfinite(cov).all(axis=(1, 2))
    if not ok.any():
        return out
    vals, vecs, one_way = _one_way(cov[ok])
    free = np.abs(np.einsum("fi,fi->f", track[ok] - mean[ok], vecs[:, :, 1])) / np.sqrt(vals[:, 1])
    out[ok] = one_way & (free > gate)
    return out


def _one_way(cov: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whether each 2x2 covariance pins its point in one direction only (F,), with its eigen-pairs.

    Returns:
        eigenvalues (F, 2) ascending, eigenvectors (F, 2, 2) as columns, and the (F,) bool:
        sigmas at least ``ONE_DIRECTION_RATIO`` apart.
    """
    vals, vecs = np.linalg.eigh(cov)
    return vals, vecs, np.sqrt(vals[:, 1] / np.maximum(vals[:, 0], 1e-12)) >= ONE_DIRECTION_RATIO


def off_face_anchors(det: np.ndarray, det_ok: np.ndarray, names: Sequence[str], prior: ShapePrior) -> np.ndarray:
    """Anchor detections (F, L) that sit off the face the other anchors define: covered, not moved.

    Why: the prior's anchors (eye corners, lower lids, nose, mid-brows) move rigidly with the
    print, within ``OFF_FACE_UNITS`` of the face frame in the artists' landmarks; a rod or a
    rig arm crossing the face makes the detector put one elsewhere with its usual confidence,
    and LK follows the rod too. Per frame the face frame is fitted to the anchors, dropping
    the furthest while it is further than ``OFF_FACE_UNITS`` and ``MIN_FRAME_ANCHORS`` remain;
    a detection is covered when it is that far off and ``OFF_FACE_MEDIANS`` times as far as
    that anchor usually is on the shot, so a detector that is poor all along keeps its points.

    Shape: det (F, L, 2) _img, det_ok (F, L) -> (F, L) bool (False off the anchors).
    """
    out = np.zeros(det_ok.shape, bool)
    index = {n: i for i, n in enumerate(names)}
    if any(a not in index for a in prior.anchors):
        return out
    cols = np.array([index[a] for a in prior.anchors])
    template = np.asarray(prior.template, dtype=np.float64)
    resid = np.full((len(det), len(cols)), np.nan)
    for i in range(len(det)):
        keep = [k for k in range(len(cols)) if det_ok[i, cols[k]]]
        frame = None
        while len(keep) >= MIN_FRAME_ANCHORS:
            sub = template[keep] - template[keep].mean(axis=0)
            fitted = face_frames(det[i, cols[keep]][None], sub)[0]
            if fitted is None:
                break
            frame = (fitted[0], fitted[1], template[keep].mean(axis=0))
            off = np.linalg.norm(to_face(det[i, cols[keep]], fitted[0], fitted[1]) - sub, axis=1)
            worst = int(np.argmax(off))
            if off[worst] <= OFF_FACE_UNITS or len(keep) == MIN_FRAME_ANCHORS:
                break
            keep.pop(worst)
        if frame is None:
            continue
        a, centre, inliers_mean = frame  # the fit's template is centred on its inliers
        seen = [k for k in range(len(cols)) if det_ok[i, cols[k]]]
        resid[i, seen] = np.linalg.norm(to_face(det[i, cols[seen]], a, centre) + inliers_mean - template[seen], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)  # an anchor never seen
        usual = np.nanmedian(resid, axis=0)
    covered = (resid > OFF_FACE_UNITS) & (resid > OFF_FACE_MEDIANS * usual[None])
    out[:, cols] = np.nan_to_num(covered, nan=0.0).astype(bool)
    return out


def _confidence(sigma: np.ndarray, tolerance_px: float) -> np.ndarray:
    """P(|error| < tolerance) for a 2-D isotropic Gaussian error of per-axis std ``sigma``."""
    return within_probability(sigma, tolerance_px)


def relative_confidence(conf: np.ndarray, det_ok: np.ndarray) -> np.ndarray:
    """Each detection's confidence over its landmark's median on the shot (1 where unknown).

    Why: the detector's confidence has a different level for every landmark (a silhouette
    point never reaches a pupil's), so an absolute threshold cannot tell a covered pupil
    from a chin; a sudden drop against the landmark's own level can.

    Shape: conf, det_ok (F, L) -> (F, L) float64.
    """
    ok = np.asarray(det_ok, dtype=bool)
    masked = np.where(ok, conf, np.nan)
    seen: np.ndarray = np.asarray(ok.any(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        level = np.nanmedian(np.where(seen[None], masked, 1.0), axis=0)
        rel = np.where(ok, conf / np.where(level > 0, level, 1.0)[None], 1.0)
    return np.nan_to_num(rel, nan=1.0, posinf=1.0)


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
    det_spread: Optional[np.ndarray] = None,
    shape_prior: Optional[ShapePrior] = None,
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
        det_spread: RMS distance (px) of each detection from the mean of several test-time
            crops of the same frame, when the detector measured it; feeds the error model.
            Shape: (F, L).
        shape_prior: the character's geometric prior (``seamroto.shapeprior``): silhouette
            and seam landmarks are re-solved with it along their LK window's weak direction,
            from the fused interior landmarks. None (or a prior whose landmarks are not
            tracked) leaves fusion as it was.

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
    rel = relative_confidence(conf, det_ok)
    if shape_prior is not None:
        # an anchor detected far off the face the others define is covered (a rig arm, a rod)
        rel = np.where(off_face_anchors(z, det_ok, names, shape_prior), 0.0, rel)
    occluded = det_ok & (rel < params.occlusion_ratio)
    weight_conf = conf * np.clip(rel, 0.0, 1.0) ** params.occlusion_power
    disp, info = _flow_terms(flow_fwd, flow_bwd, f, n)
    if f >= 2:
        gone = absent[1:] | absent[:-1]
        # LK on an occluded point follows the occluder (a lid closing over a pupil).
        hidden = _widened(occluded, det_ok, params.occlusion_margin)
        hidden = hidden[1:] | hidden[:-1]
        drop = gone[None, :, None] | disc[None, None, :] | hidden[None]
        info = np.where(drop[..., None, None], 0.0, info)
    sig_d, sig_f = _estimate_sigmas(z, det_ok, disp, info, cont, params)
    logger.info("fusion: detection sigma %.2f px, flow sigma %.3f px", sig_d, sig_f)

    det_sigma = np.where(det_ok, sig_d / np.sqrt(np.maximum(weight_conf, MIN_WEIGHT)), np.inf)
    a0 = np.where(det_ok, weight_conf / sig_d**2, 0.0)
    late = 0
    sig_fl = _landmark_flow_sigma(z, det_ok, disp, info, sig_d, sig_f, params, det_sigma)
    sharp = _sharpen(info, params.aperture_power)
    b0 = sharp / (sig_fl**2)[None, None, :, None, None]
    if params.rigid_motion and f >= 2:
        rd, ri = _rigid_terms(z, det_ok, disp, info, cont, params, det_sigma if params.rigid_link_check else None)
        # the face's motion only speaks where the landmark's own flow is silent: along a
        # contour, or on links where LK failed. Where both speak they would fight over
        # every non-rigid move (a brow raise, a gaze jump).
        own = _clip_eigen(sharp.sum(axis=0), 1.0)
        ri = np.einsum("flij,fljk->flik", ri, np.eye(2) - own)
        ri = 0.5 * (ri + np.swapaxes(ri, -1, -2))
        disp = np.concatenate([disp, rd[None]])
        b0 = np.concatenate([b0, ri[None]])
        late = 1 if params.rigid_join_late else 0
    g0 = params.smoothing / params.acceleration_sigma_px**2

    points = np.full((f, n, 2), np.nan)
    sigma = np.full((f, n), np.inf)
    weight = np.zeros((f, n))
    factors: Dict[int, np.ndarray] = {}
    supports: Dict[int, np.ndarray] = {}
    cont_cols = np.flatnonzero(cont)
    for j in cont_cols:
        x, ub, live, wa = _smooth_one(
            z[:, j], a0[:, j], disp[:, :, j], b0[:, :, j], g0, det_sigma[:, j], params,
            late=late,
        )
        points[:, j] = x
        weight[:, j] = wa
        factors[int(j)] = ub
        supports[int(j)] = live
    metric: Optional[np.ndarray] = None
    prior_names: Tuple[str, ...] = ()
    prediction = shape_prior.predict(points, names) if shape_prior is not None and cont.any() else None
    if prediction is not None:
        # second pass: the prior, predicted from the fused interior, re-solves the targets.
        metric = np.broadcast_to(np.eye(2), (f, n, 2, 2)).copy()
        aperture = _aperture_per_frame(flow_fwd, flow_bwd, f, n)
        used = []
        for k, j in enumerate(prediction.columns):
            if disc[j]:
                continue
            shape, p_mean, p_info = _prior_terms(
                prediction.mean[:, k], prediction.cov[:, k], aperture[:, j], params.prior_detection_along
            )
            off = _off_line(points[:, j], prediction.mean[:, k], prediction.cov[:, k], params.prior_line_sigmas)
            p_info = np.where(off[:, None, None], 0.0, p_info)
            x, ub, live, wa = _smooth_one(
                z[:, j], a0[:, j], disp[:, :, j], b0[:, :, j], g0, det_sigma[:, j], params,
                late=late, det_shape=shape, prior=(p_mean, p_info),
            )
            points[:, j], weight[:, j], factors[int(j)], supports[int(j)] = x, wa, ub, live
            metric[:, j] = shape
            used.append(names[j])
        prior_names = tuple(used)
    if factors:
        cols = np.array(sorted(factors))
        var = _diag_inverse(np.stack([factors[j] for j in cols])).reshape(len(cols), f, STATE)[:, :, :2]
        var = np.where(np.stack([supports[j] for j in cols]), var.mean(axis=2), np.inf)
        sigma[:, cols] = np.sqrt(var).T
    if disc.any():
        points[:, disc] = np.where(det_ok[:, disc, None], det[:, disc], np.nan)
        weight[:, disc] = det_ok[:, disc].astype(np.float64)
        stab = _stabilised(points, det, det_ok, cont)
        base = det_sigma
        pieces = None if shape_prior is None or shape_prior.pieces is None else shape_prior.pieces.estimate(
            points, np.where(det_ok[..., None], det, np.nan), names, shape_prior.anchors, shape_prior.template
        )
        if pieces is not None:
            # each frame's print pulled toward the character's prints (seamroto.pieceprior)
            base = det_sigma.copy()
            for k, j in enumerate(pieces.columns):
                ok = np.isfinite(pieces.points[:, k]).all(axis=1) & det_ok[:, j]
                points[ok, j] = pieces.points[ok, k]
                base[ok, j] = pieces.sigma_px[ok, k]
        sigma[:, disc] = _discontinuous_sigma(stab, base, disc, sig_d, params)[:, disc]
    if cont.any():
        # an occluded detection (a pupil under a closed lid) guesses on the occluder: it says
        # nothing against the track, as in the tension term below; a point that moved while
        # hidden is the hidden-jump term's to report
        seen = det_ok & ~occluded
        sigma[:, cont] = _disagreement_sigma(points, det, seen, weight, sigma, params, metric)[:, cont]
    points[absent] = np.nan
    sigma[absent] = np.inf
    weight[absent] = 0.0
    if det_spread is not None and np.shape(det_spread) != (f, n):
        raise ShapeError("det_spread", np.shape(det_spread), (f, n))
    # a detection the track overrules matters as far as it was trusted: fully rejected, or
    # expected to be poor (its confidence fell), it says nothing against the track.
    trust = weight**2 * np.clip(rel, 0.0, 1.0) ** params.occlusion_power
    residual = np.where(det_ok, _detection_residual(points, z, det_ok, metric) * np.sqrt(trust), 0.0)
    present = ~absent[:, None] & np.isfinite(points).all(axis=2)
    jumps = _hidden_jumps(points, present & (occluded | ~det_ok), cont)
    feats = error_features(sigma, residual, conf, det_spread, jumps)
    if params.error_model is not None:
        sigma = error_sigma(feats, params.error_model)
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
        error_features=feats,
        prior_landmarks=prior_names,
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
            missing = [names[int(j)] for j in np.flatnonzero(~np.isfinite(points[i]).all(axis=1))]
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
            else:
                known = np.isfinite(points[i]).all(axis=1)
                p_any = 1.0 - float(np.prod(confidence[i, known]))
                if p_any > params.frame_flag_probability:
                    least = [j for j in np.argsort(confidence[i]) if known[j]][:REASON_LANDMARKS_SHOWN]
                    shown = ", ".join(f"{names[j]} ({confidence[i, j]:.2f})" for j in least)
                    parts.append(
                        f"{p_any:.0%} likely that a landmark is off by more than "
                        f"{params.tolerance_px:g} px; least sure: {shown}"
                    )
        if parts:
            reasons[frame] = "; ".join(parts)
    return reasons


def _name_list(items: Sequence[str]) -> str:
    """Short, readable list of landmark names."""
    if len(items) <= REASON_LANDMARKS_SHOWN:
        return ", ".join(items)
    return ", ".join(items[:REASON_LANDMARKS_SHOWN]) + f" and {len(items) - REASON_LANDMARKS_SHOWN} more"
