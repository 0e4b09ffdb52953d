"""Fake ``motion2roto`` and ``bbox`` core commands for the motion-tool adapter tests.

Loaded through ``SEAMROTO_PROTOCOL_PLUGINS`` next to ``fake_core.py``. They check what the
adapter must send, honour the staged-output and cancel contract, and write real paste-ready
.nk text (a Roto, a Tracker4) with ``seamroto.nk.writer``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, Dict

import numpy as np

from seamroto.datamodel import LandmarkSample, LandmarkTrack, shape_from_arrays
from seamroto.errors import CancelledError, NkNodeNotFoundError, OutputExistsError, ProtocolError
from seamroto.fileio import staged_dir
from seamroto.nk import writer
from seamroto.progress import Progress

FLAGGED = [1002, 1003]
M2R_REQUIRED = ("plate", "first", "last", "script", "roto_node", "shapes", "vectors", "out_dir", "node_prefix",
                "node_version")
BBOX_REQUIRED = ("plate", "first", "last", "frame", "box_nuke", "out_dir", "node_prefix", "node_version")


def _need(args: Dict[str, Any], keys: tuple) -> None:
    missing = [k for k in keys if k not in args]
    if missing:
        raise ProtocolError(f"fake core: missing args {missing}")


def _frames(args: Dict[str, Any], progress: Progress) -> None:
    first, last = int(args["first"]), int(args["last"])
    for i, frame in enumerate(range(first, last + 1)):
        if progress.cancelled:
            raise CancelledError("cancelled between frames", frame=frame)
        progress.update(i + 1, last - first + 1, f"frame {frame}")


def _new_dir(args: Dict[str, Any]) -> Path:
    out_dir = Path(args["out_dir"])
    if out_dir.exists():
        raise OutputExistsError("output exists", path=str(out_dir))
    return out_dir


def fake_motion2roto(args: Dict[str, Any], progress: Progress) -> Dict[str, Any]:
    _need(args, M2R_REQUIRED)
    script = Path(args["script"])
    text = script.read_text(encoding="utf-8") if script.is_file() else ""
    if f"name {args['roto_node']}" not in text:
        raise NkNodeNotFoundError(f"no node {args['roto_node']!r} in the exported script", path=str(script))
    out_dir = _new_dir(args)
    prefix, version = str(args["node_prefix"]), int(args["node_version"])
    first, last = int(args["first"]), int(args["last"])
    with staged_dir(out_dir) as tmp:
        _frames(args, progress)
        base = np.array([[20, 10, -4, 0, 4, 0, 0, 0], [40, 20, 0, -4, 0, 4, 0, 0], [20, 30, 4, 0, -4, 0, 0, 0]], float)
        shape = shape_from_arrays("eye_L", True, {f: base + (f - first) for f in range(first, last + 1)})
        roto = writer.write_roto([shape], width=64, height=32, name=f"{prefix}_roto_v{version}")
        (tmp / "motion2roto.nk").write_text(writer.write_script([roto]), encoding="utf-8")
        (tmp / "motion2roto.json").write_text(json.dumps({"args": args, "script": text}), encoding="utf-8")
    return {"nk": out_dir / "motion2roto.nk", "report": out_dir / "motion2roto.json", "flagged_frames": FLAGGED}


def fake_bbox(args: Dict[str, Any], progress: Progress) -> Dict[str, Any]:
    _need(args, BBOX_REQUIRED)
    out_dir = _new_dir(args)
    prefix, version = str(args["node_prefix"]), int(args["node_version"])
    first, last = int(args["first"]), int(args["last"])
    with staged_dir(out_dir) as tmp:
        _frames(args, progress)
        samples = {f: LandmarkSample(10.0 + f - first, 12.0) for f in range(first, last + 1)}
        tracks = [LandmarkTrack(n, dict(samples)) for n in ("box_top_left", "box_centre")]
        node = writer.write_tracker(tracks, height=32, name=f"{prefix}_box_v{version}")
        (tmp / "bbox.nk").write_text(writer.write_script([node]), encoding="utf-8")
        (tmp / "bbox.json").write_text(json.dumps({"args": args}), encoding="utf-8")
    return {"nk": out_dir / "bbox.nk", "result": out_dir / "bbox.json", "flagged_frames": []}


COMMANDS: Dict[str, Callable[[Dict[str, Any], Progress], Dict[str, Any]]] = {
    "motion2roto": fake_motion2roto,
    "bbox": fake_bbox,
}


def register_commands(register: Callable[..., Any]) -> None:
    for name, fn in COMMANDS.items():
        register(name, fn, replace=True)
    sys.stderr.write("fake motion commands registered\n")
