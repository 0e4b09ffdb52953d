"""Flow fields between neighbouring frames (DIS optical flow or motion vectors), sampled at points.

Motion2Roto and the box tracker ask a ``FlowProvider`` for the displacement field from one
frame to its neighbour and sample it where they need it. Fields are kept at the resolution
they were computed at (DIS runs at a reduced working resolution) and scaled to plate pixels
only at the sampled points, so a 2K shot never holds full-resolution fields.

Coordinates are the project convention (``_img``: origin at the top-left corner, y down, pixel
centres at +0.5). With a corner origin, plate and working coordinates differ by a pure scale.
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Protocol, Tuple

import cv2
import numpy as np

from seamroto.errors import ShapeError
from seamroto.flow import DIS_PRESETS, dense_flow, to_gray_u8

logger = logging.getLogger(__name__)

PIXEL_CENTRE = 0.5
#: DIS runs on frames no wider than this (2K plates at 1/2); roto-level motion is smooth there.
FLOW_WORKING_WIDTH = 1024
DEFAULT_PRESET = "fast"
#: Flow fields kept for the second (backward) pass instead of being computed again.
FLOW_CACHE_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class FlowField:
    """Displacements from one frame to a neighbour, stored at a working resolution.

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
        inside = np.isfinite(x) & np.isfinite(y)
        inside &= (x >= -PIXEL_CENTRE) & (x <= w - PIXEL_CENTRE) & (y >= -PIXEL_CENTRE) & (y <= h - PIXEL_CENTRE)
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
        d = top * (1.0 - fy) + bottom * fy
        out[inside] = d / np.array([sx, sy])
        return out


class FlowProvider(Protocol):
    """Where motion comes from: ``flow(src, dst)`` for neighbouring frames (``dst = src ± 1``)."""

    def flow(self, src: int, dst: int) -> FlowField:
        """The field that carries frame ``src`` onto frame ``dst``."""


def working_scale(width: int, max_width: int = FLOW_WORKING_WIDTH) -> float:
    """Scale of the working resolution for a plate ``width`` px wide (1 for small plates)."""
    return min(1.0, max_width / float(max(width, 1)))


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
    """DIS optical flow between grey working frames, with a byte-bounded cache.

    Both passes of Motion2Roto (forward, then backward) need the same two fields per frame
    pair; the cache keeps them so each field is computed once while memory stays bounded.
    """

    def __init__(
        self,
        frames: Mapping[int, np.ndarray],
        plate_size: Tuple[int, int],
        *,
        preset: str = DEFAULT_PRESET,
        cache_bytes: int = FLOW_CACHE_BYTES,
    ) -> None:
        """Wrap grey working frames.

        Args:
            frames: frame -> grey uint8 working frame (``working_gray``), all the same size.
            plate_size: (width, height) of the plates, to scale working pixels to plate pixels.
            preset: DIS preset (``flow.DIS_PRESETS``).
            cache_bytes: memory the cache may hold.

        Raises:
            ValueError: an unknown preset.
        """
        if preset not in DIS_PRESETS:
            raise ValueError(f"unknown DIS preset {preset!r}; use one of {sorted(DIS_PRESETS)}")
        self._frames = frames
        self._preset = preset
        self._cache: collections.OrderedDict[Tuple[int, int], FlowField] = collections.OrderedDict()
        self._cache_bytes = cache_bytes
        self._held = 0
        self.computed = 0
        first = next(iter(frames.values()), None)
        if first is None:
            self._scale = (1.0, 1.0)
        else:
            h, w = first.shape[:2]
            self._scale = (w / float(plate_size[0]), h / float(plate_size[1]))

    def flow(self, src: int, dst: int) -> FlowField:
        """DIS flow from ``src`` to ``dst`` (cached)."""
        key = (src, dst)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        field = FlowField(dense_flow(self._frames[src], self._frames[dst], 1.0, self._preset), self._scale)
        self.computed += 1
        self._cache[key] = field
        self._held += field.nbytes
        while self._held > self._cache_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._held -= old.nbytes
        return field


def invert_field(field: FlowField, iterations: int = 6) -> FlowField:
    """The backward field of a forward one: ``q -> p`` with ``p + F(p) = q``, by fixed point.

    Used when motion vectors hold only forward vectors (``motion.u/v``). Occluded regions
    have no true inverse; there the iteration settles on a neighbour's motion, and
    Motion2Roto cannot check the round trip (it warns about it).

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


class CachedFields:
    """A small LRU of per-frame items (decoded motion-vector frames), by frame number."""

    def __init__(self, size: int) -> None:
        """Keep at most ``size`` items."""
        self._size = size
        self._items: collections.OrderedDict[Tuple[int, str], FlowField] = collections.OrderedDict()

    def get(self, key: Tuple[int, str]) -> Optional[FlowField]:
        """The cached item, or None."""
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: Tuple[int, str], item: FlowField) -> None:
        """Store an item, dropping the least recently used one beyond ``size``."""
        self._items[key] = item
        while len(self._items) > self._size:
            self._items.popitem(last=False)


def as_frames(images: Mapping[int, np.ndarray], scale: float) -> Dict[int, np.ndarray]:
    """Grey working frames of in-memory display-referred images (tests, benchmarks)."""
    return {f: working_gray(img, scale) for f, img in images.items()}
