"""``result.json`` (schema SeamRotoResult.1): the contract between tracking and every downstream tool.

Coordinates are in the project convention (origin top-left corner, y down); tangent handles are
absolute positions. Later issues extend it with optional keys only, so old readers keep working.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from seamroto.datamodel import ControlPoint, LandmarkSample, LandmarkTrack, RotoShape, Seam
from seamroto.errors import SeamRotoError
from seamroto.fileio import atomic_write_text

RESULT_SCHEMA = "SeamRotoResult.1"


class ResultFileError(SeamRotoError):
    """A result.json is missing, not JSON, or of another schema."""


@dataclass(frozen=True)
class ModelRef:
    """Which model produced a result, so a farm re-run can reproduce it."""

    name: str
    version: str
    sha256: str


@dataclass(frozen=True)
class TrackResult:
    """Everything ``seamroto track`` found for one shot."""

    width: int
    height: int
    first: int
    last: int
    model: ModelRef
    tracks: Tuple[LandmarkTrack, ...]
    shapes: Tuple[RotoShape, ...]
    flagged_frames: Tuple[int, ...] = ()
    flag_reasons: Mapping[int, str] = field(default_factory=dict)
    shape_flags: Mapping[str, Tuple[int, ...]] = field(default_factory=dict)
    plates: str = ""
    colourspace: str = ""
    seams: Tuple[Seam, ...] = ()
    face_boxes: Mapping[int, Tuple[float, float, float, float]] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)


def _shape_frames(shape: RotoShape) -> Dict[str, List[List[float]]]:
    return {str(f): [[*p.left_abs, p.x, p.y, *p.right_abs] for p in shape.keys[f]] for f in shape.key_frames}


def _shape_feather(shape: RotoShape) -> Optional[Dict[str, List[List[float]]]]:
    if not any(p.feather != (0.0, 0.0) for pts in shape.keys.values() for p in pts):
        return None
    return {str(f): [list(p.feather) for p in shape.keys[f]] for f in shape.key_frames}


def result_to_dict(result: TrackResult) -> Dict[str, Any]:
    """The JSON-ready dict of a result (schema SeamRotoResult.1)."""
    shapes: Dict[str, Any] = {}
    for s in result.shapes:
        entry: Dict[str, Any] = {"closed": s.closed, "frames": _shape_frames(s)}
        entry["layer"] = list(s.layer)
        entry["feather"] = s.feather
        entry["feather_falloff"] = s.feather_falloff
        feather = _shape_feather(s)
        if feather is not None:
            entry["feather_offsets"] = feather
        if s.name in result.shape_flags:
            entry["flagged_frames"] = list(result.shape_flags[s.name])
        shapes[s.name] = entry
    return {
        "schema": RESULT_SCHEMA,
        "format": [result.width, result.height],
        "first": result.first,
        "last": result.last,
        "plates": result.plates,
        "colourspace": result.colourspace,
        "model": {"name": result.model.name, "version": result.model.version, "sha256": result.model.sha256},
        "landmarks": {
            t.name: {str(f): [t.samples[f].x, t.samples[f].y, t.samples[f].confidence] for f in t.frames}
            for t in result.tracks
        },
        "shapes": shapes,
        "seams": {s.name: list(s.landmarks) for s in result.seams},
        "face_boxes": {str(f): list(b) for f, b in sorted(result.face_boxes.items())},
        "flagged_frames": list(result.flagged_frames),
        "flag_reasons": {str(f): r for f, r in sorted(result.flag_reasons.items())},
        **dict(result.extra),
    }


RESULT_INDENT_LEVELS = 2  # keys a reader scans (top level, landmark and shape names) get a line each


def write_result(path: Path, result: TrackResult) -> Path:
    """Write result.json atomically."""
    return atomic_write_text(path, dumps_layered(result_to_dict(result), RESULT_INDENT_LEVELS) + "\n")


def dumps_layered(value: Any, levels: int, depth: int = 0) -> str:
    """JSON with the outer ``levels`` of objects one key per line and everything below compact.

    Why: ``json.dumps(indent=...)`` puts every number of a 100-frame shot on its own line and
    runs the pure-Python encoder (about 0.4 s); this stays readable and uses the C encoder.
    """
    if not isinstance(value, dict) or depth >= levels or not value:
        return json.dumps(value)
    pad = " " * (depth + 1)
    items = [f"{pad}{json.dumps(str(k))}: {dumps_layered(v, levels, depth + 1)}" for k, v in value.items()]
    return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"


def _points_from_rows(rows: Sequence[Sequence[float]], feather: Optional[Sequence[Sequence[float]]]) -> tuple:
    pts = []
    for i, r in enumerate(rows):
        lt_x, lt_y, x, y, rt_x, rt_y = (float(v) for v in r)
        fo = (float(feather[i][0]), float(feather[i][1])) if feather else (0.0, 0.0)
        pts.append(ControlPoint(x, y, (lt_x - x, lt_y - y), (rt_x - x, rt_y - y), fo))
    return tuple(pts)


def result_from_dict(data: Mapping[str, Any], path: str = "result.json") -> TrackResult:
    """Parse a result dict; a wrong schema or missing key raises ResultFileError naming it."""
    if data.get("schema") != RESULT_SCHEMA:
        raise ResultFileError(
            f"schema is {data.get('schema')!r}, this version reads {RESULT_SCHEMA!r}; re-run seamroto track",
            path=path,
        )
    try:
        width, height = (int(v) for v in data["format"])
        tracks = tuple(
            LandmarkTrack(
                name,
                {int(f): LandmarkSample(float(v[0]), float(v[1]), float(v[2])) for f, v in frames.items()},
            )
            for name, frames in data["landmarks"].items()
        )
        shapes = []
        shape_flags: Dict[str, Tuple[int, ...]] = {}
        for name, entry in data["shapes"].items():
            feather = entry.get("feather_offsets", {})
            keys = {int(f): _points_from_rows(rows, feather.get(f)) for f, rows in entry["frames"].items()}
            shapes.append(
                RotoShape(
                    name,
                    bool(entry["closed"]),
                    keys,
                    tuple(entry.get("layer", ())),
                    float(entry.get("feather", 0.0)),
                    float(entry.get("feather_falloff", 1.0)),
                )
            )
            if entry.get("flagged_frames"):
                shape_flags[name] = tuple(int(f) for f in entry["flagged_frames"])
        model = data.get("model", {})
        return TrackResult(
            width=width,
            height=height,
            first=int(data["first"]),
            last=int(data["last"]),
            model=ModelRef(str(model.get("name", "")), str(model.get("version", "")), str(model.get("sha256", ""))),
            tracks=tracks,
            shapes=tuple(shapes),
            flagged_frames=tuple(int(f) for f in data.get("flagged_frames", [])),
            flag_reasons={int(f): str(r) for f, r in data.get("flag_reasons", {}).items()},
            shape_flags=shape_flags,
            plates=str(data.get("plates", "")),
            colourspace=str(data.get("colourspace", "")),
            seams=tuple(Seam(n, tuple(lms)) for n, lms in data.get("seams", {}).items()),
            face_boxes={int(f): tuple(float(v) for v in b) for f, b in data.get("face_boxes", {}).items()},  # type: ignore[misc]
        )
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise ResultFileError(f"malformed result ({err.__class__.__name__}: {err})", path=path) from err


def read_result(path: Path) -> TrackResult:
    """Load a result.json written by ``seamroto track``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ResultFileError("file not found; pass the result.json that seamroto track wrote", path=str(path)) from err
    except json.JSONDecodeError as err:
        raise ResultFileError(f"not valid JSON (line {err.lineno}): {err.msg}", path=str(path)) from err
    return result_from_dict(data, str(path))
