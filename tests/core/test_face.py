"""Face boxes on synthetic puppet shots: found, tracked, stable under flicker, flagged when gone."""

from __future__ import annotations

import json
import math
from typing import Dict, List, Tuple

import numpy as np
import pytest

from seamroto import face
from seamroto.errors import CancelledError, ModelSchemaError, ShapeError

synth = pytest.importorskip("seamroto.synth")
colour = pytest.importorskip("seamroto.colour")

# Tolerances, unitless unless named.
TOL = {
    "iou": 0.8,
    "flicker": 0.2,  # +-20 % stage-light gain, scene-linear
}
W, H = 512, 270
CHARACTER = "mara"


def _model_space(img: np.ndarray, gain: float = 1.0) -> np.ndarray:
    return colour.to_model_space(img * gain, colour.LINEAR_SPACE)


@pytest.fixture(scope="module")
def face_model() -> face.FaceModel:
    samples = []
    for seed in (11, 12):
        shot = synth.render_shot(CHARACTER, seed, frames=4, width=W, height=H)
        samples += [(_model_space(im), shot.face_boxes[f]) for f, im in zip(shot.shot.frames, shot.images)]
    return face.learn_face_model(samples)


def _clipped(b: face.FaceBox) -> Tuple[float, float, float, float]:
    x0, y0 = max(b.x, 0.0), max(b.y, 0.0)
    x1, y1 = min(b.x + b.w, W), min(b.y + b.h, H)
    return (x0, y0, x1 - x0, y1 - y0)


def _locate(shot, model: face.FaceModel, gains=None) -> Dict[int, face.FaceBox]:
    gains = gains if gains is not None else [1.0] * len(shot.images)
    frames = [(f, _model_space(im, g)) for f, im, g in zip(shot.shot.frames, shot.images, gains)]
    return face.locate_faces(frames, model)


def test_boxes_found_and_tracked(face_model: face.FaceModel) -> None:
    shot = synth.render_shot(CHARACTER, 21, frames=16, width=W, height=H)
    boxes = _locate(shot, face_model)
    assert sorted(boxes) == list(shot.shot.frames)
    for f in shot.shot.frames:
        b = boxes[f]
        assert b.status == face.STATUS_OK, (f, b.reason)
        assert face.iou(_clipped(b), shot.face_boxes[f]) > TOL["iou"]


def test_boxes_stable_under_flicker(face_model: face.FaceModel) -> None:
    shot = synth.render_shot(CHARACTER, 22, frames=16, width=W, height=H)
    rng = np.random.default_rng(0)
    gains = 1.0 + TOL["flicker"] * rng.choice([-1.0, 1.0], len(shot.images))
    boxes = _locate(shot, face_model, gains)
    steady = _locate(shot, face_model)
    for f in shot.shot.frames:
        assert boxes[f].ok, boxes[f].reason
        assert face.iou(_clipped(boxes[f]), shot.face_boxes[f]) > TOL["iou"]
        assert face.iou(boxes[f].as_tuple(), steady[f].as_tuple()) > 0.9


def test_face_leaving_the_frame_is_flagged_never_guessed(face_model: face.FaceModel) -> None:
    shot = synth.render_shot(CHARACTER, 23, frames=16, width=W, height=H, exit_frame=1009)
    boxes = _locate(shot, face_model)
    gone = [f for f in shot.shot.frames if f not in shot.face_boxes]
    assert gone, "the synthetic exit left no empty frame"
    for f in gone:
        assert boxes[f].status == face.STATUS_LOST and boxes[f].reason
        assert math.isnan(boxes[f].x)
    for f, (x, y, w, h) in shot.face_boxes.items():
        cut = x <= 0.5 or y <= 0.5 or x + w >= W - 0.5 or y + h >= H - 0.5
        if cut:
            assert not boxes[f].ok, f"frame {f}: a face cut by the edge must be flagged"
        elif f < 1009:
            assert boxes[f].ok and face.iou(boxes[f].as_tuple(), (x, y, w, h)) > TOL["iou"]


def test_face_model_json_round_trip(face_model: face.FaceModel, tmp_path) -> None:
    data = json.loads(json.dumps(face_model.to_dict()))
    back = face.FaceModel.from_dict(data)
    np.testing.assert_allclose(back.template, face_model.template, atol=1e-6)
    np.testing.assert_allclose(back.colour_lut, face_model.colour_lut, atol=1e-5)
    assert back.box_width_px == face_model.box_width_px and back.score_ok == face_model.score_ok
    path = face.write_face_model(face_model, tmp_path)
    assert path.endswith(face.FACE_MODEL_FILE)
    again = face.read_face_model(tmp_path)
    np.testing.assert_allclose(again.template, face_model.template, atol=1e-6)
    with pytest.raises(ModelSchemaError):
        face.FaceModel.from_dict({**data, "schema": "SeamRotoFaceModel.0"})
    with pytest.raises(ModelSchemaError):
        face.FaceModel.from_dict({**data, "template": [[1.0]]})


def test_learn_face_model_needs_a_usable_sample() -> None:
    with pytest.raises(ValueError):
        face.learn_face_model([])
    with pytest.raises(ValueError):
        face.learn_face_model([(np.zeros((40, 40, 3), np.float32), (float("nan"), 0, 10, 10))])
    with pytest.raises(ShapeError):
        face.learn_face_model([(np.zeros((40, 40), np.float32), (5, 5, 10, 10))])


def test_box_from_landmarks() -> None:
    pts = np.array([[10.0, 20.0], [30.0, 60.0], [np.nan, 5.0]])
    b = face.box_from_landmarks(pts)
    assert b.as_tuple() == (10.0, 20.0, 20.0, 40.0) and b.ok
    grown = face.box_from_landmarks(pts, margin=0.25)
    assert grown.as_tuple() == pytest.approx((5.0, 10.0, 30.0, 60.0))
    edge = face.box_from_landmarks(pts, margin=0.25, image_size=(100, 60))
    assert edge.status == face.STATUS_EDGE and "bottom" in edge.reason
    lost = face.box_from_landmarks(np.full((3, 2), np.nan))
    assert lost.status == face.STATUS_LOST and not lost.found


class _Progress:
    def __init__(self, cancel_after: int) -> None:
        self.calls: List[Tuple[int, int]] = []
        self.cancel_after = cancel_after

    def update(self, done: int, total: int, message: str = "") -> None:
        self.calls.append((done, total))

    @property
    def cancelled(self) -> bool:
        return len(self.calls) >= self.cancel_after


def test_progress_is_reported_and_cancel_stops(face_model: face.FaceModel) -> None:
    shot = synth.render_shot(CHARACTER, 24, frames=3, width=W, height=H)
    frames = [(f, _model_space(im)) for f, im in zip(shot.shot.frames, shot.images)]
    progress = _Progress(cancel_after=100)
    face.locate_faces(frames, face_model, progress)
    assert progress.calls[-1] == (3, 3)
    with pytest.raises(CancelledError):
        face.locate_faces(frames, face_model, _Progress(cancel_after=2))
    assert face.locate_faces([], face_model) == {}
