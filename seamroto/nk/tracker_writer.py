"""Write Tracker4 nodes: one track per landmark in the 31-column ``tracks`` table Nuke 8-15 saves.

The table header is the one every Nuke since 8.0 writes byte for byte (FORMAT.md section 3);
positions leave ``_img`` space (y down) for Nuke space (y up) through ``seamroto.coords`` only.
"""

from __future__ import annotations

import logging
import math
from typing import List, Optional, Sequence, Tuple

from seamroto.coords import y_nuke_from_img
from seamroto.datamodel import LandmarkTrack
from seamroto.errors import NkWriteError
from seamroto.nk.anim_writer import EMPTY_CURVE, _track_curve
from seamroto.nk.escaping import _checked_node_name, quote_string
from seamroto.nk.numbers import format_decimal
from seamroto.nk.script_writer import _decimal, _float32, write_node

logger = logging.getLogger(__name__)

# ---- Tracker4 tracks table (FORMAT.md §3) ----
TRACKER_COLUMNS = 31
TRACKER_HEADER_CELLS: Tuple[str, ...] = (
    "{ 5 1 20 enable e 1 }",
    "{ 3 1 75 name name 1 }",
    "{ 2 1 58 track_x track_x 1 }",
    "{ 2 1 58 track_y track_y 1 }",
    "{ 2 1 63 offset_x offset_x 1 }",
    "{ 2 1 63 offset_y offset_y 1 }",
    "{ 4 1 27 T T 1 }",
    "{ 4 1 27 R R 1 }",
    "{ 4 1 27 S S 1 }",
    "{ 2 0 45 error error 1 }",
    "{ 1 1 0 error_min error_min 1 }",
    "{ 1 1 0 error_max error_max 1 }",
    "{ 1 1 0 pattern_x pattern_x 1 }",
    "{ 1 1 0 pattern_y pattern_y 1 }",
    "{ 1 1 0 pattern_r pattern_r 1 }",
    "{ 1 1 0 pattern_t pattern_t 1 }",
    "{ 1 1 0 search_x search_x 1 }",
    "{ 1 1 0 search_y search_y 1 }",
    "{ 1 1 0 search_r search_r 1 }",
    "{ 1 1 0 search_t search_t 1 }",
    "{ 2 1 0 key_track key_track 1 }",
    "{ 2 1 0 key_search_x key_search_x 1 }",
    "{ 2 1 0 key_search_y key_search_y 1 }",
    "{ 2 1 0 key_search_r key_search_r 1 }",
    "{ 2 1 0 key_search_t key_search_t 1 }",
    "{ 2 1 0 key_track_x key_track_x 1 }",
    "{ 2 1 0 key_track_y key_track_y 1 }",
    "{ 2 1 0 key_track_r key_track_r 1 }",
    "{ 2 1 0 key_track_t key_track_t 1 }",
    "{ 2 1 0 key_centre_offset_x key_centre_offset_x 1 }",
    "{ 2 1 0 key_centre_offset_y key_centre_offset_y 1 }",
)
TRACK_TRS_FLAGS = ("1", "0", "0")  # the track drives translate, not rotate/scale
# Pattern box relative to the track point and search margins added to it (x, y, r, t), in pixels.
DEFAULT_PATTERN_BOX: Tuple[float, float, float, float] = (-15.0, -15.0, 15.0, 15.0)
DEFAULT_SEARCH_BOX: Tuple[float, float, float, float] = (-21.0, -21.0, 21.0, 21.0)

Box = Tuple[float, float, float, float]


def _key_curve(frame: int, value: float) -> str:
    return "{curve x%d %s}" % (frame, format_decimal(value))


def _key_cells(frame: int, x_nuke: float, y_nuke: float, pattern: Box, search: Box) -> List[str]:
    """Keyframe boxes as Nuke leaves them after tracking from ``frame`` (13.2/14.1 samples).

    Integer pattern box around the float32 track point (right/top inclusive), search box grown by
    the margins, and the point's offset from the box corner pixel centre.
    """
    try:
        x32, y32 = _float32(x_nuke), _float32(y_nuke)
    except OverflowError as err:
        raise NkWriteError(
            f"track position ({x_nuke}, {y_nuke}) on frame {frame} is out of range", knob="tracks"
        ) from err
    kx = math.floor(x32 + pattern[0] + 0.5)
    ky = math.floor(y32 + pattern[1] + 0.5)
    kr = math.floor(x32 + pattern[2] + 0.5) - 1
    kt = math.floor(y32 + pattern[3] + 0.5) - 1
    sx = math.floor(kx + search[0] + 0.5)
    sy = math.floor(ky + search[1] + 0.5)
    sr = math.floor(kr + search[2] + 0.5)
    st = math.floor(kt + search[3] + 0.5)
    cells = [_key_curve(frame, v) for v in (sx, sy, sr, st, kx, ky, kr, kt)]
    cells += [_key_curve(frame, x32 - kx - 0.5), _key_curve(frame, y32 - ky - 0.5)]
    return cells


def _track_row(
    track: LandmarkTrack,
    height: float,
    enable_frame: int,
    frame_range: Tuple[Optional[int], Optional[int]],
    pattern: Box,
    search: Box,
) -> List[str]:
    lo, hi = frame_range
    frames = [
        f for f in track.frames if (lo is None or f >= lo) and (hi is None or f <= hi)
    ]
    xs = [(f, track.samples[f].x) for f in frames]
    ys = [(f, y_nuke_from_img(track.samples[f].y, height)) for f in frames]
    # Nuke's error is 0 for a perfect match; ours is a confidence in 0..1.
    errors = [(f, min(1.0, max(0.0, 1.0 - track.samples[f].confidence))) for f in frames]
    err_values = [e for _, e in errors] or [0.0]
    what = f"track {track.name!r}"
    cells = [
        f"{{curve K x{enable_frame} 1}}",
        quote_string(track.name),
        _track_curve(xs, what + " x"),
        _track_curve(ys, what + " y"),
        f"{{curve K x{enable_frame} 0}}",
        f"{{curve K x{enable_frame} 0}}",
        *TRACK_TRS_FLAGS,
        _track_curve(errors, what + " error"),
        "%g" % min(err_values),
        "%g" % max(err_values),
        *(_decimal(v, what + " pattern") for v in pattern),
        *(_decimal(v, what + " search") for v in search),
        EMPTY_CURVE,
    ]
    if frames:
        cells += _key_cells(frames[0], xs[0][1], ys[0][1], pattern, search)
    else:
        cells += [EMPTY_CURVE] * (TRACKER_COLUMNS - len(cells))
    assert len(cells) == TRACKER_COLUMNS
    return cells


def tracks_knob_value(rows: Sequence[Sequence[str]]) -> str:
    """The ``tracks`` knob text: ``{ 1 31 N }``, the 31-column header, one line per row.

    Spacing (trailing spaces, two spaces before a row's closing brace, the blank line after the
    knob) is the one Nuke 13.2 and 14.1 write.
    """
    lines = [f"{{ {{ 1 {TRACKER_COLUMNS} {len(rows)} }} "]
    lines.append("{ " + TRACKER_HEADER_CELLS[0] + " ")
    lines += [cell + " " for cell in TRACKER_HEADER_CELLS[1:]]
    lines += ["} ", "{ "]
    lines += [" { " + "".join(cell + " " for cell in row) + " } " for row in rows]
    lines += ["} ", "}"]
    return "\n".join(lines) + "\n"


def write_tracker(
    tracks: Sequence[LandmarkTrack],
    *,
    height: float,
    name: str = "Tracker1",
    xpos: int = 0,
    ypos: int = 0,
    first: Optional[int] = None,
    last: Optional[int] = None,
    width: Optional[float] = None,
    pattern_box: Box = DEFAULT_PATTERN_BOX,
    search_box: Box = DEFAULT_SEARCH_BOX,
    connect_input: bool = True,
) -> str:
    """A Tracker4 node with one track per landmark, every sample baked as a per-frame value.

    Args:
        tracks: Landmark tracks (``_img`` space); names are written escaped, duplicates allowed.
        height: Plate height in pixels (for the y flip).
        name: Node name (sanitized).
        xpos: Node-graph x.
        ypos: Node-graph y.
        first: First frame kept and the frame of the enable/offset keys and ``reference_frame``;
            default: the earliest sample.
        last: Last frame kept; default: no limit.
        width: Plate width; accepted for symmetry with ``write_roto`` (Tracker4 takes its format
            from its input, so nothing is written).
        pattern_box: Pattern box relative to the track point (x, y, r, t), pixels.
        search_box: Search margins added to the pattern box (x, y, r, t), pixels.
        connect_input: False writes ``inputs 0``; True takes the node above on the stack.

    Returns:
        The node block.
    """
    del width
    if first is None:
        starts = [t.frames[0] for t in tracks if t.samples]
        first = min(starts) if starts else 1
    rows = [
        _track_row(t, height, first, (first, last), pattern_box, search_box) for t in tracks
    ]
    knobs: List[Tuple[str, str]] = []
    if not connect_input:
        knobs.append(("inputs", "0"))
    knobs += [
        ("tracks", tracks_knob_value(rows)),
        ("reference_frame", str(first)),
        ("xpos", str(int(xpos))),
        ("ypos", str(int(ypos))),
    ]
    return write_node("Tracker4", _checked_node_name(name), knobs)
