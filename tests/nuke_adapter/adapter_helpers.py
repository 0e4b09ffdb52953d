"""Helpers shared by the adapter tests (node graph set-up and "never touch" snapshots)."""

from __future__ import annotations

import threading
import types
from pathlib import Path
from typing import Any, List

JOB_TIMEOUT_S = 60.0


def wait_for_workers() -> None:
    """Join every SeamRoto worker thread (GUI-mode jobs started by buttons)."""
    for thread in threading.enumerate():
        if thread.name.startswith("seamroto-") and thread is not threading.current_thread():
            thread.join(JOB_TIMEOUT_S)


def make_read(fake: types.ModuleType, tmp_path: Path, name: str = "plate", first: int = 1001, last: int = 1004) -> Any:
    """A Read node on a (not rendered) plate sequence."""
    pattern = tmp_path / "plates" / "sh010.%04d.exr"
    return fake.nodes.Read(name=name, file=str(pattern), first=first, last=last, xpos=0, ypos=0)


def select_only(fake: types.ModuleType, *picked: object) -> None:
    for node in fake.allNodes():
        node.setSelected(node in picked)


def snapshot(fake: types.ModuleType) -> dict:
    """Every knob value of every node in the root, by node name (for "never touch" checks)."""
    out = {}
    for node in fake.allNodes():
        values = {k.name(): repr(k.value()) for k in node.allKnobs()}
        values["<inputs>"] = repr([i.name() if i is not None else None for i in node._inputs])
        out[node.name()] = values
    return out


def new_names(before: dict, fake: types.ModuleType) -> List[str]:
    return sorted(n.name() for n in fake.allNodes() if n.name() not in before)
