"""The bridge: which interpreter runs the core, and what happens when it misbehaves."""

from __future__ import annotations

import os
import stat
import sys
import types
from pathlib import Path
from typing import List

import pytest


class _Progress:
    def __init__(self) -> None:
        self.updates: List[tuple] = []
        self.cancelled = False

    def update(self, done: int, total: int, message: str = "") -> None:
        self.updates.append((done, total, message))


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_python_is_found_knob_first_then_env_then_the_install_venv(
    sr: types.SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    knob_python = _script(tmp_path / "knob_python", "exit 0")
    env_python = _script(tmp_path / "env_python", "exit 0")
    monkeypatch.setenv("SEAMROTO_PYTHON", str(env_python))
    assert sr.bridge.find_python(str(knob_python)) == knob_python
    assert sr.bridge.find_python("") == env_python
    monkeypatch.delenv("SEAMROTO_PYTHON")
    monkeypatch.setattr(sr.paths, "INSTALL_DIR", tmp_path / "no_install")
    with pytest.raises(sr.errors.BridgeError) as caught:
        sr.bridge.find_python(str(tmp_path / "missing_python"))
    text = str(caught.value)
    assert "knob core_python" in text and "the install's .venv" in text and "INSTALL_NUKE.md" in text


def test_route_prefers_in_process_only_when_nothing_asks_for_a_subprocess(
    sr: types.SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEAMROTO_BRIDGE", "auto")
    sr.bridge.reset()
    assert sr.bridge.choose_route().mode == "inprocess"  # this venv has every core module
    monkeypatch.setenv("SEAMROTO_PYTHON", sys.executable)
    route = sr.bridge.choose_route()
    assert (route.mode, route.python) == ("subprocess", sys.executable)
    monkeypatch.setenv("SEAMROTO_BRIDGE", "sideways")
    with pytest.raises(sr.errors.BridgeError, match="auto, inprocess or subprocess"):
        sr.bridge.choose_route()


def test_auto_falls_back_to_the_subprocess_when_the_core_does_not_import(
    sr: types.SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEAMROTO_BRIDGE", "auto")
    monkeypatch.setitem(sys.modules, "seamroto.protocol", None)
    sr.bridge.reset()
    monkeypatch.setattr(sr.paths, "venv_python", lambda install_dir=None: Path(sys.executable))
    route = sr.bridge.choose_route()
    assert route.mode == "subprocess" and "import seamroto.protocol failed" in route.reason
    sr.bridge.reset()


def test_a_core_that_dies_without_answering_is_a_bridge_error_with_its_output(
    sr: types.SimpleNamespace, tmp_path: Path
) -> None:
    dying = _script(tmp_path / "dying_python", 'echo "ImportError: libopenvino.so.2026 not found" >&2; exit 3')
    with pytest.raises(sr.errors.BridgeError) as caught:
        sr.bridge.run_subprocess(sr.bridge.make_request("about", {}), _Progress(), str(dying))
    assert "code 3" in str(caught.value) and "libopenvino" in str(caught.value)
    assert not caught.value.artist_facing


def test_stray_output_is_ignored_and_progress_is_forwarded(sr: types.SimpleNamespace, tmp_path: Path) -> None:
    talky = _script(
        tmp_path / "talky_python",
        "read request\n"
        'echo "Loading plugins..."\n'
        'echo \'{"schema": "SeamRotoResponse.1", "type": "progress", "done": 1, "total": 2, "message": "half"}\'\n'
        'echo \'{"schema": "SeamRotoResponse.1", "type": "result", "outputs": {"ok": true}}\'',
    )
    progress = _Progress()
    outputs = sr.bridge.run_subprocess(sr.bridge.make_request("about", {}), progress, str(talky))
    assert outputs == {"ok": True} and progress.updates == [(1, 2, "half")]


def test_a_core_that_ignores_cancel_is_terminated(
    sr: types.SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sr.bridge, "CANCEL_GRACE_S", 0.2)
    stubborn = _script(tmp_path / "stubborn_python", "read request\nexec sleep 30")
    progress = _Progress()
    progress.cancelled = True
    with pytest.raises(sr.errors.CancelledByUser):
        sr.bridge.run_subprocess(sr.bridge.make_request("about", {}), progress, str(stubborn))


def test_the_child_environment_drops_nukes_python_settings(
    sr: types.SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONHOME", "/usr/local/Nuke15.1v3/lib/python3.10")
    monkeypatch.setenv("PYTHONPATH", "/usr/local/Nuke15.1v3/plugins")
    env = sr.bridge.child_env()
    assert "PYTHONHOME" not in env and env["PYTHONPATH"] == str(sr.paths.INSTALL_DIR)
    assert env["SEAMROTO_MODELS"] == os.environ["SEAMROTO_MODELS"]


def test_in_process_errors_map_to_adapter_errors(sr: types.SimpleNamespace) -> None:
    with pytest.raises(sr.errors.CoreError) as caught:
        sr.bridge.run_inprocess(sr.bridge.make_request("no_such_command", {}), _Progress())
    assert caught.value.error_class == "ProtocolError" and caught.value.artist_facing
    progress = _Progress()
    progress.cancelled = True
    with pytest.raises(sr.errors.CancelledByUser):
        sr.bridge.run_inprocess(sr.bridge.make_request("about", {}), progress)
