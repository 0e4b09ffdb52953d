"""The data model every stage shares: shots, landmark tracks, roto shapes and characters.

All coordinates are in the project convention (``_img``: pixels, origin top-left corner, y down;
see ``coords.py``). Tangent handles and feather offsets are stored *relative* (to the centre, and
to the feather point for feather tangents), as Nuke stores them, so a point can move without its
handles being recomputed; ``ControlPoint.left_abs``/``right_abs`` give absolute handles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple

import numpy as np

Vec2 = Tuple[float, float]
ZERO2: Vec2 = (0.0, 0.0)


@dataclass(frozen=True)
class Shot:
    """A plate sequence: pattern in Nuke syntax (``name.####.exr`` or ``name.%04d.exr``)."""

    plates: str
    first: int
    last: int
    width: int
    height: int
    pixel_aspect: float = 1.0
    colourspace: str = ""  # OCIO name; "" = by file extension (seamroto.colour.colourspace_for)

    @property
    def frames(self) -> range:
        """Every frame of the shot, inclusive of ``last``."""
        return range(self.first, self.last + 1)

    @property
    def frame_count(self) -> int:
        """Number of frames in the inclusive range."""
        return self.last - self.first + 1


@dataclass(frozen=True)
class LandmarkSample:
    """One landmark on one frame; ``keyed`` is False where the value was interpolated."""

    x: float
    y: float
    confidence: float = 1.0
    keyed: bool = True


@dataclass(frozen=True)
class LandmarkTrack:
    """A named landmark through the shot; frames without a sample are unknown, never zero."""

    name: str
    samples: Mapping[int, LandmarkSample]

    @property
    def frames(self) -> list[int]:
        """Sorted frames that have a sample."""
        return sorted(self.samples)

    def xy(self, frame: int) -> Optional[Vec2]:
        """Position on ``frame``, or None when the landmark is unknown there."""
        s = self.samples.get(frame)
        return None if s is None else (s.x, s.y)


@dataclass(frozen=True)
class ControlPoint:
    """A Bezier control point with relative tangents and a relative feather point.

    ``left``/``right``: tangent handles relative to the centre. ``feather``: the feather point
    relative to the centre ((0, 0) = no per-point feather). ``feather_left``/``feather_right``:
    the feather point's handles relative to the feather point (usually equal to the main ones).
    """

    x: float
    y: float
    left: Vec2 = ZERO2
    right: Vec2 = ZERO2
    feather: Vec2 = ZERO2
    feather_left: Optional[Vec2] = None
    feather_right: Optional[Vec2] = None

    @property
    def left_abs(self) -> Vec2:
        """Absolute position of the left (incoming) handle."""
        return (self.x + self.left[0], self.y + self.left[1])

    @property
    def right_abs(self) -> Vec2:
        """Absolute position of the right (outgoing) handle."""
        return (self.x + self.right[0], self.y + self.right[1])

    @property
    def feather_tangents(self) -> tuple[Vec2, Vec2]:
        """Feather handles relative to the feather point, defaulting to the main handles."""
        return (
            self.left if self.feather_left is None else self.feather_left,
            self.right if self.feather_right is None else self.feather_right,
        )


@dataclass(frozen=True)
class RotoShape:
    """A named Bezier shape keyed per frame; every key has the same number of points.

    ``layer`` is the layer path below Root (``("face", "eyes")``). ``feather`` is the shape-wide
    feather width in pixels (Nuke's feather slider), ``feather_falloff`` its falloff exponent.
    """

    name: str
    closed: bool
    keys: Mapping[int, Tuple[ControlPoint, ...]]
    layer: Tuple[str, ...] = ()
    feather: float = 0.0
    feather_falloff: float = 1.0

    @property
    def key_frames(self) -> list[int]:
        """Sorted key frames."""
        return sorted(self.keys)

    @property
    def point_count(self) -> int:
        """Control points per key (0 for a shape without keys)."""
        for pts in self.keys.values():
            return len(pts)
        return 0

    def points_array(self, frame: int) -> np.ndarray:
        """Key ``frame`` as an array of [x, y, lx, ly, rx, ry, fx, fy] (relative handles).

        Shape: (N, 8) float64, _img space.
        """
        return np.array(
            [(p.x, p.y, *p.left, *p.right, *p.feather) for p in self.keys[frame]], dtype=np.float64
        ).reshape(-1, 8)


def shape_from_arrays(
    name: str,
    closed: bool,
    arrays: Mapping[int, np.ndarray],
    *,
    layer: Sequence[str] = (),
    feather: float = 0.0,
    feather_falloff: float = 1.0,
) -> RotoShape:
    """Build a RotoShape from per-frame (N, 8) arrays laid out as in ``points_array``."""
    keys: Dict[int, Tuple[ControlPoint, ...]] = {}
    for frame, arr in arrays.items():
        a = np.asarray(arr, dtype=np.float64).reshape(-1, 8)
        keys[int(frame)] = tuple(
            ControlPoint(
                float(r[0]),
                float(r[1]),
                (float(r[2]), float(r[3])),
                (float(r[4]), float(r[5])),
                (float(r[6]), float(r[7])),
            )
            for r in a
        )
    return RotoShape(name, closed, keys, tuple(layer), feather, feather_falloff)


@dataclass(frozen=True)
class Seam:
    """A print seam: the ordered landmarks its split line passes through."""

    name: str
    landmarks: Tuple[str, ...]


@dataclass(frozen=True)
class ShapeSpec:
    """What a character's rig knows about one of its shapes before any frame is fitted."""

    name: str
    closed: bool
    layer: Tuple[str, ...] = ()
    point_count: int = 0


@dataclass(frozen=True)
class Character:
    """A puppet: its named landmarks, seams as landmark polylines, and its roto shapes."""

    name: str
    landmarks: Tuple[str, ...]
    seams: Tuple[Seam, ...] = ()
    shapes: Tuple[ShapeSpec, ...] = ()


@dataclass(frozen=True)
class Annotation:
    """Ground truth for training: a shot (or still frames), landmark tracks and roto shapes.

    ``images`` maps frame -> image path when the frames are not a plate sequence (LAIKA layout).
    ``frame_shapes`` holds shapes that cannot be one animated ``RotoShape`` because the artist's
    point count changes between frames (real roto): frame -> single-key shapes on that frame.
    A shape name is either in ``shapes`` or in ``frame_shapes``, never both.
    """

    source: str
    shot: Optional[Shot]
    tracks: Tuple[LandmarkTrack, ...]
    shapes: Tuple[RotoShape, ...]
    images: Mapping[int, str] = field(default_factory=dict)
    image_size: Optional[Tuple[int, int]] = None
    frame_shapes: Mapping[int, Tuple[RotoShape, ...]] = field(default_factory=dict)

    @property
    def frames(self) -> list[int]:
        """Frames on which any landmark or shape is known."""
        seen: set[int] = set()
        for t in self.tracks:
            seen.update(t.samples)
        for s in self.shapes:
            seen.update(s.keys)
        seen.update(f for f, shapes in self.frame_shapes.items() if shapes)
        return sorted(seen)

    def landmark_names(self) -> list[str]:
        """Track names in file order."""
        return [t.name for t in self.tracks]


def tracks_to_array(
    tracks: Iterable[LandmarkTrack], names: Sequence[str], frames: Sequence[int]
) -> np.ndarray:
    """Stack tracks into an array with NaN where a landmark is unknown.

    Shape: (F, L, 3) float64 [x, y, confidence], _img space.
    """
    by_name = {t.name: t for t in tracks}
    out = np.full((len(frames), len(names), 3), np.nan)
    for j, name in enumerate(names):
        t = by_name.get(name)
        if t is None:
            continue
        for i, f in enumerate(frames):
            s = t.samples.get(f)
            if s is not None:
                out[i, j] = (s.x, s.y, s.confidence)
    return out
