"""Summarise a .nk script for artists and TDs: every node, its roto shapes and tracker tracks.

``inspect_script`` returns plain JSON-ready data (what ``seamroto inspect FILE.nk --json``
prints); ``format_inspect`` renders it as a table. A node whose roto or track data cannot be
read is still listed, with the reason in its ``warnings``.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Sequence, Union

from seamroto.errors import NkParseError
from seamroto.nk.reader import (
    ROTO_CLASSES,
    TRACKER_CLASSES,
    NkNode,
    NkScript,
    node_format,
    read_script,
    roto_shapes,
    tracker_tracks,
)

logger = logging.getLogger(__name__)

# Height used only to satisfy the y flip when a node's format is unknown; inspect reports
# names, point counts and key frames, none of which depend on it.
FALLBACK_HEIGHT = 0.0
NAME_WIDTH = 32
CLASS_WIDTH = 12
FRAME_RUNS_SHOWN = 8


def inspect_script(path: Union[str, os.PathLike[str]]) -> Dict[str, Any]:
    """List every node of a script with its shapes (Roto/RotoPaint) and tracks (Tracker4).

    Returns:
        ``{"nodes": [{"class", "name", "group", "shapes": [{"name", "closed", "points",
        "key_frames"}], "tracks": [{"name", "key_frames"}], "warnings"}], "warnings": [...]}``;
        ``key_frames`` are sorted ints; for tracks they are the frames keyed in both x and y.

    Raises:
        NkParseError: The file cannot be read or is not a Nuke script.
    """
    script = read_script(path)
    return inspect_parsed(script)


def inspect_parsed(script: NkScript) -> Dict[str, Any]:
    """``inspect_script`` for a script already parsed."""
    nodes = [_inspect_node(script, node) for node in script.nodes]
    return {"nodes": nodes, "warnings": [_clean(w) for w in script.warnings]}


def _inspect_node(script: NkScript, node: NkNode) -> Dict[str, Any]:
    warnings: List[str] = []
    shapes: List[Dict[str, Any]] = []
    tracks: List[Dict[str, Any]] = []
    is_roto = node.node_class in ROTO_CLASSES
    is_tracker = node.node_class in TRACKER_CLASSES
    if is_roto or is_tracker:
        fmt = node_format(script, node)
        height = float(fmt.height) if fmt is not None else FALLBACK_HEIGHT
        try:
            if is_roto:
                for shape in roto_shapes(script, node, height, warnings=warnings):
                    shapes.append(
                        {
                            "name": _clean(shape.name),
                            "closed": shape.closed,
                            "points": shape.point_count,
                            "key_frames": shape.key_frames,
                        }
                    )
            if is_tracker:
                for track in tracker_tracks(script, node, height, warnings=warnings):
                    keyed = sorted(f for f, s in track.samples.items() if s.keyed)
                    tracks.append({"name": _clean(track.name), "key_frames": keyed})
        except NkParseError as err:
            warnings.append(str(err))
    if node.truncated:
        warnings.append("the node block is truncated in the file; later knobs are missing")
    return {
        "class": _clean(node.node_class),
        "name": _clean(node.name),
        "group": [_clean(g) for g in node.group],
        "shapes": shapes,
        "tracks": tracks,
        "warnings": [_clean(w) for w in warnings],
    }


def _clean(text: str) -> str:
    r"""Make text safe to print or dump as JSON (non-UTF-8 bytes become ``\xNN``)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _quoted(name: object) -> str:
    return f'"{name}"'


def format_frames(frames: Sequence[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``1-3, 7`` (long lists are cut with a count)."""
    runs: List[str] = []
    i = 0
    fs = sorted(frames)
    while i < len(fs):
        j = i
        while j + 1 < len(fs) and fs[j + 1] == fs[j] + 1:
            j += 1
        runs.append(str(fs[i]) if i == j else f"{fs[i]}-{fs[j]}")
        i = j + 1
    if len(runs) > FRAME_RUNS_SHOWN:
        return ", ".join(runs[:FRAME_RUNS_SHOWN]) + f", ... (+{len(runs) - FRAME_RUNS_SHOWN})"
    return ", ".join(runs) if runs else "none"


def format_inspect(d: Dict[str, Any]) -> str:
    """Render ``inspect_script`` output as a readable table (one row per node, then details)."""
    lines: List[str] = []
    header = f"{'NODE':<{NAME_WIDTH}} {'CLASS':<{CLASS_WIDTH}} CONTENT"
    lines.append(header)
    lines.append("-" * len(header))
    nodes = d.get("nodes", [])
    for node in nodes:
        path = ".".join([*node.get("group", []), node.get("name", "")])
        shapes = node.get("shapes", [])
        tracks = node.get("tracks", [])
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} shape{'s' if len(shapes) != 1 else ''}")
        if tracks:
            parts.append(f"{len(tracks)} track{'s' if len(tracks) != 1 else ''}")
        row = f"{path:<{NAME_WIDTH}} {node.get('class', ''):<{CLASS_WIDTH}} {', '.join(parts)}"
        lines.append(row.rstrip())
        for s in shapes:
            keys = s.get("key_frames", [])
            lines.append(
                f"  shape {_quoted(s.get('name', '')):<{NAME_WIDTH - 8}} "
                f"{'closed' if s.get('closed') else 'open'}, {s.get('points', 0)} points, "
                f"{len(keys)} key{'s' if len(keys) != 1 else ''}: {format_frames(keys)}"
            )
        for t in tracks:
            keys = t.get("key_frames", [])
            lines.append(
                f"  track {_quoted(t.get('name', '')):<{NAME_WIDTH - 8}} "
                f"{len(keys)} key{'s' if len(keys) != 1 else ''}: {format_frames(keys)}"
            )
        for w in node.get("warnings", []):
            lines.append(f"  ! {w}")
    shape_count = sum(len(n.get("shapes", [])) for n in nodes)
    track_count = sum(len(n.get("tracks", [])) for n in nodes)
    lines.append("")
    lines.append(f"{len(nodes)} nodes, {shape_count} shapes, {track_count} tracks")
    warnings = d.get("warnings", [])
    if warnings:
        lines.append(f"warnings ({len(warnings)}):")
        lines.extend(f"  {w}" for w in warnings)
    return "\n".join(lines)
