"""Synthetic shots: plan + geometry + raster for every frame, with the exact ground truth.

``render_shot`` keeps every plate in memory (fine for tests and small sizes); ``iter_frames``
renders one plate at a time, and ``synth_truth`` gives the ground truth without pixels (its
``image(frame)`` renders a plate on demand), which is what ``write_shot`` streams to disk.
"""

from __future__ import annotations

import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Iterator, List, Mapping, Optional, Tuple

import numpy as np

from seamroto.datamodel import (
    Character,
    LandmarkSample,
    LandmarkTrack,
    RotoShape,
    Shot,
    shape_from_arrays,
)
from seamroto.errors import SynthError
from seamroto.synth.characters import CHARACTERS, SHAPE_LAYOUT, SynthCharacter, character_model
from seamroto.synth.geometry import SEAM_BAND_FEATHER, FrameGeometry, face_box, frame_geometry
from seamroto.synth.motion import ShotPlan, plan_shot
from seamroto.synth.render import Region, ShotCanvas, make_canvas, render_frame

logger = logging.getLogger(__name__)

Box = Tuple[float, float, float, float]
#: Smallest frame a face can be drawn into.
MIN_SIZE = 32
#: Frames rendered in parallel by ``render_shot`` (numpy and OpenCV release the GIL).
RENDER_THREADS = 2
#: Shots whose plan and set stay cached for ``SynthShot.image`` (a 2K set is about 80 MB).
PREPARED_CACHE = 2


@dataclass(frozen=True, eq=False)
class SynthShot:
    """A synthetic shot and its exact ground truth (all coordinates _img px).

    ``images`` holds the plates when rendered with ``render_shot`` and is empty for
    ``synth_truth`` (``image(frame)`` renders on demand then). ``shot.plates`` is "" until
    ``write_shot`` writes the plates. ``face_boxes``: the face outline's box clipped to the
    frame; frames where the face is out of frame have no box, no landmark samples and no
    shape keys. ``hidden``: landmark -> frames where it is covered (lids over the pupil) but
    still defined. ``mouths``: the replacement mouth of every frame.
    """

    character: Character
    shot: Shot
    images: Tuple[np.ndarray, ...]
    tracks: Tuple[LandmarkTrack, ...]
    shapes: Tuple[RotoShape, ...]
    face_boxes: Mapping[int, Box]
    seed: int
    motion: float = 1.0
    exit_frame: Optional[int] = None
    hidden: Mapping[str, FrozenSet[int]] = field(default_factory=dict)
    mouths: Mapping[int, str] = field(default_factory=dict)

    @property
    def spec(self) -> SynthCharacter:
        """The synthetic character this shot shows."""
        return CHARACTERS[self.character.name]

    def image(self, frame: int) -> np.ndarray:
        """The plate of ``frame``, rendered now when the shot holds no images.

        Shape: (height, width, 3) float32 scene-linear RGB.
        """
        if frame not in self.shot.frames:
            raise SynthError(
                f"frame {frame} is outside the shot ({self.shot.first}-{self.shot.last})",
                frame=frame,
            )
        if self.images:
            return self.images[frame - self.shot.first]
        job, canvas = _prepared(self.character.name, self.seed, self.shot.frame_count,
                                self.shot.first, self.shot.width, self.shot.height, self.motion,
                                self.exit_frame)
        return job.render(frame - self.shot.first, canvas)


def rendered_mattes(shot: SynthShot, frame: int) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
    """Render ``frame`` again and return it with the coverage of the shapes as drawn.

    Why: measuring a roto rig against what was painted (not only against the exported curves),
    and checking that the exported curves are what the renderer filled. Mattes are named as the
    roto shapes (``eye_L``, ``lid_L``, ``brow_L``, ``face``, ``nose``, ``mouth`` ...) plus
    ``seam_gap`` (the dark print gap) and ``pupil_L``/``pupil_R`` (the visible pupil); mattes
    are before lens and motion blur; a part entirely out of frame has no entry.

    Shape: image (H, W, 3) float32; each matte (H, W) float32 coverage 0..1.
    """
    if frame not in shot.shot.frames:
        raise SynthError(
            f"frame {frame} is outside the shot ({shot.shot.first}-{shot.shot.last})", frame=frame
        )
    job, canvas = _prepared(shot.character.name, shot.seed, shot.shot.frame_count,
                            shot.shot.first, shot.shot.width, shot.shot.height, shot.motion,
                            shot.exit_frame)
    crops: Dict[str, Tuple[Region, np.ndarray]] = {}
    index = frame - shot.shot.first
    img = job.render(index, canvas, crops)
    full: Dict[str, np.ndarray] = {}
    for name, (reg, cov) in crops.items():
        if reg.empty:
            continue
        m = np.zeros((shot.shot.height, shot.shot.width), np.float32)
        m[reg.y0 : reg.y0 + reg.h, reg.x0 : reg.x0 + reg.w] = cov
        full[name] = m
    return img, full


@dataclass(frozen=True, eq=False)
class _Job:
    """Everything needed to render a shot's frames: spec, plan and per-frame geometry."""

    spec: SynthCharacter
    seed: int
    width: int
    height: int
    plan: ShotPlan
    geometry: Tuple[FrameGeometry, ...]

    @staticmethod
    def create(character: str, seed: int, frames: int, first: int, width: int, height: int,
               motion: float, exit_frame: Optional[int]) -> _Job:
        spec = lookup(character)
        _check(frames, first, width, height, motion, exit_frame)
        plan = plan_shot(spec, seed, frames=frames, first=first, width=width, height=height,
                         motion=motion, exit_frame=exit_frame)
        geometry = tuple(frame_geometry(spec, s.pose, s.expression) for s in plan.frames)
        return _Job(spec, seed, width, height, plan, geometry)

    def canvas(self) -> ShotCanvas:
        return make_canvas(self.spec, self.seed, self.width, self.height)

    def render(
        self, index: int, canvas: ShotCanvas,
        mattes: Optional[Dict[str, Tuple[Region, np.ndarray]]] = None,
    ) -> np.ndarray:
        return render_frame(
            self.spec, self.geometry[index], self.plan.frames[index], canvas, seed=self.seed,
            exposure=self.plan.exposure, light_tint=self.plan.light_tint, mattes=mattes,
        )


@functools.lru_cache(maxsize=PREPARED_CACHE)
def _prepared(character: str, seed: int, frames: int, first: int, width: int, height: int,
              motion: float, exit_frame: Optional[int]) -> Tuple[_Job, ShotCanvas]:
    """Plan and fixed layers of a shot, kept for the next on-demand frame of the same shot."""
    job = _Job.create(character, seed, frames, first, width, height, motion, exit_frame)
    return job, job.canvas()


def lookup(character: str) -> SynthCharacter:
    """The synthetic character called ``character``, or a SynthError listing the known ones."""
    try:
        return CHARACTERS[character]
    except KeyError:
        raise SynthError(
            f"unknown synthetic character {character!r}; choose one of "
            f"{', '.join(sorted(CHARACTERS))}"
        ) from None


def _check(frames: int, first: int, width: int, height: int, motion: float,
           exit_frame: Optional[int]) -> None:
    """Reject requests the renderer cannot honour, saying which value to change."""
    if frames < 1:
        raise SynthError(f"frames must be at least 1, got {frames}")
    if width < MIN_SIZE or height < MIN_SIZE:
        raise SynthError(f"size must be at least {MIN_SIZE}x{MIN_SIZE} px, got {width}x{height}")
    if motion < 0:
        raise SynthError(f"motion must be 0 or more, got {motion}")
    last = first + frames - 1
    if exit_frame is not None and not first <= exit_frame <= last:
        raise SynthError(f"exit_frame {exit_frame} is outside the shot ({first}-{last})",
                         frame=exit_frame)


def _truth(job: _Job, first: int, motion: float, exit_frame: Optional[int]) -> SynthShot:
    """Ground truth of a planned shot, with no plates."""
    spec, width, height = job.spec, job.width, job.height
    samples: Dict[str, Dict[int, LandmarkSample]] = {n: {} for n in spec.landmark_names}
    keys: Dict[str, Dict[int, np.ndarray]] = {n: {} for n in SHAPE_LAYOUT}
    boxes: Dict[int, Box] = {}
    hidden: Dict[str, set[int]] = {}
    mouths: Dict[int, str] = {}
    band_px: List[float] = []
    for state, geom in zip(job.plan.frames, job.geometry):
        f = state.frame
        mouths[f] = state.expression.mouth
        x, y, w, h = face_box(geom)
        x0, y0 = max(x, 0.0), max(y, 0.0)
        x1, y1 = min(x + w, float(width)), min(y + h, float(height))
        if x1 <= x0 or y1 <= y0:
            continue  # the face is out of frame: no samples at all
        boxes[f] = (x0, y0, x1 - x0, y1 - y0)
        for name, (lx, ly) in geom.landmarks.items():
            if 0.0 <= lx < width and 0.0 <= ly < height:
                samples[name][f] = LandmarkSample(lx, ly)
        for name in geom.hidden:
            hidden.setdefault(name, set()).add(f)
        for name, path in geom.shapes.items():
            keys[name][f] = path.to_rows()
        band_px.append(geom.seam_band_px)
    feather = SEAM_BAND_FEATHER * float(np.mean(band_px)) if band_px else 0.0
    shapes = tuple(
        shape_from_arrays(
            name, closed, keys[name], layer=layer,
            feather=feather if name == "seam_band" else 0.0,
        )
        for name, (layer, closed, _n) in SHAPE_LAYOUT.items()
    )
    last = first + len(job.plan.frames) - 1
    return SynthShot(
        character=character_model(spec),
        shot=Shot("", first, last, width, height),
        images=(),
        tracks=tuple(LandmarkTrack(n, samples[n]) for n in spec.landmark_names),
        shapes=shapes,
        face_boxes=boxes,
        seed=job.seed,
        motion=motion,
        exit_frame=exit_frame,
        hidden={k: frozenset(v) for k, v in hidden.items()},
        mouths=mouths,
    )


def synth_truth(
    character: str,
    seed: int,
    *,
    frames: int = 48,
    first: int = 1001,
    width: int = 2048,
    height: int = 1080,
    motion: float = 1.0,
    exit_frame: Optional[int] = None,
) -> SynthShot:
    """Ground truth of a shot without rendering it (``image(frame)`` renders on demand).

    Args and Raises: as ``render_shot``.
    """
    job = _Job.create(character, seed, frames, first, width, height, motion, exit_frame)
    return _truth(job, first, motion, exit_frame)


def iter_frames(
    character: str,
    seed: int,
    *,
    frames: int = 48,
    first: int = 1001,
    width: int = 2048,
    height: int = 1080,
    motion: float = 1.0,
    exit_frame: Optional[int] = None,
) -> Iterator[Tuple[int, np.ndarray]]:
    """Render a shot one plate at a time (low memory): yields (frame, image).

    The plates equal ``render_shot``'s for the same arguments.
    """
    job = _Job.create(character, seed, frames, first, width, height, motion, exit_frame)
    canvas = job.canvas()
    for i, state in enumerate(job.plan.frames):
        yield state.frame, job.render(i, canvas)


def render_shot(
    character: str,
    seed: int,
    *,
    frames: int = 48,
    first: int = 1001,
    width: int = 2048,
    height: int = 1080,
    motion: float = 1.0,
    exit_frame: Optional[int] = None,
) -> SynthShot:
    """Render a synthetic puppet shot with its exact ground truth.

    Args:
        character: a name in ``CHARACTERS``.
        seed: the same seed gives identical pixels and ground truth.
        frames: number of frames, numbered from ``first``.
        first: first frame number.
        width: plate width in px.
        height: plate height in px (the face is about half of it).
        motion: head motion multiplier (0 = locked-off head; blinks and mouths still change).
        exit_frame: the face slides out of frame from this frame on (frames without a face).

    Returns:
        The shot with its plates in memory (48 2K plates are about 1.3 GB: for big shots use
        ``iter_frames`` or ``synth_truth`` + ``write_shot``).

    Raises:
        SynthError: unknown character, or a size, frame count or exit frame out of range.
    """
    job = _Job.create(character, seed, frames, first, width, height, motion, exit_frame)
    truth = _truth(job, first, motion, exit_frame)
    canvas = job.canvas()
    with ThreadPoolExecutor(max_workers=RENDER_THREADS) as pool:
        images = tuple(pool.map(lambda i: job.render(i, canvas), range(frames)))
    return SynthShot(
        character=truth.character,
        shot=truth.shot,
        images=images,
        tracks=truth.tracks,
        shapes=truth.shapes,
        face_boxes=truth.face_boxes,
        seed=seed,
        motion=motion,
        exit_frame=exit_frame,
        hidden=truth.hidden,
        mouths=truth.mouths,
    )
