"""Paste the core's .nk beside the source node: new versioned names, wired, placed, backdropped.

Nothing that was in the script before is edited or deleted: pasted nodes get fresh names
(``SeamRoto1_tracks_v2``), only their own inputs are set, and the selection is restored.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

import nuke

from seamroto_nuke.errors import PasteError

logger = logging.getLogger(__name__)

ASK_NODE_COUNT = 12
PLACE_GAP_X = 120
PLACE_GAP_Y = 60
BACKDROP_PAD = 40
BACKDROP_LABEL_PAD = 50
BACKDROP_COLOR = 0x3C3C5AFF
BACKDROP_FONT_SIZE = 20
# Nodes report 0 size until the node graph has drawn them; use Nuke's usual size instead.
DEFAULT_NODE_W = 80
DEFAULT_NODE_H = 20
NEVER_WIRE = frozenset({"Read", "BackdropNode", "StickyNote", "Viewer", "Constant", "ColorBars"})
_ROOT_BLOCK = re.compile(r"^\s*Root \{", re.MULTILINE)
_NODE_LINE = re.compile(r"^\s*([A-Z][A-Za-z0-9_]*) \{\s*$", re.MULTILINE)
_VERSIONED = re.compile(r"^(?P<stem>.+)_v(?P<num>\d+)$")


@dataclass(frozen=True)
class Pasted:
    """What a paste made: the nodes (renamed), their backdrop, and the version number."""

    nodes: Sequence[nuke.Node]
    backdrop: Optional[nuke.Node]
    version: int

    @property
    def names(self) -> List[str]:
        """Names of the pasted nodes (without the backdrop)."""
        return [n.name() for n in self.nodes]


def next_version(anchor: nuke.Node, prefix: str, out_root: Optional[Path] = None) -> int:
    """1 + the highest version ``prefix`` uses in node names beside ``anchor`` or in ``out_root``.

    Deleted nodes whose output folder still exists keep their number, so versions only grow.
    """
    node_name = re.compile(rf"^{re.escape(prefix)}_.+_v(\d+)$")
    dir_name = re.compile(rf"^{re.escape(prefix)}_v(\d+)(\.plate)?$")
    with context_of(anchor):
        names = [n.name() for n in nuke.allNodes()]
    used = [int(m.group(1)) for name in names for m in [node_name.match(name)] if m]
    if out_root is not None and out_root.is_dir():
        used += [int(m.group(1)) for p in out_root.iterdir() for m in [dir_name.match(p.name)] if m]
    return max(used, default=0) + 1


def count_nodes(nk_text: str) -> int:
    """Node blocks in paste-ready .nk text (same rule as ``seamroto.protocol.count_nodes``)."""
    return sum(1 for m in _NODE_LINE.finditer(nk_text) if m.group(1) != "Root")


def confirm_node_count(count: int, where: str) -> bool:
    """Ask before pasting many nodes (GUI only); True means go ahead."""
    if count <= ASK_NODE_COUNT or not nuke.GUI:
        return True
    return bool(nuke.ask(f"SeamRoto will create {count} nodes next to {where}. Continue?"))


def paste_result(
    nk_path: str,
    *,
    anchor: nuke.Node,
    wire_to: Optional[nuke.Node],
    prefix: str,
    version: int,
    label: str,
) -> Optional[Pasted]:
    """Paste ``nk_path`` beside ``anchor`` as version ``version`` of ``prefix``.

    Asks first (GUI) when the file holds more than ``ASK_NODE_COUNT`` nodes.

    Args:
        nk_path: paste-ready .nk text written by the core.
        anchor: the node the result belongs to (placed to its right, in its Group).
        wire_to: unconnected inputs of the pasted nodes are connected to this node.
        prefix: node-name prefix, usually the SeamRoto node's name.
        version: the ``_vN`` suffix for every pasted node.
        label: backdrop label.

    Returns:
        What was pasted, or None when the artist declined.

    Raises:
        PasteError: the file is missing, would change the script's Root, or pasted nothing.
    """
    path = Path(nk_path)
    if not path.is_file():
        raise PasteError("the result .nk file does not exist (was it moved or deleted?)", path=str(path))
    text = path.read_text(encoding="utf-8", errors="replace")
    if _ROOT_BLOCK.search(text):
        raise PasteError(
            "the result holds a Root node; pasting it would change this script's settings. "
            "This is a core bug: send the file to your TD",
            path=str(path),
        )
    if not confirm_node_count(count_nodes(text), anchor.name()):
        logger.info("paste of %s declined", path)
        return None
    with context_of(anchor):
        new = _paste_fresh(path, wire_to)
        _rename(new, prefix, version)
        _wire(new, wire_to)
        backdrop = _place_with_backdrop(new, anchor, prefix, version, label)
    logger.info("pasted %s as %s", path, ", ".join(n.name() for n in new))
    return Pasted(new, backdrop, version)


@contextlib.contextmanager
def context_of(node: nuke.Node) -> Iterator[nuke.Group]:
    """Work inside the Group that holds ``node`` (results go beside it, not in the root)."""
    group = node.parent()
    group.begin()
    try:
        yield group
    finally:
        group.end()


def _paste_fresh(path: Path, wire_to: Optional[nuke.Node]) -> List[nuke.Node]:
    """``nuke.nodePaste`` with only ``wire_to`` selected; return the new nodes, selection restored."""
    existing = nuke.allNodes()
    before = {n.name() for n in existing}
    was_selected = [n for n in existing if n.isSelected()]
    for node in was_selected:
        node.setSelected(False)
    new: List[nuke.Node] = []
    try:
        if wire_to is not None and wire_to.name() in before:
            wire_to.setSelected(True)  # Nuke wires the paste's first input to the selection
        try:
            nuke.nodePaste(str(path))
        finally:
            new = [n for n in nuke.allNodes() if n.name() not in before]
    except RuntimeError as err:
        for node in new:  # only nodes this paste made: never leave half a result
            nuke.delete(node)
        raise PasteError(f"Nuke could not paste the result: {err}", path=str(path)) from err
    finally:
        for node in _all_selected():
            node.setSelected(False)
        for node in was_selected:
            node.setSelected(True)
    if not new:
        raise PasteError("pasting the result created no nodes", path=str(path))
    return new


def _all_selected() -> Iterator[nuke.Node]:
    return (n for n in nuke.allNodes() if n.isSelected())


def _rename(new: Sequence[nuke.Node], prefix: str, version: int) -> None:
    """Give every pasted node the name ``{prefix}_{role}_v{version}``."""
    for node in new:
        name = node.name()
        match = _VERSIONED.match(name)
        if match and int(match.group("num")) == version and name.startswith(prefix + "_"):
            continue
        stem = match.group("stem") if match else name
        if not stem.startswith(prefix + "_"):
            stem = f"{prefix}_{stem}"
        node.setName(f"{stem}_v{version}", uncollide=True, updateExpressions=True)


def _wire(new: Sequence[nuke.Node], wire_to: Optional[nuke.Node]) -> None:
    """Connect each pasted node whose first input is empty to ``wire_to``."""
    if wire_to is None:
        return
    for node in new:
        if node.Class() in NEVER_WIRE or node.maxInputs() < 1 or node.input(0) is not None:
            continue
        node.setInput(0, wire_to)


def _place_with_backdrop(
    new: Sequence[nuke.Node], anchor: nuke.Node, prefix: str, version: int, label: str
) -> nuke.Node:
    """Move the pasted block right of ``anchor`` (below earlier versions) and frame it."""
    xs = [n.xpos() for n in new]
    ys = [n.ypos() for n in new]
    right = max(n.xpos() + max(n.screenWidth(), DEFAULT_NODE_W) for n in new)
    bottom = max(n.ypos() + max(n.screenHeight(), DEFAULT_NODE_H) for n in new)
    width, height = right - min(xs), bottom - min(ys)
    target_x = anchor.xpos() + max(anchor.screenWidth(), DEFAULT_NODE_W) + PLACE_GAP_X
    target_y = anchor.ypos() + BACKDROP_PAD + BACKDROP_LABEL_PAD
    earlier = re.compile(rf"^{re.escape(prefix)}_backdrop_v\d+$")
    for node in nuke.allNodes("BackdropNode"):
        if earlier.match(node.name()):
            below = node.ypos() + int(node["bdheight"].value()) + PLACE_GAP_Y
            target_y = max(target_y, below + BACKDROP_PAD + BACKDROP_LABEL_PAD)
    dx, dy = target_x - min(xs), target_y - min(ys)
    for node in new:
        node.setXYpos(node.xpos() + dx, node.ypos() + dy)
    backdrop = nuke.nodes.BackdropNode(
        xpos=target_x - BACKDROP_PAD,
        ypos=target_y - BACKDROP_PAD - BACKDROP_LABEL_PAD,
        bdwidth=width + 2 * BACKDROP_PAD,
        bdheight=height + 2 * BACKDROP_PAD + BACKDROP_LABEL_PAD,
        tile_color=BACKDROP_COLOR,
        note_font_size=BACKDROP_FONT_SIZE,
        label=label,
    )
    backdrop.setName(f"{prefix}_backdrop_v{version}", uncollide=True)
    return backdrop
