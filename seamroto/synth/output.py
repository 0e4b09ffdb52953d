"""Write a synthetic shot to disk: plates (EXR + PNG preview), gt.json and gt.nk, atomically.

Layout of ``out_dir``: ``plates/<char>_s<seed>.####.exr`` (half float, scene-linear),
``plates/<char>_s<seed>.####.png`` (sRGB 8-bit, for viewing), ``gt.json`` (schema
``SeamRotoSynthGT.1``, coordinates _img px) and ``gt.nk`` (Read -> Tracker4 -> Roto, the same
ground truth as Nuke nodes). The folder is built under a temp name and renamed when complete.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple, Union

import cv2
import numpy as np

from seamroto import __version__
from seamroto.datamodel import (
    Character,
    ControlPoint,
    LandmarkSample,
    LandmarkTrack,
    RotoShape,
    Seam,
    ShapeSpec,
    Shot,
)
from seamroto.errors import CancelledError, OutputExistsError, PlateWriteError, SynthError
from seamroto.fileio import atomic_write_text, staged_dir
from seamroto.synth.shot import SynthShot, _Job, synth_truth

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

GT_SCHEMA = "SeamRotoSynthGT.1"
GT_JSON = "gt.json"
GT_NK = "gt.nk"
PLATES_DIR = "plates"
PLATE_FORMATS = ("exr", "png")
DEFAULT_FORMATS = ("exr", "png")
EXR_COMPRESSION = "piz"
#: zlib level 1, Huffman only: grain defeats LZ77 matching, so this is both the fastest and the
#: smallest of the settings tried on a grainy 2K frame (0.17 s, 2.9 MB vs level 1: 0.26 s, 3.5 MB).
PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY,
              cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY]
#: Frame number padding of plate files (``####``).
FRAME_PAD = 4
#: Worker threads rendering + encoding frames (OpenCV, OIIO and OCIO release the GIL).
WRITE_THREADS = 2
COORDINATES = "_img: pixels, origin at the top-left corner, y down, pixel centre at +0.5"
CONVENTIONS = {
    "landmarks": "exact positions of the rendered features; a frame without a sample means "
    "the landmark (or the whole face) is out of frame",
    "hidden": "frames where a landmark is covered (lids over the pupil) but still defined",
    "shapes": "per point [lt_x, lt_y, x, y, rt_x, rt_y]: cubic Bezier anchor with absolute "
    "incoming (left) and outgoing (right) handles; same point count on every frame",
    "face_boxes": "[x, y, w, h] tight box of the face outline clipped to the frame; absent "
    "where the face is out of frame",
    "L/R": "image left/right; brow points run from the outer end (0) to the inner end (2)",
}
NODE_NAMES = {"read": "SynthPlates", "tracker": "SynthLandmarks", "roto": "SynthRoto"}
NODE_SPACING_Y = 100


class _Progress(Protocol):
    """The part of ``seamroto.progress.Progress`` this module uses."""

    def update(self, done: int, total: int, message: str = "") -> None: ...

    @property
    def cancelled(self) -> bool: ...


def plate_stem(shot: SynthShot) -> str:
    """File name stem of a shot's plates: ``<character>_s<seed>``."""
    return f"{shot.character.name}_s{shot.seed}"


def plate_pattern(shot: SynthShot, fmt: str) -> str:
    """Plate pattern relative to the output folder, Nuke ``####`` syntax."""
    return f"{PLATES_DIR}/{plate_stem(shot)}.{'#' * FRAME_PAD}.{fmt}"


def _check_formats(formats: Sequence[str]) -> Tuple[str, ...]:
    wanted = tuple(dict.fromkeys(f.strip().lower().lstrip(".") for f in formats if f.strip()))
    bad = [f for f in wanted if f not in PLATE_FORMATS]
    if not wanted or bad:
        raise SynthError(
            f"plate formats must be a non-empty choice of {', '.join(PLATE_FORMATS)}; got "
            f"{', '.join(formats) or 'none'}"
        )
    return wanted


def _srgb_8bit(img: np.ndarray) -> np.ndarray:
    """Scene-linear Rec.709 -> sRGB-encoded 8-bit (via seamroto.colour / OpenColorIO)."""
    from seamroto.colour import LINEAR_SPACE, to_model_space

    code = to_model_space(img, LINEAR_SPACE)
    code *= 255.0
    code += 0.5
    return code.astype(np.uint8)


def _write_plates(path_of: Mapping[str, str], img: np.ndarray, formats: Sequence[str]) -> None:
    """Write one frame in every requested format.

    EXR goes through ``plates.write_frame`` (PIZ: grain barely compresses, and PIZ was the
    fastest lossless choice here). The PNG is a viewing copy inside the staged folder, written
    by cv2 with ``PNG_PARAMS``: OpenImageIO's default zlib level took 6x longer.
    """
    from seamroto.plates import write_frame

    if "exr" in formats:
        write_frame(path_of["exr"], img, half=True, compression=EXR_COMPRESSION)
    if "png" in formats:
        bgr = np.ascontiguousarray(_srgb_8bit(img)[..., ::-1])
        if not cv2.imwrite(path_of["png"], bgr, PNG_PARAMS):
            raise PlateWriteError("cv2 could not write the PNG preview; check free disk space",
                                  path=path_of["png"])


def _abs_rows(points: Sequence[ControlPoint]) -> List[List[float]]:
    return [[*p.left_abs, p.x, p.y, *p.right_abs] for p in points]


def gt_document(shot: SynthShot, plates: Mapping[str, str]) -> Dict[str, Any]:
    """The ``gt.json`` content: every landmark, shape, box and seam of the shot (_img px).

    Shapes are written with absolute handles per point: ``[lt_x, lt_y, x, y, rt_x, rt_y]``.
    """
    spec = shot.spec
    ch = shot.character
    return {
        "schema": GT_SCHEMA,
        "generator": {"name": "seamroto.synth", "version": __version__},
        "coordinates": COORDINATES,
        "conventions": CONVENTIONS,
        "character": {
            "name": ch.name,
            "description": spec.description,
            "landmarks": list(ch.landmarks),
            "seams": [{"name": s.name, "landmarks": list(s.landmarks)} for s in ch.seams],
            "shapes": [
                {"name": s.name, "closed": s.closed, "layer": list(s.layer),
                 "point_count": s.point_count}
                for s in ch.shapes
            ],
        },
        "format": {"width": shot.shot.width, "height": shot.shot.height,
                   "pixel_aspect": shot.shot.pixel_aspect},
        "first": shot.shot.first,
        "last": shot.shot.last,
        "colourspace": shot.shot.colourspace,
        "plates": dict(plates),
        "seeds": {"shot": shot.seed},
        "options": {"motion": shot.motion, "exit_frame": shot.exit_frame},
        "landmarks": {
            t.name: {str(f): [s.x, s.y] for f, s in sorted(t.samples.items())} for t in shot.tracks
        },
        "hidden": {name: sorted(frames) for name, frames in sorted(shot.hidden.items())},
        "shapes": {
            s.name: {
                "closed": s.closed,
                "layer": list(s.layer),
                "feather": s.feather,
                "frames": {str(f): _abs_rows(s.keys[f]) for f in s.key_frames},
            }
            for s in shot.shapes
        },
        "face_boxes": {str(f): list(b) for f, b in sorted(shot.face_boxes.items())},
        "seams": {
            s.name: {"landmarks": list(s.landmarks), "shape": s.name, "band": f"{s.name}_band"}
            for s in ch.seams
        },
        "mouths": {str(f): m for f, m in sorted(shot.mouths.items())},
    }


def gt_script(shot: SynthShot) -> str:
    """The ``gt.nk`` text: Read (the plates) -> Tracker4 (every landmark) -> Roto (every shape)."""
    from seamroto.nk.writer import write_read, write_roto, write_script, write_tracker

    w, h = shot.shot.width, shot.shot.height
    nodes = [write_read(shot.shot, name=NODE_NAMES["read"])]
    tracks = [t for t in shot.tracks if t.samples]
    if tracks:
        nodes.append(
            write_tracker(tracks, height=h, width=w, name=NODE_NAMES["tracker"],
                          first=shot.shot.first, last=shot.shot.last, ypos=NODE_SPACING_Y)
        )
    shapes = [s for s in shot.shapes if s.keys]
    if shapes:
        nodes.append(
            write_roto(shapes, width=w, height=h, name=NODE_NAMES["roto"], connect_input=True,
                       ypos=2 * NODE_SPACING_Y)
        )
    return write_script(nodes)


def write_shot(
    shot: SynthShot,
    out_dir: PathLike,
    *,
    formats: Sequence[str] = DEFAULT_FORMATS,
    progress: Optional[_Progress] = None,
) -> Path:
    """Write plates, gt.json and gt.nk of ``shot`` into the new folder ``out_dir``.

    Plates come from ``shot.images`` when the shot holds them, else each frame is rendered
    now (``synth_truth`` shots), two frames at a time, so a 2K shot never sits in memory.

    Args:
        shot: from ``render_shot`` or ``synth_truth``.
        out_dir: must not exist (the caller picks a free name, e.g. ``fileio.next_free_dir``).
        formats: plate formats, any of ``exr`` (half float, scene-linear) and ``png`` (sRGB).
        progress: optional; checked between frames, a cancel leaves no folder behind.

    Returns:
        ``out_dir``.

    Raises:
        OutputExistsError: ``out_dir`` exists.
        SynthError: an unknown plate format.
        CancelledError: ``progress`` was cancelled.
    """
    target = Path(out_dir)
    fmts = _check_formats(formats)
    if target.exists():
        raise OutputExistsError(
            "the output folder exists already; pick a new one (seamroto never overwrites)",
            path=str(target),
        )
    final = target.resolve()
    relative = {f: plate_pattern(shot, f) for f in fmts}
    main = "exr" if "exr" in fmts else fmts[0]
    nk_shot = replace(shot.shot, plates=str(final / relative[main]))
    with staged_dir(target) as tmp:
        _write_all_plates(shot, tmp, fmts, progress)
        nk_text = gt_script(replace(shot, shot=nk_shot))
        doc = gt_document(shot, relative)
        doc["plates"]["nuke"] = relative[main]
        atomic_write_text(tmp / GT_JSON, json.dumps(doc, indent=1) + "\n")
        atomic_write_text(tmp / GT_NK, nk_text)
    logger.info("wrote synthetic shot %s (%d frames, %s)", target, shot.shot.frame_count,
                "+".join(fmts))
    return target


def _write_all_plates(
    shot: SynthShot, folder: Path, formats: Sequence[str], progress: Optional[_Progress]
) -> None:
    """Render (when needed) and encode every frame, ``WRITE_THREADS`` at a time."""
    frames = list(shot.shot.frames)
    job: Optional[_Job] = None
    canvas = None
    if not shot.images:
        job = _Job.create(shot.character.name, shot.seed, len(frames), shot.shot.first,
                          shot.shot.width, shot.shot.height, shot.motion, shot.exit_frame)
        canvas = job.canvas()
    lock = threading.Lock()
    done = [0]

    def work(index: int) -> None:
        if progress is not None and progress.cancelled:
            raise CancelledError("synthetic shot cancelled; nothing was written")
        frame = frames[index]
        if job is not None and canvas is not None:
            img = job.render(index, canvas)
        else:
            img = shot.images[index]
        paths = {
            f: str(folder / f"{PLATES_DIR}/{plate_stem(shot)}.{frame:0{FRAME_PAD}d}.{f}")
            for f in formats
        }
        _write_plates(paths, img, formats)
        with lock:
            done[0] += 1
            if progress is not None:
                progress.update(done[0], len(frames), f"frame {frame}")

    (folder / PLATES_DIR).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool:
        for fut in [pool.submit(work, i) for i in range(len(frames))]:
            fut.result()


def synth_command(
    character: str,
    seed: int,
    frames: int,
    width: int,
    height: int,
    out: PathLike,
    formats: Sequence[str] = DEFAULT_FORMATS,
    *,
    progress: Optional[_Progress] = None,
) -> Path:
    """``seamroto synth``: render and write a synthetic shot into the new folder ``out``.

    Returns:
        ``out``, holding ``plates/``, ``gt.json`` and ``gt.nk``.
    """
    truth = synth_truth(character, seed, frames=frames, width=width, height=height)
    return write_shot(truth, out, formats=formats, progress=progress)


def _rows_to_points(rows: Sequence[Sequence[float]]) -> Tuple[ControlPoint, ...]:
    return tuple(
        ControlPoint(r[2], r[3], (r[0] - r[2], r[1] - r[3]), (r[4] - r[2], r[5] - r[3]))
        for r in rows
    )


def read_gt(path: PathLike) -> SynthShot:
    """Load a ``gt.json`` back as a SynthShot without images (``image(frame)`` re-renders).

    ``shot.plates`` is the main plate pattern resolved against the file's folder.

    Raises:
        SynthError: the file is not a ``SeamRotoSynthGT.1`` document.
    """
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SynthError(f"cannot read synthetic ground truth ({err})", path=str(p)) from err
    if not isinstance(doc, dict) or doc.get("schema") != GT_SCHEMA:
        raise SynthError(f"not a {GT_SCHEMA} file (schema {doc.get('schema')!r})"
                         if isinstance(doc, dict) else f"not a {GT_SCHEMA} file", path=str(p))
    ch = doc["character"]
    character = Character(
        ch["name"],
        tuple(ch["landmarks"]),
        tuple(Seam(s["name"], tuple(s["landmarks"])) for s in ch["seams"]),
        tuple(ShapeSpec(s["name"], s["closed"], tuple(s["layer"]), s["point_count"])
              for s in ch["shapes"]),
    )
    fmt = doc["format"]
    plates = doc.get("plates", {})
    main = plates.get("nuke", "")
    shot = Shot(str(p.parent / main) if main else "", doc["first"], doc["last"], fmt["width"],
                fmt["height"], fmt.get("pixel_aspect", 1.0), doc.get("colourspace", "scene_linear"))
    tracks = tuple(
        LandmarkTrack(name, {int(f): LandmarkSample(xy[0], xy[1]) for f, xy in doc["landmarks"]
                             .get(name, {}).items()})
        for name in character.landmarks
    )
    shapes = tuple(
        RotoShape(name, s["closed"], {int(f): _rows_to_points(rows) for f, rows in
                                      s["frames"].items()}, tuple(s["layer"]), s["feather"])
        for name, s in doc["shapes"].items()
    )
    options = doc.get("options", {})
    return SynthShot(
        character=character,
        shot=shot,
        images=(),
        tracks=tracks,
        shapes=shapes,
        face_boxes={int(f): (b[0], b[1], b[2], b[3]) for f, b in doc["face_boxes"].items()},
        seed=int(doc["seeds"]["shot"]),
        motion=float(options.get("motion", 1.0)),
        exit_frame=options.get("exit_frame"),
        hidden={k: frozenset(v) for k, v in doc.get("hidden", {}).items()},
        mouths={int(f): m for f, m in doc.get("mouths", {}).items()},
    )
