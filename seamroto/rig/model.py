"""A learned roto rig as data: ``ShapeRig``/``Rig``, applying it per frame, and its files on disk.

``Rig.save`` writes ``rig.json`` + ``rig.npz`` (schema ``RIG_SCHEMA``, no pickle, the npz's
sha256 in the JSON); ``Rig.load`` reads them back and migrates older schemas
(``RIG_SCHEMAS_READ``). ``Rig.apply`` fits every shape on every frame from tracked landmarks and
flags the frames on which a landmark a shape needs is unknown.
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

from seamroto import revec
from seamroto.datamodel import LandmarkTrack, ShapeSpec, tracks_to_array
from seamroto.errors import ModelChecksumError, ModelError, ModelSchemaError, OutputExistsError, ShapeError
from seamroto.fileio import atomic_write_bytes, atomic_write_text
from seamroto.rig.encode import ENCODINGS, LEGACY_ENCODINGS, _ChordRef, _from_chord, _from_local
from seamroto.rig.frame import POINT_COLS, _fit_frames, _Frames
from seamroto.rig.guide import BASELINES, _ArcModel, _baseline
from seamroto.rig.smooth import _smooth

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
RIG_SCHEMA = "SeamRotoRig.2"
#: Older schemas ``Rig.load`` still reads (migrated on load; ``save`` writes ``RIG_SCHEMA``).
#: Schema 1 had no gap-length guide curves and stored ``"local": bool`` instead of
#: ``"encoding"``; its ``local`` residuals are the ``"span"`` encoding here.
RIG_SCHEMAS_READ = ("SeamRotoRig.1", RIG_SCHEMA)
RIG_JSON = "rig.json"
RIG_NPZ = "rig.npz"
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

    def key_in_rig_points(self, key: np.ndarray, landmarks: np.ndarray) -> Optional[np.ndarray]:
        """An artist's key as this rig's points (its count, order and places), as training saw it.

        Why: whatever is learned per key beside the rig (the print library's edge profiles)
        must sit on the points the rig outputs, not on the artist's own varying ones.

        Args:
            key: the artist's control points, relative handles. Shape: (N, 8), any N, _img.
            landmarks: this shape's landmarks (``self.landmarks`` order) on the key's frame.
                Shape: (n, 2), _img.

        Returns:
            Shape: (K, 8) relative handles, _img; None when a landmark is unknown or the key
            does not fit the rig (another point count where the artist's own points are kept).
        """
        key = np.asarray(key, dtype=np.float64)
        if self.plan is None:
            return key.copy() if len(key) == self.k else None
        x = np.asarray(landmarks, dtype=np.float64)[None]
        if not np.isfinite(x).all():
            return None
        frames, good = _fit_frames(x, self.mean_landmarks, self.frame)
        if not good[0]:
            return None
        plan = frames.plans_in_frames(self.plan)[0]
        anchors = None
        if self.plan.anchored:
            anchors = x[0, [self.landmarks.index(g) for g in self.guide]]
        try:
            return revec.revectorise(key, plan, anchors=anchors, measure=False).points
        except (ShapeError, ValueError, np.linalg.LinAlgError):
            return None

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
