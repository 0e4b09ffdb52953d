"""What a batch has already done: shot digests, done markers, output versions, stale staged folders.

A shot is done when one of its output folders (``out/sh010``, or a later ``out/sh010_vN``) holds a
``.seamroto_done.json`` marker whose digest matches the shot's inputs now. The digest covers:

- every plate file of the frame range, by name, size and modification time (or, with
  ``hash_plates``, by sha256 of the content, for storage that rewrites mtimes). Stat rather than
  hashes by default, because hashing 2,000 shots of 2K EXRs would read terabytes just to decide
  what to skip;
- the model, by the sha256 of its ``card.json`` (which holds the sha256 of every model file);
- the tracking options and the frame range.

Plate folders are not part of it (only file names), so a re-run through other mount points
(farm path mapping) still recognises finished shots.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from seamroto.fileio import VERSION_SUFFIX
from seamroto.manifest import ShotEntry

logger = logging.getLogger(__name__)

DONE_MARKER = ".seamroto_done.json"
DONE_SCHEMA = "SeamRotoBatchDone.1"
DIGEST_SCHEMA = "SeamRotoBatchDigest.1"
PARTIAL_SUFFIX = ".partial"  # fileio.staged_dir's hidden temp folders


@dataclass(frozen=True)
class ShotDigest:
    """What a shot's result depends on, hashed (see the module docstring)."""

    digest: str
    first: int
    last: int
    model_card_sha256: str


def shot_digest(shot: ShotEntry, options: Any, *, hash_plates: bool = False) -> ShotDigest:
    """Digest of a shot's inputs now (plates, model card, options, frame range).

    Raises:
        PlateError: The plates are missing or have gaps in the range.
        ModelError: The model folder has no card.
    """
    from seamroto.errors import ModelError
    from seamroto.models import CARD_NAME, file_sha256
    from seamroto.plates import check_sequence, expand_pattern, scan_sequence

    first, last = shot.first, shot.last
    if first is None or last is None:
        lo, hi, _ = scan_sequence(shot.plates)
        first = lo if first is None else first
        last = hi if last is None else last
    plates: List[List[Any]] = []
    for frame in check_sequence(shot.plates, first, last):
        path = expand_pattern(shot.plates, frame)
        if hash_plates:
            plates.append([os.path.basename(path), file_sha256(path)])
        else:
            st = os.stat(path)
            plates.append([os.path.basename(path), st.st_size, st.st_mtime_ns])
    card = shot.model_dir / CARD_NAME
    if not card.is_file():
        raise ModelError(
            f"the model of character {shot.character!r} is not there yet (no {CARD_NAME}); train it first "
            "(run the batch without --no-train, or let the farm job's Train step finish)",
            path=str(shot.model_dir),
        )
    card_sha = file_sha256(card)
    opts = {**dataclasses.asdict(options), "first": first, "last": last}
    doc = {"schema": DIGEST_SCHEMA, "plates": plates, "model_card_sha256": card_sha, "options": opts}
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode("utf-8")).hexdigest()
    return ShotDigest(digest, first, last, card_sha)


def output_versions(output: Path) -> List[Path]:
    """``output`` and its ``_vN`` siblings that exist, oldest first."""
    m = VERSION_SUFFIX.match(output.name)
    stem = m.group("stem") if m else output.name
    pattern = re.compile(rf"^{re.escape(stem)}(?:_v(\d+))?$")
    found: List[Tuple[int, Path]] = []
    if output.parent.is_dir():
        for p in output.parent.iterdir():
            hit = pattern.match(p.name)
            if hit and p.is_dir():
                found.append((int(hit.group(1) or 1), p))
    return [p for _, p in sorted(found)]


def read_marker(folder: Path) -> Optional[Dict[str, Any]]:
    """A folder's done marker, or None (absent, unreadable or of another schema)."""
    try:
        doc = json.loads((folder / DONE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("schema") == DONE_SCHEMA else None


def find_done(output: Path, digest: str) -> Optional[Tuple[Path, Dict[str, Any]]]:
    """The newest output version whose marker matches ``digest``, with the marker."""
    for folder in reversed(output_versions(output)):
        marker = read_marker(folder)
        if marker is not None and marker.get("digest") == digest:
            return folder, marker
    return None


def remove_stale_partials(output: Path) -> List[Path]:
    """Delete hidden staged folders a killed run left for ``output`` (or its versions)."""
    m = VERSION_SUFFIX.match(output.name)
    stem = m.group("stem") if m else output.name
    pattern = re.compile(rf"^\.{re.escape(stem)}(?:_v\d+)?\..*{re.escape(PARTIAL_SUFFIX)}$")
    removed = []
    if output.parent.is_dir():
        for p in output.parent.iterdir():
            if pattern.match(p.name) and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    for p in removed:
        logger.info("removed %s, left by an interrupted run", p)
    return removed
