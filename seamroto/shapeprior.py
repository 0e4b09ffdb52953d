"""Per-character geometric prior: where silhouette and seam landmarks sit, given the face's interior.

Why: a landmark on a silhouette (the chin, the top of the head) or on a line (a seam point) is
only pinned by the image across that curve. Where it sits *along* the curve comes from context,
and the detector gets it wrong in a slowly varying, shot-dependent way (head yaw or pitch that
the outline alone does not show), by several pixels. A replacement face is a rigid print, so the
interior landmarks that are pinned in both directions (eye corners, nose) say where the outline's
named points are: this module learns that at train time from the ground-truth landmark sets, and
``fusion.fuse_tracks`` combines it with the detector along the weak direction only.

How, per frame:

1. A face frame: the similarity that best maps the *anchor* landmarks onto their Procrustes mean
   (the template, centred, unit RMS radius). Position, size and roll are removed.
2. A ridge regression from the anchors' face-frame coordinates to each *target's* face-frame
   position (what is left of the pose, such as yaw parallax between eyes and nose, is in the
   anchors' relative positions). Its penalty is the covariance of the tracker's errors on the
   anchors (white ``input_noise_px``, or ``AnchorNoise`` measured on a calibration shot, which
   is what a tracker really leaves: biases shared by neighbouring points), times a factor chosen
   by leave-one-shot-out cross-validation with that noise added to the held-out shot's anchors,
   so a prior fitted to exact ground truth does not amplify the tracker's errors.
3. The cross-validated residual covariance of each target (face units^2, floored) is its
   uncertainty; a target whose residual is large (a part that moves on its own) is dropped.

The anchors and candidate targets come from the ground truth alone (``choose_landmarks``): the
seam landmarks and the silhouette's (the convex hull of the mean face) are targets, the rigid
interior ones anchors. With ``parts`` the interior points that move on their own (lids, pupils,
brows) are offered as targets too and kept where the prior pins them in one direction (an upper
lid along itself); calibration keeps only those that help on a checked shot.

Saved as ``shape_prior.json`` in the model folder (schema ``SeamRotoShapePrior.1``, no pickle).
``load_shape_prior`` returns None for folders without one, so older models work unchanged.
Everything is ``_img`` space (origin top-left, y down).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from seamroto.confidence import ErrorModel
from seamroto.datamodel import Annotation, Seam, tracks_to_array
from seamroto.errors import ModelError, ModelSchemaError, ShapeError
from seamroto.faceframe import MIN_SPREAD_PX, face_frames, from_face, to_face
from seamroto.fileio import atomic_write_text
from seamroto.pieceprior import PiecePrior, learn_piece_prior

logger = logging.getLogger(__name__)

SHAPE_PRIOR_SCHEMA = "SeamRotoShapePrior.1"
SHAPE_PRIOR_FILE = "shape_prior.json"
#: Tracker noise (px per coordinate, at the training shots' face size) the regression is
#: regularised for: about what fusion leaves on interior landmarks.
DEFAULT_INPUT_NOISE_PX = 0.3
#: Ridge strengths tried, as multiples of the anchors' error covariance (1 is what noise of
#: exactly that covariance implies).
RIDGE_FACTORS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
#: With measured anchor noise, this share of the white ``input_noise_px`` stays as a floor (the
#: measured moment is singular along what the face frame removes).
NOISE_FLOOR_SHARE = 0.01
#: Templates agree (template units) when the anchor noise and the prior come from the same shots.
TEMPLATE_MATCH = 1e-6
#: A candidate anchor is rigid enough when its Procrustes residual is within this many times
#: the median candidate's (lids, pupils and brows move on their own and are left out).
RIGID_RATIO = 1.5
#: Fewest anchors: a similarity plus something left to see the pose in.
MIN_ANCHORS = 3
#: A target is kept when its cross-validated per-axis residual (RMS over both axes) is within
#: this fraction of the face scale (template units; the RMS anchor radius is 1).
MAX_TARGET_SIGMA = 0.02
#: Floor of a target's per-axis sigma (template units): no prior is exact.
MIN_TARGET_SIGMA = 0.002
#: Frames needed to fit (and shots to cross-validate).
MIN_FRAMES = 10
MIN_SHOTS_FOR_CV = 2
PROCRUSTES_ITERATIONS = 5
#: Fixed seed of the simulated tracker noise in cross-validation (reproducible priors).
CV_NOISE_SEED = 0


@dataclass(frozen=True, eq=False)
class PriorPrediction:
    """Where the prior puts each target on each frame.

    Attributes:
        columns: index of each target in the ``names`` the prediction was made for. Shape: (T,).
        mean: Shape: (F, T, 2) float64, _img space; NaN where the anchors are incomplete.
        cov: per-target covariance. Shape: (F, T, 2, 2) float64 px^2; NaN with ``mean``.
    """

    columns: np.ndarray
    mean: np.ndarray
    cov: np.ndarray


@dataclass(frozen=True, eq=False)
class ShapePrior:
    """A learned prior of target landmarks given anchor landmarks (see the module docstring).

    Attributes:
        anchors: landmarks defining the face frame and feeding the regression.
        targets: landmarks the prior predicts.
        template: anchors' Procrustes mean. Shape: (A, 2), centred, unit RMS radius.
        input_mean: mean of the flattened face-frame anchors. Shape: (2A,).
        target_mean: Shape: (T, 2) template units.
        weights: regression from centred inputs to centred targets. Shape: (2A, T, 2).
        residual_cov: cross-validated residual covariance. Shape: (T, 2, 2) template units^2.
        ridge: ridge strength, as a multiple of the anchor noise covariance.
        stats: per-target cross-validated RMS error (px at the training scale) and facts.
        error_model: error model calibrated for fusion with this prior (None: fusion's default).
        pieces: the replacement pieces' shape in the same face frame (``seamroto.pieceprior``;
            None for characters without one and priors written before it existed).
    """

    anchors: Tuple[str, ...]
    targets: Tuple[str, ...]
    template: np.ndarray
    input_mean: np.ndarray
    target_mean: np.ndarray
    weights: np.ndarray
    residual_cov: np.ndarray
    ridge: float
    stats: Mapping[str, Any] = field(default_factory=dict)
    error_model: Optional[ErrorModel] = None
    pieces: Optional[PiecePrior] = None

    def predict(self, points: np.ndarray, names: Sequence[str]) -> Optional[PriorPrediction]:
        """Targets' positions and covariances from the anchors in ``points``.

        Args:
            points: landmark positions (fused or detected). Shape: (F, L, 2), _img space.
            names: landmark name of each column of ``points``.

        Returns:
            The prediction for the targets present in ``names``, or None when an anchor is
            missing from ``names`` or no target is (the prior then says nothing).

        Raises:
            ShapeError: if ``points`` is not (F, len(names), 2).
        """
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 3 or pts.shape[1:] != (len(names), 2):
            raise ShapeError("points", pts.shape, f"(F, {len(names)}, 2)")
        index = {n: i for i, n in enumerate(names)}
        missing = [a for a in self.anchors if a not in index]
        kept = [k for k, t in enumerate(self.targets) if t in index]
        if missing or not kept:
            logger.warning(
                "shape prior unused: landmarks %s are not tracked", ", ".join(missing) or "(all targets)"
            )
            return None
        anchors = pts[:, [index[a] for a in self.anchors]]
        frames = face_frames(anchors, self.template)
        cov_units = self.residual_cov[kept]
        mean = np.full((len(pts), len(kept), 2), np.nan)
        cov = np.full((len(pts), len(kept), 2, 2), np.nan)
        for i, fr in enumerate(frames):
            if fr is None:
                continue
            a, centre = fr
            x = to_face(anchors[i], a, centre).reshape(-1) - self.input_mean
            y = self.target_mean[kept] + np.einsum("i,itk->tk", x, self.weights[:, kept])
            mean[i] = from_face(y, a, centre)
            cov[i] = cov_units / abs(a) ** 2
        return PriorPrediction(np.array([index[self.targets[k]] for k in kept], dtype=int), mean, cov)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict with its schema."""
        doc: Dict[str, Any] = {
            "schema": SHAPE_PRIOR_SCHEMA,
            "anchors": list(self.anchors),
            "targets": list(self.targets),
            "template": self.template.tolist(),
            "input_mean": self.input_mean.tolist(),
            "target_mean": self.target_mean.tolist(),
            "weights": self.weights.tolist(),
            "residual_cov": self.residual_cov.tolist(),
            "ridge": self.ridge,
            "stats": dict(self.stats),
        }
        if self.error_model is not None:
            doc["error_model"] = dataclasses.asdict(self.error_model)
        if self.pieces is not None:
            doc["pieces"] = self.pieces.to_dict()
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], path: str = SHAPE_PRIOR_FILE) -> ShapePrior:
        """Parse and check shapes; another schema is refused with a message.

        Raises:
            ModelSchemaError: the document is for another schema.
            ModelError: it is malformed.
        """
        if doc.get("schema") != SHAPE_PRIOR_SCHEMA:
            raise ModelSchemaError(
                f"shape prior has schema {doc.get('schema')!r}, this version reads {SHAPE_PRIOR_SCHEMA!r}; "
                "re-learn it with `python -m training.shape_prior`",
                path=path,
            )
        try:
            anchors = tuple(str(n) for n in doc["anchors"])
            targets = tuple(str(n) for n in doc["targets"])
            a, t = len(anchors), len(targets)
            arrays = {
                "template": (np.asarray(doc["template"], dtype=np.float64), (a, 2)),
                "input_mean": (np.asarray(doc["input_mean"], dtype=np.float64), (2 * a,)),
                "target_mean": (np.asarray(doc["target_mean"], dtype=np.float64), (t, 2)),
                "weights": (np.asarray(doc["weights"], dtype=np.float64), (2 * a, t, 2)),
                "residual_cov": (np.asarray(doc["residual_cov"], dtype=np.float64), (t, 2, 2)),
            }
            for name, (arr, shape) in arrays.items():
                if arr.shape != shape or not np.isfinite(arr).all():
                    raise ValueError(f"{name} has shape {arr.shape}, expected {shape} (finite)")
            em = doc.get("error_model")
            model = ErrorModel(**{k: float(v) for k, v in em.items()}) if em else None
            pieces = PiecePrior.from_dict(doc["pieces"]) if doc.get("pieces") else None
            return cls(
                anchors,
                targets,
                arrays["template"][0],
                arrays["input_mean"][0],
                arrays["target_mean"][0],
                arrays["weights"][0],
                arrays["residual_cov"][0],
                float(doc["ridge"]),
                dict(doc.get("stats", {})),
                model,
                pieces,
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ModelError(f"shape prior is malformed: {err}", path=path) from err

    def with_error_model(self, model: Optional[ErrorModel]) -> ShapePrior:
        """The same prior carrying ``model`` (calibrated for fusion with it)."""
        return dataclasses.replace(self, error_model=model)

    def with_pieces(self, pieces: Optional[PiecePrior]) -> ShapePrior:
        """The same prior carrying the replacement pieces' shape."""
        return dataclasses.replace(self, pieces=pieces)

    def without(self, targets: Sequence[str]) -> ShapePrior:
        """The same prior saying nothing about ``targets`` (their regression columns dropped).

        Raises:
            ValueError: every target would be dropped.
        """
        gone = set(targets)
        keep = [k for k, t in enumerate(self.targets) if t not in gone]
        if not keep:
            raise ValueError("a shape prior needs a target")
        stats = dict(self.stats)
        for key in ("cv_rms_px", "ridge_factors"):
            if isinstance(stats.get(key), dict):
                stats[key] = {t: v for t, v in stats[key].items() if t not in gone}
        if "parts" in stats:
            stats["parts"] = [t for t in stats["parts"] if t not in gone]
        stats["dropped"] = list(stats.get("dropped", [])) + [t for t in self.targets if t in gone]
        return dataclasses.replace(
            self,
            targets=tuple(self.targets[k] for k in keep),
            target_mean=self.target_mean[keep],
            weights=self.weights[:, keep],
            residual_cov=self.residual_cov[keep],
            stats=stats,
        )


def write_shape_prior(folder: Path, prior: ShapePrior) -> Path:
    """Write ``shape_prior.json`` into a model folder (atomically)."""
    return atomic_write_text(Path(folder) / SHAPE_PRIOR_FILE, json.dumps(prior.to_dict(), indent=1) + "\n")


def load_shape_prior(folder: Path) -> Optional[ShapePrior]:
    """The model folder's shape prior, or None when it has none (older models).

    A prior that the folder's ``card.json`` does not list is ignored (with a warning): every
    file a model uses is verified against the card, so a farm render reproduces the result.

    Raises:
        ModelChecksumError: the file does not match the sha256 in the card.
        ModelError, ModelSchemaError: the file is unreadable or for another schema.
    """
    from seamroto.models import read_listed_json

    doc = read_listed_json(folder, SHAPE_PRIOR_FILE, "shape prior", "re-copy the model folder or re-learn the prior")
    if doc is None:
        return None
    return ShapePrior.from_dict(doc, str(Path(folder) / SHAPE_PRIOR_FILE))


# --- Procrustes ------------------------------------------------------------------------------


def _normalise(p: np.ndarray) -> np.ndarray:
    """Centred, unit RMS radius."""
    c = p - p.mean(axis=0)
    return c / max(float(np.sqrt((c**2).sum(axis=1).mean())), MIN_SPREAD_PX)


def procrustes_mean(shapes: np.ndarray) -> np.ndarray:
    """Generalised Procrustes mean (similarity) of complete landmark sets.

    Shape: (N, K, 2) -> (K, 2), centred, unit RMS radius.
    """
    ref = _normalise(shapes[0])
    for _ in range(PROCRUSTES_ITERATIONS):
        aligned = []
        for fr, p in zip(face_frames(shapes, ref), shapes):
            if fr is not None:
                aligned.append(to_face(p, *fr))
        ref = _normalise(np.mean(aligned, axis=0))
    return ref


# --- learning -----------------------------------------------------------------------------------


def choose_landmarks(
    shots: Sequence[np.ndarray],
    names: Sequence[str],
    *,
    seams: Sequence[Seam] = (),
    discontinuous: Sequence[str] = (),
    parts: bool = False,
) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """Default anchors and candidate targets from the ground truth alone.

    Candidate targets are the points an outline or a line carries: the seam landmarks and the
    convex hull of the mean face (the silhouette's named points). Anchors are the remaining
    continuous landmarks that move rigidly with the face (Procrustes residual within
    ``RIGID_RATIO`` of the median candidate's), so lids, pupils and brows stay out.

    Args:
        shots: per shot, landmarks Shape: (F, L, 2), _img space, NaN where unknown.
        names: landmark names (L).
        seams: the character's seams.
        discontinuous: landmarks on replacement pieces (never anchors or targets).
        parts: also offer the interior points that move on their own (lids, pupils, brows) as
            targets. Why: an upper lid's named point slides down in a blink yet sits at one
            place along the lid, which is exactly where its detector and its LK window are weak.

    Returns:
        (anchors, targets), each in ``names`` order.
    """
    anchors, outline, moving = _landmark_roles(shots, names, seams, discontinuous)
    return anchors, _offered(names, outline, moving, parts)


def _offered(names: Sequence[str], outline: Sequence[str], moving: Sequence[str], parts: bool) -> Tuple[str, ...]:
    """Candidate targets in ``names`` order: the outline and seams, plus the moving parts with ``parts``."""
    offered = set(outline) | (set(moving) if parts else set())
    return tuple(n for n in names if n in offered)


def _landmark_roles(
    shots: Sequence[np.ndarray], names: Sequence[str], seams: Sequence[Seam], discontinuous: Sequence[str]
) -> Tuple[Tuple[str, ...], Tuple[str, ...], Tuple[str, ...]]:
    """(anchors, outline and seam targets, interior parts that move on their own), in ``names`` order."""
    cont = [j for j, n in enumerate(names) if n not in set(discontinuous)]
    full = _complete_rows(shots, cont)
    if len(full) < MIN_FRAMES:
        raise ValueError(f"need {MIN_FRAMES} frames with every landmark known, got {len(full)}")
    mean = procrustes_mean(full)
    seam_names = {n for s in seams for n in s.landmarks}
    on_line = {names[cont[k]] for k, j in enumerate(cont) if names[j] in seam_names}
    try:
        on_line |= {names[cont[k]] for k in ConvexHull(mean).vertices}
    except QhullError:
        pass
    cand = [j for j in cont if names[j] not in on_line]
    if len(cand) < MIN_ANCHORS:
        raise ValueError(f"need {MIN_ANCHORS} interior landmarks to anchor a shape prior, got {len(cand)}")
    sub = full[:, [cont.index(j) for j in cand]]
    ref = procrustes_mean(sub)
    resid = np.zeros(len(cand))
    for fr, p in zip(face_frames(sub, ref), sub):
        if fr is not None:
            resid += ((to_face(p, *fr) - ref) ** 2).sum(axis=1)
    resid = np.sqrt(resid / len(sub))
    limit = RIGID_RATIO * float(np.median(resid))
    anchors = tuple(names[j] for j, r in zip(cand, resid) if r <= limit)
    outline = tuple(names[j] for j in cont if names[j] in on_line)
    moving = tuple(names[j] for j in cand if names[j] not in set(anchors))
    return anchors, outline, moving


def _complete_rows(shots: Sequence[np.ndarray], cols: Sequence[int]) -> np.ndarray:
    """Frames (of all shots) on which every landmark of ``cols`` is known. Shape: (N, C, 2)."""
    rows = [s[:, cols] for s in shots]
    stacked = np.concatenate(rows) if rows else np.zeros((0, len(cols), 2))
    return stacked[np.isfinite(stacked).all(axis=(1, 2))]


@dataclass(frozen=True)
class _Design:
    """Face-frame inputs and targets of one shot's frames (rows with complete anchors)."""

    x: np.ndarray  # (N, 2A)
    y: np.ndarray  # (N, T, 2), NaN where a target is unknown
    scale_px: np.ndarray  # (N,) px per template unit


def _design(arr: np.ndarray, ai: Sequence[int], ti: Sequence[int], template: np.ndarray) -> _Design:
    anchors = arr[:, ai]
    xs, ys, scales = [], [], []
    for i, fr in enumerate(face_frames(anchors, template)):
        if fr is None:
            continue
        xs.append(to_face(anchors[i], *fr).reshape(-1))
        ys.append(to_face(arr[i, ti], *fr))
        scales.append(1.0 / abs(fr[0]))
    n, t = len(xs), len(ti)
    return _Design(
        np.array(xs).reshape(n, 2 * len(ai)), np.array(ys).reshape(n, t, 2), np.array(scales)
    )


def _ridge(
    x: np.ndarray, y: np.ndarray, penalty: np.ndarray
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-target ridge on the rows where each target is known: (input mean, target mean, W).

    ``penalty`` (2A, 2A) is the expected covariance of the inputs' errors: minimising the
    squared error of predictions from noisy inputs adds exactly ``n * penalty`` to X'X.
    """
    mx = x.mean(axis=0)
    t = y.shape[1]
    my = np.zeros((t, 2))
    w = np.zeros((x.shape[1], t, 2))
    for k in range(t):
        ok = np.isfinite(y[:, k]).all(axis=1)
        if ok.sum() < MIN_FRAMES:
            my[k] = np.nan
            continue
        xc = x[ok] - mx
        my[k] = y[ok, k].mean(axis=0)
        w[:, k] = np.linalg.solve(xc.T @ xc + ok.sum() * penalty, xc.T @ (y[ok, k] - my[k]))
    return mx, my, w


def _ridge_per_target(
    x: np.ndarray, y: np.ndarray, noise: np.ndarray, factors: np.ndarray
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_ridge`` with each target's own penalty factor (times ``noise``)."""
    mx = x.mean(axis=0)
    my = np.zeros((y.shape[1], 2))
    w = np.zeros((x.shape[1], y.shape[1], 2))
    for factor in np.unique(factors):
        cols = np.flatnonzero(factors == factor)
        _, my[cols], w[:, cols] = _ridge(x, y[:, cols], factor * noise)
    return mx, my, w


def _predict_units(x: np.ndarray, mx: np.ndarray, my: np.ndarray, w: np.ndarray) -> np.ndarray:
    return my[None] + np.einsum("ni,itk->ntk", x - mx, w)


@dataclass(frozen=True, eq=False)
class AnchorNoise:
    """How the tracker's anchors err, in the face frame: measured on calibration shots.

    Why: white noise on every anchor is not what a tracker leaves. Its errors are biases shared
    by neighbouring points (a whole eye a little off), and a regression that reads head yaw from
    small differences between anchors (nose against eyes) amplifies exactly those. Their second
    moment, used as the ridge penalty, keeps the regression off the directions the tracker gets
    wrong.

    Attributes:
        anchors: the anchors it was measured for (a prior must use the same).
        template: their template (the face frame it is expressed in).
        moment: mean outer product of the input errors (bias included).
            Shape: (2A, 2A) template units^2.
        frames: frames it was measured on.
    """

    anchors: Tuple[str, ...]
    template: np.ndarray
    moment: np.ndarray
    frames: int


def measure_anchor_noise(
    tracked: Sequence[np.ndarray], truth: Sequence[np.ndarray], names: Sequence[str], prior: ShapePrior
) -> AnchorNoise:
    """The second moment of tracked-minus-true anchors in the face frame (``AnchorNoise``).

    Each frame's error is that of the regression's input as it happens: the tracked anchors in
    their own face frame minus the true anchors in theirs.

    Args:
        tracked: per shot, tracked (fused) landmarks, Shape: (F, L, 2), _img space.
        truth: per shot, the ground truth of the same frames, same shape.
        names: landmark names (L).
        prior: a prior learned from the character's training shots (its anchors and template).

    Raises:
        ShapeError: shapes disagree.
        ValueError: an anchor is not in ``names``, or fewer than ``MIN_FRAMES`` frames compare.
    """
    index = {n: i for i, n in enumerate(names)}
    missing = [a for a in prior.anchors if a not in index]
    if missing:
        raise ValueError(f"anchors {missing} are not among {list(names)}")
    ai = [index[a] for a in prior.anchors]
    errs = []
    for tr, gt in zip(tracked, truth):
        tr, gt = np.asarray(tr, dtype=np.float64), np.asarray(gt, dtype=np.float64)
        if tr.shape != gt.shape or tr.ndim != 3 or tr.shape[1] != len(names):
            raise ShapeError("tracked", tr.shape, gt.shape)
        frames_t = face_frames(gt[:, ai], prior.template)
        for i, (fr_n, fr_t) in enumerate(zip(face_frames(tr[:, ai], prior.template), frames_t)):
            if fr_n is not None and fr_t is not None:
                errs.append((to_face(tr[i, ai], *fr_n) - to_face(gt[i, ai], *fr_t)).reshape(-1))
    if len(errs) < MIN_FRAMES:
        raise ValueError(f"need {MIN_FRAMES} frames with every anchor tracked and known, got {len(errs)}")
    e = np.array(errs)
    return AnchorNoise(prior.anchors, prior.template, e.T @ e / len(e), len(e))


def learn_shape_prior(
    shots: Sequence[np.ndarray],
    names: Sequence[str],
    *,
    anchors: Optional[Sequence[str]] = None,
    targets: Optional[Sequence[str]] = None,
    seams: Sequence[Seam] = (),
    discontinuous: Sequence[str] = (),
    input_noise_px: float = DEFAULT_INPUT_NOISE_PX,
    anchor_noise: Optional[AnchorNoise] = None,
    max_target_sigma: float = MAX_TARGET_SIGMA,
    parts: bool = False,
) -> ShapePrior:
    """Learn the prior from ground-truth landmark sets, one array per shot.

    Args:
        shots: per shot (the cross-validation groups), Shape: (F, L, 2), _img space, NaN where
            a landmark is unknown.
        names: landmark names (L).
        anchors: landmarks defining the face frame (default: ``choose_landmarks``).
        targets: candidate landmarks to predict (default: ``choose_landmarks``); those whose
            cross-validated error exceeds ``max_target_sigma`` are dropped.
        seams: the character's seams (their landmarks are candidate targets by default).
        discontinuous: landmarks on replacement pieces (never anchors or targets).
        input_noise_px: tracker noise on the anchors the prior must tolerate (px per coordinate,
            white), when ``anchor_noise`` is not given; also the floor under it.
        anchor_noise: the tracker's anchor errors measured on calibration shots
            (``measure_anchor_noise``, for the same anchors and template); the ridge and the
            cross-validation use it instead of white noise.
        max_target_sigma: largest cross-validated per-axis residual a kept target may have
            (template units); a part (``parts``) needs it in one direction only.
        parts: offer the interior parts that move on their own too (``choose_landmarks``),
            listed in ``stats["parts"]``; whether one helps tracking is for a checked shot to
            say (``calibration.prune_parts``).

    Returns:
        The prior, with its cross-validation figures in ``stats``.

    Raises:
        ShapeError: an array is not (F, L, 2).
        ValueError: too few frames, anchors or targets, or ``anchor_noise`` measured for other
            anchors.
    """
    arrs = [np.asarray(s, dtype=np.float64)[..., :2] for s in shots]
    for a in arrs:
        if a.ndim != 3 or a.shape[1] != len(names):
            raise ShapeError("shots", a.shape, f"(F, {len(names)}, 2)")
    outline: Tuple[str, ...] = ()
    if anchors is None or targets is None or parts:
        auto_a, outline, moving = _landmark_roles(arrs, names, seams, discontinuous)
        if anchors is None:
            anchors = auto_a
        if targets is None:
            targets = _offered(names, outline, moving, parts)
    targets = [t for t in targets if t not in set(anchors)]
    index = {n: i for i, n in enumerate(names)}
    unknown = sorted(set(anchors) - set(index)) + sorted(set(targets) - set(index))
    if unknown:
        raise ValueError(f"shape prior landmarks {unknown} are not among {list(names)}")
    if len(anchors) < MIN_ANCHORS or not targets:
        raise ValueError(f"a shape prior needs {MIN_ANCHORS} anchors and a target, got {list(anchors)}, {targets}")
    ai = [index[n] for n in anchors]
    ti = [index[n] for n in targets]
    full = _complete_rows(arrs, ai)
    if len(full) < MIN_FRAMES:
        raise ValueError(f"need {MIN_FRAMES} frames with every anchor known, got {len(full)}")
    template = procrustes_mean(full)
    designs = [_design(a, ai, ti, template) for a in arrs]
    designs = [d for d in designs if len(d.x)]
    scale = float(np.median(np.concatenate([d.scale_px for d in designs])))
    dim = 2 * len(ai)
    floor = (input_noise_px / scale) ** 2 * np.eye(dim)
    if anchor_noise is None:
        noise = floor
    else:
        if tuple(anchor_noise.anchors) != tuple(anchors) or not np.allclose(
            anchor_noise.template, template, atol=TEMPLATE_MATCH
        ):
            raise ValueError("anchor noise was measured for other anchors or another template; measure it again")
        noise = anchor_noise.moment + NOISE_FLOOR_SHARE * floor
    rng = np.random.default_rng(CV_NOISE_SEED)
    if len(designs) >= MIN_SHOTS_FOR_CV:
        trials = np.stack([_cv_residuals(designs, f * noise, noise, rng) for f in RIDGE_FACTORS])
        with np.errstate(invalid="ignore"):
            scores = np.nanmean(trials**2, axis=(1, 3))  # (factors, T)
        # each target its own ridge: a lid's sliding in a blink must not set the chin's
        chosen = np.argmin(np.where(np.isfinite(scores), scores, np.inf), axis=0)
        factors = np.asarray(RIDGE_FACTORS, dtype=float)[chosen]
        resid = trials[chosen, :, np.arange(len(ti))].transpose(1, 0, 2)
    else:
        # one shot: no honest residual; use the noise-implied ridge and its own residuals.
        x = np.concatenate([d.x for d in designs])
        y = np.concatenate([d.y for d in designs])
        factors = np.ones(len(ti))
        mx, my, w = _ridge(x, y, noise)
        resid = _predict_units(x, mx, my, w) - y
        logger.warning("shape prior from one shot: its uncertainty is not cross-validated")
    on_outline = set(outline)
    is_part = [parts and t not in on_outline for t in targets]
    cov = np.zeros((len(ti), 2, 2))
    keep = []
    for k in range(len(ti)):
        r = resid[:, k][np.isfinite(resid[:, k]).all(axis=1)]
        if len(r) < MIN_FRAMES:
            continue
        c = r.T @ r / len(r) + MIN_TARGET_SIGMA**2 * np.eye(2)
        # a part is pinned in one direction at best (a lid along itself); an outline point in both
        spread = float(np.linalg.eigvalsh(c)[0]) if is_part[k] else 0.5 * float(np.trace(c))
        if math.sqrt(spread) <= max_target_sigma:
            keep.append(k)
        cov[k] = c
    dropped = [targets[k] for k in range(len(ti)) if k not in keep]
    if dropped:
        logger.info("shape prior: no prior for %s (they move on their own)", ", ".join(dropped))
    if not keep:
        raise ValueError("no target landmark is predictable from the anchors; no shape prior")
    x = np.concatenate([d.x for d in designs])
    y = np.concatenate([d.y for d in designs])[:, keep]
    mx, my, w = _ridge_per_target(x, y, noise, factors[keep])
    kept_names = tuple(targets[k] for k in keep)
    stats = {
        "frames": int(len(x)),
        "shots": len(designs),
        "input_noise_px": input_noise_px,
        "anchor_noise": "white" if anchor_noise is None else f"measured on {anchor_noise.frames} frames",
        "anchor_noise_rms_px_per_anchor": round(scale * math.sqrt(float(np.trace(noise)) / len(ai)), 4),
        "scale_px": round(scale, 3),
        "cv_rms_px": {
            t: round(scale * math.sqrt(float(np.trace(cov[k]))), 4) for t, k in zip(kept_names, keep)
        },
        "dropped": dropped,
        "ridge_factors": {t: float(factors[k]) for t, k in zip(kept_names, keep)},
        "parts": [targets[k] for k in keep if is_part[k]],
    }
    logger.info("shape prior: anchors %s, targets %s, cv %s", ", ".join(anchors), ", ".join(kept_names),
                stats["cv_rms_px"])
    pieces = learn_piece_prior(arrs, names, list(discontinuous), list(anchors), template)
    if pieces is not None:
        logger.info("replacement-piece shape: %s from %d frames", ", ".join(pieces.landmarks), pieces.stats["frames"])
    ridge = float(np.median(factors[keep]))
    return ShapePrior(tuple(anchors), kept_names, template, mx, my, w, cov[keep], ridge, stats, None, pieces)


def _cv_residuals(
    designs: Sequence[_Design], penalty: np.ndarray, noise: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Leave-one-shot-out residuals (template units), tracker noise on the held-out inputs.

    ``noise`` (2A, 2A) is the covariance the held-out shot's face-frame anchors are perturbed
    with, so the residual includes what the anchors' errors do to the prediction.
    Shape: (N, T, 2).
    """
    vals, vecs = np.linalg.eigh(noise)
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    out = []
    for k, held in enumerate(designs):
        rest = [d for m, d in enumerate(designs) if m != k]
        mx, my, w = _ridge(np.concatenate([d.x for d in rest]), np.concatenate([d.y for d in rest]), penalty)
        x = held.x + rng.standard_normal(held.x.shape) @ root.T
        out.append(_predict_units(x, mx, my, w) - held.y)
    return np.concatenate(out)


def shots_from_annotations(annotations: Sequence[Annotation], names: Sequence[str]) -> List[np.ndarray]:
    """One landmark array per annotation (a shot), Shape: (F, L, 2), for ``learn_shape_prior``."""
    return [tracks_to_array(a.tracks, names, a.frames)[..., :2] for a in annotations if a.frames]
