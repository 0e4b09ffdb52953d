"""Edge snap of replacement pieces: a shape finds a frame's own, different outline; rigid shapes are left alone."""

from __future__ import annotations

from dataclasses import replace
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np
import pytest
from mouths import almond, ellipse

from seamroto.curves import point_to_polyline, rasterise, sample_bezier
from seamroto.datamodel import ControlPoint, RotoShape
from seamroto.flowfield import FlowField
from seamroto.propagate import PropagationParams, pack_points, propagate_shapes, replacement_flags
from seamroto.snap import (
    apply_affine,
    changes_shape,
    fit_affine,
    make_edge_model,
    make_key_prints,
    nonrigid_residual_px,
    snap_frame,
    snap_shape,
)

# Tolerances, in px unless named otherwise.
TOL = {
    "outline": 0.3,  # mean distance of a snapped outline to the frame's true one (clean synthetic frame)
    "outline_max": 0.75,  # worst sample of it
    "points": 0.6,  # mean control-point error after a snap onto a known different print
    "corner": 1.2,  # a cusp corner's tip retracts onto a narrower print
    "same_print": 0.15,  # a frame showing a key's print again (moved) is found at that print
    "exact": 1e-9,
    "propagated": 0.6,  # mean control-point error of a replacement piece through a short shot
}
W, H = 200, 150
FIRST = 1001
SKIN, LIP, OPENING = 0.62, 0.32, 0.06
FACE_CENTRE = (100.0, 75.0)
MOUTH_CENTRE = (100.0, 90.0)
def _rows(points: Sequence[ControlPoint]) -> np.ndarray:
    p = pack_points(points)
    return np.hstack([p[:, 0], p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]])


def _frame(lips: Sequence[ControlPoint], opening: Optional[Sequence[ControlPoint]] = None,
           gain: float = 1.0, seed: int = 0) -> np.ndarray:
    """Grey uint8 frame: skin, a lip shape, an optional dark opening inside it, soft focus and grain."""
    img: np.ndarray = np.full((H, W), SKIN, np.float32)
    cov = rasterise(_rows(lips), True, W, H)
    img = img * (1.0 - cov) + LIP * cov
    if opening is not None:
        inner = rasterise(_rows(opening), True, W, H)
        img = img * (1.0 - inner) + OPENING * inner
    img = cv2.GaussianBlur(img, (0, 0), 0.8)
    img = img * gain + np.random.default_rng(seed).normal(0.0, 0.004, img.shape).astype(np.float32)
    return np.clip(255.0 * img, 0, 255).astype(np.uint8)


def _outline_error(points: np.ndarray, truth: Sequence[ControlPoint]) -> Tuple[float, float]:
    """Mean and worst distance of a packed shape's curve to the true curve."""
    mine = sample_bezier(np.hstack([points[:, 0], points[:, 1] - points[:, 0], points[:, 2] - points[:, 0]]),
                         True, 32)
    d = point_to_polyline(mine, sample_bezier(_rows(truth), True, 64), True)
    return float(d.mean()), float(d.max())


def _point_error(points: np.ndarray, truth: Sequence[ControlPoint]) -> float:
    return float(np.linalg.norm(points[:, 0] - pack_points(truth)[:, 0], axis=1).mean())


# -------------------------------------------------------------------- one snap


@pytest.mark.parametrize("gain", [1.0, 0.9])  # stage-light flicker
def test_a_shape_snaps_onto_the_frames_own_different_ellipse(gain: float) -> None:
    key = ellipse(*MOUTH_CENTRE, 30.0, 10.0)
    truth = ellipse(MOUTH_CENTRE[0] + 2.0, MOUTH_CENTRE[1] - 1.5, 24.0, 15.0)
    model = make_edge_model(_frame(key), pack_points(key), True, (1.0, 1.0))
    assert model is not None and len(model.corners) == 0
    start = pack_points(key) + np.array([2.0, -1.5])  # the key moved with the face: the wrong print
    assert _point_error(start, truth) > 3.0 and _outline_error(start, truth)[0] > 2.0
    res = snap_shape(model, _frame(truth, gain=gain), start, (1.0, 1.0))
    mean, worst = _outline_error(res.packed, truth)
    assert mean <= TOL["outline"] and worst <= TOL["outline_max"], (mean, worst)
    assert _point_error(res.packed, truth) <= TOL["points"]
    assert res.packed.shape == start.shape and np.isfinite(res.packed).all()


def test_the_outer_edge_wins_over_the_darker_opening_inside() -> None:
    key = ellipse(*MOUTH_CENTRE, 30.0, 12.0)
    truth = ellipse(*MOUTH_CENTRE, 27.0, 16.0)
    opening = ellipse(*MOUTH_CENTRE, 19.0, 9.0)  # lip-to-mouth: the same dark-inside polarity
    model = make_edge_model(_frame(key), pack_points(key), True, (1.0, 1.0))
    assert model is not None
    res = snap_shape(model, _frame(truth, opening), pack_points(key), (1.0, 1.0))
    mean, worst = _outline_error(res.packed, truth)
    assert mean <= TOL["outline"] and worst <= TOL["outline_max"], (mean, worst)


def test_sharp_corners_retract_onto_a_narrower_print_and_the_feather_moves_along() -> None:
    key = almond(*MOUTH_CENTRE, 32.0, 8.0, 10.0)
    truth = almond(*MOUTH_CENTRE, 24.0, 10.0, 12.0)
    model = make_edge_model(_frame(key), pack_points(key), True, (1.0, 1.0))
    assert model is not None and sorted(model.corners.tolist()) == [0, 2]
    feathered = tuple(replace(p, feather=(-3.0, 1.0)) for p in key)
    start = pack_points(feathered)
    res = snap_shape(model, _frame(truth), start, (1.0, 1.0))
    tips = res.packed[[0, 2], 0]
    assert np.abs(tips - pack_points(truth)[[0, 2], 0]).max() <= TOL["corner"], tips
    assert _point_error(res.packed, truth) <= TOL["points"]
    moved = res.packed[:, 0] - start[:, 0]
    for slot in (3, 4, 5):  # feather point and its handles keep their place relative to the point
        assert np.abs(res.packed[:, slot] - start[:, slot] - moved).max() <= TOL["exact"]


def test_working_resolution_frames_snap_in_plate_pixels() -> None:
    key = ellipse(*MOUTH_CENTRE, 30.0, 10.0)
    truth = ellipse(*MOUTH_CENTRE, 25.0, 14.0)

    def half(img: np.ndarray) -> np.ndarray:
        return np.asarray(cv2.resize(img, (W // 2, H // 2), interpolation=cv2.INTER_AREA))

    model = make_edge_model(half(_frame(key)), pack_points(key), True, (0.5, 0.5))
    assert model is not None
    res = snap_shape(model, half(_frame(truth)), pack_points(key), (0.5, 0.5))
    mean, _ = _outline_error(res.packed, truth)
    assert mean <= 2 * TOL["outline"], mean  # half the pixels: twice the tolerance


def test_a_frame_showing_a_keys_print_again_is_found_at_that_print() -> None:
    prints = [almond(*MOUTH_CENTRE, 30.0, 6.0, 8.0), ellipse(*MOUTH_CENTRE, 18.0, 14.0)]
    kp = make_key_prints([(FIRST + i, pack_points(p)) for i, p in enumerate(prints)],
                         [_frame(p) for p in prints], True, (1.0, 1.0))
    shift = np.array([[1.0, 0.0, 3.0], [0.0, 1.0, -2.0]])
    truth = apply_affine(shift, pack_points(prints[0]))
    frame = _frame(tuple(replace(p, x=p.x + 3.0, y=p.y - 2.0) for p in prints[0]))
    # the propagated estimate carries the other print (the nearest key's), as flow would
    res = snap_frame(kp, frame, [shift, shift], (1, apply_affine(shift, pack_points(prints[1]))), (1.0, 1.0))
    assert res is not None
    assert np.linalg.norm(res.packed[:, 0] - truth[:, 0], axis=1).mean() <= TOL["same_print"]


# -------------------------------------------------------------------- which shapes


def test_keys_that_differ_by_more_than_a_motion_make_a_replacement_piece() -> None:
    base = pack_points(almond(*MOUTH_CENTRE, 30.0, 6.0, 12.0))
    moved = apply_affine(np.array([[1.05, 0.1, 4.0], [-0.08, 0.97, -3.0]]), base)
    assert nonrigid_residual_px(base, moved) <= TOL["exact"] * 1e3
    assert fit_affine(base.reshape(-1, 2), moved.reshape(-1, 2)).shape == (2, 3)
    other = pack_points(almond(*MOUTH_CENTRE, 26.0, 12.0, 6.0))  # upper lip fuller than the lower: not affine
    assert nonrigid_residual_px(base, other) > 1.5
    assert not changes_shape([base, moved, moved])  # rigid keys
    assert changes_shape([base, other, base, other])  # another print on every key
    assert not changes_shape([base])  # one key says nothing
    assert not changes_shape([base, moved, other, apply_affine(np.eye(3)[:2], other)])  # mostly rigid


# -------------------------------------------------------------------- through propagation


class StillProvider:
    """No motion anywhere (the face holds still; only the mouth prints change)."""

    def flow(self, src: int, dst: int) -> FlowField:
        return FlowField(np.zeros((H, W, 2), np.float32))


MOUTHS = {  # frame -> (half width, up, down): another print on every frame, not an affine copy of another
    1001: (30.0, 6.0, 12.0), 1002: (24.0, 12.0, 7.0), 1003: (28.0, 5.0, 13.0),
    1004: (22.0, 11.0, 14.0), 1005: (32.0, 9.0, 6.0), 1006: (26.0, 7.0, 11.0),
}


class MouthFrames:
    """Frames of a still face whose mouth is a different print on each frame."""

    scale = (1.0, 1.0)

    def __init__(self) -> None:
        self.face = ellipse(*FACE_CENTRE, 80.0, 65.0)
        self._cache: Dict[int, np.ndarray] = {}

    def mouth(self, frame: int) -> Tuple[ControlPoint, ...]:
        return almond(*MOUTH_CENTRE, *MOUTHS[frame])

    def gray(self, frame: int) -> np.ndarray:
        if frame not in self._cache:
            img: np.ndarray = _frame(self.mouth(frame), seed=frame).astype(np.float32)
            outside = 1.0 - rasterise(_rows(self.face), True, W, H)
            img = img * (1.0 - outside) + 40.0 * outside
            self._cache[frame] = img.astype(np.uint8)
        return self._cache[frame]


def test_a_replacement_mouth_is_found_on_every_frame_and_keys_stay_exact() -> None:
    frames = MouthFrames()
    last = FIRST + len(MOUTHS) - 1
    keys = (FIRST, FIRST + 1, last)
    mouth = RotoShape("lips", True, {k: frames.mouth(k) for k in keys})
    face = RotoShape("head", True, {k: frames.face for k in keys})
    assert replacement_flags([face, mouth]) == [False, True]
    snapped = propagate_shapes([face, mouth], FIRST, last, StillProvider(), frames=frames)
    moved = propagate_shapes([face, mouth], FIRST, last, StillProvider(), frames=frames,
                             params=PropagationParams(replacement_shapes=()))
    assert snapped[0].shape == moved[0].shape  # the face is not touched
    for k in keys:
        assert snapped[1].shape.keys[k] == mouth.keys[k]
    inner = [f for f in range(FIRST, last + 1) if f not in keys]
    err = [_point_error(pack_points(snapped[1].shape.keys[f]), frames.mouth(f)) for f in inner]
    before = [_point_error(pack_points(moved[1].shape.keys[f]), frames.mouth(f)) for f in inner]
    assert np.mean(err) <= TOL["propagated"] < np.mean(before), (err, before)
    assert snapped[1].interpolated == () and len(snapped[1].shape.keys) == len(MOUTHS)
