"""Read the ``tracks`` table of a Tracker4 node as landmark tracks in image space (y down).

Coordinates are converted once, here, with ``seamroto.coords``: Nuke (y up, origin bottom-left)
to ours (y down, origin top-left); absolute y becomes ``height - y``.
"""

from __future__ import annotations

import logging
import math
from typing import Callable, Dict, List, Optional

from seamroto import coords
from seamroto.datamodel import LandmarkSample, LandmarkTrack
from seamroto.errors import NkParseError
from seamroto.nk.anim_reader import _Curve, _frame_of, parse_anim_curve
from seamroto.nk.nodes import _guard, knob_tree
from seamroto.nk.script import _INT_RE, NkNode, NkScript
from seamroto.nk.tokens import TreeItem

logger = logging.getLogger(__name__)

# Bounds that keep garbage from turning into huge loops or lists.
MAX_CONSTANT_TRACK_FRAMES = 100_000

# Tracker4 `tracks` table: column indices when the table has no header (FORMAT.md section 3).
TRACK_COL_NAME = 1
TRACK_COL_X = 2
TRACK_COL_Y = 3


def tracker_tracks(
    script: NkScript,
    node: NkNode,
    height: float,
    *,
    warnings: Optional[List[str]] = None,
) -> List[LandmarkTrack]:
    """The tracks of a Tracker4 node as landmark tracks in image space (y down).

    Names come from column 1, positions from track_x/track_y (columns 2, 3, or by header name).
    Every key of either curve is a sample; ``keyed`` is True where both x and y have a key
    (the other is interpolated where only one does). Keys set by an expression cell
    (``{translate.x+center.x x68 0}``) are kept as stored. A track with constant x and y is
    sampled, unkeyed, over the Root frame range.

    Args:
        script: Parsed script.
        node: A Tracker4 node.
        height: Height in pixels of the node's format (``node_format``), for the y flip.
        warnings: Optional list that collects what was skipped.

    Raises:
        NkParseError: The node has no ``tracks`` table or the table is malformed.
    """
    return _guard(
        script, node, "tracks", lambda: _tracker_tracks(script, node, height, warnings)
    )


def _tracker_tracks(
    script: NkScript, node: NkNode, height: float, warnings: Optional[List[str]]
) -> List[LandmarkTrack]:
    tree = knob_tree(script, node, "tracks")

    def fail(message: str) -> NkParseError:
        return NkParseError(
            f"{node.path}: tracks table {message}",
            path=script.path,
            knob="tracks",
            line=node.knob_lines.get("tracks", node.line),
        )

    def note(message: str) -> None:
        text = f"{node.path}: {message}"
        logger.warning("%s", text)
        if warnings is not None:
            warnings.append(text)

    lists = [item for item in tree if isinstance(item, list)]
    if not lists:
        raise fail("is empty")
    info = lists[0]
    body = lists[1:]
    if not all(isinstance(v, str) for v in info):
        raise fail("does not start with its size block '{ 1 31 N }'")
    columns = TRACK_COL_NAME, TRACK_COL_X, TRACK_COL_Y
    if body and _is_track_header(body[0]):
        header = body[0]
        names = [h[3] if len(h) > 3 and isinstance(h[3], str) else "" for h in header]
        lookup = {n: i for i, n in enumerate(names) if isinstance(n, str)}
        columns = (
            lookup.get("name", TRACK_COL_NAME),
            lookup.get("track_x", TRACK_COL_X),
            lookup.get("track_y", TRACK_COL_Y),
        )
        body = body[1:]
    if not body:
        return []
    rows = body[0]
    col_name, col_x, col_y = columns
    tracks: List[LandmarkTrack] = []
    for index, row in enumerate(rows):
        if not isinstance(row, list):
            raise fail(f"row {index + 1} is not a brace list")
        name_cell = row[col_name] if col_name < len(row) else None
        name = name_cell if isinstance(name_cell, str) and name_cell else f"track {index + 1}"
        if max(col_x, col_y) >= len(row):
            note(f"track '{name}' has only {len(row)} cells; no position read")
            tracks.append(LandmarkTrack(name, {}))
            continue
        try:
            cx = parse_anim_curve(row[col_x])
            cy = parse_anim_curve(row[col_y])
        except NkParseError as err:
            raise fail(f"track '{name}': {err.message}") from err
        tracks.append(LandmarkTrack(name, _track_samples(script, name, cx, cy, height, note)))
    return tracks


def _is_track_header(block: List[TreeItem]) -> bool:
    return bool(block) and all(
        isinstance(h, list)
        and len(h) >= 4
        and all(isinstance(v, str) for v in h)
        and _INT_RE.match(str(h[0])) is not None
        for h in block
    )


def _track_samples(
    script: NkScript,
    name: str,
    cx: _Curve,
    cy: _Curve,
    height: float,
    note: Callable[[str], None],
) -> Dict[int, LandmarkSample]:
    samples: Dict[int, LandmarkSample] = {}
    if cx.keys or cy.keys:
        frames = sorted(set(cx.keys) | set(cy.keys))
        keyed_both = set(cx.keys) & set(cy.keys)
        skipped = 0
        for f in frames:
            frame = _frame_of(f)
            x = cx.at(f)
            y = cy.at(f)
            if frame is None or x is None or y is None or not math.isfinite(x + y):
                skipped += 1
                continue
            y_img = coords.y_img_from_nuke(y, height)
            samples[frame] = LandmarkSample(x, y_img, 1.0, f in keyed_both)
        if skipped:
            note(f"track '{name}': skipped {skipped} keys (sub-frame, non-finite or no value)")
        return samples
    if cx.constant is not None and cy.constant is not None:
        if script.frame_range is None or not math.isfinite(cx.constant + cy.constant):
            note(f"track '{name}' is a constant position with no frame range to place it on")
            return samples
        first, last = script.frame_range
        if last - first >= MAX_CONSTANT_TRACK_FRAMES:
            note(f"track '{name}' is a constant position over an implausible range {first}-{last}")
            return samples
        y_img = coords.y_img_from_nuke(cy.constant, height)
        for frame in range(first, last + 1):
            samples[frame] = LandmarkSample(cx.constant, y_img, 1.0, False)
        return samples
    note(f"track '{name}' has no keys (expression without stored values); no samples")
    return samples
