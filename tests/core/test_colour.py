"""Colour: golden sRGB encodings, round trips, pass-through, names and errors (built-in config)."""

from __future__ import annotations

import numpy as np
import pytest

from seamroto import colour
from seamroto.colour import (
    LINEAR_SPACE,
    MODEL_SPACE,
    colourspace_for,
    convert,
    describe,
    from_model_space,
    resolve_colourspace,
    to_model_space,
)
from seamroto.errors import ColourError, ShapeError

# Tolerances, one table. OCIO's optimised CPU path uses a fast pow (~1e-5 relative).
TOL_GOLDEN = 1e-4
TOL_ROUND_TRIP_REL = 1e-4


def _srgb_encode(lin: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 reference formula."""
    lin = np.asarray(lin, dtype=np.float64)
    return np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * np.power(lin, 1 / 2.4) - 0.055)


@pytest.mark.parametrize(
    ("linear", "encoded"),
    [(0.0, 0.0), (0.0031308, 0.04045), (0.18, 0.4613546), (0.5, 0.7353570), (1.0, 1.0)],
)
def test_golden_values(linear: float, encoded: float) -> None:
    out = to_model_space(np.full((1, 1, 3), linear, np.float32), LINEAR_SPACE)
    np.testing.assert_allclose(out, encoded, atol=TOL_GOLDEN)


def test_ramp_matches_the_srgb_formula() -> None:
    ramp = np.linspace(0.0, 1.0, 3 * 257, dtype=np.float32).reshape(1, -1, 3)
    np.testing.assert_allclose(to_model_space(ramp, LINEAR_SPACE), _srgb_encode(ramp), atol=TOL_GOLDEN)


def test_round_trip_and_input_untouched() -> None:
    rng = np.random.default_rng(0)
    lin = rng.uniform(0.001, 1.0, (8, 9, 3)).astype(np.float32)
    keep = lin.copy()
    enc = to_model_space(lin, "lin_rec709")
    back = from_model_space(enc, "Linear Rec.709 (sRGB)")
    np.testing.assert_array_equal(lin, keep)
    assert enc.dtype == np.float32 and enc.shape == lin.shape
    np.testing.assert_allclose(back, lin, rtol=TOL_ROUND_TRIP_REL, atol=1e-6)


def test_encoded_plates_pass_through() -> None:
    img = np.random.default_rng(1).uniform(0, 1, (4, 5, 3)).astype(np.float32)
    for name in ("sRGB - Texture", "srgb_tx", MODEL_SPACE):
        out = to_model_space(img, name)
        np.testing.assert_array_equal(out, img)
        assert out is not img


def test_clip_and_nan() -> None:
    img = np.array([[[2.0, -0.1, np.nan]]], np.float32)
    np.testing.assert_array_equal(to_model_space(img, LINEAR_SPACE), [[[1.0, 0.0, 0.0]]])
    raw = to_model_space(np.array([[[2.0, 0.5, 0.5]]], np.float32), LINEAR_SPACE, clip=False)
    assert raw[0, 0, 0] > 1.0


def test_leading_shapes_and_aces() -> None:
    grey = np.full((5, 3), 0.18, np.float32)
    # ACEScg (the built-in scene_linear role) keeps neutrals neutral.
    np.testing.assert_allclose(to_model_space(grey, "scene_linear"), 0.4613546, atol=TOL_GOLDEN)
    assert convert(grey, "ACEScg", "ACEScg").shape == (5, 3)


def test_names_resolve() -> None:
    assert resolve_colourspace("sRGB - Texture") == MODEL_SPACE
    assert resolve_colourspace("srgb_tx") == MODEL_SPACE
    assert resolve_colourspace("lin_srgb") == LINEAR_SPACE
    assert resolve_colourspace("scene_linear") == "ACEScg"


def test_unknown_space_lists_valid_names() -> None:
    with pytest.raises(ColourError) as info:
        to_model_space(np.zeros((1, 1, 3), np.float32), "sRGB texture")
    msg = str(info.value)
    assert "'sRGB texture'" in msg and "'sRGB - Texture'" in msg and LINEAR_SPACE in msg
    with pytest.raises(ColourError, match="built-in"):
        colour.get_config("ocio://no-such-config")


@pytest.mark.parametrize(
    "bad", [np.zeros((2, 2, 4), np.float32), np.zeros((2, 2, 3), np.uint8), np.zeros(3)[..., None]]
)
def test_shape_checked(bad: np.ndarray) -> None:
    with pytest.raises(ShapeError):
        to_model_space(bad, LINEAR_SPACE)


@pytest.mark.parametrize(
    ("path", "space"),
    [
        ("/p/plate.####.exr", LINEAR_SPACE),
        ("/p/PLATE.1001.EXR", LINEAR_SPACE),
        ("a.png", MODEL_SPACE),
        ("a.%04d.jpg", MODEL_SPACE),
        ("a.tif", MODEL_SPACE),
        ("a.dpx", MODEL_SPACE),
    ],
)
def test_colourspace_for(path: str, space: str) -> None:
    assert colourspace_for(path) == space


def test_describe_and_studio_config() -> None:
    info = describe()
    assert info["config"] == "ocio://cg-config-latest"
    assert info["config_name"].startswith("cg-config-")
    assert info["model_space"] == MODEL_SPACE and info["linear_space"] == LINEAR_SPACE
    studio = "ocio://studio-config-latest"
    assert describe(studio)["config_name"].startswith("studio-config-")
    out = to_model_space(np.full((1, 1, 3), 0.18, np.float32), LINEAR_SPACE, config=studio)
    np.testing.assert_allclose(out, 0.4613546, atol=TOL_GOLDEN)


def test_processors_are_cached() -> None:
    img = np.full((2, 2, 3), 0.5, np.float32)
    to_model_space(img, LINEAR_SPACE)
    hits = colour._processor.cache_info().hits
    to_model_space(img, LINEAR_SPACE)
    assert colour._processor.cache_info().hits == hits + 1
