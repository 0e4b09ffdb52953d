"""LK with forward-backward check, aperture matrices, landmark flow and dense DIS flow."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from seamroto import flow
from seamroto.errors import ShapeError

# Tolerances, in px unless named otherwise.
TOL = {
    "lk_subpixel": 0.1,
    "lk_flicker": 0.15,
    "dense_median": 0.3,
    "edge_weak_eigen": 0.1,
}
SIZE = (240, 320)  # (H, W)


def _texture(seed: int = 0, size=SIZE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random(size).astype(np.float32), (0, 0), 2.5)
    return (img - img.min()) / (img.max() - img.min())


def _shift(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(
        img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
    )


def _points(n: int = 12, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(60, 260, n), rng.uniform(50, 190, n)])


def test_to_gray_u8_layouts() -> None:
    rgb = np.full((4, 5, 3), 0.5, np.float32)
    g = flow.to_gray_u8(rgb)
    assert g.shape == (4, 5) and g.dtype == np.uint8 and int(g[0, 0]) == 128
    assert flow.to_gray_u8(g) is g
    assert flow.to_gray_u8(np.zeros((4, 5, 4), np.float32)).shape == (4, 5)
    with pytest.raises(ShapeError):
        flow.to_gray_u8(np.zeros((4, 5, 2, 1)))


def test_track_points_recovers_subpixel_shift_in_img_coordinates() -> None:
    a = _texture()
    b = _shift(a, 2.3, -1.6)
    pts = _points()
    out = flow.track_points(a, b, pts)
    assert out.points.shape == pts.shape
    np.testing.assert_allclose(out.points - pts, np.tile([2.3, -1.6], (len(pts), 1)), atol=TOL["lk_subpixel"])
    assert (out.reliability > 0.9).all()


def test_track_points_survives_a_flicker() -> None:
    a = _texture()
    b = np.clip(_shift(a, 1.0, 1.0) * 1.2, 0, 1)  # 20 % brighter next frame
    out = flow.track_points(a, b, _points())
    ok = out.reliability > 0
    assert ok.mean() > 0.8
    np.testing.assert_allclose(out.points[ok] - _points()[ok], 1.0, atol=TOL["lk_flicker"])


def test_forward_backward_check_rejects_an_occluded_point() -> None:
    a = _texture()
    b = _shift(a, 2.0, 0.0)
    pts = _points()
    x, y = (pts[0] + [2.0, 0.0]).astype(int)
    b[y - 25 : y + 25, x - 25 : x + 25] = _texture(seed=9)[:50, :50]  # something else covers it
    out = flow.track_points(a, b, pts)
    assert out.reliability[0] == 0.0 and np.isnan(out.points[0]).all()
    far = np.abs(pts - pts[0]).max(axis=1) > 25 + flow.LK_WINDOW_PX  # windows clear of it
    assert (out.reliability[far] > 0.5).all()


def test_track_points_passes_nan_through() -> None:
    pts = _points(4)
    pts[2] = np.nan
    out = flow.track_points(_texture(), _shift(_texture(), 1, 1), pts)
    assert np.isnan(out.points[2]).all() and out.reliability[2] == 0.0
    with pytest.raises(ShapeError):
        flow.track_points(_texture(), _texture(), np.zeros((3, 3)))
    with pytest.raises(ShapeError):
        flow.track_points(_texture(), _texture(size=(100, 100)), pts)


def test_aperture_of_an_edge_is_weak_along_it() -> None:
    img = np.zeros(SIZE, np.float32)
    img[:, 160:] = 1.0  # a vertical edge: x is constrained, y is not
    img = cv2.GaussianBlur(img, (0, 0), 1.5)
    ap = flow.aperture_matrices(img * 255, np.array([[160.0, 120.0], [40.0, 40.0], [np.nan, 1.0]]))
    vals, vecs = np.linalg.eigh(ap[0])
    assert vals[1] == pytest.approx(1.0) and vals[0] < TOL["edge_weak_eigen"]
    assert abs(vecs[0, 1]) > 0.99  # strongest direction is x
    assert (ap[1] == 0).all() and (ap[2] == 0).all()  # flat window, NaN point


def test_landmark_flow_shapes_directions_and_skip() -> None:
    base = _texture()
    moves = [(0, 0), (1.5, 0.5), (3.0, 1.0), (3.5, 2.5)]
    frames = [_shift(base, dx, dy) for dx, dy in moves]
    pts0 = _points(6)
    pts = np.stack([pts0 + m for m in moves])
    skip = np.zeros(6, dtype=bool)
    skip[5] = True
    fwd, bwd = flow.landmark_flow(frames, pts, skip=skip)
    assert fwd.displacement.shape == (4, 6, 2) and fwd.reliability.shape == (4, 6)
    assert fwd.aperture is not None and fwd.aperture.shape == (4, 6, 2, 2)
    true = np.diff(np.array(moves, float), axis=0)
    np.testing.assert_allclose(fwd.displacement[:-1, :5], np.repeat(true[:, None], 5, 1), atol=TOL["lk_subpixel"])
    np.testing.assert_allclose(bwd.displacement[1:, :5], -np.repeat(true[:, None], 5, 1), atol=TOL["lk_subpixel"])
    assert np.isnan(fwd.displacement[-1]).all() and np.isnan(bwd.displacement[0]).all()
    assert (fwd.reliability[:, 5] == 0).all() and np.isnan(fwd.displacement[:, 5]).all()
    with pytest.raises(ShapeError):
        flow.landmark_flow(frames, pts[:3])


@pytest.mark.parametrize("preset", ["ultrafast", "fast"])
def test_dense_flow_full_resolution_pixels(preset: str) -> None:
    a = _texture(3)
    b = _shift(a, 3.0, -2.0)
    f = flow.dense_flow(a, b, scale=0.5, preset=preset)
    assert f.shape == SIZE + (2,) and f.dtype == np.float32
    inner = f[40:-40, 40:-40].reshape(-1, 2)
    np.testing.assert_allclose(np.median(inner, axis=0), [3.0, -2.0], atol=TOL["dense_median"])


def test_dense_flow_rejects_bad_arguments() -> None:
    a = _texture()
    with pytest.raises(ValueError, match="preset"):
        flow.dense_flow(a, a, preset="slow")
    with pytest.raises(ValueError, match="scale"):
        flow.dense_flow(a, a, scale=0.0)
    assert flow.dense_flow(a, a, scale=1.0).shape == SIZE + (2,)
