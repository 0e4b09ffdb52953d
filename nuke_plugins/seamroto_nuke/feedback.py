"""What the artist and the TD see: the log file, progress bars, and error messages.

One rotating log file holds everything (the adapter, the in-process core, the core's
subprocess output); if its folder cannot be written a temp folder is used. Dialogs are shown
only in a GUI session and only from the main thread; in terminal mode (``nuke -t``, farm)
errors are logged and re-raised by the caller instead.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import tempfile
import time
from pathlib import Path
from typing import Optional

import nuke

from seamroto_nuke.errors import CancelledByUser, CoreError, PluginError
from seamroto_nuke.paths import ENV_LOG_DIR

logger = logging.getLogger(__name__)

LOG_FILE_NAME = "seamroto_nuke.log"
LOG_MAX_BYTES = 2_000_000
LOG_BACKUP_COUNT = 5
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"
# The adapter and the in-process core both log to the same file.
LOGGER_NAMES = ("seamroto_nuke", "seamroto")
TERMINAL_PROGRESS_INTERVAL_S = 5.0
PERCENT = 100
_HANDLER_MARK = "_seamroto_nuke_handler"
# Set on an exception once it was logged and shown, so an outer boundary does not repeat it.
REPORTED_ATTR = "_seamroto_reported"

_log_path: Optional[Path] = None


def default_log_dir() -> Path:
    """``$SEAMROTO_LOG_DIR`` or ``~/.nuke/seamroto/logs``."""
    env = os.environ.get(ENV_LOG_DIR, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".nuke" / "seamroto" / "logs"


def setup_logging() -> Path:
    """Attach the rotating log file to the SeamRoto loggers once; return the log's path.

    Falls back to a temp folder when the usual folder is not writable (read-only home on a
    farm node), so logging never stops a command.
    """
    global _log_path
    if _log_path is not None:
        return _log_path
    handler: Optional[logging.Handler] = None
    path = default_log_dir() / LOG_FILE_NAME
    fallback = Path(tempfile.gettempdir()) / "seamroto-logs" / LOG_FILE_NAME
    for candidate in (path, fallback):
        try:
            candidate.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(
                candidate, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUP_COUNT, encoding="utf-8"
            )
            path = candidate
            break
        except OSError as err:
            logger.warning("cannot write the SeamRoto log in %s (%s)", candidate.parent, err)
    if handler is None:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.setLevel(logging.DEBUG)
    setattr(handler, _HANDLER_MARK, True)
    for name in LOGGER_NAMES:
        named = logging.getLogger(name)
        if not any(getattr(h, _HANDLER_MARK, False) for h in named.handlers):
            named.addHandler(handler)
        if named.level == logging.NOTSET or named.level > logging.DEBUG:
            named.setLevel(logging.DEBUG)
    _log_path = path
    logger.info("SeamRoto log: %s (Nuke %s)", path, getattr(nuke, "NUKE_VERSION_STRING", "?"))
    return path


def artist_message(err: BaseException, action: str) -> str:
    """The short text an artist sees for ``err`` raised by ``action`` ("Track", "Train").

    Artist-facing errors say what to fix; anything else says who to ask and where the
    details are.
    """
    if isinstance(err, CancelledByUser):
        return f"SeamRoto {action} was cancelled; nothing was changed."
    if isinstance(err, PluginError) and err.artist_facing:
        return f"SeamRoto {action} stopped.\n\n{err}"
    if isinstance(err, PluginError):
        summary = str(err)
    else:
        first_line = (str(err).strip().splitlines() or [""])[0]
        summary = f"{type(err).__name__}: {first_line}" if first_line else type(err).__name__
    return (
        f"SeamRoto {action} failed: {summary}\n\n"
        f"This looks like an install or software problem. Details for your TD are in the log:\n"
        f"{setup_logging()}"
    )


def report_error(err: BaseException, action: str) -> str:
    """Log ``err`` (with the traceback for a TD) and, in a GUI session, show it to the artist.

    Must run on the main thread in a GUI session (jobs route it there). The caller re-raises in
    terminal mode.

    Returns:
        The artist message (also used for the node's status knob).
    """
    setup_logging()
    text = artist_message(err, action)
    try:
        setattr(err, REPORTED_ATTR, True)
    except AttributeError:  # a few built-in exceptions take no attributes
        pass
    if isinstance(err, CancelledByUser):
        logger.info("%s cancelled", action)
        return text
    if isinstance(err, PluginError) and err.artist_facing:
        logger.warning("%s stopped: %s", action, err)
        if isinstance(err, CoreError) and err.traceback:
            logger.debug("core traceback:\n%s", err.traceback)
    elif isinstance(err, CoreError) and err.traceback:
        logger.error("%s failed in the core (%s): %s\n%s", action, err.error_class, err, err.traceback)
    else:
        logger.error("%s failed", action, exc_info=(type(err), err, err.__traceback__))
    if nuke.GUI:
        nuke.message(text)
    return text


def notify(text: str) -> None:
    """Tell the artist something that is not an error (GUI dialog, else the log)."""
    logger.info("%s", text)
    if nuke.GUI:
        nuke.message(text)


class NukeProgress:
    """``Progress`` backed by a ``nuke.ProgressTask`` (create it in the worker thread).

    ``cancelled`` is the task's cancel button, which the core polls between frames.
    """

    def __init__(self, title: str) -> None:
        self._task: Optional[nuke.ProgressTask] = nuke.ProgressTask(title)
        self._cancelled = False

    def update(self, done: int, total: int, message: str = "") -> None:
        """Move the bar to ``done/total`` and show ``message``."""
        task = self._task
        if task is None:
            return
        percent = int(PERCENT * done / total) if total > 0 else 0
        task.setProgress(max(0, min(PERCENT, percent)))
        task.setMessage(message or f"{done} of {total}")

    @property
    def cancelled(self) -> bool:
        """True once the artist pressed Cancel on the progress bar."""
        task = self._task
        if task is not None and bool(task.isCancelled()):
            self._cancelled = True
        return self._cancelled

    def close(self) -> None:
        """Remove the progress bar (Nuke drops it with the last reference)."""
        self._task = None


class LogProgress:
    """``Progress`` for terminal mode: a log line every few seconds, never cancelled."""

    def __init__(self, title: str, interval_s: float = TERMINAL_PROGRESS_INTERVAL_S) -> None:
        self._title = title
        self._interval_s = interval_s
        self._last = 0.0

    def update(self, done: int, total: int, message: str = "") -> None:
        """Log ``done/total`` at most every ``interval_s`` (always the last one)."""
        now = time.monotonic()
        if done < total and now - self._last < self._interval_s:
            return
        self._last = now
        logger.info("%s %d/%d %s", self._title, done, total, message)

    @property
    def cancelled(self) -> bool:
        """Terminal runs stop with Ctrl-C, not through this flag."""
        return False

    def close(self) -> None:
        """Nothing to remove."""
