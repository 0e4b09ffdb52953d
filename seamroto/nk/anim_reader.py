"""Read Nuke animation curves from knob text: ``{curve K x1001 1 2}`` keys, constants and expression cells.

Tracker4 cells and ordinary knobs hold decimal text; key times that land on whole frames become
frame numbers (:func:`_frame_of`), for Tracker4 tracks and Roto shapes alike.
"""

from __future__ import annotations

import bisect
import logging
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Dict, List, Optional, Sequence, Tuple

from seamroto.errors import NkParseError
from seamroto.nk.script import _parse_number
from seamroto.nk.tokens import TreeItem

logger = logging.getLogger(__name__)

# A key time this close to an integer is that frame; hex key times are exact in practice.
FRAME_TOLERANCE = 1e-3
_INTERP_LETTERS = frozenset("KLSRCZklIi")
_SLOPE_PREFIXES = "stuv"


@dataclass(frozen=True)
class _Curve:
    """An animation cell: keys (frame -> value, file order), or a constant, or an expression."""

    keys: Dict[float, float]
    constant: Optional[float] = None
    expression: Optional[str] = None

    @cached_property
    def _sorted(self) -> Tuple[List[float], List[float]]:
        xs = sorted(self.keys)
        return xs, [self.keys[x] for x in xs]

    def at(self, frame: float) -> Optional[float]:
        if frame in self.keys:
            return self.keys[frame]
        if self.constant is not None:
            return self.constant
        if not self.keys:
            return None
        xs, ys = self._sorted
        return _interp(xs, ys, frame)


def _interp(xs: Sequence[float], ys: Sequence[float], t: float) -> float:
    """Linear in between keys, held outside (Nuke's default constant extrapolation)."""
    if t <= xs[0]:
        return ys[0]
    if t >= xs[-1]:
        return ys[-1]
    i = bisect.bisect_right(xs, t)
    x0, x1 = xs[i - 1], xs[i]
    if x1 == x0:
        return ys[i]
    w = (t - x0) / (x1 - x0)
    return ys[i - 1] + w * (ys[i] - ys[i - 1])


def _is_key_token(tok: str) -> bool:
    if tok in _INTERP_LETTERS:
        return True
    if tok[0] == "x" and _parse_number(tok[1:]) is not None:
        return True
    return _parse_number(tok) is not None


def parse_anim_curve(cell: TreeItem) -> _Curve:
    """Read one animated value: ``{curve K x1001 1 2 x1010 5}``, ``{expr x68 0}``, ``12``.

    Keys follow the NDK curve grammar: ``xN`` sets the frame of the next value; a value without
    one lands where the last two keys point (one frame on after a single key, starting at 0);
    interpolation letters and ``s``/``t``/``u``/``v`` slopes are skipped.

    Raises:
        NkParseError: A token that is none of these.
    """
    if isinstance(cell, str):
        value = _parse_number(cell)
        if value is not None:
            return _Curve({}, constant=value)
        return _Curve({}, expression=cell)
    tokens: List[TreeItem] = list(cell)
    expression: Optional[str] = None
    i = 0
    if tokens and tokens[0] == "curve":
        i = 1
    elif tokens and (not isinstance(tokens[0], str) or not _is_key_token(tokens[0])):
        first = tokens[0]
        expression = first if isinstance(first, str) else "{...}"
        i = 1
    keys: Dict[float, float] = {}
    order: List[float] = []
    next_x: Optional[float] = None
    skip_next = False
    for tok in tokens[i:]:
        if skip_next:
            skip_next = False
            continue
        if not isinstance(tok, str):
            raise NkParseError("a nested brace inside an animation curve")
        if tok in _INTERP_LETTERS:
            continue
        c = tok[0]
        if c == "x":
            x = _parse_number(tok[1:])
            if x is None or not math.isfinite(x):
                raise NkParseError(f"bad key frame {tok[:30]!r} in an animation curve")
            next_x = x
            continue
        if c in _SLOPE_PREFIXES:
            if len(tok) == 1:
                skip_next = True
                continue
            if _parse_number(tok[1:]) is not None:
                continue
        value = _parse_number(tok)
        if value is None:
            raise NkParseError(f"unexpected {tok[:30]!r} in an animation curve")
        if next_x is None:
            if len(order) >= 2:
                next_x = order[-1] + (order[-1] - order[-2])
            elif order:
                next_x = order[-1] + 1.0
            else:
                next_x = 0.0
        keys[next_x] = value
        order.append(next_x)
        next_x = None
    return _Curve(keys, expression=expression)


def _frame_of(t: float) -> Optional[int]:
    if not math.isfinite(t):
        return None
    r = round(t)
    if abs(t - r) > FRAME_TOLERANCE:
        return None
    return int(r)
