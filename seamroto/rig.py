"""The per-character roto rig: every named shape's points, handles and feather from the landmarks.

Learned at train time from the artists' shapes (``learn_rig``), saved beside the landmark model
(``Rig.save``: ``rig.json`` + ``rig.npz``, schema ``SeamRotoRig.1``, no pickle) and applied to
tracked landmarks on every frame (``Rig.apply``), so a shot's roto follows the puppet with the
few, stable points an artist would have drawn.

How one shape is rigged:

1. Its landmarks: those lying on or near it on the training frames (at least ``MIN_LANDMARKS``),
   so a shape only needs, and is only flagged for, landmarks of its own part of the face.
2. A face frame per frame: the similarity (scale, rotation, translation; no reflection) that
   best maps those landmarks onto their Procrustes mean. Head motion is removed; what remains is
   expression (a blink, a raised brow).
3. Targets: the artist's key re-vectorised (``revec.py``) to the same ``K`` points every frame,
   or the artist's own points when every key already agrees, expressed in that face frame.
4. A ridge regression from the normalised landmarks to the flattened targets (positions,
   relative handles, relative feather), its strength chosen by cross-validation across shots.

Applying it reverses the steps; a frame on which a needed landmark is unknown is flagged for that
shape (the others are still fitted). Everything is ``_img`` space (origin top-left, y down).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from scipy.ndimage import gaussian_filter1d

from seamroto import curves, revec
from seamroto.datamodel import Annotation, RotoShape, Seam, ShapeSpec, shape_from_arrays
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

RIG_SCHEMA = "SeamRotoRig.1"
RIG_JSON = "rig.json"
RIG_NPZ = "rig.npz"
NORMALISATION = "similarity"
#: Columns of one control point: x, y, left handle, right handle, feather offset.
POINT_COLS = 8
#: Fewest landmarks a shape is rigged from (a similarity needs two; more carry expression).
MIN_LANDMARKS = 4
#: A landmark belongs to a shape when its median distance to the shape's curve over the
#: training frames is within this fraction of the face size (RMS landmark radius).
NEAR_FRACTION = 0.02
#: Ridge strengths tried by cross-validation, relative to the number of training samples.
RIDGE_GRID = tuple(float(v) for v in np.logspace(-6, 2, 17))
#: Every key already shares its points when its RMS point offset from the mean key (in the face
#: frame) is within this fraction of the shape size; then the artist's points are kept as is.
NATIVE_CONSISTENCY = 0.15
#: A landmark lies on the curve (and guides it) within this fraction of the face size.
GUIDE_FRACTION = 0.01
#: Share of keys on which the guide landmarks must come in the same order along the curve.
GUIDE_CONSISTENCY = 0.8
PROCRUSTES_ITERATIONS = 5
#: A frame's landmarks spanning less than this (px, RMS radius) cannot define a face frame.
MIN_LANDMARK_SPREAD_PX = 1e-6
DEFAULT_SEAM_LAYER = ("seam",)
SEAM_BAND_SUFFIX = "_band"
#: Handle length of a quarter circle as a fraction of its radius.
CAP_KAPPA = 4.0 / 3.0 * float(np.tan(np.pi / 8.0))
REVEC_MODES = ("auto", "always", "never")


@dataclass(frozen=True, eq=False)
class ShapeRig:
    """What the rig learned about one shape.

    Arrays: ``mean_landmarks`` (n, 2) centred Procrustes mean of its landmarks (px);
    ``weights`` (2n, 8K), ``feature_mean`` (2n,), ``target_mean`` (8K,) of the regression
    ``target = (features - feature_mean) @ weights + target_mean`` in the face frame, where a
    target row is the K points' ``[x, y, lx, ly, rx, ry, fx, fy]`` flattened.
    ``plan`` is the re-vectorisation plan (None when the artist's own points were kept).
    ``guide``: landmarks on the curve, in curve order; when set, the regression predicts the
    difference from a smooth curve through them (re-vectorised with ``plan``).
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
    ridge: float = 0.0
    stats: Mapping[str, float] = field(default_factory=dict)

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
            smooth_sigma: Gaussian sigma in frames for light temporal smoothing of the fitted
                points and handles (0 = off; ~1 removes tracker jitter without visible lag).
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
                z = _complex(sub[ok])
                scale, centre, good = _similarity(z, _complex(srig.mean_landmarks))
                ok_idx = np.flatnonzero(ok)
                ok[ok_idx[~good]] = False
                if good.any():
                    zg, sg, cg = z[good], scale[good], centre[good]
                    feats = _features(zg, sg, cg)
                    target = (feats - srig.feature_mean) @ srig.weights + srig.target_mean
                    if srig.guide and srig.plan is not None:
                        cols = [srig.landmarks.index(g) for g in srig.guide]
                        target = target + _baseline(zg[:, cols], srig.plan, sg, cg)
                    pred[ok_idx[good]] = _from_face(
                        target.reshape(-1, srig.k, POINT_COLS), sg, cg
                    )
            if smooth_sigma > 0:
                pred = _smooth(pred, ok, frame_ids, smooth_sigma)
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
                    "ridge": s.ridge,
                    "stats": dict(s.stats),
                }
            )
        buf = io.BytesIO()
        np.savez(buf, allow_pickle=False, **arrays)
        data = buf.getvalue()
        doc = {
            "schema": RIG_SCHEMA,
            "normalisation": NORMALISATION,
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
        if schema != RIG_SCHEMA:
            raise ModelSchemaError(
                f"rig schema is {schema!r}, this SeamRoto reads {RIG_SCHEMA!r}; retrain the rig "
                "or use the SeamRoto version that wrote it",
                path=str(json_path),
            )
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

    Returns:
        The rig, with per-shape statistics (re-vectorisation fit error, training error).

    Raises:
        AnnotationError: A shape with too few points or that crosses itself (naming the shape,
            frame and annotation), a shape missing from every annotation, a shape that never
            has its landmarks, or ``revectorise="never"`` with keys that disagree.
    """
    if revectorise not in REVEC_MODES:
        raise AnnotationError(f"revectorise must be one of {REVEC_MODES}, not {revectorise!r}")
    names = tuple(landmark_names)
    gathered = _gather(annotations, names, shape_names)
    shapes = []
    for name, samples in gathered.items():
        subset = None if landmark_subsets is None else landmark_subsets.get(name)
        k = None if point_counts is None else point_counts.get(name)
        shapes.append(
            _learn_shape(samples, names, ridge, k, subset, revectorise, near_fraction, min_landmarks)
        )
    meta = {
        "trained_on": [a.source for a in annotations],
        "train_frames": int(sum(len(s.keys) for s in gathered.values())),
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
        lm = _landmark_array(ann, names, frames)
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


def _landmark_array(ann: Annotation, names: Tuple[str, ...], frames: Sequence[int]) -> np.ndarray:
    """(F, L, 2) landmarks with NaN where unknown."""
    by_name = {t.name: t for t in ann.tracks}
    out = np.full((len(frames), len(names), 2), np.nan)
    for j, n in enumerate(names):
        t = by_name.get(n)
        if t is None:
            continue
        for i, f in enumerate(frames):
            smp = t.samples.get(f)
            if smp is not None:
                out[i, j] = (smp.x, smp.y)
    return out


def _learn_shape(
    samples: _Samples,
    names: Tuple[str, ...],
    ridge: Optional[float],
    k: Optional[int],
    subset: Optional[Sequence[str]],
    mode: str,
    near_fraction: float,
    min_landmarks: int,
) -> ShapeRig:
    """Rig one shape (see the module docstring for the recipe)."""
    name, closed = samples.name, samples.closed
    dist = _landmark_distances(samples)
    if subset is None:
        idx = _choose_landmarks(samples.name, dist, near_fraction, min_landmarks)
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
    z = _complex(lms[keep])
    mean = _procrustes_mean(z)
    scale, centre, good = _similarity(z, mean)
    if not good.all():
        bad = samples.where[keep[int(np.argmin(good))]]
        raise AnnotationError(
            f"shape '{name}': its landmarks all coincide, so no face frame can be found",
            path=bad[0],
            frame=bad[1],
        )
    keys = [samples.keys[i] for i in keep]
    face_keys = [_to_face(key, scale[j], centre[j]) for j, key in enumerate(keys)]
    plan = _targets_plan(name, closed, face_keys, k, mode)
    fit_errors: List[float] = []
    guide: Tuple[int, ...] = ()
    if plan is None:
        targets = np.stack([fk.reshape(-1) for fk in face_keys])
        base = np.zeros_like(targets)
    else:
        # Re-vectorise in _img space (so fit errors are image pixels) with the face frame's
        # axis turned into each frame; first plainly, to see the landmarks' order on the curve.
        oriented = [
            _to_face(
                revec.revectorise(key, _plan_in_frame(plan, scale[j]), measure=False).points,
                scale[j],
                centre[j],
            )
            for j, key in enumerate(keys)
        ]
        guide = _choose_guide(name, closed, idx, dist[keep], z, oriented, scale, centre)
        gcols = [idx.index(g) for g in guide]
        if guide:
            face_anchors = [_xy(scale[j] * (z[j, gcols] - centre[j])) for j in range(len(keys))]
            plan = revec.plan_anchored(plan, face_keys, face_anchors, k)
        rows = []
        for j, key in enumerate(keys):
            anchors = _xy(z[j, gcols]) if guide else None
            rv = revec.revectorise(key, _plan_in_frame(plan, scale[j]), anchors=anchors)
            fit_errors.append(rv.fit_error_px)
            rows.append(_to_face(rv.points, scale[j], centre[j]).reshape(-1))
        targets = np.stack(rows)
        base = _baseline(z[:, gcols], plan, scale, centre) if guide else np.zeros_like(targets)
    k_out = targets.shape[1] // POINT_COLS
    feats = _features(z, scale, centre)
    groups = np.asarray(samples.groups)[keep]
    resid = targets - base
    lam = _choose_ridge(feats, resid, groups) if ridge is None else float(ridge)
    weights, f_mean, t_mean = _ridge_fit(feats, resid, lam)
    pred = (base + (feats - f_mean) @ weights + t_mean).reshape(-1, k_out, POINT_COLS)
    img_pred = _from_face(pred, scale, centre)
    train_err = [
        curves.shape_distance(img_pred[j], keys[j], closed, revec.EVAL_PER_SEGMENT)
        for j in range(len(keys))
    ]
    stats = {
        "train_frames": float(len(keys)),
        "train_error_px": float(np.mean(train_err)),
        "revec_error_px": float(np.mean(fit_errors)) if fit_errors else 0.0,
        "revec_error_max_px": float(np.max(fit_errors)) if fit_errors else 0.0,
    }
    logger.info(
        "%s: K=%d from %d landmarks (%d on the curve), %s, ridge %.3g, train error %.3f px",
        name,
        k_out,
        len(idx),
        len(guide),
        "native points" if plan is None else f"re-vectorised (fit {stats['revec_error_px']:.3f} px)",
        lam,
        stats["train_error_px"],
    )
    return ShapeRig(
        name=name,
        closed=closed,
        layer=samples.layer,
        k=k_out,
        landmarks=tuple(names[i] for i in idx),
        mean_landmarks=np.stack([mean.real, mean.imag], axis=1),
        weights=weights,
        feature_mean=f_mean,
        target_mean=t_mean,
        feather=float(np.median(samples.feathers)),
        feather_falloff=float(np.median(samples.falloffs)),
        plan=plan,
        guide=tuple(names[g] for g in guide),
        ridge=lam,
        stats=stats,
    )


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
    z: np.ndarray,
    oriented: Sequence[np.ndarray],
    scale: np.ndarray,
    centre: np.ndarray,
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
        p = scale[j] * (z[j, cols] - centre[j])
        near = np.argmin(np.abs(_complex(poly)[None, :] - p[:, None]), axis=1)
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


def _plan_in_frame(plan: revec.RevecPlan, scale: complex) -> revec.RevecPlan:
    """The plan with its face-frame axis turned into one frame's _img space."""
    ax = complex(*plan.axis) * np.conj(scale) / abs(scale)
    return dataclasses.replace(plan, axis=(float(ax.real), float(ax.imag)))


def _baseline(
    guide_z: np.ndarray, plan: revec.RevecPlan, scale: np.ndarray, centre: np.ndarray
) -> np.ndarray:
    """A smooth curve through the guide landmarks, re-vectorised like the targets, face frame.

    Shape: (F, 8K).
    """
    rows = []
    for j in range(len(guide_z)):
        g = _xy(guide_z[j])
        cp = curves.catmull_rom_handles(g, plan.closed)
        rv = revec.revectorise(cp, _plan_in_frame(plan, scale[j]), anchors=g, measure=False)
        rows.append(_to_face(rv.points, scale[j], centre[j]).reshape(-1))
    return np.stack(rows) if rows else np.zeros((0, plan.k * POINT_COLS))


def _targets_plan(
    name: str, closed: bool, face_keys: Sequence[np.ndarray], k: Optional[int], mode: str
) -> Optional[revec.RevecPlan]:
    """None to keep the artist's points (they already agree), else a re-vectorisation plan."""
    counts = {len(fk) for fk in face_keys}
    if mode != "always" and len(counts) == 1 and (k is None or k == len(face_keys[0])):
        stack = np.stack([fk[:, :2] for fk in face_keys])
        mean = stack.mean(axis=0)
        rms = np.sqrt(((stack - mean) ** 2).sum(axis=2).mean())
        size = np.sqrt(((mean - mean.mean(axis=0)) ** 2).sum(axis=1).mean())
        if rms <= NATIVE_CONSISTENCY * max(size, 1e-12):
            return None
        if mode == "never":
            raise AnnotationError(
                f"shape '{name}': the artists' points do not correspond between keys (start or "
                "direction differs); use revectorise='auto'"
            )
    elif mode == "never":
        raise AnnotationError(
            f"shape '{name}': point counts differ between keys ({sorted(counts)}); use "
            "revectorise='auto'"
        )
    return revec.plan_shape(face_keys, closed, k)


def _choose_ridge(feats: np.ndarray, targets: np.ndarray, groups: np.ndarray) -> float:
    """Ridge strength with the lowest cross-validated error (whole annotations held out)."""
    uniq = np.unique(groups)
    n = len(feats)
    if len(uniq) >= 2:
        folds = [groups == g for g in uniq]
    else:
        fold_count = min(5, n)
        if fold_count < 2:
            return RIDGE_GRID[len(RIDGE_GRID) // 2]
        # Contiguous blocks, so neighbouring (near-identical) frames do not test each other.
        ids = np.arange(n) * fold_count // n
        folds = [ids == i for i in range(fold_count)]
    errs = np.zeros(len(RIDGE_GRID))
    for test in folds:
        train = ~test
        if train.sum() < 2:
            continue
        x, y = feats[train], targets[train]
        xm, ym = x.mean(axis=0), y.mean(axis=0)
        u, sv, vt = np.linalg.svd(x - xm, full_matrices=False)
        uty = u.T @ (y - ym)
        xt = (feats[test] - xm) @ vt.T
        scale = _feature_scale(x)
        for i, rel in enumerate(RIDGE_GRID):
            lam = rel * len(x) * scale
            pred = xt @ ((sv / (sv * sv + lam))[:, None] * uty) + ym
            errs[i] += ((pred - targets[test]) ** 2).sum()
    return RIDGE_GRID[int(np.argmin(errs))]


def _feature_scale(x: np.ndarray) -> float:
    """Mean feature variance, so ridge strengths are relative and unit-free."""
    return float(max(np.var(x, axis=0).mean(), 1e-12))


def _ridge_fit(
    feats: np.ndarray, targets: np.ndarray, rel: float
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ridge regression on centred data; ``rel`` scaled by sample count and feature variance."""
    f_mean = feats.mean(axis=0)
    t_mean = targets.mean(axis=0)
    x = feats - f_mean
    lam = rel * len(x) * _feature_scale(x)
    u, sv, vt = np.linalg.svd(x, full_matrices=False)
    w = vt.T @ ((sv / (sv * sv + lam))[:, None] * (u.T @ (targets - t_mean)))
    return w, f_mean, t_mean


# --- face frame ------------------------------------------------------------------------------


def _complex(xy: np.ndarray) -> np.ndarray:
    """(..., 2) -> complex (...)."""
    a = np.asarray(xy, dtype=np.float64)
    return a[..., 0] + 1j * a[..., 1]


def _xy(z: np.ndarray) -> np.ndarray:
    """complex (...) -> (..., 2)."""
    return np.stack([z.real, z.imag], axis=-1)


def _similarity(z: np.ndarray, mean: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame similarity onto the centred mean: face = scale * (img - centre).

    Args:
        z: Landmarks as complex numbers (F, n).
        mean: Centred reference configuration (n,).

    Returns:
        ``scale`` (F,) complex (rotation and zoom), ``centre`` (F,) complex, ``good`` (F,) bool
        (False where the landmarks coincide).
    """
    centre = z.mean(axis=1)
    zc = z - centre[:, None]
    energy = (np.abs(zc) ** 2).sum(axis=1)
    good = np.sqrt(energy / z.shape[1]) > MIN_LANDMARK_SPREAD_PX
    scale = (np.conj(zc) * mean[None, :]).sum(axis=1) / np.where(good, energy, 1.0)
    good &= np.abs(scale) > 0
    return np.where(good, scale, 1.0), centre, good


def _procrustes_mean(z: np.ndarray) -> np.ndarray:
    """Generalised Procrustes mean of landmark sets, centred, at their mean pixel size."""
    zc = z - z.mean(axis=1, keepdims=True)
    size = np.sqrt((np.abs(zc) ** 2).sum(axis=1)).mean()
    mean = zc[0] / max(np.sqrt((np.abs(zc[0]) ** 2).sum()), 1e-12) * size
    for _ in range(PROCRUSTES_ITERATIONS):
        scale, centre, good = _similarity(z, mean)
        aligned = scale[good, None] * (z[good] - centre[good, None])
        new = aligned.mean(axis=0)
        new -= new.mean()
        mean = new / max(np.sqrt((np.abs(new) ** 2).sum()), 1e-12) * size
    return mean


def _features(z: np.ndarray, scale: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Landmarks in the face frame, flattened [x0, y0, x1, y1, ...]. Shape: (F, 2n)."""
    f = scale[:, None] * (z - centre[:, None])
    return np.stack([f.real, f.imag], axis=2).reshape(len(z), -1)


def _to_face(key: np.ndarray, scale: complex, centre: complex) -> np.ndarray:
    """One key (N, 8) from _img into the face frame (positions moved, vectors turned)."""
    out = np.array(key, dtype=np.float64, copy=True)
    p = scale * (_complex(out[:, 0:2]) - centre)
    out[:, 0], out[:, 1] = p.real, p.imag
    for c in (2, 4, 6):
        v = scale * _complex(out[:, c : c + 2])
        out[:, c], out[:, c + 1] = v.real, v.imag
    return out


def _from_face(pred: np.ndarray, scale: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Keys (F, K, 8) from the face frame back to _img."""
    out = np.array(pred, dtype=np.float64, copy=True)
    inv = 1.0 / scale[:, None]
    p = inv * _complex(out[..., 0:2]) + centre[:, None]
    out[..., 0], out[..., 1] = p.real, p.imag
    for c in (2, 4, 6):
        v = inv * _complex(out[..., c : c + 2])
        out[..., c], out[..., c + 1] = v.real, v.imag
    return out


def _smooth(pred: np.ndarray, ok: np.ndarray, frames: Sequence[int], sigma: float) -> np.ndarray:
    """Gaussian smoothing along each run of consecutive, fitted frames."""
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
        if end - start >= 3:
            out[start:end] = gaussian_filter1d(pred[start:end], sigma, axis=0, mode="nearest")
        start = end
    return out


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
