"""The host <-> core protocol: requests, the command registry, and the JSON-lines server."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from seamroto import protocol
from seamroto.errors import CancelledError, PlateReadError, ProtocolError

SERVE = [sys.executable, "-m", "seamroto", "serve-request"]
SUBPROCESS_TIMEOUT_S = 60


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    saved, plugins = dict(protocol.COMMANDS), set(protocol._loaded_plugins)
    yield
    protocol.COMMANDS.clear()
    protocol.COMMANDS.update(saved)
    protocol._loaded_plugins.clear()
    protocol._loaded_plugins.update(plugins)


def _serve(request: Any, *extra_lines: str) -> tuple:
    stdin = io.StringIO((request if isinstance(request, str) else json.dumps(request)) + "\n" + "".join(extra_lines))
    stdout = io.StringIO()
    code = protocol.serve(stdin, stdout)
    return code, [json.loads(line) for line in stdout.getvalue().splitlines()]


def _counting(args: Dict[str, Any], progress: Any) -> Dict[str, Any]:
    for i in range(int(args["n"])):
        progress.update(i + 1, int(args["n"]), f"item {i}")
    print("library noise on stdout")
    return {"path": Path("/tmp/out.nk"), "items": (1, 2)}


def test_run_request_dispatches_and_returns_json_ready_outputs() -> None:
    protocol.register("count", _counting)
    outputs = protocol.run_request(protocol.make_request("count", {"n": 3}))
    assert outputs == {"path": "/tmp/out.nk", "items": [1, 2]}


@pytest.mark.parametrize(
    ("request_obj", "match"),
    [
        ([], "must be a JSON object"),
        ({"schema": "SeamRotoRequest.2", "command": "about"}, "different SeamRoto versions"),
        ({"schema": "SeamRotoRequest.1"}, "no 'command'"),
        ({"schema": "SeamRotoRequest.1", "command": "about", "args": []}, "must be a JSON object"),
        ({"schema": "SeamRotoRequest.1", "command": "levitate"}, "has no command 'levitate'"),
    ],
)
def test_bad_requests_are_protocol_errors(request_obj: Any, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        protocol.run_request(request_obj)


def test_registration_refuses_silent_replacement() -> None:
    protocol.register("count", _counting)
    protocol.register("count", _counting)  # the same function again is fine
    with pytest.raises(ValueError, match="already registered"):
        protocol.register("count", lambda a, p: {})
    protocol.register("count", lambda a, p: {"v": 2}, replace=True)
    assert protocol.run_request(protocol.make_request("count")) == {"v": 2}
    protocol.unregister("count")
    assert "count" not in protocol.COMMANDS


def test_node_count_is_added_for_nk_outputs(tmp_path: Path) -> None:
    nk = tmp_path / "seamroto.nk"
    nk.write_text("set cut_paste_input [stack 0]\nRoot {\n}\nTracker4 {\n tracks {\n}\n}\nRoto {\n}\n")
    protocol.register("build", lambda a, p: {"nk": nk})
    assert protocol.run_request(protocol.make_request("build"))["node_count"] == 2


def test_serve_answers_with_progress_lines_then_one_result(capfd: pytest.CaptureFixture[str]) -> None:
    protocol.register("count", _counting)
    code, lines = _serve(protocol.make_request("count", {"n": 3}))
    assert code == protocol.EXIT_OK
    kinds = [line["type"] for line in lines]
    assert kinds[-1] == "result" and kinds.count("result") == 1 and "progress" in kinds
    assert lines[-1]["outputs"]["path"] == "/tmp/out.nk"
    assert all(line["schema"] == protocol.RESPONSE_SCHEMA for line in lines)
    assert [line for line in lines if line["type"] == "progress"][-1]["done"] == 3
    assert "library noise" in capfd.readouterr().err  # printed text never reaches the protocol


def test_serve_reports_a_core_error_with_its_fields() -> None:
    def failing(args: Dict[str, Any], progress: Any) -> Dict[str, Any]:
        raise PlateReadError("cannot decode", path="/plates/a.1002.exr", frame=1002)

    protocol.register("fail", failing)
    code, lines = _serve(protocol.make_request("fail"))
    (error,) = lines
    assert code == protocol.EXIT_ERROR
    assert error["type"] == "error" and error["error_class"] == "PlateReadError" and error["artist_facing"]
    assert (error["message"], error["path"], error["frame"]) == ("cannot decode", "/plates/a.1002.exr", 1002)
    assert "Traceback" in error["traceback"]


def test_serve_reports_a_bug_with_its_traceback() -> None:
    protocol.register("bug", lambda a, p: {"x": 1 / 0})
    code, (error,) = _serve(protocol.make_request("bug"))
    assert code == protocol.EXIT_ERROR and error["error_class"] == "ZeroDivisionError"
    assert not error["artist_facing"] and "1 / 0" in error["traceback"]


def test_serve_rejects_a_line_that_is_not_json() -> None:
    code, (error,) = _serve("this is not json")
    assert code == protocol.EXIT_ERROR and error["error_class"] == "ProtocolError"


def test_a_cancel_line_stops_the_command() -> None:
    def waiting(args: Dict[str, Any], progress: Any) -> Dict[str, Any]:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if progress.cancelled:
                raise CancelledError("stopped between frames")
            time.sleep(0.01)
        return {"timed_out": True}

    protocol.register("wait", waiting)
    code, lines = _serve(protocol.make_request("wait"), "cancel\n")
    assert code == protocol.EXIT_CANCELLED and lines[-1]["error_class"] == "CancelledError"


def test_the_runtime_check_names_missing_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    assert protocol.missing_runtime_modules() == []
    monkeypatch.setattr(protocol, "RUNTIME_MODULES", ("numpy", "no_such_module_xyz"))
    assert protocol.missing_runtime_modules() == ["no_such_module_xyz: not installed"]


def test_plugins_register_commands_and_a_broken_plugin_is_named(tmp_path: Path) -> None:
    plugin = tmp_path / "studio_commands.py"
    plugin.write_text(
        "def register_commands(register):\n    register('hello', lambda args, progress: {'hi': args['who']})\n"
    )
    assert protocol.load_plugins(str(plugin)) == [str(plugin)]
    assert protocol.run_request(protocol.make_request("hello", {"who": "TD"})) == {"hi": "TD"}
    broken = tmp_path / "broken_commands.py"
    broken.write_text("import no_such_module_xyz\n")
    with pytest.raises(ProtocolError, match="cannot be imported") as caught:
        protocol.load_plugins(str(broken))
    assert caught.value.path == str(broken)


def _plugin(tmp_path: Path) -> Path:
    plugin = tmp_path / "slow_commands.py"
    plugin.write_text(
        textwrap.dedent(
            """
            import time
            from seamroto.errors import CancelledError

            def slow(args, progress):
                for step in range(1000):
                    if progress.cancelled:
                        raise CancelledError("stopped", frame=step)
                    progress.update(step, 1000, "working")
                    time.sleep(0.02)
                return {"finished": True}

            def register_commands(register):
                register("slow", slow)
            """
        )
    )
    return plugin


def _start_serve(tmp_path: Path) -> subprocess.Popen:
    env = dict(os.environ, SEAMROTO_PROTOCOL_PLUGINS=str(_plugin(tmp_path)))
    proc = subprocess.Popen(
        SERVE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(protocol.make_request("slow")) + "\n")
    proc.stdin.flush()
    first = json.loads(proc.stdout.readline())
    assert first["type"] == "progress"
    return proc


def _rest(proc: subprocess.Popen) -> List[Dict[str, Any]]:
    out, _ = proc.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    return [json.loads(line) for line in out.splitlines()]


def test_serve_as_a_subprocess_stops_on_a_cancel_line(tmp_path: Path) -> None:
    proc = _start_serve(tmp_path)
    assert proc.stdin is not None
    proc.stdin.write("cancel\n")
    proc.stdin.flush()
    lines = _rest(proc)
    assert proc.returncode == protocol.EXIT_CANCELLED and lines[-1]["error_class"] == "CancelledError"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is a hard kill on Windows")
def test_serve_as_a_subprocess_stops_on_sigterm(tmp_path: Path) -> None:
    proc = _start_serve(tmp_path)
    proc.send_signal(signal.SIGTERM)
    lines = _rest(proc)
    assert proc.returncode == protocol.EXIT_CANCELLED and lines[-1]["error_class"] == "CancelledError"


def test_inspect_is_registered_and_reads_a_real_script(nk_reference_dir: Path) -> None:
    path = nk_reference_dir / "hellothisistim__SquareGrid.nk"
    outputs = protocol.run_request(protocol.make_request("inspect", {"path": str(path)}))
    assert any(node["class"] == "Tracker4" for node in outputs["info"]["nodes"])
    with pytest.raises(ProtocolError, match="inspect needs args.path"):
        protocol.run_request(protocol.make_request("inspect", {}))
