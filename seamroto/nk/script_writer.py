"""Write node blocks and paste-ready clipboard scripts, refusing knob text that would break a paste or run Tcl.

The layout follows real Nuke-saved files (``../shared/reference/nk/FORMAT.md``): a clipboard header
(``set cut_paste_input [stack 0]``, ``version 13.2 v8``, ``push $cut_paste_input``) and knob lines
indented one space. ``write_node`` is the single place node text is assembled; the number and
format helpers here are shared by every node writer.
"""

from __future__ import annotations

import logging
import re
import struct
from pathlib import Path
from typing import Sequence, Tuple

import numpy as np

from seamroto.errors import NkWriteError
from seamroto.fileio import PathLike, atomic_write_text
from seamroto.nk.escaping import RESERVED_NODE_NAMES, escape_string
from seamroto.nk.numbers import format_decimal

logger = logging.getLogger(__name__)

DEFAULT_VERSION = "13.2 v8"
KNOB_INDENT = " "  # clipboard files of Nuke 10 and 15 indent top-level knob lines by one space
CLIPBOARD_HEADER = ("set cut_paste_input [stack 0]", "push $cut_paste_input")

# Knobs Nuke writes after ``name`` (node-graph state); write_node puts ``name`` before the first.
KNOBS_AFTER_NAME = frozenset(
    {
        "tile_color",
        "gl_color",
        "label",
        "note_font",
        "note_font_size",
        "note_font_color",
        "selected",
        "hide_input",
        "xpos",
        "ypos",
        "bdwidth",
        "bdheight",
        "disable",
    }
)
NODE_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # always used with fullmatch
NODE_CLASS_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")  # OFX classes carry dots
KNOB_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
STACK_VAR_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
VERSION_RE = re.compile(r"\d+\.\d+ v\d+")


# ------------------------------------------------------------------ generic nodes and scripts


def _check_knob_value(knob: str, value: str) -> None:
    """Refuse knob text that would end the node block early or run Tcl when pasted."""
    if not value:
        raise NkWriteError("empty knob value; write {} for an empty value", knob=knob)
    body = value[:-1] if value.endswith("\n") else value
    if "\\" not in body and "[" not in body and "$" not in body and _braces_ok(body):
        return  # the common case (a shot's curves knob is ~10^6 characters), checked in bulk
    _scan_knob_value(knob, body)


def _braces_ok(body: str) -> bool:
    """Braces balanced, never closed below zero, no newline outside them (no escapes in ``body``)."""
    # UTF-8 continuation bytes are >= 0x80, so only real braces and newlines match
    codes = np.frombuffer(body.encode("utf-8"), dtype=np.uint8)
    if not codes.size:
        return True
    depth = np.cumsum((codes == ord("{")).astype(np.int64) - (codes == ord("}")))
    return bool(depth.min(initial=0) >= 0 and depth[-1] == 0 and not (depth[codes == ord("\n")] == 0).any())


def _scan_knob_value(knob: str, body: str) -> None:
    """The character-by-character check, which also names the first problem."""
    depth = 0
    escaped = False
    for ch in body:
        if escaped:
            escaped = False
            continue
        if ch == "\\":
            escaped = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                raise NkWriteError("unbalanced '}' in knob value", knob=knob)
        elif ch in "[$":
            raise NkWriteError(
                f"unescaped {ch!r} in knob value would run Tcl on paste; escape it "
                "(writer.escape_string) or quote the value (writer.quote_string)",
                knob=knob,
            )
        elif ch == "\n" and depth == 0:
            raise NkWriteError("newline outside braces in knob value", knob=knob)
    if depth != 0:
        raise NkWriteError("unbalanced '{' in knob value", knob=knob)


def write_node(
    cls: str, name: str, knobs: Sequence[Tuple[str, str]], *, indent: str = KNOB_INDENT
) -> str:
    r"""One node block, knob lines in the order given, ``name`` where Nuke puts it.

    This is the single place node text is assembled, so every node we emit (Read, Tracker4, Roto,
    BackdropNode, later F_WireRemoval) gets the same validation.

    Args:
        cls: Node class (``Roto``, ``Tracker4``; OFX classes with dots are allowed).
        name: Node name; must already follow Nuke's rules (see ``sanitize_node_name``).
        knobs: ``(knob, value)`` pairs; values are finished knob text (use ``tcl_word`` /
            ``quote_string`` for strings).
        indent: Prefix of each knob line.

    Returns:
        ``Class {\n knob value\n ...\n}\n``.

    Raises:
        NkWriteError: A class, knob or node name is invalid, or a value is unbalanced or would run
            Tcl on paste.
    """
    if not NODE_CLASS_RE.fullmatch(cls):
        raise NkWriteError(f"invalid node class {cls!r}")
    if not NODE_NAME_RE.fullmatch(name) or name in RESERVED_NODE_NAMES:
        raise NkWriteError(
            f"invalid node name {name!r}; pass it through writer.sanitize_node_name first",
            knob="name",
        )
    lines = [f"{cls} {{"]
    named = False
    for knob, value in knobs:
        if not KNOB_NAME_RE.fullmatch(knob):
            raise NkWriteError(f"invalid knob name {knob!r} on node {name}", knob=knob)
        if knob == "name":
            raise NkWriteError("pass the node name as the name argument", knob=knob)
        _check_knob_value(knob, value)
        if not named and knob in KNOBS_AFTER_NAME:
            lines.append(f"{indent}name {name}")
            named = True
        lines.append(f"{indent}{knob} {value}")
    if not named:
        lines.append(f"{indent}name {name}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def stack_set(var: str) -> str:
    """``set VAR [stack 0]``: remember the node on top of the stack (to feed a second node)."""
    if not STACK_VAR_RE.fullmatch(var):
        raise NkWriteError(f"invalid stack variable name {var!r}")
    return f"set {var} [stack 0]\n"


def stack_push(var: str) -> str:
    """``push $VAR``: put a remembered node back on the stack as the next node's input."""
    if not STACK_VAR_RE.fullmatch(var):
        raise NkWriteError(f"invalid stack variable name {var!r}")
    return f"push ${var}\n"


def write_script(node_texts: Sequence[str], *, version: str = DEFAULT_VERSION) -> str:
    """A paste-ready clipboard script around ``node_texts`` (for ``nuke.nodePaste``).

    Like Nuke's own clipboard files: the current selection is saved as ``cut_paste_input`` and
    pushed, so the first node that takes an input connects to what the artist had selected; nodes
    written with ``inputs 0`` ignore it.

    Args:
        node_texts: Node blocks (``write_*``) and stack lines (``stack_set``/``stack_push``), in
            script order.
        version: Nuke version line, ``"13.2 v8"`` form.

    Returns:
        The script text, ending in a newline.
    """
    if not VERSION_RE.fullmatch(version):
        raise NkWriteError(f"invalid Nuke version {version!r}; expected e.g. '13.2 v8'")
    lines = [CLIPBOARD_HEADER[0], f"version {version}", CLIPBOARD_HEADER[1]]
    body = "".join(t if t.endswith("\n") else t + "\n" for t in node_texts)
    return "\n".join(lines) + "\n" + body


def write_script_file(path: PathLike, text: str) -> Path:
    """Write a script atomically (temp file + rename), so a crash leaves no half-written .nk."""
    target = atomic_write_text(path, text)
    logger.info("wrote Nuke script %s (%d bytes)", target, len(text.encode("utf-8")))
    return target


# ------------------------------------------------------------------ knob values shared by the node writers


def _format_value(width: int, height: int, pixel_aspect: float, format_name: str) -> str:
    if width <= 0 or height <= 0:
        raise NkWriteError(f"invalid format {width}x{height}", knob="format")
    if any(ch.isspace() for ch in format_name):
        raise NkWriteError(
            f"format name {format_name!r} has whitespace; Nuke splits the format string on "
            "spaces, so use e.g. 'UHD_4K'",
            knob="format",
        )
    # An unnamed format is written with an empty name, as Nuke 10 does ("... 1 ").
    name = escape_string(format_name)
    return f'"{width} {height} 0 0 {width} {height} {_decimal(pixel_aspect, "format")} {name}"'


def _decimal(value: float, what: str) -> str:
    try:
        return format_decimal(float(value))
    except ValueError as err:
        raise NkWriteError(f"{what}: {err}") from err


def _float32(value: float) -> float:
    return float(struct.unpack(">f", struct.pack(">f", value))[0])
