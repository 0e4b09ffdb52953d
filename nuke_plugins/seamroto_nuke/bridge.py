"""Run one core command: in Nuke's own Python when the core loads there, else in the core's venv.

Nuke's interpreter (3.9-3.11 depending on the version) usually cannot load the core's binary
wheels, so the normal path is a subprocess, ``python -m seamroto serve-request``, speaking the
JSON-lines protocol of ``seamroto.protocol`` (request on stdin, progress/log/result/error on
stdout, ``cancel`` on stdin, SIGTERM as the last resort). Both paths raise the same adapter
errors, so commands handle one set of failures.

``SEAMROTO_BRIDGE`` = ``auto`` (default) | ``inprocess`` | ``subprocess`` forces a path; a
``core_python`` knob or ``$SEAMROTO_PYTHON`` implies the subprocess.
"""

from __future__ import annotations

import collections
import importlib
import json
import logging
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Deque, Dict, List, Optional, Protocol, Tuple

from seamroto_nuke.errors import BridgeError, CancelledByUser, CoreError
from seamroto_nuke.paths import ENV_BRIDGE, ENV_PYTHON, INSTALL_DIR, python_candidates

logger = logging.getLogger(__name__)
core_logger = logging.getLogger("seamroto_nuke.core")

REQUEST_SCHEMA = "SeamRotoRequest.1"
SERVE_ARGS = ("-m", "seamroto", "serve-request")
CANCEL_LINE = "cancel\n"
CANCEL_POLL_S = 0.1
CANCEL_GRACE_S = 10.0
KILL_GRACE_S = 5.0
EXIT_GRACE_S = 10.0
STDERR_TAIL_LINES = 40
MODE_AUTO, MODE_INPROCESS, MODE_SUBPROCESS = "auto", "inprocess", "subprocess"
# Nuke's own Python settings would make the core's interpreter load Nuke's libraries.
CHILD_ENV_DROP = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONEXECUTABLE", "PYTHONUSERBASE")

_inprocess_problem: Optional[Tuple[bool, str]] = None


class ProgressSink(Protocol):
    """What the bridge reports to and polls (same shape as ``seamroto.progress.Progress``)."""

    def update(self, done: int, total: int, message: str = "") -> None:
        """Report ``done`` of ``total``."""

    @property
    def cancelled(self) -> bool:
        """True once the artist asked to stop."""


@dataclass(frozen=True)
class Route:
    """How a request will run: ``mode``, the interpreter for a subprocess, and why."""

    mode: str
    python: str
    reason: str


def make_request(command: str, args: Dict[str, Any]) -> Dict[str, Any]:
    """A ``SeamRotoRequest.1`` dict."""
    return {"schema": REQUEST_SCHEMA, "command": command, "args": args}


def reset() -> None:
    """Forget the cached in-process probe (tests, or after a TD fixed the install)."""
    global _inprocess_problem
    _inprocess_problem = None


def inprocess_problem() -> Optional[str]:
    """Why the core cannot run inside this Python, or None when it can (probed once)."""
    global _inprocess_problem
    if _inprocess_problem is None:
        try:
            protocol = importlib.import_module("seamroto.protocol")
            missing: List[str] = list(protocol.missing_runtime_modules())
            _inprocess_problem = (bool(missing), "; ".join(missing))
        except Exception as err:  # any import failure just means "use the subprocess"
            _inprocess_problem = (True, f"import seamroto.protocol failed: {type(err).__name__}: {err}")
    failed, why = _inprocess_problem
    return why if failed else None


def choose_route(python_knob: str = "") -> Route:
    """Pick in-process or subprocess for this request, and the interpreter for the latter."""
    forced = os.environ.get(ENV_BRIDGE, MODE_AUTO).strip().lower() or MODE_AUTO
    if forced not in (MODE_AUTO, MODE_INPROCESS, MODE_SUBPROCESS):
        raise BridgeError(
            f"${ENV_BRIDGE} is {forced!r}; use auto, inprocess or subprocess", knob=ENV_BRIDGE
        )
    if forced == MODE_INPROCESS:
        return Route(MODE_INPROCESS, "", f"${ENV_BRIDGE}=inprocess")
    explicit = bool(python_knob.strip() or os.environ.get(ENV_PYTHON, "").strip())
    if forced == MODE_AUTO and not explicit:
        problem = inprocess_problem()
        if problem is None:
            return Route(MODE_INPROCESS, "", "the core imports in Nuke's Python")
        reason = f"the core does not load in Nuke's Python ({problem})"
    else:
        reason = f"${ENV_BRIDGE}=subprocess" if forced == MODE_SUBPROCESS else "a core python is set"
    return Route(MODE_SUBPROCESS, str(find_python(python_knob)), reason)


def find_python(python_knob: str = "") -> Path:
    """The core's interpreter: knob ``core_python``, then ``$SEAMROTO_PYTHON``, then ``.venv``.

    Raises:
        BridgeError: none of them is an existing file (the message lists what was tried).
    """
    tried = python_candidates(python_knob)
    for _where, candidate in tried:
        path = Path(candidate).expanduser()
        if path.is_file():
            return path
    listing = "; ".join(f"{where}: {path}" for where, path in tried)
    raise BridgeError(
        "cannot find the Python of the SeamRoto core (tried " + listing + "). Create the venv "
        f"with 'make test' in {INSTALL_DIR}, or set ${ENV_PYTHON} (see docs/INSTALL_NUKE.md)"
    )


def run(
    command: str, args: Dict[str, Any], progress: ProgressSink, *, python_knob: str = ""
) -> Dict[str, Any]:
    """Run ``command`` with ``args`` on the core and return its outputs.

    Raises:
        CancelledByUser: the artist cancelled (the core left nothing partial).
        CoreError: the core raised (``artist_facing`` for SeamRotoErrors).
        BridgeError: the core could not be started or stopped without answering.
    """
    route = choose_route(python_knob)
    request = make_request(command, args)
    logger.info("%s via %s (%s)", command, route.mode, route.reason)
    if route.mode == MODE_INPROCESS:
        return run_inprocess(request, progress)
    return run_subprocess(request, progress, route.python)


def run_inprocess(request: Dict[str, Any], progress: ProgressSink) -> Dict[str, Any]:
    """``seamroto.protocol.run_request`` in this process, its errors mapped to ours."""
    protocol = importlib.import_module("seamroto.protocol")
    core_errors = importlib.import_module("seamroto.errors")
    try:
        outputs: Dict[str, Any] = protocol.run_request(request, progress)
    except core_errors.CancelledError as err:
        raise CancelledByUser(str(err)) from err
    except core_errors.SeamRotoError as err:
        raise CoreError(
            err.message,
            error_class=type(err).__name__,
            artist_facing=True,
            path=err.path,
            frame=err.frame,
            knob=err.knob,
        ) from err
    except Exception as err:  # the bridge boundary: any core crash becomes one CoreError
        raise CoreError(
            f"{type(err).__name__}: {err}",
            error_class=type(err).__name__,
            artist_facing=False,
            traceback=_format_exception(err),
        ) from err
    return outputs


def run_subprocess(
    request: Dict[str, Any], progress: ProgressSink, python: str
) -> Dict[str, Any]:
    """``python -m seamroto serve-request`` with the request on stdin; read its JSON lines."""
    cmd = [python, *SERVE_ARGS]
    logger.debug("starting core: %s", " ".join(cmd))
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=child_env(),
            cwd=str(INSTALL_DIR),
        )
    except OSError as err:
        raise BridgeError(f"cannot start the SeamRoto core: {err}", path=python) from err
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    stdin = proc.stdin
    tail: Deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
    stderr_thread = threading.Thread(
        target=_drain_stderr, args=(proc.stderr, tail), name="seamroto-core-stderr", daemon=True
    )
    stderr_thread.start()
    finished = threading.Event()
    cancel_state = {"sent": False}
    watcher = threading.Thread(
        target=_watch_cancel,
        args=(proc, stdin, progress, finished, cancel_state),
        name="seamroto-core-cancel",
        daemon=True,
    )
    try:
        stdin.write(json.dumps(request) + "\n")
        stdin.flush()
        watcher.start()
    except OSError as err:  # it died at start-up: its exit code and stderr say why (below)
        logger.debug("the core did not read the request: %s", err)
    final: Optional[Dict[str, Any]] = None
    try:
        for line in proc.stdout:
            message = _parse_line(line)
            if message is None:
                continue
            kind = message.get("type")
            if kind == "progress":
                progress.update(
                    int(message.get("done", 0)), int(message.get("total", 0)), str(message.get("message", ""))
                )
            elif kind == "log":
                level = logging.getLevelName(str(message.get("level", "INFO")))
                core_logger.log(level if isinstance(level, int) else logging.INFO, "%s", message.get("message", ""))
            elif kind in ("result", "error"):
                final = message
                break  # the answer is complete; a process the core forked may hold stdout open
    finally:
        finished.set()
        _close_quietly(stdin)  # EOF ends the core's cancel reader, so it exits at once
        try:
            proc.wait(timeout=EXIT_GRACE_S)
        except subprocess.TimeoutExpired:
            logger.warning("the core did not exit %.0f s after answering; killing it", EXIT_GRACE_S)
            proc.kill()
            proc.wait()
        stderr_thread.join(timeout=EXIT_GRACE_S)
    return _final_outputs(final, proc.returncode, cancel_state["sent"], list(tail), python)


def child_env() -> Dict[str, str]:
    """The core's environment: ours minus Nuke's Python settings, plus the install on its path."""
    env = {k: v for k, v in os.environ.items() if k not in CHILD_ENV_DROP}
    env["PYTHONPATH"] = str(INSTALL_DIR)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def _final_outputs(
    final: Optional[Dict[str, Any]], returncode: int, cancel_sent: bool, tail: List[str], python: str
) -> Dict[str, Any]:
    """Turn the last protocol line (or its absence) into outputs or an adapter error."""
    if final is None:
        if cancel_sent:
            raise CancelledByUser("the core stopped after the cancel")
        detail = "".join(tail).strip()
        raise BridgeError(
            f"the SeamRoto core exited (code {returncode}) without an answer"
            + (f"; its last output:\n{detail}" if detail else ""),
            path=python,
        )
    if final.get("type") == "result":
        outputs = final.get("outputs")
        if not isinstance(outputs, dict):
            raise BridgeError("the core's result line holds no 'outputs' object", path=python)
        return outputs
    if final.get("error_class") == "CancelledError":
        raise CancelledByUser(str(final.get("message") or "cancelled"))
    frame = final.get("frame")
    raise CoreError(
        str(final.get("message") or "unknown error"),
        error_class=str(final.get("error_class") or "Error"),
        artist_facing=bool(final.get("artist_facing")),
        traceback=str(final.get("traceback") or ""),
        path=final.get("path") or None,
        frame=int(frame) if isinstance(frame, int) else None,
        knob=final.get("knob") or None,
    )


def _parse_line(line: str) -> Optional[Dict[str, Any]]:
    """One protocol message, or None for a blank or stray non-JSON line (logged)."""
    text = line.strip()
    if not text:
        return None
    try:
        message = json.loads(text)
    except ValueError:
        core_logger.debug("core stdout (not protocol): %s", text)
        return None
    return message if isinstance(message, dict) else None


def _drain_stderr(stream: IO[str], tail: Deque[str]) -> None:
    """Log the core's stderr and keep its last lines for an error message."""
    for line in stream:
        tail.append(line)
        core_logger.debug("core stderr: %s", line.rstrip())


def _watch_cancel(
    proc: subprocess.Popen[str],
    stdin: IO[str],
    progress: ProgressSink,
    finished: threading.Event,
    state: Dict[str, bool],
) -> None:
    """Forward a cancel: ``cancel`` on stdin, SIGTERM after a grace period, then kill."""
    cancel_at: Optional[float] = None
    terminated_at: Optional[float] = None
    while not finished.wait(CANCEL_POLL_S):
        if proc.poll() is not None:
            return
        if cancel_at is None:
            if not progress.cancelled:
                continue
            cancel_at = time.monotonic()
            state["sent"] = True
            logger.info("cancel requested; asking the core to stop")
            try:
                stdin.write(CANCEL_LINE)
                stdin.flush()
            except (OSError, ValueError):
                pass
        elif terminated_at is None and time.monotonic() - cancel_at > CANCEL_GRACE_S:
            logger.warning("the core ignored cancel for %.0f s; terminating it", CANCEL_GRACE_S)
            terminated_at = time.monotonic()
            proc.terminate()
        elif terminated_at is not None and time.monotonic() - terminated_at > KILL_GRACE_S:
            proc.kill()
            return


def _close_quietly(stream: IO[str]) -> None:
    try:
        stream.close()
    except (OSError, ValueError):
        pass


def _format_exception(err: BaseException) -> str:
    import traceback

    return "".join(traceback.format_exception(type(err), err, err.__traceback__))
