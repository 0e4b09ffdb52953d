"""Entry points behind the SeamRoto menu and buttons: read knobs, build a request, run, paste.

Buttons and menu entries enter through ``button``, ``create_node``, ``troubleshoot`` and
``open_log_folder``, each one error boundary: a problem the artist can fix becomes a short
message naming the node and knob; anything else a message that points the TD at the log. In
terminal mode (``nuke -t``) errors are logged and re-raised. The action functions (``track``,
``train``, ``refit``...) raise, so scripts see the exception. Nothing here tracks, fits or
writes .nk text (the core does); nothing here edits a node it did not make.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import webbrowser
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import nuke

from seamroto_nuke import ADAPTER_VERSION, bridge, feedback, jobs, knobs, nodes, paths, render, results
from seamroto_nuke.errors import InputError, KnobError, PluginError

logger = logging.getLogger(__name__)

CHARACTER_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
GROUND_TRUTH_CLASSES = frozenset({"Tracker4", "Roto", "RotoPaint"})
MAX_UPSTREAM_STEPS = 200
_SEAMROTO_NAME = re.compile(r"^(?P<prefix>.+)_[^_]+_v(?P<num>\d+)$")


# --- menu -------------------------------------------------------------------------------------


def create_node(type_name: str) -> Optional[nuke.Group]:
    """Menu entry: create a SeamRoto tool connected to (and filled from) the selection."""
    with _boundary(f"create {type_name}"):
        selected = nuke.selectedNodes()
        node = nodes.create(type_name, show_panel=bool(nuke.GUI))
        if type_name == nodes.TRAIN.name:
            _fill_training_nodes(node, selected, required=False)
        elif type_name == nodes.REFIT.name:
            _fill_refit_from_tracker(node)
        return node
    return None


def button(node: nuke.Node, action: str) -> Any:
    """What every SeamRoto button runs: look up ``action`` and call it with this node."""
    fn = ACTIONS.get(action)
    label = action.replace("_", " ").capitalize()
    with _boundary(label):
        if fn is None:
            raise PluginError(f"this SeamRoto version has no button action {action!r}", node=node.name())
        return fn(node)
    return None


def open_log_folder() -> None:
    """Menu entry: show the folder holding the SeamRoto log."""
    with _boundary("open log"):
        folder = feedback.setup_logging().parent
        if nuke.GUI:
            webbrowser.open(folder.as_uri())
        logger.info("SeamRoto log folder: %s", folder)


# --- SeamRoto ---------------------------------------------------------------------------------


def track(node: nuke.Node) -> jobs.Job:
    """Track the plate at the node's input and paste the nodes the core built (new version).

    Returns:
        The running job (finished already in terminal mode).
    """
    _require_type(node, nodes.SEAMROTO)
    if jobs.is_running(node.fullName()):
        raise PluginError("is already tracking; wait for it or cancel it first", node=node.name())
    values = nodes.values(node)
    model = _pick_model(node, values)
    source = node.input(0)
    if source is None:
        raise InputError("connect the plate (a Read or any node tree) to its input", node=node.name())
    first, last = _frame_range(node, values, source)
    out_root = _output_root(values)
    prefix = node.name()
    version = results.next_version(node, prefix, out_root)
    out_dir = out_root / f"{prefix}_v{version}"
    render_dir: Optional[Path] = None
    if render.is_plain_read(source):
        plate = render.plate_from_read(source, first, last)
    else:
        render_dir = out_root / f"{prefix}_v{version}.plate"
        if not isinstance(node, nuke.Group):
            raise InputError("is not a Group, so it cannot render its input", node=node.name())
        plate = render.render_input(node, nodes.SEAMROTO.inputs[0], first, last, render_dir)
    args: Dict[str, Any] = {
        **plate.to_args(),
        **knobs.request_args(values, knobs.TRACK_ARGS),
        "character": model.character,
        "model_version": model.version,
        "model_dir": str(model.path),
        "out_dir": str(out_dir),
        "node_prefix": prefix,
        "node_version": version,
        "include_read": False,
        "source_node": node.fullName(),
    }
    python_knob = str(values.get(knobs.CORE_PYTHON, ""))
    node_name = node.fullName()

    work = _core_call("track", args, python_knob)
    def done(outputs: Dict[str, Any]) -> str:
        live = _alive(node_name, f"results are in {out_dir}")
        nodes.set_text(live, knobs.USED_CHARACTER, str(outputs.get("character") or model.character))
        nodes.set_text(live, knobs.USED_MODEL_VERSION, str(outputs.get("model_version") or model.version))
        nodes.set_text(live, knobs.LAST_OUT_DIR, str(out_dir))
        nodes.set_text(live, knobs.LAST_NK, str(outputs.get("nk") or ""))
        nodes.set_text(live, knobs.LAST_RESULT, str(outputs.get("result") or ""))
        nodes.set_text(live, knobs.LAST_REPORT, str(outputs.get("report") or ""))
        return _describe(_build(live, str(outputs.get("nk") or ""), version), version)

    def finish(ok: bool) -> None:
        if not ok and render_dir is not None:
            shutil.rmtree(render_dir, ignore_errors=True)

    nodes.set_text(node, knobs.STATUS, f"tracking {first}-{last} with {model.character} {model.version}...")
    return jobs.start("Track", node_name, work, done, on_finish=finish, on_status=_status_setter(node_name))


def build_nodes(node: nuke.Node) -> Optional[results.Pasted]:
    """Paste the last Track's nodes again as a new version (the artist's edits stay)."""
    _require_type(node, nodes.SEAMROTO)
    nk = str(node[knobs.LAST_NK].value() or "")
    if not nk:
        raise KnobError("nothing to build yet: press Track first", node=node.name(), knob=knobs.LAST_NK)
    last_out = str(node[knobs.LAST_OUT_DIR].value() or "")
    out_root = Path(last_out).parent if last_out else None
    version = results.next_version(node, node.name(), out_root)
    pasted = _build(node, nk, version)
    nodes.set_text(node, knobs.STATUS, f"Build nodes: {_describe(pasted, version)}")
    return pasted


def open_report(node: nuke.Node) -> Optional[str]:
    """Open the last run's HTML report in the web browser."""
    _require_type(node, None)
    knob = node.knob(knobs.LAST_REPORT)
    report = str(knob.value() or "") if knob is not None else ""
    if not report or not Path(report).is_file():
        raise KnobError(
            "no report yet: run it with 'write report' on" if not report else "the report file is gone",
            node=node.name(),
            knob=knobs.LAST_REPORT,
            path=report or None,
        )
    if nuke.GUI:
        webbrowser.open(Path(report).resolve().as_uri())
    logger.info("report: %s", report)
    return report


def troubleshoot(node: Optional[nuke.Node] = None) -> Optional[jobs.Job]:
    """Collect what a TD needs (interpreters, versions, models, log path) and show it."""
    with _boundary("Troubleshoot"):
        return _start_troubleshoot(node)
    return None


def _start_troubleshoot(node: Optional[nuke.Node]) -> jobs.Job:
    python_knob = ""
    if node is not None and node.knob(knobs.CORE_PYTHON) is not None:
        python_knob = str(node[knobs.CORE_PYTHON].value() or "")
    local = _local_diagnostics(python_knob)
    key = node.fullName() if node is not None else "troubleshoot"

    def work(progress: bridge.ProgressSink) -> Dict[str, Any]:
        try:
            return {"about": bridge.run("about", {}, progress, python_knob=python_knob)}
        except PluginError as err:  # the failure is the diagnosis: show it, do not raise
            return {"error": f"{type(err).__name__}: {err}"}

    def done(outputs: Dict[str, Any]) -> str:
        text = _format_diagnostics(local, outputs)
        logger.info("troubleshoot:\n%s", text)
        feedback.notify(text)
        return "core OK" if "about" in outputs else "core NOT reachable (see message)"

    return jobs.start("Troubleshoot", key, work, done, on_status=_status_setter(key) if node else None)


# --- SeamRotoTrain ----------------------------------------------------------------------------


def _ground_truth_picks(node: nuke.Node, values: Dict[str, Any]) -> Tuple[str, List[nuke.Node], List[str]]:
    """The Train node's character name, ground-truth nodes and .nk files, checked."""
    name = str(values[knobs.CHARACTER_NAME]).strip()
    if not CHARACTER_NAME_RE.match(name):
        raise KnobError(
            "type a character name: a letter, then letters, digits, _ or - (e.g. mara)",
            node=node.name(),
            knob=knobs.CHARACTER_NAME,
        )
    nk_files = [line.strip() for line in str(values[knobs.TRAINING_NK_FILES]).splitlines() if line.strip()]
    for nk in nk_files:
        if not Path(nk).is_file():
            raise KnobError(
                "this ground-truth .nk file does not exist",
                node=node.name(),
                knob=knobs.TRAINING_NK_FILES,
                path=nk,
            )
    gt_nodes = _named_nodes(node, knobs.TRAINING_NODES, str(values[knobs.TRAINING_NODES]).split())
    if not gt_nodes and not nk_files:
        raise KnobError(
            "pick ground truth: select Tracker4/Roto nodes and press 'Use selected', or add .nk files",
            node=node.name(),
            knob=knobs.TRAINING_NODES,
        )
    return name, gt_nodes, nk_files


def train(node: nuke.Node) -> jobs.Job:
    """Train (or fine-tune) a character from the picked ground-truth nodes and .nk files."""
    _require_type(node, nodes.TRAIN)
    values = nodes.values(node)
    name, gt_nodes, nk_files = _ground_truth_picks(node, values)
    models_dir = _models_dir(values)
    existing = paths.find_models([models_dir])
    new_version = _next_model_version(paths.versions(existing, name))
    base = paths.resolve_model(existing, name, paths.LATEST) if values[knobs.FINE_TUNE] else None
    out_dir = models_dir / name / new_version
    staging, shots = _staged_shots(gt_nodes, "seamroto_train_")
    args: Dict[str, Any] = {
        **knobs.request_args(values, knobs.TRAIN_ARGS),
        "character": name,
        "version": new_version,
        "models_dir": str(models_dir),
        "out_dir": str(out_dir),
        "shots": shots,
        "nk_files": nk_files,
        "base_model_dir": str(base.path) if base is not None else "",
    }
    python_knob = str(values.get(knobs.CORE_PYTHON, ""))
    node_name = node.fullName()

    work = _core_call("train", args, python_knob)
    def done(outputs: Dict[str, Any]) -> str:
        live = _alive(node_name, f"the model is in {out_dir}")
        model_dir = str(outputs.get("model_dir") or out_dir)
        nodes.set_text(live, knobs.LAST_MODEL_DIR, model_dir)
        nodes.set_text(live, knobs.LAST_REPORT, str(outputs.get("report") or ""))
        version = str(outputs.get("model_version") or new_version)
        feedback.notify(f"SeamRoto trained {name} {version}. Pick it in any SeamRoto node's character list.")
        return f"trained {name} {version}"

    def finish(ok: bool) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    nodes.set_text(node, knobs.STATUS, f"training {name} {new_version}...")
    return jobs.start("Train", node_name, work, done, on_finish=finish, on_status=_status_setter(node_name))


def calibrate(node: nuke.Node) -> jobs.Job:
    """Fit the newest model's review flags on the picked (checked, not trained-on) shots: a new version."""
    _require_type(node, nodes.TRAIN)
    values = nodes.values(node)
    name, gt_nodes, nk_files = _ground_truth_picks(node, values)
    models_dir = _models_dir(values)
    existing = paths.find_models([models_dir])
    base = paths.resolve_model(existing, name, paths.LATEST)
    if base is None:
        raise KnobError(
            f"there is no model of {name!r} in {models_dir} to calibrate; train it first",
            node=node.name(),
            knob=knobs.CHARACTER_NAME,
        )
    new_version = _next_model_version(paths.versions(existing, name))
    out_dir = models_dir / name / new_version
    staging, shots = _staged_shots(gt_nodes, "seamroto_calibrate_")
    args: Dict[str, Any] = {"model_dir": str(base.path), "out_dir": str(out_dir), "shots": shots, "nk_files": nk_files}
    python_knob = str(values.get(knobs.CORE_PYTHON, ""))
    node_name = node.fullName()

    work = _core_call("calibrate", args, python_knob)
    def done(outputs: Dict[str, Any]) -> str:
        live = _alive(node_name, f"the model is in {out_dir}")
        nodes.set_text(live, knobs.LAST_MODEL_DIR, str(outputs.get("model_dir") or out_dir))
        version = str(outputs.get("model_version") or new_version)
        summary = "; ".join(str(line) for line in outputs.get("summary") or [])
        feedback.notify(f"SeamRoto calibrated {name} {version} from {base.version}. {summary}")
        text = f"calibrated {name} {version} from {base.version}"
        return f"{text}: {summary}" if summary else text

    def finish(ok: bool) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    nodes.set_text(node, knobs.STATUS, f"calibrating {name} {base.version} -> {new_version}...")
    return jobs.start("Calibrate", node_name, work, done, on_finish=finish, on_status=_status_setter(node_name))


def use_selected(node: nuke.Node) -> None:
    """Fill the node's pick-list knobs from the node-graph selection."""
    node_type = _require_type(node, None)
    selected = [n for n in nuke.selectedNodes() if n.name() != node.name()]
    if node_type is nodes.TRAIN:
        _fill_training_nodes(node, selected, required=True)
    elif node_type is nodes.REFIT:
        _fill_refit_from_selection(node, selected)


def add_nk_file(node: nuke.Node) -> None:
    """Browse for a ground-truth .nk script and add it to the list."""
    _require_type(node, nodes.TRAIN)
    picked = nuke.getFilename("Ground-truth .nk script", "*.nk")
    if not picked:
        return
    knob = node[knobs.TRAINING_NK_FILES]
    lines = [line for line in str(knob.value() or "").splitlines() if line.strip()]
    if picked not in lines:
        lines.append(picked)
    knob.setValue("\n".join(lines))


# --- SeamRotoRefit ----------------------------------------------------------------------------


def refit(node: nuke.Node) -> jobs.Job:
    """Rebuild roto shapes from the edited Tracker4 at the input; paste a new Roto beside the old."""
    _require_type(node, nodes.REFIT)
    tracker = node.input(0)
    if tracker is None or tracker.Class() != "Tracker4":
        raise InputError("connect the edited Tracker4 to its input", node=node.name())
    values = nodes.values(node)
    source = _seamroto_source(node, values)
    model = _model_used_by(source)
    old_roto = _named_nodes(node, knobs.ROTO_NODE, [str(values[knobs.ROTO_NODE])])
    roto = old_roto[0] if old_roto else None
    prefix = source.name()
    last_out = str(source[knobs.LAST_OUT_DIR].value() or "")
    if values[knobs.OUTPUT_DIR]:
        out_root = Path(str(values[knobs.OUTPUT_DIR]))
    elif last_out:
        out_root = Path(last_out).parent
    else:
        out_root = paths.default_output_root(nuke.root().name())
    version = results.next_version(source, prefix, out_root)
    out_dir = out_root / f"{prefix}_v{version}"
    staging = Path(tempfile.mkdtemp(prefix="seamroto_refit_"))
    tracks_nk = staging / "tracks.nk"
    try:
        _export_nodes([tracker], tracks_nk)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    args: Dict[str, Any] = {
        **knobs.request_args(values, knobs.REFIT_ARGS),
        "tracks_nk": str(tracks_nk),
        "result": str(source[knobs.LAST_RESULT].value() or ""),
        "character": model.character,
        "model_version": model.version,
        "model_dir": str(model.path),
        "out_dir": str(out_dir),
        "node_prefix": prefix,
        "node_version": version,
        "source_node": tracker.fullName(),
    }
    python_knob = str(values.get(knobs.CORE_PYTHON, ""))
    node_name, tracker_name = node.fullName(), tracker.fullName()
    roto_name = roto.fullName() if roto is not None else ""

    work = _core_call("refit", args, python_knob)
    def done(outputs: Dict[str, Any]) -> str:
        live = _alive(node_name, f"results are in {out_dir}")
        old = nuke.toNode(roto_name) if roto_name else None
        anchor = old if old is not None else _alive(tracker_name, f"results are in {out_dir}")
        wire_to = old.input(0) if old is not None and old.input(0) is not None else anchor
        nk = str(outputs.get("nk") or "")
        nodes.set_text(live, knobs.LAST_NK, nk)
        nodes.set_text(live, knobs.LAST_REPORT, str(outputs.get("report") or ""))
        label = f"SeamRoto refit {prefix} v{version}\n{model.character} {model.version}"
        pasted = results.paste_result(
            nk, anchor=anchor, wire_to=wire_to, prefix=prefix, version=version, label=label
        )
        return _describe(pasted, version)

    def finish(ok: bool) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    nodes.set_text(node, knobs.STATUS, "refitting...")
    return jobs.start("Refit", node_name, work, done, on_finish=finish, on_status=_status_setter(node_name))


# --- helpers ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _boundary(action: str) -> Iterator[None]:
    """One error boundary per artist action: report, and re-raise only in terminal mode."""
    feedback.setup_logging()
    try:
        yield
    except Exception as err:
        if not getattr(err, feedback.REPORTED_ATTR, False):
            feedback.report_error(err, action)
        if not nuke.GUI:
            raise


def _require_type(node: nuke.Node, wanted: Optional[nodes.NodeType]) -> nodes.NodeType:
    """The node's SeamRoto type; it must be ``wanted`` (any SeamRoto type when None)."""
    node_type = nodes.node_type_of(node)
    if node_type is None or (wanted is not None and node_type is not wanted):
        expected = wanted.name if wanted is not None else "SeamRoto"
        raise InputError(f"is not a {expected} node", node=node.name())
    return node_type


def _pick_model(node: nuke.Node, values: Dict[str, Any]) -> paths.ModelChoice:
    """The model the knobs ask for; on the farm 'latest' means the version the artist used."""
    models = paths.find_models()
    character = str(values[knobs.CHARACTER])
    version = str(values[knobs.MODEL_VERSION])
    if character in ("", knobs.NO_MODELS):
        where = ", ".join(str(p) for p in paths.model_search_paths())
        raise KnobError(
            f"pick a character; none is installed in {where} (add a folder to ${paths.ENV_MODELS})",
            node=node.name(),
            knob=knobs.CHARACTER,
        )
    used_version = str(values.get(knobs.USED_MODEL_VERSION, ""))
    if (
        not nuke.GUI
        and version == paths.LATEST
        and used_version
        and values.get(knobs.USED_CHARACTER) == character
    ):
        version = used_version  # a farm re-run reproduces the artist's run
    model = paths.resolve_model(models, character, version)
    if model is None:
        installed = ", ".join(paths.versions(models, character)) or "none"
        raise KnobError(
            f"model {character} {version} is not installed on this machine (installed: "
            f"{installed}); pick another version or ask your TD to install it",
            node=node.name(),
            knob=knobs.MODEL_VERSION,
        )
    return model


def _frame_range(node: nuke.Node, values: Dict[str, Any], source: nuke.Node) -> Tuple[int, int]:
    """The custom range, or the input's own range."""
    if values[knobs.USE_CUSTOM_RANGE]:
        first, last = int(values[knobs.FIRST_FRAME]), int(values[knobs.LAST_FRAME])
        knob = knobs.LAST_FRAME
    else:
        first, last = int(source.firstFrame()), int(source.lastFrame())
        knob = knobs.USE_CUSTOM_RANGE
    if last < first:
        raise KnobError(f"the frame range {first}-{last} is empty", node=node.name(), knob=knob)
    return first, last


def _output_root(values: Dict[str, Any]) -> Path:
    text = str(values.get(knobs.OUTPUT_DIR, "") or "")
    return Path(text).expanduser() if text else paths.default_output_root(nuke.root().name())


def _models_dir(values: Dict[str, Any]) -> Path:
    text = str(values.get(knobs.MODELS_DIR, "") or "")
    if text:
        return Path(text).expanduser()
    return paths.model_search_paths()[0]


def _next_model_version(existing: Sequence[str]) -> str:
    """``v1`` for a new character, else one more than the highest ``vN``."""
    numbers = [int(m.group(1)) for v in existing for m in [re.search(r"(\d+)$", v)] if m]
    return f"v{max(numbers, default=0) + 1}"


def _build(node: nuke.Node, nk: str, version: int) -> Optional[results.Pasted]:
    """Paste ``nk`` beside a SeamRoto node as ``version`` (asking first if it is big)."""
    character = str(node[knobs.USED_CHARACTER].value() or "")
    model_version = str(node[knobs.USED_MODEL_VERSION].value() or "")
    label = f"SeamRoto {node.name()} v{version}\n{character} {model_version}".strip()
    return results.paste_result(
        nk, anchor=node, wire_to=node, prefix=node.name(), version=version, label=label
    )


def _describe(pasted: Optional[results.Pasted], version: int) -> str:
    """Status text for a paste."""
    if pasted is None:
        return f"v{version} not built (declined)"
    return f"v{version}: " + ", ".join(pasted.names)


def _core_call(command: str, args: Dict[str, Any], python_knob: str) -> Callable[[bridge.ProgressSink], Dict[str, Any]]:
    """The background job's work: one core command through the bridge."""

    def work(progress: bridge.ProgressSink) -> Dict[str, Any]:
        return bridge.run(command, args, progress, python_knob=python_knob)

    return work


def _alive(full_name: str, where_results_are: str) -> nuke.Node:
    """The node if it still exists (the artist may delete it while the core runs)."""
    node = nuke.toNode(full_name)
    if node is None:
        raise PluginError(f"was deleted while SeamRoto was running; {where_results_are}", node=full_name)
    return node


def _status_setter(full_name: str) -> Callable[[str], None]:
    def set_status(text: str) -> None:
        node = nuke.toNode(full_name)
        if node is not None:
            nodes.set_text(node, knobs.STATUS, text)

    return set_status


def _named_nodes(node: nuke.Node, knob: str, names: Sequence[str]) -> List[nuke.Node]:
    """The nodes named in a knob (blank names skipped); a missing one is a knob error."""
    found: List[nuke.Node] = []
    for name in (n.strip() for n in names):
        if not name:
            continue
        other = nuke.toNode(name)
        if other is None:
            raise KnobError(f"there is no node named {name!r}", node=node.name(), knob=knob)
        found.append(other)
    return found


def _fill_training_nodes(node: nuke.Node, selected: Sequence[nuke.Node], *, required: bool) -> None:
    picked = [n.name() for n in selected if n.Class() in GROUND_TRUTH_CLASSES]
    if not picked:
        if required:
            raise KnobError(
                "select the artists' Tracker4 and Roto nodes first", node=node.name(), knob=knobs.TRAINING_NODES
            )
        return
    node[knobs.TRAINING_NODES].setValue(" ".join(picked))


def _fill_refit_from_tracker(node: nuke.Node) -> None:
    """After creation: if the input is a Tracker4 SeamRoto made, find its SeamRoto and Roto."""
    tracker = node.input(0)
    if tracker is None or tracker.Class() != "Tracker4":
        return
    match = _SEAMROTO_NAME.match(tracker.name())
    if not match:
        return
    source = nuke.toNode(match.group("prefix"))
    if nodes.node_type_of(source) is nodes.SEAMROTO and source is not None:
        node[knobs.SEAMROTO_NODE].setValue(source.name())
    sibling = re.compile(rf"^{re.escape(match.group('prefix'))}_.+_v{match.group('num')}$")
    for other in nuke.allNodes("Roto"):
        if sibling.match(other.name()):
            node[knobs.ROTO_NODE].setValue(other.name())
            break


def _fill_refit_from_selection(node: nuke.Node, selected: Sequence[nuke.Node]) -> None:
    rotos = [n for n in selected if n.Class() == "Roto"]
    sources = [n for n in selected if nodes.node_type_of(n) is nodes.SEAMROTO]
    if not rotos and not sources:
        raise KnobError("select the old Roto and/or the SeamRoto node first", node=node.name(), knob=knobs.ROTO_NODE)
    if rotos:
        node[knobs.ROTO_NODE].setValue(rotos[0].name())
    if sources:
        node[knobs.SEAMROTO_NODE].setValue(sources[0].name())


def _seamroto_source(node: nuke.Node, values: Dict[str, Any]) -> nuke.Node:
    name = str(values[knobs.SEAMROTO_NODE]).strip()
    if not name:
        _fill_refit_from_tracker(node)
        name = str(node[knobs.SEAMROTO_NODE].value() or "").strip()
    if not name:
        raise KnobError(
            "name the SeamRoto node that made these tracks (select it, press 'Use selected')",
            node=node.name(),
            knob=knobs.SEAMROTO_NODE,
        )
    source = nuke.toNode(name)
    if nodes.node_type_of(source) is not nodes.SEAMROTO or source is None:
        raise KnobError(f"{name!r} is not a SeamRoto node", node=node.name(), knob=knobs.SEAMROTO_NODE)
    return source


def _model_used_by(source: nuke.Node) -> paths.ModelChoice:
    character = str(source[knobs.USED_CHARACTER].value() or "")
    version = str(source[knobs.USED_MODEL_VERSION].value() or "")
    if not character or not version:
        raise KnobError("has not been tracked yet: press Track on it first", node=source.name())
    model = paths.resolve_model(paths.find_models(), character, version)
    if model is None:
        raise KnobError(
            f"tracked with {character} {version}, which is not installed on this machine",
            node=source.name(),
            knob=knobs.USED_MODEL_VERSION,
        )
    return model


def _upstream_read(node: nuke.Node) -> Optional[nuke.Node]:
    """The first Read found walking up input 0 (the ground truth's plate)."""
    current: Optional[nuke.Node] = node.input(0)
    for _ in range(MAX_UPSTREAM_STEPS):
        if current is None or current.Class() == "Read":
            return current
        current = current.input(0)
    return None


def _staged_shots(gt_nodes: Sequence[nuke.Node], prefix: str) -> Tuple[Path, List[Dict[str, Any]]]:
    """``_export_shots`` into a new temp folder (removed again if the export fails)."""
    staging = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        return staging, _export_shots(gt_nodes, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _export_shots(gt_nodes: Sequence[nuke.Node], staging: Path) -> List[Dict[str, Any]]:
    """One shot per Read: its plate args and a .nk copy of the Read plus its ground truth."""
    by_read: Dict[str, Tuple[nuke.Node, List[nuke.Node]]] = {}
    for gt in gt_nodes:
        if gt.Class() not in GROUND_TRUTH_CLASSES:
            raise KnobError(f"{gt.name()} is a {gt.Class()}, not a Tracker4 or Roto", knob=knobs.TRAINING_NODES)
        read = _upstream_read(gt)
        if read is None:
            raise InputError("has no Read node upstream (its plate is needed to train)", node=gt.name())
        by_read.setdefault(read.name(), (read, []))[1].append(gt)
    shots: List[Dict[str, Any]] = []
    for index, (read, gts) in enumerate(by_read.values()):
        path = staging / f"shot{index:02d}_{read.name()}.nk"
        _export_nodes([read, *gts], path)
        plate = render.plate_from_read(read, int(read.firstFrame()), int(read.lastFrame()))
        shots.append({**plate.to_args(), "ground_truth_nk": str(path), "nodes": [g.name() for g in gts]})
    return shots


def _export_nodes(picked: Sequence[nuke.Node], path: Path) -> None:
    """Write ``picked`` to ``path`` as Nuke would copy them (selection restored afterwards)."""
    was_selected = nuke.selectedNodes()
    try:
        for other in was_selected:
            other.setSelected(False)
        for node in picked:
            node.setSelected(True)
        nuke.nodeCopy(str(path))
    finally:
        for node in picked:
            node.setSelected(False)
        for other in was_selected:
            other.setSelected(True)


def _local_diagnostics(python_knob: str) -> Dict[str, str]:
    info: Dict[str, str] = {
        "adapter": ADAPTER_VERSION,
        "nuke": str(getattr(nuke, "NUKE_VERSION_STRING", "?")),
        "install": str(paths.INSTALL_DIR),
        "log": str(feedback.setup_logging()),
        "model folders": ", ".join(str(p) for p in paths.model_search_paths()),
        "models": ", ".join(f"{m.character} {m.version}" for m in paths.find_models()) or "none",
        f"${paths.ENV_BRIDGE}": os.environ.get(paths.ENV_BRIDGE, "auto"),
    }
    try:
        route = bridge.choose_route(python_knob)
        info["core runs"] = f"{route.mode} ({route.reason})"
        if route.python:
            info["core python"] = route.python
    except PluginError as err:
        info["core runs"] = f"NOT FOUND: {err}"
    return info


def _format_diagnostics(local: Dict[str, str], outputs: Dict[str, Any]) -> str:
    lines = ["SeamRoto troubleshooting (send this to your TD)", ""]
    lines += [f"{key}: {value}" for key, value in local.items()]
    about = outputs.get("about")
    if isinstance(about, dict):
        lines.append(f"core: seamroto {about.get('seamroto_version')} on Python {about.get('python')}")
        lines.append(f"core commands: {', '.join(about.get('commands', []))}")
        missing = about.get("missing_modules") or []
        lines.append("core modules: " + ("all present" if not missing else "MISSING " + "; ".join(missing)))
    else:
        lines.append(f"core: NOT REACHABLE: {outputs.get('error')}")
    return "\n".join(lines)


ACTIONS: Dict[str, Callable[[nuke.Node], Any]] = {
    knobs.TRACK: track,
    knobs.BUILD_NODES: build_nodes,
    knobs.OPEN_REPORT: open_report,
    knobs.TROUBLESHOOT: troubleshoot,
    knobs.TRAIN: train,
    knobs.CALIBRATE: calibrate,
    knobs.USE_SELECTED: use_selected,
    knobs.ADD_NK_FILE: add_nk_file,
    knobs.REFIT: refit,
}

# The motion tools (issue 6) add their buttons to ACTIONS; imported last because they use this module.
from seamroto_nuke import motion_commands  # noqa: E402,F401
