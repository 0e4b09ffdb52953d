"""Plates for the core: a Read's own files, or any upstream tree rendered to temporary EXRs.

The core reads image files, not Nuke's node graph. When a SeamRoto node's input is a plain
Read, its files are used directly; anything else (a Reformat, a grade, a whole comp) is
rendered through a Write node created inside the SeamRoto Group (so the artist's graph is not
touched), over the requested frame range, and the Write is deleted again.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import nuke

from seamroto_nuke.errors import CancelledByUser, InputError, RenderError

logger = logging.getLogger(__name__)

RENDER_FILE_PATTERN = "plate.%04d.exr"
RENDER_WRITE_NAME = "SeamRoto_render"
RENDER_KNOBS: Dict[str, Any] = {"file_type": "exr", "channels": "rgb", "datatype": "16 bit half"}
RENDERED_COLOURSPACE = "scene_linear"  # a Write with default colour management writes linear


@dataclass(frozen=True)
class Plate:
    """Image files the core can read, with the range and colour space to read them in."""

    pattern: str
    first: int
    last: int
    colourspace: str
    width: int
    height: int
    rendered_from: str = ""

    def to_args(self) -> Dict[str, Any]:
        """Request args (see ``seamroto.protocol``)."""
        return {
            "plate": self.pattern,
            "first": self.first,
            "last": self.last,
            "colourspace": self.colourspace,
            "width": self.width,
            "height": self.height,
        }


def is_plain_read(node: Optional[nuke.Node]) -> bool:
    """True for an enabled Read whose files can be handed to the core as they are."""
    if node is None or node.Class() != "Read":
        return False
    disable = node.knob("disable")
    return not (disable is not None and bool(disable.value()))


def plate_from_read(read: nuke.Node, first: int, last: int) -> Plate:
    """The Read's file pattern (expressions evaluated), colour space and format.

    Raises:
        InputError: the Read has no file.
    """
    pattern = nuke.filename(read) or ""
    if not pattern:
        raise InputError("the Read node has no file; pick the plate sequence in it", node=read.name(), knob="file")
    colour_knob = read.knob("colorspace")
    colourspace = str(colour_knob.value()) if colour_knob is not None else ""
    fmt = read.format()
    return Plate(pattern, first, last, colourspace, int(fmt.width()), int(fmt.height()))


def render_input(group: nuke.Group, input_name: str, first: int, last: int, out_dir: Path) -> Plate:
    """Render what flows into ``group``'s Input ``input_name`` to EXRs in ``out_dir``.

    Args:
        group: the SeamRoto node; the temporary Write is made and deleted inside it.
        input_name: the Group's Input node carrying the plate.
        first: first frame (inclusive).
        last: last frame (inclusive).
        out_dir: new folder for the frames (kept after success: result nodes may read it).

    Raises:
        CancelledByUser: the artist cancelled Nuke's render progress bar (folder removed).
        RenderError: the render failed (folder removed).
    """
    source = group.input(0)
    source_name = source.name() if source is not None else "?"
    out_dir.mkdir(parents=True, exist_ok=False)
    pattern = (out_dir / RENDER_FILE_PATTERN).as_posix()
    with group:
        input_node = group.node(input_name)
        if input_node is None:
            raise InputError(f"has no Input node named {input_name!r}", node=group.name())
        write = nuke.nodes.Write(name=RENDER_WRITE_NAME, file=pattern, **RENDER_KNOBS)
        write.setInput(0, input_node)
    logger.info("rendering %s frames %d-%d to %s", source_name, first, last, out_dir)
    try:
        nuke.execute(write, first, last)
    except Exception as err:  # Nuke raises RuntimeError (or CancelledError) from execute
        shutil.rmtree(out_dir, ignore_errors=True)
        if _is_cancel(err):
            raise CancelledByUser("the render of the input was cancelled") from err
        raise RenderError(
            f"rendering the input to EXR failed: {err}", node=group.name(), path=pattern
        ) from err
    finally:
        nuke.delete(write)
    fmt = source.format() if source is not None else group.format()
    return Plate(
        pattern,
        first,
        last,
        RENDERED_COLOURSPACE,
        int(fmt.width()),
        int(fmt.height()),
        rendered_from=source_name,
    )


def _is_cancel(err: BaseException) -> bool:
    """Nuke reports a cancelled render as ``CancelledError`` or ``RuntimeError('Cancelled')``."""
    cancelled_type = getattr(nuke, "CancelledError", None)
    if isinstance(cancelled_type, type) and isinstance(err, cancelled_type):
        return True
    return "cancel" in str(err).lower()
