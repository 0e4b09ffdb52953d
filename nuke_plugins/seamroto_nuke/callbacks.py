"""Callbacks init.py registers: cheap knob refreshes only (safe in ``nuke -t`` and on the farm).

Never run inference here: knobChanged fires on every knob edit and panel open.
"""

from __future__ import annotations

import logging

import nuke

from seamroto_nuke import knobs, nodes

logger = logging.getLogger(__name__)

# Nuke sends knobChanged with this knob when a node's panel opens: refresh the model menus then.
SHOW_PANEL = "showPanel"
REFRESH_KNOBS = frozenset({SHOW_PANEL, knobs.CHARACTER, knobs.USE_CUSTOM_RANGE})
_registered = False


def register() -> None:
    """Register the callbacks once per session."""
    global _registered
    if _registered:
        return
    nuke.addKnobChanged(on_knob_changed, nodeClass="Group")
    _registered = True


def on_knob_changed() -> None:
    """Refresh a SeamRoto node's menus and enabled knobs; ignore every other node."""
    node = nuke.thisNode()
    if nodes.node_type_of(node) is None:
        return
    if nuke.thisKnob().name() not in REFRESH_KNOBS:
        return
    try:
        nodes.refresh(node)
    except Exception:  # a callback must never break the artist's panel
        logger.exception("refreshing %s failed", node.name())
