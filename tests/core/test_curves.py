"""Bezier sampling, curve distance, rasterising and IoU (seamroto.curves)."""

from __future__ import annotations

import numpy as np
import pytest

from seamroto import curves
from seamroto.errors import ShapeError

KAPPA = 0.5522847498  # 4-point Bezier circle handle / radius
CIRCLE_RADIUS_TOL = 3e-4  # relative radial error of the 4-point Bezier circle
DIST_TOL_PX = 1e-3
AREA_TOL = 0.005
JITTER_TOL = 0.1  # relative


def circle(cx: float, cy: float, r: float) -> np.ndarray:
    """4-point closed Bezier circle, clockwise on screen (y down): right, bottom, left, top."""
    pts = np.array([(cx + r, cy), (cx, cy + r), (cx - r, cy), (cx, cy - r)], dtype=float)
    tangents = np.array([(0, 1), (-1, 0), (0, -1), (1, 0)], dtype=float) * KAPPA * r
    return np.hstack([pts, -tangents, tangents])


def square(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], dtype=float)


def test_sample_bezier_counts_and_knots() -> None:
    pts = circle(50, 50, 20)
    closed = curves.sample_bezier(pts, True, 8)
    assert closed.shape == (32, 2) and closed.dtype == np.float64
    np.testing.assert_allclose(closed[::8], pts[:, :2])
    opened = curves.sample_bezier(pts, False, 8)
    assert opened.shape == (3 * 8 + 1, 2)
    np.testing.assert_allclose(opened[-1], pts[-1, :2])


def test_sample_bezier_zero_handles_is_straight() -> None:
    line = np.array([[0.0, 0.0, 0, 0, 0, 0], [10.0, 20.0, 0, 0, 0, 0]])
    got = curves.sample_bezier(line, False, 8)
    np.testing.assert_allclose(got[:, 1], 2.0 * got[:, 0], atol=1e-12)
    assert np.all(np.diff(got[:, 0]) > 0) and tuple(got[-1]) == (10.0, 20.0)


def test_bezier_circle_radius_golden() -> None:
    poly = curves.sample_bezier(circle(0, 0, 100), True, 64)
    radius = np.linalg.norm(poly, axis=1)
    assert np.max(np.abs(radius - 100.0)) < 100.0 * CIRCLE_RADIUS_TOL


def test_check_points_rejects_bad_shape() -> None:
    with pytest.raises(ShapeError):
        curves.sample_bezier(np.zeros((3,)), True)


def test_curve_distance_concentric_circles() -> None:
    a = curves.sample_bezier(circle(0, 0, 100), True, 64)
    b = curves.sample_bezier(circle(0, 0, 101), True, 64)
    assert curves.curve_distance(a, a, closed=True) == pytest.approx(0.0, abs=1e-9)
    assert curves.curve_distance(a, b, closed=True) == pytest.approx(1.0, abs=DIST_TOL_PX * 50)


def test_curve_distance_independent_of_point_placement() -> None:
    # The same segment sampled differently: vertex-to-vertex errors would differ, this does not.
    a = np.c_[np.linspace(0, 100, 11), np.zeros(11)]
    b = np.c_[np.linspace(0, 100, 37), np.zeros(37)]
    assert curves.curve_distance(a, b) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("closed", [True, False])
def test_point_to_polyline_matches_brute_force(closed: bool) -> None:
    rng = np.random.default_rng(3)
    theta = np.linspace(0, 2 * np.pi, 300, endpoint=False)
    poly = np.c_[np.cos(theta), 0.6 * np.sin(theta)] * 80 + rng.normal(0, 0.3, (300, 2))
    query = poly[::3] + rng.normal(0, 2.0, (100, 2))
    a = poly if closed else poly[:-1]
    b = np.roll(poly, -1, axis=0) if closed else poly[1:]
    ab = b - a
    t = np.clip(((query[:, None] - a) * ab).sum(2) / (ab * ab).sum(1), 0, 1)
    brute = np.linalg.norm(query[:, None] - (a + t[..., None] * ab), axis=2).min(1)
    np.testing.assert_allclose(curves.point_to_polyline(query, poly, closed), brute, atol=1e-9)


def test_rasterise_golden_squares() -> None:
    # A whole-pixel square covers exactly 100 pixels with hard edges.
    m = curves.rasterise(square(10, 10, 20, 20), True, 32, 32)
    assert m.shape == (32, 32) and m.dtype == np.float32
    assert m.sum() == pytest.approx(100.0)
    assert m[10:20, 10:20].min() == 1.0 and m[9, 15] == 0.0 and m[20, 15] == 0.0
    # Shifted by half a pixel: edge pixels are half covered, total area unchanged.
    h = curves.rasterise(square(10.5, 10.5, 20.5, 20.5), True, 32, 32)
    assert h.sum() == pytest.approx(100.0)
    assert h[15, 10] == pytest.approx(0.5) and h[15, 20] == pytest.approx(0.5)
    assert h[10, 10] == pytest.approx(0.25)


def test_rasterise_circle_area() -> None:
    m = curves.rasterise(circle(32, 32, 10), True, 64, 64, ss=8, n_per_segment=64)
    assert m.sum() == pytest.approx(np.pi * 100.0, rel=AREA_TOL)


def test_rasterise_open_shape_is_a_line() -> None:
    line = np.array([[2.0, 8.5], [30.0, 8.5]])
    m = curves.rasterise(line, False, 32, 16)
    assert m[8, 5:28].min() > 0.9 and m[3].max() == 0.0


def test_iou_golden_values() -> None:
    a = curves.rasterise(square(0, 0, 10, 10), True, 30, 30)
    b = curves.rasterise(square(5, 0, 15, 10), True, 30, 30)
    c = curves.rasterise(square(20, 20, 25, 25), True, 30, 30)
    assert curves.iou(a, a) == 1.0
    assert curves.iou(a, b) == pytest.approx(1.0 / 3.0)
    assert curves.iou(a, c) == 0.0
    empty = np.zeros((30, 30), np.float32)
    assert curves.iou(empty, empty) == 1.0
    with pytest.raises(ShapeError):
        curves.iou(a, np.zeros((10, 10)))


def test_shape_iou_equals_full_frame_iou() -> None:
    a, b = circle(400.3, 300.7, 30), circle(405.0, 302.0, 28)
    full = curves.iou(curves.rasterise(a, True, 800, 600), curves.rasterise(b, True, 800, 600))
    assert curves.shape_iou(a, b) == pytest.approx(full, abs=1e-9)


def test_self_intersection() -> None:
    figure_eight = np.array([(0, 0), (10, 10), (10, 0), (0, 10)], dtype=float)
    assert curves.self_intersection(figure_eight, True) is not None
    ring = curves.sample_bezier(circle(0, 0, 10), True, 16)
    assert curves.self_intersection(ring, True) is None
    assert curves.self_intersection(ring[:40], False) is None


def test_signed_area_clockwise_positive() -> None:
    assert curves.signed_area(square(0, 0, 10, 10)) == pytest.approx(100.0)
    assert curves.signed_area(square(0, 0, 10, 10)[::-1]) == pytest.approx(-100.0)


def test_catmull_rom_through_knots_and_straight() -> None:
    knots = np.array([(0, 0), (10, 5), (20, 0), (30, 8)], dtype=float)
    cp = curves.catmull_rom_handles(knots, False)
    assert cp.shape == (4, 6)
    np.testing.assert_allclose(curves.sample_bezier(cp, False, 4)[::4], knots)
    line = curves.catmull_rom_handles(np.c_[np.arange(5.0) * 3, np.arange(5.0)], False)
    poly = curves.sample_bezier(line, False, 8)
    assert np.abs(poly[:, 1] - poly[:, 0] / 3).max() < 1e-9


def test_excess_jitter() -> None:
    t = np.arange(200, dtype=float)
    steady = np.stack([np.c_[t * 2.0, t * -0.5]], axis=1)  # (F, 1, 2), constant velocity
    assert curves.excess_jitter_px(steady) == pytest.approx(0.0, abs=1e-9)
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.5, (2000, 3, 2))
    assert curves.excess_jitter_px(noise) == pytest.approx(np.sqrt(12) * 0.5, rel=JITTER_TOL)
    assert curves.excess_jitter_px(noise[:2]) == 0.0
