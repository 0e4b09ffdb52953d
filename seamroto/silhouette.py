"""Silhouette ``.fxs`` shape export, for studios whose paint crew works in Silhouette.

The layout follows what is known of the format (../shared/reference/nk/FORMAT.md §6, reconstructed
from a public Nuke->Silhouette exporter, not from a real file): a Root layer holding one Shape object
per roto shape, a ``path`` property keyed per frame (frames relative to the session start), and
points written as ``(centre),(left handle),(right handle)`` in Silhouette's normalised space
(unit = image height, origin at the image centre, y down). Feather is not exported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence, Tuple
from xml.sax.saxutils import quoteattr

from seamroto.datamodel import RotoShape
from seamroto.fileio import atomic_write_text
from seamroto.result import TrackResult

INDENT = "  "


def _norm(x: float, y: float, width: int, height: int, pixel_aspect: float) -> Tuple[float, float]:
    """Image px (top-left origin, y down) -> Silhouette units (height units, centre origin, y down)."""
    return ((x - width / 2.0) / height * pixel_aspect, (y - height / 2.0) / height)


def _point_text(shape: RotoShape, frame: int, width: int, height: int, pixel_aspect: float) -> List[str]:
    out = []
    for p in shape.keys[frame]:
        c = _norm(p.x, p.y, width, height, pixel_aspect)
        lt = _norm(*p.left_abs, width, height, pixel_aspect)
        rt = _norm(*p.right_abs, width, height, pixel_aspect)
        out.append("(%.6f,%.6f),(%.6f,%.6f),(%.6f,%.6f)" % (*c, *lt, *rt))
    return out


def _shape_xml(shape: RotoShape, first: int, width: int, height: int, pixel_aspect: float) -> List[str]:
    closed = "True" if shape.closed else "False"
    lines = [
        f'<Object type="Shape" label={quoteattr(shape.name)} shape_type="Bezier" hidden="False" locked="False">',
        f"{INDENT}<Properties>",
        f'{INDENT * 2}<Property constant="True" id="opacity"><Value>100</Value></Property>',
        f'{INDENT * 2}<Property constant="True" id="mode"><Value>Add</Value></Property>',
        f'{INDENT * 2}<Property constant="True" id="invert"><Value>false</Value></Property>',
        f'{INDENT * 2}<Property id="path">',
    ]
    for frame in shape.key_frames:
        lines.append(f'{INDENT * 3}<Key frame="{frame - first}" interp="linear">')
        lines.append(f'{INDENT * 4}<Path closed="{closed}" type="Bezier">')
        lines += [f"{INDENT * 5}<Point>{pt}</Point>" for pt in _point_text(shape, frame, width, height, pixel_aspect)]
        lines.append(f"{INDENT * 4}</Path>")
        lines.append(f"{INDENT * 3}</Key>")
    lines += [f"{INDENT * 2}</Property>", f"{INDENT}</Properties>", "</Object>"]
    return lines


def fxs_text(
    shapes: Sequence[RotoShape], *, width: int, height: int, first: int, last: int, pixel_aspect: float = 1.0
) -> str:
    """The .fxs XML for ``shapes``, grouped into one Silhouette layer per roto layer path."""
    by_layer: Dict[Tuple[str, ...], List[RotoShape]] = {}
    for s in shapes:
        by_layer.setdefault(s.layer, []).append(s)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<Silhouette width="{width}" height="{height}" workRangeStart="{first}" workRangeEnd="{last}" '
        f'sessionStartFrame="{first}">',
        f'{INDENT}<Layer type="Layer" label="Root" expanded="True">',
        f"{INDENT * 2}<Properties>",
        f'{INDENT * 3}<Property id="objects" constant="True" expanded="True">',
    ]
    pad = INDENT * 4
    for layer, members in by_layer.items():
        body: List[str] = []
        for s in members:
            body += _shape_xml(s, first, width, height, pixel_aspect)
        if layer:
            label = quoteattr("/".join(layer))
            lines.append(f'{pad}<Object type="Layer" label={label} expanded="True">')
            lines.append(f'{pad}{INDENT}<Properties><Property id="objects" constant="True" expanded="True">')
            lines += [pad + INDENT * 2 + b for b in body]
            lines.append(f"{pad}{INDENT}</Property></Properties>")
            lines.append(f"{pad}</Object>")
        else:
            lines += [pad + b for b in body]
    lines += [f"{INDENT * 3}</Property>", f"{INDENT * 2}</Properties>", f"{INDENT}</Layer>", "</Silhouette>", ""]
    return "\n".join(lines)


def export_fxs(result: TrackResult, path: Path, pixel_aspect: float = 1.0) -> Path:
    """Write every shape of a tracking result as a Silhouette shape file (atomically)."""
    text = fxs_text(
        result.shapes,
        width=result.width,
        height=result.height,
        first=result.first,
        last=result.last,
        pixel_aspect=pixel_aspect,
    )
    return atomic_write_text(path, text)
