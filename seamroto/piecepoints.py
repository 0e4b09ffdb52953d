"""Replacement-piece landmarks read back from the snapped print, weighed against the tracked ones.

Why: a replacement mouth is a new print on every frame, so its landmarks cannot be smoothed
over time and their frame-to-frame jitter is all per-frame error (the detector's corners are
0.3-0.5 px off per axis on the demo character, a new error each frame). Once the print library
has snapped the piece onto the frame's own edges (``seamroto.printlib``), the snapped outline
measures the same points again: where the artists' landmark sits on one of the shape's control
points (a mouth corner on the mouth's corner point), the snapped point is a second, mostly
independent measurement, much better across the lip and about as good along it. A piece's
pinned landmarks become ``f + G (s - f)``: ``f`` the tracked points, ``s`` the snapped control
points, stacked in the face frame (``seamroto.faceframe``), with the gain ``G`` (one matrix for
the whole piece) fitted by least squares on shots an artist checked (``seamroto calibrate``).
Without a measured gain nothing is read back, as an assumed one would decide how far the tracks
move. The tracks and the shapes then agree, so the artist's Tracker4 corner sits on the Roto
shape's corner.

Saved inside ``prints.json`` (``readout``); libraries without it load unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from seamroto.errors import ShapeError
from seamroto.faceframe import face_frames, from_face, to_face

logger = logging.getLogger(__name__)

#: A landmark "sits on" a control point when their median distance over the artists' frames is
#: at most this (face-frame units: share of the anchors' RMS radius, about 1 px on a 100 px face).
PIN_TOLERANCE = 0.01
#: Checked frames with the tracked, snapped and true point all known, needed to fit a gain.
MIN_FRAMES = 20


@dataclass(frozen=True, eq=False)
class PieceGroup:
    """A replacement shape's landmarks, read back together from its snapped control points.

    Attributes:
        shape: the replacement shape.
        landmarks: the landmarks that sit on its control points.
        indices: each one's control point, in the rig's point order.
        gain: weight of the snapped points against the tracked ones, face-frame axes, over the
            pairs ``(x0, y0, x1, y1, ...)`` of ``landmarks``. Shape: (2P, 2P); identity takes
            the snapped points, zero keeps the tracks. One gain for the whole piece, because
            where one snapped corner sits also says something about the other.
    """

    shape: str
    landmarks: Tuple[str, ...]
    indices: Tuple[int, ...]
    gain: np.ndarray


@dataclass(frozen=True, eq=False)
class PieceReadout:
    """The piece landmarks to read back from snapped prints, and the face frame they are weighed in.

    Attributes:
        anchors: rigid landmarks whose similarity to ``template`` is each frame's face frame.
        template: Shape: (A, 2), centred, unit RMS radius.
        groups: per replacement shape.
        stats: checked frames and the in-sample figures per landmark, for the card.
    """

    anchors: Tuple[str, ...]
    template: np.ndarray
    groups: Tuple[PieceGroup, ...]
    stats: Mapping[str, Any] = field(default_factory=dict)

    def apply(
        self,
        points: np.ndarray,
        names: Sequence[str],
        shapes: Mapping[str, np.ndarray],
        snapped: Mapping[str, np.ndarray],
    ) -> np.ndarray:
        """The landmarks with each piece's points moved toward its snapped control points.

        Args:
            points: tracked landmarks. Shape: (F, L, 2), _img, NaN where unknown.
            names: landmark name of each column (L).
            shapes: per shape name, its control points on every frame. Shape: (F, N, 2), _img.
            snapped: per shape name, the frames its print was snapped on. Shape: (F,) bool.

        Returns:
            A copy of ``points``; a piece's points change only on frames its shape was snapped
            on, with the face frame's anchors and every one of its tracked and snapped points known.

        Raises:
            ShapeError: ``points`` is not (F, len(names), 2).
        """
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 3 or pts.shape[1:] != (len(names), 2):
            raise ShapeError("points", pts.shape, f"(F, {len(names)}, 2)")
        out = pts.copy()
        index = {n: i for i, n in enumerate(names)}
        if any(a not in index for a in self.anchors):
            return out
        frames = face_frames(pts[:, [index[a] for a in self.anchors]], self.template)
        for g in self.groups:
            cp, mask = shapes.get(g.shape), snapped.get(g.shape)
            if cp is None or mask is None or any(n not in index for n in g.landmarks):
                continue
            cols = [index[n] for n in g.landmarks]
            done = 0
            for i, frame in enumerate(frames):
                f, s = pts[i, cols], cp[i, list(g.indices)]
                if frame is None or not mask[i] or not (np.isfinite(s).all() and np.isfinite(f).all()):
                    continue
                ff, sf = to_face(f, *frame).reshape(-1), to_face(s, *frame).reshape(-1)
                out[i, cols] = from_face((ff + g.gain @ (sf - ff)).reshape(-1, 2), *frame)
                done += 1
            logger.info("%s read back from the snapped %s on %d of %d frame(s)", ", ".join(g.landmarks), g.shape,
                        done, len(frames))
        return out

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict (inside the print library's document)."""
        return {
            "anchors": list(self.anchors),
            "template": self.template.tolist(),
            "groups": [
                {"shape": g.shape, "landmarks": list(g.landmarks), "indices": list(g.indices),
                 "gain": np.round(g.gain, 6).tolist()}
                for g in self.groups
            ],
            "stats": dict(self.stats),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> PieceReadout:
        """Parse and check shapes.

        Raises:
            ValueError, KeyError, TypeError: malformed (the print library's reader reports it).
        """
        anchors = tuple(str(a) for a in doc["anchors"])
        template = np.asarray(doc["template"], dtype=np.float64)
        if template.shape != (len(anchors), 2) or not np.isfinite(template).all():
            raise ValueError(f"readout.template has shape {template.shape}, expected ({len(anchors)}, 2) (finite)")
        groups = []
        for g in doc["groups"]:
            landmarks = tuple(str(n) for n in g["landmarks"])
            indices = tuple(int(j) for j in g["indices"])
            gain = np.asarray(g["gain"], dtype=np.float64)
            size = 2 * len(landmarks)
            if len(indices) != len(landmarks) or gain.shape != (size, size) or not np.isfinite(gain).all():
                raise ValueError(
                    f"readout of {g['shape']!r}: {len(landmarks)} landmarks, {len(indices)} points and a gain of "
                    f"shape {gain.shape}; expected one point per landmark and ({size}, {size}) (finite)"
                )
            groups.append(PieceGroup(str(g["shape"]), landmarks, indices, gain))
        return cls(anchors, template, tuple(groups), dict(doc.get("stats", {})))


def find_pins(
    truth: np.ndarray,
    names: Sequence[str],
    shapes: Mapping[str, np.ndarray],
    pieces: Sequence[str],
    anchors: Sequence[str],
    template: np.ndarray,
) -> Dict[str, Tuple[str, int]]:
    """Which control point each piece landmark sits on in the artists' work, if any.

    Args:
        truth: the artists' landmarks. Shape: (F, L, 2), _img, NaN where unchecked.
        names: landmark names (L).
        shapes: per replacement shape, the artists' control points. Shape: (F, N, 2), NaN where none.
        pieces: the piece landmarks to look for.
        anchors: face-frame anchors (their spread sets the tolerance's scale).
        template: their template (A, 2).

    Returns:
        landmark -> (shape, control point index), for landmarks within ``PIN_TOLERANCE``.
    """
    index = {n: i for i, n in enumerate(names)}
    if any(a not in index for a in anchors):
        return {}
    frames = face_frames(np.asarray(truth, dtype=np.float64)[:, [index[a] for a in anchors]], template)
    scale = np.array([abs(f[0]) if f is not None else np.nan for f in frames])
    pins: Dict[str, Tuple[str, int]] = {}
    for name in pieces:
        if name not in index:
            continue
        lm = np.asarray(truth, dtype=np.float64)[:, index[name]]
        best: Optional[Tuple[float, str, int]] = None
        for shape, cps in shapes.items():
            dist = np.linalg.norm(np.asarray(cps, dtype=np.float64) - lm[:, None], axis=2) * scale[:, None]
            ok = np.isfinite(dist).all(axis=1)
            if not ok.any():
                continue
            med = np.median(dist[ok], axis=0)
            j = int(np.argmin(med))
            if best is None or med[j] < best[0]:
                best = (float(med[j]), shape, j)
        if best is not None and best[0] <= PIN_TOLERANCE:
            pins[name] = (best[1], best[2])
    return pins


def measure_readout(
    tracked: Sequence[np.ndarray],
    shapes: Sequence[Mapping[str, np.ndarray]],
    snapped: Sequence[Mapping[str, np.ndarray]],
    truths: Sequence[np.ndarray],
    names: Sequence[str],
    pins: Mapping[str, Tuple[str, int]],
    anchors: Sequence[str],
    template: np.ndarray,
) -> Optional[PieceReadout]:
    """Fit each piece's gain on checked shots: the least-squares blend of its tracks and its snap.

    Args:
        tracked: per shot, the tracked landmarks (F, L, 2) (their anchors give the face frames).
        shapes: per shot, each snapped shape's control points (F, N, 2).
        snapped: per shot, each shape's snapped frames (F,) bool.
        truths: per shot, the artists' landmarks (F, L, 2), NaN where unchecked.
        names: landmark names (L).
        pins: from ``find_pins``.
        anchors: face-frame anchors.
        template: their template (A, 2).

    Returns:
        The readout of every shape with ``MIN_FRAMES`` usable frames, or None when there is none.
    """
    index = {n: i for i, n in enumerate(names)}
    if not pins or any(a not in index for a in anchors):
        return None
    acols = [index[a] for a in anchors]
    by_shape: Dict[str, List[str]] = {}
    for name, (shape, _j) in pins.items():
        if name in index:
            by_shape.setdefault(shape, []).append(name)
    groups, stats = [], {}
    for shape, landmarks in by_shape.items():
        cols, indices = [index[n] for n in landmarks], [pins[n][1] for n in landmarks]
        rows = []
        for trk, shp, snp, gt in zip(tracked, shapes, snapped, truths):
            cp, mask = shp.get(shape), snp.get(shape)
            if cp is None or mask is None:
                continue
            frames = face_frames(np.asarray(trk, dtype=np.float64)[:, acols], template)
            for i, frame in enumerate(frames):
                both = np.stack([trk[i, cols], cp[i, indices], gt[i, cols]])  # tracked, snapped, true
                if frame is not None and mask[i] and np.isfinite(both).all():
                    rows.append([to_face(p, *frame).reshape(-1) for p in both])
        if len(rows) < MIN_FRAMES:
            logger.info(
                "%s not read back from the snapped print: %d checked frames, %d needed",
                ", ".join(landmarks), len(rows), MIN_FRAMES,
            )
            continue
        r = np.asarray(rows)  # (N, 3, 2P)
        step, miss = r[:, 1] - r[:, 0], r[:, 2] - r[:, 0]
        gain_t, *_ = np.linalg.lstsq(step, miss, rcond=None)
        after = miss - step @ gain_t
        groups.append(PieceGroup(shape, tuple(landmarks), tuple(indices), gain_t.T))
        for k, name in enumerate(landmarks):
            pair = slice(2 * k, 2 * k + 2)
            stats[name] = {
                "frames": int(len(r)),
                "tracked_rms": _rms(miss[:, pair]),
                "snapped_rms": _rms(r[:, 2, pair] - r[:, 1, pair]),
                "read_back_rms": _rms(after[:, pair]),
            }
    if not groups:
        return None
    return PieceReadout(tuple(anchors), np.asarray(template, dtype=np.float64), tuple(groups),
                        {"units": "face frame (anchors' RMS radius)", "in_sample": True, "landmarks": stats})


def _rms(err: np.ndarray) -> float:
    """RMS length of (N, 2) errors, rounded for the card."""
    return round(float(np.sqrt((err**2).sum(axis=1).mean())), 5)
