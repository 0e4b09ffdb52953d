"""The per-character roto rig: every named shape's points, handles and feather from the landmarks.

Learned at train time from the artists' shapes (``learn_rig``), saved beside the landmark model
(``Rig.save``: ``rig.json`` + ``rig.npz``, schema ``SeamRotoRig.2``, no pickle; schema 1 rigs
still load) and applied to tracked landmarks on every frame (``Rig.apply``), so a shot's roto
follows the puppet with the few, stable points an artist would have drawn.

How one shape is rigged:

1. Its landmarks: those lying on or near it on the training frames (at least ``MIN_LANDMARKS``),
   so a shape only needs, and is only flagged for, landmarks of its own part of the face.
2. A face frame per frame: the similarity (scale, rotation, translation; no reflection) that
   best maps those landmarks onto their Procrustes mean. Head motion is removed; what remains is
   expression (a blink, a raised brow).
3. Targets, in that face frame, from one of two parametrisations, whichever cross-validates
   better on the curve itself: the artist's own points when every key already has the same
   points in the same order (an animated Nuke shape), or a re-vectorisation (``revec.py``) to
   the same ``K`` points every frame (real roto whose point count changes), with knots anchored
   on the landmarks that lie on the curve. With anchors the regression learns only the
   difference from a guide curve through those landmarks (``BASELINES``: Catmull-Rom, or a
   curve whose length between each pair of landmarks is predicted from the landmarks' chords,
   ``_ArcModel``: landmarks spaced evenly along the artist's contour say how far it bulges),
   in the face frame, in each knot's own frame along that curve, or in the frame of the chord
   between the landmarks around each knot (``ENCODINGS``). Where an open curve runs on past its
   end landmark (a seam's ends), that overshoot is measured along the curve's end direction in
   units of the face scale, so an artist's habit does not grow with a chord that happens to be
   long.
4. A ridge regression from the normalised landmarks to the flattened targets (positions,
   relative handles, relative feather): its strength chosen by cross-validation across
   annotations (shots) and never below what tracker noise of ``landmark_noise_px`` would imply,
   so a rig learned from exact ground truth does not amplify a tracker's jitter. Whatever the
   guide curve learns from the keys is learned again inside each fold, so no annotation is
   scored by a model that saw it, and all candidates (parametrisation, guide curve, encoding)
   are compared on their cross-validated curve distance.

Applying it reverses the steps; a frame on which a needed landmark is unknown is flagged for that
shape (the others are still fitted). Everything is ``_img`` space (origin top-left, y down).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from seamroto import curves, revec
from seamroto.datamodel import (
    Annotation,
    LandmarkTrack,
    RotoShape,
    Seam,
    ShapeSpec,
    shape_from_arrays,
    tracks_to_array,
)
from seamroto.errors import (
    AnnotationError,
    ModelChecksumError,
    ModelError,
    ModelSchemaError,
    OutputExistsError,
    ShapeError,
)
from seamroto.fileio import atomic_write_bytes, atomic_write_text

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

RIG_SCHEMA = "SeamRotoRig.2"
#: Older schemas ``Rig.load`` still reads (migrated on load; ``save`` writes ``RIG_SCHEMA``).
#: Schema 1 had no gap-length guide curves and stored ``"local": bool`` instead of
#: ``"encoding"``; its ``local`` residuals are the ``"span"`` encoding here.
RIG_SCHEMAS_READ = ("SeamRotoRig.1", RIG_SCHEMA)
RIG_JSON = "rig.json"
RIG_NPZ = "rig.npz"
#: How landmarks are normalised per frame: similarity (4 dof) or affine (6 dof, also removes
#: the foreshortening of a turning head).
FRAME_KINDS = ("similarity", "affine")
#: Columns of one control point: x, y, left handle, right handle, feather offset.
POINT_COLS = 8
#: Fewest landmarks a shape is rigged from (a similarity needs two; more carry expression).
MIN_LANDMARKS = 4
#: A landmark belongs to a shape when its median distance to the shape's curve over the
#: training frames is within this fraction of the face size (RMS landmark radius).
NEAR_FRACTION = 0.02
#: Ridge strengths tried by cross-validation, relative to the number of training samples.
RIDGE_GRID = tuple(float(v) for v in np.logspace(-6, 2, 17))
#: The artist's own points are kept when at least this share of keys lines up with the median
#: key as numbered (rather than shifted or reversed).
NATIVE_AGREEMENT = 0.95
#: A landmark lies on the curve (and guides it) within this fraction of the face size.
GUIDE_FRACTION = 0.01
#: Share of keys on which the guide landmarks must come in the same order along the curve.
GUIDE_CONSISTENCY = 0.8
PROCRUSTES_ITERATIONS = 5
CV_FOLDS = 5
#: Keys looked at to find the order of the landmarks along a curve.
GUIDE_SAMPLE_KEYS = 32
#: Consistent artist points whose cross-validated curve error is below this (px) are kept
#: without trying a re-vectorisation.
NATIVE_EXACT_PX = 0.05
#: Keys scored (evenly spread) when candidates are compared on the curve, and the Bezier
#: samples per segment for that comparison.
CV_SCORE_ROWS = 48
CV_SCORE_SAMPLES = 16
#: A frame's landmarks spanning less than this (px, RMS radius) cannot define a face frame.
MIN_LANDMARK_SPREAD_PX = 1e-6
#: An affine face frame needs landmarks whose minor spread is at least this fraction of their
#: major spread; thinner sets (a seam's landmarks on a line) fall back to a similarity.
AFFINE_MIN_ASPECT = 0.15
DEFAULT_SEAM_LAYER = ("seam",)
SEAM_BAND_SUFFIX = "_band"
#: Handle length of a quarter circle as a fraction of its radius.
CAP_KAPPA = 4.0 / 3.0 * float(np.tan(np.pi / 8.0))
REVEC_MODES = ("auto", "always", "never")
#: How an anchored shape's targets are encoded: offsets from the guide curve in the face frame
#: ("face") or in each knot's frame along it ("knot"), or offsets in the frame of the chord
#: between the landmarks around each knot ("chord").
ENCODINGS = ("face", "knot", "chord")
#: Read from older rigs, never chosen when learning: ``"span"`` is ``"knot"`` with the knots
#: past an open curve's end landmarks measured in their own (degenerate) spans, as schema 1 did.
LEGACY_ENCODINGS = ("span",)
#: A chord between two guide landmarks is given this fraction of the face scale along its mean
#: direction, so a chord that collapses (a seam seen edge-on) still has a direction.
CHORD_PRIOR = 0.05
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
#: Temporal smoothing: window half-width in sigmas, and the shortest run of frames smoothed.
SMOOTH_WINDOW_SIGMAS = 2.5
SMOOTH_MIN_RUN = 4
#: Robust smoothing: biweight cut-off in multiples of the expected jitter, and re-fits.
SMOOTH_TUKEY = 4.685
SMOOTH_ROBUST_ITERATIONS = 2
#: Landmark jitter (px per coordinate) a rig is regularised for by default: about what the
#: landmark model leaves after its own temporal fusion.
DEFAULT_LANDMARK_NOISE_PX = 0.3


@dataclass(frozen=True, eq=False)
class ShapeRig:
    """What the rig learned about one shape.

    Arrays: ``mean_landmarks`` (n, 2) centred Procrustes mean of its landmarks (px);
    ``weights`` (2n, 8K), ``feature_mean`` (2n,), ``target_mean`` (8K,) of the regression
    ``target = (features - feature_mean) @ weights + target_mean`` in the face frame, where a
    target row is the K points' ``[x, y, lx, ly, rx, ry, fx, fy]`` flattened.
    ``plan`` is the re-vectorisation plan (None when the artist's own points were kept).
    ``guide``: landmarks on the curve, in curve order; when set, the regression predicts the
    difference from a smooth curve through them (re-vectorised with ``plan``) as ``encoding``
    says: ``"face"`` (face frame), ``"knot"`` (each knot's own frame along that curve),
    ``"chord"`` (the frame of the chord between the landmarks around each knot; no guide curve
    needed) or, from schema 1 rigs, ``"span"``. ``arc_mu``/``arc_weight`` (G, G): the guide
    curve's gap-length model (``_ArcModel``); None for a Catmull-Rom guide curve.
    ``frame``: ``"similarity"`` or ``"affine"``, how landmarks are normalised per frame.
    """

    name: str
    closed: bool
    layer: Tuple[str, ...]
    k: int
    landmarks: Tuple[str, ...]
    mean_landmarks: np.ndarray
    weights: np.ndarray
    feature_mean: np.ndarray
    target_mean: np.ndarray
    feather: float = 0.0
    feather_falloff: float = 1.0
    plan: Optional[revec.RevecPlan] = None
    guide: Tuple[str, ...] = ()
    encoding: str = "face"
    arc_mu: Optional[np.ndarray] = None
    arc_weight: Optional[np.ndarray] = None
    frame: str = "similarity"
    ridge: float = 0.0
    stats: Mapping[str, float] = field(default_factory=dict)

    def predict_face(self, x: np.ndarray, frames: _Frames) -> np.ndarray:
        """Keys in the face frame from this shape's landmarks (F, n, 2) and their face frames.

        Shape: (F, K, 8).
        """
        target = (frames.features(x) - self.feature_mean) @ self.weights + self.target_mean
        target = target.reshape(-1, self.k, POINT_COLS)
        if self.guide and self.plan is not None:
            cols = [self.landmarks.index(g) for g in self.guide]
            if self.encoding == "chord":
                ref = _ChordRef.of(self.mean_landmarks, cols, self.plan)
                return _from_chord(target, frames.points(x[:, cols]), ref)
            base = _baseline(x[:, cols], self.plan, frames, self._arc).reshape(target.shape)
            if self.encoding == "face":
                return target + base
            ends = None
            if self.encoding == "knot":
                ends = (self.plan, _ChordRef.of(self.mean_landmarks, cols, self.plan).face_scale)
            return _from_local(target, base, self.closed, ends)  # "knot" or legacy "span"
        return target

    @property
    def baseline(self) -> str:
        """The guide curve residuals are measured from: ``"catmull_rom"`` or ``"arc"``."""
        return "arc" if self.arc_mu is not None else "catmull_rom"

    @property
    def _arc(self) -> Optional[_ArcModel]:
        if self.arc_mu is None or self.arc_weight is None:
            return None
        return _ArcModel(self.arc_mu, self.arc_weight)

    @property
    def local(self) -> bool:
        """Whether residuals are in each knot's own frame along the guide curve (schema 1 name)."""
        return self.encoding in ("knot", "span")

    @property
    def spec(self) -> ShapeSpec:
        """The shape as the Character lists it."""
        return ShapeSpec(self.name, self.closed, self.layer, self.k)


@dataclass(frozen=True, eq=False)
class FittedShape:
    """One shape fitted on every frame of a shot.

    ``points``: Shape (F, K, 8) float64 ``[x, y, lx, ly, rx, ry, fx, fy]``, relative handles,
    _img space; NaN on flagged frames. ``flagged``: (F,) bool, True where a landmark this shape
    needs was unknown (or below the confidence threshold).
    """

    name: str
    closed: bool
    layer: Tuple[str, ...]
    frames: Tuple[int, ...]
    points: np.ndarray
    flagged: np.ndarray
    feather: float = 0.0
    feather_falloff: float = 1.0

    @property
    def flagged_frames(self) -> Tuple[int, ...]:
        """Frames on which this shape could not be fitted."""
        return tuple(f for f, bad in zip(self.frames, self.flagged) if bad)


@dataclass(frozen=True, eq=False)
class Rig:
    """A character's roto rig: landmark order, and one ``ShapeRig`` per named shape."""

    landmark_names: Tuple[str, ...]
    shapes: Tuple[ShapeRig, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def shape_names(self) -> Tuple[str, ...]:
        """Rigged shapes, in training order."""
        return tuple(s.name for s in self.shapes)

    def shape(self, name: str) -> ShapeRig:
        """The rig of one shape by name.

        Raises:
            ModelError: The rig has no shape of that name.
        """
        for s in self.shapes:
            if s.name == name:
                return s
        raise ModelError(f"the rig has no shape {name!r}; it has {', '.join(self.shape_names)}")

    def shape_specs(self) -> Tuple[ShapeSpec, ...]:
        """``ShapeSpec`` of every rigged shape (for ``Character.shapes``)."""
        return tuple(s.spec for s in self.shapes)

    def apply(
        self,
        points: np.ndarray,
        conf: Optional[np.ndarray] = None,
        *,
        frames: Optional[Sequence[int]] = None,
        min_confidence: float = 0.0,
        smooth_sigma: float = 0.0,
        smooth_noise_px: float = DEFAULT_LANDMARK_NOISE_PX,
        shapes: Optional[Sequence[str]] = None,
    ) -> Dict[str, FittedShape]:
        """Fit every shape on every frame from landmark positions.

        Args:
            points: Landmarks in ``landmark_names`` order, NaN where unknown.
                Shape: (F, L, 2) float, _img space.
            conf: Per-landmark confidence (F, L); landmarks below ``min_confidence`` count as
                unknown. None = all known landmarks are trusted.
            frames: Frame number of each row (default 0..F-1); runs of consecutive frames are
                what ``smooth_sigma`` smooths along.
            min_confidence: Confidence threshold for a landmark to be used.
            smooth_sigma: Sigma in frames of a light, robust temporal smoothing of the fitted
                points and handles (0 = off). It follows steady motion and keeps stop-motion's
                jumps (see ``_local_quadratic``).
            smooth_noise_px: The jitter the smoothing removes (px); changes bigger than a few
                times this are treated as real motion.
            shapes: Fit only these shapes (default all).

        Returns:
            Shape name -> FittedShape; a shape is flagged on frames where a landmark it needs is
            unknown, the other shapes are fitted there as usual.

        Raises:
            ShapeError: ``points`` or ``conf`` has the wrong shape.
            ModelError: ``shapes`` names a shape the rig does not have.
        """
        pts = np.asarray(points, dtype=np.float64)
        n_lm = len(self.landmark_names)
        if pts.ndim != 3 or pts.shape[1:] != (n_lm, 2):
            raise ShapeError("points", pts.shape, f"(F, {n_lm}, 2)")
        n_frames = pts.shape[0]
        known = np.all(np.isfinite(pts), axis=2)
        if conf is not None:
            c = np.asarray(conf, dtype=np.float64)
            if c.shape != (n_frames, n_lm):
                raise ShapeError("conf", c.shape, (n_frames, n_lm))
            known &= np.nan_to_num(c, nan=-np.inf) >= min_confidence
        frame_ids = tuple(range(n_frames)) if frames is None else tuple(int(f) for f in frames)
        if len(frame_ids) != n_frames:
            raise ShapeError("frames", (len(frame_ids),), (n_frames,))
        index = {n: i for i, n in enumerate(self.landmark_names)}
        wanted = self.shapes if shapes is None else tuple(self.shape(n) for n in shapes)
        out: Dict[str, FittedShape] = {}
        for srig in wanted:
            idx = [index[n] for n in srig.landmarks]
            sub = pts[:, idx]
            ok = known[:, idx].all(axis=1)
            pred = np.full((n_frames, srig.k, POINT_COLS), np.nan)
            if ok.any():
                ok_idx = np.flatnonzero(ok)
                frames_ok, good = _fit_frames(sub[ok], srig.mean_landmarks, srig.frame)
                ok[ok_idx[~good]] = False
                if good.any():
                    x = sub[ok_idx[good]]
                    fr = frames_ok.take(good)
                    target = srig.predict_face(x, fr)
                    pred[ok_idx[good]] = fr.keys_from_face(target)
            if smooth_sigma > 0:
                pred = _smooth(pred, ok, frame_ids, smooth_sigma, smooth_noise_px)
            out[srig.name] = FittedShape(
                srig.name,
                srig.closed,
                srig.layer,
                frame_ids,
                pred,
                ~ok,
                srig.feather,
                srig.feather_falloff,
            )
            if (~ok).any():
                logger.info(
                    "%s: flagged on %d of %d frames (a landmark it needs is unknown)",
                    srig.name,
                    int((~ok).sum()),
                    n_frames,
                )
        return out

    def apply_tracks(
        self,
        tracks: Iterable[LandmarkTrack],
        frames: Sequence[int],
        *,
        min_confidence: float = 0.0,
        smooth_sigma: float = 0.0,
        smooth_noise_px: float = DEFAULT_LANDMARK_NOISE_PX,
    ) -> Dict[str, FittedShape]:
        """``apply`` on landmark tracks (missing samples and track confidences respected)."""
        arr = tracks_to_array(tracks, self.landmark_names, frames)
        return self.apply(
            arr[..., :2],
            np.nan_to_num(arr[..., 2], nan=0.0),
            frames=frames,
            min_confidence=min_confidence,
            smooth_sigma=smooth_sigma,
            smooth_noise_px=smooth_noise_px,
        )

    def save(self, folder: PathLike, *, overwrite: bool = False) -> List[Path]:
        """Write ``rig.json`` (schema, names, plans, stats) and ``rig.npz`` (arrays) atomically.

        The JSON records the sha256 of the npz so a truncated or mixed-up pair fails on load.

        Args:
            folder: The model folder (created if missing).
            overwrite: Replace an existing rig there (default: refuse).

        Returns:
            The paths written, JSON first.

        Raises:
            OutputExistsError: A rig is already there and ``overwrite`` is False.
        """
        root = Path(folder)
        json_path, npz_path = root / RIG_JSON, root / RIG_NPZ
        if not overwrite and (json_path.exists() or npz_path.exists()):
            raise OutputExistsError(
                "a rig is already saved here; save to a new model version folder",
                path=str(json_path),
            )
        arrays: Dict[str, np.ndarray] = {}
        shape_docs = []
        for i, s in enumerate(self.shapes):
            for key in ("mean_landmarks", "weights", "feature_mean", "target_mean"):
                arrays[f"{i}.{key}"] = np.ascontiguousarray(getattr(s, key), dtype=np.float64)
            if s.arc_mu is not None and s.arc_weight is not None:
                arrays[f"{i}.arc_mu"] = np.ascontiguousarray(s.arc_mu, dtype=np.float64)
                arrays[f"{i}.arc_weight"] = np.ascontiguousarray(s.arc_weight, dtype=np.float64)
            shape_docs.append(
                {
                    "name": s.name,
                    "closed": s.closed,
                    "layer": list(s.layer),
                    "k": s.k,
                    "landmarks": list(s.landmarks),
                    "feather": s.feather,
                    "feather_falloff": s.feather_falloff,
                    "plan": None if s.plan is None else dataclasses.asdict(s.plan),
                    "guide": list(s.guide),
                    "encoding": s.encoding,
                    "baseline": s.baseline,
                    "frame": s.frame,
                    "ridge": s.ridge,
                    "stats": dict(s.stats),
                }
            )
        buf = io.BytesIO()
        np.savez(buf, allow_pickle=False, **arrays)
        data = buf.getvalue()
        doc = {
            "schema": RIG_SCHEMA,
            "landmark_names": list(self.landmark_names),
            "arrays": RIG_NPZ,
            "arrays_sha256": hashlib.sha256(data).hexdigest(),
            "shapes": shape_docs,
            "meta": dict(self.meta),
        }
        written = [atomic_write_bytes(npz_path, data)]
        written.insert(0, atomic_write_text(json_path, json.dumps(doc, indent=1) + "\n"))
        logger.info("saved rig (%d shapes) to %s", len(self.shapes), root)
        return written

    @classmethod
    def load(cls, folder: PathLike) -> Rig:
        """Read a rig saved by ``save``; arrays are read without pickle.

        Raises:
            ModelError: Files missing or unreadable.
            ModelSchemaError: Written for another schema.
            ModelChecksumError: ``rig.npz`` does not match the checksum in ``rig.json``.
        """
        root = Path(folder)
        json_path = root / RIG_JSON
        try:
            doc = json.loads(json_path.read_text(encoding="utf-8"))
        except FileNotFoundError as err:
            raise ModelError(
                "no rig here; train the character (or pick its model folder)", path=str(json_path)
            ) from err
        except (OSError, ValueError) as err:
            raise ModelError(f"cannot read the rig ({err})", path=str(json_path)) from err
        schema = doc.get("schema") if isinstance(doc, dict) else None
        if schema not in RIG_SCHEMAS_READ:
            raise ModelSchemaError(
                f"rig schema is {schema!r}, this SeamRoto reads {', '.join(RIG_SCHEMAS_READ)}; "
                "retrain the rig or use the SeamRoto version that wrote it",
                path=str(json_path),
            )
        if schema != RIG_SCHEMA:
            logger.info("%s: rig schema %s, migrated on load to %s", json_path, schema, RIG_SCHEMA)
        npz_path = root / str(doc.get("arrays", RIG_NPZ))
        try:
            data = npz_path.read_bytes()
        except OSError as err:
            raise ModelError(f"cannot read the rig arrays ({err})", path=str(npz_path)) from err
        if hashlib.sha256(data).hexdigest() != doc.get("arrays_sha256"):
            raise ModelChecksumError(
                "rig arrays do not match the checksum in rig.json (truncated or from another "
                "rig); copy the whole model folder again",
                path=str(npz_path),
            )
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        shapes = []
        for i, s in enumerate(doc["shapes"]):
            plan = None if s["plan"] is None else _plan_from_doc(s["plan"])
            shapes.append(
                ShapeRig(
                    name=str(s["name"]),
                    closed=bool(s["closed"]),
                    layer=tuple(s["layer"]),
                    k=int(s["k"]),
                    landmarks=tuple(s["landmarks"]),
                    mean_landmarks=arrays[f"{i}.mean_landmarks"],
                    weights=arrays[f"{i}.weights"],
                    feature_mean=arrays[f"{i}.feature_mean"],
                    target_mean=arrays[f"{i}.target_mean"],
                    feather=float(s["feather"]),
                    feather_falloff=float(s["feather_falloff"]),
                    plan=plan,
                    guide=tuple(s.get("guide", ())),
                    encoding=_encoding_from_doc(s, str(json_path)),
                    arc_mu=_arc_array(arrays, i, "arc_mu", s, str(npz_path)),
                    arc_weight=_arc_array(arrays, i, "arc_weight", s, str(npz_path)),
                    frame=str(s.get("frame", "similarity")),
                    ridge=float(s["ridge"]),
                    stats={str(k): float(v) for k, v in s.get("stats", {}).items()},
                )
            )
        return cls(tuple(doc["landmark_names"]), tuple(shapes), dict(doc.get("meta", {})))


# --- learning --------------------------------------------------------------------------------


@dataclass
class _Samples:
    """One shape's training keys gathered from every annotation."""

    name: str
    closed: bool
    layer: Tuple[str, ...]
    feathers: List[float] = field(default_factory=list)
    falloffs: List[float] = field(default_factory=list)
    keys: List[np.ndarray] = field(default_factory=list)  # (N, 8) artist points, _img
    landmarks: List[np.ndarray] = field(default_factory=list)  # (L, 2) all landmarks, NaN unknown
    groups: List[int] = field(default_factory=list)  # annotation index, for cross-validation
    where: List[Tuple[str, int]] = field(default_factory=list)  # (source, frame)


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


def _gather(
    annotations: Sequence[Annotation], names: Tuple[str, ...], shape_names: Optional[Sequence[str]]
) -> Dict[str, _Samples]:
    """Every (landmarks, key) pair of every wanted shape, validated."""
    out: Dict[str, _Samples] = {}
    wanted = None if shape_names is None else list(shape_names)
    for gi, ann in enumerate(annotations):
        where = ann.source.split(" | ", 1)[0]
        frames = ann.frames
        lm = tracks_to_array(ann.tracks, names, frames)[..., :2]
        row = {f: i for i, f in enumerate(frames)}
        for shape in _iter_shapes(ann):
            if wanted is not None and shape.name not in wanted:
                continue
            s = out.setdefault(shape.name, _Samples(shape.name, shape.closed, tuple(shape.layer)))
            if s.closed != shape.closed:
                raise AnnotationError(
                    f"shape '{shape.name}' is closed in one annotation and open in another; "
                    "make it the same kind everywhere",
                    path=where,
                )
            for frame in shape.key_frames:
                arr = shape.points_array(frame)
                revec.validate_shape(arr, shape.closed, name=shape.name, frame=frame, path=where)
                s.keys.append(arr)
                s.landmarks.append(lm[row[frame]])
                s.groups.append(gi)
                s.where.append((where, frame))
                s.feathers.append(shape.feather)
                s.falloffs.append(shape.feather_falloff)
    if wanted is not None:
        missing = [n for n in wanted if n not in out]
        if missing:
            raise AnnotationError(
                f"no annotation has shape(s) {', '.join(missing)}; check the shape names "
                f"(found: {', '.join(out) or 'none'})"
            )
        out = {n: out[n] for n in wanted}
    if not out:
        raise AnnotationError("the annotations hold no roto shapes to learn a rig from")
    return out


def _iter_shapes(ann: Annotation) -> Iterable[RotoShape]:
    """Animated shapes, then the per-frame single-key shapes of real roto."""
    yield from ann.shapes
    for frame in sorted(getattr(ann, "frame_shapes", {}) or {}):
        yield from ann.frame_shapes[frame]


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


@dataclass(frozen=True, eq=False)
class _Candidate:
    """One way to parametrise a shape's targets: native points, or re-vectorised ones.

    ``targets``/``base``: (S, 8K) face-frame keys and the guide curve's keys (zeros without a
    guide); the regression learns ``targets - base`` (or the local encoding of it).
    """

    plan: Optional[revec.RevecPlan]
    guide: Tuple[int, ...]
    targets: np.ndarray
    base: np.ndarray
    fit_errors: Tuple[float, ...] = ()
    anchors: Optional[np.ndarray] = None  # (S, g, 2) guide landmarks, face frame
    chord_ref: Optional[_ChordRef] = None
    arc: Optional[_ArcModel] = None  # the guide curve's gap lengths (None: Catmull-Rom)
    arc_inputs: Optional[_ArcInputs] = None

    def for_fold(self, train: np.ndarray) -> _Candidate:
        """This candidate with its gap-length model learned from the ``train`` rows only."""
        if self.arc is None or self.arc_inputs is None:
            return self
        inputs = self.arc_inputs
        arc = _ArcModel.learn(inputs.lengths[train], inputs.chords[train])
        assert self.plan is not None
        base = _baseline(inputs.guide, self.plan, inputs.frames, arc)
        return dataclasses.replace(self, arc=arc, base=base)

    @property
    def encodings(self) -> Tuple[str, ...]:
        """The encodings this candidate can be learned in."""
        if not self.guide:
            return ("face",)
        if self.chord_ref is None or self.arc is not None:
            return ("face", "knot")  # the chord encoding ignores the guide curve
        return ENCODINGS

    def encode(self, encoding: str, closed: bool) -> np.ndarray:
        """What the regression predicts, per row."""
        shape3 = (len(self.targets), -1, POINT_COLS)
        if encoding == "chord":
            assert self.anchors is not None and self.chord_ref is not None
            enc = _to_chord(self.targets.reshape(shape3), self.anchors, self.chord_ref)
            return enc.reshape(len(self.targets), -1)
        if encoding == "face":
            return self.targets - self.base
        b = self.base.reshape(shape3)
        return _to_local(self.targets.reshape(shape3), b, closed, self._ends).reshape(len(b), -1)

    def decode(
        self, encoding: str, closed: bool, rows: np.ndarray, sel: Union[np.ndarray, slice]
    ) -> np.ndarray:
        """Face-frame keys (rows of 8K) from predictions for the rows ``sel``."""
        if encoding == "chord":
            assert self.anchors is not None and self.chord_ref is not None
            anchors = self.anchors[sel]
            out = _from_chord(rows.reshape(len(anchors), -1, POINT_COLS), anchors, self.chord_ref)
            return out.reshape(len(anchors), -1)
        base = self.base[sel]
        if encoding == "face":
            return rows + base
        b = base.reshape(len(base), -1, POINT_COLS)
        return _from_local(rows.reshape(b.shape), b, closed, self._ends).reshape(len(b), -1)

    @property
    def _ends(self) -> Optional[Tuple[revec.RevecPlan, float]]:
        if self.plan is None or self.chord_ref is None:
            return None
        return (self.plan, self.chord_ref.face_scale)


@dataclass(frozen=True, eq=False)
class _ArcInputs:
    """What a gap-length model is learned from, kept so cross-validation can relearn it."""

    lengths: np.ndarray  # (S, G) artist's curve between guide landmarks
    chords: np.ndarray  # (S, G)
    guide: np.ndarray  # (S, g, 2) guide landmarks, _img space
    frames: _Frames


@dataclass(frozen=True, eq=False)
class _Fit:
    """A candidate with its chosen encoding and ridge, and its cross-validated predictions."""

    candidate: _Candidate
    encoding: str
    ridge: float
    cv_pred: np.ndarray  # (S, 8K) face frame; NaN rows never held out


def _revec_candidates(
    name: str,
    closed: bool,
    keys: Sequence[np.ndarray],
    face_keys: Sequence[np.ndarray],
    x: np.ndarray,
    idx: Sequence[int],
    dist: np.ndarray,
    frames: _Frames,
    mean: np.ndarray,
    k: Optional[int],
    native: bool,
) -> List[_Candidate]:
    """Targets re-vectorised, anchored on the landmarks that lie on the curve when there are any.

    With anchors there are two candidates, one per guide curve (``BASELINES``): Catmull-Rom
    through the landmarks, and the curve whose gaps have their predicted lengths. Empty when
    the artist's points already correspond (``native``) and no landmark lies on the curve: a
    plain re-vectorisation cannot beat consistent artist points.
    """
    plan = revec.plan_shape(face_keys, closed, k)
    # Re-vectorise in _img space (so fit errors are image pixels) with the face frame's axis
    # turned into each frame; first plainly (a sample of keys is enough), to see the
    # landmarks' order along the curve.
    some = np.unique(np.linspace(0, len(keys) - 1, GUIDE_SAMPLE_KEYS).astype(int))
    plain = revec.revectorise_many(
        [keys[j] for j in some], frames.take(some).plans_in_frames(plan), measure=False
    )
    oriented = [frames.take(some).key_to_face(rv.points, j) for j, rv in enumerate(plain)]
    face_lms = frames.points(x)
    guide = _choose_guide(name, closed, idx, dist[some], face_lms[some], oriented)
    if native and not guide:
        return []
    gcols = [list(idx).index(g) for g in guide]
    if guide:
        plan = revec.plan_anchored(plan, face_keys, list(face_lms[:, gcols]), k)
    fitted = revec.revectorise_many(
        keys, frames.plans_in_frames(plan), list(x[:, gcols]) if guide else None
    )
    targets = np.stack([frames.key_to_face(rv.points, j).reshape(-1) for j, rv in enumerate(fitted)])
    base = _baseline(x[:, gcols], plan, frames) if guide else np.zeros_like(targets)
    errors = tuple(rv.fit_error_px for rv in fitted)
    if not guide:
        return [_Candidate(plan, guide, targets, base, errors)]
    ref = _ChordRef.of(mean, gcols, plan)
    plain_cand = _Candidate(plan, guide, targets, base, errors, face_lms[:, gcols], ref)
    chords = np.linalg.norm(_gap_chords(x[:, gcols], closed), axis=-1)
    inputs = _ArcInputs(_gap_lengths([rv.points for rv in fitted], plan), chords, x[:, gcols], frames)
    arc = _ArcModel.learn(inputs.lengths, inputs.chords)
    arc_base = _baseline(inputs.guide, plan, frames, arc)
    return [plain_cand, dataclasses.replace(plain_cand, base=arc_base, arc=arc, arc_inputs=inputs)]


def _fit_candidate(
    cand: _Candidate,
    feats: np.ndarray,
    folds: Sequence[np.ndarray],
    grid: Sequence[float],
    closed: bool,
    noise_var: float,
) -> List[_Fit]:
    """One fit per residual encoding, its ridge strength chosen by cross-validation.

    Whatever the candidate learned from its keys (the gap lengths of its guide curve) is
    learned again without each fold's keys, so no fold is scored by a model that saw it.
    The encodings are compared afterwards on the curve itself (their squared errors mix
    positions with handles in different units).
    """
    out = []
    per_fold = [cand.for_fold(~test) for test in folds]
    for encoding in cand.encodings:
        fold_data = [
            (c.encode(encoding, closed), functools.partial(c.decode, encoding, closed))
            for c in per_fold
        ]
        errs, preds = _cv_errors(feats, fold_data, folds, grid, cand.targets, noise_var)
        i = int(np.argmin(errs))
        out.append(_Fit(cand, encoding, grid[i], preds[i]))
    return out


def _landmark_distances(samples: _Samples) -> np.ndarray:
    """Distance of every landmark to the shape's curve per key, over the face size (RMS radius).

    Shape: (keys, L), NaN where the landmark is unknown.
    """
    dists = []
    for key, lm in zip(samples.keys, samples.landmarks):
        poly = curves.sample_bezier(key, samples.closed, curves.DEFAULT_SAMPLES_PER_SEGMENT)
        known = np.all(np.isfinite(lm), axis=1)
        d = np.full(len(lm), np.nan)
        if known.sum() >= 2:
            pts = lm[known]
            size = np.sqrt(((pts - pts.mean(axis=0)) ** 2).sum(axis=1).mean())
            d[known] = curves.point_to_polyline(pts, poly, samples.closed) / max(size, 1e-12)
        dists.append(d)
    return np.stack(dists)


def _median_distance(dist: np.ndarray) -> np.ndarray:
    """Median over keys of each landmark's distance; inf for landmarks mostly unknown."""
    seen = np.isfinite(dist).mean(axis=0)
    med = np.full(dist.shape[1], np.inf)
    often = seen >= 0.5
    if often.any():
        med[often] = np.nanmedian(dist[:, often], axis=0)
    return med


def _choose_landmarks(
    name: str, dist: np.ndarray, near_fraction: float, min_landmarks: int
) -> List[int]:
    """Landmarks on or near the shape on most training frames, topped up with the nearest."""
    med = _median_distance(dist)
    order = np.argsort(med, kind="stable")
    chosen = [int(i) for i in order if med[i] <= near_fraction]
    for i in order:
        if len(chosen) >= min_landmarks or not np.isfinite(med[i]):
            break
        if int(i) not in chosen:
            chosen.append(int(i))
    if len(chosen) < 2:
        raise AnnotationError(
            f"shape '{name}': fewer than two landmarks are known on most of its frames"
        )
    return sorted(chosen)


def _choose_guide(
    name: str,
    closed: bool,
    idx: Sequence[int],
    dist: np.ndarray,
    face_lms: np.ndarray,
    oriented: Sequence[np.ndarray],
) -> Tuple[int, ...]:
    """The shape's landmarks that lie on its curve, in the order the curve passes them.

    When the artist's curve runs through landmarks (the usual case: eye corners, lid points), a
    smooth curve through them already is most of the shape, and the regression only has to learn
    the small, consistent difference; that is far more accurate than a linear map from scratch.
    Empty when too few landmarks lie on the curve or their order is not the same on most keys.
    """
    med = _median_distance(dist)
    on = [i for i in idx if med[i] <= GUIDE_FRACTION]
    if len(on) < (3 if closed else 2):
        return ()
    cols = [list(idx).index(i) for i in on]
    orders: Dict[Tuple[int, ...], int] = {}
    for j, fk in enumerate(oriented):
        poly = curves.sample_bezier(fk, closed, curves.DEFAULT_SAMPLES_PER_SEGMENT)
        p = face_lms[j, cols]
        near = np.argmin(np.linalg.norm(poly[None, :, :] - p[:, None, :], axis=2), axis=1)
        order = tuple(int(on[c]) for c in np.argsort(near, kind="stable"))
        if closed:
            # Same cyclic order whatever the start, but direction counts.
            r = order.index(min(order))
            order = order[r:] + order[:r]
        orders[order] = orders.get(order, 0) + 1
    best, count = max(orders.items(), key=lambda kv: kv[1])
    if count < GUIDE_CONSISTENCY * len(oriented):
        logger.info("%s: landmarks on the curve change order between keys; no guide curve", name)
        return ()
    return best


def _end_knots(plan: revec.RevecPlan) -> List[Tuple[List[int], int]]:
    """The knots an open curve runs on past its first / last guide landmark.

    Returns:
        ``[(knots, that landmark's knot), ...]``; empty for closed curves and plain ends.
    """
    if plan.closed or not plan.gaps:
        return []
    out = []
    if plan.ends[0]:
        out.append((list(range(plan.gaps[0])), plan.gaps[0]))
    if plan.ends[1]:
        last = plan.k - plan.gaps[-1]  # the last landmark's knot
        out.append((list(range(last + 1, plan.k)), last))
    return out


def _local_axes(
    base: np.ndarray, closed: bool, ends: Optional[Tuple[revec.RevecPlan, float]] = None
) -> Tuple[np.ndarray, np.ndarray]:
    """Per-knot tangent direction and length scale of a baseline curve.

    Args:
        base: Baseline keys (F, K, 8).
        closed: Whether the curve closes.
        ends: ``(plan, face scale)``: the knots an open curve runs on past its end landmarks
            then take the tangent of that landmark's knot and the face scale as their unit,
            because the baseline stops at the landmark (its end knots there have no length of
            their own) and an artist's overshoot has nothing to do with the nearest span.

    Returns:
        ``t`` (F, K, 2) unit tangents and ``s`` (F, K, 1) the mean length of the knot's spans.
    """
    p = base[..., 0:2]
    t = base[..., 4:6] - base[..., 2:4]
    if closed:
        nxt, prv = np.roll(p, -1, axis=1), np.roll(p, 1, axis=1)
    else:
        nxt = np.concatenate([p[:, 1:], 2 * p[:, -1:] - p[:, -2:-1]], axis=1)
        prv = np.concatenate([2 * p[:, :1] - p[:, 1:2], p[:, :-1]], axis=1)
    chord = nxt - prv
    tn = np.linalg.norm(t, axis=-1, keepdims=True)
    t = np.where(tn > 1e-9, t, chord)
    t = t / np.maximum(np.linalg.norm(t, axis=-1, keepdims=True), 1e-12)
    span = 0.5 * (np.linalg.norm(nxt - p, axis=-1) + np.linalg.norm(p - prv, axis=-1))
    if ends is not None:
        for knots, anchor in _end_knots(ends[0]):
            t[:, knots] = t[:, anchor, None]
            span[:, knots] = ends[1]
    return t, np.maximum(span, 1e-9)[..., None]


def _to_local(
    keys: np.ndarray,
    base: np.ndarray,
    closed: bool,
    ends: Optional[Tuple[revec.RevecPlan, float]] = None,
) -> np.ndarray:
    """Keys (F, K, 8) as offsets from a baseline in each knot's own frame (along, across) / span.

    A lid that rotates as the eye closes carries its handles with it, so in these coordinates
    the artist's habits (how far a handle reaches past the landmarks) are nearly constant.
    ``ends``: see ``_local_axes``.
    """
    t, span = _local_axes(base, closed, ends)
    n = np.stack([-t[..., 1], t[..., 0]], axis=-1)
    out = np.empty_like(keys)
    for c in range(0, POINT_COLS, 2):
        v = keys[..., c : c + 2] - (base[..., 0:2] if c == 0 else 0.0)
        out[..., c] = (v * t).sum(-1) / span[..., 0]
        out[..., c + 1] = (v * n).sum(-1) / span[..., 0]
    return out


def _from_local(
    local: np.ndarray,
    base: np.ndarray,
    closed: bool,
    ends: Optional[Tuple[revec.RevecPlan, float]] = None,
) -> np.ndarray:
    """Inverse of ``_to_local``."""
    t, span = _local_axes(base, closed, ends)
    n = np.stack([-t[..., 1], t[..., 0]], axis=-1)
    out = np.empty_like(local)
    for c in range(0, POINT_COLS, 2):
        v = span * (local[..., c : c + 1] * t + local[..., c + 1 : c + 2] * n)
        out[..., c : c + 2] = v + (base[..., 0:2] if c == 0 else 0.0)
    return out


@dataclass(frozen=True, eq=False)
class _ChordRef:
    """What the chord encoding needs besides the anchors: the plan and the mean guide.

    ``mean_guide`` (g, 2): the guide landmarks of the Procrustes mean configuration (face frame);
    ``face_scale``: that configuration's RMS radius (face-frame px).
    """

    plan: revec.RevecPlan
    mean_guide: np.ndarray
    face_scale: float

    @classmethod
    def of(cls, mean_landmarks: np.ndarray, cols: Sequence[int], plan: revec.RevecPlan) -> _ChordRef:
        """From a shape's mean landmarks, the guide's columns in them, and the anchored plan."""
        centred = mean_landmarks - mean_landmarks.mean(axis=0)
        scale = float(np.sqrt((centred**2).sum(axis=1).mean()))
        return cls(plan, np.asarray(mean_landmarks)[list(cols)], max(scale, MIN_LANDMARK_SPREAD_PX))


def _chord_frames(
    anchors: np.ndarray, ref: _ChordRef
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each knot's own frame from the anchors around it (see ``_to_chord``).

    A knot between two anchors is measured from the first along their chord, in chord lengths;
    an anchor's own knot from the anchor along the mean direction of its chords; a knot beyond
    the last (or before the first) anchor of an open curve from that anchor, along the outward
    chord, in units of the face scale (the end of a seam runs on past its landmark by an amount
    that has nothing to do with the length of the seam's last chord).

    Args:
        anchors: Guide landmarks per frame (F, g, 2), curve order, face frame.
        ref: The plan and mean guide.

    Returns:
        ``origin`` (F, K, 2), unit ``axis`` (F, K, 2) and ``scale`` (F, K, 1).
    """
    plan = ref.plan
    closed = plan.closed
    n_frames, g = anchors.shape[:2]
    mg = ref.mean_guide
    if closed:
        chord, mean_chord = np.roll(anchors, -1, axis=1) - anchors, np.roll(mg, -1, axis=0) - mg
    else:
        chord, mean_chord = anchors[:, 1:] - anchors[:, :-1], mg[1:] - mg[:-1]
    # A chord that collapses (a seam seen edge-on) keeps a direction: a little of the mean one.
    mean_dir = mean_chord / np.maximum(np.linalg.norm(mean_chord, axis=-1, keepdims=True), 1e-12)
    chord = chord + CHORD_PRIOR * ref.face_scale * mean_dir[None]
    length = np.linalg.norm(chord, axis=-1, keepdims=True)
    unit = chord / length
    n_chords = chord.shape[1]
    origin = np.empty((n_frames, plan.k, 2))
    axis = np.empty((n_frames, plan.k, 2))
    scale = np.empty((n_frames, plan.k, 1))

    def outward(a: int) -> Tuple[np.ndarray, np.ndarray]:
        """Origin and direction past an open curve's first (a < 0) or last landmark."""
        if a < 0:
            return anchors[:, 0], -unit[:, 0]
        return anchors[:, g - 1], unit[:, n_chords - 1]

    starts = np.concatenate([[0], np.cumsum(plan.gaps)]).astype(int)
    lead = 0 if closed else int(plan.ends[0])
    # Knots inside each gap (after the gap's first, fixed knot).
    for f, count in enumerate(plan.gaps):
        a = f - lead  # the landmark at the start of this gap; -1 before the first one
        knots = slice(starts[f] + 1, starts[f] + count)
        if 0 <= a < n_chords:
            origin[:, knots], axis[:, knots] = anchors[:, a, None], unit[:, a, None]
            scale[:, knots] = length[:, a, None]
        else:
            o, u = outward(a)
            origin[:, knots], axis[:, knots], scale[:, knots] = o[:, None], u[:, None], ref.face_scale
    # The fixed knots: on a landmark, or an open curve's ends past its first / last landmark.
    n_fixed = len(plan.gaps) + (0 if closed else 1)
    for f in range(n_fixed):
        i = int(starts[f]) if f < len(plan.gaps) else plan.k - 1
        a = f - lead
        if not 0 <= a < g:
            origin[:, i], axis[:, i] = outward(a)
            scale[:, i] = ref.face_scale
            continue
        near = [(a - 1) % n_chords, a] if closed else [c for c in (a - 1, a) if 0 <= c < n_chords]
        direction = unit[:, near].sum(axis=1)
        origin[:, i] = anchors[:, a]
        axis[:, i] = direction / np.maximum(np.linalg.norm(direction, axis=-1, keepdims=True), 1e-12)
        scale[:, i] = length[:, near].mean(axis=1)
    return origin, axis, scale


def _to_chord(keys: np.ndarray, anchors: np.ndarray, ref: _ChordRef) -> np.ndarray:
    """Keys (F, K, 8), face frame, as offsets in each knot's chord frame (``_chord_frames``).

    Between two landmarks on the curve an artist's curve keeps its shape relative to their
    chord, however the face stretches: a sideburn drawn twice as long keeps its U-shaped bottom.
    """
    origin, t, span = _chord_frames(anchors, ref)
    n = np.stack([-t[..., 1], t[..., 0]], axis=-1)
    out = np.empty_like(keys)
    for c in range(0, POINT_COLS, 2):
        v = keys[..., c : c + 2] - (origin if c == 0 else 0.0)
        out[..., c] = (v * t).sum(-1) / span[..., 0]
        out[..., c + 1] = (v * n).sum(-1) / span[..., 0]
    return out


def _from_chord(enc: np.ndarray, anchors: np.ndarray, ref: _ChordRef) -> np.ndarray:
    """Inverse of ``_to_chord``."""
    origin, t, span = _chord_frames(anchors, ref)
    n = np.stack([-t[..., 1], t[..., 0]], axis=-1)
    out = np.empty_like(enc)
    for c in range(0, POINT_COLS, 2):
        v = span * (enc[..., c : c + 1] * t + enc[..., c + 1 : c + 2] * n)
        out[..., c : c + 2] = v + (origin if c == 0 else 0.0)
    return out


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


def _natively_consistent(
    name: str, face_keys: Sequence[np.ndarray], k: Optional[int], mode: str
) -> bool:
    """Whether the artist's own points already correspond from key to key (count and order).

    Every key has the same count, and in the face frame each key lies closest to the median key
    with its points as numbered, not with a different start point or direction (however much
    the shape itself changes: a replacement mouth).

    Raises:
        AnnotationError: They do not, and ``mode`` is ``"never"`` (no re-vectorising allowed).
    """
    counts = {len(fk) for fk in face_keys}
    ok = len(counts) == 1 and (k is None or k == len(face_keys[0]))
    why = f"point counts differ between keys ({sorted(counts)})"
    if ok:
        stack = np.stack([fk[:, :2] for fk in face_keys])  # (S, N, 2)
        ref = np.median(stack, axis=0)
        n = stack.shape[1]
        closed_like = [np.roll(ref, s, axis=0) for s in range(n)]
        alternatives = closed_like[1:] + [ref[::-1]] + [np.roll(ref[::-1], s, axis=0) for s in range(1, n)]
        own = ((stack - ref) ** 2).sum(axis=(1, 2))
        other = np.min([((stack - alt) ** 2).sum(axis=(1, 2)) for alt in alternatives], axis=0)
        agree = float(np.mean(own < other))
        ok = agree >= NATIVE_AGREEMENT
        why = (
            "the artists' points do not correspond between keys (start or direction differs on "
            f"{100 * (1 - agree):.0f}% of keys)"
        )
    if not ok and mode == "never":
        raise AnnotationError(f"shape '{name}': {why}; use revectorise='auto'")
    return ok


def _cv_folds(groups: np.ndarray) -> List[np.ndarray]:
    """Test masks: one per annotation when there are several, else contiguous fifths."""
    uniq = np.unique(groups)
    n = len(groups)
    if len(uniq) >= 2:
        return [groups == g for g in uniq]
    fold_count = min(CV_FOLDS, n)
    if fold_count < 2:
        return []
    # Contiguous blocks, so neighbouring (near-identical) frames do not test each other.
    ids = np.arange(n) * fold_count // n
    return [ids == i for i in range(fold_count)]


def _cv_errors(
    feats: np.ndarray,
    fold_data: Sequence[Tuple[np.ndarray, Callable[[np.ndarray, np.ndarray], np.ndarray]]],
    folds: Sequence[np.ndarray],
    grid: Sequence[float],
    truth: np.ndarray,
    noise_var: float,
) -> Tuple[np.ndarray, np.ndarray]:
    """Cross-validated squared error (in face-frame target units) for each ridge strength.

    Args:
        feats: Features (S, D).
        fold_data: Per fold, what the regression predicts (S, T) in its own encoding and
            ``decode(predicted rows, test mask) -> face-frame target rows``.
        folds: Boolean test masks.
        grid: Relative ridge strengths.
        truth: Face-frame targets (S, T).
        noise_var: Expected landmark noise variance (px^2 per coordinate), see ``_ridge_fit``.

    Returns:
        Summed squared errors over all folds (G,), and the held-out predictions, decoded
        (G, S, T), NaN on rows no fold holds out.
    """
    errs = np.zeros(len(grid))
    preds = np.full((len(grid),) + truth.shape, np.nan)
    for test, (resid, decode) in zip(folds, fold_data):
        train = ~test
        if train.sum() < 2:
            continue
        x, y = feats[train], resid[train]
        xm, ym = x.mean(axis=0), y.mean(axis=0)
        u, sv, vt = np.linalg.svd(x - xm, full_matrices=False)
        uty = u.T @ (y - ym)
        xt = (feats[test] - xm) @ vt.T
        scale = _feature_scale(x)
        for i, rel in enumerate(grid):
            lam = len(x) * (rel * scale + noise_var)
            pred = decode(xt @ ((sv / (sv * sv + lam))[:, None] * uty) + ym, test)
            preds[i, test] = pred
            errs[i] += ((pred - truth[test]) ** 2).sum()
    return errs, preds


def _feature_scale(x: np.ndarray) -> float:
    """Mean feature variance, so ridge strengths are relative and unit-free."""
    return float(max(np.var(x, axis=0).mean(), 1e-12))


def _ridge_fit(
    feats: np.ndarray, targets: np.ndarray, rel: float, noise_var: float
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ridge regression on centred data.

    The penalty is ``n * (rel * mean feature variance + noise_var)``: the first part is the
    cross-validated strength, the second is what training on landmarks with that much noise
    would add (noise injection is ridge), so a rig learned from exact ground truth does not
    amplify a tracker's jitter.
    """
    f_mean = feats.mean(axis=0)
    t_mean = targets.mean(axis=0)
    x = feats - f_mean
    lam = len(x) * (rel * _feature_scale(x) + noise_var)
    u, sv, vt = np.linalg.svd(x, full_matrices=False)
    w = vt.T @ ((sv / (sv * sv + lam))[:, None] * (u.T @ (targets - t_mean)))
    return w, f_mean, t_mean


# --- face frame ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Frames:
    """Per-frame maps from _img into a shape's face frame: ``face = lin @ img + off``.

    ``lin``: (F, 2, 2); ``off``: (F, 2). Positions take the whole map, relative handles and
    feather offsets only ``lin``.
    """

    lin: np.ndarray
    off: np.ndarray

    def take(self, sel: np.ndarray) -> _Frames:
        """The frames selected by a boolean mask or index array."""
        return _Frames(self.lin[sel], self.off[sel])

    def points(self, xy: np.ndarray) -> np.ndarray:
        """Positions (F, M, 2) into the face frame."""
        return np.einsum("fij,fmj->fmi", self.lin, xy) + self.off[:, None, :]

    def features(self, xy: np.ndarray) -> np.ndarray:
        """Landmarks (F, n, 2) in the face frame, flattened [x0, y0, x1, ...]. Shape: (F, 2n)."""
        return self.points(xy).reshape(len(xy), -1)

    def key_to_face(self, key: np.ndarray, j: int) -> np.ndarray:
        """One key (N, 8) of frame ``j`` from _img into the face frame."""
        lin, off = self.lin[j], self.off[j]
        out = np.array(key, dtype=np.float64, copy=True)
        out[:, 0:2] = out[:, 0:2] @ lin.T + off
        for c in (2, 4, 6):
            out[:, c : c + 2] = out[:, c : c + 2] @ lin.T
        return out

    def keys_from_face(self, pred: np.ndarray) -> np.ndarray:
        """Keys (F, K, 8) from the face frame back to _img."""
        inv = np.linalg.inv(self.lin)
        out = np.array(pred, dtype=np.float64, copy=True)
        out[..., 0:2] = np.einsum("fij,fkj->fki", inv, out[..., 0:2] - self.off[:, None, :])
        for c in (2, 4, 6):
            out[..., c : c + 2] = np.einsum("fij,fkj->fki", inv, out[..., c : c + 2])
        return out

    def plans_in_frames(self, plan: revec.RevecPlan) -> List[revec.RevecPlan]:
        """The plan once per frame, its face-frame axis turned into that frame's _img space."""
        ax = np.broadcast_to(np.asarray(plan.axis, dtype=np.float64), (len(self.lin), 2))
        axes = np.linalg.solve(self.lin, ax[..., None])[..., 0]
        axes /= np.maximum(np.linalg.norm(axes, axis=1, keepdims=True), 1e-12)
        return [dataclasses.replace(plan, axis=(float(a[0]), float(a[1]))) for a in axes]


def _fit_frames(x: np.ndarray, mean: np.ndarray, kind: str) -> Tuple[_Frames, np.ndarray]:
    """Per-frame least-squares map of the landmarks onto their centred mean configuration.

    Args:
        x: Landmarks per frame (F, n, 2), _img space, all known.
        mean: Centred reference configuration (n, 2).
        kind: ``"similarity"`` (no reflection) or ``"affine"``.

    Returns:
        The face frames (identity where not ``good``) and ``good`` (F,) bool: False where the
        landmarks coincide (or are collinear, for affine), so no frame exists.
    """
    centre = x.mean(axis=1)
    xc = x - centre[:, None, :]
    n_frames = len(x)
    lin = np.tile(np.eye(2), (n_frames, 1, 1))
    energy = (xc * xc).sum(axis=(1, 2))
    good = np.sqrt(energy / max(x.shape[1], 1)) > MIN_LANDMARK_SPREAD_PX
    if kind == "similarity":
        # Complex least squares: face = s * img, s = a + ib.
        a = (xc[..., 0] * mean[None, :, 0] + xc[..., 1] * mean[None, :, 1]).sum(axis=1)
        b = (xc[..., 0] * mean[None, :, 1] - xc[..., 1] * mean[None, :, 0]).sum(axis=1)
        e = np.where(good, energy, 1.0)
        a, b = a / e, b / e
        good &= (a * a + b * b) > 0
        lin[good] = np.stack([np.stack([a, -b], -1), np.stack([b, a], -1)], -2)[good]
    elif kind == "affine":
        cov = np.einsum("fni,fnj->fij", xc, xc)
        eig = np.linalg.eigvalsh(cov)
        # Nearly collinear landmarks make the affine map ill-conditioned (it would shear wildly).
        good &= eig[:, 0] > AFFINE_MIN_ASPECT**2 * np.maximum(eig[:, 1], 1e-300)
        cross = np.einsum("ni,fnj->fij", mean, xc)
        sol = np.linalg.solve(np.where(good[:, None, None], cov, np.eye(2)), cross.transpose(0, 2, 1))
        lin[good] = sol.transpose(0, 2, 1)[good]
        good &= np.linalg.det(lin) > 0
        lin[~good] = np.eye(2)
    else:
        raise ModelError(f"unknown face frame {kind!r}; expected one of {FRAME_KINDS}")
    off = -np.einsum("fij,fj->fi", lin, centre)
    return _Frames(lin, off), good


def _procrustes_mean(x: np.ndarray) -> np.ndarray:
    """Generalised Procrustes mean of landmark sets (F, n, 2), centred, at their mean pixel size."""
    xc = x - x.mean(axis=1, keepdims=True)
    size = float(np.sqrt((xc * xc).sum(axis=(1, 2))).mean())
    mean = xc[0] / max(float(np.sqrt((xc[0] ** 2).sum())), 1e-12) * size
    for _ in range(PROCRUSTES_ITERATIONS):
        frames, good = _fit_frames(x, mean, "similarity")
        new = frames.take(good).points(x[good]).mean(axis=0)
        new -= new.mean(axis=0)
        mean = new / max(float(np.sqrt((new**2).sum())), 1e-12) * size
    return mean


def _smooth(
    pred: np.ndarray, ok: np.ndarray, frames: Sequence[int], sigma: float, noise_px: float
) -> np.ndarray:
    """Temporal smoothing along each run of consecutive, fitted frames.

    A local quadratic fit with Gaussian weights (a weighted Savitzky-Golay filter): unlike a
    plain Gaussian it follows steady motion and acceleration without lag, so it only removes
    frame-to-frame jitter.
    """
    out = pred.copy()
    f = np.asarray(frames)
    start = 0
    n = len(f)
    while start < n:
        if not ok[start]:
            start += 1
            continue
        end = start + 1
        while end < n and ok[end] and f[end] == f[end - 1] + 1:
            end += 1
        if end - start >= SMOOTH_MIN_RUN:
            out[start:end] = _local_quadratic(pred[start:end], sigma, noise_px)
        start = end
    return out


def _local_quadratic(run: np.ndarray, sigma: float, noise_px: float) -> np.ndarray:
    """Each frame replaced by a robust Gaussian-weighted quadratic fit over its neighbours.

    Stop-motion moves in steps (a replacement mouth, a blink, a held pose that jumps), so after
    a first fit, neighbours far off the local curve (Tukey biweight at ``SMOOTH_TUKEY`` times
    ``noise_px``) are down-weighted and the fit is redone: jumps stay sharp, jitter goes.

    Args:
        run: Consecutive frames (n, ...); column 0/1 of the last axis are not special.
        sigma: Gaussian sigma in frames.
        noise_px: Expected jitter in px (the biweight scale).

    Returns:
        The smoothed run, same shape.
    """
    n = len(run)
    half = max(1, int(np.ceil(SMOOTH_WINDOW_SIGMAS * sigma)))
    flat = run.reshape(n, -1)
    out = np.empty_like(flat)
    cutoff = SMOOTH_TUKEY * max(noise_px, 1e-6)
    for t in range(n):
        lo, hi = max(0, t - half), min(n, t + half + 1)
        dt = np.arange(lo, hi, dtype=np.float64) - t
        w = np.exp(-0.5 * (dt / sigma) ** 2)
        basis = np.stack([np.ones_like(dt), dt, dt * dt], axis=1)[:, : min(3, hi - lo)]
        y = flat[lo:hi]
        robust = np.ones_like(w)
        for _ in range(SMOOTH_ROBUST_ITERATIONS + 1):
            wb = basis * (w * robust)[:, None]
            coef = np.linalg.lstsq(wb.T @ basis, wb.T @ y, rcond=None)[0]
            resid = np.sqrt(((basis @ coef - y) ** 2).mean(axis=1))
            robust = np.clip(1.0 - (resid / cutoff) ** 2, 0.0, None) ** 2
            robust[t - lo] = 1.0  # the frame itself always counts
        out[t] = coef[0]
    return out.reshape(run.shape)


def _arc_array(
    arrays: Mapping[str, np.ndarray], i: int, key: str, doc: Mapping[str, Any], path: str
) -> Optional[np.ndarray]:
    """A shape's gap-length array, or None for a Catmull-Rom guide curve (and schema 1)."""
    baseline = str(doc.get("baseline", "catmull_rom"))
    if baseline not in BASELINES:
        raise ModelSchemaError(
            f"shape {doc.get('name')!r} has unknown guide curve {baseline!r} (known: "
            f"{', '.join(BASELINES)}); retrain the rig",
            path=path,
        )
    if baseline == "catmull_rom":
        return None
    if f"{i}.{key}" not in arrays:
        raise ModelError(
            f"shape {doc.get('name')!r} needs array '{i}.{key}', missing from the rig arrays; "
            "copy the whole model folder again",
            path=path,
        )
    return arrays[f"{i}.{key}"]


def _encoding_from_doc(doc: Mapping[str, Any], path: str) -> str:
    """A shape's residual encoding; schema 1 stored only ``local`` (True = ``"span"``)."""
    if "encoding" not in doc:
        return "span" if bool(doc.get("local", False)) else "face"
    enc = str(doc["encoding"])
    if enc not in ENCODINGS + LEGACY_ENCODINGS:
        raise ModelSchemaError(
            f"shape {doc.get('name')!r} has unknown encoding {enc!r} (known: "
            f"{', '.join(ENCODINGS + LEGACY_ENCODINGS)}); retrain the rig or use the SeamRoto "
            "version that wrote it",
            path=path,
        )
    return enc


def _plan_from_doc(doc: Mapping[str, Any]) -> revec.RevecPlan:
    return revec.RevecPlan(
        k=int(doc["k"]),
        closed=bool(doc["closed"]),
        axis=(float(doc["axis"][0]), float(doc["axis"][1])),
        first_arc_knots=int(doc["first_arc_knots"]),
        round=bool(doc["round"]),
        gaps=tuple(int(g) for g in doc.get("gaps", ())),
        ends=(bool(doc.get("ends", (False, False))[0]), bool(doc.get("ends", (False, False))[1])),
    )


# --- output ----------------------------------------------------------------------------------


def fitted_to_roto_shapes(
    fitted: Union[Mapping[str, FittedShape], Iterable[FittedShape]],
    *,
    skip_flagged: bool = True,
) -> Tuple[RotoShape, ...]:
    """Turn fitted shapes into datamodel RotoShapes (layer, closed and feather kept).

    Args:
        fitted: From ``Rig.apply`` (dict or any iterable of FittedShape).
        skip_flagged: Leave flagged frames unkeyed (Nuke interpolates across them); a shape
            flagged on every frame is left out.

    Returns:
        One RotoShape per fitted shape, keyed on its fitted frames.
    """
    items = fitted.values() if isinstance(fitted, Mapping) else fitted
    out = []
    for fs in items:
        arrays = {
            f: fs.points[i]
            for i, f in enumerate(fs.frames)
            if not (skip_flagged and fs.flagged[i]) and np.all(np.isfinite(fs.points[i]))
        }
        if not arrays:
            logger.warning("%s: flagged on every frame, no roto shape written", fs.name)
            continue
        out.append(
            shape_from_arrays(
                fs.name,
                fs.closed,
                arrays,
                layer=fs.layer,
                feather=fs.feather,
                feather_falloff=fs.feather_falloff,
            )
        )
    return tuple(out)


def seam_polylines(
    points: np.ndarray, landmark_names: Sequence[str], seams: Sequence[Seam]
) -> Dict[str, np.ndarray]:
    """Each seam's landmarks, in its order, per frame (the split line as a polyline).

    Args:
        points: Landmarks (F, L, 2) in ``landmark_names`` order, NaN where unknown.
        landmark_names: Names of the landmark columns.
        seams: ``Character.seams``.

    Returns:
        Seam name -> Shape (F, n, 2) float64, _img space, NaN where a landmark is unknown.

    Raises:
        AnnotationError: A seam names a landmark that is not in ``landmark_names``.
    """
    pts = np.asarray(points, dtype=np.float64)
    names = list(landmark_names)
    if pts.ndim != 3 or pts.shape[1:] != (len(names), 2):
        raise ShapeError("points", pts.shape, f"(F, {len(names)}, 2)")
    out = {}
    for seam in seams:
        missing = [n for n in seam.landmarks if n not in names]
        if missing:
            raise AnnotationError(
                f"seam '{seam.name}' lists landmark(s) {', '.join(missing)} that the model does "
                "not track; fix Character.seams"
            )
        out[seam.name] = pts[:, [names.index(n) for n in seam.landmarks]]
    return out


def seam_shapes(
    points: np.ndarray,
    landmark_names: Sequence[str],
    seams: Sequence[Seam],
    *,
    frames: Optional[Sequence[int]] = None,
    layer: Sequence[str] = DEFAULT_SEAM_LAYER,
) -> Dict[str, FittedShape]:
    """Seams as smooth open curves through their landmarks (Catmull-Rom handles), per frame.

    A seam is flagged on frames where any of its landmarks is unknown.
    """
    polys = seam_polylines(points, landmark_names, seams)
    n_frames = np.asarray(points).shape[0]
    frame_ids = tuple(range(n_frames)) if frames is None else tuple(int(f) for f in frames)
    out = {}
    for name, poly in polys.items():
        ok = np.all(np.isfinite(poly), axis=(1, 2))
        arr = np.full((n_frames, poly.shape[1], POINT_COLS), np.nan)
        for i in np.flatnonzero(ok):
            arr[i, :, :6] = curves.catmull_rom_handles(poly[i], False)
            arr[i, :, 6:] = 0.0
        out[name] = FittedShape(name, False, tuple(layer), frame_ids, arr, ~ok)
    return out


def band_points(seam_curve: np.ndarray, width_px: float) -> np.ndarray:
    """A closed band of ``width_px`` around an open curve, as control points.

    The band runs along one side of the curve (each knot pushed out along its normal, handles
    kept), round the far end, back along the other side and round the start: 2N + 2 points. The
    caps stick out ``width_px / 2`` beyond the curve's ends so paint covers the seam's tips.

    Args:
        seam_curve: The seam (N, 2|6|8), relative handles (two columns: a polyline, smoothed
            with Catmull-Rom handles), _img space.
        width_px: Full band width in pixels.

    Returns:
        Shape: (2N + 2, 8) float64, relative handles, zero feather offsets.
    """
    pts = curves.check_points("seam_curve", seam_curve)
    if len(pts) < 2:
        raise ShapeError("seam_curve", pts.shape, "(N>=2, 2|6|8)")
    cp = curves.catmull_rom_handles(pts, False) if pts.shape[1] < 6 else pts[:, :6].copy()
    half = 0.5 * float(width_px)
    xy, left, right = cp[:, :2], cp[:, 2:4], cp[:, 4:6]
    tangent = right - left
    # A knot without handles takes its direction from the neighbouring knots.
    chord = np.gradient(xy, axis=0)
    flat = np.linalg.norm(tangent, axis=1) < 1e-9
    tangent[flat] = chord[flat]
    t = tangent / np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-12)
    normal = np.stack([-t[:, 1], t[:, 0]], axis=1)
    n = len(cp)
    cap = half * CAP_KAPPA
    out = np.zeros((2 * n + 2, POINT_COLS))
    # Side A (+normal), start to end, with the seam's own handles.
    out[:n, :2] = xy + half * normal
    out[:n, 2:4] = left
    out[:n, 4:6] = right
    # End cap: quarter circles A[-1] -> E -> B[-1] about the seam's last knot.
    out[n, :2] = xy[-1] + half * t[-1]
    out[n, 2:4] = cap * normal[-1]
    out[n, 4:6] = -cap * normal[-1]
    # Side B (-normal), end to start: traversed backwards, so left and right swap.
    out[n + 1 : 2 * n + 1, :2] = (xy - half * normal)[::-1]
    out[n + 1 : 2 * n + 1, 2:4] = right[::-1]
    out[n + 1 : 2 * n + 1, 4:6] = left[::-1]
    # Start cap: B[0] -> S -> A[0].
    out[2 * n + 1, :2] = xy[0] - half * t[0]
    out[2 * n + 1, 2:4] = -cap * normal[0]
    out[2 * n + 1, 4:6] = cap * normal[0]
    # Handles of the side knots that meet a cap run along the seam.
    out[n - 1, 4:6] = cap * t[-1]
    out[n + 1, 2:4] = cap * t[-1]
    out[2 * n, 4:6] = -cap * t[0]
    out[0, 2:4] = -cap * t[0]
    return out


def seam_band(
    seam_curve: Union[np.ndarray, RotoShape, FittedShape],
    width_px: float,
    feather_px: float,
    *,
    name: Optional[str] = None,
    layer: Optional[Sequence[str]] = None,
    frame: int = 0,
) -> RotoShape:
    """A closed roto shape around a seam, for paint and inpaint of the split line.

    Args:
        seam_curve: One curve (N, 2|6|8) keyed at ``frame``, or an open RotoShape or
            FittedShape keyed on every (unflagged) frame.
        width_px: Full band width in pixels (the seam's width plus a margin).
        feather_px: Shape-wide feather (Nuke's feather slider), so the paint fades out.
        name: Shape name (default ``<seam>_band``).
        layer: Layer path (default the seam's, or ``("seam",)``).
        frame: Key frame when ``seam_curve`` is an array.

    Returns:
        A closed RotoShape with 2N + 2 points per key.
    """
    if isinstance(seam_curve, RotoShape):
        keys = {f: seam_curve.points_array(f) for f in seam_curve.key_frames}
        base, base_layer = seam_curve.name, seam_curve.layer
    elif isinstance(seam_curve, FittedShape):
        keys = {
            f: seam_curve.points[i]
            for i, f in enumerate(seam_curve.frames)
            if not seam_curve.flagged[i] and np.all(np.isfinite(seam_curve.points[i]))
        }
        base, base_layer = seam_curve.name, seam_curve.layer
    else:
        keys = {int(frame): np.asarray(seam_curve, dtype=np.float64)}
        base, base_layer = "seam", tuple(DEFAULT_SEAM_LAYER)
    arrays = {f: band_points(k, width_px) for f, k in keys.items()}
    return shape_from_arrays(
        name or f"{base}{SEAM_BAND_SUFFIX}",
        True,
        arrays,
        layer=tuple(layer) if layer is not None else (tuple(base_layer) or DEFAULT_SEAM_LAYER),
        feather=float(feather_px),
    )
