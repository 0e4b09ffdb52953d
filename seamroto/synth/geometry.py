"""Face layout -> per-frame Bezier shapes and landmarks in _img px, shared by render and truth.

Every part is built in face units, then moved to the image with the pose's affine map for the
part's depth (see ``motion.Pose``). Landmarks are anchors of those same paths (or the mean of
anchors: brow centreline, iris centre), so a landmark sits on the rendered feature exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, Optional, Tuple

import cv2
import numpy as np
from numpy.typing import ArrayLike

from seamroto.synth.bezier import (
    BezierPath,
    catmull_rom,
    chain,
    circle,
    lerp_paths,
    reversed_path,
    sub_path,
)
from seamroto.synth.characters import MOUTH_SHAPES, SynthCharacter
from seamroto.synth.motion import Expression, Pose

#: Depth of each part towards the camera, face units (parallax under yaw).
DEPTH = {
    "face": 0.0,
    "hair": -0.05,
    "ears": -0.12,
    "eyes": 0.06,
    "brows": 0.07,
    "nose": 0.14,
    "mouth": 0.09,
}
#: Dark print gap along the seam: width in face units, never thinner than the minimum in px.
SEAM_GAP_WIDTH = 0.0022
SEAM_GAP_MIN_PX = 1.0
#: Half width of the ``seam_band`` matte (face units, min px) and its feather (fraction of it).
SEAM_BAND_HALF_WIDTH = 0.006
SEAM_BAND_MIN_PX = 2.0
SEAM_BAND_FEATHER = 0.5
#: Lash line: the part of the lid this far (in lid cover) above the lid edge.
LASH_COVER = 0.08
#: Gaze range as a fraction of the eye half width / half height.
GAZE_REACH = (0.42, 0.22)
#: Opening scale of a mouth's inner outline, x; and the smallest opening (a closed-lip slit).
MOUTH_INNER_X = 0.84
MOUTH_SLIT = 0.07
#: Flattening step for hit tests in face units.
FACE_STEP = 0.002

#: Landmark name -> (shape or part, anchor indices averaged).
_LANDMARK_ANCHORS: Dict[str, Tuple[str, Tuple[int, ...]]] = {}
for _s in ("L", "R"):
    _LANDMARK_ANCHORS.update(
        {
            f"eye_{_s}_outer": (f"eye_{_s}", (0,)),
            f"eye_{_s}_inner": (f"eye_{_s}", (2,)),
            f"lid_{_s}_top": (f"lid_{_s}", (3,)),
            f"lid_{_s}_bottom": (f"eye_{_s}", (3,)),
            f"pupil_{_s}": (f"iris_{_s}", (0, 1, 2, 3)),
        }
    )
    for _i in range(3):
        _LANDMARK_ANCHORS[f"brow_{_s}_{_i}"] = (f"brow_{_s}", (_i, 5 - _i))
_LANDMARK_ANCHORS.update(
    {
        "nose_L": ("nose", (3,)),
        "nose_tip": ("nose", (2,)),
        "nose_R": ("nose", (1,)),
        "mouth_L": ("mouth", (0,)),
        "mouth_top": ("mouth", (2,)),
        "mouth_R": ("mouth", (4,)),
        "mouth_bottom": ("mouth", (6,)),
        "face_top": ("face", (0,)),
        "face_R": ("face", (3,)),
        "chin": ("face", (4,)),
        "face_L": ("face", (5,)),
    }
)


@dataclass(frozen=True, eq=False)
class FrameGeometry:
    """One frame's geometry in _img px.

    ``shapes``: the ground-truth roto shapes. ``parts``: render-only paths (iris, lash line,
    mouth opening, hair...). ``hidden``: landmarks covered on this frame (still defined).
    ``face_matrix``: face units (depth 0) -> _img px, for textures.
    """

    shapes: Dict[str, BezierPath]
    parts: Dict[str, BezierPath]
    landmarks: Dict[str, Tuple[float, float]]
    hidden: FrozenSet[str]
    face_matrix: np.ndarray
    seam_gap_px: float
    seam_band_px: float


def seam_profile(spec: SynthCharacter, xf: np.ndarray) -> np.ndarray:
    """Seam height (face units) at ``xf`` = x / seam half width in -1..1, by seam style."""
    x = xf * spec.seam_half_width
    bow = (spec.seam_end_y - spec.seam_y) * xf * xf
    if spec.seam_style == "straight":
        return spec.seam_y + spec.seam_shape * xf
    if spec.seam_style == "curved":
        return spec.seam_y + bow + spec.seam_shape * xf
    dip = spec.seam_shape * np.exp(-((x / spec.seam_dip_width) ** 2))
    if spec.seam_style == "dip":
        return spec.seam_y + bow + dip
    if spec.seam_style == "wave":
        return spec.seam_y + bow + dip + 0.012 * np.sin(np.pi * xf) * (1.0 - xf * xf)
    raise ValueError(f"unknown seam style {spec.seam_style!r}")


def seam_path(spec: SynthCharacter) -> BezierPath:
    """The open seam curve in face units; its end anchors are the outline's seam anchors."""
    xf = np.asarray(spec.seam_xs, dtype=np.float64)
    pts = np.stack([xf * spec.seam_half_width, seam_profile(spec, xf)], axis=1)
    return catmull_rom(pts, closed=False)


def face_path(spec: SynthCharacter) -> BezierPath:
    """Face outline: top, temple R, seam end R, cheek R, chin, cheek L, seam end L, temple L."""
    ends = seam_profile(spec, np.array([-1.0, 1.0]))
    tw, sw, cw = spec.temple_half_width, spec.seam_half_width, spec.cheek_half_width
    pts = [
        (0.0, -0.5),
        (tw, spec.temple_y),
        (sw, float(ends[1])),
        (cw, spec.cheek_y),
        (0.0, 0.5),
        (-cw, spec.cheek_y),
        (-sw, float(ends[0])),
        (-tw, spec.temple_y),
    ]
    path = catmull_rom(pts, closed=True)
    path.left[0], path.right[0] = (-spec.top_handle, 0.0), (spec.top_handle, 0.0)
    path.left[4], path.right[4] = (spec.chin_handle, 0.0), (-spec.chin_handle, 0.0)
    return path


def eye_path(spec: SynthCharacter) -> BezierPath:
    """Left sclera outline: outer corner, top, inner corner, bottom (corners are cusps)."""
    cx, cy = -spec.eye_spacing, spec.eye_y
    ew, et, eb = spec.eye_half_width, spec.eye_top, spec.eye_bottom
    pts = np.array(
        [
            (cx - ew, cy - spec.eye_tilt),
            (cx + 0.1 * ew, cy - et),
            (cx + ew, cy + 0.4 * spec.eye_tilt),
            (cx - 0.05 * ew, cy + eb),
        ]
    )
    left = np.array([(0.22 * ew, 0.55 * eb), (-0.55 * ew, 0.0), (-0.22 * ew, -0.5 * et),
                     (0.5 * ew, 0.0)])
    right = np.array([(0.22 * ew, -0.55 * et), (0.5 * ew, 0.0), (-0.22 * ew, 0.5 * eb),
                      (-0.55 * ew, 0.0)])
    return BezierPath(pts, left, right, closed=True)


def lid_edge(eye: BezierPath, cover: float) -> BezierPath:
    """Open lid edge outer -> inner: the top curve blended towards the bottom curve by ``cover``.

    Blending control points of two Bezier curves gives the Bezier of the blend, so the edge is
    exact; ``cover`` 0 lies on the top of the sclera, 1 on its bottom (shut).
    """
    top = sub_path(eye, 0, 2)
    bottom = reversed_path(sub_path(eye, 2, 4))
    return lerp_paths(top, bottom, float(np.clip(cover, 0.0, 1.0)))


def lid_path(eye: BezierPath, cover: float) -> BezierPath:
    """Lid matte: outer, sclera top, inner, lid edge middle (the region the upper lid covers)."""
    return chain([sub_path(eye, 0, 2), reversed_path(lid_edge(eye, cover))])


def band_path(lower: BezierPath, upper: BezierPath) -> BezierPath:
    """Closed region between two open paths with the same ends: ``lower`` then ``upper`` back."""
    return chain([lower, reversed_path(upper)])


def brow_path(spec: SynthCharacter, raise_: float, tilt: float) -> BezierPath:
    """Left brow: upper edge outer -> inner, then lower edge inner -> outer (6 anchors).

    Upper and lower anchors are offset vertically from the centreline, so the mean of anchor
    ``i`` and ``5 - i`` is centreline point ``i`` (the ``brow_L_i`` landmark).
    """
    cx = -spec.eye_spacing
    bl, by, arch, th = spec.brow_half_length, spec.brow_y - raise_, spec.brow_arch, spec.brow_thickness
    centre = np.array(
        [(cx - bl, by + 0.4 * arch), (cx + 0.05 * bl, by - arch), (cx + 0.95 * bl, by + tilt)]
    )
    half = np.array([0.3, 0.5, 0.45]) * th
    upper = centre - np.stack([np.zeros(3), half], axis=1)
    lower = centre + np.stack([np.zeros(3), half], axis=1)
    return catmull_rom(np.concatenate([upper, lower[::-1]]), closed=True, tension=0.9)


def nose_path(spec: SynthCharacter) -> BezierPath:
    """Nose: top, right ala, tip (bottom), left ala."""
    nw = spec.nose_half_width
    pts = [(0.0, spec.nose_top_y), (nw, spec.nose_ala_y), (0.0, spec.nose_tip_y),
           (-nw, spec.nose_ala_y)]
    path = catmull_rom(pts, closed=True)
    path.left[0] *= 0.3
    path.right[0] *= 0.3
    path.left[2] *= 1.3
    path.right[2] *= 1.3
    return path


def mouth_paths(spec: SynthCharacter, expr: Expression) -> Tuple[BezierPath, BezierPath]:
    """Outer lip outline and the opening inside it, for this frame's replacement mouth.

    The outline has 8 anchors: L, upper L, top, upper R, R, lower R, bottom, lower L (face
    units); the corners are cusps, and the opening is the outline scaled towards the lip line.
    """
    m = MOUTH_SHAPES[expr.mouth]
    w = m.width
    yl, yr = -m.lift - m.skew, -m.lift + m.skew
    upper = catmull_rom(
        [(-w, yl), (-0.45 * w, -m.upper - 0.3 * m.cupid), (0.0, -m.upper + m.cupid),
         (0.45 * w, -m.upper - 0.3 * m.cupid), (w, yr)],
        closed=False,
    )
    lower = catmull_rom(
        [(w, yr), (0.5 * w, 0.8 * m.lower), (0.0, m.lower), (-0.5 * w, 0.8 * m.lower), (-w, yl)],
        closed=False,
    )
    outer = chain([upper, lower])
    mid = 0.5 * (m.lower - m.upper)
    fy = max(m.opening, MOUTH_SLIT)
    inner_map = np.array([[MOUTH_INNER_X, 0.0, 0.0], [0.0, fy, mid * (1.0 - fy)]])
    inner = outer.transformed(inner_map)
    sx, sy, dx, dy = expr.mouth_jitter
    hw = spec.mouth_half_width
    to_face = np.array([[hw * sx, 0.0, dx], [0.0, hw * sy, spec.mouth_y + dy]])
    return outer.transformed(to_face), inner.transformed(to_face)


def hair_path(spec: SynthCharacter) -> Optional[BezierPath]:
    """Hair behind the head (its lower anchors hide behind the face), by hair style."""
    tw, hh, ty = spec.temple_half_width, spec.hair_height, spec.temple_y
    top = -0.5 - hh
    if spec.hair_style == "cap":
        pts = [(-1.06 * tw, ty + 0.06), (-0.95 * tw, -0.43), (0.0, top), (0.95 * tw, -0.43),
               (1.06 * tw, ty + 0.06), (0.0, -0.2)]
    elif spec.hair_style == "bob":
        sw = spec.seam_half_width
        pts = [(-sw - 0.05, 0.16), (-tw - 0.06, -0.34), (0.0, top), (tw + 0.06, -0.34),
               (sw + 0.05, 0.16), (0.0, 0.0)]
    elif spec.hair_style == "tuft":
        pts = [(-0.95 * tw, ty), (-0.16, -0.5 - 0.4 * hh), (-0.03, -0.5 - 1.7 * hh),
               (0.05, -0.5 - 0.6 * hh), (0.13, -0.5 - 1.2 * hh), (0.95 * tw, ty), (0.0, -0.25)]
    elif spec.hair_style == "fringe_less":
        pts = [(-1.09 * tw, 0.0), (-1.02 * tw, -0.38), (0.0, top), (1.02 * tw, -0.38),
               (1.09 * tw, 0.0), (0.0, -0.2)]
    else:
        return None
    return catmull_rom(pts, closed=True, tension=0.95)


def _iris(spec: SynthCharacter, eye: BezierPath, gaze: Tuple[float, float], side: float) -> BezierPath:
    """Iris circle of the left eye (``side`` mirrors the horizontal gaze for the right eye)."""
    centre = np.array([-spec.eye_spacing, spec.eye_y + 0.25 * (spec.eye_bottom - spec.eye_top)])
    centre += (
        gaze[0] * side * GAZE_REACH[0] * spec.eye_half_width,
        gaze[1] * GAZE_REACH[1] * (spec.eye_top + spec.eye_bottom),
    )
    return circle(centre, spec.iris_radius)


def _inside(path: BezierPath, point: np.ndarray) -> bool:
    """Whether ``point`` lies inside the closed ``path`` (face units)."""
    poly = path.flatten(FACE_STEP).astype(np.float32)
    return cv2.pointPolygonTest(poly, (float(point[0]), float(point[1])), False) > 0


def face_parts(
    spec: SynthCharacter, expr: Expression
) -> Tuple[Dict[str, Tuple[BezierPath, str]], FrozenSet[str]]:
    """Every path of the face in face units with its depth group, plus hidden landmarks."""
    parts: Dict[str, Tuple[BezierPath, str]] = {}
    hidden = set()
    parts["face"] = (face_path(spec), "face")
    parts["seam"] = (seam_path(spec), "face")
    hair = hair_path(spec)
    if hair is not None:
        parts["hair"] = (hair, "hair")
    ear_x = spec.seam_half_width + 0.35 * spec.ear_size
    for side, sign in (("L", -1.0), ("R", 1.0)):
        ear = circle((0.0, 0.0), 1.0).transformed(
            np.array([[0.55 * spec.ear_size, 0.0, sign * ear_x], [0.0, spec.ear_size, spec.ear_y]])
        )
        parts[f"ear_{side}"] = (ear, "ears")
    left_eye = eye_path(spec)
    for side, cover, brow in (("L", expr.lid_L, expr.brow_L), ("R", expr.lid_R, expr.brow_R)):
        sign = 1.0 if side == "L" else -1.0
        iris = _iris(spec, left_eye, expr.gaze, sign)
        pupil = circle(iris.points.mean(axis=0), spec.pupil_radius)
        # the stage light is on one side: mirror the glint offset back for the right eye
        glint_c = iris.points.mean(axis=0) + np.array([-0.4 * sign, -0.45]) * spec.iris_radius
        glint = circle(glint_c, 0.2 * spec.iris_radius)
        lid = lid_path(left_eye, cover)
        lash = band_path(
            lid_edge(left_eye, max(cover - LASH_COVER, 0.0)), lid_edge(left_eye, cover)
        )
        brow_p = brow_path(spec, brow, expr.brow_tilt)
        if _inside(lid, iris.points.mean(axis=0)):
            hidden.add(f"pupil_{side}")
        group = {
            f"eye_{side}": (left_eye, "eyes"),
            f"lid_{side}": (lid, "eyes"),
            f"iris_{side}": (iris, "eyes"),
            f"pupil_{side}": (pupil, "eyes"),
            f"glint_{side}": (glint, "eyes"),
            f"lash_{side}": (lash, "eyes"),
            f"brow_{side}": (brow_p, "brows"),
        }
        for name, (path, depth) in group.items():
            parts[name] = (path if side == "L" else path.mirrored_x(), depth)
    nose = nose_path(spec)
    parts["nose"] = (nose, "nose")
    nw = spec.nose_half_width
    for side, sign in (("L", -1.0), ("R", 1.0)):
        ny = spec.nose_ala_y + 0.55 * (spec.nose_tip_y - spec.nose_ala_y)
        nostril = circle((0.0, 0.0), 1.0).transformed(
            np.array([[0.3 * nw, 0.0, sign * 0.48 * nw], [0.0, 0.17 * nw, ny]])
        )
        parts[f"nostril_{side}"] = (nostril, "nose")
    outer, inner = mouth_paths(spec, expr)
    parts["mouth"] = (outer, "mouth")
    parts["mouth_open"] = (inner, "mouth")
    parts["teeth"] = (_teeth(inner, MOUTH_SHAPES[expr.mouth].teeth), "mouth")
    parts["lower_half"] = (_lower_half(parts["seam"][0]), "face")
    return parts, frozenset(hidden)


def _polygon(points: ArrayLike, closed: bool = True) -> BezierPath:
    """A path with straight edges (zero handles)."""
    pts = np.asarray(points, dtype=np.float64)
    return BezierPath(pts, np.zeros_like(pts), np.zeros_like(pts), closed)


def _teeth(inner: BezierPath, amount: float) -> BezierPath:
    """Region of the opening the upper teeth fill: above a line ``amount`` down the opening.

    The renderer clips it by the opening, so only its lower edge matters.
    """
    top, bottom = inner.points[2], inner.points[6]
    y = top[1] + 0.5 * amount * (bottom[1] - top[1])
    if amount <= 0.0:
        y = top[1] - 1.0
    x0, x1 = inner.points[:, 0].min() - 0.05, inner.points[:, 0].max() + 0.05
    return _polygon([(x0, top[1] - 0.1), (x1, top[1] - 0.1), (x1, y), (x0, y)])


def _lower_half(seam: BezierPath) -> BezierPath:
    """The lower print below the seam: the seam curve itself closed far below the face."""
    ext = 0.3
    start, end = seam.points[0], seam.points[-1]
    below = np.array([(end[0] + ext, end[1]), (end[0] + ext, 1.0), (start[0] - ext, 1.0),
                      (start[0] - ext, start[1])])
    zeros = np.zeros_like(below)
    left = seam.left.copy()
    right = seam.right.copy()
    left[0] = 0.0
    right[-1] = 0.0
    return BezierPath(
        np.concatenate([seam.points, below]),
        np.concatenate([left, zeros]),
        np.concatenate([right, zeros]),
        closed=True,
    )


def _band(seam: BezierPath, half_px: float) -> BezierPath:
    """Closed band ``half_px`` either side of an open image-space path, caps past the ends."""
    tangent = seam.right - seam.left
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    pts = seam.points.copy()
    pts[0] -= tangent[0] * half_px
    pts[-1] += tangent[-1] * half_px
    upper = BezierPath(pts - normal * half_px, seam.left.copy(), seam.right.copy(), False)
    lower = BezierPath(pts + normal * half_px, seam.left.copy(), seam.right.copy(), False)
    back = reversed_path(lower)
    zero = np.zeros(2)
    upper.left[0], upper.right[-1], back.left[0], back.right[-1] = zero, zero, zero, zero
    return BezierPath(
        np.concatenate([upper.points, back.points]),
        np.concatenate([upper.left, back.left]),
        np.concatenate([upper.right, back.right]),
        closed=True,
    )


#: Parts exported as roto shapes (the rest are render-only).
SHAPE_PARTS = ("eye_L", "eye_R", "lid_L", "lid_R", "brow_L", "brow_R", "seam", "face", "nose",
               "mouth")


def frame_geometry(spec: SynthCharacter, pose: Pose, expr: Expression) -> FrameGeometry:
    """Move every face part to the image for one frame and read off the landmarks."""
    parts_face, hidden = face_parts(spec, expr)
    moved: Dict[str, BezierPath] = {}
    for name, (path, group) in parts_face.items():
        moved[name] = path.transformed(pose.matrix(DEPTH[group]))
    gap_px = max(SEAM_GAP_MIN_PX, SEAM_GAP_WIDTH * pose.scale)
    band_px = max(SEAM_BAND_MIN_PX, SEAM_BAND_HALF_WIDTH * pose.scale)
    shapes = {name: moved[name] for name in SHAPE_PARTS}
    shapes["seam_band"] = _band(moved["seam"], band_px)
    landmarks: Dict[str, Tuple[float, float]] = {}
    for name, (part, idx) in _LANDMARK_ANCHORS.items():
        xy = moved[part].points[list(idx)].mean(axis=0)
        landmarks[name] = (float(xy[0]), float(xy[1]))
    for i, xy in enumerate(moved["seam"].points):
        landmarks[f"seam_{i}"] = (float(xy[0]), float(xy[1]))
    ordered = {name: landmarks[name] for name in spec.landmark_names}
    parts = {name: p for name, p in moved.items() if name not in shapes}
    return FrameGeometry(
        shapes=shapes,
        parts=parts,
        landmarks=ordered,
        hidden=hidden,
        face_matrix=pose.matrix(0.0),
        seam_gap_px=gap_px,
        seam_band_px=band_px,
    )


def face_box(geom: FrameGeometry) -> Tuple[float, float, float, float]:
    """Bounding box (x, y, w, h) of the face outline in _img px (not clipped to the frame)."""
    pts = geom.shapes["face"].flatten(0.25)
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
