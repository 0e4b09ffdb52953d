"""Shape prior: learns where outline points sit from the interior, fixes them along the outline only."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest

from seamroto import fusion, shapeprior
from seamroto.datamodel import Seam
from seamroto.errors import ModelChecksumError, ModelSchemaError
from seamroto.faceframe import face_frames, from_face
from seamroto.flow import PointFlow
from seamroto.models import file_sha256

# Tolerances, px unless named otherwise.
TOL = {
    "exact_prior": 0.5,  # prior from exact anchors on a held-out shot (ridge for 0.3 px noise)
    "mean_only": 1.0,  # a prior that ignored the pose would be at least this far off
    "fused_along": 1.5,  # chin error along its outline with the prior (the detector is 4 px off)
    "across_change": 0.3,  # how much the prior may move the chin across its outline
    "roundtrip": 1e-12,
    "jump_conf": 0.5,  # confidence of a hidden point that moved far while hidden, at most
    "still_conf": 0.9,  # confidence of a hidden point that did not move, at least
}
# A face in face units: (name, x, y, depth towards the camera). Interior parts stand out of the
# face (parallax under yaw), the outline and the seam are on it.
ANCHORS = (
    ("eye_l_out", -0.30, -0.10, 0.06),
    ("eye_l_in", -0.12, -0.10, 0.06),
    ("eye_r_in", 0.12, -0.10, 0.06),
    ("eye_r_out", 0.30, -0.10, 0.06),
    ("nose_l", -0.08, 0.12, 0.14),
    ("nose_tip", 0.00, 0.16, 0.14),
    ("nose_r", 0.08, 0.12, 0.14),
)
TARGETS = (
    ("top", 0.00, -0.50, 0.0),
    ("left", -0.40, 0.10, 0.0),
    ("right", 0.40, 0.10, 0.0),
    ("chin", 0.00, 0.50, 0.0),
    ("seam_0", -0.40, -0.02, 0.0),
    ("seam_1", 0.00, -0.02, 0.0),
    ("seam_2", 0.40, -0.02, 0.0),
)
BROW = ("brow", -0.20, -0.30, 0.07)  # raised and lowered at random: not rigid
NAMES = tuple(p[0] for p in ANCHORS + TARGETS + (BROW,))
SEAMS = (Seam("seam", ("seam_0", "seam_1", "seam_2")),)
SCALE_PX = 240.0
FRAMES = 30
YAW = math.radians(8.0)
ROLL = math.radians(3.0)


def face_shot(seed: int, frames: int = FRAMES) -> np.ndarray:
    """Exact landmarks of a turning, swaying head. Shape: (F, L, 2), _img space."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)
    ph = rng.uniform(0, 2 * np.pi, 5)
    yaw = YAW * np.sin(2 * np.pi * t / 40.0 + ph[0])
    roll = ROLL * np.sin(2 * np.pi * t / 55.0 + ph[1])
    cx = 320 + 30 * np.sin(2 * np.pi * t / 50.0 + ph[2])
    cy = 240 + 15 * np.sin(2 * np.pi * t / 45.0 + ph[3])
    scale = SCALE_PX * (1.0 + 0.05 * np.sin(2 * np.pi * t / 60.0 + ph[4]))
    raise_ = rng.normal(0.0, 0.03, frames)
    parts = np.array([p[1:] for p in ANCHORS + TARGETS + (BROW,)])
    out = np.zeros((frames, len(parts), 2))
    for i in range(frames):
        x = parts[:, 0] * math.cos(yaw[i]) + parts[:, 2] * math.sin(yaw[i])
        y = parts[:, 1].copy()
        y[-1] += raise_[i]
        c, s = math.cos(roll[i]), math.sin(roll[i])
        out[i, :, 0] = cx[i] + scale[i] * (c * x - s * y)
        out[i, :, 1] = cy[i] + scale[i] * (s * x + c * y)
    return out


def learned(seeds: Tuple[int, ...] = (1, 2, 3, 4)) -> shapeprior.ShapePrior:
    return shapeprior.learn_shape_prior(
        [face_shot(s) for s in seeds],
        NAMES,
        anchors=[p[0] for p in ANCHORS],
        targets=[p[0] for p in TARGETS],
    )


def test_prior_predicts_a_held_out_shot_and_needs_the_pose_to() -> None:
    prior = learned()
    test = face_shot(9)
    pred = prior.predict(test, NAMES)
    assert pred is not None
    assert pred.mean.shape == (FRAMES, len(TARGETS), 2)
    assert pred.cov.shape == (FRAMES, len(TARGETS), 2, 2)
    err = np.linalg.norm(pred.mean - test[:, pred.columns], axis=2)
    assert err.max() < TOL["exact_prior"]
    # the yaw is what moves the outline against the interior: ignoring it costs pixels
    frames = face_frames(test[:, : len(ANCHORS)], prior.template)
    mean_only = np.array([from_face(prior.target_mean, *fr) for fr in frames if fr is not None])
    assert np.linalg.norm(mean_only - test[:, pred.columns], axis=2).max() > TOL["mean_only"]
    # covariances are positive definite and grow with the face
    assert (np.linalg.eigvalsh(pred.cov) > 0).all()


def test_default_landmarks_outline_and_seam_are_targets_and_the_brow_no_anchor() -> None:
    anchors, targets = shapeprior.choose_landmarks([face_shot(s) for s in (1, 2)], NAMES, seams=SEAMS)
    assert {"top", "left", "right", "chin", "seam_0", "seam_1", "seam_2"} <= set(targets)
    assert "brow" not in anchors
    assert {"eye_l_out", "eye_r_out", "nose_tip"} <= set(anchors)


def test_a_target_that_moves_on_its_own_is_dropped() -> None:
    prior = shapeprior.learn_shape_prior(
        [face_shot(s) for s in (1, 2, 3)], NAMES, anchors=[p[0] for p in ANCHORS], targets=["chin", "brow"]
    )
    assert prior.targets == ("chin",)
    assert prior.stats["dropped"] == ["brow"]


def test_predict_without_an_anchor_says_nothing_and_nan_frames_stay_nan() -> None:
    prior = learned()
    test = face_shot(9)
    keep = [j for j, n in enumerate(NAMES) if n != "nose_tip"]
    assert prior.predict(test[:, keep], [NAMES[j] for j in keep]) is None
    test[3, 0] = np.nan
    pred = prior.predict(test, NAMES)
    assert pred is not None
    assert np.isnan(pred.mean[3]).all() and np.isfinite(pred.mean[4]).all()


def _model_folder(root: Path, prior: shapeprior.ShapePrior, listed: bool = True) -> Path:
    folder = root / "model"
    folder.mkdir(parents=True)
    path = shapeprior.write_shape_prior(folder, prior)
    files = {shapeprior.SHAPE_PRIOR_FILE: file_sha256(path)} if listed else {}
    (folder / "card.json").write_text(json.dumps({"files": files}), encoding="utf-8")
    return folder


def test_json_roundtrip_through_a_model_folder(tmp_path: Path) -> None:
    prior = learned()
    prior = prior.with_error_model(fusion.ErrorModel(residual_gain=0.3, floor_px=0.2, hidden_gain=0.25))
    back = shapeprior.load_shape_prior(_model_folder(tmp_path, prior))
    assert back is not None
    assert back.anchors == prior.anchors and back.targets == prior.targets
    assert back.error_model == prior.error_model
    test = face_shot(9)
    a, b = prior.predict(test, NAMES), back.predict(test, NAMES)
    assert a is not None and b is not None
    np.testing.assert_allclose(a.mean, b.mean, atol=TOL["roundtrip"])


def test_loader_tolerates_folders_without_a_prior_and_refuses_bad_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert shapeprior.load_shape_prior(tmp_path) is None
    prior = learned()
    unlisted = _model_folder(tmp_path / "a", prior, listed=False)
    with caplog.at_level(logging.WARNING):
        assert shapeprior.load_shape_prior(unlisted) is None
    assert "not listed" in caplog.text
    folder = _model_folder(tmp_path / "b", prior)
    path = folder / shapeprior.SHAPE_PRIOR_FILE
    path.write_text(path.read_text(encoding="utf-8").replace('"ridge"', '"ridge" ', 1), encoding="utf-8")
    with pytest.raises(ModelChecksumError):
        shapeprior.load_shape_prior(folder)
    doc = prior.to_dict()
    doc["schema"] = "SeamRotoShapePrior.0"
    with pytest.raises(ModelSchemaError):
        shapeprior.ShapePrior.from_dict(doc)


def test_anchor_noise_is_measured_for_the_prior_and_checked() -> None:
    prior = learned()
    truth = [face_shot(7)]
    rng = np.random.default_rng(0)
    tracked = [truth[0] + rng.normal(0.0, 0.5, truth[0].shape)]
    noise = shapeprior.measure_anchor_noise(tracked, truth, NAMES, prior)
    assert noise.moment.shape == (2 * len(ANCHORS),) * 2
    assert (np.linalg.eigvalsh(noise.moment) > -1e-12).all()
    again = shapeprior.learn_shape_prior(
        [face_shot(s) for s in (1, 2, 3, 4)], NAMES, anchors=prior.anchors, targets=prior.targets, anchor_noise=noise
    )
    assert again.stats["anchor_noise"].startswith("measured")
    other = dataclasses.replace(noise, anchors=prior.anchors[::-1])
    with pytest.raises(ValueError):
        shapeprior.learn_shape_prior(
            [face_shot(s) for s in (1, 2)], NAMES, anchors=prior.anchors, targets=prior.targets, anchor_noise=other
        )


# --- with fusion -------------------------------------------------------------------------------


def _flows(truth: np.ndarray, aperture: np.ndarray) -> Tuple[PointFlow, PointFlow]:
    f, n = truth.shape[:2]
    fwd = np.full((f, n, 2), np.nan)
    bwd = np.full((f, n, 2), np.nan)
    fwd[:-1] = truth[1:] - truth[:-1]
    bwd[1:] = truth[:-1] - truth[1:]
    rel_f, rel_b = np.ones((f, n)), np.ones((f, n))
    rel_f[-1], rel_b[0] = 0.0, 0.0
    ap = np.broadcast_to(aperture, (f, n, 2, 2)).copy()
    return PointFlow(fwd, rel_f, ap), PointFlow(bwd, rel_b, ap)


def _chin_scene() -> Tuple[np.ndarray, np.ndarray, np.ndarray, Tuple[PointFlow, PointFlow]]:
    truth = face_shot(9)
    rng = np.random.default_rng(3)
    det = truth + rng.normal(0.0, 0.2, truth.shape)
    chin = NAMES.index("chin")
    # the detector slides along the outline (x at the chin) by a slowly varying 4 px
    det[:, chin, 0] += 4.0 + 0.5 * np.sin(np.arange(FRAMES) / 5.0)
    aperture = np.broadcast_to(np.eye(2), (len(NAMES), 2, 2)).copy()
    aperture[chin] = np.diag([0.02, 1.0])  # an edge: LK is blind along x
    return truth, det, np.full(truth.shape[:2], 0.9), _flows(truth, aperture)


def test_fusion_with_the_prior_fixes_the_chin_along_its_outline_only() -> None:
    truth, det, conf, (fwd, bwd) = _chin_scene()
    frames = list(range(1001, 1001 + FRAMES))
    chin = NAMES.index("chin")
    plain = fusion.fuse_tracks(frames, det, conf, fwd, bwd, landmark_names=NAMES)
    with_prior = fusion.fuse_tracks(frames, det, conf, fwd, bwd, landmark_names=NAMES, shape_prior=learned())
    err_plain = plain.points[:, chin] - truth[:, chin]
    err_prior = with_prior.points[:, chin] - truth[:, chin]
    assert np.abs(err_plain[:, 0]).mean() > 3.0  # without the prior the bias stays
    assert np.abs(err_prior[:, 0]).max() < TOL["fused_along"]
    across_shift = np.abs(with_prior.points[:, chin, 1] - plain.points[:, chin, 1]).max()
    assert across_shift < TOL["across_change"]
    assert "chin" in with_prior.prior_landmarks and "eye_l_out" not in with_prior.prior_landmarks
    # interior landmarks are not re-solved
    np.testing.assert_array_equal(with_prior.points[:, 0], plain.points[:, 0])
    # the detection the prior overruled along the outline does not count against the chin
    assert with_prior.confidence[:, chin].min() > TOL["still_conf"]


def test_a_prior_for_other_landmarks_leaves_fusion_unchanged() -> None:
    truth, det, conf, (fwd, bwd) = _chin_scene()
    frames = list(range(1001, 1001 + FRAMES))
    names = tuple(f"x{j}" for j in range(len(NAMES)))
    plain = fusion.fuse_tracks(frames, det, conf, fwd, bwd, landmark_names=names)
    other = fusion.fuse_tracks(frames, det, conf, fwd, bwd, landmark_names=names, shape_prior=learned())
    np.testing.assert_array_equal(plain.points, other.points)
    np.testing.assert_array_equal(plain.confidence, other.confidence)
    assert other.prior_landmarks == ()


def _hidden_scene(jump_px: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    truth = face_shot(9)
    eye = NAMES.index("eye_l_in")  # stands for a pupil: hidden on frames 10-12, then elsewhere
    truth[13:, eye, 0] += jump_px
    det = truth + np.random.default_rng(5).normal(0.0, 0.3, truth.shape)
    conf = np.full(truth.shape[:2], 0.9)
    conf[10:13, eye] = 0.05
    return truth, det, conf


def test_a_point_that_moved_while_hidden_is_not_trusted_on_the_hidden_frames() -> None:
    frames = list(range(1001, 1001 + FRAMES))
    # a calibrated model: the detector's own (low) confidence says little, the jump a lot
    model = fusion.ErrorModel(residual_gain=0.05, detector_px=0.02, floor_px=0.24, hidden_gain=0.25)
    eye = NAMES.index("eye_l_in")
    out: List[float] = []
    for jump in (10.0, 0.0):
        truth, det, conf = _hidden_scene(jump)
        fwd, bwd = _flows(truth, np.eye(2))
        res = fusion.fuse_tracks(
            frames, det, conf, fwd, bwd, landmark_names=NAMES, params=fusion.FusionParams(error_model=model)
        )
        assert res.error_features is not None
        out.append(float(res.confidence[10:13, eye].max()))
        if jump:
            jumps = np.sqrt(res.error_features[10:13, eye, -1])
            np.testing.assert_allclose(jumps, jump, atol=1.0)
            assert res.error_features[9, eye, -1] == 0.0
    assert out[0] < TOL["jump_conf"]
    assert out[1] > TOL["still_conf"]


# --- parts: interior points pinned in one direction only (an upper lid along itself) ----------

LID_NAMES = NAMES + ("lid",)


def lid_shot(seed: int, blink: slice = slice(0, 0)) -> np.ndarray:
    """``face_shot`` plus an upper lid over the left eye: it slides up and down (a few px at
    random, the whole way down on ``blink`` frames, bending 2.5 px sideways there) but sits at
    one place along the eye. Shape: (F, L + 1, 2)."""
    face = face_shot(seed)
    out_, in_ = face[:, NAMES.index("eye_l_out")], face[:, NAMES.index("eye_l_in")]
    axis = in_ - out_
    across = np.stack([axis[:, 1], -axis[:, 0]], axis=1)  # towards the brow (y up the face)
    slide = np.random.default_rng(seed + 100).normal(0.0, 0.05, len(face))
    slide[blink] -= 0.5
    lid = 0.5 * (out_ + in_) + (0.25 + slide)[:, None] * across
    lid[blink] += (2.5, 0.0)
    return np.concatenate([face, lid[:, None]], axis=1)


def lid_prior() -> shapeprior.ShapePrior:
    return shapeprior.learn_shape_prior([lid_shot(s) for s in (1, 2, 3, 4)], LID_NAMES, seams=SEAMS, parts=True)


def test_a_part_pinned_one_way_is_offered_only_with_parts_and_listed() -> None:
    shots = [lid_shot(s) for s in (1, 2, 3, 4)]
    plain = shapeprior.learn_shape_prior(shots, LID_NAMES, seams=SEAMS)
    assert "lid" not in plain.targets
    assert plain.stats["parts"] == []
    prior = lid_prior()
    assert "lid" in prior.targets and prior.stats["parts"] == ["lid"]
    assert prior.anchors == plain.anchors
    # pinned along the eye, free across it: the two sigmas differ many times
    vals = np.linalg.eigvalsh(prior.residual_cov[prior.targets.index("lid")])
    assert math.sqrt(vals[1] / vals[0]) >= fusion.ONE_DIRECTION_RATIO
    # each target got its own ridge, so the chin's prediction did not change with the lid
    assert set(prior.stats["ridge_factors"]) == set(prior.targets)
    test = lid_shot(9)
    a, b = plain.predict(test, LID_NAMES), prior.predict(test, LID_NAMES)
    assert a is not None and b is not None
    chin = LID_NAMES.index("chin")
    np.testing.assert_allclose(
        a.mean[:, list(a.columns).index(chin)], b.mean[:, list(b.columns).index(chin)], atol=TOL["roundtrip"]
    )


def test_without_drops_targets_and_keeps_the_others_predictions() -> None:
    prior = learned()
    less = prior.without(["chin", "seam_1"])
    assert less.targets == tuple(t for t in prior.targets if t not in ("chin", "seam_1"))
    assert {"chin", "seam_1"} <= set(less.stats["dropped"])
    test = face_shot(9)
    full, part = prior.predict(test, NAMES), less.predict(test, NAMES)
    assert full is not None and part is not None
    keep = [k for k, t in enumerate(prior.targets) if t in less.targets]
    np.testing.assert_allclose(part.mean, full.mean[:, keep], atol=TOL["roundtrip"])
    np.testing.assert_allclose(part.cov, full.cov[:, keep], atol=TOL["roundtrip"])
    with pytest.raises(ValueError):
        prior.without(prior.targets)


def test_a_part_is_fixed_along_its_line_and_left_to_the_detector_off_it() -> None:
    blink = slice(14, 17)
    truth = lid_shot(9, blink)
    lid = LID_NAMES.index("lid")
    det = truth + np.random.default_rng(4).normal(0.0, 0.2, truth.shape)
    det[:, lid, 0] += 3.0  # the detector slides along the lid, where its LK window is blind
    det[blink, lid] = truth[blink, lid]  # ... but sees the closed lid right
    aperture = np.broadcast_to(np.eye(2), (len(LID_NAMES), 2, 2)).copy()
    aperture[lid] = np.diag([0.02, 1.0])
    fwd, bwd = _flows(truth, aperture)
    frames = list(range(1001, 1001 + FRAMES))
    conf = np.full(truth.shape[:2], 0.9)
    opened = np.ones(FRAMES, bool)
    opened[blink] = False
    res = fusion.fuse_tracks(frames, det, conf, fwd, bwd, landmark_names=LID_NAMES, shape_prior=lid_prior())
    err = np.abs(res.points[:, lid] - truth[:, lid])
    assert "lid" in res.prior_landmarks
    assert err[opened, 0].max() < TOL["fused_along"]  # the 3 px slide is gone while the eye is open
    assert err[blink].max() < TOL["fused_along"]  # ... and the blink is the detector's
    gateless = fusion.fuse_tracks(
        frames, det, conf, fwd, bwd, landmark_names=LID_NAMES, shape_prior=lid_prior(),
        params=fusion.FusionParams(prior_line_sigmas=np.inf),
    )
    assert np.abs(gateless.points[blink, lid] - truth[blink, lid]).max() > TOL["fused_along"]


def test_an_anchor_covered_by_a_rod_is_carried_by_the_face_not_by_the_rod() -> None:
    # a rod crosses the left outer eye corner on frames 10-14: the detector puts the corner on
    # the rod, 25 px off, with its usual confidence, and LK follows the rod as well
    truth = face_shot(9)
    corner, gap = NAMES.index("eye_l_out"), slice(10, 15)
    det = truth + np.random.default_rng(6).normal(0.0, 0.2, truth.shape)
    det[gap, corner] += (25.0, 5.0)
    fwd, bwd = _flows(truth, np.eye(2))
    fwd.displacement[9:15, corner] += (5.0, 1.0)
    bwd.displacement[10:16, corner] -= (5.0, 1.0)
    frames = list(range(1001, 1001 + FRAMES))
    conf = np.full(truth.shape[:2], 0.9)
    off = fusion.off_face_anchors(det, np.ones(truth.shape[:2], bool), NAMES, learned())
    assert off[gap, corner].all() and off.sum() == gap.stop - gap.start
    res = fusion.fuse_tracks(frames, det, conf, fwd, bwd, landmark_names=NAMES, shape_prior=learned())
    plain = fusion.fuse_tracks(frames, det, conf, fwd, bwd, landmark_names=NAMES)
    err = np.linalg.norm(res.points[gap, corner] - truth[gap, corner], axis=-1)
    assert err.max() < TOL["fused_along"]
    assert np.linalg.norm(plain.points[gap, corner] - truth[gap, corner], axis=-1).max() > 5.0
    # a detector that puts the corner 25 px off on every frame is poor, not covered: kept
    det[:, corner] = truth[:, corner] + (25.0, 5.0)
    assert not fusion.off_face_anchors(det, np.ones(truth.shape[:2], bool), NAMES, learned()).any()


def test_covered_anchor_check_tolerates_missing_detections_and_other_landmarks() -> None:
    truth = face_shot(9)
    ok = np.ones(truth.shape[:2], bool)
    ok[3] = False  # a frame without a face
    ok[5, : len(ANCHORS) - 2] = False  # too few anchors left to define the face
    det = np.where(ok[..., None], truth, np.nan)
    assert not fusion.off_face_anchors(det, ok, NAMES, learned()).any()
    # a model whose landmarks do not include the prior's anchors: nothing to say
    other = tuple(f"x{j}" for j in range(len(NAMES)))
    assert not fusion.off_face_anchors(det, ok, other, learned()).any()
