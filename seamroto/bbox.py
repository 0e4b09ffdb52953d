"""Bounding-box tracker: key a box once, get it on every frame of the shot, as Nuke nodes.

For rigs, props, crowd puppets and face localisation. Each frame combines two cues:

* the box's motion from the key frame: Lucas-Kanade points spread over the key box (no
  feature, such as the irises, may hold most of them) are found on the frame *straight from
  the key* (started where the frame-to-frame motion puts them, flicker-normalised, kept when
  their round trip closes), and a robust similarity fit (RANSAC) moves the box centre and
  scales its size; measuring from the key means errors do not add up over a long shot, but
  this follows the box's content rather than its outline;
* each side of the box found again on its own, by normalised cross-correlation of a strip
  across that side on the key frame, searched around the motion's prediction: gain- and
  offset-invariant (stage-light flicker), anchored to the key, and it follows the silhouette
  the box was drawn around, including changes of width and height. A match far from the
  prediction is penalised, so a strong edge that does not move with the object (a prop behind
  the chin, ears at another depth) cannot take a side away.

The box is tracked both ways from its key frame. Frames where fewer than three sides are found
again keep the motion-only estimate and are flagged. Outputs: a Tracker4 with the four corners
and the centre as tracks, and a JSON result (schema ``SeamRotoBBox.1``).

Boxes are ``(x, y, w, h)`` in ``_img`` pixels (origin top-left corner, y down); a box given in
Nuke's ``(x, y, r, t)`` (y up) is converted once with ``coords``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from seamroto import __version__
from seamroto.coords import y_img_from_nuke
from seamroto.datamodel import LandmarkSample, LandmarkTrack
from seamroto.errors import BoxError, CancelledError, KeyRangeError, OutputExistsError, ProtocolError
from seamroto.fileio import staged_dir
from seamroto.flow import LKParams, track_points
from seamroto.flowfield import read_working_frames, working_scale
from seamroto.nk.writer import write_script, write_tracker
from seamroto.plates import PlateSequence
from seamroto.progress import NullProgress, Progress, StageProgress

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
Box = Tuple[float, float, float, float]

RESULT_SCHEMA = "SeamRotoBBox.1"
NK_NAME = "bbox.nk"
RESULT_NAME = "bbox.json"
COORDINATES = "_img: pixels, origin at the top-left corner, y down; boxes are [x, y, w, h]"
#: Track names of the Tracker4, in order (image top = Nuke top).
TRACK_NAMES = ("box_top_left", "box_top_right", "box_bottom_right", "box_bottom_left", "box_centre")
#: The tracker works on frames no wider than this.
BOX_WORKING_WIDTH = 1024
MIN_BOX_PX = 4.0
PIXEL_CENTRE = 0.5
#: Low-pass sigma per pixel of shrink before a strip is resampled (grain must not alias).
ANTIALIAS = 0.5
IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
LK_ITERATIONS = 30
LK_EPSILON = 0.01
#: LK crops are brought to this grey mean and spread (flicker compensation).
NORMALISED_MEAN = 128.0
NORMALISED_STD = 48.0


@dataclass(frozen=True)
class BoxParams:
    """Settings of the box tracker (distances in working pixels).

    Attributes:
        max_points: most LK points (corners found inside the box).
        point_quality: corner quality level relative to the box's best corner.
        point_spacing: minimum distance between points as a fraction of the box's short side
            (wide, so no single feature, such as the irises, holds most of the points).
        ransac_px: inlier distance of the similarity fits.
        min_points: fewest inlier points for a motion estimate.
        edge_margin: half-width of the strip across each side, as a fraction of the box size.
        edge_span: part of each side the strip covers (its corners are left out).
        edge_samples: samples across a strip (its resolution for matching).
        search: how far a side is searched from its predicted place, as a fraction of the size.
        min_score: correlation from which a side's match is trusted.
        min_sides: frames with fewer sides matched are flagged.
        side_free: how far (fraction of the size) a side may move from where the motion puts
            it before its match is penalised.
        side_sigma: how fast the penalty grows beyond that (fraction of the size per unit of
            correlation): a strong edge of the background (a prop behind the chin) or a part at
            another depth (ears) cannot pull a side far from the object's motion.
        lk: LK settings (flicker normalisation and round-trip check on by default).
    """

    max_points: int = 300
    point_quality: float = 0.005
    point_spacing: float = 0.1
    ransac_px: float = 1.0
    min_points: int = 6
    edge_margin: float = 0.1
    edge_span: Tuple[float, float] = (0.15, 0.85)
    edge_samples: int = 24
    search: float = 0.08
    min_score: float = 0.5
    min_sides: int = 3
    side_free: float = 0.03
    side_sigma: float = 0.01
    lk: LKParams = LKParams()


DEFAULT_PARAMS = BoxParams()


@dataclass(frozen=True)
class BoxTrack:
    """A tracked box on every frame, with how sure each frame is.

    Attributes:
        boxes: frame -> (x, y, w, h), _img pixels.
        confidence: frame -> fraction of the box's sides re-found from the key (1 on the key).
        flagged: frames where fewer than ``min_sides`` sides were re-found (motion-only, worth
            a look).
        key_frame: the frame the box was keyed on.
    """

    boxes: Mapping[int, Box]
    confidence: Mapping[int, float]
    flagged: Tuple[int, ...]
    key_frame: int


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes (0 when either is empty)."""
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def box_from_nuke(box_nuke: Sequence[float], height: float) -> Box:
    """A Nuke BBox_Knob value (x, y, r, t; origin bottom-left, y up) as an ``_img`` box."""
    x, y, r, t = (float(v) for v in box_nuke)
    top = y_img_from_nuke(max(y, t), height)
    return (min(x, r), top, abs(r - x), abs(t - y))


def check_box(box: Sequence[float], width: int, height: int, frame: Optional[int] = None) -> Box:
    """A finite box of at least ``MIN_BOX_PX`` that overlaps the frame.

    Raises:
        BoxError: says what is wrong with it.
    """
    if len(box) != 4 or not np.all(np.isfinite(np.asarray(box, dtype=np.float64))):
        raise BoxError(f"a box is four finite numbers x y w h, got {list(box)}", frame=frame)
    x, y, w, h = (float(v) for v in box)
    if w < MIN_BOX_PX or h < MIN_BOX_PX:
        raise BoxError(f"the box {w:g}x{h:g} px is too small; draw it at least {MIN_BOX_PX:g} px", frame=frame)
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise BoxError(
            f"the box ({x:g}, {y:g}, {w:g}, {h:g}) lies outside the {width}x{height} frame "
            "(image pixels, origin top-left, y down)",
            frame=frame,
        )
    return (x, y, w, h)


# -------------------------------------------------------------------- one step


def _corners(gray: np.ndarray, box: Box, params: BoxParams) -> np.ndarray:
    """Corner points inside the box (a grid when the box has no corners), _img coordinates."""
    h, w = gray.shape
    x0, y0 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
    x1, y1 = min(int(np.ceil(box[0] + box[2])), w), min(int(np.ceil(box[1] + box[3])), h)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return np.zeros((0, 2))
    spacing = max(2.0, params.point_spacing * min(box[2], box[3]))
    found = cv2.goodFeaturesToTrack(
        np.ascontiguousarray(gray[y0:y1, x0:x1]), params.max_points, params.point_quality, spacing
    )
    if found is None or len(found) < params.min_points:
        gx, gy = np.meshgrid(np.linspace(x0 + 1, x1 - 1, 8), np.linspace(y0 + 1, y1 - 1, 8))
        return np.column_stack([gx.ravel(), gy.ravel()]) + PIXEL_CENTRE
    return found.reshape(-1, 2).astype(np.float64) + (x0 + PIXEL_CENTRE, y0 + PIXEL_CENTRE)


def _similarity(src: np.ndarray, dst: np.ndarray, params: BoxParams) -> Tuple[Optional[np.ndarray], int]:
    """Robust similarity (rotation, uniform scale, shift) ``src -> dst`` and its inlier count."""
    if len(src) < params.min_points:
        return None, 0
    matrix, inliers = cv2.estimateAffinePartial2D(
        src.astype(np.float32), dst.astype(np.float32), method=cv2.RANSAC, ransacReprojThreshold=params.ransac_px
    )
    if matrix is None or inliers is None:
        return None, 0
    count = int(inliers.sum())
    if count < params.min_points:
        return None, count
    return np.asarray(matrix, dtype=np.float64), count


def _apply(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ matrix[:, :2].T + matrix[:, 2]


def _resampled(gray: np.ndarray, region: Box, size: Tuple[int, int]) -> np.ndarray:
    """``region`` (x, y, w, h) of ``gray`` resampled to ``size`` (w, h).

    The region is low-passed first so grain cannot alias; outside the frame reads as the
    nearest border pixel. Shape: (h, w) float32.
    """
    sx, sy = region[2] / size[0], region[3] / size[1]
    sigma = ANTIALIAS * max(sx, sy)
    pad = int(np.ceil(3.0 * sigma)) + 2
    h, w = gray.shape[:2]
    x0 = int(np.clip(np.floor(region[0]) - pad, 0, w - 1))
    y0 = int(np.clip(np.floor(region[1]) - pad, 0, h - 1))
    x1 = int(np.clip(np.ceil(region[0] + region[2]) + pad, x0 + 1, w))
    y1 = int(np.clip(np.ceil(region[1] + region[3]) + pad, y0 + 1, h))
    roi: np.ndarray = np.asarray(gray[y0:y1, x0:x1], np.float32)
    if sigma > ANTIALIAS:
        roi = np.asarray(cv2.GaussianBlur(roi, (0, 0), sigma))
    m = np.array([[sx, 0, region[0] + 0.5 * sx - 0.5 - x0], [0, sy, region[1] + 0.5 * sy - 0.5 - y0]], np.float32)
    out = cv2.warpAffine(roi, m, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(out, np.float32)


def _peak_1d(score: np.ndarray) -> Tuple[float, float]:
    """Best correlation along a line of scores and its sub-sample position (parabola fit)."""
    i = int(np.argmax(score))
    offset = 0.0
    if 0 < i < len(score) - 1:
        den = score[i - 1] - 2.0 * score[i] + score[i + 1]
        if den < 0:
            offset = float(np.clip(0.5 * (score[i - 1] - score[i + 1]) / den, -0.5, 0.5))
    return float(score[i]), i + offset


class _EdgeTemplates:
    """Strips across the key box's four sides, found again on later frames one side at a time.

    A box keyed around an object hugs its silhouette, so each side sits on an edge that moves
    with the object's outline; matching each side on its own follows changes of width and
    height a single similarity misses, and matching against the key frame cannot drift.
    Correlation is normalised (TM_CCOEFF_NORMED), so stage-light gain and offset drop out.
    """

    SIDES = ("left", "top", "right", "bottom")

    def __init__(self, gray: np.ndarray, box: Box, params: BoxParams) -> None:
        self.params = params
        self.strips = {side: _resampled(gray, self._region(box, side, 0.0), self._size(side, 0))
                       for side in self.SIDES}

    def _size(self, side: str, extra: int) -> Tuple[int, int]:
        n = self.params.edge_samples
        return (n + 2 * extra, 2 * n) if side in ("left", "right") else (2 * n, n + 2 * extra)

    def _region(self, box: Box, side: str, extra_px: float) -> Box:
        x, y, w, h = box
        m, (lo, hi) = self.params.edge_margin, self.params.edge_span
        if side in ("left", "right"):
            edge = x if side == "left" else x + w
            return (edge - m * w - extra_px, y + lo * h, 2 * m * w + 2 * extra_px, (hi - lo) * h)
        edge = y if side == "top" else y + h
        return (x + lo * w, edge - m * h - extra_px, (hi - lo) * w, 2 * m * h + 2 * extra_px)

    def refine(self, gray: np.ndarray, box: Box) -> Tuple[Box, int]:
        """Move each side of ``box`` to where its key strip matches best.

        Returns:
            The refined box and how many sides matched with at least ``min_score``.
        """
        x, y, w, h = box
        n, m = self.params.edge_samples, self.params.edge_margin
        sides = {"left": x, "top": y, "right": x + w, "bottom": y + h}
        matched = 0
        for side in self.SIDES:
            horizontal = side in ("left", "right")
            step = 2.0 * m * (w if horizontal else h) / n
            extra = max(1, int(np.ceil(self.params.search * (w if horizontal else h) / step)))
            search = _resampled(gray, self._region(box, side, extra * step), self._size(side, extra))
            found = cv2.matchTemplate(search, self.strips[side], cv2.TM_CCOEFF_NORMED)
            score = np.nan_to_num(found.reshape(-1), nan=-1.0)
            if self.params.side_sigma > 0:  # a match far from the motion's place pays for it
                size = w if horizontal else h
                shift = np.abs(np.arange(len(score)) - extra) * step / size
                over = np.maximum(shift - self.params.side_free, 0.0) / self.params.side_sigma
                score = score - 0.5 * over**2
            value, pos = _peak_1d(score)
            if value >= self.params.min_score:
                sides[side] += (pos - extra) * step
                matched += 1
        left, top, right, bottom = sides["left"], sides["top"], sides["right"], sides["bottom"]
        if right - left < MIN_BOX_PX or bottom - top < MIN_BOX_PX:
            return box, 0
        return (left, top, right - left, bottom - top), matched


def _step_similarity(prev: np.ndarray, nxt: np.ndarray, box: Box, params: BoxParams) -> Optional[np.ndarray]:
    """Similarity from one frame to the next, from LK points in the box (a guess for the key match)."""
    pts = _corners(prev, box, params)
    if len(pts) < params.min_points:
        return None
    tracked = track_points(prev, nxt, pts, params.lk)
    ok = tracked.reliability > 0
    matrix, _ = _similarity(pts[ok], tracked.points[ok], params)
    return matrix


def _key_similarity(
    key: np.ndarray, frame: np.ndarray, key_points: np.ndarray, guess: np.ndarray, params: BoxParams
) -> Optional[np.ndarray]:
    """Similarity from the key frame straight onto ``frame``: LK from the key, started at ``guess``.

    Measuring every frame from the key (not frame to frame) means errors do not add up.
    """
    if len(key_points) < params.min_points:
        return None
    found, ok = _lk_from(key, frame, key_points, _apply(guess, key_points), params)
    matrix, _ = _similarity(key_points[ok], found[ok], params)
    return matrix


def _compose(second: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The 2x3 affine ``second(first(p))``."""
    return np.column_stack([second[:, :2] @ first[:, :2], second[:, :2] @ first[:, 2] + second[:, 2]])


def _lk_from(
    key: np.ndarray, frame: np.ndarray, pts: np.ndarray, guess: np.ndarray, params: BoxParams
) -> Tuple[np.ndarray, np.ndarray]:
    """LK from the key frame straight onto ``frame`` (started at ``guess``), with a round trip back.

    Both frames are cropped around the points and brought to one grey mean and spread, so
    stage-light flicker does not bias LK. Coordinates are ``_img`` pixels of the full frame.

    Returns:
        ``(points, ok)``: Shape: (N, 2) and (N,) bool (the round trip closed within ``fb_max_error_px``).
    """
    lk = params.lk
    h, w = key.shape[:2]
    reach = lk.window_px * 2 ** lk.max_level
    both = np.vstack([pts, guess])
    lo = np.maximum(np.floor(both.min(axis=0) - reach), 0).astype(int)
    hi = np.minimum(np.ceil(both.max(axis=0) + reach), [w, h]).astype(int)
    crops = []
    for img in (key, frame):
        roi = np.ascontiguousarray(img[lo[1]:hi[1], lo[0]:hi[0]])
        mean, std = cv2.meanStdDev(roi)
        gain = NORMALISED_STD / max(float(std[0, 0]), 1.0)
        crops.append(cv2.convertScaleAbs(roi, alpha=gain, beta=NORMALISED_MEAN - gain * float(mean[0, 0])))
    origin = lo + PIXEL_CENTRE
    start = (pts - origin).astype(np.float32).reshape(-1, 1, 2)
    crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, LK_ITERATIONS, LK_EPSILON)
    size = (lk.window_px, lk.window_px)
    fwd, st_f, _ = cv2.calcOpticalFlowPyrLK(
        crops[0], crops[1], start, (guess - origin).astype(np.float32).reshape(-1, 1, 2), winSize=size,
        maxLevel=lk.max_level, criteria=crit, flags=cv2.OPTFLOW_USE_INITIAL_FLOW,
    )
    back, st_b, _ = cv2.calcOpticalFlowPyrLK(
        crops[1], crops[0], fwd, start.copy(), winSize=size, maxLevel=lk.max_level, criteria=crit,
        flags=cv2.OPTFLOW_USE_INITIAL_FLOW,
    )
    err = np.linalg.norm((back - start).reshape(-1, 2), axis=1)
    ok = (st_f.reshape(-1) == 1) & (st_b.reshape(-1) == 1) & (err <= lk.fb_max_error_px)
    return fwd.reshape(-1, 2).astype(np.float64) + origin, ok


def _box_of(matrix: np.ndarray, box: Box) -> Box:
    """The key box moved by a similarity: centre mapped, size scaled."""
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    cx, cy = _apply(matrix, np.array([[box[0] + box[2] / 2.0, box[1] + box[3] / 2.0]]))[0]
    w, h = box[2] * scale, box[3] * scale
    return (float(cx - w / 2.0), float(cy - h / 2.0), float(w), float(h))


# -------------------------------------------------------------------- tracking


def track_box_frames(
    frames: Mapping[int, np.ndarray],
    frame: int,
    box: Sequence[float],
    *,
    params: BoxParams = DEFAULT_PARAMS,
    progress: Optional[Progress] = None,
) -> BoxTrack:
    """Track a box through in-memory grey frames, both ways from its key frame.

    Args:
        frames: frame -> grey uint8 image (all the same size), consecutive frame numbers.
        frame: the key frame.
        box: (x, y, w, h) on the key frame, in the frames' pixels.
        params: tracker settings.
        progress: told about each frame; cancelling raises ``CancelledError``.

    Returns:
        Boxes on every frame of ``frames``, in the frames' pixels.

    Raises:
        KeyRangeError: ``frame`` is not one of ``frames``.
        BoxError: the box is empty or outside the frame.
        CancelledError: ``progress`` was cancelled.
    """
    sink = progress if progress is not None else NullProgress()
    order = sorted(frames)
    if frame not in frames:
        raise KeyRangeError(
            f"the key frame {frame} is outside the plate frames {order[0]}-{order[-1]}" if order else
            "there are no frames to track",
            frame=frame,
        )
    h, w = frames[frame].shape[:2]
    key_box = check_box(box, w, h, frame)
    edges = _EdgeTemplates(frames[frame], key_box, params)
    key_points = _corners(frames[frame], key_box, params)
    boxes: Dict[int, Box] = {frame: key_box}
    confidence: Dict[int, float] = {frame: 1.0}
    flagged: List[int] = []
    done = 0
    for direction in (+1, -1):
        current = key_box
        motion = IDENTITY  # key -> current frame
        f = frame
        while f + direction in frames:
            g = f + direction
            if sink.cancelled:
                raise CancelledError("box tracking was cancelled; nothing was written", frame=g)
            step = _step_similarity(frames[f], frames[g], current, params)
            guess = motion if step is None else _compose(step, motion)
            measured = _key_similarity(frames[frame], frames[g], key_points, guess, params)
            motion = measured if measured is not None else guess
            current, matched = edges.refine(frames[g], _box_of(motion, key_box))
            if matched < params.min_sides:
                flagged.append(g)
            boxes[g] = current
            confidence[g] = matched / float(len(_EdgeTemplates.SIDES))
            f = g
            done += 1
            sink.update(done, len(order) - 1, f"box frame {g}")
    if flagged:
        logger.info("box tracker: %d frame(s) flagged (fewer than %d sides re-found)", len(flagged), params.min_sides)
    return BoxTrack(dict(sorted(boxes.items())), dict(sorted(confidence.items())), tuple(sorted(flagged)), frame)


def _scaled(track: BoxTrack, factor: Tuple[float, float]) -> BoxTrack:
    fx, fy = factor
    boxes = {f: (b[0] * fx, b[1] * fy, b[2] * fx, b[3] * fy) for f, b in track.boxes.items()}
    return BoxTrack(boxes, track.confidence, track.flagged, track.key_frame)


def track_plates(
    plates: Union[PathLike, PlateSequence],
    frame: int,
    box: Sequence[float],
    *,
    params: BoxParams = DEFAULT_PARAMS,
    progress: Optional[Progress] = None,
) -> Tuple[BoxTrack, PlateSequence]:
    """``track_box`` with the flags and confidences kept, and the plate sequence it read."""
    seq = plates if isinstance(plates, PlateSequence) else PlateSequence.open(plates)
    if not seq.first <= frame <= seq.last:
        raise KeyRangeError(
            f"the key frame {frame} is outside the plate frames {seq.first}-{seq.last}; key the box "
            "on a plate frame",
            path=seq.pattern,
            frame=frame,
        )
    key_box = check_box(box, seq.width, seq.height, frame)
    scale = working_scale(seq.width, BOX_WORKING_WIDTH)
    sink = progress if progress is not None else NullProgress()
    count = len(seq)
    grays = read_working_frames(seq, scale, progress=StageProgress(sink, 0, 2 * count), total=count)
    fx, fy = (grays[frame].shape[1] / seq.width, grays[frame].shape[0] / seq.height)
    small = (key_box[0] * fx, key_box[1] * fy, key_box[2] * fx, key_box[3] * fy)
    track = track_box_frames(grays, frame, small, params=params, progress=StageProgress(sink, count, 2 * count))
    full = _scaled(track, (1.0 / fx, 1.0 / fy))
    boxes = dict(full.boxes)
    boxes[frame] = key_box  # exactly as keyed
    return BoxTrack(boxes, full.confidence, full.flagged, frame), seq


def track_box(
    plates: Union[PathLike, PlateSequence],
    frame: int,
    box: Sequence[float],
    *,
    progress: Optional[Progress] = None,
    params: BoxParams = DEFAULT_PARAMS,
) -> Dict[int, Box]:
    """Track a box keyed on one frame through every frame of the plates, both ways.

    Args:
        plates: plate pattern in Nuke syntax, or an opened ``PlateSequence``.
        frame: the frame the box is keyed on.
        box: (x, y, w, h) on that frame, _img pixels.
        progress: told about each frame; cancelling raises ``CancelledError``.
        params: tracker settings.

    Returns:
        frame -> (x, y, w, h) for every plate frame (the key frame's box unchanged).

    Raises:
        KeyRangeError: ``frame`` is outside the plates.
        BoxError: the box is empty or outside the frame.
        PlateError: plates missing or unreadable.
        CancelledError: ``progress`` was cancelled.
    """
    track, _ = track_plates(plates, frame, box, params=params, progress=progress)
    return dict(track.boxes)


# -------------------------------------------------------------------- outputs


def box_tracks(boxes: Mapping[int, Box]) -> List[LandmarkTrack]:
    """Four corner tracks and the centre track of a box animation, ``TRACK_NAMES`` order."""
    corners: List[Dict[int, LandmarkSample]] = [{} for _ in TRACK_NAMES]
    for f, (x, y, w, h) in boxes.items():
        points = ((x, y), (x + w, y), (x + w, y + h), (x, y + h), (x + w / 2.0, y + h / 2.0))
        for samples, (px, py) in zip(corners, points):
            samples[f] = LandmarkSample(px, py)
    return [LandmarkTrack(name, samples) for name, samples in zip(TRACK_NAMES, corners)]


def result_document(track: BoxTrack, seq: PlateSequence, node_name: str) -> Dict[str, Any]:
    """The JSON result (schema ``SeamRotoBBox.1``)."""
    return {
        "schema": RESULT_SCHEMA,
        "seamroto_version": __version__,
        "coordinates": COORDINATES,
        "plates": seq.pattern,
        "first": seq.first,
        "last": seq.last,
        "width": seq.width,
        "height": seq.height,
        "key_frame": track.key_frame,
        "key_box": list(track.boxes[track.key_frame]),
        "node": node_name,
        "tracks": list(TRACK_NAMES),
        "boxes": {str(f): [round(v, 4) for v in b] for f, b in track.boxes.items()},
        "confidence": {str(f): round(c, 4) for f, c in track.confidence.items()},
        "flagged": list(track.flagged),
    }


def write_box_outputs(track: BoxTrack, seq: PlateSequence, out_dir: PathLike, node_name: str) -> Dict[str, Path]:
    """Write ``bbox.nk`` (one Tracker4) and ``bbox.json`` into the new folder ``out_dir``.

    Raises:
        OutputExistsError: ``out_dir`` exists.
    """
    target = Path(out_dir)
    if target.exists():
        raise OutputExistsError("the output folder exists already; pick a new one", path=str(target))
    nk = write_tracker(
        box_tracks(track.boxes), height=seq.height, width=seq.width, name=node_name, first=seq.first,
        last=seq.last,
    )
    with staged_dir(target) as tmp:
        (tmp / NK_NAME).write_text(write_script([nk]), encoding="utf-8")
        doc = result_document(track, seq, node_name)
        (tmp / RESULT_NAME).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    logger.info("box track written to %s (%d frames, %d flagged)", target, len(track.boxes), len(track.flagged))
    return {"nk": target / NK_NAME, "result": target / RESULT_NAME}


def bbox_command(args: Dict[str, Any], progress: Progress) -> Dict[str, Any]:
    """Protocol command ``bbox`` (the BBoxTracker node's Track button).

    Args (request): ``plate``, ``first``, ``last``, ``colourspace``, ``frame`` (key frame),
    ``box_nuke`` ([x, y, r, t] as a Nuke BBox_Knob holds it) or ``box`` ([x, y, w, h], _img),
    ``out_dir`` (must not exist), ``node_prefix``, ``node_version``.

    Returns:
        ``nk`` (paste-ready Tracker4), ``result`` (JSON), ``flagged_frames``.
    """
    for key in ("plate", "frame", "out_dir"):
        if args.get(key) in (None, ""):
            raise ProtocolError(f"bbox needs args.{key}", knob=key)
    seq = PlateSequence.open(
        str(args["plate"]), args.get("first"), args.get("last"), colourspace=args.get("colourspace") or None
    )
    if args.get("box_nuke") is not None:
        box = box_from_nuke(args["box_nuke"], seq.height)
    elif args.get("box") is not None:
        box = tuple(float(v) for v in args["box"])  # type: ignore[assignment]
    else:
        raise ProtocolError("bbox needs args.box_nuke (x, y, r, t) or args.box (x, y, w, h)", knob="box")
    if Path(str(args["out_dir"])).exists():
        raise OutputExistsError("the output folder exists already", path=str(args["out_dir"]))
    track, seq = track_plates(seq, int(args["frame"]), box, progress=progress)
    prefix = str(args.get("node_prefix") or "")
    name = f"{prefix}_box_v{int(args.get('node_version') or 1)}" if prefix else "BBoxTrack1"
    outputs: Dict[str, Any] = dict(write_box_outputs(track, seq, str(args["out_dir"]), name))
    outputs["flagged_frames"] = list(track.flagged)
    return outputs
