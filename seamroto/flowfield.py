"""Flow fields between frames (DIS optical flow or composed motion vectors), sampled at points.

Motion2Roto asks a ``FlowProvider`` for the field that carries one frame onto another (an
anchor onto a frame up to a dozen frames away) and samples it where it needs it. Fields stay
at the resolution they were computed at (DIS runs at a reduced working resolution) and are
scaled to plate pixels only at the sampled points, so a 2K shot never holds full-size fields.

Coordinates are the project convention (``_img``: origin at the top-left corner, y down, pixel
centres at +0.5). With a corner origin, plate and working coordinates differ by a pure scale.
"""

from __future__ import annotations

import collections
import logging
import math
from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Optional, Protocol, Sequence, Tuple

import cv2
import numpy as np

from seamroto.errors import CancelledError, ShapeError
from seamroto.flow import DIS_PRESETS, dense_flow, to_gray_u8
from seamroto.plates import PlateSequence
from seamroto.progress import Progress

logger = logging.getLogger(__name__)

PIXEL_CENTRE = 0.5
#: DIS runs on frames no wider than this (2K plates at 1/2).
FLOW_WORKING_WIDTH = 1024
#: DIS's finest pyramid level is chosen so that it is at least this wide. The presets stop two
#: levels above their input (256 px for a 1024 px frame); one level finer cuts Motion2Roto's
#: error on 2K synthetic shots by about a fifth (1.34 -> 1.06 px, benchmarks/bench_motion2roto.py)
#: for ~4x the time per field.
FLOW_DETAIL_WIDTH = 512
#: At that level "ultrafast" (no variational refinement) is as accurate as "fast" at half the
#: cost (about 26 vs 50 ms per 1024 px field on 2 cores).
DEFAULT_PRESET = "ultrafast"
#: ``finest_scale`` value that picks ``finest_scale_for`` the working width.
AUTO_FINEST_SCALE = -1
#: Fields kept in memory (each 2K shot field is 4.4 MB at the working resolution).
FLOW_CACHE_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class FlowField:
    """Displacements from one frame to another, stored at a working resolution.

    Attributes:
        vectors: displacement of each working pixel, in working pixels.
            Shape: (h, w, 2) float32, _img space (x right, y down).
        scale: (sx, sy) working pixels per plate pixel (1 for full resolution).
    """

    vectors: np.ndarray
    scale: Tuple[float, float] = (1.0, 1.0)

    @property
    def nbytes(self) -> int:
        """Memory held by the field."""
        return int(self.vectors.nbytes)

    def sample(self, points: np.ndarray) -> np.ndarray:
        """Bilinear displacement at plate positions, in plate pixels.

        Args:
            points: Shape: (N, 2), _img space, plate pixels.

        Returns:
            Shape: (N, 2) float64 plate pixels; NaN for points outside the frame or NaN.
        """
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise ShapeError("points", pts.shape, "(N, 2)")
        h, w = self.vectors.shape[:2]
        sx, sy = self.scale
        x = pts[:, 0] * sx - PIXEL_CENTRE
        y = pts[:, 1] * sy - PIXEL_CENTRE
        with np.errstate(invalid="ignore"):
            inside = (x >= -PIXEL_CENTRE) & (x <= w - PIXEL_CENTRE) & (y >= -PIXEL_CENTRE) & (y <= h - PIXEL_CENTRE)
        out = np.full((len(pts), 2), np.nan)
        if not inside.any():
            return out
        xc = np.clip(x[inside], 0.0, w - 1.0)
        yc = np.clip(y[inside], 0.0, h - 1.0)
        x0 = np.minimum(np.floor(xc).astype(np.intp), max(w - 2, 0))
        y0 = np.minimum(np.floor(yc).astype(np.intp), max(h - 2, 0))
        x1 = np.minimum(x0 + 1, w - 1)
        y1 = np.minimum(y0 + 1, h - 1)
        fx = (xc - x0)[:, None]
        fy = (yc - y0)[:, None]
        v = self.vectors
        top = v[y0, x0] * (1.0 - fx) + v[y0, x1] * fx
        bottom = v[y1, x0] * (1.0 - fx) + v[y1, x1] * fx
        out[inside] = (top * (1.0 - fy) + bottom * fy) / np.array([sx, sy])
        return out


class FlowProvider(Protocol):
    """Where motion comes from: ``flow(src, dst)`` carries frame ``src`` onto frame ``dst``."""

    def flow(self, src: int, dst: int) -> FlowField:
        """The field that carries frame ``src`` onto frame ``dst``."""


class FrameSource(Protocol):
    """The grey frames motion was measured on: ``gray(frame)`` at ``scale`` working px per plate px."""

    @property
    def scale(self) -> Tuple[float, float]:
        """(sx, sy) working pixels per plate pixel."""

    def gray(self, frame: int) -> np.ndarray:
        """The grey uint8 working frame. Shape: (h, w)."""


class FieldCache:
    """Least-recently-used fields by (src, dst), bounded in bytes (one field always fits)."""

    def __init__(self, max_bytes: int = FLOW_CACHE_BYTES) -> None:
        """Hold at most ``max_bytes`` of fields."""
        self._items: collections.OrderedDict[Tuple[int, int], FlowField] = collections.OrderedDict()
        self._max = max_bytes
        self._held = 0

    def get(self, key: Tuple[int, int]) -> Optional[FlowField]:
        """The cached field, or None."""
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: Tuple[int, int], item: FlowField) -> FlowField:
        """Store a field (dropping the oldest beyond the budget) and return it."""
        old = self._items.pop(key, None)
        if old is not None:
            self._held -= old.nbytes
        self._items[key] = item
        self._held += item.nbytes
        while self._held > self._max and len(self._items) > 1:
            _, dropped = self._items.popitem(last=False)
            self._held -= dropped.nbytes
        return item


def working_scale(width: int, max_width: int = FLOW_WORKING_WIDTH) -> float:
    """Scale of the working resolution for a plate ``width`` px wide (1 for small plates)."""
    return min(1.0, max_width / float(max(width, 1)))


def finest_scale_for(width: int, detail_width: int = FLOW_DETAIL_WIDTH) -> int:
    """DIS finest pyramid level for a working frame ``width`` px wide (0 = full working size)."""
    return max(0, int(math.floor(math.log2(max(width, 1) / float(detail_width)))))


def working_gray(image: np.ndarray, scale: float) -> np.ndarray:
    """A display-referred image as the grey frame flow works on, at ``scale``.

    Args:
        image: Shape: (H, W, 3) float in the model space (``colour.to_model_space``), or
            anything ``flow.to_gray_u8`` accepts.
        scale: working resolution as a fraction of the plate, in (0, 1].

    Returns:
        Shape: (round(H * scale), round(W * scale)) uint8.
    """
    gray = to_gray_u8(image)
    if scale >= 1.0:
        return gray
    h, w = gray.shape
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    return np.asarray(cv2.resize(gray, size, interpolation=cv2.INTER_AREA))


class DenseFlowProvider:
    """DIS optical flow between grey working frames, cached.

    Args:
        frames: frame -> grey uint8 working frame (``working_gray``), all the same size.
        plate_size: (width, height) of the plates, to scale working pixels to plate pixels.
        preset: DIS preset (``flow.DIS_PRESETS``).
        finest_scale: DIS's finest pyramid level; None keeps the preset's own
            (``flow.dense_flow``), ``AUTO_FINEST_SCALE`` picks ``finest_scale_for`` the
            working width.
        cache_bytes: memory the cache may hold.

    Raises:
        ValueError: an unknown preset.
    """

    def __init__(
        self,
        frames: Mapping[int, np.ndarray],
        plate_size: Tuple[int, int],
        *,
        preset: str = DEFAULT_PRESET,
        finest_scale: Optional[int] = AUTO_FINEST_SCALE,
        cache_bytes: int = FLOW_CACHE_BYTES,
    ) -> None:
        """Wrap the working frames (see the class docstring)."""
        if preset not in DIS_PRESETS:
            raise ValueError(f"unknown DIS preset {preset!r}; use one of {sorted(DIS_PRESETS)}")
        self._frames = frames
        self.preset = preset
        self._cache = FieldCache(cache_bytes)
        self.computed = 0
        first = next(iter(frames.values()), None)
        h, w = (first.shape[:2] if first is not None else (plate_size[1], plate_size[0]))
        self.working_size = (int(w), int(h))
        self._scale = (w / float(plate_size[0]), h / float(plate_size[1]))
        self.finest_scale = finest_scale_for(w) if finest_scale == AUTO_FINEST_SCALE else finest_scale
        self._calc: Callable[[np.ndarray, np.ndarray], np.ndarray]
        if self.finest_scale is None:
            self._calc = lambda a, b: dense_flow(a, b, 1.0, preset)
        else:
            dis = cv2.DISOpticalFlow.create(DIS_PRESETS[preset])
            dis.setFinestScale(self.finest_scale)
            self._calc = lambda a, b: np.asarray(dis.calc(a, b, np.zeros(a.shape + (2,), np.float32)), np.float32)

    @property
    def scale(self) -> Tuple[float, float]:
        """(sx, sy) working pixels per plate pixel."""
        return self._scale

    def gray(self, frame: int) -> np.ndarray:
        """The grey working frame DIS reads (``FrameSource``)."""
        return self._frames[frame]

    def flow(self, src: int, dst: int) -> FlowField:
        """DIS flow from ``src`` to ``dst`` (cached)."""
        hit = self._cache.get((src, dst))
        if hit is not None:
            return hit
        self.computed += 1
        return self._cache.put((src, dst), FlowField(self._calc(self._frames[src], self._frames[dst]), self._scale))


def compose(first: FlowField, second: FlowField) -> FlowField:
    """The field of ``first`` followed by ``second``: ``a -> c (p) = a -> b (p) + b -> c (p + a -> b (p))``.

    Both fields must share their working resolution.
    """
    v1 = first.vectors
    h, w = v1.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    moved = cv2.remap(second.vectors, gx + v1[..., 0], gy + v1[..., 1], cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REPLICATE)
    return FlowField(np.asarray(v1 + moved, dtype=np.float32), first.scale)


def invert_field(field: FlowField, iterations: int = 6) -> FlowField:
    """The backward field of a forward one: ``q -> p`` with ``p + F(p) = q``, by fixed point.

    Used when motion vectors hold only forward vectors (``motion.u/v``). Occluded regions
    have no true inverse; there the iteration settles on a neighbour's motion.

    Shape: same as ``field.vectors``.
    """
    v = field.vectors
    h, w = v.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    inv = -v.copy()
    for _ in range(iterations):
        sampled = cv2.remap(v, gx + inv[..., 0], gy + inv[..., 1], cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
        inv = -np.asarray(sampled, dtype=np.float32)
    return FlowField(inv, field.scale)


def composed_flow(
    cache: FieldCache, src: int, dst: int, adjacent: Callable[[int, int], FlowField]
) -> FlowField:
    """A field between any two frames from fields between neighbours, reusing cached partials.

    Prepends or appends one neighbour step to a cached field when it can (a pass that moves
    one frame at a time from an anchor then costs one composition per frame).

    Args:
        cache: where partial fields are kept.
        src: frame carried.
        dst: frame it is carried onto.
        adjacent: ``adjacent(f, f ± 1)``, the field between neighbours.
    """
    if abs(dst - src) <= 1:
        return adjacent(src, dst)
    hit = cache.get((src, dst))
    if hit is not None:
        return hit
    s = 1 if dst > src else -1
    tail = cache.get((src + s, dst))
    if tail is not None:
        return cache.put((src, dst), compose(adjacent(src, src + s), tail))
    head = composed_flow(cache, src, dst - s, adjacent)
    cache.put((src, dst - s), head)
    return cache.put((src, dst), compose(head, adjacent(dst - s, dst)))


def read_working_frames(
    seq: PlateSequence,
    scale: float,
    *,
    frames: Optional[Sequence[int]] = None,
    progress: Optional[Progress] = None,
    total: Optional[int] = None,
) -> Dict[int, np.ndarray]:
    """Decode plates once into grey working frames (resized in the plate's own space, then encoded).

    Resizing before the colour conversion costs a quarter of the OCIO work at 1/2 scale, and
    averaging in scene-linear is the physically right way to shrink a plate.

    Args:
        seq: the plates.
        scale: working resolution as a fraction of the plate.
        frames: frames to read (default every frame of ``seq``).
        progress: told about each frame; cancelling raises ``CancelledError``.
        total: the total ``progress`` counts to (when reading is a part of a longer job).

    Returns:
        frame -> Shape: (h, w) uint8.

    Raises:
        PlateError: a frame is missing or cannot be decoded.
        CancelledError: ``progress`` was cancelled.
    """
    from seamroto.colour import to_model_space

    wanted = list(seq.frames if frames is None else frames)
    count = total if total is not None else len(wanted)
    out: Dict[int, np.ndarray] = {}
    for i, (frame, img) in enumerate(seq.iter_frames(wanted, prefetch=1)):
        if progress is not None and progress.cancelled:
            raise CancelledError("cancelled while reading the plates; nothing was written", frame=frame)
        if scale < 1.0:
            h, w = img.shape[:2]
            size = (max(8, round(w * scale)), max(8, round(h * scale)))
            img = np.asarray(cv2.resize(img, size, interpolation=cv2.INTER_AREA))
        out[frame] = to_gray_u8(to_model_space(img, seq.colourspace))
        if progress is not None:
            progress.update(i + 1, count, f"reading plates, frame {frame}")
    return out


def as_frames(images: Mapping[int, np.ndarray], scale: float) -> Dict[int, np.ndarray]:
    """Grey working frames of in-memory display-referred images (tests, benchmarks)."""
    return {f: working_gray(img, scale) for f, img in images.items()}
