"""The adapter's own errors: one flat list under PluginError, each naming the node or knob."""

from __future__ import annotations

from typing import Optional


class PluginError(Exception):
    """Base of every error the adapter raises on purpose.

    ``artist_facing`` errors are fixed by the artist (pick a character, connect a plate); the
    others need a TD (install, interpreter, a crash in the core), so their message points at
    the log file.
    """

    artist_facing = True

    def __init__(
        self,
        message: str,
        *,
        node: Optional[str] = None,
        knob: Optional[str] = None,
        path: Optional[str] = None,
        frame: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.node = node
        self.knob = knob
        self.path = path
        self.frame = frame

    def __str__(self) -> str:
        where = []
        if self.node and self.knob:
            where.append(f"{self.node}.{self.knob}")
        elif self.node:
            where.append(self.node)
        elif self.knob:
            where.append(f"knob '{self.knob}'")
        if self.path:
            where.append(str(self.path))
        if self.frame is not None:
            where.append(f"frame {self.frame}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class KnobError(PluginError):
    """A knob holds a value the action cannot use (the message says which value to pick)."""


class InputError(PluginError):
    """A node's input is missing or of the wrong kind (no plate, not a Tracker4)."""


class PasteError(PluginError):
    """A result .nk cannot be pasted safely (missing, or it would change the script's Root)."""


class RenderError(PluginError):
    """Rendering a non-Read input to temporary EXRs failed."""


class BridgeError(PluginError):
    """The adapter cannot reach the core (no interpreter, it crashed, it spoke no protocol)."""

    artist_facing = False


class CoreError(PluginError):
    """The core reported an error; ``artist_facing`` says whether it was a SeamRotoError."""

    def __init__(
        self,
        message: str,
        *,
        error_class: str,
        artist_facing: bool,
        traceback: str = "",
        path: Optional[str] = None,
        frame: Optional[int] = None,
        knob: Optional[str] = None,
    ) -> None:
        super().__init__(message, path=path, frame=frame, knob=knob)
        self.error_class = error_class
        self.artist_facing = artist_facing
        self.traceback = traceback


class CancelledByUser(PluginError):
    """The artist cancelled; not a failure, and nothing was pasted or left half-made."""
