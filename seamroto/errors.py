"""Every error SeamRoto raises: one flat list under SeamRotoError, each naming where and what to do."""

from __future__ import annotations

from typing import Optional, Sequence


class SeamRotoError(Exception):
    """Base of every error the core raises on purpose.

    The message says what happened, where, and what to do; the structured fields let an adapter
    (Nuke, CLI, farm) point at the file, frame or knob without parsing text.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Optional[str] = None,
        frame: Optional[int] = None,
        knob: Optional[str] = None,
        line: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.frame = frame
        self.knob = knob
        self.line = line

    def __str__(self) -> str:
        where = []
        if self.path:
            where.append(str(self.path))
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.frame is not None:
            where.append(f"frame {self.frame}")
        if self.knob:
            where.append(f"knob '{self.knob}'")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class ShapeError(SeamRotoError):
    """An array at a public boundary has the wrong shape or dtype."""

    def __init__(self, name: str, actual: object, expected: object) -> None:
        super().__init__(f"{name} has shape/dtype {actual}, expected {expected}")
        self.actual = actual
        self.expected = expected


class NkParseError(SeamRotoError):
    """A .nk script (or one knob in it) does not follow Nuke's grammar."""


class NkNodeNotFoundError(SeamRotoError):
    """The .nk script has no node of the requested class or name."""


class NkWriteError(SeamRotoError):
    """Data cannot be written as a .nk script (non-finite value, empty shape, bad knob text)."""


class PlateError(SeamRotoError):
    """Base for plate sequence problems."""


class PlateNotFoundError(PlateError):
    """No file matches the plate pattern, or the named file does not exist."""


class PlateGapError(PlateError):
    """Frames are missing inside the requested range."""

    def __init__(self, pattern: str, missing: Sequence[int]) -> None:
        shown = _frame_list(missing)
        super().__init__(
            f"{len(missing)} frame(s) missing from the sequence: {shown}. Render or copy the missing "
            "frames, or narrow the frame range to a range without gaps.",
            path=pattern,
            frame=missing[0] if missing else None,
        )
        self.missing = list(missing)


class PlateReadError(PlateError):
    """A plate file exists but cannot be decoded."""


class PlateFormatError(PlateError):
    """A plate has an unsupported extension, channel layout or resolution."""


class PlateWriteError(PlateError):
    """An image could not be written (disk full, no permission, encoder refused the data)."""


class ColourError(SeamRotoError):
    """A colour space is unknown to the OpenColorIO config in use."""


class AnnotationError(SeamRotoError):
    """Ground truth (LAIKA JSON, artists' .nk) cannot be used for training."""


class ModelError(SeamRotoError):
    """Base for model folder problems."""


class ModelSchemaError(ModelError):
    """The model card was written for a schema this version cannot read."""


class ModelChecksumError(ModelError):
    """A model file does not match the sha256 recorded in its card (truncated or edited)."""


class OutputExistsError(SeamRotoError):
    """An output would overwrite something that already exists."""


class CancelledError(SeamRotoError):
    """The user cancelled; not a failure, and nothing partial is left behind."""


class SynthError(SeamRotoError):
    """A synthetic shot request cannot be rendered (unknown character, size or frame range)."""


class ProtocolError(SeamRotoError):
    """A host request (SeamRotoRequest JSON) is malformed, of an unknown schema or command."""


class ManifestError(SeamRotoError):
    """A batch manifest (CSV, YAML or JSON) is malformed or names a shot, model or path that cannot be used."""


class PathMappingError(SeamRotoError):
    """A farm path mapping rules file is not a ``pathmapping-1.0`` document."""


class KeyRangeError(SeamRotoError):
    """Keys (roto keys, a box's key frame) lie outside the frame range of the plates."""


class ShapeNotFoundError(SeamRotoError):
    """A Roto node has no shape of a requested name."""


class MotionVectorError(PlateError):
    """A motion-vector image lacks the forward/backward channels, or does not fit the plates."""


class BoxError(SeamRotoError):
    """A tracking box is empty, not finite, or lies outside the frame."""


def _frame_list(frames: Sequence[int], limit: int = 40) -> str:
    """Compress frames into ranges (1001-1004, 1010) so a long gap list stays readable."""
    runs: list[str] = []
    frames = sorted(frames)
    i = 0
    while i < len(frames):
        j = i
        while j + 1 < len(frames) and frames[j + 1] == frames[j] + 1:
            j += 1
        runs.append(str(frames[i]) if i == j else f"{frames[i]}-{frames[j]}")
        i = j + 1
    if len(runs) > limit:
        return ", ".join(runs[:limit]) + f", ... ({len(runs) - limit} more ranges)"
    return ", ".join(runs)
