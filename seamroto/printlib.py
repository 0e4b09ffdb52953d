"""The character's print library: its replacement pieces' edges on training frames, for snapping.

Why: a replacement mouth is a different print on every frame, and a handful of landmarks do not
say where a print's lip curves run: even from the artists' own landmarks the rig's mouth is
0.8 px off, and that error changes every frame (issue 4's control-point jitter). The frame
itself shows the print's outline, though. At training (or calibration) time SeamRoto keeps the
grey profiles across the artists' outline of a spread of prints (``seamroto.snap.EdgeModel``);
when tracking, the rigged piece is the start, the prints whose profiles match it best are
snapped onto that frame's edges, and the best-matching snap replaces the rigged shape (same
point count and order, so the artist still grabs the same points).

Prints are made at one face size (``reference_radius_px``: the RMS radius of the face-size
landmarks), and each tracked frame is looked at at that size too, so a plate at another
resolution or a puppet closer to camera matches the same profiles.

Where the artists' piece landmarks sit on the shape's control points, the snapped points are
read back into the tracks (``seamroto.piecepoints``, measured by ``seamroto calibrate``).

Stored as ``prints.json`` in the model folder (listed and hashed in the card; plain JSON,
nothing executed). Coordinates are plate px, ``_img`` space.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple

import cv2
import numpy as np

from seamroto.datamodel import Annotation, RotoShape, tracks_to_array
from seamroto.errors import CancelledError, ModelError, ModelSchemaError, PlateError
from seamroto.fileio import atomic_write_text
from seamroto.piecepoints import PieceReadout
from seamroto.progress import NullProgress, Progress
from seamroto.propagate import pack_points
from seamroto.snap import (
    DEFAULT_SNAP,
    EdgeFitter,
    EdgeModel,
    ProfileRanker,
    SnapParams,
    changes_shape,
    make_edge_model,
    restore_edge_model,
    snap_shape,
)

logger = logging.getLogger(__name__)

PRINTS_FILE = "prints.json"
SCHEMA = "SeamRotoPrints.1"
#: Prints kept per replacement shape, spread over the training keys' outlines. 12 took mara's
#: held-out mouths' control points from 0.46-0.61 to 0.21-0.27 px mean error; 24 cost twice
#: the ranking time and gained nothing there.
PRINTS_PER_SHAPE = 12
#: Prints snapped per frame: those whose profiles match the rigged start best. The frame's piece
#: is their snaps' mean weighted by (1 / cost) ** SNAP_COST_POWER, not the best one alone: each
#: print misfits the frame's own print a little differently, and the blend averages that out.
#: Chosen on the calibration shot (seed 21: the mouth's landmark points' jitter 0.84 px with the
#: best of 2, 0.64 with 4 at power 3; 6 at power 2 was 0.63 at 1.5x the time, 12 or a plain
#: mean worse).
SNAP_CANDIDATES = 4
SNAP_COST_POWER = 3.0
#: Costs below this count as this in the blend's weights (a perfect match is not infinitely sure).
MIN_BLEND_COST = 1e-3
#: A snap that moves the control points further than this share of the piece's size (mean)
#: has locked on to another edge (a lip shadow, the teeth): the rigged shape is kept.
MAX_MOVE_SHARE = 0.12
#: Face-size ratios within this of 1 are looked at as they are: an edge's profile is mostly the
#: plate's blur, which does not grow with the face (resampling s12's frames by 1.12 to the
#: library's face size took its mouth from 0.24 to 0.31 px). Only a plate at another
#: resolution is resampled.
SCALE_TOLERANCE = 0.25
#: A face more than this many times bigger or smaller than the library's is not snapped
#: (landmarks that collapsed or exploded; a plate at 4x the training resolution still is).
MAX_SCALE_RATIO = 4.0
#: Plate px around the rigged piece's box read for the snap, beside a share of its size.
CROP_PAD_PX = 12
CROP_PAD_SHARE = 0.5
#: Snap settings for a rigged start: it is within a few px of the print, not another print
#: (Motion2Roto's case), so the first round searches 5 % of the piece's size, not 17 %, two
#: narrow rounds follow, not three, and profiles are 3 px apart, not 2 (together about a
#: quarter of the time at the same accuracy on mara's held-out shots).
LIBRARY_SNAP = replace(DEFAULT_SNAP, coarse_reach=0.05, fine_reaches=(3, 2), spacing_px=3.0)


@dataclass(frozen=True)
class Print:
    """One artist's print of a piece on one training frame: its outline's grey profiles.

    Attributes:
        source: the training script it came from.
        frame: its frame there.
        model: the profiles, at the library's reference face size.
    """

    source: str
    frame: int
    model: EdgeModel


@dataclass(frozen=True)
class ShapePrints:
    """The prints of one replacement shape (the rig's point count and order)."""

    name: str
    closed: bool
    count: int
    prints: Tuple[Print, ...]


@dataclass(frozen=True)
class PrintLibrary:
    """Every replacement shape's prints, and how face size is measured.

    Attributes:
        face_landmarks: landmarks whose RMS radius about their centre is the face size
            (rigid ones: the shape prior's anchors).
        reference_radius_px: the face size the prints' profiles are made at.
        shapes: per replacement shape.
        stats: where it was learned from.
        readout: the piece landmarks read back from the snapped prints (``seamroto.piecepoints``),
            once measured on checked shots; None reads nothing back.
    """

    face_landmarks: Tuple[str, ...]
    reference_radius_px: float
    shapes: Tuple[ShapePrints, ...]
    stats: Mapping[str, Any] = field(default_factory=dict)
    readout: Optional[PieceReadout] = None

    @property
    def shape_names(self) -> Tuple[str, ...]:
        """Shapes the library snaps."""
        return tuple(s.name for s in self.shapes)

    def with_readout(self, readout: Optional[PieceReadout]) -> PrintLibrary:
        """The same prints with another readout (None: read nothing back)."""
        return replace(self, readout=readout)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready document (``SeamRotoPrints.1``)."""
        doc: Dict[str, Any] = {
            "schema": SCHEMA,
            "face_landmarks": list(self.face_landmarks),
            "reference_radius_px": self.reference_radius_px,
            "shapes": [
                {
                    "name": s.name,
                    "closed": s.closed,
                    "count": s.count,
                    "prints": [_print_to_dict(p) for p in s.prints],
                }
                for s in self.shapes
            ],
            "stats": dict(self.stats),
        }
        if self.readout is not None:
            doc["readout"] = self.readout.to_dict()
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], path: str = PRINTS_FILE) -> PrintLibrary:
        """Read a ``prints.json`` document.

        Raises:
            ModelSchemaError: another schema.
            ModelError: missing or inconsistent fields (a damaged file).
        """
        if doc.get("schema") != SCHEMA:
            raise ModelSchemaError(
                f"print library schema {doc.get('schema')!r} is not {SCHEMA!r}; this SeamRoto reads {SCHEMA} "
                "(update SeamRoto, or calibrate the character again with `seamroto calibrate --prior-shot`)",
                path=path,
            )
        try:
            shapes = []
            for s in doc["shapes"]:
                count, closed = int(s["count"]), bool(s["closed"])
                prints = tuple(_print_from_dict(p, count, closed) for p in s["prints"])
                shapes.append(ShapePrints(str(s["name"]), closed, count, prints))
            return cls(
                tuple(str(n) for n in doc["face_landmarks"]),
                float(doc["reference_radius_px"]),
                tuple(shapes),
                dict(doc.get("stats", {})),
                PieceReadout.from_dict(doc["readout"]) if doc.get("readout") is not None else None,
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ModelError(f"damaged print library ({err}); re-copy the model folder", path=path) from err


def _print_to_dict(p: Print) -> Dict[str, Any]:
    m = p.model
    return {
        "source": p.source,
        "frame": p.frame,
        "side": m.side,
        "segment": m.segment.tolist(),
        "t": np.round(m.t, 6).tolist(),
        "template": np.round(m.template, 3).tolist(),
        "corners": m.corners.tolist(),
        "corner_template": np.round(m.corner_template, 3).tolist(),
    }


def _print_from_dict(doc: Mapping[str, Any], count: int, closed: bool) -> Print:
    model = restore_edge_model(
        count,
        closed,
        np.asarray(doc["segment"]),
        np.asarray(doc["t"]),
        float(doc["side"]),
        np.asarray(doc["template"]),
        np.asarray(doc["corners"]),
        np.asarray(doc["corner_template"]),
    )
    return Print(str(doc["source"]), int(doc["frame"]), model)


def write_print_library(folder: Path, library: PrintLibrary) -> Path:
    """Write ``prints.json`` into a model folder (atomically)."""
    return atomic_write_text(Path(folder) / PRINTS_FILE, json.dumps(library.to_dict()) + "\n")


def load_print_library(folder: Path) -> Optional[PrintLibrary]:
    """The model folder's print library, or None when it has none (older models, rig-only ones).

    A library its ``card.json`` does not list is ignored (with a warning), as every file a
    model uses is verified against the card.

    Raises:
        ModelChecksumError: the file does not match the sha256 in the card.
        ModelError, ModelSchemaError: the file is unreadable or for another schema.
    """
    from seamroto.models import read_listed_json

    doc = read_listed_json(folder, PRINTS_FILE, "print library", "re-copy the model folder")
    if doc is None:
        return None
    return PrintLibrary.from_dict(doc, str(Path(folder) / PRINTS_FILE))


# -------------------------------------------------------------------- face size


def face_radius_px(points: np.ndarray) -> float:
    """RMS radius of points about their centre (NaN when any is unknown). Shape: (A, 2)."""
    p = np.asarray(points, dtype=np.float64)
    if len(p) < 2 or not np.isfinite(p).all():
        return float("nan")
    return float(np.sqrt(((p - p.mean(axis=0)) ** 2).sum(axis=1).mean()))


def working_scale(radius_px: float, reference_px: float) -> float:
    """Working px per plate px that shows a face of ``radius_px`` at the reference size."""
    scale = reference_px / radius_px
    return 1.0 if abs(scale - 1.0) <= SCALE_TOLERANCE else scale


def _resampled(gray: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return gray
    h, w = gray.shape
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(gray, size, interpolation=interp))


# -------------------------------------------------------------------- learning


@dataclass(frozen=True)
class _Key:
    source: str
    shot: Any  # seamroto.datamodel.Shot
    frame: int
    packed: np.ndarray  # (N, 6, 2)
    radius_px: float


def replacement_shapes(annotations: Sequence[Annotation], rig: Any, discontinuous: Sequence[str] = ()) -> List[str]:
    """Rigged shapes on replacement pieces.

    A shape is one when at least half the landmarks it is rigged from are the character's
    replacement-piece landmarks (``discontinuous``), or when the artists drew a new print on
    most frames (``snap.changes_shape``; small plates hide that difference, hence the
    landmarks first).
    """
    out = []
    pieces = set(discontinuous)
    for shape in rig.shapes:
        if shape.landmarks and 2 * sum(n in pieces for n in shape.landmarks) >= len(shape.landmarks):
            out.append(shape.name)
            continue
        votes = []
        for a in annotations:
            s = _shape(a, shape.name)
            if s is not None and len(s.keys) > 1:
                votes.append(changes_shape([pack_points(s.keys[f]) for f in sorted(s.keys)]))
        if votes and sum(votes) * 2 > len(votes):
            out.append(shape.name)
    return out


def _shape(annotation: Annotation, name: str) -> Optional[RotoShape]:
    return next((s for s in annotation.shapes if s.name == name), None)


def _spread(keys: Sequence[_Key], count: int) -> List[_Key]:
    """``count`` keys whose outlines differ most (farthest-point order, from the most typical)."""
    rows = []
    for k in keys:
        c = k.packed[:, 0] - k.packed[:, 0].mean(axis=0)
        rows.append((c / max(float(np.sqrt((c**2).sum(axis=1).mean())), 1e-9)).ravel())
    x = np.asarray(rows)
    chosen = [int(np.argmin(((x - x.mean(axis=0)) ** 2).sum(axis=1)))]
    dist = ((x - x[chosen[0]]) ** 2).sum(axis=1)
    while len(chosen) < min(count, len(keys)):
        i = int(np.argmax(dist))
        chosen.append(i)
        dist = np.minimum(dist, ((x - x[i]) ** 2).sum(axis=1))
    return [keys[i] for i in sorted(chosen, key=lambda i: (keys[i].source, keys[i].frame))]


def learn_print_library(
    annotations: Sequence[Annotation],
    rig: Any,
    face_landmarks: Sequence[str],
    discontinuous: Sequence[str] = (),
    *,
    per_shape: int = PRINTS_PER_SHAPE,
    params: SnapParams = LIBRARY_SNAP,
    progress: Optional[Progress] = None,
) -> Optional[PrintLibrary]:
    """The prints of every replacement shape from the training scripts' plates and artists' shapes.

    Args:
        annotations: training scripts (Read node + Tracker4 tracks + Roto shapes); ones without
            plates (LAIKA stills) or whose plates cannot be found are skipped (with a warning).
        rig: the character's ``seamroto.rig.Rig`` (point count and order of each shape).
        face_landmarks: rigid landmarks whose spread measures the face's size.
        discontinuous: the character's landmarks on replacement pieces.
        per_shape: prints kept per shape.
        params: snap settings (profile lengths and spacing).
        progress: polled per print.

    Returns:
        The library, or None when no shape is a replacement piece or nothing usable was found.

    Raises:
        CancelledError: when ``progress`` was cancelled.
    """
    from seamroto.colour import model_gray_u8
    from seamroto.plates import PlateSequence

    progress = progress or NullProgress()
    sequences: Dict[str, Any] = {}
    with_plates = []
    for a in annotations:
        if a.shot is None:
            continue
        try:
            shot = a.shot
            sequences[a.source] = PlateSequence.open(
                shot.plates, shot.first, shot.last, colourspace=shot.colourspace or None
            )
        except PlateError as err:
            logger.warning("print library: %s: %s; no prints are taken from it", a.source, err)
            continue
        with_plates.append(a)
    names = replacement_shapes(with_plates, rig, discontinuous)
    if not names or len(face_landmarks) < 2:
        return None
    chosen: Dict[str, List[_Key]] = {}
    for name in names:
        spec = rig.shape(name)
        keys = []
        for a in with_plates:
            s = _shape(a, name)
            if s is None:
                continue
            frames = sorted(s.keys)
            face = tracks_to_array(a.tracks, list(face_landmarks), frames)[..., :2]
            own = tracks_to_array(a.tracks, list(spec.landmarks), frames)[..., :2]
            for f, anchors, lms in zip(frames, face, own):
                radius = face_radius_px(anchors)
                points = spec.key_in_rig_points(s.points_array(f), lms)
                if points is None or not np.isfinite(radius):
                    continue
                keys.append(_Key(a.source, a.shot, f, packed_from_rows(points), radius))
        if keys:
            chosen[name] = _spread(keys, per_shape)
        else:
            logger.info("%s: no training key has its landmarks and the face's; no prints kept for it", name)
    if not chosen:
        return None
    reference = float(np.median([k.radius_px for ks in chosen.values() for k in ks]))
    total = sum(len(ks) for ks in chosen.values())
    shapes = []
    done = 0
    for name, keys in chosen.items():
        prints = []
        for k in keys:
            if progress.cancelled:
                raise CancelledError("print library cancelled", frame=k.frame)
            progress.update(done, total, f"print library: {name}, {Path(k.source).name} frame {k.frame}")
            done += 1
            seq = sequences[k.source]
            colourspace = k.shot.colourspace or seq.colourspace
            scale = working_scale(k.radius_px, reference)
            try:
                gray = _resampled(model_gray_u8(seq.read(k.frame), colourspace), scale)
            except PlateError as err:
                logger.warning("print library: %s frame %d: %s; that print is left out", k.source, k.frame, err)
                continue
            model = make_edge_model(gray, k.packed, rig.shape(name).closed, (scale, scale), params)
            if model is not None:
                prints.append(Print(k.source, k.frame, model))
        if prints:
            shapes.append(ShapePrints(name, rig.shape(name).closed, rig.shape(name).k, tuple(prints)))
    if not shapes:
        return None
    logger.info("print library: %s", ", ".join(f"{s.name} ({len(s.prints)} prints)" for s in shapes))
    stats = {"sources": sorted({a.source for a in with_plates}), "per_shape": per_shape}
    return PrintLibrary(tuple(face_landmarks), reference, tuple(shapes), stats)


# -------------------------------------------------------------------- snapping


class FrameGrays(Protocol):
    """Per frame index, the frame's ``seamroto.detection.GrayRegion`` or None (a list, or read on demand)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


@dataclass(frozen=True)
class SnapOutcome:
    """What snapping did to one shape over a shot (for the log and the benchmarks).

    Attributes:
        snapped: frames whose rigged piece was replaced by a snapped print.
        kept: frames where every snap moved too far (the rigged piece kept).
        skipped: frames without a fitted shape, a face size or a grey region.
        snapped_frames: the frame numbers of ``snapped``.
    """

    snapped: int = 0
    kept: int = 0
    skipped: int = 0
    snapped_frames: Tuple[int, ...] = ()


class PrintSnapper:
    """Snaps a shot's rigged replacement pieces onto each frame's edges (fitters cached per print)."""

    def __init__(self, library: PrintLibrary, params: SnapParams = LIBRARY_SNAP) -> None:
        self.library = library
        self.params = params
        self._fitters = {s.name: [EdgeFitter(p.model, params) for p in s.prints] for s in library.shapes}
        self._rankers = {s.name: ProfileRanker([p.model for p in s.prints], params) for s in library.shapes}

    def snap(self, name: str, packed: np.ndarray, gray: Any, radius_px: float) -> Optional[np.ndarray]:
        """The piece snapped onto this frame, or None to keep the rigged one.

        Args:
            name: a shape of the library.
            packed: the rigged piece. Shape: (N, 6, 2), plate px.
            gray: the frame's ``seamroto.detection.GrayRegion`` (plate-resolution grey).
            radius_px: the frame's face size (``face_radius_px`` of the face landmarks).
        """
        shape = next(s for s in self.library.shapes if s.name == name)
        start = np.asarray(packed, dtype=np.float64)
        if start.shape[0] != shape.count or not np.isfinite(start).all() or not np.isfinite(radius_px):
            return None
        scale = working_scale(radius_px, self.library.reference_radius_px)
        if not 1.0 / MAX_SCALE_RATIO <= scale <= MAX_SCALE_RATIO:
            return None  # not a face at any size the prints can be compared at
        extent = float(np.ptp(start[:, 0], axis=0).max())
        pad = CROP_PAD_PX + CROP_PAD_SHARE * extent
        held_lo = np.asarray(gray.origin, dtype=int)
        held_hi = held_lo + np.asarray(gray.pixels.shape[::-1], dtype=int)
        lo = np.maximum(np.floor(start[:, :3].reshape(-1, 2).min(axis=0) - pad).astype(int), held_lo)
        hi = np.minimum(np.ceil(start[:, :3].reshape(-1, 2).max(axis=0) + pad).astype(int), held_hi)
        if (hi <= lo).any():
            return None
        region = gray.crop(int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1]))
        if not region.any():
            return None
        work = _resampled(region, scale).astype(np.float32)
        local = start - lo.astype(np.float64)
        sc = (scale, scale)
        costs = self._rankers[name].costs(work, local, sc)
        snaps = [
            snap_shape(shape.prints[i].model, work, local, sc, self.params, self._fitters[name][i])
            for i in np.argsort(costs)[:SNAP_CANDIDATES]
        ]
        if not snaps:
            return None
        weights = np.array([max(r.cost, MIN_BLEND_COST) ** -SNAP_COST_POWER for r in snaps])
        blend = np.tensordot(weights / weights.sum(), np.stack([r.packed for r in snaps]), axes=1)
        move = float(np.linalg.norm(blend[:, 0] - local[:, 0], axis=1).mean())
        if move > MAX_MOVE_SHARE * extent:
            return None
        return blend + lo.astype(np.float64)


def snap_fitted(
    fitted: Mapping[str, Any],
    landmarks: np.ndarray,
    landmark_names: Sequence[str],
    grays: FrameGrays,
    library: PrintLibrary,
    params: SnapParams = LIBRARY_SNAP,
    progress: Optional[Progress] = None,
) -> Tuple[Dict[str, Any], Dict[str, SnapOutcome]]:
    """``Rig.apply``'s shapes with every replacement piece snapped onto its frame's edges.

    Args:
        fitted: name -> ``seamroto.rig.FittedShape``.
        landmarks: the fused landmarks in ``landmark_names`` order. Shape: (F, L, 2), _img.
        landmark_names: their names.
        grays: per frame, the ``seamroto.detection.GrayRegion`` around the face (or None).
        library: the character's prints.
        params: snap settings.
        progress: polled per frame.

    Returns:
        The shapes (the library's ones replaced frame by frame) and what happened per shape.

    Raises:
        CancelledError: when ``progress`` was cancelled.
    """
    progress = progress or NullProgress()
    index = {n: i for i, n in enumerate(landmark_names)}
    cols = [index[n] for n in library.face_landmarks if n in index]
    radii = [
        face_radius_px(row[cols]) if len(cols) == len(library.face_landmarks) else float("nan") for row in landmarks
    ]
    snapper = PrintSnapper(library, params)
    pieces = [fitted[n] for n in library.shape_names if n in fitted]
    points = {fs.name: np.array(fs.points, copy=True) for fs in pieces}
    counts = {fs.name: [0, 0, 0] for fs in pieces}  # snapped, kept, skipped
    on: Dict[str, List[int]] = {fs.name: [] for fs in pieces}
    frames = pieces[0].frames if pieces else ()
    for i, frame in enumerate(frames):
        if progress.cancelled:
            raise CancelledError("snapping the replacement pieces cancelled", frame=frame)
        progress.update(i, len(frames), f"snapping the replacement pieces to the plate, frame {frame}")
        gray = grays[i] if i < len(grays) else None  # read once for every piece (refit decodes it)
        for fs in pieces:
            rows, count = points[fs.name], counts[fs.name]
            if gray is None or fs.flagged[i] or not np.isfinite(rows[i]).all():
                count[2] += 1
                continue
            res = snapper.snap(fs.name, packed_from_rows(rows[i]), gray, radii[i])
            if res is None:
                count[1] += 1
                continue
            rows[i] = rows_from_packed(res)
            count[0] += 1
            on[fs.name].append(int(frame))
    out = dict(fitted)
    outcomes: Dict[str, SnapOutcome] = {}
    for fs in pieces:
        out[fs.name] = replace(fs, points=points[fs.name])
        snapped, kept, skipped = counts[fs.name]
        outcomes[fs.name] = SnapOutcome(snapped, kept, skipped, tuple(on[fs.name]))
        logger.info(
            "%s snapped to the frame's edges on %d frame(s) (%d kept as rigged)", fs.name, *counts[fs.name][:2]
        )
    return out, outcomes


def snapped_points(
    fitted: Mapping[str, Any], outcomes: Mapping[str, SnapOutcome]
) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    """Each snapped shape's control points (F, N, 2) and the frames it was snapped on (F,) bool."""
    points = {n: np.asarray(fitted[n].points)[..., :2] for n in outcomes if n in fitted}
    snapped = {n: np.isin(np.asarray(fitted[n].frames), outcomes[n].snapped_frames) for n in points}
    return points, snapped


def packed_from_rows(rows: np.ndarray) -> np.ndarray:
    """Rig rows ``[x, y, lx, ly, rx, ry, fx, fy]`` (relative) -> ``pack_points`` layout (absolute).

    Shape: (N, 8) -> (N, 6, 2); the feather handles equal the curve's.
    """
    r = np.asarray(rows, dtype=np.float64)
    c, left, right, feather = r[:, 0:2], r[:, 2:4], r[:, 4:6], r[:, 6:8]
    f = c + feather
    return np.stack([c, c + left, c + right, f, f + left, f + right], axis=1)


def rows_from_packed(packed: np.ndarray) -> np.ndarray:
    """Inverse of ``packed_from_rows``. Shape: (N, 6, 2) -> (N, 8)."""
    p = np.asarray(packed, dtype=np.float64)
    c = p[:, 0]
    return np.hstack([c, p[:, 1] - c, p[:, 2] - c, p[:, 3] - c])
