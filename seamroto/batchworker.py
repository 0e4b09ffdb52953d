"""One shot or one character of a batch, in this process or in a pool of worker processes.

Each shot is built in a hidden staged folder (the tracker's outputs, then the done marker) and
renamed into place in one step, so a crash leaves either a complete, marked folder or a hidden
``.partial`` one, which the next attempt deletes first. A stop signal (Ctrl-C, a farm's SIGTERM)
interrupts the shot between frames and removes its staged folder.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as _dt
import json
import logging
import multiprocessing
import os
import platform
import queue
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

from seamroto import __version__
from seamroto.batchstate import DONE_MARKER, DONE_SCHEMA, ShotDigest, remove_stale_partials
from seamroto.errors import CancelledError, SeamRotoError
from seamroto.fileio import atomic_write_text, next_free_dir, staged_dir
from seamroto.manifest import ShotEntry, TrainEntry
from seamroto.progress import Progress

logger = logging.getLogger(__name__)

TRACK_SUBDIR = "track"  # track_command writes here inside the staged folder; its files then move up
#: Modes of a finished output folder: staged temp files are 0600/0700, but artists and other farm
#: users must read what a farm task wrote (the process umask still applies).
DIR_MODE, FILE_MODE = 0o777, 0o666
STATUS_TRACKED, STATUS_DONE, STATUS_FAILED, STATUS_PENDING = "tracked", "done", "failed", "pending"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass(frozen=True)
class ShotReport:
    """One row of the summary."""

    shot: str
    status: str
    frames: int = 0
    flagged_frames: int = 0
    seconds: float = 0.0
    output: str = ""
    log: str = ""
    error: str = ""


@dataclass(frozen=True)
class ShotJob:
    """One shot to track: what, with which options, its digest now, and where it logs."""

    shot: ShotEntry
    options: Any  # seamroto.pipeline.TrackOptions
    digest: ShotDigest
    log: Path


@contextlib.contextmanager
def _shot_log(path: Path) -> Iterator[None]:
    """Send the ``seamroto`` log to ``path`` (appended) while a shot or a training runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.setLevel(logging.INFO)
    root = logging.getLogger("seamroto")
    old_level = root.level
    root.addHandler(handler)
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)  # the console handler keeps its own (quieter) level
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


class CancelOnly:
    """Forwards the batch's cancel to a shot without mixing the shot's progress into the batch's."""

    def __init__(self, outer: Progress) -> None:
        self._outer = outer

    def update(self, done: int, total: int, message: str = "") -> None:
        """Ignore per-frame progress (the batch reports per shot)."""

    @property
    def cancelled(self) -> bool:
        """The batch's cancel."""
        return self._outer.cancelled


def track_one(job: ShotJob, progress: Optional[Progress] = None) -> ShotReport:
    """Track one shot into a fresh, marked output folder; a failure is a report, not a raise."""
    from seamroto.pipeline import track_command
    from seamroto.result import read_result

    shot = job.shot
    started = time.perf_counter()
    with _shot_log(job.log):
        logger.info(
            "=== %s: tracking %s frames %d-%d with %s on %s (pid %d)",
            shot.name,
            shot.plates,
            job.digest.first,
            job.digest.last,
            shot.model_dir,
            platform.node(),
            os.getpid(),
        )
        try:
            remove_stale_partials(shot.output)
            target = next_free_dir(shot.output)
            with staged_dir(target) as tmp:
                outputs = track_command(shot.plates, shot.model_dir, tmp / TRACK_SUBDIR, job.options, progress)
                track_dir = tmp / TRACK_SUBDIR
                for item in sorted(track_dir.iterdir()):
                    os.replace(item, tmp / item.name)
                track_dir.rmdir()
                result = read_result(tmp / outputs["result"].name)
                seconds = time.perf_counter() - started
                frames = result.last - result.first + 1
                flagged = len(result.flagged_frames)
                marker: Dict[str, Any] = {
                    "schema": DONE_SCHEMA,
                    "digest": job.digest.digest,
                    "shot": shot.name,
                    "plates": shot.plates,
                    "first": result.first,
                    "last": result.last,
                    "model": {
                        "dir": str(shot.model_dir),
                        "card_sha256": job.digest.model_card_sha256,
                        "name": result.model.name,
                        "version": result.model.version,
                    },
                    "frames": frames,
                    "flagged_frames": flagged,
                    "seconds": round(seconds, 3),
                    "outputs": sorted(p.name for p in tmp.iterdir()),
                    "seamroto_version": __version__,
                    "host": platform.node(),
                    "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                }
                atomic_write_text(tmp / DONE_MARKER, json.dumps(marker, indent=1) + "\n")
                _share_permissions(tmp)
        except (KeyboardInterrupt, CancelledError):
            logger.warning("%s: interrupted; nothing partial was kept", shot.name)
            raise
        except SeamRotoError as err:
            check_stop(err)
            logger.error("%s failed: %s", shot.name, err)
            return ShotReport(shot.name, STATUS_FAILED, log=str(job.log), error=str(err))
        except Exception as err:  # a bug must not stop the other shots; the log has the traceback
            check_stop(err)
            logger.exception("%s failed unexpectedly", shot.name)
            return ShotReport(shot.name, STATUS_FAILED, log=str(job.log), error=f"{type(err).__name__}: {err}")
        logger.info("%s: done in %.1f s -> %s", shot.name, seconds, target)
    return ShotReport(
        shot.name,
        STATUS_TRACKED,
        frames,
        flagged,
        seconds,
        str(target),
        str(job.log),
    )


def _share_permissions(folder: Path) -> None:
    """Give a staged folder the modes of an ordinary folder (``DIR_MODE``/``FILE_MODE`` minus umask)."""
    mask = os.umask(0)
    os.umask(mask)
    folder.chmod(DIR_MODE & ~mask)
    for p in folder.rglob("*"):
        p.chmod((DIR_MODE if p.is_dir() else FILE_MODE) & ~mask)


def train_one(entry: TrainEntry, log: Path, progress: Progress) -> Path:
    """Train one character into its output folder, continuing an interrupted run's checkpoint."""
    from seamroto.pipeline import train_command

    with _shot_log(log):
        logger.info("=== training %s -> %s on %s (pid %d)", entry.character, entry.output, platform.node(), os.getpid())
        remove_stale_partials(entry.output)
        return train_command(
            entry.character,
            shots=list(entry.shots),
            laika=list(entry.laika),
            output=entry.output,
            base_model=entry.base_model,
            seed=entry.seed,
            minutes=entry.minutes,
            resume=True,  # with no checkpoint it starts afresh; with one it continues
            progress=progress,
        )


def _init_worker(cores: Any, level: int) -> None:
    """Pool worker start: its share of the cores, quiet console, SIGTERM -> clean interrupt."""
    try:
        mine = cores.get_nowait()
    except queue.Empty:
        mine = None
    if mine and hasattr(os, "sched_setaffinity"):
        # OpenVINO and OpenCV size their thread pools from the affinity (models.machine_threads).
        os.sched_setaffinity(0, mine)
    root = logging.getLogger("seamroto")
    root.handlers[:] = [logging.NullHandler()]
    root.setLevel(level)
    root.propagate = False
    for name in STOP_SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _raise_interrupt)


#: Set by a stop signal. An interrupt that lands inside a C extension's import surfaces as an
#: ImportError, not a KeyboardInterrupt; this flag lets the batch tell a stop from a failed shot.
_STOP = threading.Event()
STOP_SIGNALS = ("SIGINT", "SIGTERM")


def _raise_interrupt(signum: int, frame: Any) -> None:
    _STOP.set()
    raise KeyboardInterrupt(f"signal {signum}")


def check_stop(err: Optional[BaseException] = None) -> None:
    """Raise KeyboardInterrupt if a stop signal came (also when it surfaced as another error)."""
    if _STOP.is_set():
        raise KeyboardInterrupt("stopped by a signal") from err


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """A farm cancel (SIGTERM) stops like Ctrl-C: staged folders are removed, not left behind."""
    _STOP.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signums = [getattr(signal, name) for name in STOP_SIGNALS if hasattr(signal, name)]
    old = {n: signal.signal(n, _raise_interrupt) for n in signums}
    try:
        yield
    finally:
        for n, handler in old.items():
            signal.signal(n, handler)


def _core_sets(jobs: int) -> List[Optional[List[int]]]:
    try:
        cores = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return [None] * jobs
    if jobs > len(cores):
        return [None] * jobs
    return [cores[i::jobs] for i in range(jobs)]


def run_pool(jobs: Sequence[ShotJob], workers: int, on_report: Callable[[ShotReport], None]) -> None:
    """Track ``jobs`` in ``workers`` spawned processes (spawn: OpenVINO threads do not survive fork)."""
    ctx = multiprocessing.get_context("spawn")
    cores = ctx.Queue()
    for cs in _core_sets(workers):
        cores.put(cs)
    level = logging.getLogger("seamroto").getEffectiveLevel()
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(cores, min(level, logging.INFO))
    ) as pool:
        futures = {pool.submit(track_one, job): job for job in jobs}
        try:
            for fut in concurrent.futures.as_completed(futures):
                job = futures[fut]
                try:
                    report = fut.result()
                except (KeyboardInterrupt, CancelledError):
                    raise
                except Exception as err:  # the worker died (out of memory, killed): the shot is not done
                    report = ShotReport(job.shot.name, STATUS_FAILED, log=str(job.log), error=f"worker died: {err}")
                on_report(report)
        except BaseException:
            # Stop the running shots too (each removes its staged folder on SIGTERM) rather than
            # wait for them: a farm cancel kills the whole task after a grace period.
            for proc in list(getattr(pool, "_processes", {}).values()):
                with contextlib.suppress(OSError):
                    proc.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
