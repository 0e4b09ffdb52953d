"""Atomic writes and versioned output folders, so nothing an artist made is overwritten."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator, Union

from seamroto.errors import OutputExistsError

PathLike = Union[str, "os.PathLike[str]"]
VERSION_SUFFIX = re.compile(r"^(?P<stem>.*?)_v(?P<num>\d+)$")


def _umask() -> int:
    """The process umask (read by setting it, so set it straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _usual_mode(path: Path, directory: bool) -> None:
    """Give a temp file or folder the mode a plain open()/mkdir() would.

    mkstemp/mkdtemp make private (0600/0700) entries, but outputs live on shared storage.
    """
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to a temp file beside ``path`` and rename it into place."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        _usual_mode(Path(tmp), directory=False)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Atomic text write, UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``path`` for a library that writes files itself; rename on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        _usual_mode(Path(tmp), directory=False)
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def next_free_dir(path: PathLike) -> Path:
    """``path`` if it does not exist, else ``path_v2``, ``path_v3``... (a re-run never overwrites)."""
    target = Path(path)
    if not target.exists():
        return target
    m = VERSION_SUFFIX.match(target.name)
    stem, num = (m.group("stem"), int(m.group("num"))) if m else (target.name, 1)
    while True:
        num += 1
        candidate = target.with_name(f"{stem}_v{num}")
        if not candidate.exists():
            return candidate


def next_free_file(path: PathLike) -> Path:
    """``path`` if it does not exist, else ``name_v2.ext``, ``name_v3.ext``... (files, not folders).

    Why not ``next_free_dir``: a file's version goes before its extension (``out_v2.nk``).
    """
    target = Path(path)
    if not target.exists():
        return target
    m = VERSION_SUFFIX.match(target.stem)
    stem, num = (m.group("stem"), int(m.group("num"))) if m else (target.stem, 1)
    while True:
        num += 1
        candidate = target.with_name(f"{stem}_v{num}{target.suffix}")
        if not candidate.exists():
            return candidate


@contextlib.contextmanager
def staged_dir(path: PathLike) -> Iterator[Path]:
    """Build an output folder under a hidden temp name and rename it to ``path`` when complete.

    A crash or cancel leaves no half-written output folder under the final name.

    Raises:
        OutputExistsError: ``path`` exists, before any work or (made meanwhile by another
            process) at the rename; callers pick a free name first (``next_free_dir``).
    """
    target = Path(path)
    if target.exists():
        raise OutputExistsError(f"{target} exists; SeamRoto never overwrites it: choose a new folder", path=str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        _usual_mode(tmp, directory=True)
        yield tmp
        if target.exists():
            raise OutputExistsError(f"{target} appeared while it was being written; the new output was not kept",
                                    path=str(target))
        os.replace(tmp, target)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
