"""Temporal fusion: steadier than the detections, follows real motion, honest about gaps."""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np
import pytest
from scipy.linalg import cholesky_banded

from seamroto import fusion
from seamroto.confidence import ErrorModel
from seamroto.curves import excess_jitter_px
from seamroto.errors import ShapeError
from seamroto.flow import PointFlow

# Tolerances, px unless named otherwise.
TOL = {
    "jitter_factor": 5.0,  # raw jitter / fused jitter, at least
    "step_error": 2.0,  # error right after a real step, with flow broken at the step
    "step_error_no_flow": 3.0,  # same, detections only, two frames after the step
    "outlier_fused": 1.5,  # fused error on a frame whose detection was an outlier
    "outlier_weight": 0.3,  # weight an outlier detection may keep
    "flow_only": 1.0,  # error on frames filled by flow alone
    "occluded_error": 2.0,  # error on frames whose detection and own flow follow an occluder
    "margin_gain": 0.5,  # jitter around an occlusion with the flow beside it ignored / with it used
    "disagreement_sigma": 5.0,  # sigma of a track that detections contradicted several frames running
    "zigzag_error": 2.5,  # error of a landmark whose flow is 4 px off link after link (3.6 trusting it)
    "zigzag_gain": 0.5,  # jitter with flow that is wrong link after link trusted less / trusted as LK says
    "link_check_error": 1.0,  # error after a face-motion link the detections contradict
    "pieces_gain": 0.8,  # mouth error with the pieces' prior / without, at most
    "linear_algebra": 1e-9,
}
DET_SIGMA = 1.0
FLOW_SIGMA = 0.05
N_CONT = 10
MOUTH = ("m_l", "m_top", "m_r", "m_bot")
NAMES = tuple(f"p{j}" for j in range(N_CONT)) + MOUTH
FIRST = 1001


@dataclasses.dataclass
class Scene:
    truth: np.ndarray
    det: np.ndarray
    conf: np.ndarray
    fwd: PointFlow
    bwd: PointFlow
    outliers: np.ndarray

    @property
    def frames(self) -> list:
        return list(range(FIRST, FIRST + len(self.truth)))


def _scene(
    f: int = 60,
    seed: int = 0,
    step_at: Optional[int] = None,
    step=(40.0, -15.0),
    outlier_rate: float = 0.0,
) -> Scene:
    """A moving, slightly rotating face: 10 continuous points and a 4-point mouth whose print
    (one of 4) changes every frame."""
    rng = np.random.default_rng(seed)
    t = np.arange(f, dtype=float)
    centre = np.stack([600 + 60 * np.sin(t / 9), 400 + 25 * np.cos(t / 13)], axis=1)
    if step_at is not None:
        centre[step_at:] += step
    angle = 0.05 * np.sin(t / 17)
    offsets = rng.uniform(-150, 150, (N_CONT, 2))
    prints = rng.uniform(-40, 40, (4, 4, 2)) + [[-60, 120], [0, 100], [60, 120], [0, 150]]
    which = rng.integers(0, 4, f)
    local = np.concatenate([np.repeat(offsets[None], f, 0), prints[which]], axis=1)
    rot = np.stack([np.stack([np.cos(angle), -np.sin(angle)], -1), np.stack([np.sin(angle), np.cos(angle)], -1)], -2)
    truth = centre[:, None] + np.einsum("fij,flj->fli", rot, local)
    det = truth + rng.normal(0, DET_SIGMA, truth.shape)
    out = rng.random(truth.shape[:2]) < outlier_rate
    det[out] += rng.choice([-1, 1], (out.sum(), 2)) * rng.uniform(10, 20, (out.sum(), 2))
    conf = rng.uniform(0.8, 1.0, truth.shape[:2])
    n = truth.shape[1]
    fwd = np.full((f, n, 2), np.nan)
    bwd = np.full((f, n, 2), np.nan)
    fwd[:-1] = truth[1:] - truth[:-1] + rng.normal(0, FLOW_SIGMA, (f - 1, n, 2))
    bwd[1:] = truth[:-1] - truth[1:] + rng.normal(0, FLOW_SIGMA, (f - 1, n, 2))
    fr, br = np.ones((f, n)), np.ones((f, n))
    fr[-1] = br[0] = 0.0
    fwd[:, N_CONT:] = bwd[:, N_CONT:] = np.nan  # the mouth is never tracked
    fr[:, N_CONT:] = br[:, N_CONT:] = 0.0
    return Scene(truth, det, conf, PointFlow(fwd, fr), PointFlow(bwd, br), out)


def _fuse(s: Scene, **kw) -> fusion.FusedTracks:
    params = kw.pop("params", fusion.FusionParams())
    return fusion.fuse_tracks(
        s.frames, s.det, s.conf, kw.pop("fwd", s.fwd), kw.pop("bwd", s.bwd),
        landmark_names=NAMES, discontinuous=MOUTH, params=params, **kw,
    )


def _jitter(err: np.ndarray) -> float:
    acc = err[2:] - 2 * err[1:-1] + err[:-2]
    return float(np.sqrt(np.nanmean((acc**2).sum(axis=-1))))


def _break_flow(s: Scene, link: int, cols=slice(0, N_CONT)) -> Scene:
    """No flow across ``link`` -> ``link + 1`` (a move too fast for LK)."""
    fd, fr = s.fwd.displacement.copy(), s.fwd.reliability.copy()
    bd, br = s.bwd.displacement.copy(), s.bwd.reliability.copy()
    fd[link, cols] = np.nan
    fr[link, cols] = 0.0
    bd[link + 1, cols] = np.nan
    br[link + 1, cols] = 0.0
    return dataclasses.replace(s, fwd=PointFlow(fd, fr), bwd=PointFlow(bd, br))


def test_shapes_types_and_defaults() -> None:
    s = _scene(f=20)
    res = _fuse(s)
    f, n = s.det.shape[:2]
    assert res.points.shape == (f, n, 2) and res.confidence.shape == (f, n)
    assert res.sigma_px.shape == (f, n) and res.detection_weight.shape == (f, n)
    assert res.frames == tuple(s.frames)
    assert ((res.confidence >= 0) & (res.confidence <= 1)).all()
    assert 0.5 < res.detection_sigma_px < 2.0  # estimated from the shot, truth 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        fusion.FusionParams().smoothing = 2.0  # type: ignore[misc]


def test_jitter_drops_by_a_large_factor_without_growing_the_error() -> None:
    s = _scene(outlier_rate=0.03)
    res = _fuse(s)
    cont = slice(0, N_CONT)
    raw_err, fused_err = s.det[:, cont] - s.truth[:, cont], res.points[:, cont] - s.truth[:, cont]
    assert _jitter(raw_err) / _jitter(fused_err) > TOL["jitter_factor"]
    assert np.linalg.norm(fused_err, axis=-1).mean() < np.linalg.norm(raw_err, axis=-1).mean()


def test_a_real_step_is_followed_not_smeared_when_flow_breaks_there() -> None:
    s = _break_flow(_scene(step_at=30), link=29)
    res = _fuse(s)
    err = np.linalg.norm(res.points[:, :N_CONT] - s.truth[:, :N_CONT], axis=-1)
    assert err[27:34].max() < TOL["step_error"]


def test_a_real_step_is_followed_with_detections_only() -> None:
    s = _scene(step_at=30)
    res = fusion.fuse_tracks(s.frames, s.det, s.conf, landmark_names=NAMES, discontinuous=MOUTH)
    err = np.linalg.norm(res.points[:, :N_CONT] - s.truth[:, :N_CONT], axis=-1)
    assert err[32:].max() < TOL["step_error_no_flow"]
    assert err[:28].max() < TOL["step_error_no_flow"]


def test_discontinuous_landmarks_keep_their_per_frame_detection() -> None:
    s = _scene()
    res = _fuse(s)
    np.testing.assert_array_equal(res.points[:, N_CONT:], s.det[:, N_CONT:])


def test_continuous_outliers_lose_their_weight_and_do_not_move_the_track() -> None:
    s = _scene(outlier_rate=0.05)
    res = _fuse(s)
    out = s.outliers[:, :N_CONT]
    assert out.sum() > 10
    assert (res.detection_weight[:, :N_CONT][out] < TOL["outlier_weight"]).all()
    err = np.linalg.norm(res.points[:, :N_CONT] - s.truth[:, :N_CONT], axis=-1)
    assert err[out].max() < TOL["outlier_fused"]


def test_a_discontinuous_outlier_gets_low_confidence_and_flags_its_frame() -> None:
    s = _scene()
    i, j = 25, N_CONT + 1  # m_top on frame 1026
    s.det[i, j] += (12.0, -9.0)
    res = _fuse(s)
    assert res.confidence[i, j] < fusion.FusionParams().confidence_threshold
    frame = FIRST + i
    assert frame in res.flagged_frames and "m_top" in res.reasons[frame]
    clean = [k for k in range(len(s.truth)) if k != i]
    assert (res.confidence[clean, N_CONT:] > 0.5).mean() > 0.9


def test_nan_stays_nan_where_there_is_no_data() -> None:
    s = _scene()
    s.det[40:45] = np.nan  # face gone: no detection...
    s = _break_flow(_break_flow(s, 39, slice(None)), 44, slice(None))
    for link in range(40, 44):
        s = _break_flow(s, link, slice(None))  # ... and no flow
    res = _fuse(s)
    assert np.isnan(res.points[40:45]).all() and (res.confidence[40:45] == 0).all()
    assert np.isfinite(res.points[:40]).all() and np.isfinite(res.points[45:]).all()
    for frame in range(FIRST + 40, FIRST + 45):
        assert "no data" in res.reasons[frame]


def test_face_flags_and_absent_frames_are_reported() -> None:
    s = _scene(f=20)
    res = _fuse(s, face_flags={FIRST + 3: "weak face match"}, face_absent=[FIRST + 7])
    assert "weak face match" in res.reasons[FIRST + 3]
    assert np.isnan(res.points[7]).all() and "not in shot" in res.reasons[FIRST + 7]


def test_flow_carries_a_landmark_through_missing_detections() -> None:
    s = _scene()
    s.det[20:23, 2] = np.nan
    res = _fuse(s)
    err = np.linalg.norm(res.points[20:23, 2] - s.truth[20:23, 2], axis=-1)
    assert err.max() < TOL["flow_only"]
    track = res.to_tracks(NAMES)[2]
    assert not track.samples[FIRST + 21].keyed and track.samples[FIRST + 10].keyed


def test_face_motion_fills_a_landmark_flow_gap() -> None:
    s = _scene(seed=3)
    for link in range(10, 22):
        s = _break_flow(s, link, slice(4, 5))  # p4's own flow fails (a blink over a corner)
    with_rigid = _fuse(s)
    without = _fuse(s, params=fusion.FusionParams(rigid_motion=False))
    gap = slice(10, 23)
    jit_with = _jitter(with_rigid.points[gap, 4:5] - s.truth[gap, 4:5])
    jit_without = _jitter(without.points[gap, 4:5] - s.truth[gap, 4:5])
    assert jit_with < 0.5 * jit_without


def test_a_face_motion_fit_the_detections_contradict_does_not_drag_the_track() -> None:
    s = _scene(seed=4)
    for link in range(24, 36):
        s = _break_flow(s, link, slice(4, 5))  # p4 rides on the face's motion alone here
    fd, bd = s.fwd.displacement.copy(), s.bwd.displacement.copy()
    others = [j for j in range(N_CONT) if j != 4]
    fd[30, others] += (3.0, -2.0)  # every other landmark's LK is off on one link, both ways alike
    bd[31, others] -= (3.0, -2.0)
    s = dataclasses.replace(s, fwd=PointFlow(fd, s.fwd.reliability), bwd=PointFlow(bd, s.bwd.reliability))
    checked = _fuse(s)
    trusted = _fuse(s, params=fusion.FusionParams(rigid_link_check=False))
    after = slice(31, 36)
    err_checked = np.linalg.norm(checked.points[after, 4] - s.truth[after, 4], axis=-1).max()
    err_trusted = np.linalg.norm(trusted.points[after, 4] - s.truth[after, 4], axis=-1).max()
    assert err_checked < TOL["link_check_error"] < err_trusted


def test_a_landmark_the_detections_see_leave_the_face_motion_loses_it_on_that_link() -> None:
    # the face-motion term itself: one landmark's detections move 6 px off the face's motion on
    # one link (a lid in a blink, seen by a detector of 0.3 px noise); only it, only there, loses it
    s = _scene(seed=6)
    f = len(s.truth)
    rng = np.random.default_rng(1)
    det = s.truth[:, :N_CONT] + rng.normal(0, 0.3, (f, N_CONT, 2))
    det[31:, 4] += (0.0, 6.0)
    det_ok = np.ones((f, N_CONT), bool)
    disp = np.stack([s.fwd.displacement[:-1, :N_CONT], -s.bwd.displacement[1:, :N_CONT]])
    info = np.broadcast_to(np.eye(2) / FLOW_SIGMA**2, (2, f - 1, N_CONT, 2, 2)).copy()
    cont = np.ones(N_CONT, bool)
    det_sigma = np.full((f, N_CONT), 0.3)
    params = fusion.FusionParams()
    _, plain = fusion._rigid_terms(det, det_ok, disp, info, cont, params)
    _, checked = fusion._rigid_terms(det, det_ok, disp, info, cont, params, det_sigma)
    sigma_px = 1.0 / np.sqrt(checked[..., 0, 0])
    assert sigma_px[30, 4] > 2.0  # the link where p4 left the face: no longer a measurement of it
    others = np.ones_like(sigma_px, bool)
    others[30, 4] = False
    # every other landmark and link stays a precise one (below the detector's noise)
    assert np.all(sigma_px[others] < 0.3) and np.all(plain[..., 0, 0] > 0)


def test_bad_input_is_refused() -> None:
    s = _scene(f=10)
    with pytest.raises(ShapeError):
        fusion.fuse_tracks(s.frames[:-1], s.det, s.conf)
    with pytest.raises(ShapeError):
        fusion.fuse_tracks(s.frames, s.det, s.conf[:, :3])
    with pytest.raises(ShapeError):
        fusion.fuse_tracks(s.frames, s.det, s.conf, PointFlow(s.det[:3], s.conf[:3]))
    with pytest.raises(ValueError, match="mouth_x"):
        fusion.fuse_tracks(s.frames, s.det, s.conf, landmark_names=NAMES, discontinuous=["mouth_x"])


def test_to_tracks_round_trip_names_and_values() -> None:
    s = _scene(f=8)
    res = _fuse(s)
    tracks = res.to_tracks(NAMES)
    assert [t.name for t in tracks] == list(NAMES)
    assert tracks[0].xy(FIRST) == pytest.approx(tuple(res.points[0, 0]))
    with pytest.raises(ShapeError):
        res.to_tracks(NAMES[:3])


def test_normal_matrix_and_posterior_variance_match_dense_algebra() -> None:
    rng = np.random.default_rng(0)
    f, state = 7, fusion.STATE
    a = rng.random(f)
    b = rng.random((f - 1, 2, 2))
    b = b @ b.transpose(0, 2, 1)
    g = np.zeros(f)
    g[1:-1] = rng.random(f - 2)
    step, size = 0.7, 0.3
    ab = fusion._normal_matrix(a, b, g, step, size)
    n = state * f

    def sel(i: int) -> np.ndarray:
        m = np.zeros((2, n))
        m[:, i : i + 2] = np.eye(2)
        return m

    dense = np.zeros((n, n))
    for t in range(f):
        x, bias = sel(state * t), sel(state * t + 2)
        dense += (a[t] + fusion.RIDGE) * x.T @ x + (size + fusion.RIDGE) * bias.T @ bias
    for t in range(f - 1):
        j = sel(state * t + state) - sel(state * t) + sel(state * t + 2)
        dense += j.T @ b[t] @ j
        j = sel(state * t + state + 2) - sel(state * t + 2)
        dense += step * j.T @ j
    for k in range(1, f - 1):
        j = sel(state * k - state) - 2 * sel(state * k) + sel(state * k + state)
        dense += g[k] * j.T @ j
    u = fusion.BAND
    banded = np.zeros_like(dense)
    for col in range(n):
        for row in range(max(0, col - u), col + 1):
            banded[row, col] = banded[col, row] = ab[u + row - col, col]
    np.testing.assert_allclose(banded, dense, atol=TOL["linear_algebra"])
    ub = cholesky_banded(ab, lower=False)
    np.testing.assert_allclose(
        fusion._diag_inverse(ub), np.diag(np.linalg.inv(dense)), rtol=1e-7, atol=TOL["linear_algebra"]
    )


def test_confidence_is_probability_within_tolerance() -> None:
    c = fusion._confidence(np.array([1e-3, 3.0 / math.sqrt(2 * math.log(2)), np.inf]), 3.0)
    np.testing.assert_allclose(c, [1.0, 0.5, 0.0], atol=1e-9)


def test_an_occluded_landmark_drops_its_own_flow_and_rides_on_the_face() -> None:
    s = _scene(seed=5)
    j, gap = 3, slice(20, 24)
    s.conf[gap, j] *= 0.1  # the detector's confidence collapses: p3 is covered
    s.det[gap, j] += (8.0, 6.0)  # ... and its detections are wrong
    fd, bd = s.fwd.displacement.copy(), s.bwd.displacement.copy()
    fd[19:24, j] += (3.0, -2.0)  # LK follows the occluder, and agrees both ways
    bd[20:25, j] -= (3.0, -2.0)
    s = dataclasses.replace(s, fwd=PointFlow(fd, s.fwd.reliability), bwd=PointFlow(bd, s.bwd.reliability))
    res = _fuse(s)
    err = np.linalg.norm(res.points[gap, j] - s.truth[gap, j], axis=-1)
    assert err.max() < TOL["occluded_error"]
    before = _fuse(s, params=fusion.FusionParams(occlusion_ratio=0.0, occlusion_power=0.0))
    assert np.linalg.norm(before.points[gap, j] - s.truth[gap, j], axis=-1).max() > err.max()


def test_the_flow_next_to_an_occlusion_is_ignored_too() -> None:
    s = _scene(seed=5)
    j, gap = 3, slice(20, 24)
    s.conf[gap, j] *= 0.1  # covered on frames 20-23 ...
    s.det[gap, j] += (8.0, 6.0)
    fd, bd = s.fwd.displacement.copy(), s.bwd.displacement.copy()
    # ... and on frame 24, seen again, the lid still half covers the point: its detection is a
    # little off and LK's window follows the lid, 24 <-> 25 wrong both ways (by less than the
    # robust weights reject on their own)
    s.det[24, j] += (0.0, -1.0)
    fd[24, j] += (0.0, 1.5)
    bd[24, j] -= (0.0, 1.5)
    s = dataclasses.replace(s, fwd=PointFlow(fd, s.fwd.reliability), bwd=PointFlow(bd, s.bwd.reliability))
    around = slice(17, 29)

    def jitter(res: fusion.FusedTracks) -> float:
        return excess_jitter_px((res.points[around, j] - s.truth[around, j])[:, None])

    tight = _fuse(s, params=fusion.FusionParams(occlusion_margin=0))
    assert jitter(_fuse(s)) < TOL["margin_gain"] * jitter(tight)  # no step where the lid lifts


def test_relative_confidence_is_against_each_landmarks_own_level() -> None:
    conf = np.array([[0.2, 0.8], [0.2, 0.8], [0.05, 0.8], [0.2, 0.0]])
    ok = conf > 0
    rel = fusion.relative_confidence(conf, ok)
    np.testing.assert_allclose(rel[:, 0], [1.0, 1.0, 0.25, 1.0])
    np.testing.assert_allclose(rel[:3, 1], 1.0)
    assert rel[3, 1] == 1.0  # no detection: neutral


def test_confidence_follows_the_detectors_own_and_ignores_a_dismissed_outlier() -> None:
    s = _scene()
    s.conf[:, 1] = 0.05  # a landmark the detector is never sure of
    s.det[30, 2] += (25.0, 0.0)  # a clear outlier: the track dismisses it and stays right
    res = _fuse(s)
    assert np.median(res.confidence[:, 1]) < fusion.FusionParams().confidence_threshold
    assert np.median(res.confidence[:, 0]) > 0.9
    assert np.linalg.norm(res.points[30, 2] - s.truth[30, 2]) < TOL["outlier_fused"]
    assert res.confidence[30, 2] > 0.9
    posterior_only = _fuse(s, params=fusion.FusionParams(error_model=None))
    assert np.median(posterior_only.confidence[:, 1]) > np.median(res.confidence[:, 1])


def test_a_frame_where_many_landmarks_are_each_fairly_unsure_is_flagged() -> None:
    s = _scene(f=20)
    i = 10
    s.conf[i, :N_CONT] *= 0.12  # every continuous landmark less sure on this frame
    # a fixed error model: the test is about the rule, not about the calibrated defaults
    model = ErrorModel(residual_gain=0.5, detector_px=0.158, floor_px=0.192)
    params = fusion.FusionParams(confidence_threshold=0.0, frame_flag_probability=0.5, error_model=model)
    res = _fuse(s, params=params)
    p_any = 1.0 - np.prod(res.confidence, axis=1)
    assert p_any[i] == p_any.max() and (res.confidence[i] > 0.0).all()
    for k, frame in enumerate(res.frames):
        assert (frame in res.flagged_frames) == (p_any[k] > params.frame_flag_probability)
    assert FIRST + i in res.flagged_frames and "likely that a landmark is off" in res.reasons[FIRST + i]
    assert len(res.flagged_frames) < len(res.frames) // 2


def test_the_replacement_pieces_prior_pulls_each_print_toward_the_characters_prints() -> None:
    from seamroto.faceframe import face_frames
    from seamroto.pieceprior import learn_piece_prior, measure_piece_noise
    from seamroto.shapeprior import ShapePrior, procrustes_mean

    anchors = NAMES[:6]
    whole = _scene(f=180, seed=14)  # one face and its four prints: train, calibrate, test on thirds
    train, cal = whole.truth[:60], slice(60, 120)
    template = procrustes_mean(train[:, :6])
    piece = learn_piece_prior([train], NAMES, MOUTH, anchors, template)
    assert piece is not None
    truth_cal = whole.truth[cal]
    piece = measure_piece_noise([truth_cal], [whole.det[cal]], [truth_cal], NAMES, piece, anchors, template)
    # a prior with no outline target: only the pieces' part speaks
    prior = ShapePrior(anchors, ("absent",), template, np.zeros(12), np.zeros((1, 2)), np.zeros((12, 1, 2)),
                       np.eye(2)[None] * 1e-4, 1.0, {}, None, piece)
    test = slice(120, 180)
    bwd_d, bwd_r = whole.bwd.displacement[test].copy(), whole.bwd.reliability[test].copy()
    bwd_d[0], bwd_r[0] = np.nan, 0.0  # nothing before the first test frame
    s = Scene(whole.truth[test], whole.det[test], whole.conf[test],
              PointFlow(whole.fwd.displacement[test], whole.fwd.reliability[test]), PointFlow(bwd_d, bwd_r),
              whole.outliers[test])
    plain, pulled = _fuse(s), _fuse(s, shape_prior=prior)
    mouth = slice(N_CONT, None)
    err_plain = np.linalg.norm(plain.points[:, mouth] - s.truth[:, mouth], axis=-1).mean()
    err_pulled = np.linalg.norm(pulled.points[:, mouth] - s.truth[:, mouth], axis=-1).mean()
    assert err_pulled < TOL["pieces_gain"] * err_plain
    assert np.array_equal(plain.points[:, :N_CONT], pulled.points[:, :N_CONT])  # continuous tracks untouched
    assert all(f is not None for f in face_frames(s.truth[:, :6], template))


def test_an_occluded_detection_does_not_make_the_track_it_contradicts_suspect() -> None:
    # a pupil under a closed lid: the detector guesses on the lid, frames running, far from a
    # track the face's motion carries right; only an unoccluded disagreement widens the sigma
    s = _scene(seed=5)
    j, gap = 3, slice(20, 24)
    s.det[gap, j] += (15.0, 10.0)
    seen = _fuse(s, params=fusion.FusionParams(error_model=None))
    s.conf[gap, j] *= 0.4  # below half its usual level: occluded, though still half-trusted
    hidden = _fuse(s, params=fusion.FusionParams(error_model=None))
    assert seen.sigma_px[gap, j].min() > TOL["disagreement_sigma"]
    assert hidden.sigma_px[gap, j].max() < TOL["disagreement_sigma"]
    assert np.linalg.norm(hidden.points[gap, j] - s.truth[gap, j], axis=-1).max() < TOL["occluded_error"]


def _zigzag_flow(s: Scene, j: int, px: float) -> Scene:
    """LK at landmark ``j`` off by ``px`` on every link, alternating, forward and backward alike
    (a silhouette window straddling the static background), with every fourth link lost."""
    fd, fr = s.fwd.displacement.copy(), s.fwd.reliability.copy()
    bd, br = s.bwd.displacement.copy(), s.bwd.reliability.copy()
    sign = np.where(np.arange(len(fd)) % 2 == 0, 1.0, -1.0)[:, None]
    off = sign * np.array([-0.55, 0.83]) * px
    fd[:, j] += off
    bd[1:, j] -= off[:-1]
    lost = np.arange(0, len(fd) - 1, 4)
    fd[lost, j], fr[lost, j] = np.nan, 0.0
    bd[lost + 1, j], br[lost + 1, j] = np.nan, 0.0
    return dataclasses.replace(s, fwd=PointFlow(fd, fr), bwd=PointFlow(bd, br))


def test_flow_wrong_link_after_link_is_trusted_less_and_good_flow_is_not() -> None:
    j = 2
    clean = _scene(seed=7)
    clean_res = _fuse(clean)
    s = _zigzag_flow(clean, j, 4.0)
    res = _fuse(s)
    blind = _fuse(s, params=fusion.FusionParams(link_excess=np.inf))
    err = res.points[:, j] - s.truth[:, j]
    assert _jitter(err) < TOL["zigzag_gain"] * _jitter(blind.points[:, j] - s.truth[:, j])
    assert np.linalg.norm(err, axis=-1).max() < TOL["zigzag_error"]
    # the other landmarks, and a shot whose flow is fine, are fused as before
    others = [k for k in range(N_CONT) if k != j]
    np.testing.assert_allclose(res.points[:, others], blind.points[:, others], atol=1e-9)
    np.testing.assert_allclose(
        clean_res.points, _fuse(clean, params=fusion.FusionParams(link_excess=np.inf)).points, atol=1e-12,
        equal_nan=True,
    )
