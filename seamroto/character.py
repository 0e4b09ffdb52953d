"""Per-character facts beside the landmark IR: seams and the landmarks on replacement pieces.

Replacement pieces (the mouth) are swapped every frame, so their landmarks are never smoothed or
flow-propagated across frames.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from seamroto.datamodel import Annotation, Seam, tracks_to_array
from seamroto.errors import ModelError
from seamroto.fileio import atomic_write_text

logger = logging.getLogger(__name__)

CHARACTER_SCHEMA = "SeamRotoCharacter.1"
CHARACTER_FILE = "character.json"
# A landmark whose frame-to-frame motion, after removing the face's own motion, is this many
# times the median landmark's is on a replacement piece (the mouth): flow and smoothing skip it.
DISCONTINUOUS_RATIO = 3.0
MIN_NONRIGID_PX = 1.0


@dataclass(frozen=True)
class CharacterInfo:
    """Per-character facts the tracker needs and the card does not: seams and replacement pieces."""

    name: str
    seams: Tuple[Seam, ...]
    discontinuous: Tuple[str, ...]
    training_width: int = 0
    training_height: int = 0

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict with its schema."""
        return {
            "schema": CHARACTER_SCHEMA,
            "name": self.name,
            "seams": {s.name: list(s.landmarks) for s in self.seams},
            "discontinuous": list(self.discontinuous),
            "training_format": [self.training_width, self.training_height],
        }

    @classmethod
    def from_dict(cls, data: Dict[str, Any], path: str = CHARACTER_FILE) -> CharacterInfo:
        """Parse; another schema is refused with a message."""
        if data.get("schema") != CHARACTER_SCHEMA:
            raise ModelError(
                f"character file has schema {data.get('schema')!r}, this version reads {CHARACTER_SCHEMA!r}",
                path=path,
            )
        w, h = data.get("training_format", [0, 0])
        return cls(
            str(data["name"]),
            tuple(Seam(n, tuple(lms)) for n, lms in data.get("seams", {}).items()),
            tuple(data.get("discontinuous", ())),
            int(w),
            int(h),
        )


def write_character(folder: Path, info: CharacterInfo) -> Path:
    """Write ``character.json`` into a model folder (atomically)."""
    return atomic_write_text(Path(folder) / CHARACTER_FILE, json.dumps(info.to_dict(), indent=1) + "\n")


def read_character(folder: Path) -> CharacterInfo:
    """Read ``character.json`` of a model folder."""
    path = Path(folder) / CHARACTER_FILE
    try:
        return CharacterInfo.from_dict(json.loads(path.read_text(encoding="utf-8")), str(path))
    except FileNotFoundError as err:
        raise ModelError("model folder has no character.json; retrain or re-export it", path=str(path)) from err
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ModelError(f"character.json is malformed: {err}", path=str(path)) from err


def _similarity_residual(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-landmark motion a->b left after the best similarity transform. Shape: (L,)."""
    ok = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
    out = np.full(len(a), np.nan)
    if ok.sum() < 3:
        return out
    pa, pb = a[ok], b[ok]
    ma, mb = pa.mean(axis=0), pb.mean(axis=0)
    za = (pa - ma) @ np.array([1, 1j])
    zb = (pb - mb) @ np.array([1, 1j])
    s = np.vdot(za, zb) / max(np.vdot(za, za).real, 1e-12)
    pred = s * za
    out[ok] = np.abs(zb - pred)
    return out


def discontinuous_landmarks(annotations: Sequence[Annotation], names: Sequence[str]) -> Tuple[str, ...]:
    """Landmarks that jump between consecutive frames far more than the face moves them.

    On a replacement-face puppet the mouth is swapped every frame, so its landmarks move
    non-rigidly from one frame to the next while the rest of the face follows the head.
    """
    residuals: List[np.ndarray] = []
    for ann in annotations:
        frames = ann.frames
        arr = tracks_to_array(ann.tracks, names, frames)[..., :2]
        for i in range(len(frames) - 1):
            if frames[i + 1] == frames[i] + 1:
                residuals.append(_similarity_residual(arr[i], arr[i + 1]))
    if not residuals:
        return ()
    med = np.nanmedian(np.array(residuals), axis=0)
    overall = float(np.nanmedian(med))
    limit = max(DISCONTINUOUS_RATIO * overall, MIN_NONRIGID_PX)
    found = tuple(n for n, m in zip(names, med) if np.isfinite(m) and m > limit)
    logger.info("landmarks on replacement pieces (not smoothed across frames): %s", ", ".join(found) or "none")
    return found
