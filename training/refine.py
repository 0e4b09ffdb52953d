"""Training data for the refiner: per-landmark patches at a finer scale than the face crop.

A 2K face crop shrinks the frame 4-6x, which limits how precisely the first stage can place a
landmark. The refiner sees a small patch around each first-stage landmark at about 2x finer
scale and re-locates it. Patches are sampled around the ground truth with offsets like the
first stage's errors, so it learns to pull a landmark back from wherever stage one left it;
along a featureless contour it cannot, and learns to leave the position alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from seamroto.landmarks import (
    compose_affine,
    crop_bounds,
    crop_matrix,
    invert_affine,
    map_points,
    patch_matrix,
    reduce_region,
    reduction_factor,
    warp_from_region,
)
from training.augment import AugmentConfig, apply_camera, apply_light, jitter_box, sample_geometry, swap_background
from training.dataset import INSIDE_MARGIN_PX, WORK_SPACE, Batch, FrameRecord, default_to_model

logger = logging.getLogger(__name__)

PATCH_SIZE = 32
PATCH_FRACTION = 0.1
# Stored area around each landmark, in patch sides (room for offsets and rotation).
PATCH_REGION = 2.0
# First-stage error model, in patch px: mostly small, sometimes anywhere in the patch.
OFFSET_SIGMA_PX = 2.0
OFFSET_WIDE_PX = 9.0
OFFSET_WIDE_P = 0.3


@dataclass(frozen=True)
class RefineConfig:
    """Refiner geometry and training length."""

    patch_size: int = PATCH_SIZE
    patch_fraction: float = PATCH_FRACTION
    steps: int = 2400
    batch_size: int = 64
    offset_sigma_px: float = OFFSET_SIGMA_PX
    offset_wide_px: float = OFFSET_WIDE_PX
    offset_wide_p: float = OFFSET_WIDE_P
    blend: bool = True


@dataclass(frozen=True)
class PatchRecord:
    """Stored fine-scale regions of one frame: one per known landmark (None when unknown)."""

    frame: FrameRecord
    regions: Tuple[Optional[Tuple[np.ndarray, np.ndarray]], ...]


def patch_records(
    image: np.ndarray,
    rec: FrameRecord,
    *,
    size: int,
    crop_scale: float,
    cfg: RefineConfig,
    colourspace: str,
) -> PatchRecord:
    """Reduce the frame around each known landmark on the grid inference uses for patches."""
    from seamroto import colour

    base = crop_matrix(rec.box, size, crop_scale)
    regions: List[Optional[Tuple[np.ndarray, np.ndarray]]] = []
    for pt in rec.points:
        if not np.isfinite(pt).all():
            regions.append(None)
            continue
        pm = patch_matrix(base, pt, size, cfg.patch_size, cfg.patch_fraction)
        factor = reduction_factor(pm)
        grow = patch_matrix(base, pt, size, cfg.patch_size, cfg.patch_fraction * PATCH_REGION)
        region, to_img = reduce_region(image[:, :, :3], crop_bounds(grow, cfg.patch_size, 2.0 * factor), factor)
        if colourspace != WORK_SPACE and region.size:
            region = colour.convert(region, colourspace, WORK_SPACE)
        regions.append((region.astype(np.float16), to_img))
    return PatchRecord(rec, tuple(regions))


class PatchSampler:
    """Batches of (patch, landmarks in patch px, mask) for the refiner; pure in (seed, step)."""

    def __init__(
        self,
        records: Sequence[PatchRecord],
        *,
        size: int,
        crop_scale: float,
        cfg: RefineConfig,
        augment: AugmentConfig,
        to_model: Optional[Callable[[np.ndarray], np.ndarray]] = None,
    ) -> None:
        self.records = list(records)
        self.size = size
        self.crop_scale = crop_scale
        self.cfg = cfg
        self.augment = augment
        self.to_model = to_model or default_to_model
        self.pairs = [(i, j) for i, r in enumerate(self.records) for j, g in enumerate(r.regions) if g is not None]
        if not self.pairs:
            raise ValueError("no landmark to train the refiner on")

    def offset(self, rng: np.random.Generator) -> np.ndarray:
        """A first-stage-like error, patch px."""
        if rng.random() < self.cfg.offset_wide_p:
            return rng.uniform(-self.cfg.offset_wide_px, self.cfg.offset_wide_px, 2)
        return rng.normal(0.0, self.cfg.offset_sigma_px, 2)

    def patch_for(
        self, i: int, j: int, rng: Optional[np.random.Generator]
    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Patch of landmark ``j`` of record ``i``, its patch->frame affine, all landmarks in patch px."""
        rec = self.records[i]
        fr = rec.frame
        box = fr.box if rng is None else jitter_box(fr.box, rng, self.augment.box_jitter)
        face = crop_matrix(box, self.size, self.crop_scale)
        if rng is not None:
            face = compose_affine(face, sample_geometry(rng, self.size, self.augment))
        pm = patch_matrix(face, fr.points[j], self.size, self.cfg.patch_size, self.cfg.patch_fraction)
        if rng is not None:
            shift = pm[:, :2] @ self.offset(rng)
            pm = pm.copy()
            pm[:, 2] += shift
        region, to_img = rec.regions[j]  # type: ignore[misc]
        patch = warp_from_region(region.astype(np.float32), to_img, pm, self.cfg.patch_size)
        pts = map_points(fr.points, invert_affine(pm))
        if rng is not None:
            patch = apply_light(patch, rng, self.augment)
            outline = None if fr.outline is None else map_points(fr.outline, invert_affine(pm))
            patch = swap_background(patch, pts, rng, self.augment, outline)
        patch = self.to_model(patch)
        if rng is not None:
            patch = apply_camera(patch, rng, self.augment)
        return patch, pm, pts

    def batch(self, seed: int, step: int, batch_size: int) -> Batch:
        """Batch ``step``: random (frame, landmark) pairs, each patch trained on its own channel.

        Other landmarks that happen to fall inside a patch are trained too (free supervision).
        """
        rng = np.random.default_rng([seed, step, 1])
        pick = rng.integers(len(self.pairs), size=batch_size)
        ps, pts, masks = [], [], []
        p = self.cfg.patch_size
        for k, idx in enumerate(pick):
            i, j = self.pairs[int(idx)]
            patch, _, pt = self.patch_for(i, j, np.random.default_rng([seed, step, k, 1]))
            inside = np.isfinite(pt).all(axis=1) & (pt >= INSIDE_MARGIN_PX).all(axis=1)
            inside &= (pt <= p - INSIDE_MARGIN_PX).all(axis=1)
            ps.append(patch)
            pts.append(np.nan_to_num(pt, nan=0.0))
            masks.append(inside)
        return Batch(np.stack(ps), np.stack(pts).astype(np.float32), np.stack(masks))
