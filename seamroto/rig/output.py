"""A rig's output as roto shapes: fitted shapes as ``RotoShape``, and seams as curves and bands.

Seams are not rigged: they are smooth open curves through their landmarks, and the closed band
around one is what paint and inpaint of the split line use.
"""

from __future__ import annotations

import logging
from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from seamroto import curves
from seamroto.datamodel import RotoShape, Seam, shape_from_arrays
from seamroto.errors import AnnotationError, ShapeError
from seamroto.rig.frame import POINT_COLS
from seamroto.rig.model import FittedShape

logger = logging.getLogger(__name__)

DEFAULT_SEAM_LAYER = ("seam",)
SEAM_BAND_SUFFIX = "_band"
#: Handle length of a quarter circle as a fraction of its radius.
CAP_KAPPA = 4.0 / 3.0 * float(np.tan(np.pi / 8.0))


def fitted_to_roto_shapes(
    fitted: Union[Mapping[str, FittedShape], Iterable[FittedShape]],
    *,
    skip_flagged: bool = True,
) -> Tuple[RotoShape, ...]:
    """Turn fitted shapes into datamodel RotoShapes (layer, closed and feather kept).

    Args:
        fitted: From ``Rig.apply`` (dict or any iterable of FittedShape).
        skip_flagged: Leave flagged frames unkeyed (Nuke interpolates across them); a shape
            flagged on every frame is left out.

    Returns:
        One RotoShape per fitted shape, keyed on its fitted frames.
    """
    items = fitted.values() if isinstance(fitted, Mapping) else fitted
    out = []
    for fs in items:
        arrays = {
            f: fs.points[i]
            for i, f in enumerate(fs.frames)
            if not (skip_flagged and fs.flagged[i]) and np.all(np.isfinite(fs.points[i]))
        }
        if not arrays:
            logger.warning("%s: flagged on every frame, no roto shape written", fs.name)
            continue
        out.append(
            shape_from_arrays(
                fs.name,
                fs.closed,
                arrays,
                layer=fs.layer,
                feather=fs.feather,
                feather_falloff=fs.feather_falloff,
            )
        )
    return tuple(out)


def seam_polylines(
    points: np.ndarray, landmark_names: Sequence[str], seams: Sequence[Seam]
) -> Dict[str, np.ndarray]:
    """Each seam's landmarks, in its order, per frame (the split line as a polyline).

    Args:
        points: Landmarks (F, L, 2) in ``landmark_names`` order, NaN where unknown.
        landmark_names: Names of the landmark columns.
        seams: ``Character.seams``.

    Returns:
        Seam name -> Shape (F, n, 2) float64, _img space, NaN where a landmark is unknown.

    Raises:
        AnnotationError: A seam names a landmark that is not in ``landmark_names``.
    """
    pts = np.asarray(points, dtype=np.float64)
    names = list(landmark_names)
    if pts.ndim != 3 or pts.shape[1:] != (len(names), 2):
        raise ShapeError("points", pts.shape, f"(F, {len(names)}, 2)")
    out = {}
    for seam in seams:
        missing = [n for n in seam.landmarks if n not in names]
        if missing:
            raise AnnotationError(
                f"seam '{seam.name}' lists landmark(s) {', '.join(missing)} that the model does "
                "not track; fix Character.seams"
            )
        out[seam.name] = pts[:, [names.index(n) for n in seam.landmarks]]
    return out


def seam_shapes(
    points: np.ndarray,
    landmark_names: Sequence[str],
    seams: Sequence[Seam],
    *,
    frames: Optional[Sequence[int]] = None,
    layer: Sequence[str] = DEFAULT_SEAM_LAYER,
) -> Dict[str, FittedShape]:
    """Seams as smooth open curves through their landmarks (Catmull-Rom handles), per frame.

    A seam is flagged on frames where any of its landmarks is unknown.
    """
    polys = seam_polylines(points, landmark_names, seams)
    n_frames = np.asarray(points).shape[0]
    frame_ids = tuple(range(n_frames)) if frames is None else tuple(int(f) for f in frames)
    out = {}
    for name, poly in polys.items():
        ok = np.all(np.isfinite(poly), axis=(1, 2))
        arr = np.full((n_frames, poly.shape[1], POINT_COLS), np.nan)
        for i in np.flatnonzero(ok):
            arr[i, :, :6] = curves.catmull_rom_handles(poly[i], False)
            arr[i, :, 6:] = 0.0
        out[name] = FittedShape(name, False, tuple(layer), frame_ids, arr, ~ok)
    return out


def band_points(seam_curve: np.ndarray, width_px: float) -> np.ndarray:
    """A closed band of ``width_px`` around an open curve, as control points.

    The band runs along one side of the curve (each knot pushed out along its normal, handles
    kept), round the far end, back along the other side and round the start: 2N + 2 points. The
    caps stick out ``width_px / 2`` beyond the curve's ends so paint covers the seam's tips.

    Args:
        seam_curve: The seam (N, 2|6|8), relative handles (two columns: a polyline, smoothed
            with Catmull-Rom handles), _img space.
        width_px: Full band width in pixels.

    Returns:
        Shape: (2N + 2, 8) float64, relative handles, zero feather offsets.
    """
    pts = curves.check_points("seam_curve", seam_curve)
    if len(pts) < 2:
        raise ShapeError("seam_curve", pts.shape, "(N>=2, 2|6|8)")
    cp = curves.catmull_rom_handles(pts, False) if pts.shape[1] < 6 else pts[:, :6].copy()
    half = 0.5 * float(width_px)
    xy, left, right = cp[:, :2], cp[:, 2:4], cp[:, 4:6]
    tangent = right - left
    # A knot without handles takes its direction from the neighbouring knots.
    chord = np.gradient(xy, axis=0)
    flat = np.linalg.norm(tangent, axis=1) < 1e-9
    tangent[flat] = chord[flat]
    t = tangent / np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-12)
    normal = np.stack([-t[:, 1], t[:, 0]], axis=1)
    n = len(cp)
    cap = half * CAP_KAPPA
    out = np.zeros((2 * n + 2, POINT_COLS))
    # Side A (+normal), start to end, with the seam's own handles.
    out[:n, :2] = xy + half * normal
    out[:n, 2:4] = left
    out[:n, 4:6] = right
    # End cap: quarter circles A[-1] -> E -> B[-1] about the seam's last knot.
    out[n, :2] = xy[-1] + half * t[-1]
    out[n, 2:4] = cap * normal[-1]
    out[n, 4:6] = -cap * normal[-1]
    # Side B (-normal), end to start: traversed backwards, so left and right swap.
    out[n + 1 : 2 * n + 1, :2] = (xy - half * normal)[::-1]
    out[n + 1 : 2 * n + 1, 2:4] = right[::-1]
    out[n + 1 : 2 * n + 1, 4:6] = left[::-1]
    # Start cap: B[0] -> S -> A[0].
    out[2 * n + 1, :2] = xy[0] - half * t[0]
    out[2 * n + 1, 2:4] = -cap * normal[0]
    out[2 * n + 1, 4:6] = cap * normal[0]
    # Handles of the side knots that meet a cap run along the seam.
    out[n - 1, 4:6] = cap * t[-1]
    out[n + 1, 2:4] = cap * t[-1]
    out[2 * n, 4:6] = -cap * t[0]
    out[0, 2:4] = -cap * t[0]
    return out


def seam_band(
    seam_curve: Union[np.ndarray, RotoShape, FittedShape],
    width_px: float,
    feather_px: float,
    *,
    name: Optional[str] = None,
    layer: Optional[Sequence[str]] = None,
    frame: int = 0,
) -> RotoShape:
    """A closed roto shape around a seam, for paint and inpaint of the split line.

    Args:
        seam_curve: One curve (N, 2|6|8) keyed at ``frame``, or an open RotoShape or
            FittedShape keyed on every (unflagged) frame.
        width_px: Full band width in pixels (the seam's width plus a margin).
        feather_px: Shape-wide feather (Nuke's feather slider), so the paint fades out.
        name: Shape name (default ``<seam>_band``).
        layer: Layer path (default the seam's, or ``("seam",)``).
        frame: Key frame when ``seam_curve`` is an array.

    Returns:
        A closed RotoShape with 2N + 2 points per key.
    """
    if isinstance(seam_curve, RotoShape):
        keys = {f: seam_curve.points_array(f) for f in seam_curve.key_frames}
        base, base_layer = seam_curve.name, seam_curve.layer
    elif isinstance(seam_curve, FittedShape):
        keys = {
            f: seam_curve.points[i]
            for i, f in enumerate(seam_curve.frames)
            if not seam_curve.flagged[i] and np.all(np.isfinite(seam_curve.points[i]))
        }
        base, base_layer = seam_curve.name, seam_curve.layer
    else:
        keys = {int(frame): np.asarray(seam_curve, dtype=np.float64)}
        base, base_layer = "seam", tuple(DEFAULT_SEAM_LAYER)
    arrays = {f: band_points(k, width_px) for f, k in keys.items()}
    return shape_from_arrays(
        name or f"{base}{SEAM_BAND_SUFFIX}",
        True,
        arrays,
        layer=tuple(layer) if layer is not None else (tuple(base_layer) or DEFAULT_SEAM_LAYER),
        feather=float(feather_px),
    )
