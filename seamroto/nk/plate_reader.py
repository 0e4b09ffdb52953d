"""Read the plate sequence of a Read node as a :class:`~seamroto.datamodel.Shot`: file pattern, frame range, format."""

from __future__ import annotations

import logging
import os
import re

from seamroto.datamodel import Shot
from seamroto.errors import NkParseError
from seamroto.nk.nodes import _guard, node_format
from seamroto.nk.script import NkNode, NkScript, _int_knob

logger = logging.getLogger(__name__)

_SCRIPT_DIR_RE = re.compile(
    r"\[file dirname \[value root\.name\]\]|\[python \{?nuke\.script_directory\(\)\}?\]"
)
_WINDOWS_ABS_RE = re.compile(r"^[A-Za-z]:[/\\]")


def read_node_shot(script: NkScript, node: NkNode) -> Shot:
    """The plate sequence a Read node reads: file pattern, frame range and format.

    A relative ``file`` resolves against the script's folder (as Nuke's default project
    directory does); ``[file dirname [value root.name]]`` is replaced by that folder too. A
    format given by name only falls back to the Root's format when it is not built in.

    Raises:
        NkParseError: No file, a frame range that is not plain numbers, or no format.
    """
    return _guard(script, node, "file", lambda: _read_node_shot(script, node))


def _read_node_shot(script: NkScript, node: NkNode) -> Shot:
    file_text = node.value("file")
    if not file_text:
        raise NkParseError(
            f"{node.path} ({node.node_class}) has no 'file' knob; pick a Read node",
            path=script.path,
            knob="file",
            line=node.line,
        )
    plates = _resolve_path(script, file_text)
    first = _int_knob(node, "first", 1)
    last = _int_knob(node, "last", first)
    if last < first:
        raise NkParseError(
            f"{node.path}: last frame {last} is before first frame {first}",
            path=script.path,
            knob="last",
            line=node.knob_lines.get("last"),
        )
    fmt = node_format(script, node)
    if fmt is None:
        raise NkParseError(
            f"{node.path}: no format on the node and none on the Root node; set the Read's "
            "format in Nuke and save again",
            path=script.path,
            knob="format",
            line=node.line,
        )
    colourspace = node.value("colorspace")
    if colourspace:
        m = re.fullmatch(r"default(?: \((.*)\))?", colourspace.strip())
        if m is not None:
            colourspace = m.group(1)
    if colourspace:
        return Shot(plates, first, last, fmt.width, fmt.height, fmt.pixel_aspect, colourspace)
    return Shot(plates, first, last, fmt.width, fmt.height, fmt.pixel_aspect)


def _resolve_path(script: NkScript, path_text: str) -> str:
    folder = script.folder
    if folder is not None:
        path_text = _SCRIPT_DIR_RE.sub(lambda _m: folder.replace("\\", "/"), path_text)
    if "[" in path_text:
        logger.warning("file path %r holds a TCL expression; it is kept unevaluated", path_text)
        return path_text
    is_abs = (
        path_text.startswith(("/", "\\"))
        or bool(_WINDOWS_ABS_RE.match(path_text))
        or "://" in path_text
    )
    if is_abs or folder is None:
        return path_text
    return os.path.normpath(os.path.join(folder, path_text))
