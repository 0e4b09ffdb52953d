"""The host <-> core contract: versioned JSON requests, a command registry and a stdio server.

A host (the Nuke plugin, a farm wrapper) asks the core to do one job with a request::

    {"schema": "SeamRotoRequest.1", "command": "track", "args": {...}}

In-process it calls ``run_request(request, progress)``; from another Python (Nuke's own
interpreter cannot load the core's binary wheels) it runs ``python -m seamroto serve-request``,
writes the request as one JSON line on stdin and reads JSON lines back on stdout::

    {"schema": "SeamRotoResponse.1", "type": "progress", "done": 3, "total": 48, "message": "..."}
    {"schema": "SeamRotoResponse.1", "type": "log", "level": "INFO", "logger": "...", "message": "..."}
    {"schema": "SeamRotoResponse.1", "type": "result", "outputs": {...}}            (last line)
    {"schema": "SeamRotoResponse.1", "type": "error", "error_class": "PlateReadError",
     "artist_facing": true, "message": "...", "path": "...", "frame": 1012, "knob": null,
     "line": null, "traceback": "..."}                                               (last line)

Exactly one ``result`` or ``error`` line ends the stream. The host cancels by writing ``cancel``
(or ``{"type": "cancel"}``) on stdin, or with SIGTERM; the command then stops at its next
progress check and the answer is an error whose ``error_class`` is ``CancelledError``.

Commands the Nuke plugin sends (``args`` -> ``outputs``; paths are absolute strings):

* ``track``: ``plate`` (Nuke pattern, ``%04d`` or ``####``), ``first``, ``last``,
  ``colourspace``, ``width``, ``height``, ``character``, ``model_version``, ``model_dir``,
  ``smoothing``, ``confidence_threshold``, ``feather_px``, ``seam_band_px``, optional
  ``snap_pieces`` (bool, default true: replacement pieces onto each frame's edges), ``out_dir``
  (must not exist: write to a staged folder and rename it into place only when complete),
  ``node_prefix`` and ``node_version`` (name the nodes ``{node_prefix}_{role}_v{node_version}``),
  ``include_read`` (False: the first node takes its input from the paste point via
  ``push $cut_paste_input``), ``report`` (bool) -> ``nk`` (paste-ready text, no Root node),
  ``result``, ``report``, ``character``, ``model_version``, optional ``node_count``.
* ``train``: ``character``, ``version``, ``models_dir``, ``shots`` (list of ``plate``,
  ``first``, ``last``, ``colourspace``, ``ground_truth_nk``), ``nk_files``, ``base_model_dir``,
  ``epochs``, ``out_dir`` -> ``model_dir``, ``character``, ``model_version``, optional ``report``.
* ``calibrate``: ``model_dir``, ``shots`` (as for ``train``: checked shots the character did not
  train on), ``nk_files``, ``out_dir`` (the new version) -> ``model_dir``, ``character``,
  ``model_version``, ``summary`` (a line per shot: flag figures before and after).
* ``refit``: ``tracks_nk``, ``result`` (may be empty), ``model_dir``, ``feather_px``,
  ``smoothing``, optional ``snap_pieces`` (as for ``track``), ``out_dir``, ``node_prefix``,
  ``node_version`` -> ``nk``, optional ``report``.
* ``inspect``: ``path`` -> ``info`` (``seamroto.nk.inspect.inspect_script``).
* ``motion2roto``: ``script`` (.nk with the Roto node), ``roto_node``, ``shapes`` (list, empty =
  all), ``plate``, ``first``, ``last``, ``colourspace``, ``vectors`` (pattern or ""), optional
  ``replacement`` ("auto", "none" or shape names), ``out_dir``, ``node_prefix``, ``node_version``
  -> ``nk``, ``report``, ``flagged_frames``.
* ``bbox``: ``plate``, ``first``, ``last``, ``colourspace``, ``frame``, ``box_nuke`` ([x, y, r, t]
  as a BBox_Knob holds it) or ``box`` ([x, y, w, h], image pixels), ``out_dir``,
  ``node_prefix``, ``node_version`` -> ``nk``, ``result``, ``flagged_frames``.
* ``about``: no args -> versions, interpreter, registered commands and missing modules.

``run_request`` adds ``node_count`` to any outputs holding ``nk`` so the host can ask before
pasting many nodes. Studio or test code adds commands with ``register(name, fn)`` or by naming
modules / ``.py`` files in ``SEAMROTO_PROTOCOL_PLUGINS`` (``os.pathsep`` list); a plugin module
either registers on import or defines ``register_commands(register)``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import logging
import os
import platform
import re
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

from seamroto import __version__
from seamroto.errors import CancelledError, ProtocolError, SeamRotoError
from seamroto.progress import NullProgress, Progress

logger = logging.getLogger(__name__)

REQUEST_SCHEMA = "SeamRotoRequest.1"
RESPONSE_SCHEMA = "SeamRotoResponse.1"
CANCEL_MESSAGE = "cancel"
PLUGINS_ENV = "SEAMROTO_PROTOCOL_PLUGINS"
LOG_LEVEL_ENV = "SEAMROTO_LOG_LEVEL"
PROGRESS_MIN_INTERVAL_S = 0.1
EXIT_OK, EXIT_ERROR, EXIT_CANCELLED = 0, 1, 130
# Imported by the real commands; a host process missing one must use the subprocess bridge.
RUNTIME_MODULES = ("numpy", "scipy", "cv2", "openvino", "OpenImageIO")
IMPORT_CHECKED = ("numpy",)
# A node block in paste-ready .nk text: "Tracker4 {" at the start of a line (knobs are lower case).
_NODE_LINE = re.compile(r"^\s*([A-Z][A-Za-z0-9_]*) \{\s*$", re.MULTILINE)

Command = Callable[[Dict[str, Any], Progress], Dict[str, Any]]
COMMANDS: Dict[str, Command] = {}
_loaded_plugins: Set[str] = set()


def register(name: str, fn: Command, *, replace: bool = False) -> Command:
    """Make ``fn`` answer requests for ``name``.

    Args:
        name: the request's ``command``.
        fn: ``fn(args, progress) -> outputs``; it checks ``progress.cancelled`` between work
            items and raises ``CancelledError`` (leaving nothing partial) when set.
        replace: allow replacing an existing command (tests, studio overrides).

    Returns:
        ``fn``, so a module can keep a reference.

    Raises:
        ValueError: ``name`` is taken by another function and ``replace`` is False.
    """
    current = COMMANDS.get(name)
    if current is not None and current is not fn and not replace:
        raise ValueError(f"protocol command {name!r} is already registered ({current!r})")
    COMMANDS[name] = fn
    return fn


def unregister(name: str) -> None:
    """Remove a command (tests undo their fakes with this)."""
    COMMANDS.pop(name, None)


def make_request(command: str, args: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """A request dict of the current schema."""
    return {"schema": REQUEST_SCHEMA, "command": command, "args": dict(args or {})}


def parse_request(request: Any) -> Tuple[str, Dict[str, Any]]:
    """Check a decoded request and return ``(command, args)``.

    Raises:
        ProtocolError: not an object, another schema, no command, or args not an object.
    """
    if not isinstance(request, dict):
        raise ProtocolError(f"a request must be a JSON object, got {type(request).__name__}")
    schema = request.get("schema")
    if schema != REQUEST_SCHEMA:
        raise ProtocolError(
            f"request schema {schema!r} is not {REQUEST_SCHEMA!r}: the Nuke plugin and the core "
            f"come from different SeamRoto versions (core {__version__}); install matching versions"
        )
    command = request.get("command")
    if not isinstance(command, str) or not command:
        raise ProtocolError("the request has no 'command' string")
    args = request.get("args", {})
    if not isinstance(args, dict):
        raise ProtocolError(f"'args' of command {command!r} must be a JSON object")
    return command, args


def run_request(request: Dict[str, Any], progress: Optional[Progress] = None) -> Dict[str, Any]:
    """Answer one request in this process: the in-process bridge and ``serve`` both end here.

    Args:
        request: a ``SeamRotoRequest.1`` dict (see the module docstring).
        progress: polled for cancel and told about progress; ``NullProgress`` when None.

    Returns:
        The command's outputs, JSON-ready (paths as strings), with ``node_count`` added when
        the outputs name an ``nk`` file.

    Raises:
        ProtocolError: malformed request, unknown command, or the command returned no dict.
        CancelledError: the host cancelled.
        SeamRotoError: whatever the command raises on purpose.
    """
    load_plugins()
    command, args = parse_request(request)
    fn = COMMANDS.get(command)
    if fn is None:
        known = ", ".join(sorted(COMMANDS)) or "none"
        raise ProtocolError(
            f"this core has no command {command!r} (it has: {known}); update the core or check "
            f"{PLUGINS_ENV}"
        )
    sink: Progress = progress if progress is not None else NullProgress()
    if sink.cancelled:
        raise CancelledError(f"{command} was cancelled before it started")
    logger.debug("request %s %s", command, sorted(args))
    outputs = fn(args, sink)
    if not isinstance(outputs, dict):
        raise ProtocolError(f"command {command!r} returned {type(outputs).__name__}, not a dict")
    ready: Dict[str, Any] = json.loads(json.dumps(outputs, default=_json_default))
    nk = ready.get("nk")
    if isinstance(nk, str) and "node_count" not in ready and os.path.isfile(nk):
        ready["node_count"] = count_nodes(Path(nk).read_text(encoding="utf-8", errors="replace"))
    return ready


def count_nodes(nk_text: str) -> int:
    """Number of node blocks in paste-ready .nk text (a cheap count for a confirm prompt)."""
    return sum(1 for m in _NODE_LINE.finditer(nk_text) if m.group(1) != "Root")


def load_plugins(spec: Optional[str] = None) -> List[str]:
    """Import the command plugins named in ``SEAMROTO_PROTOCOL_PLUGINS`` (once each).

    Args:
        spec: ``os.pathsep`` list of module names or ``.py`` paths; the env var when None.

    Returns:
        The entries loaded by this call.

    Raises:
        ProtocolError: a plugin cannot be imported (named, with the cause chained).
    """
    spec = os.environ.get(PLUGINS_ENV, "") if spec is None else spec
    loaded: List[str] = []
    for entry in (e.strip() for e in spec.split(os.pathsep)):
        if not entry or entry in _loaded_plugins:
            continue
        try:
            module = _import_plugin(entry)
        except Exception as err:
            raise ProtocolError(
                f"protocol plugin cannot be imported: {type(err).__name__}: {err}; fix or remove it "
                f"from {PLUGINS_ENV}",
                path=entry,
            ) from err
        hook = getattr(module, "register_commands", None)
        if callable(hook):
            hook(register)
        _loaded_plugins.add(entry)
        loaded.append(entry)
    return loaded


def _import_plugin(entry: str) -> Any:
    """A module by dotted name, or a ``.py`` file loaded under a private module name."""
    if not entry.endswith(".py"):
        return importlib.import_module(entry)
    path = Path(entry).resolve()
    name = "seamroto_protocol_plugin_" + re.sub(r"\W", "_", path.stem)
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"not a Python file: {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    return module


def missing_runtime_modules() -> List[str]:
    """``"name: reason"`` for each module the real commands need that this Python lacks.

    The Nuke plugin runs the core in Nuke's own Python only when this is empty. Only the
    ``IMPORT_CHECKED`` modules are imported (a wheel built for another Python fails there);
    the rest are located without importing, because importing OpenVINO starts its telemetry,
    which forks the host process.
    """
    missing: List[str] = []
    for name in RUNTIME_MODULES:
        try:
            if name in IMPORT_CHECKED:
                importlib.import_module(name)
            elif importlib.util.find_spec(name) is None:
                missing.append(f"{name}: not installed")
        except Exception as err:  # an ABI mismatch raises ImportError or worse; all mean "no"
            missing.append(f"{name}: {type(err).__name__}: {err}")
    return missing


def error_response(err: BaseException) -> Dict[str, Any]:
    """The ``error`` line for ``err``: structured fields for the host, traceback for the TD."""
    is_ours = isinstance(err, SeamRotoError)
    tb = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    return {
        "schema": RESPONSE_SCHEMA,
        "type": "error",
        "error_class": type(err).__name__,
        "artist_facing": is_ours,
        "message": err.message if isinstance(err, SeamRotoError) else str(err),
        "path": getattr(err, "path", None) if is_ours else None,
        "frame": getattr(err, "frame", None) if is_ours else None,
        "knob": getattr(err, "knob", None) if is_ours else None,
        "line": getattr(err, "line", None) if is_ours else None,
        "traceback": tb,
    }


def serve(stdin: IO[str], stdout: IO[str]) -> int:
    """Answer one request read from ``stdin`` with JSON lines on ``stdout``.

    Called by ``seamroto serve-request``. Anything the command prints goes to stderr, so only
    protocol lines reach ``stdout``; the ``seamroto`` loggers are sent as ``log`` lines.

    Args:
        stdin: first line is the request; later lines may say ``cancel``.
        stdout: receives the response lines, flushed one by one.

    Returns:
        Exit code: 0 result, 1 error, 130 cancelled.
    """
    writer = _LineWriter(stdout)
    cancel = threading.Event()
    lines = _LineSource(stdin)
    first = lines.readline()
    try:
        if not first.strip():
            raise ProtocolError("no request on stdin (expected one JSON line)")
        try:
            request = json.loads(first)
        except ValueError as err:
            raise ProtocolError(f"the request line is not JSON: {err}") from err
    except ProtocolError as err:
        writer.send(error_response(err))
        return EXIT_ERROR
    threading.Thread(target=_watch_stdin, args=(lines, cancel), daemon=True).start()
    progress = _StreamProgress(writer, cancel)
    with _cancel_on_sigterm(cancel), _logs_to(writer), contextlib.redirect_stdout(sys.stderr):
        try:
            outputs = run_request(request, progress)
        except (CancelledError, KeyboardInterrupt) as err:
            cancelled = err if isinstance(err, CancelledError) else CancelledError("interrupted")
            writer.send(error_response(cancelled))
            return EXIT_CANCELLED
        except Exception as err:  # the one boundary: every failure becomes an error line
            logger.debug("request failed", exc_info=True)
            writer.send(error_response(err))
            return EXIT_ERROR
    writer.send({"schema": RESPONSE_SCHEMA, "type": "result", "outputs": outputs})
    return EXIT_OK


class _LineWriter:
    """Thread-safe JSON-lines writer; a closed pipe (host gone) silences it instead of raising."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self.broken = False

    def send(self, message: Dict[str, Any]) -> None:
        """Write one message as one line and flush it."""
        message.setdefault("schema", RESPONSE_SCHEMA)
        line = json.dumps(message, default=_json_default)
        with self._lock:
            if self.broken:
                return
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.broken = True


class _StreamProgress:
    """``Progress`` that becomes ``progress`` lines (rate-limited) and reads the cancel flag."""

    def __init__(self, writer: _LineWriter, cancel: threading.Event) -> None:
        self._writer = writer
        self._cancel = cancel
        self._last_sent = 0.0

    def update(self, done: int, total: int, message: str = "") -> None:
        """Send progress, at most every ``PROGRESS_MIN_INTERVAL_S`` except the final update."""
        now = time.monotonic()
        if done < total and now - self._last_sent < PROGRESS_MIN_INTERVAL_S:
            return
        self._last_sent = now
        self._writer.send(
            {"type": "progress", "done": int(done), "total": int(total), "message": str(message)}
        )

    @property
    def cancelled(self) -> bool:
        """True once the host wrote ``cancel``, sent SIGTERM, or went away."""
        return self._cancel.is_set() or self._writer.broken


class _JsonLogHandler(logging.Handler):
    """Forwards log records to the host as ``log`` lines."""

    def __init__(self, writer: _LineWriter) -> None:
        super().__init__()
        self._writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        """Send one record."""
        try:
            text = record.getMessage()
        except (TypeError, ValueError):
            text = str(record.msg)
        self._writer.send(
            {"type": "log", "level": record.levelname, "logger": record.name, "message": text}
        )


class _LineSource:
    """Lines from stdin, read from the raw file descriptor when there is one.

    ``os.read`` holds no Python-level lock while it blocks. A buffered reader would hold its
    lock for as long as the cancel watcher waits, and a library that forks meanwhile (OpenVINO's
    telemetry does, through multiprocessing) would hand its child that lock already taken: the
    child then hangs at exit, keeping our stdout pipe open.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._pending = b""
        try:
            self._fd: Optional[int] = stream.fileno()
        except (AttributeError, OSError, ValueError):
            self._fd = None

    def readline(self) -> str:
        """The next line including its newline, or "" at end of input."""
        if self._fd is None:
            return self._stream.readline()
        while b"\n" not in self._pending:
            chunk = os.read(self._fd, 4096)
            if not chunk:
                line, self._pending = self._pending, b""
                return line.decode("utf-8", errors="replace")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode("utf-8", errors="replace") + "\n"


def _watch_stdin(lines: _LineSource, cancel: threading.Event) -> None:
    """Set ``cancel`` when the host writes a cancel line; EOF alone is not a cancel."""
    while True:
        line = lines.readline()
        if not line:
            return
        text = line.strip()
        if text == CANCEL_MESSAGE:
            cancel.set()
            continue
        with contextlib.suppress(ValueError):
            message = json.loads(text)
            if isinstance(message, dict) and message.get("type") == CANCEL_MESSAGE:
                cancel.set()


@contextlib.contextmanager
def _cancel_on_sigterm(cancel: threading.Event) -> Iterator[None]:
    """SIGTERM sets the cancel flag (only the main thread may install signal handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def _handler(signum: int, frame: Any) -> None:
        cancel.set()

    signal.signal(signal.SIGTERM, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _logs_to(writer: _LineWriter) -> Iterator[None]:
    """Route the ``seamroto`` loggers to the host for the duration of a request."""
    root = logging.getLogger("seamroto")
    saved = (root.handlers[:], root.level, root.propagate)
    handler = _JsonLogHandler(writer)
    level_name = os.environ.get(LOG_LEVEL_ENV, "INFO").upper()
    level = logging.getLevelName(level_name)
    handler.setLevel(level if isinstance(level, int) else logging.INFO)
    root.handlers[:] = [handler]
    root.setLevel(handler.level)
    root.propagate = False
    try:
        yield
    finally:
        root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]


def _json_default(value: Any) -> Any:
    """Paths and other simple objects as JSON (paths as strings, sets/tuples as lists)."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _about(args: Dict[str, Any], progress: Progress) -> Dict[str, Any]:
    """Versions and capabilities, for the plugin's Troubleshoot button."""
    return {
        "seamroto_version": __version__,
        "request_schema": REQUEST_SCHEMA,
        "python": platform.python_version(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "commands": sorted(COMMANDS),
        "missing_modules": missing_runtime_modules(),
    }


def _inspect(args: Dict[str, Any], progress: Progress) -> Dict[str, Any]:
    """What a .nk script holds (nodes, shapes, tracks), via ``seamroto.nk.inspect``."""
    from seamroto.nk.inspect import inspect_script

    path = args.get("path")
    if not isinstance(path, str) or not path:
        raise ProtocolError("inspect needs args.path, the .nk file to read", knob="path")
    return {"info": inspect_script(path)}


def _motion2roto(args: Dict[str, Any], progress: Progress) -> Dict[str, Any]:
    """Animate keyed Roto shapes with motion (``seamroto.motion2roto.motion2roto_command``)."""
    from seamroto.motion2roto import motion2roto_command

    return motion2roto_command(args, progress)


def _bbox(args: Dict[str, Any], progress: Progress) -> Dict[str, Any]:
    """Track a keyed box through the shot (``seamroto.bbox.bbox_command``)."""
    from seamroto.bbox import bbox_command

    return bbox_command(args, progress)


register("about", _about)
register("inspect", _inspect)
register("motion2roto", _motion2roto)
register("bbox", _bbox)


def _register_core_jobs() -> None:
    """track/train/refit from ``seamroto.jobs`` (imported here, not at the top: it pulls the pipeline)."""
    from seamroto import jobs

    jobs.register_all(lambda name, fn: register(name, fn, replace=True))


_register_core_jobs()
