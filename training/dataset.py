"""Training samples from annotated shots: face crops with landmark targets and a visibility mask.

Whole 2K frames would not fit in memory for a few hundred frames, so each frame is reduced on
load to the region around its face, box-averaged by the same integer factor and on the same
grid that inference uses (``seamroto.landmarks.reduce_region``): an unaugmented training crop
is then pixel-identical to the crop ``predict_landmarks`` cuts for the same box. Landmarks that
are unknown on a frame are NaN and masked out of the loss, never trained as zeros.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    Tuple,
)

import numpy as np

from seamroto import colour
from seamroto.datamodel import Annotation, Character, LandmarkTrack, RotoShape, tracks_to_array
from seamroto.errors import AnnotationError
from seamroto.landmarks import (
    box_from_points,
    compose_affine,
    crop_bounds,
    crop_matrix,
    invert_affine,
    map_points,
    reduce_region,
    reduction_factor,
    warp_from_region,
)
from training.augment import (
    AugmentConfig,
    apply_camera,
    apply_light,
    apply_seam,
    jitter_box,
    sample_geometry,
    swap_background,
)

logger = logging.getLogger(__name__)

# Stored region around the face, as a multiple of the crop side: room for geometry augmentation
# (rotation, shift, zoom-out) without reaching black.
REGION_SCALE = 1.8
# A landmark counts for the loss only inside the crop (crop px of margin).
INSIDE_MARGIN_PX = 1.0
# Working colour space of stored regions: light augmentation is physical in linear light.
WORK_SPACE = colour.LINEAR_SPACE
MIN_POINTS_FOR_BOX = 2
# Roto shape names taken as the face outline for background swaps (else the largest closed shape).
OUTLINE_NAMES = ("face", "face_outline", "head")
OUTLINE_SAMPLES = 12

ImageReader = Callable[[str, int], np.ndarray]


class AnnotatedFrames(Protocol):
    """One annotated shot whose frames can be decoded: what ``load_records`` needs.

    Optional extras a shot may have: ``hidden`` (landmark -> frames where it is covered),
    ``shapes`` (roto shapes; the face outline guides background swaps), ``iter_images()``.
    """

    @property
    def source(self) -> str:
        """Where the ground truth came from (file, or synth id)."""

    @property
    def tracks(self) -> Tuple[LandmarkTrack, ...]:
        """Landmark tracks."""

    @property
    def colourspace(self) -> str:
        """Colour space of the decoded frames."""

    def frames(self) -> List[int]:
        """Frames that carry landmarks."""

    def image(self, frame: int) -> np.ndarray:
        """(H, W, 3) float32 frame in ``colourspace``."""


@dataclass(frozen=True)
class InMemoryShot:
    """An annotated shot whose frames are already decoded (``seamroto.synth.render_shot``).

    ``hidden``: landmark -> frames where it is defined but covered (a lid over the pupil);
    those samples are left out of training and scoring, like unknown ones.
    """

    source: str
    tracks: Tuple[LandmarkTrack, ...]
    images: Mapping[int, np.ndarray]
    colourspace: str = WORK_SPACE
    hidden: Mapping[str, FrozenSet[int]] = field(default_factory=dict)
    shapes: Tuple[RotoShape, ...] = ()

    def frames(self) -> List[int]:
        """Frames that have both an image and at least one landmark."""
        known = {f for t in self.tracks for f in t.samples}
        return sorted(known & set(self.images))

    def image(self, frame: int) -> np.ndarray:
        """The decoded frame."""
        return self.images[frame]


@dataclass(frozen=True)
class StreamedShot:
    """An annotated shot whose frames are produced in order by ``stream()`` (low memory).

    For synthetic shots rendered on the fly: ``load_records`` consumes ``iter_images`` so only
    one full frame is alive at a time.
    """

    source: str
    tracks: Tuple[LandmarkTrack, ...]
    frame_list: Tuple[int, ...]
    stream: Callable[[], Iterator[Tuple[int, np.ndarray]]]
    colourspace: str = WORK_SPACE
    hidden: Mapping[str, FrozenSet[int]] = field(default_factory=dict)
    shapes: Tuple[RotoShape, ...] = ()

    def frames(self) -> List[int]:
        """Frames that have at least one landmark."""
        return list(self.frame_list)

    def iter_images(self) -> Iterator[Tuple[int, np.ndarray]]:
        """(frame, image) in stream order."""
        return self.stream()

    def image(self, frame: int) -> np.ndarray:
        """One frame (streams up to it: prefer ``iter_images``)."""
        for f, img in self.stream():
            if f == frame:
                return img
        raise AnnotationError(f"frame {frame} is not in the stream", path=self.source, frame=frame)


def synth_shot(
    character: str,
    seed: int,
    *,
    frames: int = 48,
    first: int = 1001,
    width: int = 2048,
    height: int = 1080,
    motion: float = 1.0,
) -> StreamedShot:
    """A ``seamroto.synth`` shot as training data, rendered frame by frame when loaded."""
    from seamroto import synth

    kw = dict(frames=frames, first=first, width=width, height=height, motion=motion)
    truth = synth.synth_truth(character, seed, **kw)  # type: ignore[arg-type]
    known = sorted({f for t in truth.tracks for f in t.samples})

    def stream() -> Iterator[Tuple[int, np.ndarray]]:
        return synth.iter_frames(character, seed, **kw)  # type: ignore[arg-type]

    return StreamedShot(f"synth:{character}:{seed}:{width}x{height}", truth.tracks, tuple(known),
                        stream, WORK_SPACE, dict(truth.hidden), tuple(truth.shapes))


def from_synth(shot: Any) -> InMemoryShot:
    """A rendered ``seamroto.synth.SynthShot`` (images in memory) as training data."""
    images = {shot.shot.first + i: img for i, img in enumerate(shot.images)}
    src = f"synth:{shot.character.name}:{shot.seed}:{shot.shot.width}x{shot.shot.height}"
    return InMemoryShot(src, tuple(shot.tracks), images, WORK_SPACE, dict(shot.hidden), tuple(shot.shapes))


@dataclass(frozen=True)
class AnnotationShot:
    """Adapter: an ``Annotation`` whose frames come from its plate pattern or ``images`` map."""

    annotation: Annotation
    read: ImageReader
    colourspace: str

    @property
    def source(self) -> str:
        """Where the ground truth came from."""
        return self.annotation.source

    @property
    def tracks(self) -> Tuple[LandmarkTrack, ...]:
        """The annotation's landmark tracks."""
        return self.annotation.tracks

    @property
    def shapes(self) -> Tuple[RotoShape, ...]:
        """The annotation's roto shapes (the face outline guides background swaps)."""
        return self.annotation.shapes

    def frames(self) -> List[int]:
        """Annotated frames that have an image."""
        known = sorted({f for t in self.tracks for f in t.samples})
        if self.annotation.images:
            return [f for f in known if f in self.annotation.images]
        shot = self.annotation.shot
        return [f for f in known if shot is None or shot.first <= f <= shot.last]

    def image(self, frame: int) -> np.ndarray:
        """Decode the frame (RGB)."""
        ann = self.annotation
        if ann.images:
            return self.read(ann.images[frame], frame)
        if ann.shot is None:
            raise AnnotationError("annotation has neither a shot nor images", path=ann.source)
        return self.read(ann.shot.plates, frame)


def annotation_shot(
    annotation: Annotation,
    read: Optional[ImageReader] = None,
    colourspace: Optional[str] = None,
) -> AnnotationShot:
    """Wrap an ``Annotation`` for training, reading frames with ``seamroto.plates.read_frame``.

    The colour space defaults to the shot's, else the default for the image extension.
    """
    if read is None:
        from seamroto.plates import read_frame

        def read(path: str, frame: int) -> np.ndarray:
            return read_frame(path, frame, channels="RGB")

    if colourspace is None:
        if annotation.images:
            colourspace = colour.colourspace_for(next(iter(annotation.images.values())))
        elif annotation.shot is not None:
            cs = annotation.shot.colourspace
            colourspace = colour.colourspace_for(annotation.shot.plates) if cs == "scene_linear" else cs
        else:
            colourspace = WORK_SPACE
    return AnnotationShot(annotation, read, colourspace)


@dataclass(frozen=True)
class FrameRecord:
    """One training frame: the reduced region around its face and its landmarks.

    ``region`` is float16 linear light; ``region_to_img`` maps region px to frame px.
    ``points`` Shape: (L, 2) float64 _img, NaN where unknown. ``outline``: the face's roto
    outline as a polyline (K, 2) _img when the annotation has one (background swaps follow it).
    """

    source: str
    frame: int
    region: np.ndarray
    region_to_img: np.ndarray
    points: np.ndarray
    frame_size: Tuple[int, int]
    outline: Optional[np.ndarray] = None

    @property
    def box(self) -> np.ndarray:
        """Ground-truth face box (landmark bbox), (x, y, w, h)."""
        return box_from_points(self.points)


def landmark_order(shots: Sequence[AnnotatedFrames], character: Optional[Character]) -> List[str]:
    """Landmark names in model output order: the character's, else first-seen track order."""
    if character is not None and character.landmarks:
        return list(character.landmarks)
    names: List[str] = []
    for s in shots:
        for t in s.tracks:
            if t.name not in names:
                names.append(t.name)
    if not names:
        raise AnnotationError("no landmark tracks in the training data")
    return names


def record_frame(
    image: np.ndarray,
    points: np.ndarray,
    *,
    colourspace: str,
    size: int,
    crop_scale: float,
    source: str = "",
    frame: int = 0,
    outline: Optional[np.ndarray] = None,
) -> FrameRecord:
    """Reduce one annotated frame to its face region (see the module docstring)."""
    rgb = np.asarray(image)[:, :, :3]
    box = box_from_points(points)
    base = crop_matrix(box, size, crop_scale)
    factor = reduction_factor(base)
    grow = crop_matrix(box, size, crop_scale * REGION_SCALE)
    bounds = crop_bounds(grow, size, pad=2.0 * factor)
    region, region_to_img = reduce_region(rgb, bounds, factor)
    if colourspace != WORK_SPACE and region.size:
        region = colour.convert(region, colourspace, WORK_SPACE)
    return FrameRecord(
        source, frame, region.astype(np.float16), region_to_img, np.asarray(points, float),
        (rgb.shape[1], rgb.shape[0]), outline,
    )


def shape_polyline(shape: RotoShape, frame: int, samples: int = OUTLINE_SAMPLES) -> Optional[np.ndarray]:
    """A closed roto shape's key on ``frame`` as a dense polyline (K, 2) _img, or None."""
    if frame not in shape.keys:
        return None
    pts = shape.keys[frame]
    n = len(pts)
    if n < 3:
        return None
    t = (np.arange(samples) / samples)[:, None]
    out = []
    for i in range(n):
        a, b = pts[i], pts[(i + 1) % n]
        p0 = np.array([a.x, a.y])
        p1 = np.array(a.right_abs)
        p2 = np.array(b.left_abs)
        p3 = np.array([b.x, b.y])
        out.append((1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3)
    return np.concatenate(out)


def face_outline(shapes: Sequence[RotoShape], frame: int) -> Optional[np.ndarray]:
    """The face outline on ``frame``: the closed shape named ``face``, else the largest closed one."""
    closed = [s for s in shapes if s.closed and frame in s.keys]
    named = [s for s in closed if s.name.lower() in OUTLINE_NAMES]
    best: Optional[np.ndarray] = None
    best_area = 0.0
    for s in named or closed:
        poly = shape_polyline(s, frame)
        if poly is None:
            continue
        x, y = poly[:, 0], poly[:, 1]
        area = 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))
        if named:
            return poly
        if area > best_area:
            best, best_area = poly, area
    return best


class DataDigest:
    """Running sha256 over the annotation inputs (tracks and decoded frames) for the card."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def add_tracks(self, source: str, names: Sequence[str], frames: Sequence[int], arr: np.ndarray) -> None:
        """Add one shot's landmark table."""
        self._h.update(json.dumps({"source": source, "names": list(names), "frames": list(frames)}).encode())
        self._h.update(np.ascontiguousarray(arr, dtype="<f8").tobytes())

    def add_image(self, image: np.ndarray) -> None:
        """Add one decoded frame."""
        self._h.update(np.ascontiguousarray(image, dtype="<f4").tobytes())

    def hexdigest(self) -> str:
        """The digest so far."""
        return self._h.hexdigest()


def load_records(
    shots: Iterable[AnnotatedFrames],
    names: Sequence[str],
    *,
    size: int,
    crop_scale: float,
    digest: Optional[DataDigest] = None,
    frame_filter: Optional[Callable[[str, int], bool]] = None,
    on_frame: Optional[Callable[[np.ndarray, FrameRecord, str], None]] = None,
) -> List[FrameRecord]:
    """Decode and reduce every annotated frame (one frame in memory at a time).

    Frames with fewer than ``MIN_POINTS_FOR_BOX`` known landmarks are skipped (no face box).
    ``on_frame(image, record, colourspace)`` sees each full frame once (the refiner's patches
    are cut there).
    """
    out: List[FrameRecord] = []
    for shot in shots:
        frames = shot.frames()
        arr = tracks_to_array(shot.tracks, names, frames)[:, :, :2]
        index = {f: i for i, f in enumerate(frames)}
        for name, hidden_frames in getattr(shot, "hidden", {}).items():
            if name in names:
                for f in hidden_frames:
                    if f in index:
                        arr[index[f], names.index(name)] = np.nan
        if digest is not None:
            digest.add_tracks(shot.source, names, frames, arr)
        wanted = [
            f for f in frames
            if (frame_filter is None or frame_filter(shot.source, f))
            and np.isfinite(arr[index[f]]).all(axis=1).sum() >= MIN_POINTS_FOR_BOX
        ]
        if len(wanted) < len(frames):
            logger.debug("%s: %d frame(s) skipped", shot.source, len(frames) - len(wanted))
        images: Iterable[Tuple[int, np.ndarray]]
        if hasattr(shot, "iter_images"):
            keep = set(wanted)
            images = ((f, im) for f, im in shot.iter_images() if f in keep)
        else:
            images = ((f, shot.image(f)) for f in wanted)
        shapes: Sequence[RotoShape] = getattr(shot, "shapes", ())
        for f, img in images:
            pts = arr[index[f]]
            if digest is not None:
                digest.add_image(img)
            rec = record_frame(img, pts, colourspace=shot.colourspace, size=size, crop_scale=crop_scale,
                               source=shot.source, frame=f, outline=face_outline(shapes, f))
            out.append(rec)
            if on_frame is not None:
                on_frame(img, rec, shot.colourspace)
    logger.info("loaded %d training frames", len(out))
    return out


def seam_indices(character: Optional[Character], names: Sequence[str]) -> List[List[int]]:
    """Per seam, the indices of its landmarks in ``names`` (unknown names dropped)."""
    if character is None:
        return []
    index = {n: i for i, n in enumerate(names)}
    out = [[index[n] for n in seam.landmarks if n in index] for seam in character.seams]
    return [s for s in out if len(s) >= 2]


@dataclass(frozen=True)
class Batch:
    """Crops (B, S, S, 3) float32 model space, points (B, L, 2) crop px, mask (B, L) bool."""

    crops: np.ndarray
    points: np.ndarray
    mask: np.ndarray


class CropSampler:
    """Turns records into (augmented) crops; each sample is a pure function of its rng."""

    def __init__(
        self,
        records: Sequence[FrameRecord],
        *,
        size: int,
        crop_scale: float,
        augment: AugmentConfig,
        seams: Sequence[Sequence[int]] = (),
        to_model: Optional[Callable[[np.ndarray], np.ndarray]] = None,
    ) -> None:
        if not records:
            raise AnnotationError("no usable training frames (each needs two or more landmarks)")
        self.records = list(records)
        self.size = size
        self.crop_scale = crop_scale
        self.augment = augment
        self.seams = [list(s) for s in seams]
        self.to_model = to_model or default_to_model

    def crop_for(
        self, rec: FrameRecord, rng: Optional[np.random.Generator] = None,
        box: Optional[np.ndarray] = None,
    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One crop, its crop->frame affine and the landmarks in crop px (NaN unknown)."""
        cfg = self.augment
        b = rec.box if box is None else np.asarray(box, float)
        if rng is not None:
            b = jitter_box(b, rng, cfg.box_jitter)
        m = crop_matrix(b, self.size, self.crop_scale)
        if rng is not None:
            m = compose_affine(m, sample_geometry(rng, self.size, cfg))
        crop = warp_from_region(rec.region.astype(np.float32), rec.region_to_img, m, self.size)
        pts = map_points(rec.points, invert_affine(m))
        if rng is not None:
            crop = apply_light(crop, rng, cfg)
            crop = apply_seam(crop, [pts[s] for s in self.seams], rng, cfg)
            outline = None if rec.outline is None else map_points(rec.outline, invert_affine(m))
            crop = swap_background(crop, pts, rng, cfg, outline)
        crop = self.to_model(crop)
        if rng is not None:
            crop = apply_camera(crop, rng, cfg)
        return crop, m, pts

    def sample(
        self, rng: np.random.Generator, index: Optional[int] = None
    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """An augmented crop of record ``index`` (random when None), points, mask."""
        i = int(rng.integers(len(self.records))) if index is None else index
        crop, _, pts = self.crop_for(self.records[i], rng)
        lo, hi = INSIDE_MARGIN_PX, self.size - INSIDE_MARGIN_PX
        mask = np.isfinite(pts).all(axis=1) & (pts >= lo).all(axis=1) & (pts <= hi).all(axis=1)
        return crop, np.nan_to_num(pts, nan=0.0), mask

    def batch(self, seed: int, step: int, batch_size: int) -> Batch:
        """Batch ``step`` of a run seeded with ``seed``: identical on resume by construction."""
        rng = np.random.default_rng([seed, step])
        order = rng.integers(len(self.records), size=batch_size)
        crops, pts, masks = [], [], []
        for k, i in enumerate(order):
            c, p, m = self.sample(np.random.default_rng([seed, step, k]), int(i))
            crops.append(c)
            pts.append(p)
            masks.append(m)
        return Batch(np.stack(crops), np.stack(pts).astype(np.float32), np.stack(masks))

    def eval_crops(self, records: Optional[Sequence[FrameRecord]] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Unaugmented crops on the ground-truth box and their affines (as inference cuts them)."""
        recs = self.records if records is None else records
        crops, mats = [], []
        for r in recs:
            c, m, _ = self.crop_for(r)
            crops.append(c)
            mats.append(m)
        return np.stack(crops), np.stack(mats)


def default_to_model(crop: np.ndarray) -> np.ndarray:
    """Linear crop -> the model's colour space (``seamroto.colour.MODEL_SPACE``), clipped."""
    return colour.to_model_space(crop, WORK_SPACE)


def frame_errors(
    pred_img: np.ndarray, records: Sequence[FrameRecord]
) -> np.ndarray:
    """Euclidean error (px) of predictions against each record's known landmarks, flattened."""
    gt = np.stack([r.points for r in records])
    err = np.linalg.norm(pred_img - gt, axis=-1)
    return err[np.isfinite(err)]


def error_stats(errors: np.ndarray) -> Dict[str, Any]:
    """Mean, median, p95 and max of landmark errors in px."""
    if errors.size == 0:
        return {"count": 0}
    return {
        "count": int(errors.size),
        "mean_px": float(errors.mean()),
        "median_px": float(np.median(errors)),
        "p95_px": float(np.percentile(errors, 95)),
        "max_px": float(errors.max()),
    }
