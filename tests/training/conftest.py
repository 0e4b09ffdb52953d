"""Tiny synthetic faces for training tests: an ellipse with dark dots at known sub-pixel spots."""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np
import pytest

from seamroto.datamodel import LandmarkSample, LandmarkTrack
from training.dataset import InMemoryShot

BLOB_NAMES = ("eye_l", "eye_r", "nose", "mouth_l", "mouth_r", "chin")
TEMPLATE = np.array(
    [[-0.35, -0.2], [0.35, -0.2], [0.0, 0.1], [-0.25, 0.4], [0.25, 0.4], [0.0, 0.75]]
)
SHIFT = 4  # cv2 sub-pixel drawing: 1/16 px


def blob_shot(
    seed: int,
    frames: int = 6,
    width: int = 320,
    height: int = 240,
    first: int = 1001,
    missing: Sequence[tuple[int, str]] = (),
) -> InMemoryShot:
    """A shot of a moving blob face; ``missing`` drops (frame, landmark) samples."""
    rng = np.random.default_rng(seed)
    images = {}
    pts_by_frame = {}
    yy, xx = np.mgrid[0:height, 0:width]
    bg = (0.15 + 0.1 * np.sin(xx / 17.0 + seed) * np.cos(yy / 23.0))[..., None] * np.array([0.8, 1.0, 1.2])
    for i in range(frames):
        f = first + i
        cx = width / 2 + rng.uniform(-0.12, 0.12) * width
        cy = height / 2 + rng.uniform(-0.1, 0.1) * height
        r = min(width, height) * rng.uniform(0.25, 0.32)
        a = math.radians(rng.uniform(-12, 12))
        rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        pts = TEMPLATE @ rot.T * r + (cx, cy)
        img = bg.astype(np.float32).copy()
        centre = (int(round(cx * 16)), int(round((cy + 0.2 * r) * 16)))
        axes = (int(round(0.7 * r * 16)), int(round(1.05 * r * 16)))
        cv2.ellipse(img, centre, axes, math.degrees(a), 0, 360, (0.55, 0.4, 0.3), -1, cv2.LINE_AA, SHIFT)
        for p in pts:
            # pixel centres at +0.5: cv2 draws in index space, so shift by -0.5
            c = (int(round((p[0] - 0.5) * 16)), int(round((p[1] - 0.5) * 16)))
            cv2.circle(img, c, int(round(0.06 * r * 16)), (0.05, 0.03, 0.02), -1, cv2.LINE_AA, SHIFT)
        images[f] = img
        pts_by_frame[f] = pts
    drop = set(missing)
    tracks = []
    for j, name in enumerate(BLOB_NAMES):
        samples = {
            f: LandmarkSample(float(p[j, 0]), float(p[j, 1]))
            for f, p in pts_by_frame.items()
            if (f, name) not in drop
        }
        tracks.append(LandmarkTrack(name, samples))
    return InMemoryShot(f"blob{seed}", tuple(tracks), images)


@pytest.fixture()
def blob_shots() -> list[InMemoryShot]:
    return [blob_shot(1), blob_shot(2, missing=[(1002, "chin"), (1003, "nose")])]
