"""Evaluation of the two-stage landmark pipeline from stored regions, and the refiner's blend fit.

Training keeps only reduced regions around each face and landmark, never whole frames; these
helpers run stage one on ground-truth-box crops and stage two on patches cut from the stored
fine regions, on the same reduction grid ``seamroto.landmarks`` uses on whole frames, so the
numbers equal what ``predict_landmarks`` gives on the plates.
"""

from __future__ import annotations

import logging
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from seamroto.landmarks import blend_refined, map_points, patch_matrices, warp_from_region
from seamroto.models import RefinerInfo
from training.dataset import CropSampler, FrameRecord
from training.net import LandmarkNet
from training.refine import PatchRecord

logger = logging.getLogger(__name__)

BLEND_PASSES = 2
BLEND_STREAM = 7919  # keeps blend-fit augmentation apart from training batches
BLEND_MIN_SAMPLES = 20
BLEND_RIDGE = 1e-3  # relative to the refiner's own correction energy: shrinks a gain it barely moves

Gains = Tuple[Tuple[Tuple[float, float], Tuple[float, float]], ...]


def torch_predict(net: LandmarkNet, crops: np.ndarray, batch: int = 32) -> np.ndarray:
    """Crop-px points from the torch net (evaluation helper)."""
    out = []
    net.eval()
    with torch.no_grad():
        for i in range(0, len(crops), batch):
            x = torch.from_numpy(np.ascontiguousarray(crops[i : i + batch].transpose(0, 3, 1, 2)))
            out.append(net(x)[0].numpy())
    return np.concatenate(out) if out else np.zeros((0, net.cfg.num_landmarks, 2), np.float32)


def two_stage(
    stage1: Callable[[np.ndarray], np.ndarray],
    stage2: Optional[Callable[[np.ndarray], np.ndarray]],
    crops: np.ndarray,
    mats: np.ndarray,
    patch_recs: Sequence[PatchRecord],
    info: Optional[RefinerInfo],
    to_model: Callable[[np.ndarray], np.ndarray],
    size: int,
) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Stage-one points and raw (unblended) refined points, frame px, from stored regions.

    Patches are centred on stage one's points and cut from the stored fine regions exactly as
    inference cuts them from the frame (same reduction grid).
    """
    pts = np.stack([map_points(p, m) for p, m in zip(stage1(crops), mats)])
    if stage2 is None or info is None:
        return pts, None
    nl = pts.shape[1]
    pm = patch_matrices(mats, pts, size, info.patch_size, info.patch_fraction)
    patches = np.zeros((len(pm), info.patch_size, info.patch_size, 3), np.float32)
    for k, m in enumerate(pm):
        region = patch_recs[k // nl].regions[k % nl]
        if region is None:
            continue  # unknown landmark: not scored
        patches[k] = to_model(warp_from_region(region[0].astype(np.float32), region[1], m, info.patch_size))
    out = stage2(patches)
    idx = np.arange(len(pm))
    sel = out[idx, idx % nl].astype(np.float64)
    refined = (np.einsum("kij,kj->ki", pm[:, :, :2], sel) + pm[:, :, 2]).reshape(-1, nl, 2)
    return pts, refined


def evaluate_records(
    stage1: Callable[[np.ndarray], np.ndarray],
    sampler: CropSampler,
    records: Sequence[FrameRecord],
    stage2: Optional[Callable[[np.ndarray], np.ndarray]],
    patch_recs: Sequence[PatchRecord],
    info: Optional[RefinerInfo],
    use_blend: bool = True,
) -> np.ndarray:
    """Frame-px predictions as ``predict_landmarks`` makes them, on ground-truth-box crops."""
    crops, mats = sampler.eval_crops(records)
    p1, p2 = two_stage(stage1, stage2, crops, mats, patch_recs, info, sampler.to_model, sampler.size)
    if p2 is None or info is None:
        return p1
    return blend_refined(p1, p2, mats, info.blend if use_blend else None)


def fit_blend(
    stage1: Callable[[np.ndarray], np.ndarray],
    stage2: Callable[[np.ndarray], np.ndarray],
    sampler: CropSampler,
    records: Sequence[FrameRecord],
    patch_recs: Sequence[PatchRecord],
    info: RefinerInfo,
    seed: int,
    passes: int = BLEND_PASSES,
) -> Gains:
    """Per-landmark 2x2 gains on the refiner's correction, least squares on augmented crops.

    Stage-one crops are augmented (box jitter, geometry, light), so stage one errs as it does
    on new shots (its training and held-out errors match closely); the gain that best maps the
    refiner's correction onto the true one is then ~1 where the patch pins a landmark and ~0
    along directions it cannot see (a seam, the side of the face).
    """
    d_true: List[np.ndarray] = []
    d_ref: List[np.ndarray] = []
    for p in range(passes):
        crops, mats, gts = [], [], []
        for i, r in enumerate(records):
            c, m, _ = sampler.crop_for(r, np.random.default_rng([seed, BLEND_STREAM, p, i]))
            crops.append(c)
            mats.append(m)
            gts.append(r.points)
        mats_a = np.stack(mats)
        p1, p2 = two_stage(stage1, stage2, np.stack(crops), mats_a, patch_recs, info, sampler.to_model, sampler.size)
        assert p2 is not None
        inv = np.linalg.inv(mats_a[:, :2, :2])
        d_true.append(np.einsum("nij,nlj->nli", inv, np.stack(gts) - p1))
        d_ref.append(np.einsum("nij,nlj->nli", inv, p2 - p1))
    dt, dr = np.concatenate(d_true), np.concatenate(d_ref)
    gains = []
    for j in range(dt.shape[1]):
        ok = np.isfinite(dt[:, j]).all(axis=1) & np.isfinite(dr[:, j]).all(axis=1)
        a, b = dt[ok, j], dr[ok, j]
        if len(a) < BLEND_MIN_SAMPLES:
            gains.append(((1.0, 0.0), (0.0, 1.0)))
            continue
        s_rr = b.T @ b + BLEND_RIDGE * len(a) * np.eye(2)
        g = (a.T @ b) @ np.linalg.inv(s_rr)
        gains.append(((float(g[0, 0]), float(g[0, 1])), (float(g[1, 0]), float(g[1, 1]))))
    return tuple(gains)
