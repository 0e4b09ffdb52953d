"""Re-vectorisation of artists' shapes to a stable parametrisation (seamroto.revec).

Uses the LAIKA / Intel "Sir Lionel" roto ground truth (JSON (c) Intel Corporation, CC BY 4.0,
data set of Bermudez et al., WACV 2021, github.com/LaikaStudios/WACV_dataset_sir_lionel),
read from ../shared/reference/laika_sir_lionel/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest

from seamroto import curves, revec
from seamroto.errors import AnnotationError, ShapeError
from seamroto.laika import laika_frame_shapes, load_laika

# Measured on all 52 LAIKA frames (mean fit error per shape 0.01-0.13 px, worst key 0.32 px).
FIT_MEAN_TOL_PX = 0.2
FIT_WORST_KEY_TOL_PX = 0.5
SAME_CURVE_TOL_PX = 0.05
ANCHOR_TOL_PX = 1e-6


@pytest.fixture(scope="module")
def laika_keys(laika_dir: Path) -> Dict[str, Tuple[bool, List[np.ndarray]]]:
    """Shape name -> (closed, every frame's artist key) over the three LAIKA shots."""
    out: Dict[str, Tuple[bool, List[np.ndarray]]] = {}
    for ann in load_laika(laika_dir):
        for frame, shapes in laika_frame_shapes(ann).items():
            for name, shape in shapes.items():
                out.setdefault(name, (shape.closed, []))[1].append(shape.points_array(frame))
    return out


def test_laika_point_counts_vary(laika_keys: Dict[str, Tuple[bool, List[np.ndarray]]]) -> None:
    # The premise: real roto changes point count between shots.
    counts = {len(k) for k in laika_keys["left_eyebrow"][1]}
    assert len(counts) > 1


def test_stable_counts_and_fit_error(laika_keys: Dict[str, Tuple[bool, List[np.ndarray]]]) -> None:
    for name, (closed, keys) in laika_keys.items():
        plan = revec.plan_shape(keys, closed)
        assert plan.k >= (revec.MIN_POINTS_CLOSED if closed else revec.MIN_POINTS_OPEN)
        out = revec.revectorise_many(keys, [plan] * len(keys))
        assert {r.points.shape for r in out} == {(plan.k, 8)}, name
        errors = np.array([r.fit_error_px for r in out])
        assert errors.mean() <= FIT_MEAN_TOL_PX, (name, errors.mean())
        assert errors.max() <= FIT_WORST_KEY_TOL_PX, (name, errors.max())


def test_start_and_direction_do_not_matter(
    laika_keys: Dict[str, Tuple[bool, List[np.ndarray]]],
) -> None:
    closed, keys = laika_keys["left_eye"]
    plan = revec.plan_shape(keys, closed)
    key = keys[0]
    base = revec.revectorise(key, plan).points
    for variant in (np.roll(key, 3, axis=0), revec.reverse_points(key, True)):
        np.testing.assert_allclose(revec.revectorise(variant, plan).points, base, atol=SAME_CURVE_TOL_PX)


def test_orientation_normalised(laika_keys: Dict[str, Tuple[bool, List[np.ndarray]]]) -> None:
    closed, keys = laika_keys["right_sideburn"]
    areas = {np.sign(curves.signed_area(curves.sample_bezier(k, True, 8))) for k in keys}
    assert areas == {-1.0, 1.0}  # the artists drew it both ways round
    plan = revec.plan_shape(keys, closed)
    for k in keys:
        poly = curves.sample_bezier(revec.revectorise(k, plan, measure=False).points, True, 8)
        assert curves.signed_area(poly) > 0  # clockwise on screen


def test_anchored_plan_puts_knots_on_anchors() -> None:
    theta = np.linspace(0, 2 * np.pi, 7, endpoint=False)
    ring = np.c_[60 * np.cos(theta), 30 * np.sin(theta)] + 100
    key = curves.catmull_rom_handles(ring, True)
    anchors = ring[[0, 2, 4]]
    base = revec.plan_shape([key], True, 6)
    plan = revec.plan_anchored(base, [key], [anchors])
    assert plan.anchored and plan.k == 6 and sum(plan.gaps) == 6
    out = revec.revectorise(key, plan, anchors=anchors).points
    starts = np.cumsum((0,) + plan.gaps[:-1])
    np.testing.assert_allclose(out[starts, :2], anchors, atol=ANCHOR_TOL_PX)
    with pytest.raises(ShapeError):
        revec.revectorise(key, plan, anchors=anchors[:2])


def test_open_curve_keeps_its_ends() -> None:
    knots = np.array([(0, 0), (10, 4), (25, 5), (40, 0)], dtype=float)
    key = curves.catmull_rom_handles(knots, False)
    plan = revec.plan_shape([key], False, 3)
    out = revec.revectorise(key, plan)
    np.testing.assert_allclose(out.points[[0, -1], :2], knots[[0, -1]], atol=1e-9)
    assert out.fit_error_px < FIT_MEAN_TOL_PX


def test_feather_offsets_carried_over() -> None:
    theta = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    ring = np.c_[50 * np.cos(theta), 50 * np.sin(theta)]
    key = np.zeros((6, 8))
    key[:, :6] = curves.catmull_rom_handles(ring, True)
    key[:, 6:8] = (2.0, -1.0)
    plan = revec.plan_shape([key], True, 4)
    np.testing.assert_allclose(revec.revectorise(key, plan).points[:, 6:8], [[2.0, -1.0]] * 4)


def test_choose_k() -> None:
    assert revec.choose_k([8, 12, 9], True) == 9
    assert revec.choose_k([2, 3], True) == revec.MIN_POINTS_CLOSED
    assert revec.choose_k([2, 2, 2], False) == 2


def test_one_point_shape_is_rejected() -> None:
    with pytest.raises(AnnotationError) as err:
        revec.validate_shape(np.array([[1.0, 2.0]]), True, name="left_eye", frame=1007)
    assert "left_eye" in str(err.value) and err.value.frame == 1007


def test_self_intersecting_shape_is_rejected() -> None:
    figure_eight = np.array([(0, 0), (10, 10), (10, 2), (0, 9)], dtype=float)
    with pytest.raises(AnnotationError, match="crosses itself") as err:
        revec.validate_shape(figure_eight, True, name="mouth", frame=12, path="shot.json")
    assert "mouth" in str(err.value) and err.value.frame == 12 and err.value.path == "shot.json"


def test_degenerate_shapes_are_rejected() -> None:
    with pytest.raises(AnnotationError, match="one place"):
        revec.validate_shape(np.zeros((4, 2)), True, name="eye")
    with pytest.raises(AnnotationError, match="NaN"):
        revec.validate_shape(np.array([(0, 0), (np.nan, 1), (2, 0)]), True, name="eye")
    with pytest.raises(AnnotationError, match="no area"):
        revec.validate_shape(np.array([(0, 0), (5, 5), (10, 10)], dtype=float), True, name="eye")
