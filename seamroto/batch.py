"""``seamroto batch``: train, then track every shot of a manifest on one machine, resumably.

Resuming is by digest. A shot is done when one of its output folders (``out/sh010``, or a later
``out/sh010_vN``) holds a ``.seamroto_done.json`` marker whose digest matches the shot's
inputs now. The digest covers:

- every plate file of the frame range, by name, size and modification time (``--hash-plates``:
  by sha256 of the content instead, for storage that rewrites mtimes). We use stat rather than
  hashes by default because hashing 2,000 shots of 2K EXRs would read terabytes just to decide
  what to skip;
- the model, by the sha256 of its ``card.json`` (which holds the sha256 of every model file);
- the tracking options and the frame range.

Plate folders are not part of it (only file names), so a re-run through other mount points
(farm path mapping) still recognises finished shots. A done shot is skipped, so a re-run never
makes ``_v2`` for it; a shot whose inputs changed gets the next version, and nothing an artist
made is overwritten. Each shot is built in a hidden staged folder (the tracker's outputs, then
the marker) and renamed into place in one step, so a crash leaves either a complete, marked
folder or a hidden ``.partial`` one, which the next run deletes before it tracks that shot again.
Run one batch per manifest at a time (the farm runs each task once at a time).

Every shot logs to ``REPORT_DIR/logs/<shot>.log`` (appended per attempt), and the run ends with
a summary table, also written as ``REPORT_DIR/summary.csv``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import dataclasses
import datetime as _dt
import hashlib
import io
import json
import logging
import multiprocessing
import os
import platform
import queue
import re
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from seamroto import __version__
from seamroto.errors import CancelledError, ManifestError, SeamRotoError
from seamroto.fileio import VERSION_SUFFIX, atomic_write_text, next_free_dir, staged_dir
from seamroto.manifest import Manifest, ShotEntry, TrainEntry
from seamroto.progress import NullProgress, Progress

logger = logging.getLogger(__name__)

DONE_MARKER = ".seamroto_done.json"
DONE_SCHEMA = "SeamRotoBatchDone.1"
DIGEST_SCHEMA = "SeamRotoBatchDigest.1"
SUMMARY_CSV = "summary.csv"
LOGS_DIR = "logs"
REPORT_DIR_SUFFIX = "_batch"
TRACK_SUBDIR = "track"  # track_command writes here inside the staged folder; its files then move up
PARTIAL_SUFFIX = ".partial"  # fileio.staged_dir's hidden temp folders
#: Bytes a shot holds per pixel and frame while tracking: the float16 RGB plate (6) + a grey copy (1).
BYTES_PER_PIXEL_FRAME = 7
#: Share of the available memory the pool may plan to fill.
MEMORY_HEADROOM = 0.8
STATUS_TRACKED, STATUS_DONE, STATUS_FAILED, STATUS_PENDING = "tracked", "done", "failed", "pending"
SUMMARY_COLUMNS = ("shot", "status", "frames", "flagged_frames", "seconds", "output", "log", "error")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass(frozen=True)
class ShotDigest:
    """What a shot's result depends on, hashed (see the module docstring)."""

    digest: str
    first: int
    last: int
    model_card_sha256: str


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
class BatchReport:
    """What a batch did: a row per selected shot, the models it trained, where the summary is."""

    shots: Tuple[ShotReport, ...]
    trained: Tuple[Path, ...]
    report_dir: Path
    summary_csv: Optional[Path]

    @property
    def failed(self) -> Tuple[ShotReport, ...]:
        """Rows of shots that failed (their logs say why)."""
        return tuple(r for r in self.shots if r.status == STATUS_FAILED)


def track_options(manifest: Manifest, shot: ShotEntry) -> Any:
    """The ``TrackOptions`` of one shot: the manifest's options plus the shot's frame range."""
    from seamroto.pipeline import TrackOptions

    known = {f.name for f in dataclasses.fields(TrackOptions)}
    kwargs = {k: v for k, v in manifest.options.items() if k in known}
    return TrackOptions(first=shot.first, last=shot.last, **kwargs)


def shot_digest(shot: ShotEntry, options: Any, *, hash_plates: bool = False) -> ShotDigest:
    """Digest of a shot's inputs now (plates, model card, options, frame range).

    Raises:
        PlateError: The plates are missing or have gaps in the range.
        ModelError: The model folder has no card.
    """
    from seamroto.errors import ModelError
    from seamroto.models import CARD_NAME, file_sha256
    from seamroto.plates import check_sequence, expand_pattern, scan_sequence

    first, last = shot.first, shot.last
    if first is None or last is None:
        lo, hi, _ = scan_sequence(shot.plates)
        first = lo if first is None else first
        last = hi if last is None else last
    plates: List[List[Any]] = []
    for frame in check_sequence(shot.plates, first, last):
        path = expand_pattern(shot.plates, frame)
        if hash_plates:
            plates.append([os.path.basename(path), file_sha256(path)])
        else:
            st = os.stat(path)
            plates.append([os.path.basename(path), st.st_size, st.st_mtime_ns])
    card = shot.model_dir / CARD_NAME
    if not card.is_file():
        raise ModelError(
            f"the model of character {shot.character!r} is not there yet (no {CARD_NAME}); train it first "
            "(run the batch without --no-train, or let the farm job's Train step finish)",
            path=str(shot.model_dir),
        )
    card_sha = file_sha256(card)
    opts = {**dataclasses.asdict(options), "first": first, "last": last}
    doc = {"schema": DIGEST_SCHEMA, "plates": plates, "model_card_sha256": card_sha, "options": opts}
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode("utf-8")).hexdigest()
    return ShotDigest(digest, first, last, card_sha)


def output_versions(output: Path) -> List[Path]:
    """``output`` and its ``_vN`` siblings that exist, oldest first."""
    m = VERSION_SUFFIX.match(output.name)
    stem = m.group("stem") if m else output.name
    pattern = re.compile(rf"^{re.escape(stem)}(?:_v(\d+))?$")
    found: List[Tuple[int, Path]] = []
    if output.parent.is_dir():
        for p in output.parent.iterdir():
            hit = pattern.match(p.name)
            if hit and p.is_dir():
                found.append((int(hit.group(1) or 1), p))
    return [p for _, p in sorted(found)]


def read_marker(folder: Path) -> Optional[Dict[str, Any]]:
    """A folder's done marker, or None (absent, unreadable or of another schema)."""
    try:
        doc = json.loads((folder / DONE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("schema") == DONE_SCHEMA else None


def find_done(output: Path, digest: str) -> Optional[Tuple[Path, Dict[str, Any]]]:
    """The newest output version whose marker matches ``digest``, with the marker."""
    for folder in reversed(output_versions(output)):
        marker = read_marker(folder)
        if marker is not None and marker.get("digest") == digest:
            return folder, marker
    return None


def remove_stale_partials(output: Path) -> List[Path]:
    """Delete hidden staged folders a killed run left for ``output`` (or its versions)."""
    m = VERSION_SUFFIX.match(output.name)
    stem = m.group("stem") if m else output.name
    pattern = re.compile(rf"^\.{re.escape(stem)}(?:_v\d+)?\..*{re.escape(PARTIAL_SUFFIX)}$")
    removed = []
    if output.parent.is_dir():
        for p in output.parent.iterdir():
            if pattern.match(p.name) and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    for p in removed:
        logger.info("removed %s, left by an interrupted run", p)
    return removed


def default_jobs(pending: Sequence[Tuple[ShotEntry, ShotDigest]]) -> int:
    """Worker processes: one per core, fewer when the shots would not fit in memory together.

    The frame size is probed on the first pending shot (a feature's shots share a format).
    """
    from seamroto.models import machine_threads

    jobs = max(1, min(machine_threads(), len(pending)))
    if jobs == 1:
        return 1
    available = _available_memory()
    if available is None:
        return jobs
    from seamroto.plates import expand_pattern, probe

    shot, dig = pending[0]
    try:
        width, height, _, _ = probe(expand_pattern(shot.plates, dig.first))
    except SeamRotoError:
        return jobs
    frames = max(d.last - d.first + 1 for _, d in pending)
    per_shot = frames * width * height * BYTES_PER_PIXEL_FRAME
    fit = max(1, int(available * MEMORY_HEADROOM // max(1, per_shot)))
    if fit < jobs:
        logger.info("memory fits %d shot(s) at once (%.1f GB each): %d worker(s)", fit, per_shot / 1e9, fit)
    return min(jobs, fit)


def _available_memory() -> Optional[int]:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


# --- one shot, one character: run in this process or in a pool worker ------------------------


@dataclass(frozen=True)
class _ShotJob:
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


class _CancelOnly:
    """Forwards the batch's cancel to a shot without mixing the shot's progress into the batch's."""

    def __init__(self, outer: Progress) -> None:
        self._outer = outer

    def update(self, done: int, total: int, message: str = "") -> None:
        """Ignore per-frame progress (the batch reports per shot)."""

    @property
    def cancelled(self) -> bool:
        """The batch's cancel."""
        return self._outer.cancelled


def _track_one(job: _ShotJob, progress: Optional[Progress] = None) -> ShotReport:
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
        except (KeyboardInterrupt, CancelledError):
            logger.warning("%s: interrupted; nothing partial was kept", shot.name)
            raise
        except SeamRotoError as err:
            logger.error("%s failed: %s", shot.name, err)
            return ShotReport(shot.name, STATUS_FAILED, log=str(job.log), error=str(err))
        except Exception as err:  # a bug must not stop the other shots; the log has the traceback
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


def _train_one(entry: TrainEntry, log: Path, progress: Progress) -> Path:
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
    signal.signal(signal.SIGTERM, _raise_interrupt)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """A farm cancel (SIGTERM) stops like Ctrl-C: staged folders are removed, not left behind."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return
    old = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _core_sets(jobs: int) -> List[Optional[List[int]]]:
    try:
        cores = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return [None] * jobs
    if jobs > len(cores):
        return [None] * jobs
    return [cores[i::jobs] for i in range(jobs)]


def _run_pool(jobs: Sequence[_ShotJob], workers: int, on_report: Callable[[ShotReport], None]) -> None:
    """Track ``jobs`` in ``workers`` spawned processes (spawn: OpenVINO threads do not survive fork)."""
    ctx = multiprocessing.get_context("spawn")
    cores = ctx.Queue()
    for cs in _core_sets(workers):
        cores.put(cs)
    level = logging.getLogger("seamroto").getEffectiveLevel()
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(cores, min(level, logging.INFO))
    ) as pool:
        futures = {pool.submit(_track_one, job): job for job in jobs}
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
            pool.shutdown(wait=True, cancel_futures=True)
            raise


# --- the batch ------------------------------------------------------------------------------


def default_report_dir(manifest: Manifest) -> Path:
    """``<manifest folder>/<manifest name>_batch``: logs and summary beside the manifest."""
    return manifest.path.parent / f"{manifest.path.stem}{REPORT_DIR_SUFFIX}"


def select_shots(
    manifest: Manifest, shots: Sequence[str] = (), characters: Sequence[str] = ()
) -> List[ShotEntry]:
    """The manifest's shots, narrowed to ``shots`` names and ``characters`` (empty = all).

    Raises:
        ManifestError: A named shot or character is not in the manifest.
    """
    for name in shots:
        manifest.shot(name)
    unknown = [c for c in characters if c not in manifest.characters()]
    if unknown:
        raise ManifestError(
            f"no character {', '.join(map(repr, unknown))} in the manifest "
            f"(it has: {', '.join(manifest.characters())})",
            path=str(manifest.path),
        )
    return [
        s
        for s in manifest.shots
        if (not shots or s.name in shots) and (not characters or s.character in characters)
    ]


def _done_report(shot: ShotEntry, folder: Path, marker: Dict[str, Any], log: Path) -> ShotReport:
    return ShotReport(
        shot.name,
        STATUS_DONE,
        int(marker.get("frames", 0)),
        int(marker.get("flagged_frames", 0)),
        float(marker.get("seconds", 0.0)),
        str(folder),
        str(log),
    )


def run_batch(
    manifest: Manifest,
    *,
    report_dir: Optional[Path] = None,
    jobs: Optional[int] = None,
    shots: Sequence[str] = (),
    characters: Sequence[str] = (),
    train: bool = True,
    track: bool = True,
    hash_plates: bool = False,
    summary_csv: bool = True,
    progress: Optional[Progress] = None,
) -> BatchReport:
    """Train the characters that need it, then track every shot not done yet; write the summary.

    Args:
        manifest: The parsed manifest.
        report_dir: Logs and summary (default: ``default_report_dir``).
        jobs: Worker processes for tracking (default: ``default_jobs``); 1 tracks in this process.
        shots: Only these shots (names); empty = all.
        characters: Only these characters (training and tracking); empty = all.
        train: Train characters whose model folder has no card yet (needed by the selection).
        track: Track the shots; False with ``train`` trains only, False without it only
            reports (``--summary-only``: done or pending, from the markers).
        hash_plates: Digest plates by content instead of size and mtime.
        summary_csv: Write ``REPORT_DIR/summary.csv`` (farm tasks of one shot leave it to the
            job's Summary step, so concurrent tasks do not overwrite each other's).
        progress: Per-shot progress; its cancel stops the batch between frames.

    Returns:
        The report; failed shots are rows with status "failed" (the caller decides the exit code).

    Raises:
        ManifestError: A selected shot or character is not in the manifest.
        CancelledError: Cancelled (finished shots stay done; the running one leaves nothing).
    """
    progress = progress or NullProgress()
    report_dir = Path(report_dir) if report_dir else default_report_dir(manifest)
    logs = report_dir / LOGS_DIR
    selected = select_shots(manifest, shots, characters)
    wanted_chars = {s.character for s in selected} | set(characters)
    if not shots and not characters:
        wanted_chars |= {t.character for t in manifest.train}
    reports: Dict[str, ShotReport] = {}
    trained: List[Path] = []

    with _sigterm_interrupts():
        failed_chars: Dict[str, str] = {}
        if train:
            for entry in manifest.train:
                if entry.character not in wanted_chars or not entry.needed:
                    continue
                log = logs / f"train_{entry.character}.log"
                try:
                    trained.append(_train_one(entry, log, progress))
                except (KeyboardInterrupt, CancelledError):
                    raise
                except SeamRotoError as err:
                    logger.error("training %s failed: %s (log: %s)", entry.character, err, log)
                    failed_chars[entry.character] = f"training {entry.character} failed: {err}"

        pending: List[Tuple[ShotEntry, ShotDigest]] = []
        if train and not track:
            selected = []  # train only: no shot rows
        for shot in selected:
            log = logs / f"{shot.name}.log"
            if shot.character in failed_chars:
                error = failed_chars[shot.character]
                reports[shot.name] = ShotReport(shot.name, STATUS_FAILED, log=str(log), error=error)
                continue
            try:
                dig = shot_digest(shot, track_options(manifest, shot), hash_plates=hash_plates)
            except SeamRotoError as err:
                status = STATUS_FAILED if track else STATUS_PENDING
                reports[shot.name] = ShotReport(shot.name, status, log=str(log), error=str(err))
                continue
            done = find_done(shot.output, dig.digest)
            if done is not None:
                reports[shot.name] = _done_report(shot, done[0], done[1], log)
            elif track:
                pending.append((shot, dig))
            else:
                reports[shot.name] = ShotReport(shot.name, STATUS_PENDING, output=str(shot.output), log=str(log))

        total = len(selected)
        count = [total - len(pending)]

        def on_report(rep: ShotReport) -> None:
            reports[rep.shot] = rep
            count[0] += 1
            detail = rep.error if rep.status == STATUS_FAILED else f"{rep.frames} frames, {rep.flagged_frames} flagged"
            logger.info("[%d/%d] %s %s in %.1f s: %s", count[0], total, rep.shot, rep.status, rep.seconds, detail)
            progress.update(count[0], total, f"{rep.shot} {rep.status}")

        if pending:
            skipped = total - len(pending)
            logger.info("batch: %d shot(s) to track, %d already done or not trackable", len(pending), skipped)
            job_list = [_ShotJob(s, track_options(manifest, s), d, logs / f"{s.name}.log") for s, d in pending]
            workers = jobs if jobs is not None else default_jobs(pending)
            workers = max(1, min(workers, len(job_list)))
            if workers == 1:
                for job in job_list:
                    if progress.cancelled:
                        raise CancelledError("batch cancelled")
                    on_report(_track_one(job, _CancelOnly(progress)))
            else:
                logger.info("batch: %d worker processes", workers)
                _run_pool(job_list, workers, on_report)

    rows = tuple(reports[s.name] for s in selected if s.name in reports)
    csv_path = write_summary_csv(report_dir / SUMMARY_CSV, rows) if summary_csv and rows else None
    return BatchReport(rows, tuple(trained), report_dir, csv_path)


def format_summary(rows: Sequence[ShotReport]) -> str:
    """The summary as an aligned text table with a totals line (what the CLI prints)."""
    head = ("shot", "status", "frames", "flagged", "seconds", "output")
    body = [
        (r.shot, r.status, str(r.frames), str(r.flagged_frames), f"{r.seconds:.1f}", r.output or r.error)
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head) - 1)]
    right = {2, 3, 4}

    def line(row: Sequence[str]) -> str:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join([*cells, row[-1]]).rstrip()

    counts = {s: sum(1 for r in rows if r.status == s) for s in (STATUS_TRACKED, STATUS_DONE, STATUS_FAILED)}
    pending = sum(1 for r in rows if r.status == STATUS_PENDING)
    totals = (
        f"{len(rows)} shot(s): {counts[STATUS_TRACKED]} tracked, {counts[STATUS_DONE]} already done, "
        f"{counts[STATUS_FAILED]} failed" + (f", {pending} pending" if pending else "")
        + f"; {sum(r.frames for r in rows)} frames, {sum(r.flagged_frames for r in rows)} flagged, "
        f"{sum(r.seconds for r in rows):.1f} s of tracking"
    )
    return "\n".join([line(head), *(line(b) for b in body), totals])


def write_summary_csv(path: Path, rows: Sequence[ShotReport]) -> Path:
    """The summary as CSV (columns ``SUMMARY_COLUMNS``), written atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(SUMMARY_COLUMNS)
    for r in rows:
        writer.writerow([r.shot, r.status, r.frames, r.flagged_frames, f"{r.seconds:.3f}", r.output, r.log, r.error])
    return atomic_write_text(path, buf.getvalue())


def batch_command(
    manifest_path: Path,
    *,
    report_dir: Optional[Path] = None,
    jobs: Optional[int] = None,
    shots: Sequence[str] = (),
    characters: Sequence[str] = (),
    train: bool = True,
    track: bool = True,
    hash_plates: bool = False,
    summary_csv: bool = True,
    path_mapping_rules: Optional[Path] = None,
    model_paths: Sequence[Path] = (),
    progress: Optional[Progress] = None,
) -> BatchReport:
    """``seamroto batch``: read the manifest (path-mapped on a farm) and run ``run_batch``."""
    from seamroto.manifest import read_manifest
    from seamroto.pathmap import PathMapping, read_path_mapping

    mapping = read_path_mapping(path_mapping_rules) if path_mapping_rules else PathMapping()
    manifest = read_manifest(manifest_path, path_mapping=mapping, model_paths=model_paths)
    return run_batch(
        manifest,
        report_dir=report_dir,
        jobs=jobs,
        shots=shots,
        characters=characters,
        train=train,
        track=track,
        hash_plates=hash_plates,
        summary_csv=summary_csv,
        progress=progress,
    )
