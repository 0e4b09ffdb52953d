"""Augmentations: identity when off, deterministic per rng, and the face survives a background swap."""

from __future__ import annotations

import numpy as np

from training.augment import (
    AugmentConfig,
    apply_camera,
    jitter_box,
    sample_geometry,
    swap_background,
)

SIZE = 64


def test_off_config_is_the_identity() -> None:
    rng = np.random.default_rng(0)
    cfg = AugmentConfig.off()
    np.testing.assert_allclose(sample_geometry(rng, SIZE, cfg), np.eye(2, 3))
    np.testing.assert_allclose(jitter_box(np.array([1.0, 2.0, 3.0, 4.0]), rng, cfg.box_jitter), [1, 2, 3, 4])
    crop = rng.uniform(0, 1, (SIZE, SIZE, 3)).astype(np.float32)
    np.testing.assert_allclose(apply_camera(crop, rng, cfg), crop)


def test_geometry_keeps_the_centre_fixed_without_translation() -> None:
    cfg = AugmentConfig(translate=0.0)
    for seed in range(5):
        m = sample_geometry(np.random.default_rng(seed), SIZE, cfg)
        np.testing.assert_allclose(m[:, :2] @ [SIZE / 2, SIZE / 2] + m[:, 2], [SIZE / 2, SIZE / 2], atol=1e-9)


def test_same_rng_same_augmentation() -> None:
    crop = np.full((SIZE, SIZE, 3), 0.5, np.float32)
    a = apply_camera(crop.copy(), np.random.default_rng(7), AugmentConfig(p_blur=1.0, p_noise=1.0))
    b = apply_camera(crop.copy(), np.random.default_rng(7), AugmentConfig(p_blur=1.0, p_noise=1.0))
    np.testing.assert_array_equal(a, b)


def test_background_swap_follows_the_outline_and_keeps_the_face() -> None:
    crop = np.full((SIZE, SIZE, 3), 0.3, np.float32)
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    outline = np.stack([32 + 20 * np.cos(t), 32 + 20 * np.sin(t)], axis=1)
    out = swap_background(crop.copy(), outline[::6], np.random.default_rng(1), AugmentConfig(p_background=1.0),
                          outline)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    r = np.hypot(xx - 32, yy - 32)
    np.testing.assert_allclose(out[r < 17], 0.3, atol=1e-4)
    assert np.abs(out[r > 24] - 0.3).mean() > 0.01
