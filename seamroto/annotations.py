"""Ground truth for training from the artists' own Nuke scripts (Read + Tracker4 + Roto).

A shot script holds one Read node (the plates), Tracker4 tracks named by landmark, and Roto or
RotoPaint shapes. LAIKA-format folders come in through ``seamroto.laika`` and end up the same type.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Dict, List, Sequence, Union

from seamroto.datamodel import Annotation, LandmarkTrack, RotoShape, Shot
from seamroto.errors import AnnotationError, NkNodeNotFoundError
from seamroto.nk import reader

logger = logging.getLogger(__name__)

TRACKER_CLASSES = ("Tracker4",)
ROTO_CLASSES = ("Roto", "RotoPaint")


def load_nk_annotation(path: Union[str, Path]) -> Annotation:
    """Read one ground-truth script: the plates it points at, every landmark track and shape.

    Raises:
        NkNodeNotFoundError: the script has no Read node, or neither tracks nor shapes.
        AnnotationError: two tracks share a landmark name.
    """
    path = Path(path)
    script = reader.read_script(path)
    read = reader.find_node(script, node_class="Read")
    shot = _with_colourspace(reader.read_node_shot(script, read))
    tracks: Dict[str, LandmarkTrack] = {}
    shapes: List[RotoShape] = []
    for node in script.nodes:
        if node.node_class in TRACKER_CLASSES:
            for track in reader.tracker_tracks(script, node, shot.height):
                if track.name in tracks:
                    raise AnnotationError(
                        f"landmark '{track.name}' is tracked twice (again in {node.name}); "
                        "give every landmark one track",
                        path=str(path),
                    )
                tracks[track.name] = track
        elif node.node_class in ROTO_CLASSES:
            shapes.extend(reader.roto_shapes(script, node, shot.height))
    if not tracks and not shapes:
        raise NkNodeNotFoundError(
            "no Tracker4 tracks and no Roto shapes: a training shot needs the artists' tracks "
            "(one Tracker4 track per landmark) and/or their Roto shapes",
            path=str(path),
        )
    logger.info("%s: %d landmarks, %d shapes, frames %d-%d", path.name, len(tracks), len(shapes), shot.first, shot.last)
    return Annotation(str(path), shot, tuple(tracks.values()), tuple(shapes))


# Nuke's own (pre-OCIO) colorspace knob values, as Read nodes store them.
NUKE_COLOURSPACES = {"linear": "Linear Rec.709 (sRGB)", "srgb": "sRGB Encoded Rec.709 (sRGB)", "raw": "Raw"}


def _with_colourspace(shot: Shot) -> Shot:
    """Resolve the Read node's colorspace (Nuke names, OCIO names, or none: by file type)."""
    from seamroto.colour import colourspace_for

    name = shot.colourspace.strip()
    mapped = NUKE_COLOURSPACES.get(name.lower(), name) if name else colourspace_for(shot.plates)
    return dataclasses.replace(shot, colourspace=mapped)


def load_annotations(shots: Sequence[Union[str, Path]], laika: Sequence[Union[str, Path]] = ()) -> List[Annotation]:
    """Every ground-truth source a ``train`` command names, in order."""
    out = [load_nk_annotation(p) for p in shots]
    if laika:
        from seamroto.laika import load_laika

        for folder in laika:
            out.extend(load_laika(folder))
    if not out:
        raise AnnotationError("no ground truth given: pass --shot GT.nk (repeat) or --laika DIR")
    return out
