"""The face frame: the similarity that maps a face's rigid anchor landmarks onto their template.

Why: a replacement face is a rigid print, so once position, size and roll are taken out, where
a point sits relative to the eye corners and nose is a property of the character, learned once
from the artists' landmarks (``seamroto.shapeprior`` for the outline and seams,
``seamroto.pieceprior`` for the replacement pieces). Points are handled as complex numbers: a
similarity is then one complex scale-rotation ``a`` about the anchors' centre.

Face-frame coordinates are ``a * (p - centre)``; the template is centred with unit RMS radius,
so one face-frame unit is the anchors' RMS radius. Everything else is ``_img`` space.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

#: Anchor sets spanning less than this (px RMS radius) cannot define a face frame.
MIN_SPREAD_PX = 1e-6

#: (complex scale-rotation, image centre (2,)) of one frame.
FaceFrame = Tuple[complex, np.ndarray]

_COMPLEX = np.array([1.0, 1j])


def face_frames(anchors: np.ndarray, template: np.ndarray) -> List[Optional[FaceFrame]]:
    """Per frame: the similarity mapping the anchors onto the template (least squares).

    Shape: anchors (F, A, 2) _img, template (A, 2). None where an anchor is NaN or the anchors
    collapse.
    """
    zt = template @ _COMPLEX
    out: List[Optional[FaceFrame]] = []
    for p in anchors:
        if not np.isfinite(p).all():
            out.append(None)
            continue
        centre = p.mean(axis=0)
        z = (p - centre) @ _COMPLEX
        energy = float(np.vdot(z, z).real)
        if energy <= (MIN_SPREAD_PX**2) * len(p):
            out.append(None)
            continue
        out.append((complex(np.vdot(z, zt) / energy), centre))
    return out


def to_face(points: np.ndarray, a: complex, centre: np.ndarray) -> np.ndarray:
    """Image px -> face frame. Shape: (N, 2) -> (N, 2)."""
    w = a * ((points - centre) @ _COMPLEX)
    return np.stack([w.real, w.imag], axis=-1)


def from_face(points: np.ndarray, a: complex, centre: np.ndarray) -> np.ndarray:
    """Face frame -> image px. Shape: (N, 2) -> (N, 2)."""
    w = (points @ _COMPLEX) / a
    return np.stack([w.real, w.imag], axis=-1) + centre
