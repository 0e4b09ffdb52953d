"""Button actions of the motion tools (issue 6): Motion2Roto on a Roto node, BBoxTracker on a plate.

Same rules as ``commands``: read knobs, build a request, run it through ``bridge`` in the
background, paste the result as a new version beside the node. The artist's Roto is only
copied (``nuke.nodeCopy`` to a temp file) and never edited. This module adds ``ACTIONS`` to
``commands.ACTIONS`` when imported (``commands`` imports it last), so the buttons reach these
through ``commands.button``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import nuke

from seamroto_nuke import bridge, commands, jobs, knobs, motion_knobs, nodes, render, results
from seamroto_nuke.errors import InputError, KnobError, PluginError

logger = logging.getLogger(__name__)

ROTO_CLASSES = frozenset({"Roto", "RotoPaint"})
FLAGGED_SHOWN = 12


def _plate_for(
    node: nuke.Group, source: nuke.Node, input_name: str, out_dir: Path
) -> Tuple[render.Plate, Optional[Path]]:
    """The plate files behind ``source``: a plain Read's own files, else a render of the input.

    Returns:
        The plate and the render folder (None when nothing was rendered).
    """
    first, last = int(source.firstFrame()), int(source.lastFrame())
    if last < first:
        raise InputError(f"the plate's frame range {first}-{last} is empty", node=source.name())
    if render.is_plain_read(source):
        return render.plate_from_read(source, first, last), None
    render_dir = out_dir.with_name(out_dir.name + ".plate")
    return render.render_input(node, input_name, first, last, render_dir), render_dir


def _flagged_text(frames: List[int]) -> str:
    if not frames:
        return ""
    shown = ", ".join(str(f) for f in frames[:FLAGGED_SHOWN])
    return shown + (f" (+{len(frames) - FLAGGED_SHOWN} more)" if len(frames) > FLAGGED_SHOWN else "")


def _status(pasted: Optional[results.Pasted], version: int, flagged: List[int]) -> str:
    text = commands._describe(pasted, version)
    if flagged:
        text += f"; {len(flagged)} frame(s) to review: {_flagged_text(flagged)}"
    return text


# --- Motion2Roto --------------------------------------------------------------------------------


def motion2roto(node: nuke.Node) -> jobs.Job:
    """Animate the keyed shapes of the Roto at input 0 and paste a new Roto beside the node.

    Returns:
        The running job (finished already in terminal mode).
    """
    commands._require_type(node, nodes.MOTION2ROTO)
    if jobs.is_running(node.fullName()):
        raise PluginError("is already running; wait for it or cancel it first", node=node.name())
    roto = node.input(0)
    if roto is None or roto.Class() not in ROTO_CLASSES:
        raise InputError("connect the keyed Roto node to its 'roto' input", node=node.name())
    values = nodes.values(node)
    vectors = ""
    if values[motion_knobs.USE_VECTORS]:
        vectors = str(values[motion_knobs.VECTORS_FILE]).strip()
        if not vectors:
            raise KnobError(
                "pick the motion-vector EXR sequence, or turn 'use motion vectors' off",
                node=node.name(),
                knob=motion_knobs.VECTORS_FILE,
            )
    if not isinstance(node, nuke.Group):
        raise InputError("is not a Group", node=node.name())
    plate_input = node.input(1)
    source = plate_input if plate_input is not None else commands._upstream_read(roto)
    if source is None:
        raise InputError(
            "finds no plate: connect it to the 'plate' input, or put the Read above the Roto",
            node=node.name(),
        )
    if plate_input is None and not render.is_plain_read(source):
        raise InputError(
            "the Read above the Roto is disabled; connect the plate to the 'plate' input", node=node.name()
        )
    out_root = commands._output_root(values)
    prefix = node.name()
    version = results.next_version(node, prefix, out_root)
    out_dir = out_root / f"{prefix}_v{version}"
    plate, render_dir = _plate_for(node, source, nodes.MOTION2ROTO.inputs[1], out_dir)
    staging = Path(tempfile.mkdtemp(prefix="seamroto_motion2roto_"))
    script = staging / "roto.nk"
    try:
        commands._export_nodes([roto], script)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    args: Dict[str, Any] = {
        **plate.to_args(),
        **knobs.request_args(values, motion_knobs.MOTION2ROTO_ARGS),
        "script": str(script),
        "roto_node": roto.name(),
        "shapes": str(values[motion_knobs.SHAPE_NAMES]).split(),
        # a node saved before the knob existed has none: the keys decide, as they did then
        "replacement": str(values.get(motion_knobs.REPLACEMENT_SHAPES, "auto")),
        "vectors": vectors,
        "out_dir": str(out_dir),
        "node_prefix": prefix,
        "node_version": version,
        "source_node": roto.fullName(),
    }
    python_knob = str(values.get(knobs.CORE_PYTHON, ""))
    node_name, roto_name = node.fullName(), roto.fullName()

    def work(progress: bridge.ProgressSink) -> Dict[str, Any]:
        return bridge.run("motion2roto", args, progress, python_knob=python_knob)

    def done(outputs: Dict[str, Any]) -> str:
        live = commands._alive(node_name, f"results are in {out_dir}")
        old = nuke.toNode(roto_name)
        flagged = [int(f) for f in outputs.get("flagged_frames") or []]
        nk = str(outputs.get("nk") or "")
        nodes.set_text(live, knobs.LAST_NK, nk)
        nodes.set_text(live, knobs.LAST_REPORT, str(outputs.get("report") or ""))
        nodes.set_text(live, motion_knobs.FLAGGED_FRAMES, _flagged_text(flagged))
        wire_to = old.input(0) if old is not None and old.input(0) is not None else live
        label = f"SeamRoto Motion2Roto {prefix} v{version}\nfrom {roto_name}"
        pasted = results.paste_result(nk, anchor=live, wire_to=wire_to, prefix=prefix, version=version, label=label)
        return _status(pasted, version, flagged)

    def finish(ok: bool) -> None:
        shutil.rmtree(staging, ignore_errors=True)
        if not ok and render_dir is not None:
            shutil.rmtree(render_dir, ignore_errors=True)

    nodes.set_text(node, knobs.STATUS, f"animating {roto.name()} over {plate.first}-{plate.last}...")
    return jobs.start(
        "Motion2Roto", node_name, work, done, on_finish=finish, on_status=commands._status_setter(node_name)
    )


# --- BBoxTracker --------------------------------------------------------------------------------


def box_value(node: nuke.Node) -> List[float]:
    """The node's box as Nuke holds it: [x, y, r, t] in the format's pixels (origin bottom-left)."""
    knob = node.knob(motion_knobs.BOX)
    if not isinstance(knob, nuke.BBox_Knob):
        raise KnobError("has no box knob", node=node.name(), knob=motion_knobs.BOX)
    return [float(knob.x()), float(knob.y()), float(knob.r()), float(knob.t())]


def track_box(node: nuke.Node) -> jobs.Job:
    """Track the node's box from its reference frame through the input; paste a Tracker4 beside it."""
    commands._require_type(node, nodes.BBOX_TRACKER)
    if jobs.is_running(node.fullName()):
        raise PluginError("is already tracking; wait for it or cancel it first", node=node.name())
    source = node.input(0)
    if source is None:
        raise InputError("connect the plate (a Read or any node tree) to its input", node=node.name())
    if not isinstance(node, nuke.Group):
        raise InputError("is not a Group", node=node.name())
    values = nodes.values(node)
    frame = int(values[motion_knobs.REFERENCE_FRAME])
    first, last = int(source.firstFrame()), int(source.lastFrame())
    if not first <= frame <= last:
        raise KnobError(
            f"frame {frame} is outside the input's range {first}-{last}; draw the box on a frame of the plate",
            node=node.name(),
            knob=motion_knobs.REFERENCE_FRAME,
        )
    box = box_value(node)
    if abs(box[2] - box[0]) < 1.0 or abs(box[3] - box[1]) < 1.0:
        raise KnobError("the box is empty: drag it around the object in the Viewer", node=node.name(),
                        knob=motion_knobs.BOX)
    out_root = commands._output_root(values)
    prefix = node.name()
    version = results.next_version(node, prefix, out_root)
    out_dir = out_root / f"{prefix}_v{version}"
    plate, render_dir = _plate_for(node, source, nodes.BBOX_TRACKER.inputs[0], out_dir)
    args: Dict[str, Any] = {
        **plate.to_args(),
        "frame": frame,
        "box_nuke": box,
        "out_dir": str(out_dir),
        "node_prefix": prefix,
        "node_version": version,
        "source_node": node.fullName(),
    }
    python_knob = str(values.get(knobs.CORE_PYTHON, ""))
    node_name = node.fullName()

    def work(progress: bridge.ProgressSink) -> Dict[str, Any]:
        return bridge.run("bbox", args, progress, python_knob=python_knob)

    def done(outputs: Dict[str, Any]) -> str:
        live = commands._alive(node_name, f"results are in {out_dir}")
        flagged = [int(f) for f in outputs.get("flagged_frames") or []]
        nk = str(outputs.get("nk") or "")
        nodes.set_text(live, knobs.LAST_NK, nk)
        nodes.set_text(live, knobs.LAST_RESULT, str(outputs.get("result") or ""))
        nodes.set_text(live, motion_knobs.FLAGGED_FRAMES, _flagged_text(flagged))
        label = f"SeamRoto BBoxTracker {prefix} v{version}\nkeyed on {frame}"
        pasted = results.paste_result(nk, anchor=live, wire_to=live, prefix=prefix, version=version, label=label)
        return _status(pasted, version, flagged)

    def finish(ok: bool) -> None:
        if not ok and render_dir is not None:
            shutil.rmtree(render_dir, ignore_errors=True)

    nodes.set_text(node, knobs.STATUS, f"tracking the box from frame {frame} over {first}-{last}...")
    return jobs.start(
        "BBoxTracker", node_name, work, done, on_finish=finish, on_status=commands._status_setter(node_name)
    )


def use_current_frame(node: nuke.Node) -> int:
    """Set the reference frame to the Viewer's current frame."""
    commands._require_type(node, nodes.BBOX_TRACKER)
    frame = int(nuke.frame())
    node[motion_knobs.REFERENCE_FRAME].setValue(frame)
    return frame


ACTIONS: Dict[str, Callable[[nuke.Node], Any]] = {
    motion_knobs.ANIMATE: motion2roto,
    motion_knobs.TRACK_BOX: track_box,
    motion_knobs.USE_CURRENT_FRAME: use_current_frame,
}
commands.ACTIONS.update(ACTIONS)
