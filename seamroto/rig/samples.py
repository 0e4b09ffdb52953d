"""A rig shape's training samples: gathered and validated from annotations, and its landmarks.

Every (landmarks, artist key) pair of a shape, checked with ``revec.validate_shape`` so an
artist's mistake names its shape, frame and annotation; then the landmarks the shape is rigged
from (on or near its curve) and those on the curve that guide it, in curve order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from seamroto import curves, revec
from seamroto.datamodel import Annotation, RotoShape, tracks_to_array
from seamroto.errors import AnnotationError

logger = logging.getLogger(__name__)

#: A landmark lies on the curve (and guides it) within this fraction of the face size.
GUIDE_FRACTION = 0.01
#: Share of keys on which the guide landmarks must come in the same order along the curve.
GUIDE_CONSISTENCY = 0.8


@dataclass
class _Samples:
    """One shape's training keys gathered from every annotation."""

    name: str
    closed: bool
    layer: Tuple[str, ...]
    feathers: List[float] = field(default_factory=list)
    falloffs: List[float] = field(default_factory=list)
    keys: List[np.ndarray] = field(default_factory=list)  # (N, 8) artist points, _img
    landmarks: List[np.ndarray] = field(default_factory=list)  # (L, 2) all landmarks, NaN unknown
    groups: List[int] = field(default_factory=list)  # annotation index, for cross-validation
    where: List[Tuple[str, int]] = field(default_factory=list)  # (source, frame)


def _gather(
    annotations: Sequence[Annotation], names: Tuple[str, ...], shape_names: Optional[Sequence[str]]
) -> Dict[str, _Samples]:
    """Every (landmarks, key) pair of every wanted shape, validated."""
    out: Dict[str, _Samples] = {}
    wanted = None if shape_names is None else list(shape_names)
    for gi, ann in enumerate(annotations):
        where = ann.source.split(" | ", 1)[0]
        frames = ann.frames
        lm = tracks_to_array(ann.tracks, names, frames)[..., :2]
        row = {f: i for i, f in enumerate(frames)}
        for shape in _iter_shapes(ann):
            if wanted is not None and shape.name not in wanted:
                continue
            s = out.setdefault(shape.name, _Samples(shape.name, shape.closed, tuple(shape.layer)))
            if s.closed != shape.closed:
                raise AnnotationError(
                    f"shape '{shape.name}' is closed in one annotation and open in another; "
                    "make it the same kind everywhere",
                    path=where,
                )
            for frame in shape.key_frames:
                arr = shape.points_array(frame)
                revec.validate_shape(arr, shape.closed, name=shape.name, frame=frame, path=where)
                s.keys.append(arr)
                s.landmarks.append(lm[row[frame]])
                s.groups.append(gi)
                s.where.append((where, frame))
                s.feathers.append(shape.feather)
                s.falloffs.append(shape.feather_falloff)
    if wanted is not None:
        missing = [n for n in wanted if n not in out]
        if missing:
            raise AnnotationError(
                f"no annotation has shape(s) {', '.join(missing)}; check the shape names "
                f"(found: {', '.join(out) or 'none'})"
            )
        out = {n: out[n] for n in wanted}
    if not out:
        raise AnnotationError("the annotations hold no roto shapes to learn a rig from")
    return out


def _iter_shapes(ann: Annotation) -> Iterable[RotoShape]:
    """Animated shapes, then the per-frame single-key shapes of real roto."""
    yield from ann.shapes
    for frame in sorted(getattr(ann, "frame_shapes", {}) or {}):
        yield from ann.frame_shapes[frame]


def _landmark_distances(samples: _Samples) -> np.ndarray:
    """Distance of every landmark to the shape's curve per key, over the face size (RMS radius).

    Shape: (keys, L), NaN where the landmark is unknown.
    """
    dists = []
    for key, lm in zip(samples.keys, samples.landmarks):
        poly = curves.sample_bezier(key, samples.closed, curves.DEFAULT_SAMPLES_PER_SEGMENT)
        known = np.all(np.isfinite(lm), axis=1)
        d = np.full(len(lm), np.nan)
        if known.sum() >= 2:
            pts = lm[known]
            size = np.sqrt(((pts - pts.mean(axis=0)) ** 2).sum(axis=1).mean())
            d[known] = curves.point_to_polyline(pts, poly, samples.closed) / max(size, 1e-12)
        dists.append(d)
    return np.stack(dists)


def _median_distance(dist: np.ndarray) -> np.ndarray:
    """Median over keys of each landmark's distance; inf for landmarks mostly unknown."""
    seen = np.isfinite(dist).mean(axis=0)
    med = np.full(dist.shape[1], np.inf)
    often = seen >= 0.5
    if often.any():
        med[often] = np.nanmedian(dist[:, often], axis=0)
    return med


def _choose_landmarks(
    name: str, dist: np.ndarray, near_fraction: float, min_landmarks: int
) -> List[int]:
    """Landmarks on or near the shape on most training frames, topped up with the nearest."""
    med = _median_distance(dist)
    order = np.argsort(med, kind="stable")
    chosen = [int(i) for i in order if med[i] <= near_fraction]
    for i in order:
        if len(chosen) >= min_landmarks or not np.isfinite(med[i]):
            break
        if int(i) not in chosen:
            chosen.append(int(i))
    if len(chosen) < 2:
        raise AnnotationError(
            f"shape '{name}': fewer than two landmarks are known on most of its frames"
        )
    return sorted(chosen)


def _choose_guide(
    name: str,
    closed: bool,
    idx: Sequence[int],
    dist: np.ndarray,
    face_lms: np.ndarray,
    oriented: Sequence[np.ndarray],
) -> Tuple[int, ...]:
    """The shape's landmarks that lie on its curve, in the order the curve passes them.

    When the artist's curve runs through landmarks (the usual case: eye corners, lid points), a
    smooth curve through them already is most of the shape, and the regression only has to learn
    the small, consistent difference; that is far more accurate than a linear map from scratch.
    Empty when too few landmarks lie on the curve or their order is not the same on most keys.
    """
    med = _median_distance(dist)
    on = [i for i in idx if med[i] <= GUIDE_FRACTION]
    if len(on) < (3 if closed else 2):
        return ()
    cols = [list(idx).index(i) for i in on]
    orders: Dict[Tuple[int, ...], int] = {}
    for j, fk in enumerate(oriented):
        poly = curves.sample_bezier(fk, closed, curves.DEFAULT_SAMPLES_PER_SEGMENT)
        p = face_lms[j, cols]
        near = np.argmin(np.linalg.norm(poly[None, :, :] - p[:, None, :], axis=2), axis=1)
        order = tuple(int(on[c]) for c in np.argsort(near, kind="stable"))
        if closed:
            # Same cyclic order whatever the start, but direction counts.
            r = order.index(min(order))
            order = order[r:] + order[:r]
        orders[order] = orders.get(order, 0) + 1
    best, count = max(orders.items(), key=lambda kv: kv[1])
    if count < GUIDE_CONSISTENCY * len(oriented):
        logger.info("%s: landmarks on the curve change order between keys; no guide curve", name)
        return ()
    return best
