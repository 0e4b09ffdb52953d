"""Progress reporting for long actions: a tiny protocol the core checks between work items."""

from __future__ import annotations

import logging
import time
from typing import Protocol, runtime_checkable

logger = logging.getLogger(__name__)

CONSOLE_MIN_INTERVAL_S = 2.0


@runtime_checkable
class Progress(Protocol):
    """What a long action reports to and polls: Nuke maps it to ProgressTask, the CLI to a log line."""

    def update(self, done: int, total: int, message: str = "") -> None:
        """Report ``done`` of ``total`` work items, with an optional human message."""

    @property
    def cancelled(self) -> bool:
        """True once the user asked to stop; the action then stops cleanly between items."""


class NullProgress:
    """A progress sink that ignores updates and never cancels (library default)."""

    def update(self, done: int, total: int, message: str = "") -> None:
        """Ignore the update."""

    @property
    def cancelled(self) -> bool:
        """Never cancelled."""
        return False


class ConsoleProgress:
    """Logs ``done/total``, percent and an ETA at most every ``min_interval_s`` seconds.

    The ETA is a linear extrapolation from the rate since the first update, which is honest
    enough for training loops whose steps all cost about the same.
    """

    def __init__(self, label: str = "", min_interval_s: float = CONSOLE_MIN_INTERVAL_S) -> None:
        self.label = label
        self.min_interval_s = min_interval_s
        self._start: float | None = None
        self._start_done = 0
        self._last_log = 0.0
        self._cancelled = False

    def cancel(self) -> None:
        """Ask the running action to stop at its next check."""
        self._cancelled = True

    @property
    def cancelled(self) -> bool:
        """True after ``cancel()``."""
        return self._cancelled

    def update(self, done: int, total: int, message: str = "") -> None:
        """Log progress with an ETA, rate-limited except for the final update."""
        now = time.monotonic()
        if self._start is None:
            self._start, self._start_done = now, done
        if done < total and now - self._last_log < self.min_interval_s:
            return
        self._last_log = now
        logger.info("%s", self.format(done, total, message, now))

    def format(self, done: int, total: int, message: str = "", now: float | None = None) -> str:
        """The line ``update`` logs, e.g. ``train 120/400 (30%) ETA 1m05s: loss 0.31``."""
        now = time.monotonic() if now is None else now
        start = self._start if self._start is not None else now
        pct = 100.0 * done / total if total else 100.0
        elapsed = now - start
        rate_done = done - self._start_done
        if rate_done > 0 and done < total:
            eta = _format_seconds(elapsed / rate_done * (total - done))
        elif done >= total:
            eta = "done in " + _format_seconds(elapsed)
        else:
            eta = "ETA --"
        if not eta.startswith("done"):
            eta = "ETA " + eta if eta != "ETA --" else eta
        head = f"{self.label} " if self.label else ""
        tail = f": {message}" if message else ""
        return f"{head}{done}/{total} ({pct:.0f}%) {eta}{tail}"


def _format_seconds(seconds: float) -> str:
    """Compact h/m/s for an ETA."""
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m{sec:02d}s"
    return f"{sec}s"


class StageProgress:
    """One stage of a longer job, reported as part of the whole job's count.

    ``update(done, ...)`` of the stage becomes ``update(offset + done, total, ...)`` of the job;
    cancel is the job's.
    """

    def __init__(self, sink: Progress, offset: int, total: int) -> None:
        self._sink, self._offset, self._total = sink, offset, total

    def update(self, done: int, total: int, message: str = "") -> None:
        """Forward ``done`` shifted by this stage's offset."""
        self._sink.update(self._offset + done, self._total, message)

    @property
    def cancelled(self) -> bool:
        """The whole job's cancel flag."""
        return self._sink.cancelled
