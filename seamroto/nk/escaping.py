"""Tcl-safe text for pasted scripts: escaped and quoted strings, and names that follow Nuke's identifier rules.

Every name that reaches a script is either restricted to Nuke's identifier rules (node, layer and
shape names) or written as an escaped Tcl string (track names, labels, paths), so no name can
inject Tcl (``[python ...]``) into a paste.
"""

from __future__ import annotations

import logging
import re
from typing import List

logger = logging.getLogger(__name__)

RESERVED_NODE_NAMES = frozenset({"Root", "root", "this", "thisNode", "parent", "input"})
BARE_WORD_RE = re.compile(r"[A-Za-z0-9_./:+\-#%@,=~]+")
INVALID_NAME_CHARS_RE = re.compile(r"[^A-Za-z0-9_]+")
DEFAULT_NODE_NAME = "Node"
DEFAULT_SHAPE_NAME = "Shape"
ROOT_LAYER_NAME = "Root"


def escape_string(text: str) -> str:
    r"""Escape ``text`` for use inside a double-quoted Tcl word in a .nk script.

    Brackets, ``$``, backslashes, quotes and braces are backslash-escaped so Nuke neither runs a
    command substitution (``[python ...]``) nor miscounts braces when it scans a node block;
    newlines, tabs and carriage returns become ``\n``, ``\t``, ``\r``. Other control characters
    carry no meaning in a name and are dropped.

    Args:
        text: Any string (track name, label, path).

    Returns:
        The escaped text, without the surrounding quotes.
    """
    out: List[str] = []
    for ch in text:
        if ch in '\\"[]${}':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            logger.warning("dropping control character %r from %r", ch, text)
        else:
            out.append(ch)
    return "".join(out)


def tcl_literal(text: str) -> str:
    r"""Protect text that Nuke itself Tcl-evaluates whenever it uses the knob (labels).

    A ``label`` is run through Tcl substitution every time it is drawn (``[value x]`` shows a
    knob value), so escaping ``[`` in the file alone is not enough: the stored text must keep
    ``\[``. Apply this first, then ``quote_string``.
    """
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("$", "\\$")


def quote_string(text: str) -> str:
    """``text`` as a double-quoted, escaped Tcl word (how Nuke writes track names)."""
    return '"' + escape_string(text) + '"'


def tcl_word(text: str) -> str:
    """``text`` bare when it is plainly safe (paths, enum values), else quoted and escaped.

    Nuke itself writes ``file /plates/a.####.exr`` and ``output alpha`` bare and ``"all frames"``
    quoted; this keeps the same look without ever leaving a special character unquoted.
    """
    return text if BARE_WORD_RE.fullmatch(text) else quote_string(text)


def _identifier(name: str, default: str) -> str:
    cleaned = INVALID_NAME_CHARS_RE.sub("_", name)
    if not cleaned:
        return default
    if cleaned[0].isdigit():
        cleaned = "_" + cleaned
    return cleaned


def sanitize_node_name(name: str) -> str:
    """A valid Nuke node name close to ``name``: letters, digits and ``_``, not starting with a digit.

    Nuke refuses other names on paste and Tcl would read ``[``/``$`` in them, so anything else is
    replaced by ``_``; names Nuke reserves (``Root``, ``this``...) get a ``_1`` suffix.
    """
    cleaned = _identifier(name, DEFAULT_NODE_NAME)
    if cleaned in RESERVED_NODE_NAMES:
        cleaned += "_1"
    return cleaned


def sanitize_shape_name(name: str) -> str:
    """A shape or layer name safe inside the roto ``curves`` tree (no spaces, braces or quotes).

    The tree is whitespace-separated Tcl-list text, so the name is reduced to the same identifier
    rules as node names; ``Root`` is the root layer's name and is never used for an element.
    """
    cleaned = _identifier(name, DEFAULT_SHAPE_NAME)
    if cleaned == ROOT_LAYER_NAME:
        cleaned += "_1"
    return cleaned


def _checked_node_name(name: str) -> str:
    clean = sanitize_node_name(name)
    if clean != name:
        logger.warning("node name %r is not a valid Nuke name; writing %r", name, clean)
    return clean
