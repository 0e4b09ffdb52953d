"""Landmarks from face boxes: crop each face, run the model, map the points back to the frame.

Coordinates are ``_img`` (origin at the top-left *corner*, y down, pixel centres at +0.5) in
both the full frame and the crop. A crop is described by the affine ``crop_to_img`` (2, 3)
that maps crop coordinates to frame coordinates; the same functions build the training crops,
so training and inference see identical pixels for identical boxes.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from seamroto.errors import ShapeError

logger = logging.getLogger(__name__)

BATCH_SIZE = 8
# Refiner patches per request: a face's patches go in one request (2K frames, ~34 landmarks).
REFINER_BATCH_SIZE = 64
INFER_JOBS = 2
# Refinement re-crops on the first pass's landmarks; off by default (benchmark decides).
REFINE_PASSES = 0
# Minimum box side in pixels: anything smaller cannot be a face and would divide by ~0.
MIN_BOX_PX = 4.0
# Extra refiner patch centres for landmarks re-located by averaging (``refine_points(shifted=)``),
# in fractions of the patch side: within the offsets the refiner was trained on.
SHIFT_STEP = 0.08
SHIFTS = ((1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0))

ColourConvert = Callable[[np.ndarray], np.ndarray]


def crop_matrix(box: Union[Sequence[float], np.ndarray], size: int, scale: float) -> np.ndarray:
    """Affine crop->frame for a square crop centred on ``box`` with side ``max(w, h) * scale``.

    Args:
        box: (x, y, w, h) in _img px (x, y = top-left corner).
        size: crop side in crop px.
        scale: crop side relative to the box's longer side (the card's crop rule).

    Returns:
        Shape: (2, 3) float64; frame_xy = M[:, :2] @ crop_xy + M[:, 2].
    """
    x, y, w, h = (float(v) for v in box)
    side = max(w, h, MIN_BOX_PX) * scale
    k = side / size
    cx, cy = x + 0.5 * w, y + 0.5 * h
    return np.array([[k, 0.0, cx - 0.5 * side], [0.0, k, cy - 0.5 * side]])


def box_from_points(points: np.ndarray) -> np.ndarray:
    """Bounding box (x, y, w, h) of the finite points (the crop rule's ``landmarks_bbox``).

    Shape: points (L, 2) _img -> (4,) float64. NaN rows (unknown landmarks) are ignored.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    p = p[np.isfinite(p).all(axis=1)]
    if len(p) == 0:
        raise ValueError("no finite landmark to build a box from")
    lo, hi = p.min(axis=0), p.max(axis=0)
    return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]])


def map_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply an affine (2, 3) to points (..., 2)."""
    p = np.asarray(points, dtype=np.float64)
    return p @ matrix[:, :2].T + matrix[:, 2]


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The affine ``outer(inner(p))`` of two (2, 3) affines."""
    lin = outer[:, :2] @ inner[:, :2]
    return np.concatenate([lin, (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]], axis=1)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine."""
    a = np.asarray(matrix, dtype=np.float64)[:, :2]
    inv = np.linalg.inv(a)
    return np.concatenate([inv, -(inv @ matrix[:, 2])[:, None]], axis=1)


def reduction_factor(crop_to_img: np.ndarray) -> int:
    """Integer box-filter factor for a crop: ``floor(frame px per crop px)``, at least 1."""
    scale = math.sqrt(abs(float(np.linalg.det(np.asarray(crop_to_img)[:, :2]))))
    return max(1, int(math.floor(scale)))


def reduce_region(
    image: np.ndarray, bounds: Union[Sequence[float], np.ndarray], factor: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Box-average the frame region ``bounds`` = (x0, y0, x1, y1) by an integer ``factor``.

    The region snaps outwards to the factor grid anchored at the frame origin, so the reduced
    pixels of a place do not depend on which region asked for them: a training crop cut from a
    stored region equals the inference crop cut from the whole frame.

    Returns:
        reduced (h, w, C) float32 and its region->frame affine (2, 3) (corner-origin both).
    """
    img = image if image.ndim == 3 else image[:, :, None]
    h, w = img.shape[:2]
    x0 = max(0, int(math.floor(bounds[0])) // factor * factor)
    y0 = max(0, int(math.floor(bounds[1])) // factor * factor)
    x1 = min(w, int(math.ceil(bounds[2])))
    y1 = min(h, int(math.ceil(bounds[3])))
    nx, ny = max(0, (x1 - x0) // factor), max(0, (y1 - y0) // factor)
    to_img = np.array([[factor, 0.0, x0], [0.0, factor, y0]], dtype=np.float64)
    if nx == 0 or ny == 0:
        return np.zeros((0, 0, img.shape[2]), np.float32), to_img
    # A row-strided view is fine for cv2 (no copy of a 2K frame's face region).
    roi: np.ndarray = np.asarray(img[y0 : y0 + ny * factor, x0 : x0 + nx * factor], dtype=np.float32)
    if factor > 1:
        roi = cv2.resize(roi, (nx, ny), interpolation=cv2.INTER_AREA)
        if roi.ndim == 2:
            roi = roi[:, :, None]
    return roi, to_img


def crop_bounds(crop_to_img: np.ndarray, size: int, pad: float = 0.0) -> np.ndarray:
    """Frame-space bounding box (x0, y0, x1, y1) of a crop's four corners, grown by ``pad``."""
    corners = map_points(np.array([[0, 0], [size, 0], [0, size], [size, size]], float), crop_to_img)
    lo, hi = corners.min(axis=0) - pad, corners.max(axis=0) + pad
    return np.array([lo[0], lo[1], hi[0], hi[1]])


def warp_from_region(
    region: np.ndarray, region_to_img: np.ndarray, crop_to_img: np.ndarray, size: int
) -> np.ndarray:
    """Bilinear crop from a (reduced) region; black outside it.

    Returns:
        Shape: (size, size, C) float32.
    """
    c = region.shape[2] if region.ndim == 3 else 1
    if region.size == 0:
        return np.zeros((size, size, c), np.float32)
    crop_to_region = compose_affine(invert_affine(region_to_img), crop_to_img)
    # cv2 indexes pixel centres: src_idx + 0.5 = A (dst_idx + 0.5) + t.
    m = crop_to_region.copy()
    m[:, 2] = crop_to_region[:, :2] @ np.array([0.5, 0.5]) + crop_to_region[:, 2] - 0.5
    out = cv2.warpAffine(
        region,
        m,
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return out if out.ndim == 3 else out[:, :, None]


def warp_patches(image: np.ndarray, mats: np.ndarray, size: int) -> np.ndarray:
    """Many same-scale crops (one face's refinement patches) from one reduced region.

    Equal to ``warp_crop`` per patch (the reduction grid is anchored at the frame origin, so
    one region serves all), but reduces the frame once instead of once per patch.

    Shape: mats (K, 2, 3) -> (K, size, size, C) float32.
    """
    if len(mats) == 0:
        return np.zeros((0, size, size, 3), np.float32)
    mats = np.asarray(mats, dtype=np.float64)
    factor = reduction_factor(mats[0])
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], float)
    pts = np.einsum("kij,cj->kci", mats[:, :, :2], corners) + mats[:, None, :, 2]
    pad = 2.0 * factor
    union = np.concatenate([pts.min(axis=(0, 1)) - pad, pts.max(axis=(0, 1)) + pad])
    region, region_to_img = reduce_region(image, union, factor)
    c = region.shape[2] if region.ndim == 3 else 1
    if region.size == 0:
        return np.zeros((len(mats), size, size, c), np.float32)
    # crop -> region px (corner origin), then cv2's centre-indexed form, for all patches at once
    lin = mats[:, :, :2] / factor
    shift = (mats[:, :, 2] - region_to_img[:, 2]) / factor
    cv = np.concatenate([lin, (lin @ np.array([0.5, 0.5]) + shift - 0.5)[:, :, None]], axis=2)
    out = np.empty((len(mats), size, size, c), np.float32)
    for k in range(len(mats)):
        w = cv2.warpAffine(region, cv[k], (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        out[k] = w if w.ndim == 3 else w[:, :, None]
    return out


def warp_crop(image: np.ndarray, crop_to_img: np.ndarray, size: int) -> np.ndarray:
    """Resample the crop described by ``crop_to_img`` from ``image``, anti-aliased.

    A face crop shrinks the frame 3-5x; plain bilinear sampling would alias the seam line and
    fine features, so the region is first box-averaged by the integer factor ``floor(scale)``
    (exact in corner-origin coordinates), then bilinearly warped by the remaining 1-2x.
    Outside the frame is black.

    Args:
        image: (H, W, C) float32 (or anything cv2 resamples), _img.
        crop_to_img: (2, 3) crop->frame affine.
        size: output side.

    Returns:
        Shape: (size, size, C) float32.
    """
    factor = reduction_factor(crop_to_img)
    bounds = crop_bounds(crop_to_img, size, pad=2.0 * factor)
    region, region_to_img = reduce_region(image, bounds, factor)
    return warp_from_region(region, region_to_img, crop_to_img, size)


def check_image(image: np.ndarray) -> np.ndarray:
    """RGB view of a frame (drops alpha), checking (H, W, >=3) at the public boundary."""
    if image.ndim != 3 or image.shape[2] < 3:
        raise ShapeError("image", image.shape, "(H, W, 3 or 4)")
    return image[:, :, :3]


def check_boxes(boxes: np.ndarray) -> np.ndarray:
    """Boxes as (N, 4) float64 (x, y, w, h), checked."""
    b = np.asarray(boxes, dtype=np.float64)
    if b.ndim == 1 and b.shape == (4,):
        b = b[None]
    if b.ndim != 2 or b.shape[1] != 4:
        raise ShapeError("boxes", b.shape, "(N, 4) [x, y, w, h]")
    return b


def infer_crops(
    model: Any, crops: np.ndarray, batch_size: int = BATCH_SIZE, jobs: int = INFER_JOBS
) -> Tuple[np.ndarray, np.ndarray]:
    """Run model-space crops through the compiled model in batches on an AsyncInferQueue.

    A single batch (a frame's face crop, or its refiner patches, while a shot streams) runs on
    the thread's own infer request instead: there is nothing to overlap it with, and the
    queue's callback and copies cost a third of the network's time.

    Args:
        model: a ``seamroto.models.LandmarkModel`` (its first stage) or a ``CompiledNet``.
        crops: (N, S, S, 3) float32, model colour space, [0, 1].
        batch_size: crops per request.
        jobs: requests in flight (lets Python prepare batch k+1 while OpenVINO runs batch k).

    Returns:
        points (N, L, 2) float32 in crop px, conf (N, L) float32.
    """
    net = getattr(model, "net", model)
    n = len(crops)
    nl = net.num_landmarks
    points = np.zeros((n, nl, 2), np.float32)
    conf = np.zeros((n, nl), np.float32)
    if n == 0:
        return points, conf
    s = net.input_size
    if crops.shape[1:] != (s, s, 3):
        raise ShapeError("crops", crops.shape, f"(N, {s}, {s}, 3)")
    if n <= batch_size:
        return net.infer_one(np.ascontiguousarray(crops.transpose(0, 3, 1, 2)))
    queue = net.infer_queue(jobs)

    def done(request: Any, start: int) -> None:
        stop = start + request.get_output_tensor(0).data.shape[0]
        points[start:stop] = request.get_output_tensor(0).data
        conf[start:stop] = request.get_output_tensor(1).data

    queue.set_callback(done)
    for start in range(0, n, batch_size):
        batch = np.ascontiguousarray(crops[start : start + batch_size].transpose(0, 3, 1, 2))
        queue.start_async({0: batch}, start)
    queue.wait_all()
    return points, conf


def make_crops(
    image: np.ndarray,
    boxes: np.ndarray,
    size: int,
    scale: float,
    convert: Optional[ColourConvert] = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """Crops (N, S, S, 3) float32 in model space and their crop->frame affines (N, 2, 3)."""
    mats = np.stack([crop_matrix(b, size, scale) for b in boxes]) if len(boxes) else np.zeros((0, 2, 3))
    crops = np.zeros((len(boxes), size, size, 3), np.float32)
    for i, m in enumerate(mats):
        crops[i] = warp_crop(image, m, size)
    return (crops if convert is None else convert(crops)), mats


def patch_matrix(
    crop_to_img: np.ndarray, point_img: np.ndarray, crop_size: int, patch_size: int, patch_fraction: float
) -> np.ndarray:
    """Affine patch->frame for a refinement patch centred on ``point_img``.

    The patch has the face crop's orientation and covers ``patch_fraction`` of its side, so
    patches are normalised by the face box exactly as face crops are.

    Returns:
        Shape: (2, 3) float64.
    """
    lin = np.asarray(crop_to_img)[:, :2] * (crop_size * patch_fraction / patch_size)
    centre = np.array([0.5 * patch_size, 0.5 * patch_size])
    return np.concatenate([lin, (np.asarray(point_img, float) - lin @ centre)[:, None]], axis=1)


def patch_matrices(
    mats: np.ndarray, points: np.ndarray, crop_size: int, patch_size: int, patch_fraction: float
) -> np.ndarray:
    """Refinement patch affines for every face and landmark, (N * L, 2, 3), face-major."""
    n, nl = points.shape[:2]
    lin = np.asarray(mats, dtype=np.float64)[:, :2, :2] * (crop_size * patch_fraction / patch_size)  # (N, 2, 2)
    centre = np.array([0.5 * patch_size, 0.5 * patch_size])
    shift = np.asarray(points, dtype=np.float64) - (lin @ centre)[:, None, :]  # (N, L, 2)
    out = np.concatenate([np.repeat(lin[:, None], nl, axis=1), shift[..., None]], axis=3)
    return out.reshape(n * nl, 2, 3)


def points_from_patches(
    refiner: Any,
    patches: np.ndarray,
    pmats: np.ndarray,
    num_landmarks: int,
    batch_size: int,
    own: Optional[np.ndarray] = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """Run patches (K, P, P, 3) and keep each patch's own landmark channel.

    Args:
        refiner: the compiled refiner network.
        patches: Shape: (K, P, P, 3) float32, model space.
        pmats: Shape: (K, 2, 3) patch->frame affines.
        num_landmarks: L, the refiner's output channels.
        batch_size: patches per request.
        own: each patch's landmark; None = face-major order, ``k % num_landmarks``.

    Returns:
        points (K // L, L, 2) float64 _img px and conf (K // L, L) float32 in face-major order,
        or (K, 2) and (K,) when ``own`` is given.
    """
    pp, pc = infer_crops(refiner, patches, max(batch_size, num_landmarks))
    k = np.arange(len(patches))
    mine = k % num_landmarks if own is None else np.asarray(own)
    sel = pp[k, mine].astype(np.float64)
    pts = np.einsum("kij,kj->ki", pmats[:, :, :2], sel) + pmats[:, :, 2]
    if own is not None:
        return pts, pc[k, mine]
    return pts.reshape(-1, num_landmarks, 2), pc[k, mine].reshape(-1, num_landmarks)


def blend_refined(
    first: np.ndarray, refined: np.ndarray, mats: np.ndarray, blend: Optional[Any]
) -> np.ndarray:
    """Apply the card's per-landmark gains to the refiner's correction ``refined - first``.

    The gain is a 2x2 matrix in face-crop axes: ``p = p1 + A G A^-1 (p2 - p1)`` with A the face
    crop's linear part, so it rotates with the face. ``blend`` None means full trust.

    Shape: first, refined (N, L, 2) _img; mats (N, 2, 3) -> (N, L, 2).
    """
    if blend is None:
        return refined
    g = np.asarray(blend, dtype=np.float64)  # (L, 2, 2)
    lin = mats[:, :2, :2]
    inv = np.linalg.inv(lin)
    d_crop = np.einsum("nij,nlj->nli", inv, refined - first)
    d_crop = np.einsum("lij,nlj->nli", g, d_crop)
    return first + np.einsum("nij,nlj->nli", lin, d_crop)


def refine_points(
    model: Any,
    image: np.ndarray,
    mats: np.ndarray,
    points: np.ndarray,
    convert: Optional[ColourConvert] = None,
    batch_size: int = REFINER_BATCH_SIZE,
    shifted: Optional[np.ndarray] = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """Second stage: re-locate every landmark in its own finer-scale patch.

    Args:
        model: a ``LandmarkModel`` with a ``refiner``.
        image: the frame.
        mats: (N, 2, 3) face crop->frame affines of the first stage.
        points: (N, L, 2) first-stage landmarks, _img px.
        convert: as in ``predict_landmarks``.
        batch_size: patches per request.
        shifted: (L,) bool: landmarks also re-located from ``SHIFTS`` patch centres and
            averaged. Why: a replacement piece (a mouth swapped every frame) cannot be
            smoothed over time, so its per-frame noise is all there is to reduce.

    Returns:
        points (N, L, 2) float64 _img px, conf (N, L) float32 (the refiner's own channel).
    """
    info = model.card.refiner
    p = info.patch_size
    n, nl = points.shape[:2]
    pm = patch_matrices(mats, points, model.input_size, p, info.patch_fraction)
    own = np.tile(np.arange(nl), n)
    extra = np.zeros(0, dtype=np.int64)
    if shifted is not None and np.any(shifted):
        extra = np.flatnonzero(np.tile(np.asarray(shifted, dtype=bool), n))
        moved = []
        for dx, dy in SHIFTS:
            m = pm[extra].copy()
            m[:, :, 2] += m[:, :, :2] @ (np.array([dx, dy]) * SHIFT_STEP * p)
            moved.append(m)
        pm = np.concatenate([pm, *moved])
        own = np.concatenate([own] + [own[extra]] * len(SHIFTS))
    patches = np.zeros((len(pm), p, p, 3), np.float32)
    for i in range(n):
        face = slice(i * nl, (i + 1) * nl)
        patches[face] = warp_patches(image, pm[face], p)
    if len(extra):
        patches[n * nl :] = warp_patches(image, pm[n * nl :], p)
    if convert is not None:
        patches = convert(patches)  # one call for all patches: per-call overhead dominates
    pts, conf = points_from_patches(model.refiner, patches, pm, nl, batch_size, own=own)
    refined, rconf = pts[: n * nl].copy(), conf[: n * nl].copy()
    if len(extra):
        rest = pts[n * nl :].reshape(len(SHIFTS), len(extra), 2)
        refined[extra] = (refined[extra] + rest.sum(axis=0)) / (1 + len(SHIFTS))
        rconf[extra] = (rconf[extra] + conf[n * nl :].reshape(len(SHIFTS), -1).sum(axis=0)) / (1 + len(SHIFTS))
    refined_pts = refined.reshape(n, nl, 2)
    return blend_refined(points, refined_pts, mats, info.blend), rconf.reshape(n, nl)


def predict_landmarks(
    model: Any,
    image: np.ndarray,
    boxes: np.ndarray,
    *,
    convert: Optional[ColourConvert] = None,
    refine: int = REFINE_PASSES,
    batch_size: int = BATCH_SIZE,
    use_refiner: bool = True,
    shifted: Optional[np.ndarray] = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """Landmarks of every face box in one frame.

    Args:
        model: a ``seamroto.models.LandmarkModel``.
        image: (H, W, 3|4) frame, _img. Any resolution: crops are normalised by the box size.
        boxes: (N, 4) face boxes (x, y, w, h) in _img px, as the model's crop rule expects
            (``card.crop.box_from``, the landmarks' bounding box).
        convert: maps float32 pixels (..., 3) from the frame's colour space to the model's
            (``card.colour_space``), e.g. ``colour.to_model_space(x, src)``; None when the frame
            already is in the model's space. Crops are converted after resampling, as in training.
        refine: extra passes that re-crop on the previous pass's landmark box.
        batch_size: crops per inference request.
        use_refiner: run the model's second stage (per-landmark patches) when it has one.
        shifted: (L,) bool, landmarks the refiner re-locates from several patch centres and
            averages (``refine_points``).

    Returns:
        points (N, L, 2) float64 in _img px, conf (N, L) float32 in [0, 1].
    """
    img = check_image(image)
    b = check_boxes(boxes)
    size, scale = model.input_size, model.card.crop.scale
    points = np.zeros((len(b), len(model.landmark_names), 2))
    conf = np.zeros((len(b), len(model.landmark_names)), np.float32)
    if len(b) == 0:
        return points, conf
    mats = np.zeros((0, 2, 3))
    for _ in range(1 + max(0, refine)):
        crops, mats = make_crops(img, b, size, scale, convert)
        pc, conf = infer_crops(model, crops, batch_size)
        points = np.stack([map_points(p, m) for p, m in zip(pc, mats)])
        b = np.stack([box_from_points(p) for p in points])
    if use_refiner and getattr(model, "refiner", None) is not None:
        points, conf = refine_points(model, img, mats, points, convert, shifted=shifted)
    return points, conf
