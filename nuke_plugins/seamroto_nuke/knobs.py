"""Knob names, their declarations (label, tooltip, default) and knob <-> request-dict mapping.

Knob names are a saved API: artists' .nk files store them, so a name here is never renamed or
reused for another meaning. Add a new knob instead, and bump ``KNOB_API`` if an old one must be
read differently (a migration then reads ``KNOB_API_KNOB`` from the saved node).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

KNOB_API = 1

# --- hidden bookkeeping (every SeamRoto node) ----------------------------------------------
NODE_TYPE_KNOB = "seamroto_node_type"
KNOB_API_KNOB = "seamroto_knob_api"

# --- SeamRoto ---------------------------------------------------------------------------------
CHARACTER = "character"
MODEL_VERSION = "model_version"
USE_CUSTOM_RANGE = "use_custom_range"
FIRST_FRAME = "first_frame"
LAST_FRAME = "last_frame"
SMOOTHING = "smoothing"
CONFIDENCE_THRESHOLD = "confidence_threshold"
FEATHER_PX = "feather_px"
SEAM_BAND_PX = "seam_band_px"
WRITE_REPORT = "write_report"
SNAP_PIECES = "snap_pieces"
OUTPUT_DIR = "output_dir"
TRACK = "track"
BUILD_NODES = "build_nodes"
OPEN_REPORT = "open_report"
TROUBLESHOOT = "troubleshoot"
STATUS = "status"
CORE_PYTHON = "core_python"
USED_CHARACTER = "used_character"
USED_MODEL_VERSION = "used_model_version"
LAST_OUT_DIR = "last_out_dir"
LAST_NK = "last_nk"
LAST_RESULT = "last_result"
LAST_REPORT = "last_report"

# --- SeamRotoTrain ----------------------------------------------------------------------------
CHARACTER_NAME = "character_name"
TRAINING_NODES = "training_nodes"
USE_SELECTED = "use_selected"
TRAINING_NK_FILES = "training_nk_files"
ADD_NK_FILE = "add_nk_file"
FINE_TUNE = "fine_tune"
TRAIN_MINUTES = "train_minutes"
MODELS_DIR = "models_dir"
TRAIN = "train"
CALIBRATE = "calibrate"
LAST_MODEL_DIR = "last_model_dir"

# --- SeamRotoRefit ----------------------------------------------------------------------------
ROTO_NODE = "roto_node"
SEAMROTO_NODE = "seamroto_node"
REFIT = "refit"

# --- knob kinds (nodes.py maps each to a nuke *_Knob class) -----------------------------------
TAB, TEXT, DIVIDER = "tab", "text", "divider"
ENUM, INT, DOUBLE, BOOL = "enum", "int", "double", "bool"
STRING, FILE, MULTILINE, BUTTON = "string", "file", "multiline", "button"
VALUE_KINDS = (ENUM, INT, DOUBLE, BOOL, STRING, FILE, MULTILINE)

NO_MODELS = "none_found"
BUTTON_COMMAND = "import seamroto_nuke.commands as _seamroto; _seamroto.button(nuke.thisNode(), {!r})"


@dataclass(frozen=True)
class KnobSpec:
    """One knob as the artist sees it; ``nodes.make_knob`` turns it into a nuke knob.

    ``same_line`` puts the knob beside the previous one (buttons in a row), ``hidden`` and
    ``read_only`` set the matching knob flags, ``enabled_by`` names a Boolean knob that
    enables this one.
    """

    name: str
    kind: str
    label: str
    tooltip: str
    default: Any = None
    values: Tuple[str, ...] = ()
    value_range: Optional[Tuple[float, float]] = None
    same_line: bool = False
    hidden: bool = False
    read_only: bool = False
    enabled_by: str = ""
    action: str = ""

    def __post_init__(self) -> None:
        if not self.tooltip.strip():
            raise ValueError(f"knob {self.name!r} needs a tooltip")

    @property
    def command(self) -> str:
        """The one-line Python a button runs (empty for other kinds)."""
        return BUTTON_COMMAND.format(self.action or self.name) if self.kind == BUTTON else ""


@dataclass(frozen=True)
class NodeKnobs:
    """The knob list of one node type, in panel order."""

    specs: Tuple[KnobSpec, ...]
    by_name: Dict[str, KnobSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [s.name for s in self.specs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate knob names: {dupes}")
        object.__setattr__(self, "by_name", {s.name: s for s in self.specs})


def _button(name: str, label: str, tooltip: str, same_line: bool = True) -> KnobSpec:
    return KnobSpec(name, BUTTON, label, tooltip, same_line=same_line)


def _record(name: str, label: str, tooltip: str) -> KnobSpec:
    return KnobSpec(name, STRING, label, tooltip, default="", read_only=True)


_HIDDEN_BOOKKEEPING = (
    KnobSpec(NODE_TYPE_KNOB, STRING, "node type", "Which SeamRoto tool this Group is.", hidden=True),
    KnobSpec(
        KNOB_API_KNOB, INT, "knob API", "Knob layout version, for migrations.", default=KNOB_API,
        hidden=True,
    ),
)

_STATUS = KnobSpec(STATUS, TEXT, "", "What the last run did, or why it stopped.", default="ready")
_CORE_PYTHON = KnobSpec(
    CORE_PYTHON,
    FILE,
    "core python",
    "Python of the SeamRoto core's venv (e.g. /opt/seamroto/.venv/bin/python). Empty: use "
    "$SEAMROTO_PYTHON, then the install's own .venv. Setting it always runs the core as a "
    "separate process.",
    default="",
)
_OUTPUT_DIR = KnobSpec(
    OUTPUT_DIR,
    FILE,
    "output folder",
    "Where results are written (one new versioned folder per run, never overwritten). Empty: "
    "a 'seamroto' folder next to the saved script, or a temp folder if it is unsaved.",
    default="",
)
_SNAP_PIECES = KnobSpec(
    SNAP_PIECES,
    BOOL,
    "snap replacement pieces",
    "Fit replacement pieces (a new mouth print every frame) onto each frame's own edges with the "
    "character's print library; a calibrated character's mouth tracks then follow the snapped "
    "print too. Off: the rig's shape and the tracks from the landmarks alone (steadier on a soft "
    "or smoky plate, a little faster).",
    default=True,
)
_TROUBLESHOOT = _button(
    TROUBLESHOOT,
    "Troubleshoot",
    "Check the install: which Python runs the core, its version, the models it can see, and "
    "where the log is. Send the result to your TD when something fails.",
)
_ACTIONS_DIVIDER = KnobSpec(
    "actions_divider", DIVIDER, "", "The buttons below run this node's actions in the background."
)
_OPEN_REPORT = _button(
    OPEN_REPORT, "Open report", "Open the HTML review report of the last run in a web browser."
)

SEAMROTO_KNOBS = NodeKnobs(
    _HIDDEN_BOOKKEEPING
    + (
        KnobSpec("seamroto_tab", TAB, "SeamRoto", "Tracking and roto for split-face puppets."),
        KnobSpec(
            CHARACTER,
            ENUM,
            "character",
            "Puppet character model to track with. The list holds every character in the "
            "install's models/ folder and in each folder on $SEAMROTO_MODELS.",
            values=(NO_MODELS,),
        ),
        KnobSpec(
            MODEL_VERSION,
            ENUM,
            "model version",
            "Model version of the character. 'latest' picks the newest at Track time; the "
            "version actually used is recorded below so a farm re-run reproduces it.",
            values=("latest",),
            same_line=True,
        ),
        KnobSpec(
            USE_CUSTOM_RANGE,
            BOOL,
            "custom frame range",
            "Off: track the whole frame range of the input. On: track first..last frame only.",
            default=False,
        ),
        KnobSpec(
            FIRST_FRAME, INT, "first", "First frame to track (with custom frame range).",
            default=1001, enabled_by=USE_CUSTOM_RANGE, same_line=True,
        ),
        KnobSpec(
            LAST_FRAME, INT, "last", "Last frame to track (with custom frame range).",
            default=1100, enabled_by=USE_CUSTOM_RANGE, same_line=True,
        ),
        KnobSpec(
            SMOOTHING,
            DOUBLE,
            "smoothing",
            "Temporal smoothing of the landmark tracks (0 = off). Raise it if shapes jitter, "
            "lower it if they lag behind fast replacement-face changes.",
            default=1.0,
            value_range=(0.0, 5.0),
        ),
        KnobSpec(
            CONFIDENCE_THRESHOLD,
            DOUBLE,
            "confidence threshold",
            "Frames whose landmark confidence falls below this are flagged in the report and "
            "keyed for review instead of trusted (0-1).",
            default=0.5,
            value_range=(0.0, 1.0),
        ),
        KnobSpec(
            FEATHER_PX, DOUBLE, "feather", "Feather of the roto shapes, in pixels.", default=2.0,
            value_range=(0.0, 50.0),
        ),
        KnobSpec(
            SEAM_BAND_PX,
            DOUBLE,
            "seam band width",
            "Width in pixels of the matte along the seam between the two face halves.",
            default=6.0,
            value_range=(0.0, 40.0),
        ),
        _SNAP_PIECES,
        KnobSpec(
            WRITE_REPORT, BOOL, "write report",
            "Also write an HTML report with per-frame confidence for review.", default=True,
        ),
        _OUTPUT_DIR,
        _ACTIONS_DIVIDER,
        _button(
            TRACK,
            "Track",
            "Track the landmarks of the input plate in the background and build Tracker4 and "
            "Roto nodes beside this node. Cancel any time: nothing half-made is kept.",
            same_line=False,
        ),
        _button(
            BUILD_NODES,
            "Build nodes",
            "Paste the nodes of the last Track again, as a new version (your edited nodes stay "
            "untouched).",
        ),
        _OPEN_REPORT,
        _TROUBLESHOOT,
        _STATUS,
        KnobSpec("advanced_tab", TAB, "Advanced", "Install and bookkeeping settings."),
        _CORE_PYTHON,
        _record(USED_CHARACTER, "used character", "Character the last Track used."),
        _record(USED_MODEL_VERSION, "used model version", "Model version the last Track used."),
        _record(LAST_OUT_DIR, "last output", "Output folder of the last Track."),
        _record(LAST_NK, "last nodes file", "The .nk file Build nodes pastes."),
        _record(LAST_RESULT, "last result", "result.json of the last Track (Refit reads it)."),
        _record(LAST_REPORT, "last report", "HTML report of the last run."),
    )
)

TRAIN_KNOBS = NodeKnobs(
    _HIDDEN_BOOKKEEPING
    + (
        KnobSpec("train_tab", TAB, "SeamRotoTrain", "Teach SeamRoto a new puppet character."),
        KnobSpec(
            CHARACTER_NAME,
            STRING,
            "character",
            "Name of the character to train (letters, digits, _ or -). An existing character "
            "gets a new version; nothing is overwritten.",
            default="",
        ),
        KnobSpec(
            TRAINING_NODES,
            STRING,
            "ground truth nodes",
            "Names of the artists' Tracker4 and Roto nodes to learn from (space separated); "
            "each must have its plate's Read node upstream.",
            default="",
        ),
        _button(
            USE_SELECTED,
            "Use selected",
            "Fill 'ground truth nodes' with the Tracker4 and Roto nodes selected in the node graph.",
        ),
        KnobSpec(
            TRAINING_NK_FILES,
            MULTILINE,
            "ground truth .nk files",
            "More shots as saved .nk scripts (one path per line), each holding a Read node and "
            "the artists' Tracker4 and Roto nodes.",
            default="",
        ),
        _button(ADD_NK_FILE, "Add .nk file", "Browse for a ground-truth .nk script to add."),
        KnobSpec(
            FINE_TUNE,
            BOOL,
            "start from latest version",
            "When the character already exists, fine-tune its newest model instead of "
            "training from scratch (faster, keeps what it learnt).",
            default=True,
        ),
        KnobSpec(
            TRAIN_MINUTES,
            DOUBLE,
            "time budget (minutes)",
            "Stop training after this many minutes (0 = the core's default).",
            default=0.0,
            value_range=(0.0, 240.0),
        ),
        KnobSpec(
            MODELS_DIR,
            FILE,
            "models folder",
            "Where the trained model is written. Empty: the first folder on $SEAMROTO_MODELS, "
            "else the install's models/ folder.",
            default="",
        ),
        _ACTIONS_DIVIDER,
        _button(
            TRAIN,
            "Train",
            "Train the character in the background (cancellable); the new version then shows "
            "up in every SeamRoto node's character list.",
            same_line=False,
        ),
        _button(
            CALIBRATE,
            "Calibrate flags",
            "Measure how sure the character's newest model should be, on the ground truth picked "
            "above: shots it did NOT train on, tracked or checked by an artist. Writes the next "
            "version (same networks, review flags fitted to these shots; the card shows the flag "
            "figures before and after); the model it starts from stays as it is.",
        ),
        _OPEN_REPORT,
        _TROUBLESHOOT,
        _STATUS,
        KnobSpec("advanced_tab", TAB, "Advanced", "Install and bookkeeping settings."),
        _CORE_PYTHON,
        _record(LAST_MODEL_DIR, "last model", "Model folder the last Train wrote."),
        _record(LAST_REPORT, "last report", "Training report of the last run."),
    )
)

REFIT_KNOBS = NodeKnobs(
    _HIDDEN_BOOKKEEPING
    + (
        KnobSpec("refit_tab", TAB, "SeamRotoRefit", "Rebuild roto shapes from edited tracks."),
        KnobSpec(
            SEAMROTO_NODE,
            STRING,
            "SeamRoto node",
            "The SeamRoto node whose Track made these tracks (its character and model are "
            "reused). Filled in automatically when the tracks came from SeamRoto.",
            default="",
        ),
        KnobSpec(
            ROTO_NODE,
            STRING,
            "old Roto node",
            "The Roto node to rebuild; the new Roto is placed beside it and it stays untouched.",
            default="",
        ),
        _button(
            USE_SELECTED,
            "Use selected",
            "Take the Roto and SeamRoto nodes from the selection in the node graph.",
        ),
        KnobSpec(
            FEATHER_PX, DOUBLE, "feather", "Feather of the rebuilt shapes, in pixels.",
            default=2.0, value_range=(0.0, 50.0),
        ),
        KnobSpec(
            SMOOTHING, DOUBLE, "smoothing",
            "Temporal smoothing applied to the edited tracks before fitting (0 = use them as is).",
            default=0.0, value_range=(0.0, 5.0),
        ),
        _SNAP_PIECES,
        _OUTPUT_DIR,
        _ACTIONS_DIVIDER,
        _button(
            REFIT,
            "Rebuild shapes",
            "Rebuild the roto shapes from the Tracker4 connected to this node's input, after you "
            "moved track keys. A new Roto appears beside the old one.",
            same_line=False,
        ),
        _OPEN_REPORT,
        _TROUBLESHOOT,
        _STATUS,
        KnobSpec("advanced_tab", TAB, "Advanced", "Install and bookkeeping settings."),
        _CORE_PYTHON,
        _record(LAST_NK, "last nodes file", "The .nk file the last Rebuild pasted."),
        _record(LAST_REPORT, "last report", "Report of the last run."),
    )
)

# Knob -> request arg for the settings that pass straight through (the rest is computed).
TRACK_ARGS: Mapping[str, str] = {
    SMOOTHING: "smoothing",
    CONFIDENCE_THRESHOLD: "confidence_threshold",
    FEATHER_PX: "feather_px",
    SEAM_BAND_PX: "seam_band_px",
    WRITE_REPORT: "report",
    SNAP_PIECES: "snap_pieces",
}
TRAIN_ARGS: Mapping[str, str] = {TRAIN_MINUTES: "minutes"}
REFIT_ARGS: Mapping[str, str] = {FEATHER_PX: "feather_px", SMOOTHING: "smoothing", SNAP_PIECES: "snap_pieces"}


def coerce(spec: KnobSpec, raw: Any) -> Any:
    """A knob's raw value as the Python type its kind promises (Nuke returns floats for ints)."""
    if spec.kind == INT:
        return int(raw)
    if spec.kind == DOUBLE:
        return float(raw)
    if spec.kind == BOOL:
        return bool(raw)
    return "" if raw is None else str(raw)


def request_args(values: Mapping[str, Any], mapping: Mapping[str, str]) -> Dict[str, Any]:
    """Rename knob values to request args with ``mapping`` (knob name -> arg name)."""
    return {arg: values[knob] for knob, arg in mapping.items() if knob in values}
