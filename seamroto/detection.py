"""Per-frame detections of a shot in one streaming pass: plate -> face box -> landmarks -> LK flow.

Why streaming: decoding a 2K EXR costs about as much as everything else a frame needs, so each
frame is searched, detected and flowed against its predecessor while the next one decodes in
the background (``PlateSequence.iter_frames``), and no full plate is kept. The face search's
shot-wide Viterbi pass can only run at the end, so landmarks start from a provisional box (the
frame's best face candidate, else the previous frame's landmarks); frames where the final box
disagrees are read and detected again, which on a normal shot is none of them. Landmark
detection re-crops on its own landmarks, so a provisional box that is merely close gives the
same points.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np

from seamroto.errors import CancelledError
from seamroto.face import FaceSearch, box_from_landmarks, iou
from seamroto.flow import FlowBuilder, PointFlow, flow_pair, pair_region
from seamroto.progress import Progress
from seamroto.rigtrain import FACE_SEARCH_DOWNSCALE

logger = logging.getLogger(__name__)

FLOW_MARGIN = 0.35  # region around the landmarks' box kept in grey for optical flow
REDETECT_IOU = 0.5  # final face box vs the provisional one: below this, detect the frame again
PREFETCH = 2  # frames decoded ahead in the background
DECODE_WORKERS = 2  # plates decoded side by side
DECODE_CORES = 1  # cores left to the plate decoder while detecting
SHIFT_REPLACEMENTS = True  # refiner test-time shifts for replacement-piece landmarks
LANDMARK_PASSES = 1  # re-crops on the previous pass's landmarks (see predict_landmarks)

Box = Tuple[float, float, float, float]
Convert = Callable[[np.ndarray], np.ndarray]


def inference_threads() -> int:
    """Inference threads while a shot streams: every core but one, which decodes the plates.

    Why: OpenVINO's workers spin while they wait; sharing the decoder's core with them cost
    about 10% more CPU for the same shot than leaving it alone (2 cores, 48 2K frames).
    """
    from seamroto.models import machine_threads

    return max(1, machine_threads() - DECODE_CORES)


def memory_bytes(frames: int, width: int, height: int) -> int:
    """Peak bytes one shot's detection holds, for planning how many shots share a machine.

    The float32 plates in flight, plus a grey region per frame (at most the whole frame; about
    a quarter of it for a face filling half the height).
    """
    in_flight = (PREFETCH + 2) * width * height * 3 * 4
    return in_flight + frames * width * height


@dataclass
class GrayRegion:
    """The grey region of one frame LK needs (the rest of the frame is never looked at)."""

    origin: Tuple[int, int]
    pixels: np.ndarray  # (h, w) uint8

    def crop(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """The frame's grey in (x0, y0)-(x1, y1), black outside the region held."""
        out = np.zeros((y1 - y0, x1 - x0), np.uint8)
        ox, oy = self.origin
        h, w = self.pixels.shape
        sx0, sy0 = max(x0, ox), max(y0, oy)
        sx1, sy1 = min(x1, ox + w), min(y1, oy + h)
        if sx1 > sx0 and sy1 > sy0:
            out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = self.pixels[sy0 - oy : sy1 - oy, sx0 - ox : sx1 - ox]
        return out


@dataclass(frozen=True)
class ShotDetections:
    """Everything fusion needs from a shot's frames.

    Attributes:
        frames: frame numbers in shot order.
        points: per-frame landmark detections, NaN where none. Shape: (F, L, 2) float64, _img.
        conf: the detector's confidence. Shape: (F, L) float32 in [0, 1].
        forward: LK motion from each frame to the next, from that frame's detections.
        backward: LK motion from each frame to the previous one.
        face_flags: frame -> why its face box needs review (lost, cut by the edge, weak).
        face_absent: frames without a face (no landmarks at all).
        face_boxes: frame -> the landmarks' bounding box (x, y, w, h), _img px.
        timings: seconds per stage ("decode" is time spent waiting for plates).
        grays: per frame, the face region's grey the flow was measured on (None without a
            face); the replacement pieces are snapped onto it.
    """

    frames: Tuple[int, ...]
    points: np.ndarray
    conf: np.ndarray
    forward: PointFlow
    backward: PointFlow
    face_flags: Dict[int, str]
    face_absent: Tuple[int, ...]
    face_boxes: Dict[int, Box]
    timings: Dict[str, float]
    grays: Tuple[Optional[GrayRegion], ...] = ()


def flow_gray(image_lin: np.ndarray, box: Box, gray: Callable[[np.ndarray], np.ndarray]) -> GrayRegion:
    """Grey uint8 (``gray``: plate pixels -> model-space grey) of the region around a face box."""
    h, w = image_lin.shape[:2]
    if not np.all(np.isfinite(box)):
        return GrayRegion((0, 0), np.zeros((0, 0), np.uint8))
    x, y, bw, bh = box
    x0, y0 = int(max(0, x - FLOW_MARGIN * bw)), int(max(0, y - FLOW_MARGIN * bh))
    x1, y1 = int(min(w, x + bw * (1 + FLOW_MARGIN))), int(min(h, y + bh * (1 + FLOW_MARGIN)))
    if x1 <= x0 or y1 <= y0:
        return GrayRegion((0, 0), np.zeros((0, 0), np.uint8))
    return GrayRegion((x0, y0), gray(image_lin[y0:y1, x0:x1]))


class _Timer:
    """Accumulates seconds per stage name."""

    def __init__(self) -> None:
        self.seconds: Dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._t
        self._t = now


class _ShotDetector:
    """State of one streaming pass; see ``detect_shot``."""

    def __init__(self, seq: Any, character: Any, colourspace: str, skip: Optional[np.ndarray]) -> None:
        from seamroto.colour import model_gray_u8, to_model_space

        self.seq, self.character = seq, character
        self.convert: Convert = lambda img: to_model_space(img, colourspace)
        self.gray: Convert = lambda img: model_gray_u8(img, colourspace)
        self.frames = list(seq.frames)
        self.size = (int(seq.width), int(seq.height))
        n, names = len(self.frames), character.model.landmark_names
        self.keep = np.ones(len(names), bool) if skip is None else ~np.asarray(skip, bool)
        # replacement pieces cannot be smoothed over time: average their detection instead
        self.shifted: Optional[np.ndarray] = None if skip is None or not SHIFT_REPLACEMENTS else ~self.keep
        self.points = np.full((n, len(names), 2), np.nan)
        self.conf = np.zeros((n, len(names)), np.float32)
        self.seeds: List[Optional[Box]] = [None] * n
        self.lm_boxes: List[Any] = [None] * n
        self.grays: List[Optional[GrayRegion]] = [None] * n
        self.fwd, self.bwd = FlowBuilder(n, len(names)), FlowBuilder(n, len(names))
        self.timer = _Timer()

    def detect(self, i: int, img: np.ndarray, seed: Box, passes: int = LANDMARK_PASSES) -> None:
        """Landmarks and the flow region of frame index ``i`` from a face box guess.

        ``passes`` re-crops on the landmarks found; 0 when ``seed`` already is a landmark box
        (the previous frame's).
        """
        from seamroto.landmarks import predict_landmarks

        pts, c = predict_landmarks(
            self.character.model, img, np.array([seed]), convert=self.convert, refine=passes, shifted=self.shifted
        )
        self.points[i], self.conf[i], self.seeds[i] = pts[0], c[0], seed
        self.lm_boxes[i] = box_from_landmarks(pts[0], image_size=self.size)
        self.timer.lap("landmarks")
        self.grays[i] = flow_gray(img, self.lm_boxes[i].as_tuple(), self.gray)
        self.timer.lap("flow_prep")

    def drop(self, i: int) -> None:
        """Frame index ``i`` has no face: no detections and no flow into or out of it."""
        self.points[i], self.conf[i] = np.nan, 0.0
        self.seeds[i] = self.lm_boxes[i] = self.grays[i] = None
        for row in (i - 1, i):
            if 0 <= row < len(self.frames):
                self.fwd.clear(row)
        for row in (i, i + 1):
            if 0 <= row < len(self.frames):
                self.bwd.clear(row)

    def flow(self, i: int) -> None:
        """LK between frame indices ``i`` and ``i + 1``, both ways, from each one's detections."""
        a, b = self.grays[i], self.grays[i + 1]
        if a is None or b is None or a.pixels.size == 0 or b.pixels.size == 0:
            self.fwd.clear(i)
            self.bwd.clear(i + 1)
            return
        keep = self.keep[:, None]
        pa, pb = np.where(keep, self.points[i], np.nan), np.where(keep, self.points[i + 1], np.nan)
        region = pair_region(pa, pb, (self.size[1], self.size[0]))
        if region is None:
            self.fwd.clear(i)
            self.bwd.clear(i + 1)
            return
        fwd, bwd = flow_pair(a.crop(*region), b.crop(*region), pa, pb, origin=region[:2])
        self.fwd.set(i, fwd)
        self.bwd.set(i + 1, bwd)
        self.timer.lap("flow")


def detect_shot(
    seq: Any,
    character: Any,
    colourspace: str,
    progress: Progress,
    *,
    skip: Optional[np.ndarray] = None,
) -> ShotDetections:
    """Decode every frame once, find the face, detect landmarks and measure LK flow.

    Args:
        seq: a ``seamroto.plates.PlateSequence``.
        character: a loaded ``seamroto.pipeline.Character``.
        colourspace: the plates' OCIO colour space.
        progress: polled between frames; the pass counts as one unit per frame.
        skip: landmarks LK must not follow (replacement pieces). Shape: (L,) bool.

    Returns:
        The shot's detections, flow and face flags.

    Raises:
        CancelledError: when ``progress`` was cancelled.
        PlateReadError: for a frame that cannot be read.
    """
    det = _ShotDetector(seq, character, colourspace, skip)
    scale = FACE_SEARCH_DOWNSCALE
    train_w = character.info.training_width or seq.width
    # The face model was learned on quarter-res frames too; only a plate size change rescales it.
    face_model = dataclasses.replace(
        character.face_model, box_width_px=character.face_model.box_width_px * (seq.width / train_w)
    )
    search = FaceSearch(face_model)
    total = len(det.frames)
    small_size = (seq.width // scale, seq.height // scale)

    def prepare(img: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        # runs in the decode thread: the face search's working copy
        return img, det.convert(cv2.resize(img, small_size, interpolation=cv2.INTER_AREA))

    previous: Optional[Box] = None
    for i, (frame, (img, small)) in enumerate(seq.iter_prepared(prepare, prefetch=PREFETCH, workers=DECODE_WORKERS)):
        det.timer.lap("decode")
        _check(progress, frame)
        progress.update(i, total, f"detecting, frame {frame}")
        guess = search.add(frame, small)
        det.timer.lap("face")
        found = None if guess is None else (guess[0] * scale, guess[1] * scale, guess[2] * scale, guess[3] * scale)
        if previous is not None and (found is None or iou(found, previous) >= REDETECT_IOU):
            det.detect(i, img, previous, passes=0)
        elif found is not None:
            det.detect(i, img, found)
        else:
            continue
        box = det.lm_boxes[i]
        previous = box.as_tuple() if box.found else None
        if i > 0:
            det.flow(i - 1)
    located = search.finish()
    det.timer.lap("face")
    return _finish(det, located, progress)


def _finish(det: _ShotDetector, located: Dict[int, Any], progress: Progress) -> ShotDetections:
    """Apply the final face boxes: drop faceless frames, re-detect the ones seeded wrongly."""
    scale = FACE_SEARCH_DOWNSCALE
    flags: Dict[int, str] = {}
    absent: List[int] = []
    redo: List[Tuple[int, Box]] = []
    for i, frame in enumerate(det.frames):
        fb = located.get(frame)
        if fb is None or not fb.found:
            absent.append(frame)
            flags[frame] = fb.reason if fb is not None else "no face found"
            det.drop(i)
            continue
        if not fb.ok:
            flags[frame] = fb.reason
        final = (fb.x * scale, fb.y * scale, fb.w * scale, fb.h * scale)
        seed = det.seeds[i]
        if seed is None or iou(seed, final) < REDETECT_IOU:
            redo.append((i, final))
    if redo:
        logger.info("detecting %d frame(s) again from the shot's face track", len(redo))
    for n, (i, final) in enumerate(redo):
        frame = det.frames[i]
        _check(progress, frame)
        progress.update(n, len(redo), f"detecting frame {frame} again")
        img = det.seq.read(frame)
        det.timer.lap("decode")
        det.detect(i, img, final)
    pairs = {j for k, _ in redo for j in (k - 1, k) if 0 <= j < len(det.frames) - 1}
    for j in sorted(pairs):
        det.flow(j)
    boxes: Dict[int, Box] = {}
    for i, frame in enumerate(det.frames):
        box = det.lm_boxes[i]
        if box is None or frame in absent:
            continue
        boxes[frame] = box.as_tuple()
        if box.status != "ok" and frame not in flags:
            flags[frame] = box.reason
    return ShotDetections(
        tuple(det.frames),
        det.points,
        det.conf,
        det.fwd.build(),
        det.bwd.build(),
        flags,
        tuple(absent),
        boxes,
        det.timer.seconds,
        tuple(det.grays),
    )


def _check(progress: Progress, frame: int) -> None:
    if progress.cancelled:
        raise CancelledError("tracking cancelled", frame=frame)
