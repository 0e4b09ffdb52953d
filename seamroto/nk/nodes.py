"""Look up nodes of a parsed script and read their knobs: by name or class, their format, brace-tree knobs.

Every failure is an :class:`~seamroto.errors.NkParseError` (or ``NkNodeNotFoundError`` from
:func:`find_node`); :func:`_guard` turns any other error a malformed knob raises into one.
"""

from __future__ import annotations

import logging
import struct
from typing import Callable, List, Optional, Sequence, Set, TypeVar

from seamroto.errors import NkNodeNotFoundError, NkParseError
from seamroto.nk.script import NkFormat, NkNode, NkScript, _parse_int, parse_format
from seamroto.nk.tokens import TreeItem, parse_tree, word_value

logger = logging.getLogger(__name__)

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------
# Formats and knobs


def _knob_format(script: NkScript, node: NkNode) -> Optional[NkFormat]:
    text = node.value("format")
    if text is None:
        return None
    fmt = parse_format(text)
    if fmt is None and script.format is not None and text.strip() == script.format.name:
        return script.format
    return fmt


def node_format(script: NkScript, node: NkNode) -> Optional[NkFormat]:
    """The format a node works in: its own ``format`` knob, else upstream, else the Root's.

    Walks input 0 through the node stack (and from a Group's Input node to the Group's input)
    to the first node with a ``format`` knob (Read, Constant, Reformat...). A named format
    unknown to Nuke's built-in list falls back to the Root format.
    """
    seen: Set[int] = set()
    current: Optional[NkNode] = node
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if current.value("format") is not None:
            fmt = _knob_format(script, current)
            return fmt if fmt is not None else script.format
        current = _upstream(script, current)
    return script.format


def _upstream(script: NkScript, node: NkNode) -> Optional[NkNode]:
    if node.node_class == "Input" and node.group:
        number = _parse_int(node.value("number")) or 0
        group_node = script.node_at(node.group[:-1], node.group[-1])
        if group_node is None or not 0 <= number < len(group_node.inputs):
            return None
        name = group_node.inputs[number]
        return None if name is None else script.node_at(group_node.group, name)
    if not node.inputs or node.inputs[0] is None:
        return None
    return script.node_at(node.group, node.inputs[0])


def knob_tree(script: NkScript, node: NkNode, knob: str) -> List[TreeItem]:
    """The content of a braced knob as nested token lists (``curves``, ``tracks``).

    Raises:
        NkParseError: The knob is missing or its braces do not balance.
    """
    raw = node.knobs.get(knob)
    if raw is None:
        raise NkParseError(
            f"{node.path} ({node.node_class}) has no '{knob}' knob",
            path=script.path,
            knob=knob,
            line=node.line,
        )
    line = node.knob_lines.get(knob, node.line)
    try:
        return parse_tree(word_value(raw), line=line, what=f"knob '{knob}' of {node.path}")
    except NkParseError as err:
        raise NkParseError(err.message, path=script.path, knob=knob, line=err.line) from err


# ---------------------------------------------------------------------------------------------
# Finding nodes


def find_node(
    script: NkScript,
    name: Optional[str] = None,
    node_class: Optional[str] = None,
    *,
    group: Optional[Sequence[str]] = None,
) -> NkNode:
    """The one node matching a name (plain or full ``Group1.Roto1`` path) and/or class.

    Args:
        script: Parsed script.
        name: Node name, or its full dotted path when the name exists in several Groups.
        node_class: Class to match (``Roto``, ``Tracker4``); alone it must match one node.
        group: Restrict to nodes directly inside this Group path.

    Raises:
        NkNodeNotFoundError: Nothing matches, or several nodes do (the message lists them).
    """
    if name is None and node_class is None:
        raise NkNodeNotFoundError(
            "give a node name or a node class to look for", path=script.path
        )
    nodes: Sequence[NkNode] = script.nodes
    if group is not None:
        wanted = tuple(group)
        nodes = [n for n in nodes if n.group == wanted]
    if node_class is not None:
        nodes = [n for n in nodes if n.node_class == node_class]
    matches = list(nodes)
    if name is not None:
        matches = [n for n in nodes if n.path == name] or [n for n in nodes if n.name == name]
    if len(matches) == 1:
        return matches[0]
    what = " ".join(
        p for p in (f"class {node_class}" if node_class else "", f"'{name}'" if name else "") if p
    )
    if not matches:
        if node_class is not None:
            have = [n.path for n in script.nodes if n.node_class == node_class]
            listing = (
                f"{node_class} nodes in the script: {', '.join(have[:30])}"
                if have
                else f"the script has no {node_class} node; classes present: "
                + ", ".join(sorted({n.node_class for n in script.nodes})[:30])
            )
        else:
            listing = "nodes in the script: " + ", ".join(n.path for n in script.nodes[:30])
        raise NkNodeNotFoundError(f"no node {what}; {listing}", path=script.path)
    raise NkNodeNotFoundError(
        f"{len(matches)} nodes match {what}: {', '.join(n.path for n in matches[:30])}; pass the "
        "full name (Group.Node) to pick one",
        path=script.path,
    )


# ---------------------------------------------------------------------------------------------
# Safety net


def _guard(script: NkScript, node: NkNode, knob: str, fn: Callable[[], T]) -> T:
    """Run a typed read so that garbage input only ever surfaces as NkParseError."""
    try:
        return fn()
    except NkParseError:
        raise
    except (ValueError, IndexError, KeyError, TypeError, OverflowError, struct.error) as err:
        logger.debug("unexpected structure in %s.%s", node.path, knob, exc_info=True)
        raise NkParseError(
            f"{node.path}: knob '{knob}' has an unexpected structure ({type(err).__name__}: "
            f"{err}); the file may be corrupt",
            path=script.path,
            knob=knob,
            line=node.knob_lines.get(knob, node.line),
        ) from err
