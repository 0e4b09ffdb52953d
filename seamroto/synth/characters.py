"""The synthetic puppets: face layout, palette and seam path of each character, in face units.

Face units: origin at the middle of the face, x right, y down (as in _img), face height about 1
(forehead at y = -0.5, chin at y = +0.5). ``geometry.py`` turns a spec plus a frame's motion
into image-space shapes and landmarks. Left/right (``_L``/``_R``) mean image left/right, as in
the LAIKA Sir Lionel data; indices of brow points run from the outer end (0) to the inner end (2)
on both sides, so a horizontal flip maps ``_L`` names onto ``_R`` names one to one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

from seamroto.datamodel import Character, Seam, ShapeSpec

RGB = Tuple[float, float, float]

SEAM_NAME = "seam"
#: Roto layers. Nuke keeps layer and shape names in one namespace per Roto node, so a layer
#: may not be called like a shape in it ("seam", "face", "mouth" are shape names).
LAYER_EYES = "eyes"
LAYER_SEAM = "seams"
LAYER_FACE = "head"
LAYER_MOUTH = "mouths"
#: Seam curve styles ``geometry.seam_profile`` knows.
SEAM_STYLES = ("straight", "curved", "dip", "wave")
#: Hair styles ``geometry.hair_path`` knows.
HAIR_STYLES = ("cap", "tuft", "bob", "fringe_less")

#: Shape name -> (layer, closed, point count; 0 where it follows the seam, see shape_point_count).
SHAPE_LAYOUT: Dict[str, Tuple[Tuple[str, ...], bool, int]] = {
    "eye_L": ((LAYER_EYES,), True, 4),
    "eye_R": ((LAYER_EYES,), True, 4),
    "lid_L": ((LAYER_EYES,), True, 4),
    "lid_R": ((LAYER_EYES,), True, 4),
    "brow_L": ((LAYER_EYES,), True, 6),
    "brow_R": ((LAYER_EYES,), True, 6),
    "seam": ((LAYER_SEAM,), False, 0),
    "seam_band": ((LAYER_SEAM,), True, 0),
    "face": ((LAYER_FACE,), True, 8),
    "nose": ((LAYER_FACE,), True, 4),
    "mouth": ((LAYER_MOUTH,), True, 8),
}


@dataclass(frozen=True)
class Palette:
    """Scene-linear albedo colours of one puppet (before stage lighting)."""

    skin: RGB
    lid: RGB
    sclera: RGB
    iris: RGB
    pupil: RGB
    brow: RGB
    lip: RGB
    mouth: RGB
    teeth: RGB
    hair: RGB
    lash: RGB = (0.02, 0.015, 0.015)


@dataclass(frozen=True)
class SynthCharacter:
    """Everything that makes one synthetic puppet look like itself, in face units.

    The face outline passes through eight anchors (top, temples, the two seam ends, cheeks,
    chin); the seam runs between the outline anchors at ``seam_half_width`` so its ends lie on
    the outline exactly. Gains are the print mismatch between the two face halves.
    """

    name: str
    description: str
    palette: Palette
    # outline: half widths at the temples / seam ends / cheeks, chin handle, top handle
    temple_half_width: float
    temple_y: float
    seam_half_width: float
    cheek_half_width: float
    cheek_y: float
    chin_handle: float
    top_handle: float
    # eyes (left eye; the right eye mirrors it)
    eye_spacing: float
    eye_y: float
    eye_half_width: float
    eye_top: float
    eye_bottom: float
    eye_tilt: float
    iris_radius: float
    pupil_radius: float
    rest_lid: float
    # brows
    brow_y: float
    brow_half_length: float
    brow_arch: float
    brow_thickness: float
    # nose and mouth
    nose_top_y: float
    nose_half_width: float
    nose_ala_y: float
    nose_tip_y: float
    mouth_y: float
    mouth_half_width: float
    # seam
    seam_style: str
    seam_y: float
    seam_end_y: float
    seam_shape: float
    seam_xs: Tuple[float, ...]
    seam_dip_width: float = 0.09
    # print mismatch and gap
    upper_gain: RGB = (1.0, 1.0, 1.0)
    lower_gain: RGB = (0.95, 0.97, 1.0)
    gap_darkness: float = 0.6
    # hair and ears
    hair_style: str = "cap"
    hair_height: float = 0.08
    ear_y: float = -0.02
    ear_size: float = 0.09
    freckles: int = 0
    blink_interval: float = 36.0

    @property
    def seam_count(self) -> int:
        """Seam anchors, ends included."""
        return len(self.seam_xs)

    @property
    def landmark_names(self) -> Tuple[str, ...]:
        """Stable landmark names, in ground-truth order."""
        return landmark_names(self.seam_count)


def landmark_names(seam_count: int) -> Tuple[str, ...]:
    """Landmark names for a face whose seam has ``seam_count`` anchors (ends on the outline)."""
    names = []
    for side in ("L", "R"):
        names += [f"eye_{side}_outer", f"eye_{side}_inner", f"lid_{side}_top"]
        names += [f"lid_{side}_bottom", f"pupil_{side}"]
    for side in ("L", "R"):
        names += [f"brow_{side}_{i}" for i in range(3)]
    names += ["nose_L", "nose_tip", "nose_R"]
    names += ["mouth_L", "mouth_top", "mouth_R", "mouth_bottom"]
    names += ["face_top", "face_L", "face_R", "chin"]
    names += [f"seam_{i}" for i in range(seam_count)]
    return tuple(names)


def shape_point_count(name: str, seam_count: int) -> int:
    """Control points of shape ``name`` for a seam of ``seam_count`` anchors."""
    if name == "seam":
        return seam_count
    if name == "seam_band":
        return 2 * seam_count
    return SHAPE_LAYOUT[name][2]


def character_model(spec: SynthCharacter) -> Character:
    """The data-model ``Character`` of a synthetic puppet (what a rig would learn)."""
    n = spec.seam_count
    seam = Seam(SEAM_NAME, tuple(f"seam_{i}" for i in range(n)))
    shapes = tuple(
        ShapeSpec(name, closed, layer, shape_point_count(name, n))
        for name, (layer, closed, _count) in SHAPE_LAYOUT.items()
    )
    return Character(spec.name, spec.landmark_names, (seam,), shapes)


_STRAIGHT_XS = (-1.0, -0.66, -0.33, 0.0, 0.33, 0.66, 1.0)
_DIP_XS = (-1.0, -0.62, -0.34, -0.15, 0.0, 0.15, 0.34, 0.62, 1.0)

CHARACTERS: Dict[str, SynthCharacter] = {
    "mara": SynthCharacter(
        name="mara",
        description="oval face, straight slightly tilted seam, brown bob, green eyes",
        palette=Palette(
            skin=(0.62, 0.40, 0.29),
            lid=(0.36, 0.20, 0.20),
            sclera=(0.80, 0.78, 0.74),
            iris=(0.10, 0.24, 0.10),
            pupil=(0.012, 0.01, 0.01),
            brow=(0.10, 0.05, 0.03),
            lip=(0.45, 0.12, 0.12),
            mouth=(0.05, 0.015, 0.02),
            teeth=(0.78, 0.75, 0.66),
            hair=(0.12, 0.06, 0.03),
        ),
        temple_half_width=0.31,
        temple_y=-0.30,
        seam_half_width=0.33,
        cheek_half_width=0.29,
        cheek_y=0.22,
        chin_handle=0.16,
        top_handle=0.17,
        eye_spacing=0.145,
        eye_y=-0.07,
        eye_half_width=0.07,
        eye_top=0.045,
        eye_bottom=0.032,
        eye_tilt=0.008,
        iris_radius=0.029,
        pupil_radius=0.012,
        rest_lid=0.18,
        brow_y=-0.175,
        brow_half_length=0.075,
        brow_arch=0.018,
        brow_thickness=0.02,
        nose_top_y=-0.03,
        nose_half_width=0.045,
        nose_ala_y=0.09,
        nose_tip_y=0.125,
        mouth_y=0.26,
        mouth_half_width=0.11,
        seam_style="straight",
        seam_y=0.025,
        seam_end_y=0.035,
        seam_shape=0.012,
        seam_xs=_STRAIGHT_XS,
        upper_gain=(1.0, 1.0, 1.0),
        lower_gain=(0.955, 0.965, 0.99),
        hair_style="bob",
        hair_height=0.07,
    ),
    "otto": SynthCharacter(
        name="otto",
        description="round wide face, seam curved like a smile, ginger tuft, blue eyes far apart",
        palette=Palette(
            skin=(0.70, 0.50, 0.40),
            lid=(0.48, 0.28, 0.24),
            sclera=(0.84, 0.84, 0.82),
            iris=(0.06, 0.14, 0.36),
            pupil=(0.01, 0.01, 0.015),
            brow=(0.30, 0.10, 0.03),
            lip=(0.55, 0.22, 0.20),
            mouth=(0.06, 0.02, 0.02),
            teeth=(0.80, 0.78, 0.70),
            hair=(0.42, 0.12, 0.03),
        ),
        temple_half_width=0.37,
        temple_y=-0.28,
        seam_half_width=0.40,
        cheek_half_width=0.36,
        cheek_y=0.20,
        chin_handle=0.22,
        top_handle=0.22,
        eye_spacing=0.185,
        eye_y=-0.075,
        eye_half_width=0.078,
        eye_top=0.055,
        eye_bottom=0.04,
        eye_tilt=-0.004,
        iris_radius=0.032,
        pupil_radius=0.014,
        rest_lid=0.12,
        brow_y=-0.19,
        brow_half_length=0.08,
        brow_arch=0.03,
        brow_thickness=0.024,
        nose_top_y=0.0,
        nose_half_width=0.06,
        nose_ala_y=0.1,
        nose_tip_y=0.14,
        mouth_y=0.27,
        mouth_half_width=0.14,
        seam_style="curved",
        seam_y=0.035,
        seam_end_y=-0.01,
        seam_shape=0.0,
        seam_xs=_STRAIGHT_XS,
        upper_gain=(1.0, 0.99, 0.975),
        lower_gain=(0.97, 0.985, 1.01),
        gap_darkness=0.55,
        hair_style="tuft",
        hair_height=0.10,
        ear_size=0.1,
        blink_interval=28.0,
    ),
    "pip": SynthCharacter(
        name="pip",
        description="narrow pear face, seam dipping under the nose, black cap, big close eyes",
        palette=Palette(
            skin=(0.46, 0.27, 0.16),
            lid=(0.26, 0.13, 0.09),
            sclera=(0.78, 0.76, 0.70),
            iris=(0.18, 0.09, 0.03),
            pupil=(0.01, 0.008, 0.006),
            brow=(0.03, 0.02, 0.015),
            lip=(0.32, 0.11, 0.08),
            mouth=(0.04, 0.01, 0.01),
            teeth=(0.74, 0.72, 0.62),
            hair=(0.018, 0.015, 0.014),
        ),
        temple_half_width=0.27,
        temple_y=-0.30,
        seam_half_width=0.29,
        cheek_half_width=0.28,
        cheek_y=0.24,
        chin_handle=0.15,
        top_handle=0.14,
        eye_spacing=0.12,
        eye_y=-0.06,
        eye_half_width=0.066,
        eye_top=0.055,
        eye_bottom=0.045,
        eye_tilt=0.0,
        iris_radius=0.033,
        pupil_radius=0.016,
        rest_lid=0.1,
        brow_y=-0.175,
        brow_half_length=0.065,
        brow_arch=0.022,
        brow_thickness=0.017,
        nose_top_y=0.0,
        nose_half_width=0.038,
        nose_ala_y=0.085,
        nose_tip_y=0.115,
        mouth_y=0.265,
        mouth_half_width=0.10,
        seam_style="dip",
        seam_y=0.035,
        seam_end_y=0.03,
        seam_shape=0.12,
        seam_xs=_DIP_XS,
        seam_dip_width=0.075,
        upper_gain=(0.99, 1.0, 1.0),
        lower_gain=(1.03, 1.0, 0.97),
        gap_darkness=0.65,
        hair_style="cap",
        hair_height=0.06,
        freckles=40,
        blink_interval=40.0,
    ),
    "lionel": SynthCharacter(
        name="lionel",
        description="long square-jawed face, wavy seam under a big nose, grey hair, heavy brows",
        palette=Palette(
            skin=(0.58, 0.36, 0.30),
            lid=(0.40, 0.22, 0.20),
            sclera=(0.76, 0.74, 0.68),
            iris=(0.14, 0.10, 0.05),
            pupil=(0.01, 0.008, 0.008),
            brow=(0.32, 0.30, 0.28),
            lip=(0.40, 0.16, 0.14),
            mouth=(0.05, 0.015, 0.015),
            teeth=(0.70, 0.66, 0.55),
            hair=(0.40, 0.38, 0.36),
        ),
        temple_half_width=0.32,
        temple_y=-0.29,
        seam_half_width=0.34,
        cheek_half_width=0.33,
        cheek_y=0.25,
        chin_handle=0.25,
        top_handle=0.2,
        eye_spacing=0.16,
        eye_y=-0.085,
        eye_half_width=0.068,
        eye_top=0.038,
        eye_bottom=0.028,
        eye_tilt=0.012,
        iris_radius=0.024,
        pupil_radius=0.01,
        rest_lid=0.25,
        brow_y=-0.18,
        brow_half_length=0.09,
        brow_arch=0.01,
        brow_thickness=0.034,
        nose_top_y=-0.04,
        nose_half_width=0.065,
        nose_ala_y=0.1,
        nose_tip_y=0.145,
        mouth_y=0.29,
        mouth_half_width=0.12,
        seam_style="wave",
        seam_y=0.02,
        seam_end_y=0.055,
        seam_shape=0.16,
        seam_xs=_DIP_XS,
        seam_dip_width=0.1,
        upper_gain=(1.0, 1.0, 1.0),
        lower_gain=(0.94, 0.95, 0.97),
        gap_darkness=0.7,
        hair_style="fringe_less",
        hair_height=0.05,
        ear_size=0.11,
        blink_interval=48.0,
    ),
}


@dataclass(frozen=True)
class MouthShape:
    """One replacement mouth of the library, in units of the character's mouth half width.

    ``lift`` raises both corners (smile > 0), ``skew`` raises the right corner against the left,
    ``upper``/``lower`` are the lip extents above/below the mouth line, ``cupid`` lowers the top
    centre, ``opening`` is the open fraction of the lip outline and ``teeth`` how much of the
    opening the upper teeth fill.
    """

    width: float
    lift: float
    upper: float
    lower: float
    cupid: float = 0.04
    opening: float = 0.0
    teeth: float = 0.0
    skew: float = 0.0


#: The replacement mouth library: every frame of a shot swaps to a different one of these.
MOUTH_SHAPES: Dict[str, MouthShape] = {
    "rest": MouthShape(1.0, 0.0, 0.16, 0.2),
    "smile": MouthShape(1.12, 0.16, 0.14, 0.26, opening=0.3, teeth=0.6),
    "grin": MouthShape(1.18, 0.2, 0.16, 0.46, opening=0.6, teeth=0.45),
    "frown": MouthShape(0.94, -0.14, 0.17, 0.18),
    "ah": MouthShape(0.88, 0.0, 0.2, 0.62, cupid=0.02, opening=0.7, teeth=0.25),
    "oh": MouthShape(0.6, 0.0, 0.28, 0.42, cupid=0.0, opening=0.62),
    "ee": MouthShape(1.1, 0.05, 0.12, 0.24, opening=0.4, teeth=0.8),
    "mbp": MouthShape(0.95, 0.0, 0.13, 0.15, cupid=0.03),
    "fv": MouthShape(1.0, 0.02, 0.18, 0.17, opening=0.35, teeth=1.0),
    "smirk": MouthShape(1.02, 0.06, 0.15, 0.22, opening=0.12, skew=0.16),
}
