"""The torch-free half of learning a character: roto rig, face appearance and character facts.

``training.character`` adds the landmark network on top; ``seamroto train --rig-only`` stops
here (for ground truth without usable images, such as the public LAIKA JSON).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from seamroto.character import CharacterInfo, discontinuous_landmarks, write_character
from seamroto.datamodel import Annotation, Seam, tracks_to_array
from seamroto.errors import AnnotationError
from seamroto.fileio import next_free_dir, staged_dir
from seamroto.progress import NullProgress, Progress

logger = logging.getLogger(__name__)

FACE_SEARCH_DOWNSCALE = 4  # the face model is learned and searched on quarter-resolution frames
FACE_SAMPLES_PER_SHOT = 12
SEAM_PREFIX = "seam"
RIG_CARD = "rig_card.json"
RIG_CARD_SCHEMA = "SeamRotoRigCard.1"


@dataclass(frozen=True)
class Parts:
    """The torch-free parts of a character model folder."""

    rig: object  # seamroto.rig.Rig
    face_model: Optional[object]  # seamroto.face.FaceModel, None without images
    info: CharacterInfo


def landmark_names(annotations: Sequence[Annotation]) -> List[str]:
    """Every landmark name, in first-seen order across the annotations."""
    seen: List[str] = []
    for ann in annotations:
        for t in ann.tracks:
            if t.name not in seen:
                seen.append(t.name)
    if not seen:
        raise AnnotationError("the ground truth has no landmark tracks; a character needs named landmarks")
    return seen


def seams_from_names(names: Sequence[str]) -> Tuple[Seam, ...]:
    """Seams from landmark names: ``seam_0..seam_K`` (one seam) or ``<seam>_0..`` groups.

    Landmarks named ``seam_<i>`` form the seam ``seam``; ``left_seam_<i>`` form ``left_seam``.
    """
    groups: dict[str, List[Tuple[int, str]]] = {}
    for n in names:
        stem, _, idx = n.rpartition("_")
        if SEAM_PREFIX in stem and idx.isdigit():
            groups.setdefault(stem, []).append((int(idx), n))
    return tuple(
        Seam(stem, tuple(n for _, n in sorted(members))) for stem, members in groups.items() if len(members) >= 2
    )


def _face_samples(annotations: Sequence[Annotation], names: Sequence[str]) -> Iterator[Tuple[np.ndarray, tuple]]:
    """(quarter-res model-space frame, landmark box / 4) for a spread of annotated frames."""
    from seamroto.colour import colourspace_for, to_model_space
    from seamroto.face import box_from_landmarks
    from seamroto.plates import expand_pattern, read_frame

    for ann in annotations:
        frames = [f for f in ann.frames]
        if not frames or (ann.shot is None and not ann.images):
            continue
        step = max(1, len(frames) // FACE_SAMPLES_PER_SHOT)
        arr = tracks_to_array(ann.tracks, names, frames)[..., :2]
        for i in range(0, len(frames), step):
            f = frames[i]
            path = ann.images.get(f) if ann.images else expand_pattern(ann.shot.plates, f)  # type: ignore[union-attr]
            if path is None:
                continue
            space = (ann.shot.colourspace if ann.shot and ann.shot.colourspace else "") or colourspace_for(path)
            img = read_frame(path)
            h, w = img.shape[:2]
            small = cv2.resize(
                img, (w // FACE_SEARCH_DOWNSCALE, h // FACE_SEARCH_DOWNSCALE), interpolation=cv2.INTER_AREA
            )
            box = box_from_landmarks(arr[i] / FACE_SEARCH_DOWNSCALE)
            if box.found:
                yield to_model_space(small, space), box.as_tuple()


def learn_parts(
    name: str, annotations: Sequence[Annotation], *, with_face: bool = True, progress: Optional[Progress] = None
) -> Parts:
    """Learn the rig (always), the face model (when frames have images) and the character facts."""
    from seamroto.face import learn_face_model
    from seamroto.rig import learn_rig

    progress = progress or NullProgress()
    names = landmark_names(annotations)
    progress.update(0, 3, "learning the roto rig")
    rig = learn_rig(annotations, names)
    for s in rig.shapes:
        logger.info(
            "rig %s: %d points from %d landmarks %s",
            s.name,
            s.k,
            len(s.landmarks),
            json.dumps({k: round(v, 3) for k, v in s.stats.items()}),
        )
    face_model = None
    if with_face:
        progress.update(1, 3, "learning the face appearance")
        samples = list(_face_samples(annotations, names))
        if samples:
            face_model = learn_face_model(samples)
    widths = [a.shot.width for a in annotations if a.shot is not None]
    heights = [a.shot.height for a in annotations if a.shot is not None]
    info = CharacterInfo(
        name,
        seams_from_names(names),
        discontinuous_landmarks(annotations, names),
        int(np.median(widths)) if widths else 0,
        int(np.median(heights)) if heights else 0,
    )
    progress.update(2, 3, "character facts")
    return Parts(rig, face_model, info)


def write_parts(folder: Path, parts: Parts) -> List[Path]:
    """Write rig, face model and character.json into a (staged) model folder."""
    from seamroto.face import write_face_model

    paths = list(parts.rig.save(folder))  # type: ignore[attr-defined]
    if parts.face_model is not None:
        paths.append(Path(write_face_model(parts.face_model, folder)))  # type: ignore[arg-type]
    paths.append(write_character(folder, parts.info))
    return paths


def train_rig_only(
    name: str, annotations: Sequence[Annotation], output: Path, *, progress: Optional[Progress] = None
) -> Path:
    """A rig-only model folder (rig + character facts + a card of hashes); enough for ``refit``."""
    from seamroto.models import file_sha256

    parts = learn_parts(name, annotations, with_face=False, progress=progress)
    target = next_free_dir(output)
    with staged_dir(target) as tmp:
        write_parts(tmp, parts)
        files = {p.name: file_sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        card = {
            "schema": RIG_CARD_SCHEMA,
            "character": name,
            "version": target.name,
            "landmarks": list(parts.rig.landmark_names),  # type: ignore[attr-defined]
            "shapes": {s.name: dict(s.stats) for s in parts.rig.shapes},  # type: ignore[attr-defined]
            "sources": [a.source for a in annotations],
            "files": files,
        }
        (tmp / RIG_CARD).write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    logger.info("rig-only model written: %s", target)
    return target
