"""Import the LAIKA/Intel "Sir Lionel" roto ground truth as Annotations (one per shot).

Source: the data set of "A Learning-Based Approach to Parametric Rotoscoping of Multi-Shape
Systems" (L. Bermudez, N. Dabby, A. Lin, S. Hilmarsdottir, N. Sundararajan, S. Kar; WACV 2021),
https://github.com/LaikaStudios/WACV_dataset_sir_lionel. The JSON data is (c) Intel Corporation,
licensed CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/); the images are LAIKA's, CC
BY-ND 4.0. Keep ``ATTRIBUTION`` wherever this data (or anything derived from it) is used or
shown: every Annotation this module returns carries it in ``source``.

Layouts read by ``load_laika``:

- a gathered per-shot file (``shot0.json``: ``{"shot", "image_size", "frames": {"<frame>":
  {"points": [[x, y] x 43], "shapes": {name: [segment, ...]}}}}``), or a folder of them;
- the original per-frame layout of the data set, one folder per shot (or their parent):
  ``image-SHOT-frameNNN.png``, ``raw_shapes-SHOT-frameNNN.json`` (``{name: [segment, ...]}``, the
  artists' nine shapes) and ``revec_shapes-SHOT-frameNNN.json`` (the six closed shapes
  re-vectorised, plus ``"points"``: the 43 landmarks). The CG and test shots' ``points-`` and
  ``shapes-`` files are read the same way (their landmark layouts differ: 45 and 28 points).

A segment is ``[[x0, tx0, x3, tx3], [y0, ty0, y3, ty3]]``: a cubic Bezier with p1 = p0 + t0 and
p2 = p3 + t3, in pixels of the 800 x 800 image, y down, origin top-left (``_img`` space, no flip).
A landmark at ``[0, 0]`` is not visible on that frame and is left out of its track.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from seamroto.datamodel import Annotation, ControlPoint, LandmarkSample, LandmarkTrack, RotoShape
from seamroto.errors import AnnotationError

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

SOURCE_REPO = "LaikaStudios/WACV_dataset_sir_lionel"
ATTRIBUTION = (
    "Sir Lionel roto ground truth from LAIKA / Intel, data set of 'A Learning-Based Approach to "
    "Parametric Rotoscoping of Multi-Shape Systems' (Bermudez, Dabby, Lin, Hilmarsdottir, "
    "Sundararajan, Kar; WACV 2021), https://github.com/LaikaStudios/WACV_dataset_sir_lionel. "
    "JSON data (c) Intel Corporation, CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/); "
    "images (c) LAIKA, LLC, CC BY-ND 4.0."
)
#: ``Annotation.source`` is ``laika:<shot>:<file or folder> | <ATTRIBUTION>``.
SOURCE_PREFIX = "laika:"
IMAGE_SIZE = (800, 800)
NUM_LANDMARKS = 43
LANDMARK_PREFIX = "p"
CLOSED_SHAPES = frozenset({"left_eye", "right_eye", "left_eyebrow", "right_eyebrow", "left_sideburn", "right_sideburn"})
OPEN_SHAPES = frozenset({"left_seam", "nose_seam", "right_seam"})
SHAPE_SETS = ("raw", "revec")
#: Consecutive segments must share end and start points to this many pixels (exact in the data).
JOIN_TOLERANCE_PX = 1e-3
#: A point at exactly the origin means "not visible" in the original data set.
HIDDEN_POINT = (0.0, 0.0)

# Per-frame file names of the original layout; "visual-" previews are ignored.
_FRAME_FILE = re.compile(
    r"^(?P<kind>raw_shapes|revec_shapes|points|shapes|image)-(?P<shot>.+)-frame(?P<frame>\d+)"
    r"\.(?P<ext>json|png)$"
)
_POINT_KINDS = ("revec_shapes", "points", "shapes")  # where a frame's landmarks may come from
_SHAPE_KINDS = {"raw": ("raw_shapes", "shapes"), "revec": ("revec_shapes",)}
_NON_SHAPE_KEYS = frozenset({"points"})

ControlPointTuple = Tuple[ControlPoint, ...]
Segments = List[Tuple[Tuple[float, float, float, float], Tuple[float, float, float, float]]]


@dataclass
class _FrameData:
    """One frame's raw data while a shot is assembled, with the file each part came from."""

    points: Optional[List[Tuple[float, float]]] = None
    points_file: str = ""
    shapes: Dict[str, Tuple[ControlPointTuple, bool]] = field(default_factory=dict)
    shapes_file: str = ""


def load_laika(path: PathLike, *, shape_set: str = "raw") -> List[Annotation]:
    """Load LAIKA ground truth: a gathered shot file, a folder of them, or per-frame folders.

    Args:
        path: ``shot0.json``, a folder of such files, a per-frame shot folder
            (``raw_shapes-shot0-frame000.json`` ...), or a folder of per-frame shot folders
            (the folder itself and its direct subfolders are searched).
        shape_set: ``"raw"``: the artists' own shapes (all nine, point counts as drawn);
            ``"revec"``: the data set's re-vectorised closed shapes (per-frame layout only).

    Returns:
        One Annotation per shot, sorted by shot name: ``shot=None``, tracks ``p00``..``p42``
        (confidence 1, keyed), shapes keyed per frame (see ``Annotation.frame_shapes`` for shapes
        whose point count changes), ``images`` frame -> PNG where present, ``image_size``.

    Raises:
        AnnotationError: Nothing LAIKA-like at ``path``, or a file is malformed (the error names
            the file and frame).
    """
    if shape_set not in SHAPE_SETS:
        raise AnnotationError(f"shape_set must be one of {SHAPE_SETS}, not {shape_set!r}")
    root = Path(path)
    if not root.exists():
        raise AnnotationError("does not exist; pass a LAIKA shot JSON or folder", path=str(root))
    if root.is_file():
        return [_load_gathered(root, shape_set)]
    found = _discover(root, shape_set)
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        found.extend(_discover(sub, shape_set))  # the data set root: one folder per shot
    if not found:
        listing = ", ".join(sorted(p.name for p in root.iterdir())[:10]) or "(empty)"
        raise AnnotationError(
            "holds no LAIKA ground truth: expected shotN.json files or per-frame "
            f"raw_shapes-SHOT-frameNNN.json / revec_shapes-SHOT-frameNNN.json; found: {listing}",
            path=str(root),
        )
    by_shot: Dict[str, Annotation] = {}
    for ann in found:
        name = laika_shot_name(ann)
        if name in by_shot:
            raise AnnotationError(
                f"shot {name!r} is there twice ({_source_path(by_shot[name])} and {_source_path(ann)}); keep one copy",
                path=str(root),
            )
        by_shot[name] = ann
    return [by_shot[k] for k in sorted(by_shot, key=_natural_key)]


def laika_shot_name(ann: Annotation) -> str:
    """The LAIKA shot name (``"shot0"``) of an Annotation made by ``load_laika``."""
    if not ann.source.startswith(SOURCE_PREFIX):
        raise AnnotationError("is not a LAIKA annotation", path=ann.source)
    return ann.source[len(SOURCE_PREFIX) :].split(":", 1)[0]


def laika_frame_shapes(ann: Annotation) -> Dict[int, Dict[str, RotoShape]]:
    """Every shape on every frame as single-key RotoShapes, whatever its point count.

    This is the lossless view for re-vectorising: animated shapes (``ann.shapes``) are split
    into their keys and merged with ``ann.frame_shapes`` (animated shapes first, each in file order).

    Returns:
        frame -> shape name -> RotoShape with one key at that frame.
    """
    out: Dict[int, Dict[str, RotoShape]] = {}
    for shape in ann.shapes:
        for frame, points in shape.keys.items():
            out.setdefault(frame, {})[shape.name] = RotoShape(
                shape.name,
                shape.closed,
                {frame: points},
                shape.layer,
                shape.feather,
                shape.feather_falloff,
            )
    for frame, shapes in ann.frame_shapes.items():
        for shape in shapes:
            out.setdefault(frame, {})[shape.name] = shape
    return {f: out[f] for f in sorted(out)}


def control_points_from_segments(
    segments: Sequence[Sequence[Sequence[float]]],
    *,
    closed: Optional[bool] = None,
    name: str = "shape",
    path: Optional[str] = None,
    frame: Optional[int] = None,
) -> Tuple[ControlPointTuple, bool]:
    """Turn LAIKA cubic segments into control points with relative tangents.

    A knot's right tangent is its outgoing segment's t0 and its left tangent the incoming
    segment's t3. A closed shape has one knot per segment (the last segment ends on the first
    knot); an open one has one more, with zero outer tangents at both ends.

    Args:
        segments: ``[[x0, tx0, x3, tx3], [y0, ty0, y3, ty3]]`` per segment.
        closed: Known closure; None = closed when the last segment ends on the first point.
        name: Shape name, for error messages.
        path: File, for error messages.
        frame: Frame, for error messages.

    Returns:
        ``(points, closed)``.

    Raises:
        AnnotationError: Malformed segments, or segments that do not join.
    """
    segs = _segments(segments, name=name, path=path, frame=frame)
    first, last = (segs[0][0][0], segs[0][1][0]), (segs[-1][0][2], segs[-1][1][2])
    ends_meet = _close(first, last)
    if closed is None:
        closed = ends_meet and len(segs) > 1
    for i in range(len(segs) - 1):
        end = (segs[i][0][2], segs[i][1][2])
        start = (segs[i + 1][0][0], segs[i + 1][1][0])
        if not _close(end, start):
            raise AnnotationError(
                f"shape {name!r}: segment {i} ends at {end} but segment {i + 1} starts at {start}",
                path=path,
                frame=frame,
            )
    if closed and not ends_meet:
        raise AnnotationError(
            f"closed shape {name!r} does not end where it starts ({last} vs {first})",
            path=path,
            frame=frame,
        )
    points: List[ControlPoint] = []
    n = len(segs)
    for i, (xs, ys) in enumerate(segs):
        if i > 0:
            left = (segs[i - 1][0][3], segs[i - 1][1][3])
        elif closed:
            left = (segs[-1][0][3], segs[-1][1][3])
        else:
            left = (0.0, 0.0)
        points.append(ControlPoint(xs[0], ys[0], left=left, right=(xs[1], ys[1])))
    if not closed:
        xs, ys = segs[n - 1]
        points.append(ControlPoint(xs[2], ys[2], left=(xs[3], ys[3]), right=(0.0, 0.0)))
    return tuple(points), bool(closed)


def segments_from_control_points(points: Sequence[ControlPoint], closed: bool) -> Segments:
    """The inverse of ``control_points_from_segments``: LAIKA segments of one key."""
    pts = list(points)
    pairs = list(zip(pts, pts[1:] + pts[:1])) if closed else list(zip(pts, pts[1:]))
    return [((a.x, a.right[0], b.x, b.left[0]), (a.y, a.right[1], b.y, b.left[1])) for a, b in pairs]


# --- layouts -----------------------------------------------------------------------------------


def _discover(folder: Path, shape_set: str) -> List[Annotation]:
    """Annotations from the gathered files and the per-frame files directly in ``folder``."""
    out: List[Annotation] = []
    groups: Dict[str, Dict[int, Dict[str, Path]]] = {}
    for entry in sorted(folder.iterdir()):
        if not entry.is_file() or entry.name.startswith("."):
            continue
        m = _FRAME_FILE.match(entry.name)
        if m:
            frames = groups.setdefault(m.group("shot"), {})
            frames.setdefault(int(m.group("frame")), {})[m.group("kind")] = entry
        elif entry.suffix.lower() == ".json":
            data = _read_json(entry, None)
            if isinstance(data, dict) and "frames" in data:
                out.append(_gathered_annotation(entry, data, shape_set))
            else:
                logger.debug("%s: not a LAIKA shot file, skipped", entry)
    for shot, frames in groups.items():
        if any(k != "image" for files in frames.values() for k in files):
            out.append(_per_frame_annotation(folder, shot, frames, shape_set))
    return out


def _load_gathered(path: Path, shape_set: str) -> Annotation:
    data = _read_json(path, None)
    if not isinstance(data, dict) or not isinstance(data.get("frames"), dict):
        raise AnnotationError(
            'is not a LAIKA shot file: expected {"shot", "image_size", "frames": {...}}',
            path=str(path),
        )
    return _gathered_annotation(path, data, shape_set)


def _gathered_annotation(path: Path, data: Mapping[str, Any], shape_set: str) -> Annotation:
    file = str(path)
    if shape_set != "raw":
        raise AnnotationError(
            "a gathered shot file holds only the artists' raw shapes; use shape_set='raw' or "
            "the per-frame revec_shapes files",
            path=file,
        )
    shot = str(data.get("shot") or path.stem)
    raw_frames = data.get("frames")
    if not isinstance(raw_frames, dict):
        raise AnnotationError('"frames" must be an object of frame -> data', path=file)
    frames: Dict[int, _FrameData] = {}
    for key, value in raw_frames.items():
        try:
            frame = int(key)
        except (TypeError, ValueError):
            raise AnnotationError(f"frame key {key!r} is not a frame number", path=file) from None
        if not isinstance(value, dict):
            raise AnnotationError("frame data must be an object", path=file, frame=frame)
        fd = _FrameData()
        if "points" in value:
            fd.points, fd.points_file = _points(value["points"], file, frame), file
        fd.shapes, fd.shapes_file = _shapes(value.get("shapes", {}), file, frame), file
        frames[frame] = fd
    image_size = _image_size(data.get("image_size"), file)
    images = _images_beside(path.parent, shot, frames)
    return _assemble(shot, file, frames, images, image_size)


def _per_frame_annotation(folder: Path, shot: str, files: Dict[int, Dict[str, Path]], shape_set: str) -> Annotation:
    frames: Dict[int, _FrameData] = {}
    images: Dict[int, str] = {}
    for frame in sorted(files):
        kinds = files[frame]
        if "image" in kinds:
            images[frame] = str(kinds["image"])
        fd = _FrameData()
        for kind in _POINT_KINDS:
            if kind in kinds:
                data = _read_json(kinds[kind], frame)
                if isinstance(data, dict) and "points" in data:
                    fd.points = _points(data["points"], str(kinds[kind]), frame)
                    fd.points_file = str(kinds[kind])
                    break
        for kind in _SHAPE_KINDS[shape_set]:
            if kind in kinds:
                data = _read_json(kinds[kind], frame)
                fd.shapes = _shapes(data, str(kinds[kind]), frame)
                fd.shapes_file = str(kinds[kind])
                break
        if fd.points is not None or fd.shapes:
            frames[frame] = fd
    if not frames:
        raise AnnotationError(f"shot {shot!r} has files but no landmarks or {shape_set} shapes", path=str(folder))
    return _assemble(shot, str(folder), frames, images, IMAGE_SIZE)


def _assemble(
    shot: str,
    where: str,
    frames: Mapping[int, _FrameData],
    images: Mapping[int, str],
    image_size: Tuple[int, int],
) -> Annotation:
    """Build the Annotation: tracks by landmark index, shapes animated where counts agree."""
    counts = {f: len(fd.points) for f, fd in frames.items() if fd.points is not None}
    n_points = max(counts.values(), default=0)
    for frame, count in counts.items():
        if count != n_points:
            raise AnnotationError(
                f"{count} landmarks on this frame but {n_points} on others; every frame of a "
                "shot needs the same landmark list",
                path=frames[frame].points_file,
                frame=frame,
            )
    width = max(2, len(str(n_points - 1)))
    samples: List[Dict[int, LandmarkSample]] = [{} for _ in range(n_points)]
    for frame, fd in sorted(frames.items()):
        for j, (x, y) in enumerate(fd.points or ()):
            if (x, y) != HIDDEN_POINT:
                samples[j][frame] = LandmarkSample(x, y, 1.0, True)
    tracks = tuple(LandmarkTrack(f"{LANDMARK_PREFIX}{j:0{width}d}", s) for j, s in enumerate(samples))

    keys: Dict[str, Dict[int, ControlPointTuple]] = {}
    closed_by_name: Dict[str, bool] = {}
    for frame, fd in sorted(frames.items()):
        for name, (points, closed) in fd.shapes.items():
            if closed_by_name.setdefault(name, closed) != closed:
                raise AnnotationError(
                    f"shape {name!r} is closed on some frames and open on others",
                    path=fd.shapes_file,
                    frame=frame,
                )
            keys.setdefault(name, {})[frame] = points
    shapes: List[RotoShape] = []
    frame_shapes: Dict[int, List[RotoShape]] = {}
    for name, per_frame in keys.items():
        closed = closed_by_name[name]
        if len({len(p) for p in per_frame.values()}) == 1:
            shapes.append(RotoShape(name, closed, per_frame))
        else:
            logger.info(
                "%s %s: point count varies (%s); kept per frame in frame_shapes",
                shot,
                name,
                sorted({len(p) for p in per_frame.values()}),
            )
            for frame, points in per_frame.items():
                frame_shapes.setdefault(frame, []).append(RotoShape(name, closed, {frame: points}))
    source = f"{SOURCE_PREFIX}{shot}:{where} | {ATTRIBUTION}"
    logger.info(
        "%s: %d frames, %d landmarks, %d shapes from %s",
        shot,
        len(frames),
        n_points,
        len(keys),
        where,
    )
    return Annotation(
        source,
        None,
        tracks,
        tuple(shapes),
        images=dict(images),
        image_size=image_size,
        frame_shapes={f: tuple(v) for f, v in sorted(frame_shapes.items())},
    )


# --- parsing and validation --------------------------------------------------------------------


def _read_json(path: Path, frame: Optional[int]) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as err:
        raise AnnotationError(
            f"is not valid JSON (line {err.lineno}: {err.msg}); re-export or re-copy it",
            path=str(path),
            frame=frame,
        ) from err
    except (OSError, UnicodeDecodeError) as err:
        raise AnnotationError(f"cannot be read ({err})", path=str(path), frame=frame) from err


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _points(raw: Any, file: str, frame: int) -> List[Tuple[float, float]]:
    if not isinstance(raw, list):
        raise AnnotationError('"points" must be a list of [x, y]', path=file, frame=frame)
    out = []
    for i, p in enumerate(raw):
        if not (isinstance(p, list) and len(p) == 2 and _number(p[0]) and _number(p[1])):
            raise AnnotationError(f"point {i} is {p!r}; expected [x, y] with finite numbers", path=file, frame=frame)
        out.append((float(p[0]), float(p[1])))
    return out


def _shapes(raw: Any, file: str, frame: int) -> Dict[str, Tuple[ControlPointTuple, bool]]:
    if not isinstance(raw, dict):
        raise AnnotationError("shapes must be an object of name -> segments", path=file, frame=frame)
    out = {}
    for name, segments in raw.items():
        if name in _NON_SHAPE_KEYS:
            continue
        closed = True if name in CLOSED_SHAPES else False if name in OPEN_SHAPES else None
        out[str(name)] = control_points_from_segments(segments, closed=closed, name=str(name), path=file, frame=frame)
    return out


def _segments(
    raw: Any, *, name: str, path: Optional[str], frame: Optional[int]
) -> List[Tuple[Tuple[float, ...], Tuple[float, ...]]]:
    if not isinstance(raw, list) or not raw:
        raise AnnotationError(f"shape {name!r} must be a non-empty list of segments", path=path, frame=frame)
    out = []
    for i, seg in enumerate(raw):
        ok = (
            isinstance(seg, list)
            and len(seg) == 2
            and all(isinstance(row, list) and len(row) == 4 for row in seg)
            and all(_number(v) for row in seg for v in row)
        )
        if not ok:
            raise AnnotationError(
                f"shape {name!r} segment {i} is not [[x0, tx0, x3, tx3], [y0, ty0, y3, ty3]] with finite numbers",
                path=path,
                frame=frame,
            )
        out.append((tuple(float(v) for v in seg[0]), tuple(float(v) for v in seg[1])))
    return out


def _close(a: Tuple[float, float], b: Tuple[float, float]) -> bool:
    return abs(a[0] - b[0]) <= JOIN_TOLERANCE_PX and abs(a[1] - b[1]) <= JOIN_TOLERANCE_PX


def _image_size(raw: Any, file: str) -> Tuple[int, int]:
    if raw is None:
        return IMAGE_SIZE
    if not (isinstance(raw, list) and len(raw) == 2 and all(_number(v) and v > 0 for v in raw)):
        raise AnnotationError(f'"image_size" is {raw!r}; expected [width, height]', path=file)
    return int(raw[0]), int(raw[1])


def _images_beside(folder: Path, shot: str, frames: Mapping[int, _FrameData]) -> Dict[int, str]:
    """PNGs of the original layout next to a gathered file, or in a folder named after the shot."""
    images: Dict[int, str] = {}
    for where in (folder, folder / shot):
        for frame in frames:
            png = where / f"image-{shot}-frame{frame:03d}.png"
            if frame not in images and png.is_file():
                images[frame] = str(png)
    return images


def _source_path(ann: Annotation) -> str:
    return ann.source[len(SOURCE_PREFIX) :].split(":", 1)[-1].split(" | ", 1)[0]


def _natural_key(name: str) -> List[Union[int, str]]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]
