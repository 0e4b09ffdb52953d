"""Synthetic mouth-like Bezier shapes shared by the snap and print-library tests (_img px)."""

from __future__ import annotations

from typing import Optional, Tuple

from seamroto.datamodel import ControlPoint

KAPPA = 0.5523  # cubic Bezier quarter circle


def ellipse(
    cx: float, cy: float, rx: float, ry: float, feather: Optional[Tuple[float, float]] = None
) -> Tuple[ControlPoint, ...]:
    """Four points, no corners; ``feather`` pushes each point's feather outward by that (x, y) share."""
    kx, ky = KAPPA * rx, KAPPA * ry
    fx, fy = feather or (0.0, 0.0)
    return (
        ControlPoint(cx + rx, cy, (0.0, -ky), (0.0, ky), (fx, 0.0)),
        ControlPoint(cx, cy + ry, (kx, 0.0), (-kx, 0.0), (0.0, fy)),
        ControlPoint(cx - rx, cy, (0.0, ky), (0.0, -ky), (-fx, 0.0)),
        ControlPoint(cx, cy - ry, (-kx, 0.0), (kx, 0.0), (0.0, -fy)),
    )


def almond(cx: float, cy: float, rx: float, up: float, down: float) -> Tuple[ControlPoint, ...]:
    """A mouth-like lens: sharp corners left and right (cusps), an upper and a lower lip arc."""
    kx = KAPPA * rx
    return (
        ControlPoint(cx - rx, cy, (0.4 * rx, 0.6 * down), (0.4 * rx, -0.6 * up)),
        ControlPoint(cx, cy - up, (-kx, 0.0), (kx, 0.0)),
        ControlPoint(cx + rx, cy, (-0.4 * rx, -0.6 * up), (-0.4 * rx, 0.6 * down)),
        ControlPoint(cx, cy + down, (kx, 0.0), (-kx, 0.0)),
    )
