"""``seamroto batch``: train, then track every shot of a manifest on one machine, resumably.

A shot whose inputs are unchanged since it was tracked is skipped (``batchstate``: digests and
done markers), so a re-run never makes ``_v2`` for it; a shot whose inputs changed gets the next
version, and nothing an artist made is overwritten. Shots run in a pool of worker processes
(``batchworker``), each built atomically, so an interrupted shot restarts cleanly. Run one batch
per manifest at a time (the farm runs each task once at a time).

Every shot logs to ``REPORT_DIR/logs/<shot>.log`` (appended per attempt), and the run ends with
a summary table, also written as ``REPORT_DIR/summary.csv``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from seamroto import batchworker
from seamroto.batchstate import ShotDigest, find_done, shot_digest
from seamroto.batchworker import (
    STATUS_DONE,
    STATUS_FAILED,
    STATUS_PENDING,
    STATUS_TRACKED,
    ShotJob,
    ShotReport,
)
from seamroto.errors import CancelledError, ManifestError, SeamRotoError
from seamroto.fileio import atomic_write_text
from seamroto.manifest import Manifest, ShotEntry
from seamroto.progress import NullProgress, Progress

logger = logging.getLogger(__name__)

SUMMARY_CSV = "summary.csv"
LOGS_DIR = "logs"
REPORT_DIR_SUFFIX = "_batch"
#: Share of the available memory the pool may plan to fill.
MEMORY_HEADROOM = 0.8
SUMMARY_COLUMNS = ("shot", "status", "frames", "flagged_frames", "seconds", "output", "log", "error")


@dataclass(frozen=True)
class BatchReport:
    """What a batch did: a row per selected shot, the models it trained, where the summary is."""

    shots: Tuple[ShotReport, ...]
    trained: Tuple[Path, ...]
    report_dir: Path
    summary_csv: Optional[Path]
    train_errors: Tuple[str, ...] = ()

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
    from seamroto.detection import memory_bytes

    per_shot = memory_bytes(frames, width, height)
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

    with batchworker.stop_signals():
        failed_chars: Dict[str, str] = {}
        if train:
            for entry in manifest.train:
                if entry.character not in wanted_chars or not entry.needed:
                    continue
                log = logs / f"train_{entry.character}.log"
                try:
                    trained.append(batchworker.train_one(entry, log, progress))
                except (KeyboardInterrupt, CancelledError):
                    raise
                except SeamRotoError as err:
                    batchworker.check_stop(err)
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
            job_list = [ShotJob(s, track_options(manifest, s), d, logs / f"{s.name}.log") for s, d in pending]
            workers = jobs if jobs is not None else default_jobs(pending)
            workers = max(1, min(workers, len(job_list)))
            if workers == 1:
                for job in job_list:
                    batchworker.check_stop()
                    if progress.cancelled:
                        raise CancelledError("batch cancelled")
                    on_report(batchworker.track_one(job, batchworker.CancelOnly(progress)))
            else:
                logger.info("batch: %d worker processes", workers)
                batchworker.run_pool(job_list, workers, on_report)

    rows = tuple(reports[s.name] for s in selected if s.name in reports)
    csv_path = write_summary_csv(report_dir / SUMMARY_CSV, rows) if summary_csv and rows else None
    return BatchReport(rows, tuple(trained), report_dir, csv_path, tuple(failed_chars.values()))


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
