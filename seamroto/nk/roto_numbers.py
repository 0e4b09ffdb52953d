"""Roto curve values as text: Nuke's float32 hex floats, or decimals where float32 would lose precision."""

from __future__ import annotations

import logging
from typing import List, Sequence, Union

import numpy as np

from seamroto.errors import NkWriteError
from seamroto.nk.numbers import hex_float_text

logger = logging.getLogger(__name__)

# Hex floats are float32: at 2048-4096 px half an ulp is 1.2e-4 px, more than the 1e-4 px our
# write/read round trip promises. A value float32 would move by more than this is written as a
# decimal instead (the NDK grammar allows ``float = "0x" 8HEXDIG / decimal``); Nuke rounds it to the
# same float32 on load, so Nuke sees no difference, and every value float32 holds well enough
# stays in Nuke's own hex form.
HEX_MAX_ERROR_PX = 5e-5
DECIMAL_PLACES = 6
FLOAT32_MAX = 3.4028234663852886e38


def _fixed(value: float) -> str:
    text = f"{value:.{DECIMAL_PLACES}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _roto_number(value: float, hex_only: bool, what: str) -> str:
    """A roto value: Nuke's hex float, or a decimal where float32 would lose > HEX_MAX_ERROR_PX."""
    return _roto_numbers([float(value)], hex_only, what)[0]


def _roto_numbers(values: Union[Sequence[float], np.ndarray], hex_only: bool, what: str) -> List[str]:
    """``_roto_number`` of many values at once (a shot's shapes hold ~10^5 of them)."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    bad = ~np.isfinite(arr)
    if bad.any():
        value = float(arr[np.flatnonzero(bad)[0]])
        raise NkWriteError(f"{what}: cannot write non-finite value {value!r}", knob="curves")
    big = np.abs(arr) > FLOAT32_MAX
    if big.any():
        value = float(arr[np.flatnonzero(big)[0]])
        raise NkWriteError(f"{what}: {value!r} is out of float32 range", knob="curves")
    f32 = arr.astype(np.float32)
    use_hex = np.abs(f32.astype(np.float64) - arr) <= HEX_MAX_ERROR_PX
    if hex_only:
        use_hex[:] = True
    out = []
    for value, bits, single, hexed in zip(arr.tolist(), f32.view(np.uint32).tolist(), f32.tolist(), use_hex.tolist()):
        out.append(hex_float_text(single, bits) if hexed else _fixed(value))
    return out
