"""A rig shape's face frame: the per-frame map that removes head motion from its landmarks.

Each frame's landmarks are mapped (similarity or affine, ``FRAME_KINDS``) onto their Procrustes
mean, so what the regression sees is expression, not where the head is. Keys (rows of
``POINT_COLS`` columns) go into and out of that frame with ``_Frames``. Everything is ``_img``
space (origin top-left, y down).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from seamroto import revec
from seamroto.errors import ModelError

#: Columns of one control point: x, y, left handle, right handle, feather offset.
POINT_COLS = 8
PROCRUSTES_ITERATIONS = 5
#: A frame's landmarks spanning less than this (px, RMS radius) cannot define a face frame.
MIN_LANDMARK_SPREAD_PX = 1e-6
#: An affine face frame needs landmarks whose minor spread is at least this fraction of their
#: major spread; thinner sets (a seam's landmarks on a line) fall back to a similarity.
AFFINE_MIN_ASPECT = 0.15
#: How landmarks are normalised per frame: similarity (4 dof) or affine (6 dof, also removes
#: the foreshortening of a turning head).
FRAME_KINDS = ("similarity", "affine")


@dataclass(frozen=True, eq=False)
class _Frames:
    """Per-frame maps from _img into a shape's face frame: ``face = lin @ img + off``.

    ``lin``: (F, 2, 2); ``off``: (F, 2). Positions take the whole map, relative handles and
    feather offsets only ``lin``.
    """

    lin: np.ndarray
    off: np.ndarray

    def take(self, sel: np.ndarray) -> _Frames:
        """The frames selected by a boolean mask or index array."""
        return _Frames(self.lin[sel], self.off[sel])

    def points(self, xy: np.ndarray) -> np.ndarray:
        """Positions (F, M, 2) into the face frame."""
        return np.einsum("fij,fmj->fmi", self.lin, xy) + self.off[:, None, :]

    def features(self, xy: np.ndarray) -> np.ndarray:
        """Landmarks (F, n, 2) in the face frame, flattened [x0, y0, x1, ...]. Shape: (F, 2n)."""
        return self.points(xy).reshape(len(xy), -1)

    def key_to_face(self, key: np.ndarray, j: int) -> np.ndarray:
        """One key (N, 8) of frame ``j`` from _img into the face frame."""
        lin, off = self.lin[j], self.off[j]
        out = np.array(key, dtype=np.float64, copy=True)
        out[:, 0:2] = out[:, 0:2] @ lin.T + off
        for c in (2, 4, 6):
            out[:, c : c + 2] = out[:, c : c + 2] @ lin.T
        return out

    def keys_from_face(self, pred: np.ndarray) -> np.ndarray:
        """Keys (F, K, 8) from the face frame back to _img."""
        inv = np.linalg.inv(self.lin)
        out = np.array(pred, dtype=np.float64, copy=True)
        out[..., 0:2] = np.einsum("fij,fkj->fki", inv, out[..., 0:2] - self.off[:, None, :])
        for c in (2, 4, 6):
            out[..., c : c + 2] = np.einsum("fij,fkj->fki", inv, out[..., c : c + 2])
        return out

    def plans_in_frames(self, plan: revec.RevecPlan) -> List[revec.RevecPlan]:
        """The plan once per frame, its face-frame axis turned into that frame's _img space."""
        ax = np.broadcast_to(np.asarray(plan.axis, dtype=np.float64), (len(self.lin), 2))
        axes = np.linalg.solve(self.lin, ax[..., None])[..., 0]
        axes /= np.maximum(np.linalg.norm(axes, axis=1, keepdims=True), 1e-12)
        return [dataclasses.replace(plan, axis=(float(a[0]), float(a[1]))) for a in axes]


def _fit_frames(x: np.ndarray, mean: np.ndarray, kind: str) -> Tuple[_Frames, np.ndarray]:
    """Per-frame least-squares map of the landmarks onto their centred mean configuration.

    Args:
        x: Landmarks per frame (F, n, 2), _img space, all known.
        mean: Centred reference configuration (n, 2).
        kind: ``"similarity"`` (no reflection) or ``"affine"``.

    Returns:
        The face frames (identity where not ``good``) and ``good`` (F,) bool: False where the
        landmarks coincide (or are collinear, for affine), so no frame exists.
    """
    centre = x.mean(axis=1)
    xc = x - centre[:, None, :]
    n_frames = len(x)
    lin = np.tile(np.eye(2), (n_frames, 1, 1))
    energy = (xc * xc).sum(axis=(1, 2))
    good = np.sqrt(energy / max(x.shape[1], 1)) > MIN_LANDMARK_SPREAD_PX
    if kind == "similarity":
        # Complex least squares: face = s * img, s = a + ib.
        a = (xc[..., 0] * mean[None, :, 0] + xc[..., 1] * mean[None, :, 1]).sum(axis=1)
        b = (xc[..., 0] * mean[None, :, 1] - xc[..., 1] * mean[None, :, 0]).sum(axis=1)
        e = np.where(good, energy, 1.0)
        a, b = a / e, b / e
        good &= (a * a + b * b) > 0
        lin[good] = np.stack([np.stack([a, -b], -1), np.stack([b, a], -1)], -2)[good]
    elif kind == "affine":
        cov = np.einsum("fni,fnj->fij", xc, xc)
        eig = np.linalg.eigvalsh(cov)
        # Nearly collinear landmarks make the affine map ill-conditioned (it would shear wildly).
        good &= eig[:, 0] > AFFINE_MIN_ASPECT**2 * np.maximum(eig[:, 1], 1e-300)
        cross = np.einsum("ni,fnj->fij", mean, xc)
        sol = np.linalg.solve(np.where(good[:, None, None], cov, np.eye(2)), cross.transpose(0, 2, 1))
        lin[good] = sol.transpose(0, 2, 1)[good]
        good &= np.linalg.det(lin) > 0
        lin[~good] = np.eye(2)
    else:
        raise ModelError(f"unknown face frame {kind!r}; expected one of {FRAME_KINDS}")
    off = -np.einsum("fij,fj->fi", lin, centre)
    return _Frames(lin, off), good


def _procrustes_mean(x: np.ndarray) -> np.ndarray:
    """Generalised Procrustes mean of landmark sets (F, n, 2), centred, at their mean pixel size."""
    xc = x - x.mean(axis=1, keepdims=True)
    size = float(np.sqrt((xc * xc).sum(axis=(1, 2))).mean())
    mean = xc[0] / max(float(np.sqrt((xc[0] ** 2).sum())), 1e-12) * size
    for _ in range(PROCRUSTES_ITERATIONS):
        frames, good = _fit_frames(x, mean, "similarity")
        new = frames.take(good).points(x[good]).mean(axis=0)
        new -= new.mean(axis=0)
        mean = new / max(float(np.sqrt((new**2).sum())), 1e-12) * size
    return mean
