"""Knob names and declarations of the motion tools (issue 6): Motion2Roto and BBoxTracker.

Knob names are a saved API (artists' .nk files store them): never rename or reuse one. Names
shared with the other SeamRoto nodes (``output_dir``, ``status``, ``core_python``...) keep the
meaning they have there.
"""

from __future__ import annotations

from typing import Mapping

from seamroto_nuke import knobs
from seamroto_nuke.knobs import BOOL, BUTTON, DIVIDER, ENUM, FILE, INT, STRING, TAB, TEXT, KnobSpec, NodeKnobs

#: Knob kind of an on-screen box (``nuke.BBox_Knob``: x, y, r, t in the format's pixels, y up).
BBOX = "bbox"

# --- Motion2Roto --------------------------------------------------------------------------------
SHAPE_NAMES = "shape_names"
REPLACEMENT_SHAPES = "replacement_shapes"
USE_VECTORS = "use_vectors"
VECTORS_FILE = "vectors_file"
FLOW_PRESET = "flow_preset"
ANIMATE = "animate"
FLAGGED_FRAMES = "flagged_frames"

# --- BBoxTracker --------------------------------------------------------------------------------
BOX = "box"
REFERENCE_FRAME = "reference_frame"
USE_CURRENT_FRAME = "use_current_frame"
TRACK_BOX = "track_box"

FLOW_PRESETS = ("ultrafast", "fast", "medium")
DEFAULT_BOX = (0.0, 0.0, 256.0, 256.0)


def _button(name: str, label: str, tooltip: str, same_line: bool = True) -> KnobSpec:
    return KnobSpec(name, BUTTON, label, tooltip, same_line=same_line)


def _record(name: str, label: str, tooltip: str) -> KnobSpec:
    return KnobSpec(name, STRING, label, tooltip, default="", read_only=True)


_BOOKKEEPING = (
    KnobSpec(knobs.NODE_TYPE_KNOB, STRING, "node type", "Which SeamRoto tool this Group is.", hidden=True),
    KnobSpec(
        knobs.KNOB_API_KNOB, INT, "knob API", "Knob layout version, for migrations.", default=knobs.KNOB_API,
        hidden=True,
    ),
)
_OUTPUT_DIR = KnobSpec(
    knobs.OUTPUT_DIR,
    FILE,
    "output folder",
    "Where results are written (one new versioned folder per run, never overwritten). Empty: "
    "a 'seamroto' folder next to the saved script, or a temp folder if it is unsaved.",
    default="",
)
_CORE_PYTHON = KnobSpec(
    knobs.CORE_PYTHON,
    FILE,
    "core python",
    "Python of the SeamRoto core's venv (e.g. /opt/seamroto/.venv/bin/python). Empty: use "
    "$SEAMROTO_PYTHON, then the install's own .venv. Setting it always runs the core as a "
    "separate process.",
    default="",
)
_TROUBLESHOOT = _button(
    knobs.TROUBLESHOOT,
    "Troubleshoot",
    "Check the install: which Python runs the core, its version, and where the log is. Send the "
    "result to your TD when something fails.",
)
_STATUS = KnobSpec(knobs.STATUS, TEXT, "", "What the last run did, or why it stopped.", default="ready")
_DIVIDER = KnobSpec("actions_divider", DIVIDER, "", "The buttons below run this node's actions in the background.")
_FLAGGED = _record(FLAGGED_FRAMES, "frames to review", "Frames the last run could not follow with confidence.")

MOTION2ROTO_KNOBS = NodeKnobs(
    _BOOKKEEPING
    + (
        KnobSpec("motion2roto_tab", TAB, "Motion2Roto", "Animate a few roto keys through the shot."),
        KnobSpec(
            SHAPE_NAMES,
            STRING,
            "shapes",
            "Shapes of the connected Roto to animate, space separated, as named in its curve "
            "list. Empty: every shape.",
            default="",
        ),
        KnobSpec(
            REPLACEMENT_SHAPES,
            STRING,
            "replacement pieces",
            "Shapes that are a new print on every frame (a replacement mouth): found again on each "
            "frame's own edges from the keys' prints instead of following motion. 'auto': the shapes "
            "whose keys differ by more than a move; 'none': every shape follows motion; or shape "
            "names, space separated.",
            default="auto",
        ),
        KnobSpec(
            USE_VECTORS,
            BOOL,
            "use motion vectors",
            "Off: SeamRoto computes optical flow from the plate. On: read motion vectors "
            "rendered with VectorGenerator or a ScanlineRender motion layer instead.",
            default=False,
        ),
        KnobSpec(
            VECTORS_FILE,
            FILE,
            "vectors",
            "Motion-vector EXR sequence (forward.u/v and backward.u/v, or motion.u/v, per frame) "
            "covering the plate's frame range; read only with 'use motion vectors' on.",
            default="",
        ),
        KnobSpec(
            FLOW_PRESET,
            ENUM,
            "flow quality",
            "Optical flow preset: 'ultrafast' suits most shots; 'fast' and 'medium' refine the "
            "flow further (slower) and can help on soft, low-contrast detail.",
            values=FLOW_PRESETS,
        ),
        _OUTPUT_DIR,
        _DIVIDER,
        _button(
            ANIMATE,
            "Animate shapes",
            "Carry the keyed shapes of the connected Roto through every frame of the plate; keys "
            "stay exact. A new Roto appears beside this node and the source Roto stays untouched.",
            same_line=False,
        ),
        _TROUBLESHOOT,
        _STATUS,
        KnobSpec("advanced_tab", TAB, "Advanced", "Install and bookkeeping settings."),
        _CORE_PYTHON,
        _FLAGGED,
        _record(knobs.LAST_NK, "last nodes file", "The .nk file the last run pasted."),
        _record(knobs.LAST_REPORT, "last report", "JSON report of the last run (flagged frames per shape)."),
    )
)

BBOX_TRACKER_KNOBS = NodeKnobs(
    _BOOKKEEPING
    + (
        KnobSpec("bbox_tab", TAB, "BBoxTracker", "Track a box drawn on one frame through the shot."),
        KnobSpec(
            BOX,
            BBOX,
            "box",
            "The box to track: drag its corners in the Viewer on the reference frame, around the "
            "object (rig, prop, puppet face).",
            default=DEFAULT_BOX,
        ),
        KnobSpec(
            REFERENCE_FRAME,
            INT,
            "reference frame",
            "Frame the box is drawn on; tracking runs forward and backward from it.",
            default=1001,
        ),
        _button(USE_CURRENT_FRAME, "Use current frame", "Set the reference frame to the Viewer's frame."),
        _OUTPUT_DIR,
        _DIVIDER,
        _button(
            TRACK_BOX,
            "Track box",
            "Track the box through the input's frame range in the background and paste a Tracker4 "
            "(four corners and the centre) beside this node. Cancel any time.",
            same_line=False,
        ),
        _TROUBLESHOOT,
        _STATUS,
        KnobSpec("advanced_tab", TAB, "Advanced", "Install and bookkeeping settings."),
        _CORE_PYTHON,
        _FLAGGED,
        _record(knobs.LAST_NK, "last nodes file", "The .nk file the last run pasted."),
        _record(knobs.LAST_RESULT, "last result", "JSON result of the last run (the box on every frame)."),
    )
)

# Knob -> request arg for the settings that pass straight through.
MOTION2ROTO_ARGS: Mapping[str, str] = {FLOW_PRESET: "preset"}
