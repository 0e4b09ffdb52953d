"""Write Nuke animation curves as knob text: ``{curve x1001 v v ...}`` with ``xN`` only where Nuke needs one."""

from __future__ import annotations

import logging
from typing import Optional, Sequence, Tuple

from seamroto.nk.script_writer import _decimal

logger = logging.getLogger(__name__)

EMPTY_CURVE = "{curve}"


def _track_curve(values: Sequence[Tuple[int, float]], what: str) -> str:
    """``{curve x1001 v v ... x1010 v}``: ``xN`` wherever the frame is not the implicit one.

    Nuke extrapolates an omitted frame linearly from the last two keys (NDK curve format), so
    after ``x1001 v x1003 v`` the next bare value lands on 1005, not 1004: an ``x`` is written
    whenever the frame differs from that prediction (what Nuke does: ``x89 a b x94 c x95 d``).
    """
    if not values:
        return EMPTY_CURVE
    parts = ["curve"]
    prev: Optional[int] = None
    step = 1
    for frame, value in values:
        if prev is None or frame != prev + step:
            parts.append(f"x{frame}")
        if prev is not None:
            step = frame - prev
        parts.append(_decimal(value, f"{what} frame {frame}"))
        prev = frame
    return "{" + " ".join(parts) + "}"


def animation_curve(values: Sequence[Tuple[int, float]], what: str = "value") -> str:
    """A decimal knob animation ``{curve x1001 v v ...}`` (XY knobs, F_WireRemoval points)."""
    return _track_curve(values, what)
