"""Face localisation: find and track one puppet's face box through a shot of full 2K frames.

Why this design: there is one known puppet per model and its face halves are printed, so a
per-character appearance model learned from the artists' annotated frames beats a generic face
detector (none works on puppets). The model is

* a template of the face *plus some context* (outline, hair, ears) in local-contrast-normalised
  grey, averaged over the training frames: the normalisation removes stage-light flicker (gain
  and offset, even slowly varying across the frame), and averaging over frames whose mouth
  piece differs fades the mouth out of the template, so replacement swaps barely move the score;
* a chroma histogram of face versus background pixels (r, g chromaticity, invariant to a
  global gain in both linear and power-law encoded spaces), as a second vote.

A frame is reduced to a working image in which the template is ``TEMPLATE_WIDTH_PX`` wide
(about 1/14 of full size for a 400 px face box), matched at a few scales, and its best local maxima
become candidates. A Viterbi pass over the whole shot then picks one candidate (or "lost") per
frame, trading score against motion, which is a search near the previous box plus full-frame
re-detection in one global step. The picked path is smoothed with the landmark fusion smoother
(robust, steps kept). Frames whose face is gone, or cut by the frame edge, are flagged with a
reason, never guessed.

Boxes are ``_img``: pixels, origin at the top-left corner, y down (``coords.py``).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sized
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from seamroto.errors import CancelledError, ModelSchemaError, ShapeError
from seamroto.fileio import atomic_write_text
from seamroto.fusion import FusionParams, fuse_tracks
from seamroto.progress import Progress

logger = logging.getLogger(__name__)

FACE_MODEL_SCHEMA = "SeamRotoFaceModel.1"
FACE_MODEL_FILE = "face_model.json"

#: Width of the template (face box plus context) in working pixels.
TEMPLATE_WIDTH_PX = 40
#: Context around the box on each side, as a fraction of the box size, inside the template.
CONTEXT = 0.2
#: Std of the Gaussian used for local contrast normalisation, in working pixels.
LCN_SIGMA_PX = 4.0
#: Variance floor of the normalisation (grey code values squared): flat areas stay flat.
LCN_FLOOR = 1e-4
#: Rows averaged per output row, at least, when a frame is reduced (see ``_resize``).
MIN_ROWS_AVERAGED = 3
#: Chroma histogram bins per axis (r and g chromaticity in [0, 1]).
COLOUR_BINS = 24
#: Pixels darker than this (sum of RGB code values) carry no usable chroma.
MIN_CHROMA_SUM = 0.06
#: Scales searched, relative to the model's median box width, and the ratio between steps.
SCALE_MIN = 0.5
SCALE_MAX = 2.0
SCALE_STEP = 1.12
#: While tracking, only this many scale steps either side of the last best one are searched,
#: and the full range every ``FULL_SEARCH_EVERY`` frames and after a weak frame.
TRACK_SCALE_STEPS = 1
FULL_SEARCH_EVERY = 12
PEAK_KERNEL = np.ones((3, 3), np.uint8)
#: Candidates kept per frame for the Viterbi pass, none overlapping another by this IoU.
CANDIDATES = 8
NMS_IOU = 0.5
#: Weight of the colour vote in the combined score (the rest is the template correlation).
COLOUR_WEIGHT = 0.25
#: Viterbi costs, in score units: motion cost per (box widths)^2, per (log scale)^2, and the
#: cost of switching between "found" and "lost". Motion costs are capped so a real jump
#: (re-detection) stays possible.
MOTION_COST = 0.25
SCALE_COST = 4.0
SWITCH_COST = 0.15
MAX_MOTION_COST = 0.3
#: A box side closer than this fraction of the box size to a frame border counts as cut.
EDGE_MARGIN = 0.01
#: Fallback thresholds when training gave too little to calibrate on.
DEFAULT_SCORE_OK = 0.45
DEFAULT_SCORE_LOST = 0.3
MIN_SCORE_LOST = 0.15
#: "ok" threshold: this fraction of the 10th percentile of the training faces' scores (which are
#: optimistic: measured at the true scale), and at least OK_MARGIN above "lost".
OK_FRACTION = 0.65
OK_MARGIN = 0.05
#: A frame whose match is below this fraction of the shot's typical confident face score (over
#: at least MIN_CONFIDENT_FRAMES frames) has no face: clutter, not a weak face.
SHOT_LOST_FRACTION = 0.8
MIN_CONFIDENT_FRAMES = 3
#: Smoothing of the picked box path (centre and size) through ``fusion.fuse_tracks``.
BOX_SMOOTHING = FusionParams(smoothing=1.0, acceleration_sigma_px=2.0, iterations=6)

STATUS_OK = "ok"
STATUS_LOST = "lost"
STATUS_EDGE = "edge"
STATUS_LOW = "low_score"

Box = Tuple[float, float, float, float]


class _Candidate(NamedTuple):
    """One possible face box on one frame (image px) and how well it matched."""

    x: float
    y: float
    w: float
    h: float
    score: float
    ncc: float
    scale_index: int


@dataclass(frozen=True)
class FaceBox:
    """The face box of one frame, and whether to trust it.

    Attributes:
        x, y, w, h: top-left corner and size in _img px; NaN when the face was not found.
        score: combined template/colour score (about 0-1; higher is better).
        status: "ok", "lost" (not found), "edge" (cut by the frame border) or "low_score".
        reason: human explanation when the status is not "ok", else "".
    """

    x: float
    y: float
    w: float
    h: float
    score: float
    status: str = STATUS_OK
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when the box can be used without review."""
        return self.status == STATUS_OK

    @property
    def found(self) -> bool:
        """True when there is a box at all (every status but "lost")."""
        return self.status != STATUS_LOST

    def as_tuple(self) -> Box:
        """(x, y, w, h)."""
        return (self.x, self.y, self.w, self.h)


@dataclass(frozen=True)
class FaceModel:
    """A per-character appearance model (JSON-safe through ``to_dict``/``from_dict``).

    Attributes:
        template: LCN grey template of box plus context, zero mean, unit norm.
            Shape: (th, tw) float32.
        colour_lut: log-likelihood ratio face/background per chroma bin.
            Shape: (COLOUR_BINS, COLOUR_BINS) float32, indexed [r_bin, g_bin].
        box_width_px: median training box width (image px), the centre of the scale search.
        aspect: median box height / width.
        context: context per side around the box inside the template (fraction of box size).
        face_colour: mean face probability inside training boxes (the colour vote's 1.0).
        score_ok: scores at or above this are trusted.
        score_lost: scores below this mean "no face".
        sample_count: training frames the model was learned from.
    """

    template: np.ndarray
    colour_lut: np.ndarray
    box_width_px: float
    aspect: float
    context: float = CONTEXT
    face_colour: float = 1.0
    score_ok: float = DEFAULT_SCORE_OK
    score_lost: float = DEFAULT_SCORE_LOST
    sample_count: int = 0

    def to_dict(self) -> Dict[str, Any]:
        """JSON-safe dict (floats and lists only), with a schema tag."""
        return {
            "schema": FACE_MODEL_SCHEMA,
            "template": np.round(self.template.astype(np.float64), 6).tolist(),
            "colour_lut": np.round(self.colour_lut.astype(np.float64), 5).tolist(),
            "box_width_px": float(self.box_width_px),
            "aspect": float(self.aspect),
            "context": float(self.context),
            "face_colour": float(self.face_colour),
            "score_ok": float(self.score_ok),
            "score_lost": float(self.score_lost),
            "sample_count": int(self.sample_count),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: Optional[str] = None) -> FaceModel:
        """Inverse of ``to_dict``.

        Raises:
            ModelSchemaError: for another schema or malformed arrays.
        """
        schema = data.get("schema")
        if schema != FACE_MODEL_SCHEMA:
            raise ModelSchemaError(
                f"face model schema is {schema!r}, this SeamRoto reads {FACE_MODEL_SCHEMA!r}; "
                "retrain the character or update SeamRoto",
                path=path,
            )
        try:
            template = np.asarray(data["template"], dtype=np.float32)
            lut = np.asarray(data["colour_lut"], dtype=np.float32)
            model = cls(
                template=template,
                colour_lut=lut,
                box_width_px=float(data["box_width_px"]),
                aspect=float(data["aspect"]),
                context=float(data.get("context", CONTEXT)),
                face_colour=float(data.get("face_colour", 1.0)),
                score_ok=float(data.get("score_ok", DEFAULT_SCORE_OK)),
                score_lost=float(data.get("score_lost", DEFAULT_SCORE_LOST)),
                sample_count=int(data.get("sample_count", 0)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ModelSchemaError(f"face model is malformed: {err}", path=path) from err
        if template.ndim != 2 or min(template.shape) < 4 or lut.shape != (COLOUR_BINS,) * 2:
            raise ModelSchemaError(
                f"face model arrays have shapes {template.shape} and {lut.shape}; "
                f"expected (th, tw) and {(COLOUR_BINS, COLOUR_BINS)}",
                path=path,
            )
        return model


def write_face_model(model: FaceModel, folder: Union[str, os.PathLike[str]]) -> str:
    """Write ``face_model.json`` into a model folder atomically; returns the file path."""
    path = os.path.join(os.fspath(folder), FACE_MODEL_FILE)
    atomic_write_text(path, json.dumps(model.to_dict(), separators=(",", ":")))
    return path


def read_face_model(folder: Union[str, os.PathLike[str]]) -> FaceModel:
    """Read ``face_model.json`` from a model folder (or the file itself)."""
    path = os.fspath(folder)
    if os.path.isdir(path):
        path = os.path.join(path, FACE_MODEL_FILE)
    with open(path, encoding="utf-8") as fh:
        return FaceModel.from_dict(json.load(fh), path=path)


def box_from_landmarks(
    points: np.ndarray,
    margin: float = 0.0,
    image_size: Optional[Tuple[int, int]] = None,
) -> FaceBox:
    """Face box around the finite landmarks, grown by ``margin`` of its size on each side.

    With ``margin`` 0 this is the landmarks' bounding box, the box convention of the landmark
    model's crop rule and of ``learn_face_model``'s training samples.

    Args:
        points: Shape: (L, 2), _img px; NaN rows are ignored.
        margin: growth per side as a fraction of the box width/height.
        image_size: (width, height) to flag a box cut by the frame edge.

    Returns:
        A FaceBox with score 1 ("lost" with NaN box when no landmark is finite).
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    p = p[np.isfinite(p).all(axis=1)]
    if len(p) == 0:
        nan = float("nan")
        return FaceBox(nan, nan, nan, nan, 0.0, STATUS_LOST, "no finite landmark")
    lo, hi = p.min(axis=0), p.max(axis=0)
    w, h = hi - lo
    x, y = lo[0] - margin * w, lo[1] - margin * h
    box = (float(x), float(y), float(w * (1 + 2 * margin)), float(h * (1 + 2 * margin)))
    if image_size is not None:
        edge = _edge_reason(box, image_size)
        if edge:
            return FaceBox(*box, 1.0, STATUS_EDGE, edge)
    return FaceBox(*box, 1.0)


# --- features ---------------------------------------------------------------------------


def _luma(rgb: np.ndarray) -> np.ndarray:
    """Rec.709 luma of a display-referred RGB image (float32)."""
    return np.asarray(
        rgb[..., 0] * 0.2126 + rgb[..., 1] * 0.7152 + rgb[..., 2] * 0.0722, dtype=np.float32
    )


def _lcn(gray: np.ndarray) -> np.ndarray:
    """Local contrast normalisation: (I - local mean) / local std, so flicker cancels."""
    mean = cv2.GaussianBlur(gray, (0, 0), LCN_SIGMA_PX)
    centred = gray - mean
    var = cv2.GaussianBlur(centred * centred, (0, 0), LCN_SIGMA_PX)
    return np.asarray(centred / np.sqrt(var + LCN_FLOOR), dtype=np.float32)


def _chroma_bins(rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(r_bin, g_bin, weight) per pixel; weight ~0 for pixels too dark to have a chroma."""
    rgb = np.maximum(rgb[..., :3], 0.0)
    total = rgb.sum(axis=-1)
    safe = np.maximum(total, 1e-6)
    r = np.clip(rgb[..., 0] / safe * COLOUR_BINS, 0, COLOUR_BINS - 1).astype(np.intp)
    g = np.clip(rgb[..., 1] / safe * COLOUR_BINS, 0, COLOUR_BINS - 1).astype(np.intp)
    weight = np.clip(total / MIN_CHROMA_SUM - 1.0, 0.0, 1.0).astype(np.float32)
    return r, g, weight


def _face_probability(rgb: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """P(face | chroma) per pixel from the log-ratio LUT; 0.5 (no vote) for dark pixels."""
    r, g, weight = _chroma_bins(rgb)
    p = 1.0 / (1.0 + np.exp(-lut[r, g]))
    return np.asarray(0.5 + (p - 0.5) * weight, dtype=np.float32)


def _template_shape(aspect: float) -> Tuple[int, int]:
    """(th, tw) of the template for a box aspect (h / w); context scales both sides alike."""
    return max(8, int(round(TEMPLATE_WIDTH_PX * aspect))), TEMPLATE_WIDTH_PX


def _base_factor(box_width_px: float, context: float) -> float:
    """Working px per image px at scale 1 (template width over box-plus-context width)."""
    return TEMPLATE_WIDTH_PX / (box_width_px * (1.0 + 2.0 * context))


def _resize(img: np.ndarray, factor: float) -> Tuple[np.ndarray, float, float]:
    """Area-resize by ``factor``; returns the image and the exact x/y factors used.

    A big reduction first skips rows (a strided view, no copy) so that about
    ``MIN_ROWS_AVERAGED`` rows still feed each output row: the area resize of a 2K float
    frame is memory-bound, and reading a quarter of it is 3-5x faster for the same result at
    the template's resolution.
    """
    h, w = img.shape[:2]
    nw, nh = max(4, int(round(w * factor))), max(4, int(round(h * factor)))
    rows = max(1, int((h / nh) // MIN_ROWS_AVERAGED))
    src = img[::rows] if rows > 1 else img
    out = cv2.resize(src, (nw, nh), interpolation=cv2.INTER_AREA)
    return out, nw / w, nh / h


def _check_image(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] < 3:
        raise ShapeError("image", image.shape, "(H, W, 3) float32, model colour space")
    return np.asarray(image[..., :3], dtype=np.float32)


# --- learning ---------------------------------------------------------------------------


def _crop(img: np.ndarray, x: float, y: float, w: float, h: float, size: Tuple[int, int]):
    """Bilinear crop of the region (x, y, w, h) (corner-origin px) resampled to (th, tw)."""
    th, tw = size
    sx, sy = w / tw, h / th
    m = np.array([[sx, 0.0, x + 0.5 * sx - 0.5], [0.0, sy, y + 0.5 * sy - 0.5]])
    return cv2.warpAffine(
        img, m, (tw, th), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )


def _normalised(t: np.ndarray) -> np.ndarray:
    t = t - t.mean()
    n = float(np.linalg.norm(t))
    return np.asarray(t / n if n > 0 else t, dtype=np.float32)


def learn_face_model(samples: Iterable[Tuple[np.ndarray, Sequence[float]]]) -> FaceModel:
    """Learn a character's face appearance from annotated frames.

    Args:
        samples: (image, box) pairs: image (H, W, 3) float32 in the model colour space, box
            (x, y, w, h) in _img px, normally ``box_from_landmarks`` of the annotation.
            Boxes cut by the frame edge are skipped for the template but kept for colour.

    Returns:
        The model, with score thresholds calibrated on the same frames.

    Raises:
        ValueError: when no usable sample is given.
    """
    items: List[Tuple[np.ndarray, Box]] = []
    for img, box in samples:
        x, y, w, h = (float(v) for v in box)
        if w > 1 and h > 1 and all(map(math.isfinite, (x, y, w, h))):
            items.append((_check_image(img), (x, y, w, h)))
    if not items:
        raise ValueError("learn_face_model needs at least one image with a finite face box")
    widths = np.array([b[2] for _, b in items])
    box_width = float(np.median(widths))
    aspect = float(np.median([b[3] / b[2] for _, b in items]))
    size = _template_shape(aspect)
    crops: List[np.ndarray] = []
    face_hist = np.zeros((COLOUR_BINS, COLOUR_BINS))
    back_hist = np.zeros((COLOUR_BINS, COLOUR_BINS))
    for img, (x, y, w, h) in items:
        factor = _base_factor(w, CONTEXT)
        small, fx, fy = _resize(img, factor)
        cx, cy, cw, ch = x - CONTEXT * w, y - CONTEXT * h, w * (1 + 2 * CONTEXT), h * (1 + 2 * CONTEXT)
        if not _edge_reason((cx, cy, cw, ch), (img.shape[1], img.shape[0])):
            lcn = _lcn(_luma(small))
            crops.append(_crop(lcn, cx * fx, cy * fy, cw * fx, ch * fy, size))
        r, g, wt = _chroma_bins(small)
        yy, xx = np.mgrid[0 : small.shape[0], 0 : small.shape[1]]
        px, py = (xx + 0.5) / fx, (yy + 0.5) / fy
        inside = (px >= x) & (px < x + w) & (py >= y) & (py < y + h)
        outside = ~((px >= cx) & (px < cx + cw) & (py >= cy) & (py < cy + ch))
        np.add.at(face_hist, (r[inside], g[inside]), wt[inside])
        np.add.at(back_hist, (r[outside], g[outside]), wt[outside])
    if not crops:
        raise ValueError("every training face box touches the frame edge; annotate a full face")
    template = _normalised(np.mean(crops, axis=0))
    face_p = cv2.GaussianBlur(face_hist / max(face_hist.sum(), 1e-9), (0, 0), 0.7) + 1e-4
    back_p = cv2.GaussianBlur(back_hist / max(back_hist.sum(), 1e-9), (0, 0), 0.7) + 1e-4
    lut = np.asarray(np.clip(np.log(face_p / back_p), -4.0, 4.0), dtype=np.float32)
    model = FaceModel(template, lut, box_width, aspect, CONTEXT, 1.0, sample_count=len(items))
    return _calibrate(model, items)


def _calibrate(model: FaceModel, items: Sequence[Tuple[np.ndarray, Box]]) -> FaceModel:
    """Set the colour reference and score thresholds from the training frames themselves."""
    colours = []
    for img, (x, y, w, h) in items:
        small, fx, fy = _resize(img, _base_factor(w, model.context))
        prob = _face_probability(small, model.colour_lut)
        x0, y0 = int(x * fx), int(y * fy)
        x1, y1 = max(x0 + 1, int(math.ceil((x + w) * fx))), max(y0 + 1, int(math.ceil((y + h) * fy)))
        patch = prob[max(y0, 0) : y1, max(x0, 0) : x1]
        if patch.size:
            colours.append(float(patch.mean()))
    face_colour = float(np.median(colours)) if colours else 1.0
    model = _replace(model, face_colour=max(face_colour, 0.55))
    pos, neg = [], []
    for img, box in items:
        cands = _candidates(img, model, scale_range=(0.85, 1.18), width_px=box[2])
        if not cands:
            continue
        ious = [_iou(c[:4], box) for c in cands]
        hits = [c[4] for c, i in zip(cands, ious) if i > 0.6]
        miss = [c[4] for c, i in zip(cands, ious) if i < 0.2]
        if hits:
            pos.append(max(hits))
        if miss:
            neg.append(max(miss))
    if len(pos) < 2:
        return model
    p_low = float(np.percentile(pos, 10))
    n_high = float(np.max(neg)) if neg else 0.0
    lost = max(MIN_SCORE_LOST, min(0.5 * p_low, n_high + 0.25 * (p_low - n_high)))
    ok = max(lost + OK_MARGIN, OK_FRACTION * p_low)
    logger.info(
        "face model: positives p10 %.2f, worst negative %.2f -> ok %.2f, lost %.2f",
        p_low, n_high, ok, lost,
    )
    return _replace(model, score_ok=ok, score_lost=lost)


def _replace(model: FaceModel, **changes: Any) -> FaceModel:
    data = {k: getattr(model, k) for k in FaceModel.__dataclass_fields__}
    data.update(changes)
    return FaceModel(**data)


# --- detection --------------------------------------------------------------------------


def _scales(scale_range: Tuple[float, float]) -> np.ndarray:
    lo, hi = scale_range
    n = max(1, int(math.floor(math.log(hi / lo) / math.log(SCALE_STEP) + 1e-9)) + 1)
    return lo * SCALE_STEP ** np.arange(n)


def _peak_offset(m: np.ndarray, y: int, x: int) -> Tuple[float, float]:
    """Sub-pixel offset of a peak by a parabola through its neighbours (0 at the border)."""
    def para(a: float, b: float, c: float) -> float:
        den = a - 2.0 * b + c
        return 0.0 if den >= 0 else float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))

    h, w = m.shape
    dx = para(m[y, x - 1], m[y, x], m[y, x + 1]) if 0 < x < w - 1 else 0.0
    dy = para(m[y - 1, x], m[y, x], m[y + 1, x]) if 0 < y < h - 1 else 0.0
    return dx, dy


def _candidates(
    image: np.ndarray,
    model: FaceModel,
    scale_range: Tuple[float, float] = (SCALE_MIN, SCALE_MAX),
    count: int = CANDIDATES,
    width_px: Optional[float] = None,
    scale_indices: Optional[Sequence[int]] = None,
) -> List[_Candidate]:
    """Best face boxes of one frame, best first, non-overlapping.

    Args:
        image: (H, W, 3) float32, model colour space.
        model: the face model.
        scale_range: face widths searched, relative to ``width_px`` (default: the model's
            median training box width); stepped by ``SCALE_STEP``.
        count: candidates returned at most.
        width_px: centre of the scale search.
        scale_indices: only these steps of the scale range (tracking); None = all.
    """
    th, tw = model.template.shape
    scales = _scales(scale_range)
    steps = list(range(len(scales))) if scale_indices is None else sorted(set(scale_indices))
    steps = [k for k in steps if 0 <= k < len(scales)]
    if not steps:
        return []
    centre = model.box_width_px if width_px is None else width_px
    first = scales[steps[0]]
    small, _, _ = _resize(image, _base_factor(centre * first, model.context))
    gray = _luma(small)
    prob = _face_probability(small, model.colour_lut)
    frame_h, frame_w = image.shape[:2]
    pad_y, pad_x = th // 2, tw // 2
    bw = max(1, int(round(tw / (1 + 2 * model.context))))
    bh = max(1, int(round(th / (1 + 2 * model.context))))
    oy, ox = (th - bh) // 2 + bh // 2, (tw - bw) // 2 + bw // 2
    colour_span = max(model.face_colour - 0.5, 1e-3)
    raw: List[_Candidate] = []
    for k in steps:
        if scales[k] == first:
            g, p = gray, prob
        else:
            g, _, _ = _resize(gray, first / scales[k])
            p = cv2.resize(prob, (g.shape[1], g.shape[0]), interpolation=cv2.INTER_AREA)
        fx, fy = g.shape[1] / frame_w, g.shape[0] / frame_h
        if g.shape[0] < th // 2 or g.shape[1] < tw // 2:
            continue
        feat = cv2.copyMakeBorder(_lcn(g), pad_y, pad_y, pad_x, pad_x, cv2.BORDER_CONSTANT, value=0)
        ncc = cv2.matchTemplate(feat, model.template, cv2.TM_CCORR_NORMED)
        # colour vote: mean face probability over the box part of each template position.
        pp = cv2.copyMakeBorder(p, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_CONSTANT, value=0.5)
        mean_p = cv2.boxFilter(pp, -1, (bw, bh), normalize=True, borderType=cv2.BORDER_CONSTANT)
        col = mean_p[oy : oy + ncc.shape[0], ox : ox + ncc.shape[1]]
        col = np.clip((col - 0.5) / colour_span, 0.0, 1.0)
        # colour alone (a hand, a skin-toned prop) must not make a face: it only adds to a
        # template match.
        score = (1.0 - COLOUR_WEIGHT) * ncc + COLOUR_WEIGHT * col * np.sqrt(np.maximum(ncc, 0.0))
        peaks = (score == cv2.dilate(score, PEAK_KERNEL)) & (score > 0)
        ys, xs = np.nonzero(peaks)
        if len(ys) == 0:
            continue
        order = np.argsort(score[ys, xs])[::-1][:count]
        ctx_w, ctx_h = tw / fx, th / fy
        bwf, bhf = ctx_w / (1 + 2 * model.context), ctx_h / (1 + 2 * model.context)
        for i in order:
            y, x = int(ys[i]), int(xs[i])
            dx, dy = _peak_offset(score, y, x)
            # template corner in working px (corner-origin) -> image px, then context off.
            bx = (x + dx - pad_x) / fx + model.context * bwf
            by = (y + dy - pad_y) / fy + model.context * bhf
            raw.append(_Candidate(bx, by, bwf, bhf, float(score[y, x]), float(ncc[y, x]), k))
    raw.sort(key=lambda c: -c.score)
    return _non_overlapping(raw, count)


def _non_overlapping(ranked: Sequence[_Candidate], count: int) -> List[_Candidate]:
    """Best-first candidates with no two boxes overlapping by IoU >= 0.5."""
    kept: List[_Candidate] = []
    for c in ranked:
        if all(_iou(c[:4], k[:4]) < NMS_IOU for k in kept):
            kept.append(c)
        if len(kept) >= count:
            break
    return kept


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes (0 when disjoint)."""
    return _iou(a, b)


def _edge_reason(box: Sequence[float], image_size: Tuple[int, int]) -> str:
    """Why ``box`` is cut by the frame border ("" if it is not)."""
    x, y, w, h = box
    width, height = image_size
    mx, my = EDGE_MARGIN * w, EDGE_MARGIN * h
    sides = []
    if x < mx:
        sides.append(("left", -x))
    if y < my:
        sides.append(("top", -y))
    if x + w > width - mx:
        sides.append(("right", x + w - width))
    if y + h > height - my:
        sides.append(("bottom", y + h - height))
    if not sides:
        return ""
    parts = [
        f"{name} by {over:.0f} px" if over > 0.5 else f"touches {name}" for name, over in sides
    ]
    return "face box cut by the frame edge: " + ", ".join(parts)


def _viterbi(
    cands: Sequence[Sequence[_Candidate]],
    lost_score: float,
) -> List[int]:
    """Index of the picked candidate per frame (-1 = lost), maximising score minus motion."""
    n = len(cands)
    if n == 0:
        return []
    prev_val = np.array([c[4] for c in cands[0]] + [lost_score])
    back: List[np.ndarray] = []
    for t in range(1, n):
        a, b = cands[t - 1], cands[t]
        trans = np.zeros((len(a) + 1, len(b) + 1))
        for i, ca in enumerate(a):
            wa = 0.5 * (ca[2] + ca[3])
            for j, cb in enumerate(b):
                dc = math.hypot(
                    (cb[0] + cb[2] / 2) - (ca[0] + ca[2] / 2), (cb[1] + cb[3] / 2) - (ca[1] + ca[3] / 2)
                )
                ds = math.log(cb[2] / ca[2])
                trans[i, j] = min(MOTION_COST * (dc / wa) ** 2 + SCALE_COST * ds * ds, MAX_MOTION_COST)
            trans[i, -1] = SWITCH_COST
        trans[-1, :-1] = SWITCH_COST
        emit = np.array([c[4] for c in b] + [lost_score])
        total = prev_val[:, None] - trans
        arg = np.argmax(total, axis=0)
        back.append(arg)
        prev_val = total[arg, np.arange(total.shape[1])] + emit
    path = [int(np.argmax(prev_val))]
    for arg in reversed(back):
        path.append(int(arg[path[-1]]))
    path.reverse()
    return [p if p < len(cands[t]) else -1 for t, p in enumerate(path)]


class FaceSearch:
    """Face search fed one frame at a time, so it can run while the next plate decodes.

    ``add`` scores a frame and returns a provisional box (the best strong candidate), good
    enough to seed landmarks at once; ``finish`` runs the shot-wide Viterbi pass and gives the
    final, smoothed boxes with their flags. Only candidates are kept, never images.
    """

    def __init__(
        self, face_model: FaceModel, scale_range: Tuple[float, float] = (SCALE_MIN, SCALE_MAX)
    ) -> None:
        """Start a search for ``face_model``'s face over ``scale_range`` of its training size."""
        self._model = face_model
        self._scale_range = scale_range
        self._steps = len(_scales(scale_range))
        self._numbers: List[int] = []
        self._cands: List[List[_Candidate]] = []
        self._size: Optional[Tuple[int, int]] = None
        self._current: Optional[int] = None
        self._since_full = 0

    def add(self, frame: int, image: np.ndarray) -> Optional[Box]:
        """Score one frame (the next in shot order).

        Args:
            frame: frame number.
            image: (H, W, 3) float32 in the model colour space, at face-search resolution.

        Returns:
            The best candidate's box in ``image`` px when it scores as a face, else None.

        Raises:
            ShapeError: for an image that is not (H, W, 3).
        """
        img = _check_image(image)
        self._size = (img.shape[1], img.shape[0])
        self._numbers.append(int(frame))
        window: Sequence[int] = range(self._steps)
        if self._current is not None and self._since_full < FULL_SEARCH_EVERY:
            window = range(self._current - TRACK_SCALE_STEPS, self._current + TRACK_SCALE_STEPS + 1)
            self._since_full += 1
        else:
            self._since_full = 0
        found = _candidates(img, self._model, self._scale_range, scale_indices=window)
        self._cands.append(found)
        strong = bool(found) and found[0].score >= self._model.score_lost
        self._current = found[0].scale_index if strong else None
        return (found[0].x, found[0].y, found[0].w, found[0].h) if strong else None

    def finish(self) -> Dict[int, FaceBox]:
        """Frame -> FaceBox for every frame added; flagged frames carry a status and reason."""
        if not self._numbers or self._size is None:
            return {}
        path = _viterbi(self._cands, self._model.score_lost)
        picked = [self._cands[t][p] if p >= 0 else None for t, p in enumerate(path)]
        return _finish(self._numbers, picked, self._cands, self._model, self._size)


def locate_faces(
    frames: Iterable[Tuple[int, np.ndarray]],
    face_model: FaceModel,
    progress: Optional[Progress] = None,
    *,
    scale_range: Tuple[float, float] = (SCALE_MIN, SCALE_MAX),
) -> Dict[int, FaceBox]:
    """Find and track the face box on every frame of a shot.

    Args:
        frames: (frame, image) pairs in shot order; image (H, W, 3) float32 in the model
            colour space. Only a small working copy of each frame is kept.
        face_model: the character's ``FaceModel``.
        progress: polled between frames; cancelling raises ``CancelledError``.
        scale_range: face sizes searched, relative to the model's training box width.

    Returns:
        frame -> FaceBox for every frame given; flagged frames carry a status and a reason.

    Raises:
        CancelledError: if ``progress`` was cancelled.
        ShapeError: for an image that is not (H, W, 3).
    """
    total = len(frames) if isinstance(frames, Sized) else 0
    search = FaceSearch(face_model, scale_range)
    done = 0
    for i, (frame, image) in enumerate(frames):
        if progress is not None:
            if progress.cancelled:
                raise CancelledError("face search cancelled", frame=int(frame))
            progress.update(i, max(total, i + 1), f"face search, frame {frame}")
        search.add(frame, image)
        done = i + 1
    if progress is not None and done:
        progress.update(done, done, "face search done")
    return search.finish()


def _finish(
    numbers: Sequence[int],
    picked: Sequence[Optional[_Candidate]],
    cands: Sequence[Sequence[_Candidate]],
    model: FaceModel,
    size: Tuple[int, int],
) -> Dict[int, FaceBox]:
    """Smooth the picked path and give every frame its status and reason."""
    f = len(numbers)
    # Clutter can score above the model's "lost" level; against this shot's own face it cannot.
    confident = [c.score for c in picked if c is not None and c.score >= model.score_ok]
    shot_face = float(np.median(confident)) if len(confident) >= MIN_CONFIDENT_FRAMES else 0.0
    too_weak = SHOT_LOST_FRACTION * shot_face
    dropped = {t for t, c in enumerate(picked) if c is not None and c.score < min(too_weak, model.score_ok)}
    picked = [None if t in dropped else c for t, c in enumerate(picked)]
    raw = np.full((f, 2, 2), np.nan)
    conf = np.zeros((f, 2))
    for t, c in enumerate(picked):
        if c is not None:
            raw[t, 0] = (c[0] + c[2] / 2, c[1] + c[3] / 2)
            raw[t, 1] = (c[2], c[3])
            conf[t] = 1.0
    smooth = raw
    if f >= 3 and np.isfinite(raw).any():
        smooth = fuse_tracks(numbers, raw, conf, params=BOX_SMOOTHING).points
    out: Dict[int, FaceBox] = {}
    nan = float("nan")
    for t, frame in enumerate(numbers):
        c = picked[t]
        if c is None or not np.isfinite(smooth[t]).all():
            best = max((k[4] for k in cands[t]), default=0.0)
            if best < model.score_lost:
                why = f"no face found: best score {best:.2f} is below {model.score_lost:.2f}"
            elif t in dropped:
                why = (
                    f"no face found: best score {best:.2f} is far below this shot's face "
                    f"({shot_face:.2f})"
                )
            else:
                why = f"no face consistent with the shot: best score {best:.2f}"
            out[frame] = FaceBox(nan, nan, nan, nan, float(best), STATUS_LOST, why)
            continue
        (cx, cy), (w, h) = smooth[t]
        box = (float(cx - w / 2), float(cy - h / 2), float(w), float(h))
        score = float(c[4])
        edge = _edge_reason(box, size)
        if edge:
            out[frame] = FaceBox(*box, score, STATUS_EDGE, edge)
        elif score < model.score_ok:
            out[frame] = FaceBox(
                *box, score, STATUS_LOW,
                f"weak face match: score {score:.2f} is below {model.score_ok:.2f}",
            )
        else:
            out[frame] = FaceBox(*box, score)
    return out
