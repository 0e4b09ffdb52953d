"""Per-character shape of the replacement pieces: each frame's print, pulled toward the character's prints.

Why: a replacement mouth is a new print on every frame, so nothing may smooth it over time, and
its per-frame detector noise is all of its jitter. But its points are not independent: on every
print of a character the middle of the upper lip sits about halfway between the corners, which
is exactly where the detector is weakest (along the lip's outline, about 1 px RMS on the demo
character against 0.3 px across it). So the piece's points, in the face frame
(``seamroto.faceframe``, from the shape prior's anchors), are modelled as one Gaussian learned
from the artists' landmarks over all prints and placements (mean ``mu``, covariance ``S``), and
each frame's detections ``z``, with the detector's error covariance ``D`` measured on a checked
shot (``seamroto calibrate``), give the posterior mean and covariance::

    x = mu + S (S + D)^-1 (z - mu),        P = (I - S (S + D)^-1) S

A point the other points pin (the lip's middle along the lip) moves toward where they put it; a
point nothing else predicts (how open the mouth is) keeps its detection. Without a measured
``D`` the model is not applied (an assumed detector noise would decide how hard each point is
pulled). Saved inside ``shape_prior.json`` (``pieces``); priors without it load unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from seamroto.errors import ShapeError
from seamroto.faceframe import face_frames, from_face, to_face

logger = logging.getLogger(__name__)

#: Frames with every anchor and piece point needed to learn the shape or measure the detector.
MIN_FRAMES = 20
#: Floor of every variance (face-frame units^2, about (0.1 px)^2 on a 300 px face): no model is exact.
MIN_VARIANCE = 1e-6


@dataclass(frozen=True, eq=False)
class PieceEstimate:
    """The piece's points on every frame.

    Attributes:
        columns: index of each piece landmark in the ``names`` the estimate was made for.
        points: Shape: (F, P, 2) float64, _img; NaN where it could not be made (keep the detection).
        sigma_px: per-axis posterior sigma. Shape: (F, P) float64; NaN with ``points``.
    """

    columns: np.ndarray
    points: np.ndarray
    sigma_px: np.ndarray


@dataclass(frozen=True, eq=False)
class PiecePrior:
    """Gaussian shape of the replacement pieces' points in the face frame (see the module docstring).

    Attributes:
        landmarks: the piece landmarks, in the order of ``mean``'s pairs.
        mean: Shape: (2P,) face-frame units, (x0, y0, x1, y1, ...).
        shape_cov: Shape: (2P, 2P) face-frame units^2, over the training frames.
        detector_cov: the detector's error covariance there, measured on checked shots; None
            until measured (the prior is then not applied).
        stats: frames used and the RMS px figures, for the card.
    """

    landmarks: Tuple[str, ...]
    mean: np.ndarray
    shape_cov: np.ndarray
    detector_cov: Optional[np.ndarray] = None
    stats: Mapping[str, Any] = field(default_factory=dict)

    def with_detector_cov(self, cov: np.ndarray, **stats: Any) -> PiecePrior:
        """The same shape with a measured detector covariance (and what it was measured on)."""
        c = _check_cov(np.asarray(cov, dtype=np.float64), 2 * len(self.landmarks), "detector_cov")
        return replace(self, detector_cov=c, stats={**self.stats, **stats})

    def estimate(
        self,
        points: np.ndarray,
        detections: np.ndarray,
        names: Sequence[str],
        anchors: Sequence[str],
        template: np.ndarray,
    ) -> Optional[PieceEstimate]:
        """Posterior piece points per frame, or None when the model cannot be used.

        Args:
            points: fused landmarks (their anchors give each frame's face frame). Shape: (F, L, 2).
            detections: the detector's landmarks (the pieces' are read). Shape: (F, L, 2), NaN absent.
            names: landmark name of each column.
            anchors: the face frame's anchor landmarks.
            template: their template (A, 2), centred, unit RMS radius.

        Raises:
            ShapeError: ``points`` and ``detections`` are not both (F, len(names), 2).
        """
        pts, det = np.asarray(points, dtype=np.float64), np.asarray(detections, dtype=np.float64)
        for label, arr in (("points", pts), ("detections", det)):
            if arr.ndim != 3 or arr.shape[1:] != (len(names), 2) or len(arr) != len(pts):
                raise ShapeError(label, arr.shape, f"(F, {len(names)}, 2)")
        index = {n: i for i, n in enumerate(names)}
        if self.detector_cov is None or any(n not in index for n in (*self.landmarks, *anchors)):
            return None
        cols = np.array([index[n] for n in self.landmarks], dtype=int)
        gain = self.shape_cov @ np.linalg.inv(self.shape_cov + self.detector_cov)
        post = (np.eye(len(gain)) - gain) @ self.shape_cov
        post_axis = np.sqrt(np.maximum(0.5 * (np.diag(post)[0::2] + np.diag(post)[1::2]), 0.0))
        out = np.full((len(pts), len(cols), 2), np.nan)
        sigma = np.full((len(pts), len(cols)), np.nan)
        frames = face_frames(pts[:, [index[a] for a in anchors]], np.asarray(template, dtype=np.float64))
        for i, frame in enumerate(frames):
            z = det[i, cols]
            if frame is None or not np.isfinite(z).all():
                continue
            zf = to_face(z, *frame).reshape(-1)
            x = self.mean + gain @ (zf - self.mean)
            out[i] = from_face(x.reshape(-1, 2), *frame)
            sigma[i] = post_axis / abs(frame[0])
        return PieceEstimate(cols, out, sigma)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict (inside the shape prior's document)."""
        doc: Dict[str, Any] = {
            "landmarks": list(self.landmarks),
            "mean": self.mean.tolist(),
            "shape_cov": self.shape_cov.tolist(),
            "stats": dict(self.stats),
        }
        if self.detector_cov is not None:
            doc["detector_cov"] = self.detector_cov.tolist()
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> PiecePrior:
        """Parse and check shapes.

        Raises:
            ValueError, KeyError, TypeError: malformed (the shape prior's reader reports it).
        """
        landmarks = tuple(str(n) for n in doc["landmarks"])
        size = 2 * len(landmarks)
        mean = np.asarray(doc["mean"], dtype=np.float64)
        if mean.shape != (size,) or not np.isfinite(mean).all():
            raise ValueError(f"pieces.mean has shape {mean.shape}, expected ({size},) (finite)")
        shape_cov = _check_cov(np.asarray(doc["shape_cov"], dtype=np.float64), size, "pieces.shape_cov")
        det = doc.get("detector_cov")
        det_cov = None if det is None else _check_cov(np.asarray(det, dtype=np.float64), size, "pieces.detector_cov")
        return cls(landmarks, mean, shape_cov, det_cov, dict(doc.get("stats", {})))


def learn_piece_prior(
    shots: Sequence[np.ndarray],
    names: Sequence[str],
    pieces: Sequence[str],
    anchors: Sequence[str],
    template: np.ndarray,
) -> Optional[PiecePrior]:
    """The pieces' Gaussian shape from ground-truth landmark arrays (one (F, L, 2) per shot).

    Returns None when there are fewer than two piece landmarks (nothing to pin one with) or
    fewer than ``MIN_FRAMES`` complete frames.
    """
    index = {n: i for i, n in enumerate(names)}
    used = [p for p in pieces if p in index]
    if len(used) < 2 or any(a not in index for a in anchors):
        return None
    rows = _face_rows(shots, shots, names, used, anchors, template)
    if len(rows) < MIN_FRAMES:
        logger.info("no replacement-piece prior: %d complete frames, %d needed", len(rows), MIN_FRAMES)
        return None
    mean = rows.mean(axis=0)
    cov = np.cov(rows.T) + MIN_VARIANCE * np.eye(rows.shape[1])
    return PiecePrior(tuple(used), mean, cov, None, {"frames": int(len(rows))})


def measure_piece_noise(
    tracked: Sequence[np.ndarray],
    detections: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    names: Sequence[str],
    piece: PiecePrior,
    anchors: Sequence[str],
    template: np.ndarray,
) -> PiecePrior:
    """``piece`` with the detector's error covariance measured on shots with truth.

    Both the detections and the truth are mapped by the frame's face frame from the *tracked*
    anchors, as fusion does, so the covariance is what fusion will see.

    Raises:
        ValueError: fewer than ``MIN_FRAMES`` frames with every point known.
    """
    errs = []
    for trk, det, gt in zip(tracked, detections, truths):
        d = _face_rows([det], [trk], names, piece.landmarks, anchors, template, keep_rows=True)
        t = _face_rows([gt], [trk], names, piece.landmarks, anchors, template, keep_rows=True)
        ok = np.isfinite(d).all(axis=1) & np.isfinite(t).all(axis=1)
        errs.append(d[ok] - t[ok])
    err = np.concatenate(errs) if errs else np.zeros((0, 2 * len(piece.landmarks)))
    if len(err) < MIN_FRAMES:
        raise ValueError(f"{len(err)} checked frames with every replacement-piece point; {MIN_FRAMES} needed")
    cov = err.T @ err / len(err) + MIN_VARIANCE * np.eye(err.shape[1])
    return piece.with_detector_cov(cov, detector_frames=int(len(err)))


def _face_rows(
    sources: Sequence[np.ndarray],
    framers: Sequence[np.ndarray],
    names: Sequence[str],
    pieces: Sequence[str],
    anchors: Sequence[str],
    template: np.ndarray,
    keep_rows: bool = False,
) -> np.ndarray:
    """Face-frame piece coordinates (N, 2P): pieces from ``sources``, frames from ``framers``' anchors.

    Without ``keep_rows`` only complete rows are returned; with it, one row per frame (NaN where
    incomplete).
    """
    index = {n: i for i, n in enumerate(names)}
    cols = [index[p] for p in pieces]
    acols = [index[a] for a in anchors]
    rows = []
    for src, framer in zip(sources, framers):
        frames = face_frames(np.asarray(framer, dtype=np.float64)[:, acols], template)
        for i, frame in enumerate(frames):
            z = np.asarray(src, dtype=np.float64)[i, cols]
            if frame is None or not np.isfinite(z).all():
                if keep_rows:
                    rows.append(np.full(2 * len(cols), np.nan))
                continue
            rows.append(to_face(z, *frame).reshape(-1))
    return np.array(rows).reshape(-1, 2 * len(cols))


def _check_cov(cov: np.ndarray, size: int, what: str) -> np.ndarray:
    if cov.shape != (size, size) or not np.isfinite(cov).all():
        raise ValueError(f"{what} has shape {cov.shape}, expected ({size}, {size}) (finite)")
    sym = 0.5 * (cov + cov.T)
    if np.linalg.eigvalsh(sym).min() <= 0:
        raise ValueError(f"{what} is not positive definite")
    return sym

