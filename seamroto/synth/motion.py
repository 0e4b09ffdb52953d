"""What changes from frame to frame: head pose, blinks, gaze, brows, mouth swaps and flicker.

Everything is drawn up front from one ``numpy`` Generator seeded by the shot seed, so a shot is
a pure function of (character, seed, options): the renderer only reads these plans.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Callable, Optional, Tuple, TypeVar

import numpy as np

from seamroto.synth.characters import MOUTH_SHAPES, RGB, SynthCharacter

_T = TypeVar("_T")

#: Stream ids mixed into the seed so each kind of randomness has its own sequence.
STREAM_MOTION = 1
STREAM_BACKGROUND = 2
STREAM_FRAME = 3
STREAM_TEXTURE = 4
STREAM_GRAIN = 5

#: Face height (face units 0..1 span) as a fraction of the frame height.
FACE_HEIGHT_RANGE = (0.5, 0.6)
#: Smooth head motion amplitudes at ``motion=1``, relative to the face scale (or radians).
SWAY_X = 0.12
SWAY_Y = 0.06
SWAY_SCALE = 0.03
SWAY_ROLL = math.radians(3.5)
SWAY_YAW = math.radians(7.0)
SWAY_PERIODS = (24.0, 96.0)
#: Per-frame hand-placement jitter ("boil") of a stop-motion puppet, in face units / radians.
BOIL_XY = 0.0008
BOIL_ROLL = math.radians(0.08)
#: Lid cover over the frames of one blink (0 = rest lid, 1 = shut).
BLINK_CURVE = (0.55, 1.0, 1.0, 0.6, 0.25)
#: Gaze hold durations in frames (animators move eyes in jumps).
GAZE_HOLD = (6, 24)
GAZE_RANGE = (0.8, 0.6)
BROW_RAISE = 0.014
BROW_TILT = 0.01
MOUTH_JITTER_SCALE = 0.04
MOUTH_JITTER_SHIFT = 0.004
#: Stage light flicker: gain sigma and the hard limit (a few percent).
FLICKER_SIGMA = 0.015
FLICKER_LIMIT = 0.05
#: Replacement lower faces are different prints: per-frame tint jitter of the lower half.
LOWER_TINT_SIGMA = 0.006
#: Shot-wide light: exposure range and colour tint sigma.
EXPOSURE_RANGE = (0.85, 1.15)
LIGHT_TINT_SIGMA = 0.03
#: Frames a leaving face takes to get fully out of the frame.
EXIT_FRAMES = 4
#: Head extent beyond the face origin, in face units, used to send the head fully out.
HEAD_RADIUS = 0.8


def salt(name: str) -> int:
    """A stable number per character name, mixed into every seed.

    Why: two characters rendered with the same seed then get different sets, placement and
    timing, so a training set of (character, seed) pairs does not repeat backgrounds.
    """
    return zlib.crc32(name.encode("utf-8"))


@dataclass(frozen=True)
class Pose:
    """Where the face is: origin in _img px, px per face unit, roll and yaw in radians.

    Roll is clockwise on screen (y down). Yaw foreshortens x by cos(yaw) and shifts a feature
    at depth ``d`` (face units towards the camera) by ``d * sin(yaw)``: an affine map per depth,
    so every Bezier shape stays an exact Bezier after the move.
    """

    x: float
    y: float
    scale: float
    roll: float
    yaw: float

    def matrix(self, depth: float = 0.0) -> np.ndarray:
        """Face units at ``depth`` -> _img px.

        Shape: (2, 3) float64 affine matrix.
        """
        c, s = math.cos(self.roll), math.sin(self.roll)
        rot = self.scale * np.array([[c, -s], [s, c]])
        lin = rot @ np.diag([math.cos(self.yaw), 1.0])
        off = rot @ np.array([math.sin(self.yaw) * depth, 0.0]) + np.array([self.x, self.y])
        return np.concatenate([lin, off[:, None]], axis=1)


@dataclass(frozen=True)
class Expression:
    """The face's replaceable parts on one frame.

    ``lid_*``: lid cover, 0 open (rest lid drawn on top) .. 1 shut. ``gaze``: iris offset in
    -1..1 of its range. ``brow_*``: raise in face units; ``brow_tilt``: inner ends down (> 0).
    ``mouth``: name in ``MOUTH_SHAPES``; ``mouth_jitter``: (scale x, scale y, dx, dy).
    """

    lid_L: float
    lid_R: float
    gaze: Tuple[float, float]
    brow_L: float
    brow_R: float
    brow_tilt: float
    mouth: str
    mouth_jitter: Tuple[float, float, float, float]


@dataclass(frozen=True)
class FrameState:
    """One frame's plan: pose, expression, light, and the blur vector in px."""

    frame: int
    pose: Pose
    expression: Expression
    flicker: float
    lower_tint: RGB
    blur: Tuple[float, float]


@dataclass(frozen=True)
class ShotPlan:
    """The whole shot's plan plus the shot-wide light."""

    frames: Tuple[FrameState, ...]
    exposure: float
    light_tint: RGB


def _sway(rng: np.random.Generator, t: np.ndarray, amplitude: float) -> np.ndarray:
    """Sum of two random slow sinusoids, peak about ``amplitude``."""
    out = np.zeros_like(t)
    for _ in range(2):
        period = rng.uniform(*SWAY_PERIODS)
        phase = rng.uniform(0.0, 2 * math.pi)
        out += rng.uniform(0.35, 0.65) * np.sin(2 * math.pi * t / period + phase)
    return amplitude * out


def _held(
    rng: np.random.Generator, n: int, hold: Tuple[int, int], draw: Callable[[], _T]
) -> list[_T]:
    """Piecewise-constant sequence: ``draw()`` values held for random runs of frames."""
    out: list[_T] = []
    while len(out) < n:
        value = draw()
        out += [value] * int(rng.integers(hold[0], hold[1] + 1))
    return out[:n]


def _blinks(rng: np.random.Generator, n: int, spec: SynthCharacter) -> np.ndarray:
    """Lid cover per frame: the rest lid plus blinks at random intervals."""
    cover = np.zeros(n)
    t = rng.uniform(0.0, spec.blink_interval)
    while t < n:
        start = int(t)
        for i, b in enumerate(BLINK_CURVE):
            if start + i < n:
                cover[start + i] = max(cover[start + i], b)
        t += len(BLINK_CURVE) + rng.exponential(spec.blink_interval)
    return spec.rest_lid + (1.0 - spec.rest_lid) * cover


def _mouths(rng: np.random.Generator, n: int) -> list[str]:
    """A different replacement mouth on every frame (never the same twice in a row)."""
    names = sorted(MOUTH_SHAPES)
    out: list[str] = []
    prev = -1
    for _ in range(n):
        k = int(rng.integers(0, len(names) - 1 if prev >= 0 else len(names)))
        if prev >= 0 and k >= prev:
            k += 1
        out.append(names[k])
        prev = k
    return out


def plan_shot(
    spec: SynthCharacter,
    seed: int,
    *,
    frames: int,
    first: int,
    width: int,
    height: int,
    motion: float = 1.0,
    exit_frame: Optional[int] = None,
) -> ShotPlan:
    """Draw every per-frame parameter of a shot from the seed.

    Args:
        spec: the character.
        seed: shot seed; the same seed gives the same plan.
        frames: frame count.
        first: number of the first frame.
        width: frame width in px (placement keeps the head inside the frame).
        height: frame height in px (sets the face size).
        motion: multiplier of the head motion amplitudes (0 = locked-off head).
        exit_frame: from this frame on the head slides out of frame over ``EXIT_FRAMES``
            frames and stays out (to test "no face" frames); None keeps it in.

    Returns:
        The plan, one ``FrameState`` per frame.
    """
    rng = np.random.default_rng([seed, STREAM_MOTION, salt(spec.name)])
    n = frames
    t = np.arange(n, dtype=np.float64)
    scale0 = height * rng.uniform(*FACE_HEIGHT_RANGE)
    margin_x = min(HEAD_RADIUS * scale0, 0.45 * width)
    x0 = rng.uniform(margin_x, max(margin_x, width - margin_x))
    y0 = height * 0.5 + rng.uniform(-0.04, 0.04) * height
    sx = _sway(rng, t, SWAY_X * motion) * scale0
    sy = _sway(rng, t, SWAY_Y * motion) * scale0
    ss = 1.0 + _sway(rng, t, SWAY_SCALE * motion)
    sr = _sway(rng, t, SWAY_ROLL * motion)
    syaw = _sway(rng, t, SWAY_YAW * motion)
    boil = rng.normal(0.0, 1.0, size=(n, 3)) * motion
    xs = x0 + sx + boil[:, 0] * BOIL_XY * scale0
    ys = y0 + sy + boil[:, 1] * BOIL_XY * scale0
    rolls = sr + boil[:, 2] * BOIL_ROLL
    if exit_frame is not None:
        k = exit_frame - first
        going_right = x0 > width / 2
        travel = (width - x0 if going_right else -x0) + math.copysign(
            (HEAD_RADIUS + SWAY_X * motion) * scale0 * 1.2, 1.0 if going_right else -1.0
        )
        progress = np.clip((t - k + 1) / EXIT_FRAMES, 0.0, None)
        xs = xs + np.minimum(progress, 1.0) * travel + np.maximum(progress - 1.0, 0.0) * travel
    # motion blur follows the frame-to-frame motion of the face origin
    vx = np.gradient(xs) if n > 1 else np.zeros(n)
    vy = np.gradient(ys) if n > 1 else np.zeros(n)

    lid_l = _blinks(rng, n, spec)
    lid_r = lid_l.copy()
    gaze = _held(
        rng,
        n,
        GAZE_HOLD,
        lambda: (
            float(rng.uniform(-1, 1) * GAZE_RANGE[0]),
            float(rng.uniform(-1, 1) * GAZE_RANGE[1]),
        ),
    )
    brows = _held(
        rng,
        n,
        (8, 20),
        lambda: (
            float(rng.uniform(-0.4, 1.0) * BROW_RAISE),
            float(rng.uniform(-0.2, 0.2) * BROW_RAISE),
            float(rng.uniform(-1, 1) * BROW_TILT),
        ),
    )
    mouths = _mouths(rng, n)
    jitter = rng.normal(0.0, 1.0, size=(n, 4))
    flicker = 1.0 + np.clip(
        rng.normal(0.0, FLICKER_SIGMA, size=n) + _sway(rng, t, FLICKER_SIGMA * 0.5),
        -FLICKER_LIMIT,
        FLICKER_LIMIT,
    )
    tints = 1.0 + rng.normal(0.0, LOWER_TINT_SIGMA, size=(n, 3))
    exposure = float(rng.uniform(*EXPOSURE_RANGE))
    tint = 1.0 + rng.normal(0.0, LIGHT_TINT_SIGMA, size=3)
    tint = tint / tint.mean()

    states = []
    for i in range(n):
        brow_raise, brow_diff, brow_tilt = brows[i]
        expr = Expression(
            lid_L=float(lid_l[i]),
            lid_R=float(lid_r[i]),
            gaze=gaze[i],
            brow_L=brow_raise + brow_diff,
            brow_R=brow_raise - brow_diff,
            brow_tilt=brow_tilt,
            mouth=mouths[i],
            mouth_jitter=(
                float(1.0 + jitter[i, 0] * MOUTH_JITTER_SCALE),
                float(1.0 + jitter[i, 1] * MOUTH_JITTER_SCALE),
                float(jitter[i, 2] * MOUTH_JITTER_SHIFT),
                float(jitter[i, 3] * MOUTH_JITTER_SHIFT),
            ),
        )
        pose = Pose(float(xs[i]), float(ys[i]), float(scale0 * ss[i]), float(rolls[i]),
                    float(syaw[i]))
        lower = tuple(float(g * j) for g, j in zip(spec.lower_gain, tints[i]))
        states.append(
            FrameState(
                frame=first + i,
                pose=pose,
                expression=expr,
                flicker=float(flicker[i]),
                lower_tint=(lower[0], lower[1], lower[2]),
                blur=(float(vx[i]), float(vy[i])),
            )
        )
    return ShotPlan(tuple(states), exposure, (float(tint[0]), float(tint[1]), float(tint[2])))
