"""The plugin in a real Nuke (``nuke -t``): skipped on machines without Nuke (CI has none)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_DIR = Path(__file__).resolve().parents[2]
SMOKE = Path(__file__).resolve().with_name("smoke_nuke.py")
NUKE_NAMES = ("nuke", "Nuke16.0", "Nuke15.2", "Nuke15.1", "Nuke15.0", "Nuke14.1", "Nuke14.0")
CHARACTER = os.environ.get("SEAMROTO_SMOKE_CHARACTER", "mara")
SMOKE_FRAMES = 6
NUKE_TIMEOUT_S = 900
FRAME_RE = re.compile(r"^(?P<stem>.*?)\.(?P<frame>\d+)\.exr$")


def _nuke() -> str:
    explicit = os.environ.get("NUKE_EXECUTABLE", "")
    if explicit and Path(explicit).is_file():
        return explicit
    for name in NUKE_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Nuke executable (set NUKE_EXECUTABLE or put nuke on PATH)")
    raise AssertionError("unreachable")


def _synthetic_plates(tmp_path: Path) -> tuple:
    out = tmp_path / "shot"
    cmd = [
        sys.executable,
        "-m",
        "seamroto",
        "-q",
        "synth",
        "-o",
        str(out),
        "--frames",
        str(SMOKE_FRAMES),
        "--size",
        "640x360",
        "--formats",
        "exr",
        "--character",
        CHARACTER,
    ]
    subprocess.run(cmd, check=True, timeout=NUKE_TIMEOUT_S, cwd=REPO_DIR)
    frames = sorted(FRAME_RE.match(p.name) for p in (out / "plates").glob("*.exr"))
    matches = [m for m in frames if m]
    stem = matches[0].group("stem")
    numbers = sorted(int(m.group("frame")) for m in matches)
    pad = len(matches[0].group("frame"))
    return str(out / "plates" / f"{stem}.{'#' * pad}.exr"), numbers[0], numbers[-1]


@pytest.mark.nuke
def test_seamroto_tracks_a_synthetic_read_in_nuke(tmp_path: Path) -> None:
    nuke = _nuke()
    models = subprocess.run(
        [sys.executable, "-m", "seamroto", "models", "--json"], capture_output=True, text=True, cwd=REPO_DIR, check=True
    )
    if CHARACTER not in {m["character"] for m in json.loads(models.stdout or "[]")}:
        pytest.skip(f"no model for character {CHARACTER!r} is installed")
    pattern, first, last = _synthetic_plates(tmp_path)
    env = dict(os.environ, NUKE_PATH=str(REPO_DIR), SEAMROTO_LOG_DIR=str(tmp_path / "logs"))
    env.setdefault("SEAMROTO_PYTHON", sys.executable)
    run = subprocess.run(
        [nuke, "-t", str(SMOKE), pattern, str(first), str(last), CHARACTER],
        env=env,
        capture_output=True,
        text=True,
        timeout=NUKE_TIMEOUT_S,
        cwd=tmp_path,
    )
    lines = [line for line in run.stdout.splitlines() if line.startswith("SEAMROTO_SMOKE ")]
    assert run.returncode == 0 and lines, run.stdout[-4000:] + run.stderr[-4000:]
    summary = json.loads(lines[-1][len("SEAMROTO_SMOKE ") :])
    assert summary["input"] == "smoke_plate" and summary["used_model_version"]
    by_class = {}
    for node in summary["nodes"]:
        by_class.setdefault(node["class"], []).append(node)
    for version in (1, 2):
        names = {n["name"] for n in summary["nodes"]}
        assert f"{summary['seamroto']}_backdrop_v{version}" in names
        assert any(n["name"].endswith(f"_v{version}") for n in by_class.get("Tracker4", []))
        assert any(n["name"].endswith(f"_v{version}") for n in by_class.get("Roto", []))
    assert any(n["input"] == summary["seamroto"] for n in summary["nodes"])
