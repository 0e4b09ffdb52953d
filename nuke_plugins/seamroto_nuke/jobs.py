"""Long actions off the UI thread: the core runs in a worker, node work returns to the main thread.

In a GUI session ``start`` runs ``work`` in a worker thread with a ``nuke.ProgressTask``, then
hands its outputs (or its error) to ``nuke.executeInMainThread``, where ``on_done`` pastes nodes
and errors become dialogs. In terminal mode (``nuke -t``, farm) everything runs inline and
errors are logged and re-raised, because there is no event loop to return to (and calling
``executeInMainThread`` from the main thread would hang Nuke).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Union

import nuke

from seamroto_nuke import feedback
from seamroto_nuke.bridge import ProgressSink
from seamroto_nuke.errors import CancelledByUser, PluginError

logger = logging.getLogger(__name__)

Outputs = Dict[str, Any]
Work = Callable[[ProgressSink], Outputs]
Done = Callable[[Outputs], Optional[str]]
Cleanup = Callable[[bool], None]

STATUS_MAX_CHARS = 200

_running: Dict[str, Job] = {}
_running_lock = threading.Lock()


@dataclass
class Job:
    """One started action; ``wait()`` blocks until its main-thread part has finished too."""

    action: str
    key: str
    thread: Optional[threading.Thread] = None
    outputs: Optional[Outputs] = None
    error: Optional[BaseException] = None
    message: str = ""
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def cancelled(self) -> bool:
        """True when the artist cancelled."""
        return isinstance(self.error, CancelledByUser)

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the job is completely done; False on timeout."""
        return self.finished.wait(timeout)


def is_running(key: str) -> bool:
    """True while a job for ``key`` (a node's full name) is running."""
    with _running_lock:
        return key in _running


def start(
    action: str,
    key: str,
    work: Work,
    on_done: Done,
    *,
    on_finish: Optional[Cleanup] = None,
    on_status: Optional[Callable[[str], None]] = None,
) -> Job:
    """Run ``work`` in the background and ``on_done(outputs)`` on the main thread.

    Args:
        action: artist-facing name of the action ("Track").
        key: one job per key at a time (a node's full name).
        work: ``work(progress) -> outputs``; runs in the worker thread, never touches nodes.
        on_done: main thread; pastes nodes, sets knobs, returns a short status (or None).
        on_finish: main thread, always last; ``on_finish(success)`` removes temp files.
        on_status: main thread; receives a one-line status for the node's status knob.

    Returns:
        The job. In terminal mode it is already finished.

    Raises:
        PluginError: a job for ``key`` is already running.
        Exception: terminal mode only, whatever ``work`` or ``on_done`` raised (logged first).
    """
    with _running_lock:
        if key in _running:
            raise PluginError(f"{action} is already running on this node; wait or cancel it", node=key)
        job = Job(action, key)
        _running[key] = job
    if not nuke.GUI:
        _run_inline(job, work, on_done, on_finish, on_status)
        return job
    job.thread = threading.Thread(
        target=_run_worker,
        args=(job, work, on_done, on_finish, on_status),
        name=f"seamroto-{action.lower()}",
        daemon=True,
    )
    job.thread.start()
    return job


def _run_inline(
    job: Job,
    work: Work,
    on_done: Done,
    on_finish: Optional[Cleanup],
    on_status: Optional[Callable[[str], None]],
) -> None:
    """Terminal mode: run everything here; log and re-raise failures."""
    progress = feedback.LogProgress(job.action)
    try:
        job.outputs = work(progress)
        job.message = on_done(job.outputs) or "done"
    except BaseException as err:
        job.error = err
        job.message = feedback.report_error(err, job.action)
        raise
    finally:
        _finish(job, on_finish, on_status)


def _run_worker(
    job: Job,
    work: Work,
    on_done: Done,
    on_finish: Optional[Cleanup],
    on_status: Optional[Callable[[str], None]],
) -> None:
    """GUI mode, worker thread: run the core, then continue on the main thread."""
    progress = feedback.NukeProgress(f"SeamRoto {job.action}")
    result: Union[Outputs, BaseException]
    try:
        result = work(progress)
    except BaseException as err:  # handed to the main thread, which reports it and frees the key
        result = err if isinstance(err, Exception) else PluginError(f"stopped by {type(err).__name__}")
    finally:
        progress.close()
    nuke.executeInMainThread(_complete, (job, result, on_done, on_finish, on_status))


def _complete(
    job: Job,
    result: Union[Outputs, BaseException],
    on_done: Done,
    on_finish: Optional[Cleanup],
    on_status: Optional[Callable[[str], None]],
) -> None:
    """GUI mode, main thread: paste (or report), then clean up and release the key."""
    try:
        if isinstance(result, BaseException):
            raise result
        job.outputs = result
        job.message = on_done(result) or "done"
    except Exception as err:  # one boundary per command: report, never raise into Nuke's loop
        job.error = err
        job.message = feedback.report_error(err, job.action)
    finally:
        _finish(job, on_finish, on_status)


def _finish(
    job: Job, on_finish: Optional[Cleanup], on_status: Optional[Callable[[str], None]]
) -> None:
    """Clean up, set the status, release the key and wake ``wait()``: always, in this order."""
    try:
        if on_finish is not None:
            on_finish(job.error is None)
        if on_status is not None:
            on_status(_status_line(job))
    except Exception:  # cleanup must not mask the job's own outcome
        logger.exception("cleanup after %s failed", job.action)
    finally:
        with _running_lock:
            _running.pop(job.key, None)
        job.finished.set()


def _status_line(job: Job) -> str:
    """One line for the node's status knob."""
    if job.error is None:
        return f"{job.action}: {job.message or 'done'}"
    if isinstance(job.error, CancelledByUser):
        return f"{job.action}: cancelled, nothing changed"
    first = (str(job.error).strip().splitlines() or [type(job.error).__name__])[0]
    return f"{job.action} failed: {first}"[:STATUS_MAX_CHARS]
