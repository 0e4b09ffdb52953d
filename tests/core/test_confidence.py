"""Landmark error model: features, sigma, probability within tolerance, and its calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seamroto import confidence
from seamroto.errors import ShapeError

# Tolerances, named.
TOL = {
    "probability": 1e-9,
    "fit_relative": 0.15,  # fitted gain vs the one the errors were drawn with
}


def test_features_shape_order_and_missing_points() -> None:
    post = np.array([[0.5, np.inf]])
    feats = confidence.error_features(post, np.array([[2.0, np.nan]]), np.array([[0.5, 0.0]]))
    assert feats.shape == (1, 2, len(confidence.FEATURES))
    np.testing.assert_allclose(feats[0, 0], [0.25, 4.0, 4.0, 0.0, 1.0, 0.0])
    assert np.isnan(feats[0, 1]).all()  # no data: no features
    with pytest.raises(ShapeError):
        confidence.error_features(post, np.zeros((2, 2)), np.ones((1, 2)))


def test_sigma_grows_with_every_kind_of_evidence_and_is_inf_without_data() -> None:
    model = confidence.ErrorModel(posterior_gain=1.0, residual_gain=0.5, detector_px=0.2, spread_gain=1.0, floor_px=0.1)
    base = confidence.error_features(np.array([[0.2]]), np.array([[0.0]]), np.array([[1.0]]), np.array([[0.0]]))
    s0 = confidence.error_sigma(base, model)[0, 0]
    for k in range(4):
        more = base.copy()
        more[..., k] += 4.0
        assert confidence.error_sigma(more, model)[0, 0] > s0
    nan = np.full_like(base, np.nan)
    assert confidence.error_sigma(nan, model)[0, 0] == np.inf


def test_low_detector_confidence_means_lower_probability_within_tolerance() -> None:
    feats = confidence.error_features(np.full((1, 2), 0.2), np.zeros((1, 2)), np.array([[0.9, 0.05]]))
    c = confidence.within_probability(confidence.error_sigma(feats), 3.0)
    assert c[0, 0] > c[0, 1]


def test_within_probability_golden_values() -> None:
    half = 3.0 / math.sqrt(2 * math.log(2))  # per-axis sigma with median |e| = 3
    c = confidence.within_probability(np.array([1e-3, half, np.inf]), 3.0)
    np.testing.assert_allclose(c, [1.0, 0.5, 0.0], atol=TOL["probability"])


def test_vector_round_trip() -> None:
    m = confidence.ErrorModel(1.5, 0.25, 0.3, 0.7, 0.05)
    back = confidence.ErrorModel.from_vector(m.as_vector())
    for a, b in zip(back.as_vector(), m.as_vector()):
        assert a == pytest.approx(b)


def test_calibration_recovers_the_gains_errors_were_drawn_with() -> None:
    rng = np.random.default_rng(4)
    n = 6000
    truth = confidence.ErrorModel(posterior_gain=2.0, residual_gain=0.4, detector_px=0.3)
    feats = confidence.error_features(
        rng.uniform(0.05, 1.0, n), rng.uniform(0.0, 3.0, n), rng.uniform(0.1, 1.0, n)
    )
    sigma = confidence.error_sigma(feats, truth)
    err = np.linalg.norm(rng.normal(0.0, 1.0, (n, 2)) * sigma[:, None], axis=1)
    fitted, nll = confidence.calibrate_error_model(feats, err, use=("posterior", "residual", "detector"))
    assert math.isfinite(nll)
    assert fitted.spread_gain == 0.0 and fitted.floor_px == 0.0
    for name in ("posterior_gain", "residual_gain", "detector_px"):
        assert getattr(fitted, name) == pytest.approx(getattr(truth, name), rel=TOL["fit_relative"])


def test_calibration_refuses_too_little_data() -> None:
    feats = confidence.error_features(np.ones(3), np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="at least 10"):
        confidence.calibrate_error_model(feats, np.ones(3))
    with pytest.raises(ShapeError):
        confidence.calibrate_error_model(feats, np.ones(4))


def test_calibration_can_hold_a_gain_fixed() -> None:
    rng = np.random.default_rng(7)
    n = 3000
    truth = confidence.ErrorModel(posterior_gain=1.0, residual_gain=0.3, detector_px=0.2)
    feats = confidence.error_features(rng.uniform(0.05, 1.0, n), rng.uniform(0.0, 3.0, n), rng.uniform(0.1, 1.0, n))
    err = np.linalg.norm(rng.normal(0.0, 1.0, (n, 2)) * confidence.error_sigma(feats, truth)[:, None], axis=1)
    fitted, _ = confidence.calibrate_error_model(
        feats, err, use=("residual", "detector"), fixed={"posterior": 1.0}
    )
    assert fitted.posterior_gain == 1.0
    assert fitted.residual_gain == pytest.approx(0.3, rel=TOL["fit_relative"])
    with pytest.raises(ValueError, match="unknown"):
        confidence.calibrate_error_model(feats, err, fixed={"posterior_px": 1.0})
