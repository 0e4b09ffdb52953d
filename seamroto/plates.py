"""Plate sequences on disk: Nuke frame patterns, gap checks, and OpenImageIO reads and writes.

Everything goes through OpenImageIO in both directions (cv2 writes broken DWAA EXRs while
reporting success, see STACK.md). Images are float32 arrays ``(H, W, C)``, origin top-left, y
down (``_img`` space). EXR and float TIFFs come back scene-linear as stored; PNG, JPEG, integer
TIFF and DPX come back as stored code values in 0..1 (display-referred): ``colour.py`` converts.

Frame patterns use Nuke's syntax: ``plate.####.exr`` (one ``#`` per digit), ``plate.%04d.exr``,
``plate.#.exr`` / ``plate.%d.exr`` (unpadded) and ``plate.@@@@.exr`` (one ``@`` per digit).
A fileseq-style pattern with a frame range, ``plate.1001-1100#.exr``, follows fileseq's rule
instead (``#`` = 4 digits, ``@`` = 1) and restricts the frames to that range.
"""

from __future__ import annotations

import collections
import logging
import os
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Deque, Dict, Generator, Iterable, Iterator, List, Optional, Sequence, Tuple, TypeVar, Union

import fileseq
import numpy as np
import OpenImageIO as oiio

from seamroto.datamodel import Shot
from seamroto.errors import (
    PlateError,
    PlateFormatError,
    PlateGapError,
    PlateNotFoundError,
    PlateReadError,
    PlateWriteError,
    ShapeError,
)
from seamroto.fileio import atomic_path

logger = logging.getLogger(__name__)
T = TypeVar("T")

PathLike = Union[str, "os.PathLike[str]"]

#: Extension (lower case) -> OpenImageIO format name, for every plate format we support.
SUPPORTED_EXTENSIONS: Dict[str, str] = {
    ".exr": "openexr",
    ".dpx": "dpx",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
}
#: Bit depths ``write_frame`` accepts per format, the first being the default.
WRITE_BITS: Dict[str, Tuple[int, ...]] = {
    "png": (8, 16),
    "tiff": (16, 8, 32),
    "dpx": (10, 8, 12, 16),
    "jpeg": (8,),
}
EXR_COMPRESSIONS = ("none", "rle", "zips", "zip", "piz", "pxr24", "b44", "b44a", "dwaa", "dwab")
JPEG_QUALITY = 95
#: Frames decoded ahead of the consumer by ``PlateSequence.iter_frames`` (memory: depth + 1 frames).
DEFAULT_PREFETCH = 1
#: How many neighbouring file names an error message shows.
SIMILAR_FILES_SHOWN = 8
CHANNEL_LETTERS = "RGBA"

# One frame token in a file name. Order matters: fileseq ranges first, then Nuke's forms.
_FILESEQ_TOKEN = re.compile(r"(?<=[._])(?P<range>\d+-\d+(?:[x:]\d+)?(?:,\d+(?:-\d+(?:[x:]\d+)?)?)*)(?P<pad>[#@]+)")
_NUKE_TOKEN = re.compile(r"%(?:0(?P<printf>\d+))?d|(?P<hashes>#+)|(?P<ats>@+)")
_FILESEQ_PAD = {"#": 4, "@": 1}


@dataclass(frozen=True)
class FramePattern:
    """A parsed frame pattern: ``directory/head`` + frame number padded to ``pad`` + ``tail``.

    ``pad`` is the minimum digit count (1 = unpadded). ``frames`` holds the frames named by a
    fileseq-style range in the pattern, or None when the pattern names none.
    """

    directory: str
    head: str
    pad: int
    tail: str
    frames: Optional[Tuple[int, ...]] = None

    def format(self, frame: int) -> str:
        """The file path of ``frame``, printf-style (``%04d`` of -5 is ``-005``, as in Nuke)."""
        name = f"{self.head}{int(frame):0{self.pad}d}{self.tail}"
        return os.path.join(self.directory, name) if self.directory else name

    def _join(self, token: str) -> str:
        name = f"{self.head}{token}{self.tail}"
        return os.path.join(self.directory, name) if self.directory else name


def is_pattern(path: PathLike) -> bool:
    """True when the file name holds a frame token (``####``, ``%04d``, ``@``, fileseq range)."""
    name = os.path.basename(os.fspath(path))
    return bool(_FILESEQ_TOKEN.search(name) or _NUKE_TOKEN.search(name))


def parse_pattern(pattern: PathLike) -> FramePattern:
    """Split a frame pattern into head, padding and tail.

    Args:
        pattern: A path whose file name holds exactly one frame token.

    Returns:
        The parsed pattern.

    Raises:
        PlateFormatError: The file name holds no frame token, or more than one.
    """
    text = os.fspath(pattern)
    directory, name = os.path.split(text)
    m = _FILESEQ_TOKEN.search(name)
    if m is not None:
        rest = name[: m.start()] + name[m.end() :]
        if _NUKE_TOKEN.search(rest) or _FILESEQ_TOKEN.search(rest):
            raise _multiple_tokens(text)
        try:
            frames = tuple(int(f) for f in fileseq.FrameSet(m.group("range")))
        except fileseq.ParseException as err:  # pragma: no cover - the regex admits valid ranges
            raise PlateFormatError(f"cannot read the frame range {m.group('range')!r}", path=text) from err
        pad = sum(_FILESEQ_PAD[c] for c in m.group("pad"))
        return FramePattern(directory, name[: m.start()], pad, name[m.end() :], frames)
    tokens = list(_NUKE_TOKEN.finditer(name))
    if not tokens:
        raise PlateFormatError(
            "has no frame number pattern: write it as name.####.ext or name.%04d.ext",
            path=text,
        )
    if len(tokens) > 1:
        raise _multiple_tokens(text)
    tok = tokens[0]
    if tok.group("hashes"):
        pad = len(tok.group("hashes"))
    elif tok.group("ats"):
        pad = len(tok.group("ats"))
    else:
        pad = int(tok.group("printf") or 1)
    return FramePattern(directory, name[: tok.start()], max(pad, 1), name[tok.end() :])


def _multiple_tokens(text: str) -> PlateFormatError:
    return PlateFormatError(
        "has more than one frame number pattern in the file name; keep exactly one (name.####.ext)",
        path=text,
    )


def expand_pattern(pattern: PathLike, frame: int) -> str:
    """The file name of ``frame`` (Nuke's substitution); a path without a token is returned as is.

    A still (no token) is the same file on every frame, as a Nuke Read of one file shows it.
    """
    if not is_pattern(pattern):
        return os.fspath(pattern)
    return parse_pattern(pattern).format(frame)


def to_printf(pattern: PathLike) -> str:
    """The pattern in printf form (``plate.%04d.exr``; unpadded is ``%d``), range dropped."""
    fp = parse_pattern(pattern)
    return fp._join(f"%0{fp.pad}d" if fp.pad > 1 else "%d")


def to_hashes(pattern: PathLike) -> str:
    """The pattern in Nuke hash form (``plate.####.exr``; unpadded is ``#``), range dropped."""
    fp = parse_pattern(pattern)
    return fp._join("#" * fp.pad)


def format_of(path: PathLike) -> str:
    """OpenImageIO format name for ``path``'s extension.

    Raises:
        PlateFormatError: The extension is not one of ``SUPPORTED_EXTENSIONS``.
    """
    text = os.fspath(path)
    ext = os.path.splitext(text)[1].lower()
    fmt = SUPPORTED_EXTENSIONS.get(ext)
    if fmt is None:
        supported = ", ".join(sorted(SUPPORTED_EXTENSIONS))
        raise PlateFormatError(
            f"unsupported image extension {ext or '(none)'!r}; supported: {supported}. "
            "Convert the plates (for example to EXR) or point at the right files.",
            path=text,
        )
    return fmt


def _list_dir(directory: str) -> List[str]:
    try:
        return sorted(os.listdir(directory or "."))
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        return []


def _frames_on_disk(fp: FramePattern, names: Iterable[str]) -> List[int]:
    rx = re.compile(re.escape(fp.head) + r"(-?\d+)" + re.escape(fp.tail) + r"\Z")
    found = []
    for name in names:
        m = rx.match(name)
        # Nuke only finds a file whose digits are exactly the printf of its frame ("0012" for
        # ####, not "012" or "00012").
        if m and f"{int(m.group(1)):0{fp.pad}d}" == m.group(1):
            found.append(int(m.group(1)))
    return sorted(found)


def _similar_files_hint(fp: FramePattern, names: Sequence[str]) -> str:
    """Say what IS in the folder, so a wrong pattern or range is obvious.

    The pattern's own frames if any, else files that differ only in padding, else files with
    the same extension or name start.
    """
    loose = re.compile(re.escape(fp.head) + r"(-?\d+)" + re.escape(fp.tail) + r"\Z")
    exact = _frames_on_disk(fp, names)
    if exact:
        return f" The sequence on disk has {len(exact)} frame(s) from {exact[0]} to {exact[-1]}."
    other_pad = [n for n in names if loose.match(n)]
    if other_pad:
        m = loose.match(other_pad[0])
        digits = len(m.group(1).lstrip("-")) if m else fp.pad
        suggestion = fp._join("#" * digits)
        return (
            f" {len(other_pad)} file(s) match with different frame padding, e.g. "
            f"{other_pad[0]!r}: try {os.path.basename(suggestion)!r}."
        )
    ext = os.path.splitext(fp.tail)[1].lower()
    stem = fp.head.rstrip("._-")
    similar = [
        n
        for n in names
        if not n.startswith(".") and ((ext and n.lower().endswith(ext)) or (stem and n.startswith(stem)))
    ]
    if not similar:
        return " The folder holds no similar files." if names else " The folder is empty."
    shown = ", ".join(similar[:SIMILAR_FILES_SHOWN])
    more = f" (+{len(similar) - SIMILAR_FILES_SHOWN} more)" if len(similar) > SIMILAR_FILES_SHOWN else ""
    return f" Similar files there: {shown}{more}."


def _not_found(fp: FramePattern, pattern: str, names: Sequence[str]) -> PlateNotFoundError:
    folder = fp.directory or "."
    if not os.path.isdir(folder):
        return PlateNotFoundError(f"the folder {folder!r} does not exist; check the path or the mount.", path=pattern)
    return PlateNotFoundError(
        f"no file in {folder!r} matches the pattern {os.path.basename(pattern)!r}." + _similar_files_hint(fp, names),
        path=pattern,
    )


def scan_sequence(pattern: PathLike) -> Tuple[int, int, List[int]]:
    """Find the frames of a sequence on disk, with one directory listing.

    Args:
        pattern: A frame pattern (``plate.####.exr``). A fileseq range in it limits the frames.

    Returns:
        ``(first, last, frames_found)``, frames sorted ascending.

    Raises:
        PlateFormatError: The pattern has no frame token or an unsupported extension.
        PlateNotFoundError: No file matches; the message lists similar files in the folder.
    """
    text = os.fspath(pattern)
    fp = parse_pattern(text)
    format_of(text)
    names = _list_dir(fp.directory)
    frames = _frames_on_disk(fp, names)
    if fp.frames is not None:
        wanted = set(fp.frames)
        frames = [f for f in frames if f in wanted]
    if not frames:
        raise _not_found(fp, text, names)
    return frames[0], frames[-1], frames


def check_sequence(pattern: PathLike, first: int, last: int) -> List[int]:
    """Check that every frame from ``first`` to ``last`` exists, before any work starts.

    Returns:
        The frames, ``first`` to ``last`` inclusive.

    Raises:
        PlateError: ``first`` is after ``last``.
        PlateNotFoundError: No file of the range exists (the message names what does).
        PlateGapError: Some frames are missing; one error lists all of them.
    """
    text = os.fspath(pattern)
    if first > last:
        raise PlateError(f"the frame range {first}-{last} is empty (first > last)", path=text)
    fp = parse_pattern(text)
    format_of(text)
    names = _list_dir(fp.directory)
    on_disk = set(_frames_on_disk(fp, names))
    wanted = range(first, last + 1)
    missing = [f for f in wanted if f not in on_disk]
    if len(missing) == len(wanted):
        if on_disk:
            lo, hi = min(on_disk), max(on_disk)
            raise PlateNotFoundError(
                f"none of frames {first}-{last} exist; the folder holds frames {lo}-{hi} of "
                "this pattern. Set the frame range to match the plates.",
                path=text,
            )
        raise _not_found(fp, text, names)
    if missing:
        raise PlateGapError(text, missing)
    return list(wanted)


def _resolve(path_or_pattern: PathLike, frame: Optional[int]) -> str:
    text = os.fspath(path_or_pattern)
    if is_pattern(text):
        if frame is None:
            raise PlateFormatError("is a frame pattern: pass the frame to read", path=text)
        return parse_pattern(text).format(frame)
    return text


def _channel_indices(spec: oiio.ImageSpec, channels: str) -> List[int]:
    """Index of each requested channel in the file; -1 = fill (alpha 1 when the file has none)."""
    names = [n.split(".")[-1].upper() for n in spec.channelnames]
    aliases = {"R": ("R", "RED"), "G": ("G", "GREEN"), "B": ("B", "BLUE"), "A": ("A", "ALPHA")}

    def find(letter: str) -> int:
        for alias in aliases[letter]:
            if alias in names:
                return names.index(alias)
        return -1

    colour = [find(c) for c in "RGB"]
    if -1 in colour:
        grey = names.index("Y") if "Y" in names else 0
        if spec.nchannels >= 3 and "Y" not in names:
            colour = [0, 1, 2]  # unnamed channels: take them in order
        else:
            colour = [grey, grey, grey]
    alpha = find("A") if find("A") >= 0 else spec.alpha_channel
    out = []
    for c in channels:
        if c == "A":
            out.append(alpha if alpha is not None and alpha >= 0 else -1)
        else:
            out.append(colour["RGB".index(c)])
    return out


def read_frame(path_or_pattern: PathLike, frame: Optional[int] = None, *, channels: str = "RGB") -> np.ndarray:
    """Decode one image as stored: scene-linear for EXR/float, code values 0..1 otherwise.

    The whole display window is returned (a smaller EXR data window is placed in it, black
    outside, as Nuke shows it). Grey files give R = G = B; a missing alpha reads as 1.

    Args:
        path_or_pattern: A file, or a frame pattern together with ``frame``.
        frame: The frame to read (needed for a pattern; used in error messages for a file).
        channels: Letters from ``RGBA`` in the order wanted, e.g. ``"RGB"`` or ``"RGBA"``.

    Returns:
        Shape: (H, W, len(channels)) float32, _img space.

    Raises:
        PlateFormatError: Unsupported extension or channel letters.
        PlateNotFoundError: The file does not exist.
        PlateReadError: The file exists but cannot be decoded (corrupt, truncated).
    """
    if not channels or any(c not in CHANNEL_LETTERS for c in channels):
        raise PlateFormatError(
            f"channels {channels!r} must be letters from {CHANNEL_LETTERS!r}",
            path=os.fspath(path_or_pattern),
            frame=frame,
        )
    path = _resolve(path_or_pattern, frame)
    format_of(path)
    if not os.path.isfile(path):
        folder = os.path.dirname(path)
        names = _list_dir(folder)
        hint = ""
        if is_pattern(path_or_pattern):
            hint = _similar_files_hint(parse_pattern(path_or_pattern), names)
        raise PlateNotFoundError(
            "the plate file does not exist; check the frame range and the path." + hint,
            path=path,
            frame=frame,
        )
    inp = oiio.ImageInput.open(path)
    if inp is None:
        raise PlateReadError(
            f"cannot open the image ({_oiio_error()}); re-render or re-copy this frame.",
            path=path,
            frame=frame,
        )
    try:
        spec = inp.spec()
        idx = _channel_indices(spec, channels)
        used = [i for i in idx if i >= 0] or [0]
        lo, hi = min(used), max(used) + 1
        pixels = inp.read_image(0, 0, lo, hi, "float")
        if pixels is None or inp.has_error:
            raise PlateReadError(
                f"cannot decode the image ({inp.geterror() or 'no data'}); the file is probably "
                "truncated or corrupt: re-render or re-copy this frame.",
                path=path,
                frame=frame,
            )
    finally:
        inp.close()
    pixels = np.asarray(pixels, dtype=np.float32).reshape(spec.height, spec.width, hi - lo)
    out = np.empty((spec.height, spec.width, len(channels)), dtype=np.float32)
    for k, i in enumerate(idx):
        if i < 0:
            out[..., k] = 1.0
        else:
            out[..., k] = pixels[..., i - lo]
    return _to_display_window(out, spec)


def _to_display_window(data: np.ndarray, spec: oiio.ImageSpec) -> np.ndarray:
    """Place the data window inside the display window (EXR overscan or crop)."""
    if (spec.x, spec.y, spec.width, spec.height) == (
        spec.full_x,
        spec.full_y,
        spec.full_width,
        spec.full_height,
    ):
        return data
    full = np.zeros((spec.full_height, spec.full_width, data.shape[2]), dtype=np.float32)
    x0, y0 = spec.x - spec.full_x, spec.y - spec.full_y
    dx0, dy0 = max(0, -x0), max(0, -y0)
    fx0, fy0 = max(0, x0), max(0, y0)
    w = min(spec.width - dx0, spec.full_width - fx0)
    h = min(spec.height - dy0, spec.full_height - fy0)
    if w > 0 and h > 0:
        full[fy0 : fy0 + h, fx0 : fx0 + w] = data[dy0 : dy0 + h, dx0 : dx0 + w]
    return full


def _oiio_error() -> str:
    return oiio.geterror().strip().replace("\n", "; ") or "unknown error"


def probe(path: PathLike) -> Tuple[int, int, int, float]:
    """Read only the header: ``(width, height, channels, pixel_aspect)`` of the display window.

    Raises:
        PlateFormatError: Unsupported extension.
        PlateNotFoundError: The file does not exist.
        PlateReadError: The header cannot be read.
    """
    text = os.fspath(path)
    format_of(text)
    if not os.path.isfile(text):
        raise PlateNotFoundError("the plate file does not exist", path=text)
    inp = oiio.ImageInput.open(text)
    if inp is None:
        raise PlateReadError(f"cannot read the image header ({_oiio_error()})", path=text)
    try:
        spec = inp.spec()
        aspect = float(spec.get_float_attribute("PixelAspectRatio", 1.0)) or 1.0
        return int(spec.full_width), int(spec.full_height), int(spec.nchannels), aspect
    finally:
        inp.close()


PNG_COMPRESSION_LEVEL = 1


def write_frame(
    path: PathLike,
    img: np.ndarray,
    *,
    half: bool = True,
    compression: str = "zip",
    bits: Optional[int] = None,
    pixel_aspect: float = 1.0,
) -> Path:
    """Write one image atomically (temp file with the same extension, then rename).

    The format follows the extension. Integer formats take values 0..1 (clamped, rounded);
    integer arrays (uint8/uint16) are written with their own full range.

    Args:
        path: Target file; its folder is created.
        img: Shape: (H, W) or (H, W, C) with C in 1, 3, 4; float or uint8/uint16.
        half: EXR only: half float (True) or 32-bit float.
        compression: EXR only: one of ``EXR_COMPRESSIONS``.
        bits: Bit depth for PNG (8, 16), TIFF (16, 8, 32 = float), DPX (10, 8, 12, 16), JPEG (8);
            None = the first listed.
        pixel_aspect: Stored in the header for anamorphic plates.

    Returns:
        The written path.

    Raises:
        ShapeError: ``img`` has an unsupported shape or dtype.
        PlateFormatError: Unsupported extension, bit depth or compression.
        PlateWriteError: The encoder or the file system refused the write.
    """
    target = Path(path)
    fmt = format_of(target)
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ShapeError("img", arr.shape, "(H, W) or (H, W, C) with C in 1, 3, 4")
    if arr.dtype.kind == "f":
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    elif arr.dtype not in (np.uint8, np.uint16):
        raise ShapeError("img", arr.dtype, "float16/32/64, uint8 or uint16")
    else:
        arr = np.ascontiguousarray(arr)
    height, width, nch = arr.shape

    attrs: Dict[str, object] = {}
    if fmt == "openexr":
        if compression not in EXR_COMPRESSIONS:
            raise PlateFormatError(
                f"unknown EXR compression {compression!r}; use one of {', '.join(EXR_COMPRESSIONS)}",
                path=str(target),
            )
        pixel_type = "half" if half else "float"
        attrs["compression"] = compression
    else:
        allowed = WRITE_BITS[fmt]
        depth = allowed[0] if bits is None else int(bits)
        if depth not in allowed:
            raise PlateFormatError(f"{fmt} cannot be written with {depth} bits; use one of {allowed}", path=str(target))
        pixel_type = {8: "uint8", 32: "float"}.get(depth, "uint16")
        if fmt == "dpx" or depth not in (8, 16, 32):
            attrs["oiio:BitsPerSample"] = depth
        if depth in (10, 12) and arr.dtype.kind == "f":
            # OIIO truncates its uint16 to the packed depth (up to 1 LSB off); rounding here
            # first keeps the error at half a code value.
            codes = np.rint(np.clip(np.nan_to_num(arr), 0.0, 1.0) * (2**depth - 1)).astype(np.uint16)
            arr = np.ascontiguousarray(codes << np.uint16(16 - depth))
        if fmt == "jpeg":
            attrs["Compression"] = f"jpeg:{JPEG_QUALITY}"
        if fmt == "png":
            # zlib's default level costs ~1 s a 2K frame; level 1 is ~5x faster, files ~15% larger.
            attrs["png:compressionLevel"] = PNG_COMPRESSION_LEVEL

    spec = oiio.ImageSpec(width, height, nch, pixel_type)
    spec.channelnames = {1: ("Y",), 3: ("R", "G", "B"), 4: ("R", "G", "B", "A")}[nch]
    spec.alpha_channel = 3 if nch == 4 else -1
    spec.attribute("PixelAspectRatio", float(pixel_aspect))
    for key, value in attrs.items():
        spec.attribute(key, value)
    try:
        with atomic_path(target) as tmp:
            out = oiio.ImageOutput.create(str(tmp))
            if out is None:
                raise PlateWriteError(f"no {fmt} writer ({_oiio_error()})", path=str(target))
            try:
                if not out.open(str(tmp), spec) or not out.write_image(arr):
                    raise PlateWriteError(
                        f"the {fmt} writer failed ({out.geterror() or 'unknown error'}); check "
                        "free disk space and permissions.",
                        path=str(target),
                    )
            finally:
                out.close()
    except OSError as err:
        raise PlateWriteError(f"cannot write the image ({err})", path=str(target)) from err
    return target


@dataclass(frozen=True)
class PlateSequence:
    """A checked plate sequence: where it is, its frame range and its resolution.

    Build it with ``PlateSequence.open`` (scans, checks gaps, probes the first frame).
    """

    pattern: str
    first: int
    last: int
    width: int
    height: int
    pixel_aspect: float = 1.0
    channels: int = 3
    colourspace: str = ""

    @classmethod
    def open(
        cls,
        pattern: PathLike,
        first: Optional[int] = None,
        last: Optional[int] = None,
        *,
        check: bool = True,
        colourspace: Optional[str] = None,
    ) -> PlateSequence:
        """Find a sequence on disk, fail early on gaps, and read the first frame's header.

        Args:
            pattern: Frame pattern in Nuke syntax.
            first: First frame; None = the first on disk.
            last: Last frame; None = the last on disk.
            check: Raise ``PlateGapError`` now for missing frames (else on the missing read).
            colourspace: Colour space of the files; None = the default for the extension.

        Raises:
            PlateFormatError, PlateNotFoundError, PlateGapError, PlateReadError.
        """
        text = os.fspath(pattern)
        if first is None or last is None:
            lo, hi, _ = scan_sequence(text)
            first = lo if first is None else first
            last = hi if last is None else last
        if check:
            check_sequence(text, first, last)
        width, height, nch, aspect = probe(parse_pattern(text).format(first))
        if colourspace is None:
            colourspace = _default_colourspace(text)
        return cls(text, first, last, width, height, aspect, nch, colourspace)

    @classmethod
    def from_shot(cls, shot: Shot, *, check: bool = True) -> PlateSequence:
        """The sequence a ``Shot`` names, checked against the files on disk."""
        return cls.open(shot.plates, shot.first, shot.last, check=check, colourspace=shot.colourspace)

    @property
    def frames(self) -> range:
        """Every frame, inclusive of ``last``."""
        return range(self.first, self.last + 1)

    def __len__(self) -> int:
        return len(self.frames)

    def shot(self) -> Shot:
        """The data-model ``Shot`` for this sequence."""
        return Shot(
            self.pattern,
            self.first,
            self.last,
            self.width,
            self.height,
            self.pixel_aspect,
            self.colourspace or _default_colourspace(self.pattern),
        )

    def path(self, frame: int) -> str:
        """The file of ``frame``."""
        return expand_pattern(self.pattern, frame)

    def read(self, frame: int, *, channels: str = "RGB") -> np.ndarray:
        """Decode ``frame`` as stored; it must have the sequence's resolution.

        Returns:
            Shape: (H, W, len(channels)) float32, _img space.

        Raises:
            PlateNotFoundError, PlateReadError, PlateFormatError (resolution differs).
        """
        img = read_frame(self.path(frame), frame, channels=channels)
        if img.shape[:2] != (self.height, self.width):
            raise PlateFormatError(
                f"is {img.shape[1]}x{img.shape[0]} but the sequence is {self.width}x"
                f"{self.height}; re-render the frame at the plate resolution.",
                path=self.path(frame),
                frame=frame,
            )
        return img

    def iter_frames(
        self,
        frames: Optional[Iterable[int]] = None,
        *,
        prefetch: int = DEFAULT_PREFETCH,
        channels: str = "RGB",
    ) -> Generator[Tuple[int, np.ndarray], None, None]:
        """Yield ``(frame, image)`` in order, decoding up to ``prefetch`` frames ahead.

        One background thread decodes (OpenImageIO releases the GIL) while the caller computes
        on the previous frame; at most ``prefetch + 1`` frames are held. Errors surface on the
        frame they belong to. Stopping early (break) cancels what is queued.

        Args:
            frames: Frames to read; None = every frame of the sequence.
            prefetch: Frames decoded ahead; 0 = read in the calling thread.
            channels: As in ``read_frame``.
        """
        yield from self.iter_prepared(_same, frames, prefetch=prefetch, channels=channels)

    def iter_prepared(
        self,
        prepare: Callable[[np.ndarray], T],
        frames: Optional[Iterable[int]] = None,
        *,
        prefetch: int = DEFAULT_PREFETCH,
        channels: str = "RGB",
        workers: int = 1,
    ) -> Generator[Tuple[int, T], None, None]:
        """As ``iter_frames``, yielding ``(frame, prepare(image))``, ``prepare`` run in the decode thread.

        Per-frame work that needs only the image (a resize, a colour conversion) then overlaps
        with the caller's. ``workers`` threads decode frames side by side (one EXR alone does
        not keep two cores busy); frames are still yielded in order.
        """
        order = iter(self.frames if frames is None else frames)

        def load(frame: int) -> T:
            return prepare(self.read(frame, channels=channels))

        if prefetch <= 0:
            for frame in order:
                yield frame, load(frame)
            return
        pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="seamroto-plates")
        pending: Deque[Tuple[int, Future[T]]] = collections.deque()
        try:
            for frame in order:
                pending.append((frame, pool.submit(load, frame)))
                if len(pending) >= prefetch:
                    break
            while pending:
                frame, future = pending.popleft()
                nxt = next(order, None)
                if nxt is not None:
                    pending.append((nxt, pool.submit(load, nxt)))
                yield frame, future.result()
        finally:
            for _, future in pending:
                future.cancel()
            pool.shutdown(wait=True)

    def __iter__(self) -> Iterator[Tuple[int, np.ndarray]]:
        return self.iter_frames()


def _same(img: np.ndarray) -> np.ndarray:
    return img


def _default_colourspace(pattern: str) -> str:
    """The OCIO space a file of this extension usually holds (imported late: colour loads OCIO)."""
    from seamroto.colour import colourspace_for

    return colourspace_for(pattern)
