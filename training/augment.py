"""Augmentation for few-shot landmark training: geometry, light, blur, noise, seam and background.

Five annotated shots are a few hundred near-identical frames; the model must still cope with
imperfect face boxes, exposure and colour flicker between shots, motion blur, grain, a seam
printed darker or lighter, and a new set behind the puppet. Every function takes an explicit
``numpy.random.Generator`` so a sample is a pure function of (seed, step, index).

Crops arrive in scene-linear light (gain and colour casts are physical there) and leave
encoded for the model; gamma, blur and noise act on the encoded crop, as a camera's would.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Optional, Sequence

import cv2
import numpy as np

logger = logging.getLogger(__name__)

PROPS_MAX = 3  # coloured shapes laid over a swapped-in background


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of every augmentation; ``AugmentConfig.off()`` gives the identity.

    Geometry ranges are fractions of the crop side (translate) or of the box side (jitter).
    Light ranges are in stops (gain) and fractions (colour). Blur and noise are in crop px and
    code values.
    """

    scale: float = 0.10
    rotate_deg: float = 10.0
    shear: float = 0.04
    translate: float = 0.04
    box_jitter: float = 0.04
    p_light: float = 0.8
    gain_stops: float = 0.8
    colour: float = 0.08
    gamma: float = 0.15
    p_blur: float = 0.25
    motion_px: float = 2.5
    defocus_px: float = 1.0
    p_noise: float = 0.5
    noise: float = 0.02
    grain_px: float = 1.0
    p_seam: float = 0.5
    seam_dark: float = 0.5
    seam_width_px: float = 2.0
    seam_mismatch: float = 0.08
    p_background: float = 0.5
    face_hull_grow: float = 1.15

    @classmethod
    def off(cls) -> AugmentConfig:
        """No augmentation at all (for evaluation crops and tests)."""
        return cls(
            scale=0.0, rotate_deg=0.0, shear=0.0, translate=0.0, box_jitter=0.0, p_light=0.0,
            p_blur=0.0, p_noise=0.0, p_seam=0.0, p_background=0.0,
        )


def jitter_box(box: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Move each edge of (x, y, w, h) by up to ``amount`` x the box's longer side.

    Teaches tolerance of an imperfect face box (a detector's or the previous frame's).
    """
    if amount <= 0:
        return np.asarray(box, dtype=np.float64)
    x, y, w, h = (float(v) for v in box)
    d = rng.uniform(-amount, amount, 4) * max(w, h)
    x0, y0, x1, y1 = x + d[0], y + d[1], x + w + d[2], y + h + d[3]
    return np.array([x0, y0, max(1.0, x1 - x0), max(1.0, y1 - y0)])


def sample_geometry(rng: np.random.Generator, size: int, cfg: AugmentConfig) -> np.ndarray:
    """A random similarity + shear + shift about the crop centre, crop->crop (2, 3).

    Composed into the crop->frame affine before resampling, so geometry costs no extra
    interpolation and the landmarks transform exactly.
    """
    c = 0.5 * size
    s = math.exp(rng.uniform(-cfg.scale, cfg.scale)) if cfg.scale > 0 else 1.0
    a = math.radians(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg)) if cfg.rotate_deg > 0 else 0.0
    sh = rng.uniform(-cfg.shear, cfg.shear) if cfg.shear > 0 else 0.0
    t = rng.uniform(-cfg.translate, cfg.translate, 2) * size if cfg.translate > 0 else np.zeros(2)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    lin = s * rot @ np.array([[1.0, sh], [0.0, 1.0]])
    shift = np.array([c, c]) - lin @ np.array([c, c]) + t
    return np.concatenate([lin, shift[:, None]], axis=1)


def apply_light(crop: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Exposure flicker and colour cast, in scene-linear light (in place)."""
    if rng.random() >= cfg.p_light:
        return crop
    gain = 2.0 ** rng.uniform(-cfg.gain_stops, cfg.gain_stops)
    cast = 1.0 + rng.uniform(-cfg.colour, cfg.colour, 3)
    crop *= (gain * cast).astype(np.float32)
    return crop


def _seam_side(points: np.ndarray, size: int) -> Optional[np.ndarray]:
    """Boolean (S, S) mask of the crop below the seam polyline (y down), or None if degenerate."""
    p = points[np.isfinite(points).all(axis=1)]
    if len(p) < 2:
        return None
    p = p[np.argsort(p[:, 0])]
    if p[-1, 0] - p[0, 0] < 1.0:
        return None
    xs = np.arange(size) + 0.5
    seam_y = np.interp(xs, p[:, 0], p[:, 1])
    ys = (np.arange(size) + 0.5)[:, None]
    return ys > seam_y[None, :]


def apply_seam(
    crop: np.ndarray,
    seams_crop: Sequence[np.ndarray],
    rng: np.random.Generator,
    cfg: AugmentConfig,
) -> np.ndarray:
    """Vary the seam: darker/lighter split line and a colour mismatch between the face halves.

    Real prints differ in how visible the split is; the model must not key on its darkness.

    Args:
        crop: (S, S, 3) float32 linear, modified in place.
        seams_crop: per seam, its landmark polyline (K, 2) in crop px (NaN rows allowed).
        rng: random source.
        cfg: ranges.
    """
    if not seams_crop or rng.random() >= cfg.p_seam:
        return crop
    size = crop.shape[0]
    for poly in seams_crop:
        below = _seam_side(poly, size)
        if below is None:
            continue
        mismatch = (1.0 + rng.uniform(-cfg.seam_mismatch, cfg.seam_mismatch, 3)).astype(np.float32)
        crop[below] *= mismatch
        p = poly[np.isfinite(poly).all(axis=1)]
        p = p[np.argsort(p[:, 0])]
        line = np.zeros((size, size), np.float32)
        width = max(1, int(round(rng.uniform(0.5, cfg.seam_width_px))))
        pts = np.round(p * 16).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(line, [pts], False, 1.0, width, cv2.LINE_AA, shift=4)
        k = np.float32(rng.uniform(1.0 - cfg.seam_dark, 1.0 + 0.5 * cfg.seam_dark))
        crop *= (1.0 + (k - 1.0) * line)[:, :, None]
    return crop


def random_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A stand-in set: smooth colour gradients, blobs and some noise, (S, S, 3) float32 linear."""
    lo = rng.uniform(0.0, 0.6, 3)
    hi = rng.uniform(0.0, 0.6, 3)
    a = rng.uniform(0, 2 * math.pi)
    xs = (np.arange(size) + 0.5) / size
    ramp = math.cos(a) * xs[None, :] + math.sin(a) * xs[:, None]
    ramp = (ramp - ramp.min()) / max(1e-6, float(ramp.max() - ramp.min()))
    tex = lo + (hi - lo) * ramp[:, :, None]
    small = rng.uniform(0, 1, (6, 6, 3)).astype(np.float32)
    blobs = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    tex = tex * (0.6 + 0.8 * blobs) + rng.normal(0, 0.01, (size, size, 3))
    if rng.random() < 0.5:
        # A hard edge (table top, flat, door frame) between two sets: the worst case for an
        # outline landmark that happens to sit on it.
        b = rng.uniform(0, 2 * math.pi)
        offset = rng.uniform(-0.4, 0.4)
        side = (math.cos(b) * (xs[None, :] - 0.5) + math.sin(b) * (xs[:, None] - 0.5)) > offset
        tex = np.where(side[:, :, None], tex, rng.uniform(0.0, 0.6, 3) * (0.8 + 0.4 * blobs))
    for _ in range(int(rng.integers(0, PROPS_MAX + 1))):
        # Props and costume in any colour, as bright and saturated as skin or more: a held-out
        # shot with an orange collar behind the chin pulled the jaw landmarks inwards when the
        # sets the model saw were all dim.
        prop = np.zeros((size, size), np.uint8)
        centre = (int(rng.uniform(0, size)), int(rng.uniform(0, size)))
        axes = (int(rng.uniform(0.1, 0.5) * size), int(rng.uniform(0.1, 0.5) * size))
        if rng.random() < 0.5:
            cv2.ellipse(prop, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1, cv2.LINE_AA)
        else:
            x, y = centre
            cv2.rectangle(prop, (x - axes[0], y - axes[1]), (x + axes[0], y + axes[1]), 1, -1)
        tex = np.where(prop[:, :, None] > 0, rng.uniform(0.0, 1.0, 3) * (0.9 + 0.2 * blobs), tex)
    return np.clip(tex, 0.0, None).astype(np.float32) ** 2.0


def swap_background(
    crop: np.ndarray,
    face_points_crop: np.ndarray,
    rng: np.random.Generator,
    cfg: AugmentConfig,
    outline_crop: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Replace what lies outside the face with a random set.

    Without it a few-shot model learns the training sets' backgrounds as landmark cues, and
    the outline landmarks (chin, sides of the face) fail on a shot with a new set behind them.
    With the face's roto outline the swap follows it (grown by a pixel, so the face keeps its
    own anti-aliased edge); without one it falls back to the grown landmark hull.
    """
    if rng.random() >= cfg.p_background:
        return crop
    size = crop.shape[0]
    face_mask = np.zeros((size, size), np.float32)
    if outline_crop is not None and len(outline_crop) >= 3:
        poly = np.round((outline_crop - 0.5) * 16).astype(np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(face_mask, [poly], 1.0, cv2.LINE_AA, shift=4)
        grown_mask = cv2.dilate(face_mask, np.ones((3, 3), np.uint8))
        mask = cv2.GaussianBlur(grown_mask, (0, 0), 0.7)[:, :, None]
    else:
        p = face_points_crop[np.isfinite(face_points_crop).all(axis=1)]
        if len(p) < 3:
            return crop
        centre = p.mean(axis=0)
        grown = centre + (p - centre) * cfg.face_hull_grow
        hull = cv2.convexHull(np.round((grown - 0.5) * 16).astype(np.int32))
        cv2.fillConvexPoly(face_mask, hull, 1.0, cv2.LINE_AA, shift=4)
        mask = cv2.GaussianBlur(face_mask, (0, 0), max(1.0, size / 64))[:, :, None]
    bg = random_texture(rng, size)
    crop[:] = crop * mask + bg * (1.0 - mask)
    return crop


def _motion_kernel(length: float, angle: float) -> np.ndarray:
    n = max(3, int(math.ceil(length)) | 1)
    k = np.zeros((n, n), np.float32)
    c = n // 2
    dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
    cv2.line(k, (int(round((c - dx) * 16)), int(round((c - dy) * 16))),
             (int(round((c + dx) * 16)), int(round((c + dy) * 16))), 1.0, 1, cv2.LINE_AA, shift=4)
    return k / max(1e-6, float(k.sum()))


def apply_camera(crop: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Gamma, motion/defocus blur and noise/grain on the encoded crop (returns a new array)."""
    out = crop
    if cfg.gamma > 0 and rng.random() < cfg.p_light:
        g = math.exp(rng.uniform(-cfg.gamma, cfg.gamma))
        out = np.power(np.clip(out, 0.0, 1.0), g, dtype=np.float32)
    if rng.random() < cfg.p_blur:
        if rng.random() < 0.5:
            k = _motion_kernel(rng.uniform(1.0, cfg.motion_px), rng.uniform(0, math.pi))
            out = cv2.filter2D(out, -1, k, borderType=cv2.BORDER_REFLECT)
        else:
            out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, cfg.defocus_px))
    if rng.random() < cfg.p_noise:
        sigma = rng.uniform(0.0, cfg.noise)
        noise = rng.normal(0.0, 1.0, out.shape).astype(np.float32)
        if rng.random() < 0.5:
            noise = cv2.GaussianBlur(noise, (0, 0), rng.uniform(0.5, cfg.grain_px)) * 2.0
        out = out + sigma * noise
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)
