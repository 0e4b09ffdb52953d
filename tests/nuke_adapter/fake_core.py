"""Fake core commands for the adapter tests, loaded through ``SEAMROTO_PROTOCOL_PLUGINS``.

They honour the protocol contract (staged output, cancel between frames, structured errors)
and write real paste-ready .nk text with ``seamroto.nk.writer``, so the adapter is tested end
to end, in process and through ``python -m seamroto serve-request``. The character picks the
behaviour: ``broken`` raises a PlateReadError on the second frame, ``crashy`` a plain bug,
``crowd`` emits many nodes. ``SEAMROTO_FAKE_DELAY_S`` slows each frame (cancel tests).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict

import numpy as np

from seamroto.datamodel import LandmarkSample, LandmarkTrack, shape_from_arrays
from seamroto.errors import AnnotationError, CancelledError, OutputExistsError, PlateReadError, ProtocolError
from seamroto.fileio import staged_dir
from seamroto.nk import writer
from seamroto.progress import Progress

DELAY_ENV = "SEAMROTO_FAKE_DELAY_S"
CROWD_EXTRA_NODES = 14
TRACK_REQUIRED = ("plate", "first", "last", "character", "model_dir", "out_dir", "node_prefix", "node_version")


def _need(args: Dict[str, Any], keys: tuple) -> None:
    missing = [k for k in keys if k not in args]
    if missing:
        raise ProtocolError(f"fake core: missing args {missing}")


def _frames(args: Dict[str, Any], progress: Progress, fail_at: int = -1) -> None:
    first, last = int(args["first"]), int(args["last"])
    delay = float(os.environ.get(DELAY_ENV, "0") or 0)
    total = last - first + 1
    for i, frame in enumerate(range(first, last + 1)):
        if progress.cancelled:
            raise CancelledError("cancelled between frames", frame=frame)
        if i == fail_at:
            raise PlateReadError(
                "cannot decode this frame (the file is truncated); re-render or replace it",
                path=str(args["plate"]),
                frame=frame,
            )
        if delay:
            time.sleep(delay)
        progress.update(i + 1, total, f"frame {frame}")


def _shape(first: int, last: int) -> Any:
    base = np.array([[20, 10, -4, 0, 4, 0, 0, 0], [40, 20, 0, -4, 0, 4, 0, 0], [20, 30, 4, 0, -4, 0, 0, 0]], float)
    return shape_from_arrays("eye_L", True, {f: base + (f - first) for f in range(first, last + 1)})


def fake_track(args: Dict[str, Any], progress: Progress) -> Dict[str, Any]:
    _need(args, TRACK_REQUIRED)
    print("a chatty library printed this; it must not reach the protocol stream")
    character = str(args["character"])
    if character == "crashy":
        raise ZeroDivisionError("division by zero in the fake tracker")
    out_dir = Path(args["out_dir"])
    if out_dir.exists():
        raise OutputExistsError("output exists", path=str(out_dir))
    first, last = int(args["first"]), int(args["last"])
    prefix, version = str(args["node_prefix"]), int(args["node_version"])
    with staged_dir(out_dir) as tmp:
        _frames(args, progress, fail_at=1 if character == "broken" else -1)
        samples = {f: LandmarkSample(10.0 + f - first, 12.0) for f in range(first, last + 1)}
        tracks = [LandmarkTrack("eye_L", samples), LandmarkTrack("eye_R", dict(samples))]
        height = int(args.get("height") or 32)
        blocks = [
            writer.write_tracker(tracks, height=height, name=f"{prefix}_tracks_v{version}"),
            writer.write_roto(
                [_shape(first, last)],
                width=int(args.get("width") or 64),
                height=height,
                name=f"{prefix}_roto_v{version}",
                ypos=60,
                connect_input=True,
            ),
        ]
        if character == "crowd":
            blocks += [
                writer.write_node("Dot", f"{prefix}_dot{i}_v{version}", [("ypos", str(120 + 20 * i))])
                for i in range(CROWD_EXTRA_NODES)
            ]
        (tmp / "seamroto.nk").write_text(writer.write_script(blocks), encoding="utf-8")
        (tmp / "result.json").write_text(json.dumps({"args": args, "pid": os.getpid()}), encoding="utf-8")
        (tmp / "report.html").write_text("<html><body>fake report</body></html>", encoding="utf-8")
    return {
        "nk": out_dir / "seamroto.nk",
        "result": out_dir / "result.json",
        "report": out_dir / "report.html",
        "character": character,
        "model_version": args.get("model_version"),
    }


def fake_train(args: Dict[str, Any], progress: Progress) -> Dict[str, Any]:
    _need(args, ("character", "version", "out_dir", "shots", "nk_files"))
    for shot in args["shots"]:
        if not Path(shot["ground_truth_nk"]).is_file():
            raise AnnotationError("ground truth file missing", path=shot["ground_truth_nk"])
    out_dir = Path(args["out_dir"])
    if out_dir.exists():
        raise OutputExistsError("model version exists", path=str(out_dir))
    with staged_dir(out_dir) as tmp:
        for step in range(5):
            if progress.cancelled:
                raise CancelledError("training cancelled")
            progress.update(step + 1, 5, f"epoch {step + 1}")
        card = {"schema": "SeamRotoModelCard.1", "character": args["character"], "version": args["version"]}
        (tmp / "card.json").write_text(json.dumps(card), encoding="utf-8")
        (tmp / "train_args.json").write_text(json.dumps(args), encoding="utf-8")
    return {"model_dir": out_dir, "character": args["character"], "model_version": args["version"]}


def fake_calibrate(args: Dict[str, Any], progress: Progress) -> Dict[str, Any]:
    _need(args, ("model_dir", "out_dir", "shots", "nk_files"))
    if not (Path(args["model_dir"]) / "card.json").is_file():
        raise AnnotationError("no model to calibrate", path=args["model_dir"])
    for shot in args["shots"]:
        if not Path(shot["ground_truth_nk"]).is_file():
            raise AnnotationError("checked shot missing", path=shot["ground_truth_nk"])
    out_dir = Path(args["out_dir"])
    if out_dir.exists():
        raise OutputExistsError("model version exists", path=str(out_dir))
    with staged_dir(out_dir) as tmp:
        progress.update(1, 1, "calibrating")
        card = {"schema": "SeamRotoModelCard.1", "character": out_dir.parent.name, "version": out_dir.name}
        (tmp / "card.json").write_text(json.dumps(card), encoding="utf-8")
        (tmp / "calibrate_args.json").write_text(json.dumps(args), encoding="utf-8")
    summary = ["shot00.nk: before 3 of 48 frames bad, 0 flagged; after 3 of 48 frames bad, 3 flagged"]
    return {"model_dir": out_dir, "character": out_dir.parent.name, "model_version": out_dir.name, "summary": summary}


def fake_refit(args: Dict[str, Any], progress: Progress) -> Dict[str, Any]:
    _need(args, ("tracks_nk", "model_dir", "out_dir", "node_prefix", "node_version"))
    if not Path(args["tracks_nk"]).is_file():
        raise AnnotationError("exported tracks missing", path=args["tracks_nk"])
    out_dir = Path(args["out_dir"])
    prefix, version = str(args["node_prefix"]), int(args["node_version"])
    with staged_dir(out_dir) as tmp:
        progress.update(1, 1, "fitting")
        roto = writer.write_roto(
            [_shape(1001, 1002)], width=64, height=32, name=f"{prefix}_roto_v{version}", connect_input=True
        )
        (tmp / "refit.nk").write_text(writer.write_script([roto]), encoding="utf-8")
        (tmp / "refit_args.json").write_text(json.dumps(args), encoding="utf-8")
    return {"nk": out_dir / "refit.nk"}


def fake_wait_for_cancel(args: Dict[str, Any], progress: Progress) -> Dict[str, Any]:
    """Report progress until cancelled (protocol cancel tests); gives up after ``timeout_s``."""
    deadline = time.monotonic() + float(args.get("timeout_s", 20))
    step = 0
    while time.monotonic() < deadline:
        step += 1
        progress.update(step, 10**6, "waiting")
        if progress.cancelled:
            raise CancelledError("stopped on request")
        time.sleep(0.02)
    return {"timed_out": True}


COMMANDS: Dict[str, Callable[[Dict[str, Any], Progress], Dict[str, Any]]] = {
    "track": fake_track,
    "train": fake_train,
    "calibrate": fake_calibrate,
    "refit": fake_refit,
    "wait_for_cancel": fake_wait_for_cancel,
}


def register_commands(register: Callable[..., Any]) -> None:
    for name, fn in COMMANDS.items():
        register(name, fn, replace=True)
    sys.stderr.write("fake core commands registered\n")
