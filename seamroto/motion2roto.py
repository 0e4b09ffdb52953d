"""Motion2Roto: animate minimally keyed roto shapes from motion and write them as a new Roto node.

An artist keys a shape on a few frames; optical flow (OpenCV DIS at a reduced working
resolution) or motion-vector EXRs carry every control point, tangent and feather through the
frames between, and the result still hits every key exactly (``seamroto.propagate``). The
source script is only read: the result is a new ``.nk`` holding one Roto node (the animated
shapes plus the node's other shapes unchanged) and a JSON report (schema
``SeamRotoMotion2Roto.1``) that lists the frames worth a review.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from seamroto import __version__
from seamroto.datamodel import RotoShape
from seamroto.errors import (
    NkNodeNotFoundError,
    OutputExistsError,
    PlateFormatError,
    ProtocolError,
    ShapeNotFoundError,
)
from seamroto.fileio import atomic_write_text, staged_dir
from seamroto.flowfield import (
    DEFAULT_PRESET,
    DenseFlowProvider,
    FlowProvider,
    FrameSource,
    read_working_frames,
    working_scale,
)
from seamroto.nk.reader import ROTO_CLASSES, find_node, node_format, read_script, roto_shapes
from seamroto.nk.writer import write_roto, write_script, write_script_file
from seamroto.plates import PlateSequence
from seamroto.progress import NullProgress, Progress, StageProgress
from seamroto.propagate import (
    DEFAULT_PARAMS,
    PropagationParams,
    ShapeMotion,
    check_keys_in_range,
    flagged_frames,
    propagate_shapes,
)

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

REPORT_SCHEMA = "SeamRotoMotion2Roto.1"
NODE_SUFFIX = "_motion"
#: File names inside a protocol command's output folder.
NK_NAME = "motion2roto.nk"
REPORT_NAME = "motion2roto.json"
COORDINATES = "_img: pixels, origin at the top-left corner, y down, pixel centre at +0.5"


@dataclass(frozen=True)
class Motion2RotoResult:
    """What a run made: the files, the animated shapes and the frames flagged for review."""

    nk: Path
    report: Path
    motions: Sequence[ShapeMotion]

    @property
    def flagged(self) -> Dict[int, List[str]]:
        """Frame -> shapes flagged there."""
        return flagged_frames(self.motions)


def select_shapes(shapes: Sequence[RotoShape], names: Sequence[str], node: str, path: str) -> List[RotoShape]:
    """The shapes called ``names`` (all of them when ``names`` is empty), in node order.

    Raises:
        ShapeNotFoundError: a name is not in the node (the message lists those that are).
    """
    if not names:
        return list(shapes)
    have = {s.name for s in shapes}
    missing = [n for n in names if n not in have]
    if missing:
        raise ShapeNotFoundError(
            f"Roto node {node!r} has no shape {', '.join(map(repr, missing))}; its shapes are: "
            f"{', '.join(s.name for s in shapes) or 'none'}",
            path=path,
        )
    wanted = set(names)
    return [s for s in shapes if s.name in wanted]


def _check_output(output: Path, script: Path) -> None:
    report = output.with_suffix(".json")
    if output.resolve() == script.resolve():
        raise OutputExistsError(
            "the output is the source script; Motion2Roto never edits a script in place, give a new "
            "file name",
            path=str(output),
        )
    for target in (output, report):
        if target.exists():
            raise OutputExistsError(
                "exists already; pick a new output name (seamroto never overwrites)", path=str(target)
            )


def animate(
    script_path: PathLike,
    roto_node: str,
    shape_names: Sequence[str],
    plates: Union[PathLike, PlateSequence],
    *,
    vectors: Optional[PathLike] = None,
    preset: str = DEFAULT_PRESET,
    params: PropagationParams = DEFAULT_PARAMS,
    progress: Optional[Progress] = None,
) -> Tuple[List[RotoShape], List[ShapeMotion], PlateSequence, Dict[str, Any]]:
    """Read the Roto node and the plates, and animate the chosen shapes (no file is written).

    Returns:
        ``(all_shapes, motions, plates, info)``: every shape of the node with the chosen ones
        animated, one ``ShapeMotion`` per chosen shape, the plate sequence, and what the
        report records about the run.

    Raises:
        As ``motion2roto``.
    """
    sink = progress if progress is not None else NullProgress()
    script_text = os.fspath(script_path)
    script = read_script(script_text)
    node = find_node(script, roto_node)
    if node.node_class not in ROTO_CLASSES:
        raise NkNodeNotFoundError(
            f"{node.path} is a {node.node_class}, not a Roto or RotoPaint node", path=script_text
        )
    seq = plates if isinstance(plates, PlateSequence) else PlateSequence.open(plates)
    fmt = node_format(script, node)
    if fmt is not None and (fmt.width, fmt.height) != (seq.width, seq.height):
        raise PlateFormatError(
            f"the Roto node {node.path} works in {fmt.width}x{fmt.height} but the plates are "
            f"{seq.width}x{seq.height}; give the plates the shapes were drawn on",
            path=seq.pattern,
        )
    shapes = roto_shapes(script, node, seq.height)
    chosen = select_shapes(shapes, shape_names, node.path, script_text)
    if params.replacement_shapes:
        # the same check as --shape: a misspelt replacement piece would silently follow motion
        select_shapes(shapes, params.replacement_shapes, node.path, script_text)
    check_keys_in_range(chosen, seq.first, seq.last, path=script_text)
    frame_count = seq.last - seq.first + 1
    provider: FlowProvider
    frames: Optional[FrameSource] = None
    info: Dict[str, Any] = {"first": seq.first, "last": seq.last}
    if vectors is not None:
        from seamroto.vectors import MotionVectorSequence

        mv = MotionVectorSequence.open(vectors, seq.first, seq.last, (seq.width, seq.height))
        provider = mv
        info["motion"] = {"source": "vectors", "pattern": os.fspath(vectors),
                          "backward": "stored" if mv.layout.has_backward else "inverted"}
        flow_progress: Progress = sink
    else:
        scale = working_scale(seq.width)
        total = 3 * frame_count
        grays = read_working_frames(seq, scale, progress=StageProgress(sink, 0, total), total=frame_count)
        dense = DenseFlowProvider(grays, (seq.width, seq.height), preset=preset)
        provider = frames = dense
        info["motion"] = {"source": "dis", "preset": preset, "working_size": list(dense.working_size),
                          "finest_scale": dense.finest_scale}
        flow_progress = StageProgress(sink, frame_count, total)
    motions = propagate_shapes(
        chosen, seq.first, seq.last, provider, frames=frames, params=params, progress=flow_progress
    )
    animated = {m.shape.name: m.shape for m in motions}
    out_shapes = [animated.get(s.name, s) for s in shapes]
    info.update(script=os.path.abspath(script_text), roto_node=node.path, plates=seq.pattern,
                width=seq.width, height=seq.height, colourspace=seq.colourspace)
    return out_shapes, motions, seq, info


def report_document(motions: Sequence[ShapeMotion], info: Dict[str, Any], node_name: str) -> Dict[str, Any]:
    """The JSON report: which shapes were animated from which keys, and what to review."""
    return {
        "schema": REPORT_SCHEMA,
        "seamroto_version": __version__,
        "coordinates": COORDINATES,
        "output_node": node_name,
        **info,
        "shapes": {
            m.shape.name: {
                "keys": list(m.keys),
                "flagged": list(m.flagged),
                "interpolated": list(m.interpolated),
            }
            for m in motions
        },
        "flagged_frames": {str(f): names for f, names in flagged_frames(motions).items()},
    }


def motion2roto(
    script_path: PathLike,
    roto_node: str,
    shape_names: Sequence[str],
    plates: Union[PathLike, PlateSequence],
    output: PathLike,
    *,
    vectors: Optional[PathLike] = None,
    progress: Optional[Progress] = None,
    node_name: Optional[str] = None,
    preset: str = DEFAULT_PRESET,
    params: PropagationParams = DEFAULT_PARAMS,
) -> Path:
    """Animate keyed shapes of a Roto node with motion and write them as a new Roto node.

    Args:
        script_path: the artist's ``.nk`` script (only read).
        roto_node: name (or ``Group.Name`` path) of its Roto or RotoPaint node.
        shape_names: shapes to animate; empty = every shape of the node.
        plates: plate pattern in Nuke syntax, or an opened ``PlateSequence``; its frame range is
            the range animated.
        output: the new ``.nk`` file (must not exist); the report goes beside it as ``.json``.
        vectors: motion-vector EXR pattern (forward/backward u, v per frame) to use instead of
            optical flow.
        progress: told about each frame; cancelling raises ``CancelledError`` and writes nothing.
        node_name: name of the new Roto node (default: the source name + ``_motion``).
        preset: DIS preset for optical flow.
        params: propagation settings.

    Returns:
        The ``.nk`` file written.

    Raises:
        NkParseError, NkNodeNotFoundError: the script or node cannot be read.
        ShapeNotFoundError: a named shape is not in the node.
        KeyRangeError: keys outside the plate frames, or a shape without keys.
        PlateError: plates missing or unreadable, or another resolution than the Roto.
        MotionVectorError: the vector files lack the expected channels (the message lists them).
        OutputExistsError: ``output`` or its report exists, or is the source script.
        CancelledError: ``progress`` was cancelled.
    """
    out = Path(output)
    _check_output(out, Path(script_path))
    shapes, motions, seq, info = animate(
        script_path, roto_node, shape_names, plates, vectors=vectors, preset=preset, params=params,
        progress=progress,
    )
    name = node_name or f"{roto_node.split('.')[-1]}{NODE_SUFFIX}"
    nk_text = write_script([write_roto(shapes, width=seq.width, height=seq.height, name=name)])
    report = out.with_suffix(".json")
    atomic_write_text(report, json.dumps(report_document(motions, info, name), indent=1) + "\n")
    write_script_file(out, nk_text)
    flagged = flagged_frames(motions)
    logger.info("Motion2Roto wrote %s (%d shape(s), %d frame(s) flagged)", out, len(motions), len(flagged))
    return out


# -------------------------------------------------------------------- protocol command


def _shape_list(value: Any) -> List[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ProtocolError("motion2roto: 'shapes' must be a list of shape names", knob="shapes")


#: Words of the ``replacement`` request arg (the Motion2Roto node's ``replacement pieces`` knob).
REPLACEMENT_AUTO = "auto"
REPLACEMENT_NONE = "none"


def replacement_shapes_from(value: Any) -> Optional[Tuple[str, ...]]:
    """The ``replacement`` request arg as ``PropagationParams.replacement_shapes``.

    ``"auto"``, "" or None: the keys decide (None); ``"none"``: every shape follows motion (());
    otherwise shape names, space separated or as a list.

    Raises:
        ProtocolError: not a string or a list of names.
    """
    if value is None:
        return None
    if isinstance(value, str):
        words = value.split()
        if not words or words == [REPLACEMENT_AUTO]:
            return None
        if words == [REPLACEMENT_NONE]:
            return ()
        return tuple(words)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ProtocolError(
        f"motion2roto: 'replacement' must be '{REPLACEMENT_AUTO}', '{REPLACEMENT_NONE}' or shape names",
        knob="replacement",
    )


def motion2roto_command(args: Dict[str, Any], progress: Progress) -> Dict[str, Any]:
    """Protocol command ``motion2roto`` (the Nuke node's Animate button).

    Args (request): ``script`` (.nk holding the Roto node), ``roto_node``, ``shapes`` (list;
    empty = all), ``plate``, ``first``, ``last``, ``colourspace``, ``vectors`` (pattern or ""),
    ``preset``, ``replacement`` (optional, ``replacement_shapes_from``), ``out_dir`` (must not
    exist; built staged), ``node_prefix``, ``node_version``.

    Returns:
        ``nk`` (paste-ready, one Roto node), ``report`` (JSON), ``flagged_frames`` (sorted).
    """
    for key in ("script", "roto_node", "plate", "out_dir"):
        if not args.get(key):
            raise ProtocolError(f"motion2roto needs args.{key}", knob=key)
    out_dir = Path(str(args["out_dir"]))
    if out_dir.exists():
        raise OutputExistsError("the output folder exists already", path=str(out_dir))
    seq = PlateSequence.open(
        str(args["plate"]), args.get("first"), args.get("last"), colourspace=args.get("colourspace") or None
    )
    prefix = str(args.get("node_prefix") or "")
    name = f"{prefix}_roto_v{int(args.get('node_version') or 1)}" if prefix else None
    vectors = str(args.get("vectors") or "") or None
    params = dataclasses.replace(DEFAULT_PARAMS, replacement_shapes=replacement_shapes_from(args.get("replacement")))
    shapes, motions, seq, info = animate(
        str(args["script"]), str(args["roto_node"]), _shape_list(args.get("shapes")), seq,
        vectors=vectors, preset=str(args.get("preset") or DEFAULT_PRESET), params=params, progress=progress,
    )
    name = name or f"{str(args['roto_node']).split('.')[-1]}{NODE_SUFFIX}"
    with staged_dir(out_dir) as tmp:
        nk = write_roto(shapes, width=seq.width, height=seq.height, name=name)
        (tmp / NK_NAME).write_text(write_script([nk]), encoding="utf-8")
        doc = report_document(motions, info, name)
        (tmp / REPORT_NAME).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return {
        "nk": out_dir / NK_NAME,
        "report": out_dir / REPORT_NAME,
        "flagged_frames": sorted(flagged_frames(motions)),
    }
