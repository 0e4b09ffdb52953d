"""Piece landmarks read back from the snapped print: pins, gains measured on checked shots, applied per frame."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seamroto.errors import ShapeError
from seamroto.faceframe import face_frames, to_face
from seamroto.piecepoints import MIN_FRAMES, PIN_TOLERANCE, PieceGroup, PieceReadout, find_pins, measure_readout

# Tolerances, px unless named otherwise.
TOL = {
    "gain": 0.12,  # a fitted gain's entries against the blend the two noises call for
    "better": 0.6,  # read-back RMS error / tracked RMS error, at most
    "roundtrip": 1e-6,
}
ANCHORS = ("eye_l", "eye_r", "nose")
NAMES = ANCHORS + ("m_l", "m_r", "m_mid")
TEMPLATE_PTS = np.array([[-60.0, -30.0], [60.0, -30.0], [0.0, 20.0]])
#: The test face is rolled so that "along the mouth" is not the image's x.
ROLL_DEG = 35.0
FRAMES = 400
#: Per-axis noise in face-frame axes (px at the test's scale): the track is poor along the
#: mouth, the snap poor across it.
TRACK_ALONG_PX, TRACK_ACROSS_PX = 1.0, 0.5
SNAP_ALONG_PX, SNAP_ACROSS_PX = 0.5, 0.1


def _template() -> np.ndarray:
    c = TEMPLATE_PTS - TEMPLATE_PTS.mean(axis=0)
    return c / np.sqrt((c**2).sum(axis=1).mean())


def _rot(deg: float) -> np.ndarray:
    t = np.radians(deg)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


def _truth(frames: int = FRAMES, seed: int = 0) -> np.ndarray:
    """A rolled face drifting across the frame; the mouth opens and closes (a new print each frame)."""
    rng = np.random.default_rng(seed)
    rot = _rot(ROLL_DEG)
    out = np.zeros((frames, len(NAMES), 2))
    for i in range(frames):
        mouth = np.array([[-30.0 - rng.uniform(0, 6), 60.0], [30.0 + rng.uniform(0, 6), 60.0], [0.0, 60.0]])
        pts = np.vstack([TEMPLATE_PTS, mouth])
        out[i] = pts @ rot.T + [500.0 + i, 300.0]
    return out


def _noisy(points: np.ndarray, along: float, across: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.normal(size=points.shape) * [along, across]
    return points + noise @ _rot(ROLL_DEG).T


def _mouth_shape(truth: np.ndarray) -> np.ndarray:
    """An 4-point mouth outline whose points 0 and 2 are the corners, 1 and 3 off any landmark."""
    left, right = truth[:, 3], truth[:, 4]
    mid = 0.5 * (left + right)
    up = (right - left) @ _rot(-90.0).T * 0.2
    return np.stack([left, mid + up, right, mid - up], axis=1)


def _shot(seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    truth = _truth(seed=seed)
    tracked = truth.copy()
    tracked[:, 3:5] = _noisy(truth[:, 3:5], TRACK_ALONG_PX, TRACK_ACROSS_PX, rng)
    shape = _mouth_shape(truth)
    snapped = shape.copy()
    snapped[:, [0, 2]] = _noisy(shape[:, [0, 2]], SNAP_ALONG_PX, SNAP_ACROSS_PX, rng)
    return truth, tracked, snapped


def _rms_face(points: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per face axis RMS error of the corners (along, across)."""
    frames = face_frames(truth[:, :3], _template())
    err = np.array([to_face(points[i, 3:5], *f) - to_face(truth[i, 3:5], *f) for i, f in enumerate(frames)])
    return np.sqrt((err**2).reshape(-1, 2).mean(axis=0)) / abs(frames[0][0])


def _readout(seed: int = 1) -> PieceReadout:
    truth, tracked, snapped = _shot(seed)
    pins = {"m_l": ("mouth", 0), "m_r": ("mouth", 2)}
    mask = {"mouth": np.ones(FRAMES, bool)}
    readout = measure_readout([tracked], [{"mouth": snapped}], [mask], [truth], NAMES, pins, ANCHORS, _template())
    assert readout is not None
    return readout


def test_pins_are_the_control_points_the_artists_put_the_landmarks_on() -> None:
    truth = _truth()
    shapes = {"mouth": _mouth_shape(truth), "lip": _mouth_shape(truth)[:, [1, 3]]}
    pins = find_pins(truth, NAMES, shapes, ("m_l", "m_r", "m_mid", "absent"), ANCHORS, _template())
    assert pins == {"m_l": ("mouth", 0), "m_r": ("mouth", 2)}  # the middle sits on no point
    scale = abs(face_frames(truth[:1, :3], _template())[0][0])
    off = truth.copy()
    off[:, 3, 0] += 2.0 * PIN_TOLERANCE / scale  # drawn apart from the shape's corner
    assert "m_l" not in find_pins(off, NAMES, shapes, ("m_l",), ANCHORS, _template())


def test_the_gain_takes_each_source_where_it_is_good_in_the_face_frame() -> None:
    readout = _readout()
    # inverse-variance blend per face axis: along the mouth both count, across it the snap wins
    want = np.diag([
        TRACK_ALONG_PX**2 / (TRACK_ALONG_PX**2 + SNAP_ALONG_PX**2),
        TRACK_ACROSS_PX**2 / (TRACK_ACROSS_PX**2 + SNAP_ACROSS_PX**2),
    ])
    (group,) = readout.groups
    assert group.landmarks == ("m_l", "m_r") and group.indices == (0, 2)
    # independent noise: each corner's own block is the blend, and one corner says nothing of the other
    np.testing.assert_allclose(group.gain, np.kron(np.eye(2), want), atol=TOL["gain"])
    assert readout.stats["landmarks"]["m_l"]["frames"] == FRAMES


def test_reading_back_beats_both_sources_on_another_shot() -> None:
    readout = _readout(seed=1)
    truth, tracked, snapped = _shot(seed=2)
    mask = np.ones(FRAMES, bool)
    mask[::10] = False  # frames the print was not snapped on keep their track
    back = readout.apply(tracked, NAMES, {"mouth": snapped}, {"mouth": mask})
    np.testing.assert_array_equal(back[~mask], tracked[~mask])
    np.testing.assert_array_equal(back[:, :3], tracked[:, :3])  # anchors untouched
    np.testing.assert_array_equal(back[:, 5], tracked[:, 5])  # an unpinned piece landmark too
    before, after = _rms_face(tracked[mask], truth[mask]), _rms_face(back[mask], truth[mask])
    assert np.linalg.norm(after) <= TOL["better"] * np.linalg.norm(before)
    snap_only = tracked.copy()
    snap_only[:, 3:5] = snapped[:, [0, 2]]
    assert np.linalg.norm(after) < np.linalg.norm(_rms_face(snap_only[mask], truth[mask]))


def test_unknown_points_and_missing_anchors_leave_the_track() -> None:
    readout = _readout()
    truth, tracked, snapped = _shot(seed=3)
    tracked[5, 0] = np.nan  # no face frame on this frame
    snapped[6, 0] = np.nan  # no snapped left corner on this one: the piece keeps its tracks
    back = readout.apply(tracked, NAMES, {"mouth": snapped}, {"mouth": np.ones(FRAMES, bool)})
    np.testing.assert_array_equal(back[5], tracked[5])
    np.testing.assert_array_equal(back[6], tracked[6])
    assert not np.allclose(back[7, 3:5], tracked[7, 3:5])
    no_anchor = readout.apply(tracked[:, 1:], NAMES[1:], {"mouth": snapped}, {"mouth": np.ones(FRAMES, bool)})
    np.testing.assert_array_equal(no_anchor, tracked[:, 1:])
    with pytest.raises(ShapeError):
        readout.apply(tracked[:, :4], NAMES, {}, {})


def test_too_few_checked_frames_measure_nothing() -> None:
    truth, tracked, snapped = _shot(seed=1)
    mask = np.zeros(FRAMES, bool)
    mask[: MIN_FRAMES - 1] = True
    pins = {"m_l": ("mouth", 0)}
    assert measure_readout([tracked], [{"mouth": snapped}], [{"mouth": mask}], [truth], NAMES, pins, ANCHORS,
                           _template()) is None
    assert measure_readout([tracked], [{"mouth": snapped}], [{"mouth": mask}], [truth], NAMES, {}, ANCHORS,
                           _template()) is None


def test_the_readout_round_trips_and_damaged_gains_are_refused() -> None:
    readout = _readout()
    back = PieceReadout.from_dict(json.loads(json.dumps(readout.to_dict())))
    assert back.anchors == ANCHORS and [g.landmarks for g in back.groups] == [("m_l", "m_r")]
    for a, b in zip(readout.groups, back.groups):
        assert (a.shape, a.indices) == (b.shape, b.indices)
        np.testing.assert_allclose(b.gain, a.gain, atol=TOL["roundtrip"])
    doc = readout.to_dict()
    doc["groups"][0]["gain"] = [[1.0, 0.0], [0.0, 1.0]]
    with pytest.raises(ValueError, match="readout of 'mouth'"):
        PieceReadout.from_dict(doc)
    doc = readout.to_dict()
    doc["template"] = doc["template"][:2]
    with pytest.raises(ValueError, match="template"):
        PieceReadout.from_dict(doc)


def test_an_identity_gain_takes_the_snapped_point() -> None:
    truth, tracked, snapped = _shot(seed=4)
    readout = PieceReadout(ANCHORS, _template(), (PieceGroup("mouth", ("m_r",), (2,), np.eye(2)),))
    back = readout.apply(tracked, NAMES, {"mouth": snapped}, {"mouth": np.ones(FRAMES, bool)})
    np.testing.assert_allclose(back[:, 4], snapped[:, 2], atol=1e-9)
    np.testing.assert_array_equal(back[:, 3], tracked[:, 3])
