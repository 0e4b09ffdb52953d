"""The main job, end to end: plates -> face box -> landmarks -> fused tracks -> shapes -> nodes.

Each ``*_command`` is what one CLI subcommand (and the Nuke bridge) runs. Outputs are built in a
staged folder and renamed into place when complete, so a cancel or crash leaves nothing partial,
and an existing output folder is never touched: a re-run gets the next version.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from seamroto import config
from seamroto.character import CharacterInfo, read_character
from seamroto.datamodel import LandmarkSample, LandmarkTrack, RotoShape, Shot
from seamroto.detection import ShotDetections, detect_shot
from seamroto.errors import CancelledError, SeamRotoError
from seamroto.fileio import next_free_dir, staged_dir
from seamroto.progress import NullProgress, Progress
from seamroto.result import ModelRef, TrackResult, read_result, write_result

if TYPE_CHECKING:
    from seamroto.printlib import FrameGrays

logger = logging.getLogger(__name__)

LAYOUT_STEP_Y = 120
BACKDROP_COLOUR = 0x4B5B6BFF


@dataclass(frozen=True)
class TrackOptions:
    """Knobs of a tracking run (None = the character's or SeamRoto's default)."""

    first: Optional[int] = None
    last: Optional[int] = None
    confidence_threshold: Optional[float] = None
    smoothing: Optional[float] = None
    seam_band_px: Optional[float] = None
    feather_px: Optional[float] = None
    precision: str = "fp32"
    report: bool = False
    colourspace: Optional[str] = None
    repair_preview: bool = False
    snap_pieces: bool = True  # replacement pieces onto each frame's edges (the print library)


@dataclass(frozen=True)
class Character:
    """A loaded character model folder: landmark model, rig, face model and facts."""

    path: Path
    model: Any  # seamroto.models.LandmarkModel
    rig: Any  # seamroto.rig.Rig
    face_model: Any  # seamroto.face.FaceModel
    info: CharacterInfo
    shape_prior: Any = None  # seamroto.shapeprior.ShapePrior, when the folder has one
    prints: Any = None  # seamroto.printlib.PrintLibrary, when the folder has one

    @property
    def ref(self) -> ModelRef:
        """Name, version and IR digest, recorded in every output."""
        card = self.model.card
        xml = "model.xml" if self.model.precision == "fp32" else "model_int8.xml"
        return ModelRef(card.character, card.version, str(card.files.get(xml, "")))


def load_character(path: Path, precision: str = "fp32", *, threads: Optional[int] = None) -> Character:
    """Verify and load everything in a model folder (hashes first, nothing executed).

    ``threads`` are the landmark model's inference threads (None: ``detection.inference_threads``,
    every core but the one decoding plates).
    """
    from seamroto.detection import inference_threads
    from seamroto.face import read_face_model
    from seamroto.models import load_model
    from seamroto.printlib import load_print_library
    from seamroto.rig import Rig
    from seamroto.shapeprior import load_shape_prior

    model = load_model(path, precision, threads=threads or inference_threads())
    return Character(
        Path(path),
        model,
        Rig.load(path),
        read_face_model(path),
        read_character(path),
        load_shape_prior(path),
        load_print_library(path),
    )


def _check(progress: Progress, what: str, frame: Optional[int] = None) -> None:
    if progress.cancelled:
        raise CancelledError(f"{what} cancelled", frame=frame)


def _replacement_landmarks(character: Character) -> List[str]:
    """The model's landmarks on replacement pieces (never flowed or smoothed across frames)."""
    names = character.model.landmark_names
    return [n for n in character.info.discontinuous if n in names]


def detect_character_shot(seq: Any, character: Character, colourspace: str, progress: Progress) -> ShotDetections:
    """Streaming detection of a whole shot for a character, its replacement pieces kept out of the flow.

    What ``seamroto track`` fuses; benchmarks that study fusion cache it.
    """
    from seamroto.fusion import discontinuous_mask

    disc = _replacement_landmarks(character)
    skip = discontinuous_mask(character.model.landmark_names, disc) if disc else None
    return detect_shot(seq, character, colourspace, progress, skip=skip)


def fuse_detections(det: ShotDetections, character: Character, options: TrackOptions, progress: Progress) -> Any:
    """The offline smoother over detections and flow: steady tracks with confidence."""
    from seamroto.fusion import FusionParams

    progress.update(len(det.frames), len(det.frames), "fusing tracks")
    params = FusionParams()
    if options.smoothing is not None:
        params = dataclasses.replace(params, smoothing=float(options.smoothing))
    if options.confidence_threshold is not None:
        params = dataclasses.replace(params, confidence_threshold=float(options.confidence_threshold))
    prior = character.shape_prior
    if prior is not None and prior.error_model is not None:
        # the prior changes what the evidence means, so it carries its own calibration
        params = dataclasses.replace(params, error_model=prior.error_model)
    return fuse_shot(det, character, params, prior)


def fuse_shot(det: ShotDetections, character: Character, params: Any, prior: Any) -> Any:
    """``fusion.fuse_tracks`` on a shot's detections with the given settings and shape prior (or None).

    Calibration fuses the same detections with and without a prior and error model, so the
    choice is the caller's; tracking uses ``fuse_detections``.
    """
    from seamroto.fusion import fuse_tracks

    return fuse_tracks(
        det.frames,
        det.points,
        det.conf,
        det.forward,
        det.backward,
        landmark_names=character.model.landmark_names,
        discontinuous=_replacement_landmarks(character),
        face_flags=det.face_flags,
        face_absent=det.face_absent,
        params=params,
        shape_prior=prior,
    )


def reorder_landmarks(
    points: np.ndarray, conf: np.ndarray, names: Sequence[str], wanted: Sequence[str]
) -> Tuple[np.ndarray, np.ndarray]:
    """Points (F, L, 2) and confidences (F, L) in ``names`` order -> ``wanted`` order (NaN/0 if absent)."""
    index = {n: i for i, n in enumerate(names)}
    out_p = np.full((points.shape[0], len(wanted), 2), np.nan)
    out_c = np.zeros((points.shape[0], len(wanted)))
    for j, n in enumerate(wanted):
        i = index.get(n)
        if i is not None:
            out_p[:, j], out_c[:, j] = points[:, i], conf[:, i]
    return out_p, out_c


@dataclass(frozen=True, eq=False)
class ShapeFit:
    """What fitting the rig (and snapping the pieces) made of a shot's landmarks.

    Attributes:
        shapes: every rigged shape, plus seam bands.
        flags: per shape, the frames it could not be fitted on.
        landmarks: the landmarks given, with the replacement pieces' ones read back from their
            snapped prints where the character measured how (``seamroto.piecepoints``); in the
            ``names`` order given. Shape: (F, L, 2), _img.
        pieces: per snapped shape, its control points. Shape: (F, N, 2), _img.
        snapped: per snapped shape, the frames its print was snapped on. Shape: (F,) bool.
    """

    shapes: Tuple[RotoShape, ...]
    flags: Dict[str, Tuple[int, ...]]
    landmarks: np.ndarray
    pieces: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    snapped: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


def fit_shapes(
    points: np.ndarray,
    conf: np.ndarray,
    frames: Sequence[int],
    character: Character,
    options: TrackOptions,
    names: Sequence[str],
    grays: FrameGrays = (),
    progress: Optional[Progress] = None,
) -> ShapeFit:
    """Every rigged shape on every frame, plus seam bands and per-shape flags.

    ``points``/``conf`` are in ``names`` order; the rig gets them in its own landmark order.
    ``grays`` (per frame, ``ShotDetections.grays``) let the character's print library snap its
    replacement pieces onto each frame's edges; without them, or with ``options.snap_pieces``
    off, the pieces stay as rigged (and no landmark is read back from them).
    """
    from seamroto.rig import fitted_to_roto_shapes, seam_band

    landmarks = np.asarray(points)
    points, conf = reorder_landmarks(landmarks, np.asarray(conf), names, character.rig.landmark_names)

    threshold = options.confidence_threshold
    if threshold is None:
        threshold = config.DEFAULT_CONFIDENCE_THRESHOLD
    fitted = character.rig.apply(points, conf, frames=frames, min_confidence=0.0, smooth_sigma=0.0)
    flags = {name: fs.flagged_frames for name, fs in fitted.items() if fs.flagged_frames}
    read_back = np.array(landmarks, dtype=np.float64, copy=True)
    pieces: Dict[str, np.ndarray] = {}
    snapped: Dict[str, np.ndarray] = {}
    if options.snap_pieces and character.prints is not None and len(grays):
        from seamroto.printlib import snap_fitted, snapped_points

        fitted, outcomes = snap_fitted(fitted, landmarks, names, grays, character.prints, progress=progress)
        pieces, snapped = snapped_points(fitted, outcomes)
        if character.prints.readout is not None:
            read_back = character.prints.readout.apply(landmarks, names, pieces, snapped)
    shapes = list(fitted_to_roto_shapes(fitted))
    feather = options.feather_px
    if feather is not None:
        shapes = [dataclasses.replace(s, feather=float(feather)) if s.closed else s for s in shapes]
    if options.seam_band_px is not None:
        by_name = {fs.name: fs for fs in fitted.values()}
        shapes = [s for s in shapes if not s.name.endswith("_band")]
        for seam in character.info.seams:
            fs = by_name.get(seam.name)
            if fs is not None and not fs.closed:
                band_feather = config.DEFAULT_FEATHER_PX if feather is None else feather
                shapes.append(seam_band(fs, options.seam_band_px, band_feather))
    return ShapeFit(tuple(shapes), flags, read_back, pieces, snapped)


def tracks_from_points(
    frames: Sequence[int], points: np.ndarray, confidence: np.ndarray, names: Sequence[str]
) -> Tuple[LandmarkTrack, ...]:
    """Per-frame arrays -> LandmarkTracks, leaving unknown frames out (never fabricated)."""
    out = []
    for j, name in enumerate(names):
        samples = {}
        for i, f in enumerate(frames):
            x, y = points[i, j]
            if np.isfinite(x) and np.isfinite(y):
                samples[int(f)] = LandmarkSample(float(x), float(y), float(confidence[i, j]), True)
        out.append(LandmarkTrack(name, samples))
    return tuple(out)


@dataclass(frozen=True)
class NodeNames:
    """How emitted nodes are named: ``{prefix}_{role}`` plus ``_v{version}`` on a re-run."""

    prefix: str = "SeamRoto"
    version: Optional[int] = None

    def __call__(self, role: str) -> str:
        """The node name for ``role`` (``tracks``, ``shapes``, ``repair_seam``...)."""
        suffix = f"_v{self.version}" if self.version and self.version > 1 else ""
        return f"{self.prefix}_{role}{suffix}"


def write_outputs(
    out: Path,
    result: TrackResult,
    shot: Shot,
    *,
    seam_width_px: float,
    names: NodeNames = NodeNames(),
    include_read: bool = True,
) -> Dict[str, Path]:
    """tracks.nk, shapes.nk, seamroto.nk and result.json in ``out`` (a staged folder).

    ``seamroto.nk`` is the whole build (Read -> Tracker4 -> Roto -> seam repair, backdropped);
    without ``include_read`` its first node takes the paste point's selection as input, which is
    how the Nuke plugin wires the result to the artist's plate.
    """
    from seamroto.nk import writer
    from seamroto.repair import seam_keys, write_wire_removal

    w, h = result.width, result.height
    read = writer.write_read(shot, name=names("plate"), xpos=0, ypos=0)
    tracker = writer.write_tracker(
        result.tracks,
        name=names("tracks"),
        height=h,
        width=w,
        first=result.first,
        last=result.last,
        xpos=0,
        ypos=LAYOUT_STEP_Y,
    )
    curves = writer.curves_knob_value(result.shapes, width=w, height=h)
    roto = writer.write_roto(
        result.shapes,
        name=names("shapes"),
        width=w,
        height=h,
        xpos=0,
        ypos=2 * LAYOUT_STEP_Y,
        connect_input=True,
        curves=curves,
    )
    alone = writer.write_roto(result.shapes, name=names("shapes"), width=w, height=h, curves=curves)
    paths = {
        "tracks": writer.write_script_file(out / "tracks.nk", writer.write_script([read, tracker])),
        "shapes": writer.write_script_file(out / "shapes.nk", writer.write_script([alone])),
    }
    frames = list(range(result.first, result.last + 1))
    repairs: List[str] = []
    for k, seam in enumerate(result.seams):
        keys = seam_keys(seam, result.tracks, frames)
        if keys.points:
            repairs.append(
                write_wire_removal(
                    keys,
                    height=h,
                    name=names(f"repair_{seam.name}"),
                    width_px=seam_width_px,
                    xpos=0,
                    ypos=(3 + k) * LAYOUT_STEP_Y,
                )
            )
    bottom = (3 + max(1, len(repairs))) * LAYOUT_STEP_Y
    backdrop = writer.write_backdrop(
        f"SeamRoto {result.model.name} {result.model.version}",
        -60,
        -80,
        260,
        bottom + 80,
        BACKDROP_COLOUR,
        name=names("backdrop"),
    )
    # The backdrop goes last: a node pushes itself on Nuke's stack, and the Tracker must take
    # the Read (or, without it, the artist's selection) as its input, not the backdrop.
    main = [*([read] if include_read else []), tracker, roto, *repairs, backdrop]
    paths["seamroto"] = writer.write_script_file(out / "seamroto.nk", writer.write_script(main))
    paths["result"] = write_result(out / "result.json", result)
    return paths


def track_shot(
    plates: str, model_dir: Path, options: TrackOptions = TrackOptions(), progress: Optional[Progress] = None
) -> Tuple[TrackResult, Shot, Character, Dict[str, float]]:
    """Track one shot in memory (no files written): the core of ``seamroto track``."""
    progress = progress or NullProgress()
    from seamroto.colour import colourspace_for
    from seamroto.plates import PlateSequence

    started = time.perf_counter()
    character = load_character(model_dir, options.precision)
    seq = PlateSequence.open(plates, options.first, options.last, colourspace=options.colourspace)
    colourspace = options.colourspace or seq.colourspace or colourspace_for(plates)
    shot = dataclasses.replace(seq.shot(), colourspace=colourspace)
    logger.info(
        "tracking %s frames %d-%d (%dx%d, %s) with %s %s",
        plates,
        seq.first,
        seq.last,
        seq.width,
        seq.height,
        colourspace,
        character.ref.name,
        character.ref.version,
    )
    det = detect_character_shot(seq, character, colourspace, progress)
    t0 = time.perf_counter()
    fused = fuse_detections(det, character, options, progress)
    det.timings["fusion"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    names = character.model.landmark_names
    fit = fit_shapes(fused.points, fused.confidence, det.frames, character, options, names, det.grays, progress)
    det.timings["fit"] = time.perf_counter() - t0
    result = TrackResult(
        width=seq.width,
        height=seq.height,
        first=seq.first,
        last=seq.last,
        model=character.ref,
        tracks=tracks_from_points(fused.frames, fit.landmarks, fused.confidence, names),
        shapes=fit.shapes,
        flagged_frames=tuple(int(f) for f in fused.flagged_frames),
        flag_reasons={int(f): str(r) for f, r in fused.reasons.items()},
        shape_flags=fit.flags,
        plates=str(plates),
        colourspace=colourspace,
        seams=character.info.seams,
        face_boxes=det.face_boxes,
        extra={"options": {k: v for k, v in dataclasses.asdict(options).items() if v is not None}},
    )
    det.timings["total"] = time.perf_counter() - started
    return result, shot, character, det.timings


def track_command(
    plates: str,
    model_dir: Path,
    output: Path,
    options: TrackOptions = TrackOptions(),
    progress: Optional[Progress] = None,
) -> Dict[str, Path]:
    """``seamroto track``: track a shot and write every output into a new folder."""
    progress = progress or NullProgress()
    result, shot, character, timings = track_shot(plates, model_dir, options, progress)
    out = next_free_dir(output)
    seam_width = options.seam_band_px or config.DEFAULT_SEAM_BAND_PX
    with staged_dir(out) as tmp:
        paths = write_outputs(tmp, result, shot, seam_width_px=seam_width)
        if options.report:
            paths["report"] = _write_report(tmp, result, options)
        if options.repair_preview:
            paths.update(_write_repair(tmp, result, progress))
    progress.update(1, 1, "done")
    logger.info(
        "tracked %d frames in %.1f s (%s)",
        result.last - result.first + 1,
        timings["total"],
        ", ".join(f"{k} {v:.1f}s" for k, v in timings.items() if k != "total"),
    )
    return {k: out / p.relative_to(tmp) for k, p in paths.items()}


def _display_reader(result: TrackResult) -> Callable[[int], Optional[np.ndarray]]:
    from seamroto.colour import to_model_space
    from seamroto.plates import expand_pattern, read_frame

    def display(frame: int) -> Optional[np.ndarray]:
        try:
            return to_model_space(read_frame(expand_pattern(result.plates, frame)), result.colourspace)
        except SeamRotoError as err:
            logger.warning("report: frame %d unreadable (%s)", frame, err)
            return None

    return display


def _write_report(out: Path, result: TrackResult, options: TrackOptions) -> Path:
    from seamroto.report import build_report, write_report

    threshold = options.confidence_threshold
    if threshold is None:
        threshold = config.DEFAULT_CONFIDENCE_THRESHOLD
    return write_report(out / "report.html", build_report(result, _display_reader(result), threshold=threshold))


def _write_repair(out: Path, result: TrackResult, progress: Progress) -> Dict[str, Path]:
    """Preview clean plates and seam mattes (PNG), inpainted along each seam band."""
    from seamroto.plates import write_frame
    from seamroto.repair import full_matte, inpaint_seam, seam_bands

    bands = seam_bands(result.shapes)
    display = _display_reader(result)
    clean_dir, matte_dir = out / "clean", out / "matte"
    total = result.last - result.first + 1
    for i, frame in enumerate(range(result.first, result.last + 1)):
        _check(progress, "repair preview", frame)
        progress.update(i, total, f"repair preview, frame {frame}")
        img = display(frame)
        if img is None:
            continue
        write_frame(clean_dir / f"clean.{frame:04d}.png", inpaint_seam(img, bands, frame))
        matte = full_matte(bands, frame, result.width, result.height)
        write_frame(matte_dir / f"seam_matte.{frame:04d}.png", np.repeat(matte[..., None], 3, axis=2))
    return {"clean_plates": clean_dir / "clean.####.png", "seam_mattes": matte_dir / "seam_matte.####.png"}


def repair_command(result_path: Path, output: Path, progress: Optional[Progress] = None) -> Dict[str, Path]:
    """``seamroto repair``: preview clean plates for a tracked shot, without Nuke."""
    progress = progress or NullProgress()
    result = read_result(result_path)
    out = next_free_dir(output)
    with staged_dir(out) as tmp:
        paths = _write_repair(tmp, result, progress)
    return {k: out / p.relative_to(tmp) for k, p in paths.items()}


def export_command(result_path: Path, *, fxs: Path) -> Path:
    """``seamroto export --fxs``: Silhouette shapes from a result."""
    from seamroto.silhouette import export_fxs

    target = Path(fxs)
    if target.exists():
        target = next_free_dir(target.with_suffix("")).with_suffix(target.suffix)
    return export_fxs(read_result(result_path), target)


# --- refit: shapes from landmarks an artist corrected ----------------------------------------


def read_tracks_any(
    path: Path, like: Optional[TrackResult] = None
) -> Tuple[Tuple[LandmarkTrack, ...], int, int, Optional[Shot]]:
    """Landmark tracks from a Tracker4 in a .nk (named by landmark) or from a result.json.

    A Tracker4 copied out of Nuke on its own carries no format; ``like`` (the result the tracks
    came from) then gives the plate size that Nuke's y-up values are flipped with.

    Returns:
        tracks, width, height, and the Read node's shot when the script has one.
    """
    from seamroto.errors import NkNodeNotFoundError
    from seamroto.nk import reader

    path = Path(path)
    if path.suffix.lower() == ".json":
        res = read_result(path)
        shot = Shot(res.plates, res.first, res.last, res.width, res.height, colourspace=res.colourspace)
        return res.tracks, res.width, res.height, shot
    script = reader.read_script(path)
    shot_opt: Optional[Shot] = None
    try:
        shot_opt = reader.read_node_shot(script, reader.find_node(script, node_class="Read"))
    except NkNodeNotFoundError:
        shot_opt = None
    width, height = (script.format.width, script.format.height) if script.format else (0, 0)
    if shot_opt is not None:
        width, height = shot_opt.width, shot_opt.height
    elif like is not None:
        width, height = like.width, like.height
        shot_opt = Shot(like.plates, like.first, like.last, like.width, like.height, colourspace=like.colourspace)
    if not height:
        raise SeamRotoError(
            "cannot tell the plate height (no Read node and no root format); Nuke's y-up track values "
            "need it. Export the Tracker4 together with its Read node",
            path=str(path),
        )
    tracks: List[LandmarkTrack] = []
    for node in script.nodes:
        if node.node_class == "Tracker4":
            tracks.extend(reader.tracker_tracks(script, node, height))
    if not tracks:
        raise NkNodeNotFoundError(
            "no Tracker4 tracks in this script; select the corrected Tracker4 node", path=str(path)
        )
    return tuple(tracks), int(width), int(height), shot_opt


class _PlateGrays:
    """Per frame, the plate's grey as a ``detection.GrayRegion``, decoded when asked for (refit)."""

    def __init__(self, seq: Any, frames: Sequence[int], colourspace: str) -> None:
        self.seq, self.frames, self.colourspace = seq, list(frames), colourspace

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> Any:
        from seamroto.colour import model_gray_u8
        from seamroto.detection import GrayRegion
        from seamroto.errors import PlateError

        frame = self.frames[i]
        if not self.seq.first <= frame <= self.seq.last:
            return None
        try:
            return GrayRegion((0, 0), model_gray_u8(self.seq.read(frame), self.colourspace))
        except PlateError as err:
            logger.warning("frame %d: %s; its replacement pieces are left as the rig puts them", frame, err)
            return None


def _plate_grays(shot: Optional[Shot], frames: Sequence[int], colourspace: Optional[str]) -> FrameGrays:
    """The refit's plates for snapping replacement pieces; empty (pieces as rigged) when unreadable."""
    from seamroto.errors import PlateError
    from seamroto.plates import PlateSequence

    if shot is None or not shot.plates:
        logger.info("no plates named in the tracks: replacement pieces are left as the rig puts them")
        return ()
    try:
        seq = PlateSequence.open(shot.plates, colourspace=colourspace or shot.colourspace or None)
    except PlateError as err:
        logger.warning("plates not readable (%s): replacement pieces are left as the rig puts them", err)
        return ()
    return _PlateGrays(seq, frames, colourspace or shot.colourspace or seq.colourspace)


def refit_command(
    model_dir: Path,
    tracks_path: Path,
    output: Path,
    progress: Optional[Progress] = None,
    options: TrackOptions = TrackOptions(),
    names: Optional[NodeNames] = None,
    like: Optional[Path] = None,
) -> Dict[str, Path]:
    """``seamroto refit``: rebuild the character's shapes from corrected landmark tracks.

    ``like`` is the result.json the tracks were first tracked into (its format and plates).
    """
    from seamroto.datamodel import tracks_to_array
    from seamroto.nk import writer
    from seamroto.printlib import load_print_library
    from seamroto.rig import Rig

    progress = progress or NullProgress()
    rig = Rig.load(model_dir)
    info = read_character(model_dir)
    tracks, width, height, shot = read_tracks_any(tracks_path, read_result(like) if like else None)
    lm_names = list(rig.landmark_names)
    have = {t.name for t in tracks}
    missing = [n for n in lm_names if n not in have]
    if missing:
        logger.warning(
            "tracks lack %d landmark(s) the rig uses (%s): shapes that need them are flagged",
            len(missing),
            ", ".join(missing[:8]),
        )
    frames = sorted({f for t in tracks for f in t.samples})
    if not frames:
        raise SeamRotoError("the tracks hold no keyed frame", path=str(tracks_path))
    frames = list(range(frames[0], frames[-1] + 1))
    arr = tracks_to_array(tracks, lm_names, frames)
    progress.update(0, 1, "fitting shapes")
    prints = load_print_library(Path(model_dir))
    character = Character(Path(model_dir), None, rig, None, info, None, prints)
    snap = options.snap_pieces and prints is not None
    grays = _plate_grays(shot, frames, options.colourspace) if snap else ()
    # the artist's tracks are theirs: the refit reads no landmark back into them
    fit = fit_shapes(arr[..., :2], np.nan_to_num(arr[..., 2]), frames, character, options, lm_names, grays, progress)
    shapes, flags = fit.shapes, fit.flags
    result = TrackResult(
        width=width,
        height=height,
        first=frames[0],
        last=frames[-1],
        model=ModelRef(info.name, Path(model_dir).name, ""),
        tracks=tuple(tracks),
        shapes=shapes,
        shape_flags=flags,
        plates=shot.plates if shot else "",
        colourspace=shot.colourspace if shot else "",
        seams=info.seams,
        flagged_frames=tuple(sorted({f for fl in flags.values() for f in fl})),
    )
    out = next_free_dir(output)
    with staged_dir(out) as tmp:
        node_names = names or NodeNames("SeamRoto_refit")
        roto = writer.write_roto(shapes, name=node_names("shapes"), width=width, height=height)
        paths = {
            "shapes": writer.write_script_file(tmp / "shapes.nk", writer.write_script([roto])),
            "result": write_result(tmp / "result.json", result),
        }
    progress.update(1, 1, "done")
    return {k: out / p.relative_to(tmp) for k, p in paths.items()}


# --- train: the core decides, the training package (torch) learns the landmark model ---------


def train_command(
    name: str,
    *,
    shots: Sequence[str],
    laika: Sequence[str] = (),
    output: Path,
    base_model: Optional[Path] = None,
    rig_only: bool = False,
    seed: int = 0,
    minutes: Optional[float] = None,
    resume: bool = False,
    progress: Optional[Progress] = None,
) -> Path:
    """``seamroto train``: a character model folder from the artists' ground truth."""
    import importlib

    from seamroto.annotations import load_annotations

    progress = progress or NullProgress()
    annotations = load_annotations(shots, laika)
    if rig_only:
        from seamroto.rigtrain import train_rig_only

        return train_rig_only(name, annotations, Path(output), progress=progress)
    try:
        trainer = importlib.import_module("training.character")
    except ImportError as err:
        raise SeamRotoError(
            f"training needs the 'train' extra (PyTorch): pip install -e '.[train]' ({err}). "
            "Use --rig-only to learn only the roto rig without it"
        ) from err
    return Path(
        trainer.train_full(
            name,
            annotations,
            Path(output),
            base_model=base_model,
            seed=seed,
            time_budget_s=None if minutes is None else minutes * 60.0,
            resume=resume,
            progress=progress,
        )
    )


# --- demo: the main job on the bundled character ------------------------------------------------

DEMO_SEED = 2024
DEMO_FRAMES = 24
DEMO_SIZE = (1920, 1080)


def demo_command(output: Path, progress: Optional[Progress] = None) -> Dict[str, Path]:
    """``seamroto demo``: synthesise a shot, track it with the bundled character, build everything."""
    from seamroto.models import find_models
    from seamroto.synth import synth_command

    progress = progress or NullProgress()
    found = [m for m in find_models([config.BUNDLED_MODELS_DIR]) if m.character == config.DEMO_CHARACTER]
    if not found:
        raise SeamRotoError(
            f"no bundled '{config.DEMO_CHARACTER}' model in {config.BUNDLED_MODELS_DIR}; build it with "
            "`make demo-model` (needs the train extra)"
        )
    model_dir = sorted(found, key=lambda m: m.version)[-1].path
    out = next_free_dir(output)
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    shot_dir = synth_command(
        config.DEMO_CHARACTER, DEMO_SEED, DEMO_FRAMES, DEMO_SIZE[0], DEMO_SIZE[1], out / "shot", ("exr",)
    )
    t_synth = time.perf_counter() - t0
    plates = str(next((shot_dir / "plates").glob("*.exr")).parent / _pattern_of(shot_dir / "plates"))
    options = TrackOptions(report=True, repair_preview=True)
    outputs = track_command(plates, model_dir, out / "track", options, progress)
    outputs = {"shot (synthetic, with ground truth)": shot_dir, **outputs}
    score = _score_against_truth(outputs["result"], shot_dir / "gt.json")
    logger.info("demo: synthesised in %.1f s, whole demo %.1f s; %s", t_synth, time.perf_counter() - t0, score)
    return outputs


def _pattern_of(folder: Path) -> str:
    """``name.####.exr`` for the one EXR sequence in ``folder``."""
    first = sorted(folder.glob("*.exr"))[0].name
    stem, frame, ext = first.rsplit(".", 2)
    return f"{stem}.{'#' * len(frame)}.{ext}"


def _score_against_truth(result_path: Path, gt_path: Path) -> str:
    """Mean/p95 landmark error of a demo run against the synthetic ground truth (for the log)."""
    import json

    res = read_result(result_path)
    gt = json.loads(Path(gt_path).read_text(encoding="utf-8"))["landmarks"]
    errs = []
    for t in res.tracks:
        truth = gt.get(t.name, {})
        for f, s in t.samples.items():
            if str(f) in truth:
                gx, gy = truth[str(f)][:2]
                errs.append(float(np.hypot(s.x - gx, s.y - gy)))
    if not errs:
        return "no landmark to score"
    e = np.array(errs)
    return f"landmark error vs ground truth: mean {e.mean():.2f} px, p95 {np.percentile(e, 95):.2f} px"
