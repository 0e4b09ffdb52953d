"""Replacement-piece prior: each frame's print pulled toward the character's prints, where the detector is weak."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seamroto.errors import ShapeError
from seamroto.faceframe import face_frames
from seamroto.pieceprior import MIN_FRAMES, PiecePrior, learn_piece_prior, measure_piece_noise
from seamroto.shapeprior import ShapePrior

# Tolerances, px unless named otherwise.
TOL = {
    "along_gain": 0.6,  # the lip middle's along-lip error with the prior / without, at most
    "across_keep": 1.15,  # its across-lip error with the prior / without, at most (nothing to gain)
    "roundtrip": 1e-12,
}
ANCHORS = ("eye_l", "eye_r", "nose")
PIECE = ("m_l", "m_top", "m_r")
NAMES = ANCHORS + PIECE
TEMPLATE_PTS = np.array([[-60.0, -30.0], [60.0, -30.0], [0.0, 20.0]])
DET_ALONG_PX, DET_ACROSS_PX, DET_CORNER_PX = 1.2, 0.25, 0.3


def _template() -> np.ndarray:
    c = TEMPLATE_PTS - TEMPLATE_PTS.mean(axis=0)
    return c / np.sqrt((c**2).sum(axis=1).mean())


def _shot(frames: int, seed: int) -> np.ndarray:
    """A face moving about, and a mouth whose width and opening change on every frame (a new
    print each time); the lip's middle is always halfway between the corners."""
    rng = np.random.default_rng(seed)
    out = np.zeros((frames, len(NAMES), 2))
    for i in range(frames):
        centre = np.array([500.0, 300.0]) + rng.normal(0, 20, 2)
        angle = rng.normal(0, 0.05)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        half = rng.uniform(20, 35)
        top = rng.uniform(-8, 4)
        local = np.vstack([TEMPLATE_PTS, [[-half, 50.0], [0.0, 50.0 + top], [half, 50.0]]])
        out[i] = centre + local @ rot.T
    return out


def _detect(truth: np.ndarray, seed: int) -> np.ndarray:
    """The detector: the lip's middle is poor along the lip (x), good across it; corners fair."""
    rng = np.random.default_rng(seed)
    det = truth.copy()
    det[:, 3] += rng.normal(0, DET_CORNER_PX, det[:, 3].shape)
    det[:, 5] += rng.normal(0, DET_CORNER_PX, det[:, 5].shape)
    det[:, 4, 0] += rng.normal(0, DET_ALONG_PX, len(det))
    det[:, 4, 1] += rng.normal(0, DET_ACROSS_PX, len(det))
    return det


def _learned() -> PiecePrior:
    piece = learn_piece_prior([_shot(60, 1), _shot(60, 2)], NAMES, PIECE, ANCHORS, _template())
    assert piece is not None
    cal = _shot(80, 3)
    return measure_piece_noise([cal], [_detect(cal, 4)], [cal], NAMES, piece, ANCHORS, _template())


def test_the_weak_direction_is_pulled_toward_the_prints_and_the_strong_one_kept() -> None:
    piece = _learned()
    truth = _shot(100, 5)
    det = _detect(truth, 6)
    est = piece.estimate(truth, det, NAMES, ANCHORS, _template())
    assert est is not None and list(est.columns) == [3, 4, 5]
    before, after = det[:, 4] - truth[:, 4], est.points[:, 1] - truth[:, 4]
    rms = lambda e: float(np.sqrt(np.mean(e**2)))  # noqa: E731
    assert rms(after[:, 0]) < TOL["along_gain"] * rms(before[:, 0])
    assert rms(after[:, 1]) < TOL["across_keep"] * rms(before[:, 1])
    assert np.all(est.sigma_px > 0) and np.all(np.isfinite(est.sigma_px))


def test_an_unmeasured_detector_or_a_missing_landmark_leaves_the_detections() -> None:
    piece = _learned()
    truth = _shot(10, 7)
    det = _detect(truth, 8)
    unmeasured = PiecePrior(piece.landmarks, piece.mean, piece.shape_cov)
    assert unmeasured.estimate(truth, det, NAMES, ANCHORS, _template()) is None
    assert piece.estimate(truth[:, :5], det[:, :5], NAMES[:5], ANCHORS, _template()) is None
    det[2, 4] = np.nan  # one frame without the lip's middle: that frame is left alone
    est = piece.estimate(truth, det, NAMES, ANCHORS, _template())
    assert est is not None and np.isnan(est.points[2]).all() and np.isfinite(est.points[3]).all()
    with pytest.raises(ShapeError):
        piece.estimate(truth[:, :4], det, NAMES, ANCHORS, _template())


def test_too_little_data_gives_no_prior_and_a_clear_error() -> None:
    assert learn_piece_prior([_shot(MIN_FRAMES - 1, 1)], NAMES, PIECE, ANCHORS, _template()) is None
    assert learn_piece_prior([_shot(60, 1)], NAMES, PIECE[:1], ANCHORS, _template()) is None
    piece = learn_piece_prior([_shot(60, 1)], NAMES, PIECE, ANCHORS, _template())
    assert piece is not None
    short = _shot(MIN_FRAMES - 1, 3)
    with pytest.raises(ValueError, match="checked frames"):
        measure_piece_noise([short], [short], [short], NAMES, piece, ANCHORS, _template())


def test_it_travels_inside_the_shape_prior_document_and_old_documents_still_load() -> None:
    piece = _learned()
    template = _template()
    prior = ShapePrior(
        ANCHORS, ("x",), template, np.zeros(2 * len(ANCHORS)), np.zeros((1, 2)), np.zeros((2 * len(ANCHORS), 1, 2)),
        np.eye(2)[None] * 1e-4, 1.0, {}, None, piece,
    )
    doc = json.loads(json.dumps(prior.to_dict()))
    back = ShapePrior.from_dict(doc)
    assert back.pieces is not None and back.pieces.landmarks == PIECE
    assert np.abs(back.pieces.shape_cov - piece.shape_cov).max() < TOL["roundtrip"]
    assert back.pieces.detector_cov is not None
    assert np.abs(back.pieces.detector_cov - piece.detector_cov).max() < TOL["roundtrip"]
    del doc["pieces"]
    assert ShapePrior.from_dict(doc).pieces is None
    doc["pieces"] = {**piece.to_dict(), "shape_cov": [[1.0, 0.0], [0.0, 1.0]]}
    with pytest.raises(Exception, match="shape_cov"):
        ShapePrior.from_dict(doc)


def test_face_frames_of_the_synthetic_faces_exist() -> None:
    frames = face_frames(_shot(5, 1)[:, :3], _template())
    assert all(f is not None for f in frames)
