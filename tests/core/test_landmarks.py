"""Crop geometry and batched inference of seamroto.landmarks, with a tiny hand-built IR model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from seamroto import models
from seamroto.errors import ShapeError
from seamroto.landmarks import (
    blend_refined,
    box_from_points,
    compose_affine,
    crop_matrix,
    infer_crops,
    invert_affine,
    map_points,
    patch_matrices,
    patch_matrix,
    predict_landmarks,
    reduce_region,
    reduction_factor,
    warp_crop,
    warp_patches,
)

# Tolerances (px), in one place.
AFFINE_TOL = 1e-9
# cv2.warpAffine quantises sample positions to 1/32 px of the (reduced) source: the blob
# centroid can move by up to 1/64 px there, i.e. factor/64 frame px.
WARP_QUANT = 1.0 / 64.0
CENTROID_TOL = 0.01
SIZE = 64
SCALE = 1.4


def blob_image(h: int, w: int, centres: list[tuple[float, float]], sigma: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w] + 0.5  # pixel centres, corner origin
    img = np.zeros((h, w), np.float64)
    for cx, cy in centres:
        img += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    return np.repeat(img.astype(np.float32)[:, :, None], 3, axis=2)


def centroid(crop: np.ndarray) -> np.ndarray:
    c = crop[:, :, 0].astype(np.float64)
    yy, xx = np.mgrid[0 : c.shape[0], 0 : c.shape[1]] + 0.5
    return np.array([(c * xx).sum(), (c * yy).sum()]) / c.sum()


def test_crop_matrix_centres_box_and_scales_side() -> None:
    m = crop_matrix((100.0, 50.0, 200.0, 100.0), SIZE, SCALE)
    np.testing.assert_allclose(map_points([SIZE / 2, SIZE / 2], m), [200.0, 100.0], atol=AFFINE_TOL)
    corners = map_points(np.array([[0, 0], [SIZE, SIZE]], float), m)
    np.testing.assert_allclose(corners[1] - corners[0], [280.0, 280.0], atol=AFFINE_TOL)


def test_affine_round_trip_is_exact() -> None:
    rng = np.random.default_rng(0)
    m = np.array([[1.3, 0.2, 5.0], [-0.1, 0.9, -3.0]])
    p = rng.uniform(-100, 100, (20, 2))
    np.testing.assert_allclose(map_points(map_points(p, m), invert_affine(m)), p, atol=AFFINE_TOL)
    np.testing.assert_allclose(compose_affine(m, invert_affine(m)), np.eye(2, 3), atol=AFFINE_TOL)


def test_box_from_points_ignores_unknown() -> None:
    p = np.array([[10.0, 20.0], [np.nan, np.nan], [30.0, 25.0]])
    np.testing.assert_allclose(box_from_points(p), [10.0, 20.0, 20.0, 5.0])


def test_reduce_region_is_an_exact_box_average_in_corner_coordinates() -> None:
    h, w = 40, 60
    xx = np.broadcast_to((np.arange(w) + 0.5)[None, :, None], (h, w, 3)).astype(np.float32)
    red, to_img = reduce_region(xx, (5.0, 7.0, 50.0, 33.0), 4)
    # Snapped to the factor grid at the frame origin.
    assert to_img[0, 2] == 4 and to_img[1, 2] == 4
    centres = map_points(np.stack([np.arange(red.shape[1]) + 0.5, np.zeros(red.shape[1])], 1), to_img)
    np.testing.assert_allclose(red[0, :, 0], centres[:, 0], atol=1e-4)


@pytest.mark.parametrize("frame_px_per_crop_px", [1.0, 1.7, 2.0, 3.3, 4.0, 4.8])
def test_crop_round_trip_keeps_a_subpixel_blob_in_place(frame_px_per_crop_px: float) -> None:
    true = (400.3, 260.7)
    img = blob_image(540, 800, [true], sigma=3.0 * frame_px_per_crop_px)
    side = SIZE * frame_px_per_crop_px
    box = (true[0] - side / SCALE / 2 + 2.2, true[1] - side / SCALE / 2 - 1.3, side / SCALE, side / SCALE)
    m = crop_matrix(box, SIZE, SCALE)
    crop = warp_crop(img, m, SIZE)
    back = map_points(centroid(crop), m)
    tol = reduction_factor(m) * WARP_QUANT + CENTROID_TOL
    np.testing.assert_allclose(back, true, atol=tol)


def test_crop_outside_the_frame_is_black() -> None:
    img = np.ones((50, 50, 3), np.float32)
    crop = warp_crop(img, crop_matrix((500.0, 500.0, 40.0, 40.0), SIZE, SCALE), SIZE)
    assert crop.shape == (SIZE, SIZE, 3) and not crop.any()


# --- a tiny model: points = intensity centroid of the crop, for L landmarks -------------------

NUM_L = 2


def write_centroid_model(folder: Path, size: int = SIZE) -> Path:
    """An IR whose landmarks are the crop's intensity centroid (channel 0), with a valid card."""
    folder.mkdir(parents=True, exist_ok=True)
    x = ops.parameter(ov.PartialShape([-1, 3, size, size]), np.float32, name="input")
    ch = ops.slice(x, np.array([0]), np.array([1]), np.array([1]), np.array([1]))
    flat = ops.reshape(ch, np.array([0, 1, size * size], np.int64), special_zero=True)
    total = ops.reduce_sum(flat, np.array([2]), keep_dims=True)
    prob = ops.divide(flat, total)
    grid = (np.arange(size, dtype=np.float32) + 0.5)
    gx = np.tile(grid, size).reshape(1, 1, -1)
    gy = np.repeat(grid, size).reshape(1, 1, -1)
    px = ops.reduce_sum(ops.multiply(prob, gx), np.array([2]), keep_dims=True)
    py = ops.reduce_sum(ops.multiply(prob, gy), np.array([2]), keep_dims=True)
    xy = ops.concat([px, py], 2)  # (N, 1, 2)
    points = ops.concat([xy] * NUM_L, 1)
    conf = ops.reduce_sum(ops.multiply(prob, np.zeros((1, 1, 1), np.float32) + 1.0), np.array([2]))
    conf = ops.concat([conf] * NUM_L, 1)
    model = ov.Model([points, conf], [x], "centroid")
    ov.save_model(model, str(folder / "model.xml"), compress_to_fp16=False)
    files = {n: models.file_sha256(folder / n) for n in ("model.xml", "model.bin")}
    card = {
        "schema": models.CARD_SCHEMA, "character": "blob", "version": folder.name,
        "landmarks": [f"p{i}" for i in range(NUM_L)], "input_size": size, "colour_space": "any",
        "normalisation": {}, "crop": {"scale": SCALE}, "training_data_sha256": "0" * 64,
        "files": files, "metrics": {}, "lineage": {}, "created": "2026-01-01T00:00:00+00:00",
        "seamroto_version": "test", "precision": "fp32",
    }
    (folder / "card.json").write_text(json.dumps(card))
    return folder


@pytest.fixture()
def centroid_model(tmp_path: Path) -> models.LandmarkModel:
    return models.load_model(write_centroid_model(tmp_path / "blob" / "v001"))


def test_predict_landmarks_maps_back_to_frame_pixels(centroid_model: models.LandmarkModel) -> None:
    centres = [(150.25, 120.75), (420.6, 300.1)]
    img = blob_image(400, 600, centres, sigma=6.0)
    boxes = np.array([[c[0] - 40 + 3.0, c[1] - 35 - 2.0, 80.0, 70.0] for c in centres])
    pts, conf = predict_landmarks(centroid_model, img, boxes)
    assert pts.shape == (2, NUM_L, 2) and conf.shape == (2, NUM_L)
    assert pts.dtype == np.float64 and conf.dtype == np.float32
    tol = max(reduction_factor(crop_matrix(b, SIZE, SCALE)) for b in boxes) * WARP_QUANT + CENTROID_TOL
    np.testing.assert_allclose(pts[:, 0], centres, atol=tol)
    np.testing.assert_allclose(conf, 1.0, atol=1e-5)


def test_batching_gives_the_same_result_as_one_by_one(centroid_model: models.LandmarkModel) -> None:
    rng = np.random.default_rng(3)
    crops = rng.uniform(0, 1, (11, SIZE, SIZE, 3)).astype(np.float32)
    all_at_once, _ = infer_crops(centroid_model, crops, batch_size=4)
    singles = np.concatenate([infer_crops(centroid_model, crops[i : i + 1], batch_size=1)[0] for i in range(11)])
    np.testing.assert_allclose(all_at_once, singles, atol=1e-5)
    empty, _ = infer_crops(centroid_model, crops[:0])
    assert empty.shape == (0, NUM_L, 2)


def test_refinement_pass_runs_and_colour_convert_is_applied(centroid_model: models.LandmarkModel) -> None:
    img = blob_image(300, 300, [(150.0, 140.0)], sigma=5.0)
    calls = []

    def convert(crop: np.ndarray) -> np.ndarray:
        calls.append(crop.shape)
        return crop

    pts, _ = predict_landmarks(centroid_model, img, [[120.0, 110.0, 60.0, 60.0]], convert=convert, refine=1)
    assert len(calls) == 2
    np.testing.assert_allclose(pts[0, 0], (150.0, 140.0), atol=0.05)


def test_predict_landmarks_checks_shapes(centroid_model: models.LandmarkModel) -> None:
    with pytest.raises(ShapeError):
        predict_landmarks(centroid_model, np.zeros((10, 10), np.float32), [[0, 0, 5, 5]])
    with pytest.raises(ShapeError):
        predict_landmarks(centroid_model, np.zeros((10, 10, 3), np.float32), [[0, 0, 5]])


def test_blend_gains_act_in_face_crop_axes() -> None:
    first = np.array([[[10.0, 10.0], [20.0, 5.0]]])
    refined = first + np.array([[[1.0, 2.0], [-1.0, 0.5]]])
    ang = np.deg2rad(30.0)
    rot = 3.0 * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    mats = np.concatenate([rot, np.zeros((2, 1))], axis=1)[None]
    np.testing.assert_allclose(blend_refined(first, refined, mats, None), refined)
    ident = [((1.0, 0.0), (0.0, 1.0))] * 2
    np.testing.assert_allclose(blend_refined(first, refined, mats, ident), refined, atol=AFFINE_TOL)
    zero = [((0.0, 0.0), (0.0, 0.0))] * 2
    np.testing.assert_allclose(blend_refined(first, refined, mats, zero), first, atol=AFFINE_TOL)
    # Keep only the crop-x component: the result moves along the rotated crop x axis.
    only_x = [((1.0, 0.0), (0.0, 0.0))] * 2
    d = blend_refined(first, refined, mats, only_x) - first
    axis = rot[:, 0] / np.linalg.norm(rot[:, 0])
    np.testing.assert_allclose(d[0, :, 0] * axis[1] - d[0, :, 1] * axis[0], 0.0, atol=1e-9)


def test_patch_matrix_is_centred_and_scaled_like_the_face_crop() -> None:
    m = crop_matrix((100.0, 100.0, 200.0, 200.0), SIZE, SCALE)
    pm = patch_matrix(m, np.array([150.0, 160.0]), SIZE, 16, 0.25)
    np.testing.assert_allclose(map_points([8.0, 8.0], pm), [150.0, 160.0], atol=AFFINE_TOL)
    np.testing.assert_allclose(pm[:, :2], m[:, :2] * (SIZE * 0.25 / 16), atol=AFFINE_TOL)


def test_warp_patches_equals_warp_crop_per_patch() -> None:
    rng = np.random.default_rng(5)
    img = rng.uniform(0, 1, (200, 300, 3)).astype(np.float32)
    m = crop_matrix((100.0, 40.0, 110.0, 120.0), SIZE, SCALE)
    pts = rng.uniform([110, 50], [200, 150], (6, 2))
    pm = patch_matrices(m[None], pts[None], SIZE, 16, 0.2)
    many = warp_patches(img, pm, 16)
    for k, one in enumerate(pm):
        np.testing.assert_allclose(many[k], warp_crop(img, one, 16), atol=0.05)
    assert np.abs(many - np.stack([warp_crop(img, one, 16) for one in pm])).mean() < 1e-4
