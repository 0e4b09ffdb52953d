"""The one place where Nuke's coordinates (origin bottom-left, y up) meet ours (top-left, y down).

Project convention (``_img``): image pixels, origin at the top-left corner of the top-left pixel,
y down, so a pixel's centre is at +0.5. Nuke (``_nuke``): origin at the bottom-left corner, y up.
"""

from __future__ import annotations


def y_nuke_from_img(y_img: float, height: float) -> float:
    """Absolute y position, image -> Nuke (the same formula serves both directions)."""
    return height - y_img


def y_img_from_nuke(y_nuke: float, height: float) -> float:
    """Absolute y position, Nuke -> image: ``y_img = height - y_nuke``."""
    return height - y_nuke


def dy_flip(dy: float) -> float:
    """A relative y offset (tangent, feather) changes sign between the two spaces."""
    return -dy
