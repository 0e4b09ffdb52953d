"""The SeamRoto node types: Python-built Groups with declared knobs, and the registry the menu reads.

Each node is a Group tagged with a hidden ``seamroto_node_type`` knob; its buttons are one-line
calls into ``seamroto_nuke.commands``. A new tool (issue 6: Motion2Roto, BBoxTracker) is one
more ``register_node_type`` call plus its actions in ``commands.ACTIONS``; the menu, the
callbacks and the tests pick it up from ``NODE_TYPES``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import nuke

from seamroto_nuke import knobs, motion_knobs, paths
from seamroto_nuke.knobs import KnobSpec, NodeKnobs

logger = logging.getLogger(__name__)

TILE_COLOR = 0x5A3C8CFF
INPUT_CLASS = "Input"
OUTPUT_CLASS = "Output"


@dataclass(frozen=True)
class NodeType:
    """One SeamRoto tool: its menu entry, icon, knobs and the Input nodes inside its Group.

    ``inputs`` are the Group's Input node names in input order; with ``passthrough`` the
    first input flows to the Output unchanged (the node is transparent in the comp).
    """

    name: str
    menu_label: str
    tooltip: str
    icon: str
    knobs: NodeKnobs
    inputs: Tuple[str, ...] = ()
    passthrough: bool = True


NODE_TYPES: Dict[str, NodeType] = {}


def register_node_type(node_type: NodeType) -> NodeType:
    """Add a tool to the registry (and so to the SeamRoto menu)."""
    if node_type.name in NODE_TYPES:
        raise ValueError(f"node type {node_type.name!r} is already registered")
    NODE_TYPES[node_type.name] = node_type
    return node_type


SEAMROTO = register_node_type(
    NodeType(
        "SeamRoto",
        "SeamRoto",
        "Track a puppet's face on the connected plate and build Tracker4 and Roto nodes.",
        "SeamRoto.png",
        knobs.SEAMROTO_KNOBS,
        inputs=("plate",),
    )
)
TRAIN = register_node_type(
    NodeType(
        "SeamRotoTrain",
        "SeamRoto Train",
        "Teach SeamRoto a character from shots your artists already tracked and rotoscoped.",
        "SeamRotoTrain.png",
        knobs.TRAIN_KNOBS,
        inputs=(),
        passthrough=False,
    )
)
REFIT = register_node_type(
    NodeType(
        "SeamRotoRefit",
        "SeamRoto Refit",
        "Rebuild roto shapes after moving track keys: connect the edited Tracker4.",
        "SeamRotoRefit.png",
        knobs.REFIT_KNOBS,
        inputs=("tracks",),
    )
)
MOTION2ROTO = register_node_type(
    NodeType(
        "Motion2Roto",
        "Motion2Roto",
        "Animate a few keys of the selected Roto through the whole shot with motion (keys stay exact).",
        "SeamRoto.png",
        motion_knobs.MOTION2ROTO_KNOBS,
        inputs=("roto", "plate"),
    )
)
BBOX_TRACKER = register_node_type(
    NodeType(
        "BBoxTracker",
        "BBoxTracker",
        "Track a box drawn on one frame through the shot; builds a Tracker4 with its corners.",
        "SeamRoto.png",
        motion_knobs.BBOX_TRACKER_KNOBS,
        inputs=("plate",),
    )
)


def node_type_of(node: Optional[nuke.Node]) -> Optional[NodeType]:
    """The SeamRoto type of ``node``, or None for any other node."""
    if node is None:
        return None
    tag = node.knob(knobs.NODE_TYPE_KNOB)
    if tag is None:
        return None
    return NODE_TYPES.get(str(tag.value()))


def make_knob(spec: KnobSpec) -> nuke.Knob:
    """A nuke knob for ``spec``, with its tooltip, default and flags set."""
    knob: nuke.Knob
    if spec.kind == knobs.TAB:
        knob = nuke.Tab_Knob(spec.name, spec.label)
    elif spec.kind in (knobs.TEXT, knobs.DIVIDER):
        knob = nuke.Text_Knob(spec.name, spec.label, str(spec.default or ""))
    elif spec.kind == knobs.ENUM:
        knob = nuke.Enumeration_Knob(spec.name, spec.label, list(spec.values))
    elif spec.kind == knobs.INT:
        knob = nuke.Int_Knob(spec.name, spec.label)
    elif spec.kind == knobs.DOUBLE:
        knob = nuke.Double_Knob(spec.name, spec.label)
        if spec.value_range is not None:
            knob.setRange(*spec.value_range)
    elif spec.kind == knobs.BOOL:
        knob = nuke.Boolean_Knob(spec.name, spec.label)
    elif spec.kind == knobs.STRING:
        knob = nuke.String_Knob(spec.name, spec.label)
    elif spec.kind == knobs.FILE:
        knob = nuke.File_Knob(spec.name, spec.label)
    elif spec.kind == knobs.MULTILINE:
        knob = nuke.Multiline_Eval_String_Knob(spec.name, spec.label)
    elif spec.kind == knobs.BUTTON:
        knob = nuke.PyScript_Knob(spec.name, spec.label, spec.command)
    elif spec.kind == motion_knobs.BBOX:
        box = nuke.BBox_Knob(spec.name, spec.label)
        x, y, r, t = spec.default or motion_knobs.DEFAULT_BOX
        box.setX(x)
        box.setY(y)
        box.setR(r)
        box.setT(t)
        knob = box
    else:
        raise ValueError(f"knob {spec.name!r} has unknown kind {spec.kind!r}")
    if spec.kind in knobs.VALUE_KINDS and spec.kind != knobs.ENUM and spec.default is not None:
        knob.setValue(spec.default)
    knob.setTooltip(spec.tooltip)
    if spec.kind not in (knobs.TAB, knobs.DIVIDER):
        if spec.same_line:
            knob.clearFlag(nuke.STARTLINE)
        else:
            knob.setFlag(nuke.STARTLINE)
    if spec.hidden:
        knob.setFlag(nuke.INVISIBLE)
    if spec.read_only:
        knob.setFlag(nuke.READ_ONLY)
    return knob


def create(type_name: str, *, show_panel: bool = False) -> nuke.Group:
    """Create a SeamRoto Group in the current context, connected to the selected node.

    Args:
        type_name: a key of ``NODE_TYPES``.
        show_panel: open its control panel (GUI).

    Returns:
        The new Group, named ``<type>1``, ``<type>2``...
    """
    node_type = NODE_TYPES[type_name]
    selected = nuke.selectedNodes()
    upstream = selected[0] if len(selected) == 1 else None
    group = nuke.createNode("Group", inpanel=False)
    if not isinstance(group, nuke.Group):
        raise TypeError(f"nuke.createNode('Group') returned a {group.Class()}")
    group.setName(f"{node_type.name}1", uncollide=True)
    with group:
        made: List[nuke.Node] = []
        for input_name in node_type.inputs:  # Nuke numbers Inputs in creation order
            made.append(nuke.nodes.Input(name=input_name))
        if node_type.passthrough:
            output = nuke.nodes.Output()
            output.setInput(0, made[0] if made else None)
    for spec in node_type.knobs.specs:
        group.addKnob(make_knob(spec))
    group[knobs.NODE_TYPE_KNOB].setValue(node_type.name)
    group["tile_color"].setValue(TILE_COLOR)
    if upstream is not None and node_type.inputs and group.canSetInput(0, upstream):
        group.setInput(0, upstream)
    refresh(group)
    if show_panel:
        group.showControlPanel()
    logger.info("created %s (%s)", group.name(), node_type.name)
    return group


def refresh(node: nuke.Node) -> None:
    """Refill model menus and knob enabled states; cheap, so fine in knobChanged."""
    node_type = node_type_of(node)
    if node_type is None:
        return
    if knobs.CHARACTER in node_type.knobs.by_name:
        refresh_model_menus(node)
    for spec in node_type.knobs.specs:
        if spec.enabled_by:
            controller = node.knob(spec.enabled_by)
            target = node.knob(spec.name)
            if controller is not None and target is not None:
                target.setEnabled(bool(controller.value()))


def refresh_model_menus(node: nuke.Node) -> None:
    """Fill ``character`` and ``model_version`` from the installed models.

    A value that is not installed on this machine is kept (and stays selected) instead of
    silently switching to another character.
    """
    models = paths.find_models()
    char_knob = _enum(node, knobs.CHARACTER)
    current = str(char_knob.value() or "")
    names = paths.characters(models)
    if current and current != knobs.NO_MODELS and current not in names:
        names.append(current)
    names = names or [knobs.NO_MODELS]
    char_knob.setValues(names)
    char_knob.setValue(current if current in names else names[0])
    character = str(char_knob.value())
    version_knob = _enum(node, knobs.MODEL_VERSION)
    current_version = str(version_knob.value() or paths.LATEST)
    choices = [paths.LATEST] + paths.versions(models, character)
    if current_version not in choices:
        choices.append(current_version)
    version_knob.setValues(choices)
    version_knob.setValue(current_version)


def values(node: nuke.Node) -> Dict[str, Any]:
    """Every value knob of a SeamRoto node, as Python types (file knobs evaluated)."""
    node_type = node_type_of(node)
    if node_type is None:
        raise ValueError(f"{node.name()} is not a SeamRoto node")
    out: Dict[str, Any] = {}
    for spec in node_type.knobs.specs:
        if spec.kind not in knobs.VALUE_KINDS:
            continue
        knob = node.knob(spec.name)
        if knob is None:
            continue
        if isinstance(knob, nuke.EvalString_Knob):
            raw: Any = knob.evaluate()
        else:
            raw = knob.value()
        out[spec.name] = knobs.coerce(spec, raw)
    return out


def set_text(node: nuke.Node, name: str, text: str) -> None:
    """Set a string, file or text knob on one of our nodes (records, status)."""
    knob = node.knob(name)
    if knob is not None:
        knob.setValue(text)


def _enum(node: nuke.Node, name: str) -> nuke.Enumeration_Knob:
    knob = node.knob(name)
    if not isinstance(knob, nuke.Enumeration_Knob):
        raise ValueError(f"{node.name()}.{name} is not an Enumeration_Knob")
    return knob
