"""Raster of a synthetic puppet frame: set background, head crop with supersampling, film look.

The head is drawn only inside its bounding box, each part at ``SUPERSAMPLE_*`` times the
resolution and box-filtered down, from the same flattened Bezier paths the ground truth holds.
Plates are scene-linear float32 RGB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from seamroto.synth.bezier import BezierPath
from seamroto.synth.characters import RGB, SynthCharacter
from seamroto.synth.geometry import FrameGeometry
from seamroto.synth.motion import (
    STREAM_BACKGROUND,
    STREAM_FRAME,
    STREAM_GRAIN,
    STREAM_TEXTURE,
    FrameState,
    salt,
)

#: Supersampling of small features (eyes, brows, mouth, seam gap) and of large areas.
SUPERSAMPLE_FINE = 8
SUPERSAMPLE_COARSE = 4
#: Fixed-point bits for cv2.fillPoly (sub-pixel vertex positions).
FILL_SHIFT = 8
#: cv2.fillPoly's outward growth across an edge, in sub-pixels (see ``_inset``).
FILL_GROW_MAJOR = 0.45
FILL_GROW_MINOR = 0.15
#: Polygon flattening step in image px (chord error well under 0.01 px at these radii).
FLATTEN_STEP_PX = 0.5
#: Face-space texture: extent (face units) and size (px) of the shading and albedo maps.
TEXTURE_EXTENT = ((-0.8, 0.8), (-0.85, 0.75))
TEXTURE_SIZE = 320
ALBEDO_NOISE = 0.05
FRECKLE_SOFTNESS = 0.8
#: Key light direction (x right, y down, z to camera) and ambient level on the head.
LIGHT_DIR = (-0.45, -0.55, 0.7)
AMBIENT = 0.5
#: Motion blur: shutter fraction of the frame-to-frame move, and its cap in px.
BLUR_SHUTTER = 0.3
BLUR_MAX_PX = 6.0
BLUR_MIN_PX = 0.3
#: Lens softness on the head, px sigma.
LENS_SIGMA_PX = 0.45
#: Drop shadow of the head on the set: offset and softness (face units), darkness.
SHADOW_OFFSET = (0.05, 0.06)
SHADOW_SOFTNESS = 0.03
SHADOW_STRENGTH = 0.35
SHADOW_REDUCE = 4
#: Film grain: additive floor and part proportional to the value; field padding for offsets.
GRAIN_BASE = 0.003
GRAIN_REL = 0.035
GRAIN_PAD = 64
#: Shading tweaks of painted parts.
NOSE_SHADE = 0.9
NOSTRIL_COLOUR = (0.03, 0.012, 0.01)
EAR_SHADE = 0.82
HAIR_TEXTURE = 3.0
LID_SHADOW = 0.35
GLINT_COLOUR = (1.6, 1.6, 1.6)
#: Background defocus (px sigma at the render scale of 1/``BACKGROUND_REDUCE``).
BACKGROUND_REDUCE = 2
BACKGROUND_BLUR = 1.2

Colour = Union[RGB, np.ndarray]


@dataclass(frozen=True)
class Region:
    """An integer pixel rectangle of the frame, _img px."""

    x0: int
    y0: int
    w: int
    h: int

    @property
    def empty(self) -> bool:
        """True when the rectangle holds no pixel."""
        return self.w <= 0 or self.h <= 0

    def inside(self, other: Region) -> Tuple[slice, slice]:
        """Slices of this region in ``other``'s array (this region must lie inside it)."""
        return (
            slice(self.y0 - other.y0, self.y0 - other.y0 + self.h),
            slice(self.x0 - other.x0, self.x0 - other.x0 + self.w),
        )


def bounds(points: np.ndarray, pad: float, clip: Region) -> Region:
    """Integer box around ``points`` grown by ``pad`` px and clipped to ``clip``."""
    x0 = max(int(math.floor(points[:, 0].min() - pad)), clip.x0)
    y0 = max(int(math.floor(points[:, 1].min() - pad)), clip.y0)
    x1 = min(int(math.ceil(points[:, 0].max() + pad)), clip.x0 + clip.w)
    y1 = min(int(math.ceil(points[:, 1].max() + pad)), clip.y0 + clip.h)
    return Region(x0, y0, x1 - x0, y1 - y0)


def _inset(poly: np.ndarray, subpixel: float) -> np.ndarray:
    """Move every vertex inwards by cv2.fillPoly's outward growth, measured in sub-pixels.

    cv2.fillPoly (LINE_8) sets every sub-pixel its 8-connected edge lines touch, which grows a
    shape by about half a sub-pixel: 0.5 across axis-aligned edges, a little less on diagonals.
    The inset ``0.5 * max(|nx|, |ny|) + 0.2 * min(|nx|, |ny|)`` (fitted on rotated squares)
    leaves about 0.003 px of mean edge bias at 4x-16x supersampling (was 0.5 / ss px).
    """
    nxt = np.roll(poly, -1, axis=0)
    area2 = float(np.dot(poly[:, 0], nxt[:, 1]) - np.dot(poly[:, 1], nxt[:, 0]))
    edge = nxt - poly
    length = np.linalg.norm(edge, axis=1, keepdims=True)
    normal = np.stack([edge[:, 1], -edge[:, 0]], axis=1) / np.maximum(length, 1e-12)
    if area2 < 0:
        normal = -normal
    vnormal = normal + np.roll(normal, 1, axis=0)
    vnormal /= np.maximum(np.linalg.norm(vnormal, axis=1, keepdims=True), 1e-12)
    ax, ay = np.abs(vnormal[:, 0]), np.abs(vnormal[:, 1])
    grow = FILL_GROW_MAJOR * np.maximum(ax, ay) + FILL_GROW_MINOR * np.minimum(ax, ay)
    return poly - vnormal * (grow * subpixel)[:, None]


def coverage(polygons: Sequence[np.ndarray], region: Region, supersample: int) -> np.ndarray:
    """Area coverage of filled polygons over the pixels of ``region``.

    Each polygon is filled at ``supersample`` x the resolution (after ``_inset`` removes
    cv2's outward growth) and box-filtered down.

    Shape: polygons (M, 2) float64 _img px -> (h, w) float32 in 0..1.
    """
    ss = supersample
    canvas: np.ndarray = np.zeros((region.h * ss, region.w * ss), dtype=np.uint8)
    # sub-pixel centres sit at integer cv2 coordinates: cv2 = (img - origin) * ss - 0.5
    origin = np.array([region.x0, region.y0], dtype=np.float64)
    pts = [
        np.round(((_inset(p, 1.0 / ss) - origin) * ss - 0.5) * (1 << FILL_SHIFT))
        .astype(np.int32)
        .reshape(-1, 1, 2)
        for p in polygons
        if len(p) >= 3
    ]
    cv2.fillPoly(canvas, pts, 255, cv2.LINE_8, FILL_SHIFT)
    small = cv2.resize(canvas, (region.w, region.h), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) * np.float32(1.0 / 255.0)


def path_coverage(path: BezierPath, region: Region, supersample: int) -> np.ndarray:
    """Coverage of one closed path over ``region`` (see ``coverage``)."""
    return coverage([path.flatten(FLATTEN_STEP_PX)], region, supersample)


def _lerp(dst: np.ndarray, alpha: np.ndarray, colour: Colour) -> None:
    """In place: ``dst = dst * (1 - alpha) + colour * alpha`` (alpha (h, w), dst (h, w, 3))."""
    a = alpha[..., None]
    dst *= 1.0 - a
    dst += np.asarray(colour, dtype=np.float32) * a


@dataclass(frozen=True, eq=False)
class ShotCanvas:
    """What stays fixed through a shot: the set, the grain field and the face textures.

    Grain is stored as ``1 + GRAIN_REL * n`` and ``GRAIN_BASE * n`` for unit noise ``n``, so a
    frame takes its grain in two passes: ``img * gain + floor``.

    Shape: ``background`` (H, W, 3) float32 albedo; ``grain_gain``/``grain_floor``
    (H + pad, W + pad, 3) float32; ``shade``/``albedo`` (S, S) float32 face-unit maps.
    """

    width: int
    height: int
    background: np.ndarray
    grain_gain: np.ndarray
    grain_floor: np.ndarray
    shade: np.ndarray
    albedo: np.ndarray


def _noise(rng: np.random.Generator, h: int, w: int, octaves: Sequence[int]) -> np.ndarray:
    """Smooth value noise in about -1..1: random grids of ``octaves`` cells upsampled and summed."""
    out = np.zeros((h, w), np.float32)
    total = 0.0
    for i, cells in enumerate(octaves):
        grid = rng.standard_normal((max(2, cells * h // max(h, w)), max(2, cells))).astype(
            np.float32
        )
        weight = 0.5**i
        out += weight * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += weight
    return out / np.float32(total)


def make_background(width: int, height: int, seed: int, salt: int = 0) -> np.ndarray:
    """A textured set: painted wall with a wallpaper pattern, a floor, props, a light pool.

    Rendered at 1/``BACKGROUND_REDUCE`` size and defocused, as a set behind the puppet is.

    Shape: (height, width, 3) float32 scene-linear albedo.
    """
    rng = np.random.default_rng([seed, STREAM_BACKGROUND, salt])
    w, h = max(2, width // BACKGROUND_REDUCE), max(2, height // BACKGROUND_REDUCE)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = xs / w, ys / h
    wall = rng.uniform(0.05, 0.22, size=3).astype(np.float32)
    wall2 = (wall * rng.uniform(0.7, 1.3, size=3)).astype(np.float32)
    img: np.ndarray = np.empty((h, w, 3), np.float32)
    img[:] = wall
    pattern = int(rng.integers(0, 3))
    period = rng.uniform(0.03, 0.07) * w
    if pattern == 0:
        motif = 0.5 + 0.5 * np.sin(2 * np.pi * xs / period)
    elif pattern == 1:
        motif = 0.5 + 0.5 * np.sin(2 * np.pi * xs / period) * np.sin(2 * np.pi * ys / period)
    else:
        motif = (np.abs(((xs + ys) % period) / period - 0.5) < 0.12).astype(np.float32)
    _lerp(img, (0.35 * motif).astype(np.float32), wall2)
    img *= (1.0 + 0.12 * _noise(rng, h, w, (6, 24, 96)))[..., None]
    horizon = rng.uniform(0.78, 0.92) * h
    floor = (rng.uniform(0.08, 0.2) * np.array([1.0, 0.75, 0.5])).astype(np.float32)
    grain = 1.0 + 0.25 * _noise(rng, h, w, (3, 8, 160))
    floor_a = np.clip(ys - horizon, 0.0, 1.0)
    _lerp(img, floor_a, floor * grain[..., None])
    for _ in range(int(rng.integers(2, 6))):
        colour = rng.uniform(0.02, 0.4, size=3).astype(np.float32)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rw, rh = rng.uniform(0.04, 0.2) * w, rng.uniform(0.06, 0.4) * h
        mask = np.zeros((h, w), np.uint8)
        if rng.uniform() < 0.5:
            cv2.rectangle(mask, (int(cx - rw), int(cy - rh)), (int(cx + rw), int(cy + rh)), 255, -1)
        else:
            cv2.ellipse(mask, (int(cx), int(cy)), (int(rw), int(rh)), 0.0, 0, 360, 255, -1)
        _lerp(img, mask.astype(np.float32) / 255.0, colour)
    pool_x, pool_y = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.6)
    pool = np.exp(-(((u - pool_x) / 0.45) ** 2 + ((v - pool_y) / 0.55) ** 2))
    img *= (0.45 + 0.75 * pool).astype(np.float32)[..., None]
    img = cv2.GaussianBlur(img, (0, 0), BACKGROUND_BLUR)
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)


def make_grain(width: int, height: int, seed: int, salt: int = 0) -> np.ndarray:
    """Unit-variance film grain, slightly soft and partly shared between channels.

    Shape: (height + GRAIN_PAD, width + GRAIN_PAD, 3) float32.
    """
    rng = np.random.default_rng([seed, STREAM_GRAIN, salt])
    g: np.ndarray = rng.standard_normal((height + GRAIN_PAD, width + GRAIN_PAD, 3), dtype=np.float32)
    g = cv2.GaussianBlur(g, (3, 3), 0.6)
    g = 0.6 * g + 0.4 * g.mean(axis=2, keepdims=True)
    g /= np.float32(g.std() + 1e-6)
    return g


def make_textures(spec: SynthCharacter, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Face-space shading (key light on an ellipsoid head) and skin albedo variation.

    Shape: two (TEXTURE_SIZE, TEXTURE_SIZE) float32 maps.
    """
    rng = np.random.default_rng([seed, STREAM_TEXTURE, salt(spec.name)])
    n = TEXTURE_SIZE
    (u0, u1), (v0, v1) = TEXTURE_EXTENT
    v, u = np.mgrid[0:n, 0:n].astype(np.float32)
    u = u0 + (u + 0.5) * (u1 - u0) / n
    v = v0 + (v + 0.5) * (v1 - v0) / n
    nx, ny = u / (spec.cheek_half_width + 0.12), (v + 0.02) / 0.62
    nz = np.sqrt(np.clip(1.0 - nx * nx - ny * ny, 0.0, 1.0))
    norm = np.sqrt(nx * nx + ny * ny + nz * nz) + 1e-6
    light = np.asarray(LIGHT_DIR, dtype=np.float32)
    light /= np.linalg.norm(light)
    lambert = np.clip((nx * light[0] + ny * light[1] + nz * light[2]) / norm, 0.0, 1.0)
    shade = (AMBIENT + (1.0 - AMBIENT) * lambert).astype(np.float32)
    albedo: np.ndarray = 1.0 + ALBEDO_NOISE * _noise(rng, n, n, (8, 32, 96))
    for _ in range(spec.freckles):
        cx, cy = rng.uniform(0.3, 0.7) * n, rng.uniform(0.45, 0.62) * n
        r = rng.uniform(0.6, 1.4)
        cv2.circle(albedo, (int(cx * 16), int(cy * 16)), int(r * 16), 0.82, -1, cv2.LINE_AA, 4)
    if spec.freckles:
        albedo = cv2.GaussianBlur(albedo, (0, 0), FRECKLE_SOFTNESS)
    return shade, albedo.astype(np.float32)


def make_canvas(spec: SynthCharacter, seed: int, width: int, height: int) -> ShotCanvas:
    """Build a shot's fixed layers once (background, grain, face textures)."""
    shade, albedo = make_textures(spec, seed)
    grain = make_grain(width, height, seed, salt(spec.name))
    floor = grain * np.float32(GRAIN_BASE)
    grain *= np.float32(GRAIN_REL)
    grain += np.float32(1.0)
    return ShotCanvas(
        width=width,
        height=height,
        background=make_background(width, height, seed, salt(spec.name)),
        grain_gain=grain,
        grain_floor=floor,
        shade=shade,
        albedo=albedo,
    )


def _texture_matrix(face_matrix: np.ndarray, region: Region) -> np.ndarray:
    """Affine map texture px -> region px centres, for cv2.warpAffine."""
    (u0, u1), (v0, v1) = TEXTURE_EXTENT
    n = TEXTURE_SIZE
    # texture pixel centre i <-> face unit u0 + (i + 0.5) * du; region pixel centre j <-> j + 0.5
    tex_to_face = np.array([[(u1 - u0) / n, 0.0, u0 + 0.5 * (u1 - u0) / n],
                            [0.0, (v1 - v0) / n, v0 + 0.5 * (v1 - v0) / n], [0, 0, 1]])
    face_to_img = np.vstack([face_matrix, [0, 0, 1]])
    img_to_region = np.array([[1.0, 0.0, -region.x0 - 0.5], [0.0, 1.0, -region.y0 - 0.5], [0, 0, 1]])
    return (img_to_region @ face_to_img @ tex_to_face)[:2]


def _warp(tex: np.ndarray, face_matrix: np.ndarray, region: Region, border: float) -> np.ndarray:
    """A face-space map resampled onto the pixels of ``region``."""
    return cv2.warpAffine(
        tex, _texture_matrix(face_matrix, region), (region.w, region.h), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=border,
    )


def _blur_kernel(vx: float, vy: float) -> Optional[np.ndarray]:
    """Normalised line kernel centred on the origin for a move of (vx, vy) px, or None."""
    length = math.hypot(vx, vy) * BLUR_SHUTTER
    if length < BLUR_MIN_PX:
        return None
    scale = min(length, BLUR_MAX_PX) / length
    dx, dy = vx * BLUR_SHUTTER * scale, vy * BLUR_SHUTTER * scale
    r = int(math.ceil(max(abs(dx), abs(dy)) / 2)) + 1
    size = 2 * r + 1
    ss = 8
    k = np.zeros((size * ss, size * ss), np.uint8)
    c = (size * ss) / 2.0 - 0.5  # cv2 drawing coordinates put pixel centres on integers
    p0 = (int(round((c - dx * ss / 2) * 16)), int(round((c - dy * ss / 2) * 16)))
    p1 = (int(round((c + dx * ss / 2) * 16)), int(round((c + dy * ss / 2) * 16)))
    cv2.line(k, p0, p1, 255, max(1, ss // 4), cv2.LINE_AA, 4)
    kernel = cv2.resize(k, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    # point-symmetric, so the blur moves no feature: landmarks stay at the shutter centre
    kernel = kernel + kernel[::-1, ::-1]
    return kernel / kernel.sum()


@dataclass
class _Crop:
    """The head's working buffers: premultiplied colour and alpha over ``region``."""

    region: Region
    col: np.ndarray
    acc: np.ndarray

    def sub(self, path: BezierPath, pad: float = 1.0) -> Region:
        """Region of ``path``'s box inside the crop."""
        return bounds(path.flatten(FLATTEN_STEP_PX * 4), pad, self.region)

    def paint(
        self, path: BezierPath, colour: Colour, supersample: int, *, clip: Optional[np.ndarray]
        = None, region: Optional[Region] = None, alpha: bool = True,
    ) -> Tuple[Region, np.ndarray]:
        """Composite ``colour`` over the crop inside ``path``; returns the region and coverage."""
        reg = region if region is not None else self.sub(path)
        if reg.empty:
            return reg, np.zeros((0, 0), np.float32)
        cov = path_coverage(path, reg, supersample)
        if clip is not None:
            cov = cov * clip
        ys, xs = reg.inside(self.region)
        col = colour[ys, xs] if isinstance(colour, np.ndarray) and colour.ndim == 3 else colour
        _lerp(self.col[ys, xs], cov, col)
        if alpha:
            a = self.acc[ys, xs]
            a *= 1.0 - cov
            a += cov
        return reg, cov


def _seam_gap_polygon(seam: BezierPath, half_px: float) -> np.ndarray:
    """Outline of the dark gap: the flattened seam offset by ``half_px`` along its normals."""
    line = seam.flatten(FLATTEN_STEP_PX)
    d = np.gradient(line, axis=0)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    normal = np.stack([-d[:, 1], d[:, 0]], axis=1)
    return np.concatenate([line - normal * half_px, (line + normal * half_px)[::-1]])


def render_head(
    spec: SynthCharacter,
    geom: FrameGeometry,
    state: FrameState,
    canvas: ShotCanvas,
    mattes: Optional[Dict[str, Tuple[Region, np.ndarray]]] = None,
) -> Optional[_Crop]:
    """Draw the head into a crop around it (None when it is entirely outside the frame).

    ``mattes``, when given, receives the coverage of the ground-truth shapes as drawn (for
    tests: shape-vs-render agreement).
    """
    frame = Region(0, 0, canvas.width, canvas.height)
    scale = state.pose.scale
    head = [geom.shapes["face"], geom.parts["ear_L"], geom.parts["ear_R"]]
    if "hair" in geom.parts:
        head.append(geom.parts["hair"])
    pts = np.concatenate([p.flatten(FLATTEN_STEP_PX * 4) for p in head])
    pad = BLUR_MAX_PX + 4 + scale * (max(SHADOW_OFFSET) + 3 * SHADOW_SOFTNESS)
    region = bounds(pts, pad, frame)
    if region.empty:
        return None
    crop = _Crop(region, np.zeros((region.h, region.w, 3), np.float32),
                 np.zeros((region.h, region.w), np.float32))
    pal = spec.palette
    fine, coarse = SUPERSAMPLE_FINE, SUPERSAMPLE_COARSE
    albedo = _warp(canvas.albedo, geom.face_matrix, region, 1.0)
    skin = albedo[..., None] * np.asarray(pal.skin, np.float32)

    def keep(name: str, reg: Region, cov: np.ndarray) -> None:
        if mattes is not None:
            mattes[name] = (reg, cov)

    for side in ("L", "R"):
        crop.paint(geom.parts[f"ear_{side}"], skin * EAR_SHADE, coarse)
    if "hair" in geom.parts:
        hair = (1.0 + HAIR_TEXTURE * (albedo - 1.0))[..., None] * np.asarray(pal.hair, np.float32)
        crop.paint(geom.parts["hair"], hair, coarse)
    face_reg, face_cov = crop.paint(geom.shapes["face"], skin, coarse)
    keep("face", face_reg, face_cov)
    reg, cov = crop.paint(geom.shapes["nose"], skin * NOSE_SHADE, fine)
    keep("nose", reg, cov)
    for side in ("L", "R"):
        crop.paint(geom.parts[f"nostril_{side}"], NOSTRIL_COLOUR, fine)

    for side in ("L", "R"):
        eye = geom.shapes[f"eye_{side}"]
        reg = crop.sub(eye)
        if reg.empty:
            continue
        ys, xs = reg.inside(crop.region)
        a_eye = path_coverage(eye, reg, fine)
        a_lid = path_coverage(geom.shapes[f"lid_{side}"], reg, fine)
        keep(f"eye_{side}", reg, a_eye)
        keep(f"lid_{side}", reg, a_lid)
        shadow_sigma = max(0.5, 0.15 * spec.eye_top * scale)
        lid_shadow = cv2.GaussianBlur(a_lid, (0, 0), shadow_sigma)
        e = np.empty((reg.h, reg.w, 3), np.float32)
        e[:] = np.asarray(pal.sclera, np.float32)
        e *= (1.0 - LID_SHADOW * lid_shadow)[..., None]
        for part, colour in (("iris", pal.iris), ("pupil", pal.pupil), ("glint", GLINT_COLOUR)):
            a_part = path_coverage(geom.parts[f"{part}_{side}"], reg, fine)
            _lerp(e, a_part, colour)
            if part == "pupil":
                keep(f"pupil_{side}", reg, a_part * (1.0 - a_lid) * a_eye)
        _lerp(e, a_lid, pal.lid)
        _lerp(e, path_coverage(geom.parts[f"lash_{side}"], reg, fine), pal.lash)
        _lerp(crop.col[ys, xs], a_eye, e)

    for side in ("L", "R"):
        reg, cov = crop.paint(geom.shapes[f"brow_{side}"], pal.brow, fine, alpha=False)
        keep(f"brow_{side}", reg, cov)
    mouth = geom.shapes["mouth"]
    reg, cov = crop.paint(mouth, pal.lip, fine, alpha=False)
    keep("mouth", reg, cov)
    if not reg.empty:
        opening = path_coverage(geom.parts["mouth_open"], reg, fine)
        crop.paint(geom.parts["mouth_open"], pal.mouth, fine, region=reg, alpha=False)
        crop.paint(geom.parts["teeth"], pal.teeth, fine, region=reg, clip=opening, alpha=False)

    # the two prints differ slightly; the lower one is a different print on every frame
    if not face_reg.empty:
        ys, xs = face_reg.inside(crop.region)
        low = path_coverage(geom.parts["lower_half"], face_reg, coarse)
        upper = np.asarray(spec.upper_gain, np.float32)
        lower = np.asarray(state.lower_tint, np.float32)
        gain = upper + (lower - upper) * low[..., None]
        crop.col[ys, xs] *= 1.0 + face_cov[..., None] * (gain - 1.0)
        gap = _seam_gap_polygon(geom.shapes["seam"], 0.5 * geom.seam_gap_px)
        greg = bounds(gap, 1.0, face_reg)
        if not greg.empty:
            gys, gxs = greg.inside(crop.region)
            g = coverage([gap], greg, fine) * face_cov[greg.inside(face_reg)]
            crop.col[gys, gxs] *= (1.0 - spec.gap_darkness * g)[..., None]
            keep("seam_gap", greg, g)

    shade = _warp(canvas.shade, geom.face_matrix, region, AMBIENT)
    crop.col *= shade[..., None]
    kernel = _blur_kernel(*state.blur)
    if kernel is not None:
        crop.col = cv2.filter2D(crop.col, -1, kernel, borderType=cv2.BORDER_CONSTANT)
        crop.acc = cv2.filter2D(crop.acc, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    crop.col = cv2.GaussianBlur(crop.col, (0, 0), LENS_SIGMA_PX)
    crop.acc = cv2.GaussianBlur(crop.acc, (0, 0), LENS_SIGMA_PX)
    return crop


def _shadow(alpha: np.ndarray, scale: float) -> np.ndarray:
    """The head's soft drop shadow on the set, blurred at quarter size (it is very soft)."""
    h, w = alpha.shape
    q = SHADOW_REDUCE
    small = cv2.resize(alpha, (max(1, w // q), max(1, h // q)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), max(0.5, SHADOW_SOFTNESS * scale / q))
    # small px centre i sits at full px q * i + (q - 1) / 2; shift by the shadow offset
    dx = SHADOW_OFFSET[0] * scale + (q - 1) / 2
    dy = SHADOW_OFFSET[1] * scale + (q - 1) / 2
    m = np.array([[q, 0.0, dx], [0.0, q, dy]])
    return cv2.warpAffine(small, m, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


def render_frame(
    spec: SynthCharacter,
    geom: FrameGeometry,
    state: FrameState,
    canvas: ShotCanvas,
    *,
    seed: int,
    exposure: float,
    light_tint: RGB,
    mattes: Optional[Dict[str, Tuple[Region, np.ndarray]]] = None,
) -> np.ndarray:
    """Render one plate: set, head with shadow, stage light and flicker, film grain.

    Shape: (height, width, 3) float32 scene-linear RGB.
    """
    light = np.asarray(light_tint, np.float32) * np.float32(exposure * state.flicker)
    img = np.multiply(canvas.background, light)
    crop = render_head(spec, geom, state, canvas, mattes)
    if crop is not None:
        ys, xs = crop.region.inside(Region(0, 0, canvas.width, canvas.height))
        dst = img[ys, xs]
        dst *= (1.0 - SHADOW_STRENGTH * _shadow(crop.acc, state.pose.scale))[..., None]
        dst *= (1.0 - crop.acc)[..., None]
        crop.col *= light
        dst += crop.col
    rng = np.random.default_rng([seed, STREAM_FRAME, salt(spec.name), state.frame])
    oy, ox = (int(v) for v in rng.integers(0, GRAIN_PAD, size=2))
    window = (slice(oy, oy + canvas.height), slice(ox, ox + canvas.width))
    # the two grain passes through cv2: same values, about 1.5x faster than numpy here
    cv2.multiply(img, canvas.grain_gain[window], dst=img)
    cv2.add(img, canvas.grain_floor[window], dst=img)
    np.maximum(img, 0.0, out=img)
    return img
