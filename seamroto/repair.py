"""Seam-repair inputs: F_WireRemoval nodes keyed from the seam tracks, and headless preview clean plates.

F_WireRemoval (NukeX/FurnaceCore) describes a wire with 2, 3 or 5 on-screen points. Per Foundry's
reference guide the points are ``point1`` (start), ``point3`` (mid) and ``point5`` (end), with
``point2``/``point4`` used only by "Five Points"; so a 2-landmark seam keys point1/point5, a
3-landmark seam point1/point3/point5, and a longer seam is resampled to 5 points along its arc.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

from seamroto.coords import y_nuke_from_img
from seamroto.curves import rasterise
from seamroto.datamodel import LandmarkTrack, RotoShape, Seam
from seamroto.nk.numbers import format_decimal
from seamroto.nk.writer import animation_curve, quote_string, sanitize_node_name, write_node

logger = logging.getLogger(__name__)

WIRE_TYPES = {2: ("Two Points", (1, 5)), 3: ("Three Points", (1, 3, 5)), 5: ("Five Points", (1, 2, 3, 4, 5))}
INPAINT_RADIUS_PX = 5
CROP_MARGIN_PX = 16
MATTE_SUPERSAMPLING = 2


@dataclass(frozen=True)
class SeamKeys:
    """A seam's wire points per frame, in _img space. ``points[f]`` has shape (K, 2), K in 2, 3, 5."""

    seam: Seam
    points: Mapping[int, np.ndarray]

    @property
    def wire_type(self) -> str:
        """F_WireRemoval's ``wireType`` value for this point count."""
        return WIRE_TYPES[self.point_count][0]

    @property
    def point_count(self) -> int:
        """2, 3 or 5."""
        for pts in self.points.values():
            return len(pts)
        return 2


def _resample(poly: np.ndarray, count: int) -> np.ndarray:
    """``count`` points spaced evenly by arc length along an open polyline (ends kept)."""
    seg = np.linalg.norm(np.diff(poly, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        return np.repeat(poly[:1], count, axis=0)
    targets = np.linspace(0.0, s[-1], count)
    return np.stack([np.interp(targets, s, poly[:, 0]), np.interp(targets, s, poly[:, 1])], axis=1)


def seam_keys(seam: Seam, tracks: Sequence[LandmarkTrack], frames: Sequence[int]) -> SeamKeys:
    """Key a seam's wire from its landmark tracks; frames where any seam landmark is unknown are skipped."""
    by_name = {t.name: t for t in tracks}
    names = [n for n in seam.landmarks if n in by_name]
    count = 2 if len(names) <= 2 else (3 if len(names) == 3 else 5)
    out: Dict[int, np.ndarray] = {}
    for f in frames:
        xy = [by_name[n].xy(f) for n in names]
        if len(xy) < 2 or any(p is None or not np.all(np.isfinite(p)) for p in xy):
            continue
        poly = np.array(xy, dtype=np.float64)
        out[f] = poly if len(poly) == count else _resample(poly, count)
    return SeamKeys(seam, out)


def write_wire_removal(keys: SeamKeys, *, height: int, name: str, width_px: float, xpos: int = 0, ypos: int = 0) -> str:
    """An F_WireRemoval node whose points follow the seam (connects to the node above it)."""
    frames = sorted(keys.points)
    _, slots = WIRE_TYPES[keys.point_count]
    knobs: List[Tuple[str, str]] = [
        ("wireType", quote_string(keys.wire_type)),
        ("output", "Repair"),
        ("repairMethod", "Spatial"),
    ]
    for i, slot in enumerate(slots):
        xs = [(f, float(keys.points[f][i, 0])) for f in frames]
        ys = [(f, y_nuke_from_img(float(keys.points[f][i, 1]), height)) for f in frames]
        knobs.append((f"point{slot}", "{" + animation_curve(xs, "x") + " " + animation_curve(ys, "y") + "}"))
    knobs += [
        ("startWidth", format_decimal(width_px)),
        ("endWidth", format_decimal(width_px)),
        ("overallWidth", format_decimal(width_px)),
        ("label", quote_string(f"seam {keys.seam.name}")),
        ("xpos", str(xpos)),
        ("ypos", str(ypos)),
    ]
    return write_node("F_WireRemoval", sanitize_node_name(name), knobs)


def band_matte(shape: RotoShape, frame: int, width: int, height: int) -> Tuple[np.ndarray, Tuple[int, int]]:
    """The seam band's coverage on a crop around it: (mask (h, w) float32, (x0, y0) crop origin)."""
    pts = shape.points_array(frame)
    xy = pts[:, :2]
    reach = np.abs(pts[:, 2:6]).max() if len(pts) else 0.0
    x0 = int(max(0, np.floor(xy[:, 0].min() - reach - CROP_MARGIN_PX)))
    y0 = int(max(0, np.floor(xy[:, 1].min() - reach - CROP_MARGIN_PX)))
    x1 = int(min(width, np.ceil(xy[:, 0].max() + reach + CROP_MARGIN_PX)))
    y1 = int(min(height, np.ceil(xy[:, 1].max() + reach + CROP_MARGIN_PX)))
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0), np.float32), (x0, y0)
    local = pts.copy()
    local[:, 0] -= x0
    local[:, 1] -= y0
    return rasterise(local, True, x1 - x0, y1 - y0, MATTE_SUPERSAMPLING), (x0, y0)


def inpaint_seam(image_display: np.ndarray, bands: Sequence[RotoShape], frame: int) -> np.ndarray:
    """A preview clean plate: OpenCV inpainting inside each seam band, on a crop around it.

    Args:
        image_display: sRGB-encoded RGB float image in [0, 1]. Shape: (H, W, 3).
        bands: Closed seam-band shapes keyed on ``frame``.
        frame: Frame to repair.

    Returns:
        The repaired image, same shape and dtype.
    """
    h, w = image_display.shape[:2]
    out = image_display.copy()
    for band in bands:
        if frame not in band.keys:
            continue
        mask, (x0, y0) = band_matte(band, frame, w, h)
        if mask.size == 0:
            continue
        mh, mw = mask.shape
        crop = np.clip(out[y0 : y0 + mh, x0 : x0 + mw] * 255.0 + 0.5, 0, 255).astype(np.uint8)
        m8 = (mask > 0.02).astype(np.uint8) * 255
        fixed = cv2.inpaint(crop, m8, INPAINT_RADIUS_PX, cv2.INPAINT_TELEA).astype(np.float32) / 255.0
        alpha = np.clip(mask * 1.5, 0.0, 1.0)[..., None]
        out[y0 : y0 + mh, x0 : x0 + mw] = out[y0 : y0 + mh, x0 : x0 + mw] * (1 - alpha) + fixed * alpha
    return out


def full_matte(bands: Sequence[RotoShape], frame: int, width: int, height: int) -> np.ndarray:
    """Union of the seam-band mattes on a full frame (for paint/inpaint work). Shape: (H, W) float32."""
    matte = np.zeros((height, width), np.float32)
    for band in bands:
        if frame not in band.keys:
            continue
        mask, (x0, y0) = band_matte(band, frame, width, height)
        if mask.size:
            mh, mw = mask.shape
            region = matte[y0 : y0 + mh, x0 : x0 + mw]
            np.maximum(region, mask, out=region)
    return matte


def seam_bands(shapes: Sequence[RotoShape], band_names: Optional[Sequence[str]] = None) -> List[RotoShape]:
    """The closed seam-band shapes among ``shapes`` (named ``*_band`` or listed)."""
    names = set(band_names or ())
    return [s for s in shapes if s.closed and (s.name in names or s.name.endswith("_band"))]


def clean_plate_path(out_dir: Path, stem: str, frame: int) -> Path:
    """Where the preview clean plate of ``frame`` goes."""
    return out_dir / f"{stem}.{frame:04d}.png"
