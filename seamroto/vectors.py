"""Motion-vector EXR sequences (Nuke VectorGenerator / ScanlineRender style) as a flow provider.

Nuke writes a frame's motion as channel pairs in pixels: ``forward.u/forward.v`` (to the next
frame) and ``backward.u/backward.v`` (to the previous one); renders often carry only a forward
``motion.u/motion.v`` layer. Nuke's ``v`` points up (its y axis), so it changes sign here, once,
with ``coords.dy_flip``; ``u`` is unchanged. Frame ``f``'s forward field carries ``f`` onto
``f + 1`` and its backward field ``f`` onto ``f - 1``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import OpenImageIO as oiio

from seamroto.coords import dy_flip
from seamroto.errors import MotionVectorError, PlateNotFoundError, PlateReadError
from seamroto.flowfield import FLOW_CACHE_BYTES, FieldCache, FlowField, composed_flow, invert_field
from seamroto.plates import check_sequence, expand_pattern, scan_sequence

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

#: Channel pairs read as forward vectors, in order of preference (names compared lower case).
FORWARD_CHANNELS: Tuple[Tuple[str, str], ...] = (("forward.u", "forward.v"), ("motion.u", "motion.v"))
BACKWARD_CHANNELS: Tuple[Tuple[str, str], ...] = (("backward.u", "backward.v"),)
#: Channels listed in an error message.
CHANNELS_SHOWN = 24
#: Decoded vector frames kept (each 2K frame holds two 17 MB fields).
DECODED_FRAMES = 4


@dataclass(frozen=True)
class VectorLayout:
    """Where the vectors are in a file: channel indices of forward and (optional) backward u, v."""

    forward: Tuple[int, int]
    backward: Optional[Tuple[int, int]]
    names: Tuple[str, ...]

    @property
    def has_backward(self) -> bool:
        """True when the file holds backward vectors (else they are inverted from forward)."""
        return self.backward is not None


def find_layout(channel_names: Sequence[str], path: str = "", frame: Optional[int] = None) -> VectorLayout:
    """Locate the forward/backward vector channels among a file's channel names.

    Raises:
        MotionVectorError: no forward pair; the message lists the channels found.
    """
    lower = [n.lower() for n in channel_names]

    def pair(options: Sequence[Tuple[str, str]]) -> Optional[Tuple[int, int]]:
        for u, v in options:
            if u in lower and v in lower:
                return lower.index(u), lower.index(v)
        return None

    forward = pair(FORWARD_CHANNELS)
    if forward is None:
        shown = ", ".join(channel_names[:CHANNELS_SHOWN]) or "none"
        if len(channel_names) > CHANNELS_SHOWN:
            shown += f", ... ({len(channel_names) - CHANNELS_SHOWN} more)"
        wanted = " or ".join("/".join(p) for p in FORWARD_CHANNELS)
        raise MotionVectorError(
            f"has no motion-vector channels: expected {wanted} (plus backward.u/backward.v), "
            f"found: {shown}. Render the vectors with VectorGenerator (or a ScanlineRender "
            "motion layer) into this file, or leave the vectors out to use optical flow.",
            path=path,
            frame=frame,
        )
    return VectorLayout(forward, pair(BACKWARD_CHANNELS), tuple(channel_names))


def _read_channels(path: str, frame: int) -> Tuple[np.ndarray, List[str]]:
    """Every channel of ``path`` over its display window. Shape: (H, W, C) float32."""
    if not os.path.isfile(path):
        raise PlateNotFoundError("the motion-vector file does not exist", path=path, frame=frame)
    buf = oiio.ImageBuf(path)
    if buf.has_error:
        raise PlateReadError(f"cannot read the motion vectors ({buf.geterror()})", path=path, frame=frame)
    spec = buf.spec()
    names = list(spec.channelnames)
    if buf.roi != buf.roi_full:
        buf = oiio.ImageBufAlgo.crop(buf, buf.roi_full)
    pixels = buf.get_pixels(oiio.FLOAT)
    if pixels is None or buf.has_error:
        raise PlateReadError(f"cannot decode the motion vectors ({buf.geterror()})", path=path, frame=frame)
    arr = np.asarray(pixels, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[..., None]
    return arr.reshape(arr.shape[0], arr.shape[1], -1), names


class MotionVectorSequence:
    """Motion vectors of a shot, one EXR per frame, as a ``FlowProvider`` in plate pixels.

    Vectors stored at another resolution than the plates (a proxy render) are resized and
    scaled to plate pixels.
    """

    def __init__(self, pattern: str, first: int, last: int, plate_size: Tuple[int, int], layout: VectorLayout):
        """Use ``open`` (it checks the files and channels)."""
        self.pattern = pattern
        self.first = first
        self.last = last
        self.plate_size = plate_size
        self.layout = layout
        self._fields_of: Dict[int, Dict[str, FlowField]] = {}
        self._cache = FieldCache(FLOW_CACHE_BYTES)

    @classmethod
    def open(
        cls, pattern: PathLike, first: int, last: int, plate_size: Tuple[int, int]
    ) -> MotionVectorSequence:
        """Check the sequence covers ``first..last`` and that its first file has vector channels.

        Args:
            pattern: Nuke frame pattern of the vector EXRs.
            first: first frame needed.
            last: last frame needed.
            plate_size: (width, height) of the plates.

        Raises:
            PlateNotFoundError, PlateGapError: files are missing.
            MotionVectorError: no vector channels (the message lists those found).
        """
        text = os.fspath(pattern)
        scan_sequence(text)
        check_sequence(text, first, last)
        path = expand_pattern(text, first)
        spec = oiio.ImageInput.open(path)
        if spec is None:
            raise PlateReadError(f"cannot open the motion vectors ({oiio.geterror()})", path=path, frame=first)
        try:
            names = list(spec.spec().channelnames)
        finally:
            spec.close()
        layout = find_layout(names, path, first)
        if not layout.has_backward:
            logger.warning(
                "%s has forward vectors only; backward motion is inverted from them and the "
                "forward-backward check is skipped",
                path,
            )
        return cls(text, first, last, plate_size, layout)

    def _fields(self, frame: int) -> Dict[str, FlowField]:
        """Forward (and backward) fields of one frame, in plate pixels, y down (last few kept)."""
        hit = self._fields_of.get(frame)
        if hit is not None:
            return hit
        path = expand_pattern(self.pattern, frame)
        pixels, names = _read_channels(path, frame)
        layout = find_layout(names, path, frame)
        fields: Dict[str, FlowField] = {"forward": self._field(pixels, layout.forward)}
        if layout.backward is not None:
            fields["backward"] = self._field(pixels, layout.backward)
        while len(self._fields_of) >= DECODED_FRAMES:
            self._fields_of.pop(next(iter(self._fields_of)))
        self._fields_of[frame] = fields
        return fields

    def _field(self, pixels: np.ndarray, channels: Tuple[int, int]) -> FlowField:
        u = pixels[..., channels[0]]
        v = dy_flip(1.0) * pixels[..., channels[1]]  # Nuke's v is up-positive
        vec = np.ascontiguousarray(np.stack([u, v], axis=-1), dtype=np.float32)
        vec = np.nan_to_num(vec, nan=0.0, posinf=0.0, neginf=0.0)
        h, w = vec.shape[:2]
        pw, ph = self.plate_size
        if (w, h) != (pw, ph):
            vec = np.asarray(cv2.resize(vec, (pw, ph), interpolation=cv2.INTER_LINEAR), dtype=np.float32)
            vec[..., 0] *= pw / float(w)
            vec[..., 1] *= ph / float(h)
        return FlowField(vec)

    def _adjacent(self, src: int, dst: int) -> FlowField:
        """The stored vectors between neighbours (backward ones inverted when absent)."""
        if dst == src + 1:
            return self._fields(src)["forward"]
        fields = self._fields(src)
        if "backward" in fields:
            return fields["backward"]
        hit = self._cache.get((src, dst))
        if hit is None:
            hit = self._cache.put((src, dst), invert_field(self._fields(dst)["forward"]))
        return hit

    def flow(self, src: int, dst: int) -> FlowField:
        """The field carrying ``src`` onto ``dst``, composed from neighbour vectors."""
        if src == dst:
            return FlowField(np.zeros((self.plate_size[1], self.plate_size[0], 2), np.float32))
        return composed_flow(self._cache, src, dst, self._adjacent)
