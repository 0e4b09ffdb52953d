"""Numbers as Nuke writes them: roto hex floats (``x44852000``) and decimal knob values."""

from __future__ import annotations

import math
import struct

HEX_FLOAT_DIGITS = 8


def is_hex_float(token: str) -> bool:
    """True for Nuke's roto float form: ``x`` + exactly 8 hex digits (``x 2`` is a run count)."""
    if len(token) != HEX_FLOAT_DIGITS + 1 or token[0] != "x":
        return False
    try:
        int(token[1:], 16)
    except ValueError:
        return False
    return True


def parse_hex_float(token: str) -> float:
    """``x44852000`` -> 1065.0 (IEEE-754 single precision, big-endian bit pattern)."""
    return float(struct.unpack(">f", bytes.fromhex(token[1:]))[0])


def parse_number(token: str) -> float:
    """A roto value token: hex float, or a decimal (Nuke accepts both on input)."""
    if is_hex_float(token):
        return parse_hex_float(token)
    return float(token)


def format_hex_float(value: float) -> str:
    """Roto curve value as Nuke saves it: exact 0 and 1 bare, everything else ``x%08x``."""
    f32 = struct.unpack(">f", struct.pack(">f", float(value)))[0]
    if f32 == 0.0:
        return "0"
    if f32 == 1.0:
        return "1"
    if not math.isfinite(f32):
        raise ValueError(f"cannot write non-finite value {value!r} into a roto curve")
    return hex_float_text(f32, struct.unpack(">I", struct.pack(">f", f32))[0])


def hex_float_text(f32: float, bits: int) -> str:
    """``format_hex_float`` of a finite float32 already split into its value and bit pattern."""
    if f32 == 0.0:
        return "0"
    if f32 == 1.0:
        return "1"
    return "x%08x" % bits


def format_decimal(value: float) -> str:
    """Knob/curve value in decimal as Nuke writes it (``%.9g``-style, no trailing ``.0``)."""
    if not math.isfinite(value):
        raise ValueError(f"cannot write non-finite value {value!r} into a knob")
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    text = "%.10g" % value
    return text
