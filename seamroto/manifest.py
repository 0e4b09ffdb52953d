"""Batch manifests: which shots to track with which character, and which characters to train first.

A manifest is a CSV table (one shot a row) or a YAML/JSON document (shots, plus optional
training and tracking options). Paths resolve against the manifest's own folder, never the
cwd; on a farm worker, the job's path mapping rules are applied to every path first.

CSV columns (header row; ``shot``, ``first``/``last`` or ``frames`` optional; ``#`` rows are comments)::

    shot,plates,frames,character,output
    sh010,plates/sh010.####.exr,1001-1048,mara,out/sh010

YAML (``schema`` optional; ``train`` and ``options`` optional)::

    models: [../models]                    # extra model search folders
    options: {precision: fp32, report: false}
    train:
      - {character: mara, shots: [gt/sh001.nk, gt/sh002.nk], output: models/mara/v1}
    shots:
      - {shot: sh010, plates: plates/sh010.####.exr, frames: 1001-1048, character: mara, output: out/sh010}

``character`` is a model folder, a name (``mara``: its newest version in the first search path that has it),
``name/version``, or the character of a ``train`` entry (then that entry's output is the model).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from seamroto.errors import ManifestError
from seamroto.pathmap import PathMapping

logger = logging.getLogger(__name__)

MANIFEST_SCHEMA = "SeamRotoManifest.1"
CARD_NAME = "card.json"  # seamroto.models.CARD_NAME, repeated so reading a manifest stays import-light
CSV_SUFFIXES = (".csv",)
YAML_SUFFIXES = (".yaml", ".yml")
JSON_SUFFIXES = (".json",)
SHOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
FRAMES_RANGE = re.compile(r"^\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?$")
#: Manifest ``options`` a batch passes to every shot (the rest of TrackOptions is per shot).
OPTION_KEYS = (
    "confidence_threshold",
    "smoothing",
    "seam_band_px",
    "feather_px",
    "precision",
    "report",
    "colourspace",
    "snap_pieces",
)

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class ShotEntry:
    """One shot to track: plates, frames, the resolved model folder and the output folder."""

    name: str
    plates: str
    character: str  # the character's name (as a train entry or the model card names it)
    model_dir: Path
    output: Path
    first: Optional[int] = None
    last: Optional[int] = None


@dataclass(frozen=True)
class TrainEntry:
    """One character to train before its shots are tracked (skipped once its model exists)."""

    character: str
    output: Path
    shots: Tuple[str, ...] = ()
    laika: Tuple[str, ...] = ()
    base_model: Optional[Path] = None
    seed: int = 0
    minutes: Optional[float] = None

    @property
    def needed(self) -> bool:
        """True until the model folder holds a card (training writes it last, atomically)."""
        return not (self.output / CARD_NAME).is_file()


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest with every path absolute and every character resolved to a model folder."""

    path: Path
    shots: Tuple[ShotEntry, ...]
    train: Tuple[TrainEntry, ...] = ()
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def shot(self, name: str) -> ShotEntry:
        """The shot called ``name``.

        Raises:
            ManifestError: No such shot (the message lists a few that exist).
        """
        for s in self.shots:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.shots[:8])
        raise ManifestError(f"no shot named {name!r} in the manifest (it has: {known})", path=str(self.path))

    def characters(self) -> List[str]:
        """Character names in first-seen order (training entries, then shots)."""
        seen: List[str] = []
        for name in [t.character for t in self.train] + [s.character for s in self.shots]:
            if name not in seen:
                seen.append(name)
        return seen

    def to_json(self) -> Dict[str, Any]:
        """A self-contained JSON manifest: absolute paths, models resolved (what a farm job reads)."""

        def opt(v: Any) -> Any:
            return None if v is None else str(v)

        return {
            "schema": MANIFEST_SCHEMA,
            "source": str(self.path),
            "options": dict(self.options),
            "train": [
                {
                    "character": t.character,
                    "output": str(t.output),
                    "shots": list(t.shots),
                    "laika": list(t.laika),
                    "base_model": opt(t.base_model),
                    "seed": t.seed,
                    "minutes": t.minutes,
                }
                for t in self.train
            ],
            "shots": [
                {
                    "shot": s.name,
                    "plates": s.plates,
                    "first": s.first,
                    "last": s.last,
                    "character": s.character,
                    "model": str(s.model_dir),
                    "output": str(s.output),
                }
                for s in self.shots
            ],
        }


def read_manifest(
    path: PathLike,
    *,
    path_mapping: Optional[PathMapping] = None,
    model_paths: Sequence[PathLike] = (),
) -> Manifest:
    """Parse a manifest (by extension: .csv, .yaml/.yml, .json) and resolve every path and model.

    Args:
        path: The manifest file.
        path_mapping: Farm path mapping rules, applied to every path written in the file.
        model_paths: Extra folders to look for characters in (before ``SEAMROTO_MODELS``).

    Raises:
        ManifestError: Unreadable, malformed, duplicate shots or outputs, or an unknown character
            (the message names the row and what to fix).
    """
    p = Path(path).resolve()
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise ManifestError(f"cannot read the manifest ({err})", path=str(p)) from err
    suffix = p.suffix.lower()
    if suffix in CSV_SUFFIXES:
        doc: Mapping[str, Any] = {"shots": _csv_rows(text, p)}
    elif suffix in YAML_SUFFIXES + JSON_SUFFIXES:
        doc = _structured(text, p, suffix)
    else:
        raise ManifestError(
            f"unknown manifest type {suffix!r}; use .csv, .yaml/.yml or .json", path=str(p)
        )
    return _build(doc, p, path_mapping or PathMapping(), model_paths)


def _csv_rows(text: str, where: Path) -> List[Dict[str, Any]]:
    reader = csv.reader(io.StringIO(text))
    header: Optional[List[str]] = None
    rows: List[Dict[str, Any]] = []
    for cells in reader:
        if not cells or not "".join(cells).strip() or cells[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = [c.strip().lower() for c in cells]
            continue
        if len(cells) > len(header):
            raise ManifestError(
                f"{len(cells)} cells but the header has {len(header)} columns", path=str(where), line=reader.line_num
            )
        row: Dict[str, Any] = {k: v.strip() for k, v in zip(header, cells) if v.strip()}
        row["_line"] = reader.line_num
        rows.append(row)
    if header is None:
        raise ManifestError(
            "the CSV manifest is empty; it needs a header row (plates,character,output)", path=str(where)
        )
    return rows


def _structured(text: str, where: Path, suffix: str) -> Mapping[str, Any]:
    if suffix in JSON_SUFFIXES:
        try:
            doc = json.loads(text)
        except ValueError as err:
            raise ManifestError(f"not valid JSON ({err})", path=str(where)) from err
    else:
        try:
            import yaml
        except ImportError as err:
            raise ManifestError("reading YAML manifests needs PyYAML: pip install pyyaml", path=str(where)) from err
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ManifestError(f"not valid YAML ({err})", path=str(where)) from err
    if isinstance(doc, list):
        doc = {"shots": doc}
    if not isinstance(doc, Mapping):
        raise ManifestError("a manifest is a mapping with a 'shots' list (or a list of shots)", path=str(where))
    schema = doc.get("schema", MANIFEST_SCHEMA)
    if schema != MANIFEST_SCHEMA:
        raise ManifestError(f"schema is {schema!r}; this SeamRoto reads {MANIFEST_SCHEMA!r}", path=str(where))
    return doc


class _Resolver:
    """Turns the strings a manifest holds into absolute, mapped paths and model folders."""

    def __init__(self, where: Path, mapping: PathMapping, model_paths: Sequence[PathLike]) -> None:
        self.where = where
        self.base = where.parent
        self.mapping = mapping
        self.model_paths = list(model_paths)
        self._found: Optional[List[Any]] = None
        self._rank: Dict[Path, int] = {}

    def path(self, text: Any, what: str, line: Optional[int]) -> Path:
        if not isinstance(text, str) or not text.strip():
            raise ManifestError(f"{what} is missing or not a path", path=str(self.where), line=line)
        mapped = self.mapping.map(os.path.expanduser(text.strip()))
        p = Path(mapped)
        return p if p.is_absolute() else (self.base / p).resolve()

    def model(self, text: str, trained: Mapping[str, Path], line: Optional[int]) -> Path:
        if text in trained:
            return trained[text]
        candidate = self.path(text, "character", line)
        if (candidate / CARD_NAME).is_file() or candidate in trained.values():
            return candidate
        name, _, version = text.partition("/")
        matches = [m for m in self._models() if m.character == name and (not version or m.version == version)]
        if not matches:
            known = sorted({f"{m.character}/{m.version}" for m in self._models()})
            listed = ", ".join(known[:12]) or "none"
            raise ManifestError(
                f"character {text!r} is neither a model folder nor a model on the search paths "
                f"(found: {listed}); add it to 'models:' or SEAMROTO_MODELS, or give its folder",
                path=str(self.where),
                line=line,
            )
        # the first search path holding the character wins, then its newest version: a studio's
        # own models (manifest, then SEAMROTO_MODELS) are never outranked by the bundled demo one.
        return max(matches, key=lambda m: (-self._rank[m.path], _natural_key(m.version))).path

    def _models(self) -> List[Any]:
        if self._found is None:
            from seamroto.config import model_search_paths
            from seamroto.models import find_models

            self._found, self._rank = [], {}
            for rank, root in enumerate(model_search_paths([str(p) for p in self.model_paths])):
                for entry in find_models([root]):
                    if entry.path not in self._rank:
                        self._rank[entry.path] = rank
                        self._found.append(entry)
        return self._found


def _character_name(written: str, model_dir: Path, train: Sequence[TrainEntry]) -> str:
    """The character's name: a train entry's, else the model card's, else the folder's (for paths)."""
    for t in train:
        if t.character == written or t.output == model_dir:
            return t.character
    try:
        name = json.loads((model_dir / CARD_NAME).read_text(encoding="utf-8")).get("character")
    except (OSError, ValueError, AttributeError):
        name = None
    return str(name) if name else model_dir.parent.name


def _natural_key(text: str) -> Tuple[Any, ...]:
    """``v2`` before ``v10``: digits compare as numbers."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text))


def _frames(row: Mapping[str, Any], where: Path, line: Optional[int]) -> Tuple[Optional[int], Optional[int]]:
    first, last = row.get("first"), row.get("last")
    frames = row.get("frames")
    if frames not in (None, "") and (first not in (None, "") or last not in (None, "")):
        raise ManifestError("give 'frames' or 'first'/'last', not both", path=str(where), line=line)
    out: Tuple[Optional[int], ...]
    try:
        if frames not in (None, ""):
            m = FRAMES_RANGE.match(str(frames))
            if not m:
                raise ValueError(frames)
            out = (int(m.group(1)), int(m.group(2) or m.group(1)))
        else:
            out = tuple(None if v in (None, "") else int(v) for v in (first, last))
    except (TypeError, ValueError):
        raise ManifestError(
            f"frame range {frames or (first, last)!r} is not FIRST-LAST (e.g. 1001-1048)", path=str(where), line=line
        ) from None
    if out[0] is not None and out[1] is not None and out[0] > out[1]:
        raise ManifestError(f"frame range {out[0]}-{out[1]} is empty (first > last)", path=str(where), line=line)
    return out[0], out[1]


def _list(value: Any) -> List[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _build(doc: Mapping[str, Any], where: Path, mapping: PathMapping, model_paths: Sequence[PathLike]) -> Manifest:
    res = _Resolver(where, mapping, ())
    extra_models = [res.path(m, "models", None) for m in _list(doc.get("models"))]
    res.model_paths = [*map(Path, model_paths), *extra_models]
    options = dict(doc.get("options") or {})
    unknown = sorted(set(options) - set(OPTION_KEYS))
    if unknown:
        raise ManifestError(
            f"unknown option(s) {', '.join(unknown)}; known: {', '.join(OPTION_KEYS)}", path=str(where)
        )

    train: List[TrainEntry] = []
    for i, t in enumerate(_list(doc.get("train"))):
        if not isinstance(t, Mapping) or not t.get("character"):
            raise ManifestError(f"train entry {i + 1} needs 'character' and 'output'", path=str(where))
        line = t.get("_line")
        base = t.get("base_model") or t.get("from")
        train.append(
            TrainEntry(
                character=str(t["character"]),
                output=res.path(t.get("output"), f"train entry {i + 1} output", line),
                shots=tuple(str(res.path(s, "training shot", line)) for s in _list(t.get("shots"))),
                laika=tuple(str(res.path(s, "LAIKA folder", line)) for s in _list(t.get("laika"))),
                base_model=None if not base else res.path(base, "base model", line),
                seed=int(t.get("seed") or 0),
                minutes=None if t.get("minutes") is None else float(t["minutes"]),
            )
        )
        if not train[-1].shots and not train[-1].laika:
            raise ManifestError(
                f"train entry {t['character']!r} lists no ground truth ('shots' or 'laika')", path=str(where)
            )
    trained = {t.character: t.output for t in train}
    if len(trained) != len(train):
        raise ManifestError("a character is trained twice; give each character one train entry", path=str(where))

    shots: List[ShotEntry] = []
    rows = _list(doc.get("shots"))
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ManifestError(f"shot {i + 1} is not a mapping of columns", path=str(where))
        line = row.get("_line", None)
        for key in ("plates", "character", "output"):
            if not row.get(key):
                raise ManifestError(
                    f"shot {row.get('shot') or i + 1} has no '{key}'; every shot needs plates, character and output",
                    path=str(where),
                    line=line,
                )
        output = res.path(row["output"], "output", line)
        name = str(row.get("shot") or output.name)
        if not SHOT_NAME.match(name):
            raise ManifestError(
                f"shot name {name!r} must be letters, digits, '.', '_' or '-' (it names log files and farm tasks)",
                path=str(where),
                line=line,
            )
        model = row.get("model")
        model_dir = res.path(model, "model", line) if model else res.model(str(row["character"]), trained, line)
        if model and not (model_dir / CARD_NAME).is_file() and model_dir not in trained.values():
            raise ManifestError(f"model folder {model_dir} has no {CARD_NAME}", path=str(where), line=line)
        character = _character_name(str(row["character"]), model_dir, train)
        first, last = _frames(row, where, line)
        plates = str(res.path(row["plates"], "plates", line))
        shots.append(ShotEntry(name, plates, character, model_dir, output, first, last))
    _check_unique(shots, where)
    logger.info("manifest %s: %d shot(s), %d character(s) to train", where.name, len(shots), len(train))
    return Manifest(where, tuple(shots), tuple(train), options)


def _check_unique(shots: Iterable[ShotEntry], where: Path) -> None:
    names: Dict[str, ShotEntry] = {}
    outputs: Dict[Path, str] = {}
    for s in shots:
        if s.name in names:
            raise ManifestError(f"two shots are named {s.name!r}; shot names must be unique", path=str(where))
        if s.output in outputs:
            raise ManifestError(
                f"shots {outputs[s.output]!r} and {s.name!r} both write {s.output}; give each shot its own output",
                path=str(where),
            )
        names[s.name] = s
        outputs[s.output] = s.name
