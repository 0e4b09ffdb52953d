"""Calibrate a character's review flags on shots an artist checked, as a new model version.

Why: a frame is flagged when the error model (``seamroto.confidence``) says a landmark is
likely off, and how the evidence fusion has in hand (the smoother's variance, a detection the
track overruled, the detector's confidence) turns into pixels differs per character and per
detector. ``seamroto train`` cannot measure it on its own shots (the detector has seen them),
so a lead gives one or two shots the tracker did not train on, tracked and checked by an artist
(the same Read + Tracker4 scripts training takes); SeamRoto runs its detection pass on them,
compares with the artist's points, and fits the error model there. With ``prior_shots`` (the
character's training scripts) the shape prior is learned again with its anchors' noise as
measured on the checked shots, which is how the bundled demo character was built.

Nothing in the source model folder changes: the result is a copy with the new
``shape_prior.json``, its card saying what changed, from what, and the flag figures on the
checked shots (in-sample: judge the version on other shots).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from seamroto.confidence import FEATURES, HIDDEN_MOVE_GAIN, ErrorModel, calibrate_error_model
from seamroto.datamodel import Annotation, tracks_to_array
from seamroto.errors import AnnotationError, ModelError, OutputExistsError
from seamroto.fileio import staged_dir
from seamroto.models import file_sha256, read_card, verify_files, write_card
from seamroto.piecepoints import PieceReadout, find_pins, measure_readout
from seamroto.pieceprior import measure_piece_noise
from seamroto.printlib import PRINTS_FILE, PrintLibrary, learn_print_library, write_print_library
from seamroto.progress import NullProgress, Progress
from seamroto.shapeprior import (
    SHAPE_PRIOR_FILE,
    AnchorNoise,
    ShapePrior,
    learn_shape_prior,
    measure_anchor_noise,
    shots_from_annotations,
    write_shape_prior,
)

logger = logging.getLogger(__name__)

#: A shape-prior part (a lid) is kept unless it makes its own mean error on the checked shots
#: this much worse (see ``prune_parts``).
PART_TOLERANCE = 0.1

#: A frame is "bad" when any landmark is further than this from the artist's point (issue 3).
BAD_FRAME_PX = 3.0
#: Checked points needed before an error model is fitted (a few frames of a face).
MIN_CHECKED_POINTS = 200
#: Evidence the fit may weigh; the smoother's own variance and the hidden-move gain stay set.
FITTED_FEATURES = ("residual", "detector", "floor")
WEIGHTS_FILE = "weights.npz"


@dataclass(frozen=True)
class CheckedShot:
    """The tracker's detection pass on a shot, beside the artist's landmarks for it.

    Attributes:
        source: the checked script.
        detections: ``seamroto.detection.ShotDetections`` of the shot's plates.
        truth: the artist's points in the model's landmark order, NaN where there is none.
            Shape: (F, L, 2) float64, _img.
    """

    source: str
    detections: Any
    truth: np.ndarray


@dataclass(frozen=True)
class FlagFigures:
    """How a version's review flags do on a shot with truth (issue 3's two flag figures)."""

    frames: int
    bad_frames: int
    flagged_frames: int
    recall: Optional[float]  # share of bad frames flagged; None without bad frames
    fine_share: Optional[float]  # share of flagged frames that are fine; None when none flagged
    mean_error_px: float

    def to_json(self) -> Dict[str, Any]:
        """JSON-ready dict for the card."""
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """One line for a lead: how many frames were bad, how many flagged, and the two shares."""
        recall = "-" if self.recall is None else f"{self.recall:.0%}"
        fine = "-" if self.fine_share is None else f"{self.fine_share:.0%}"
        return (
            f"{self.bad_frames} of {self.frames} frames bad (> {BAD_FRAME_PX:g} px), {self.flagged_frames} flagged; "
            f"bad frames flagged {recall}, flagged frames fine {fine}; mean error {self.mean_error_px:.2f} px"
        )


def checked_shot(character: Any, annotation: Annotation, progress: Optional[Progress] = None) -> CheckedShot:
    """Run the tracker's detection pass on a checked shot's plates and line up the artist's points.

    Args:
        character: a loaded ``seamroto.pipeline.Character``.
        annotation: a checked script (``seamroto.annotations.load_nk_annotation``).
        progress: polled between frames.

    Raises:
        AnnotationError: the script has no plates or tracks none of the model's landmarks.
        PlateError, CancelledError: as ``seamroto track``.
    """
    from seamroto.pipeline import detect_character_shot
    from seamroto.plates import PlateSequence

    names = list(character.model.landmark_names)
    if annotation.shot is None:
        raise AnnotationError(
            "calibration needs the shot's plates (a Read node); this ground truth has still images only",
            path=annotation.source,
        )
    known = sorted({t.name for t in annotation.tracks} & set(names))
    if not known:
        raise AnnotationError(
            f"no Tracker4 track is named after a landmark of this character ({', '.join(names[:6])}, ...); "
            "calibrate on a shot whose tracks an artist checked",
            path=annotation.source,
        )
    shot = annotation.shot
    seq = PlateSequence.open(shot.plates, shot.first, shot.last, colourspace=shot.colourspace or None)
    colourspace = shot.colourspace or seq.colourspace
    det = detect_character_shot(seq, character, colourspace, progress or NullProgress())
    truth = tracks_to_array(annotation.tracks, names, det.frames)[..., :2]
    logger.info(
        "%s: %d frames, %d of %d landmarks checked", annotation.source, len(det.frames), len(known), len(names)
    )
    return CheckedShot(annotation.source, det, truth)


def fuse_checked(
    character: Any, shot: CheckedShot, prior: Optional[ShapePrior], error_model: Optional[ErrorModel]
) -> Any:
    """Fusion of a checked shot as tracking runs it, with this prior and error model."""
    from seamroto.fusion import FusionParams
    from seamroto.pipeline import fuse_shot

    return fuse_shot(shot.detections, character, FusionParams(error_model=error_model), prior)


def fit_error_model(fused: Sequence[Any], truths: Sequence[np.ndarray]) -> ErrorModel:
    """The error model that best explains the measured errors of fused tracks (maximum likelihood).

    ``fused`` must come from fusion without an error model (``error_features`` are then the raw
    evidence); the smoother's posterior gain is held at 1 and the hidden-move gain at its set value.

    Raises:
        AnnotationError: too few checked points to fit.
    """
    feats, errs = [], []
    for tracks, truth in zip(fused, truths):
        if tracks.error_features is None:
            raise ModelError("fusion gave no error features to calibrate on")
        feats.append(tracks.error_features.reshape(-1, len(FEATURES)))
        errs.append(np.linalg.norm(tracks.points - truth, axis=2).reshape(-1))
    err = np.concatenate(errs)
    checked = int(np.isfinite(err).sum())
    if checked < MIN_CHECKED_POINTS:
        raise AnnotationError(
            f"only {checked} checked landmark positions; calibration needs at least {MIN_CHECKED_POINTS} "
            "(give longer or more checked shots)"
        )
    model, nll = calibrate_error_model(
        np.concatenate(feats), err, use=FITTED_FEATURES, fixed={"posterior": 1.0, "hidden": HIDDEN_MOVE_GAIN}
    )
    logger.info("error model fitted on %d checked positions: %s (mean NLL %.4f)", checked, model, nll)
    return model


def flag_figures(fused: Any, truth: np.ndarray, bad_px: float = BAD_FRAME_PX) -> FlagFigures:
    """Recall of bad frames and the fine share of flagged ones, against the artist's points."""
    err = np.linalg.norm(fused.points - truth, axis=2)
    worst = np.array([np.nanmax(e) if np.isfinite(e).any() else 0.0 for e in err])
    bad = worst > bad_px
    flagged = np.isin(np.asarray(fused.frames), np.asarray(fused.flagged_frames, dtype=int))
    finite = np.isfinite(err)
    return FlagFigures(
        frames=len(err),
        bad_frames=int(bad.sum()),
        flagged_frames=int(flagged.sum()),
        recall=float((bad & flagged).sum() / bad.sum()) if bad.any() else None,
        fine_share=float((flagged & ~bad).sum() / flagged.sum()) if flagged.any() else None,
        mean_error_px=float(err[finite].mean()) if finite.any() else float("nan"),
    )


def learn_prior_for_model(
    model_dir: Path,
    annotations: Sequence[Annotation],
    *,
    anchor_noise: Optional[AnchorNoise] = None,
    parts: bool = False,
) -> ShapePrior:
    """A shape prior from ground-truth scripts, in the model's landmark order, with its seams and replacement pieces."""
    from seamroto.character import read_character

    info = read_character(model_dir)
    names = list(read_card(model_dir).landmarks)
    return learn_prior_from(annotations, names, info.seams, info.discontinuous, anchor_noise=anchor_noise, parts=parts)


def learn_prior_from(
    annotations: Sequence[Annotation],
    names: Sequence[str],
    seams: Sequence[Any],
    discontinuous: Sequence[str],
    *,
    anchor_noise: Optional[AnchorNoise] = None,
    parts: bool = False,
) -> ShapePrior:
    """A shape prior from ground-truth scripts for landmarks ``names``, their sources in its stats.

    ``parts`` offers the interior parts that move on their own as targets too (see
    ``shapeprior.choose_landmarks``); only a checked shot can say whether one helps
    (``prune_parts``).

    Raises:
        AnnotationError: the scripts are too few to learn one.
    """
    try:
        prior = learn_shape_prior(
            shots_from_annotations(annotations, names),
            names,
            seams=seams,
            discontinuous=discontinuous,
            anchor_noise=anchor_noise,
            parts=parts,
        )
    except ValueError as err:
        raise AnnotationError(
            f"cannot learn a shape prior from {len(annotations)} script(s): {err}; give the character's "
            "training scripts (five or six shots of a few dozen frames)",
            path=", ".join(a.source for a in annotations),
        ) from err
    return dataclasses.replace(prior, stats={**prior.stats, "sources": [a.source for a in annotations]})


def calibrate_prior(
    character: Any, shots: Sequence[CheckedShot], prior_shots: Sequence[Annotation] = ()
) -> ShapePrior:
    """The character's prior carrying an error model fitted on the checked shots.

    Without ``prior_shots`` the character's own prior is kept as it is (its regression and
    anchor noise) and only the error model is fitted; with them the prior is learned from
    them, learned again with the anchor noise measured on the checked shots, and then calibrated.

    Raises:
        ModelError: no ``prior_shots`` and the model has no shape prior.
    """
    truths = [s.truth for s in shots]
    if prior_shots:
        first = learn_prior_for_model(character.path, prior_shots)
        from seamroto.fusion import FusionParams
        from seamroto.pipeline import fuse_shot

        # the anchors' noise is how tracking without a prior gets them wrong
        plain = [fuse_shot(s.detections, character, FusionParams(), None).points for s in shots]
        noise = measure_anchor_noise(plain, truths, list(character.model.landmark_names), first)
        prior = learn_prior_for_model(character.path, prior_shots, anchor_noise=noise, parts=True)
        prior = prune_parts(
            prior, lambda p: [fuse_checked(character, s, p, None).points for s in shots], truths,
            list(character.model.landmark_names),
        )
    elif character.shape_prior is not None:
        prior = character.shape_prior
    else:
        raise ModelError(
            "this model has no shape prior to calibrate; pass --prior-shot (repeat) with the character's "
            "training scripts so one is learned",
            path=str(character.path),
        )
    names = list(character.model.landmark_names)
    if prior.pieces is None and character.info.discontinuous:
        logger.info("the model's shape prior has no replacement-piece shape; pass --prior-shot to learn one")
    if prior.pieces is not None:
        tracked = [fuse_checked(character, s, prior.with_pieces(None), None).points for s in shots]
        prior = calibrate_pieces(prior, tracked, [s.detections.points for s in shots], truths, names)
    fused = [fuse_checked(character, s, prior, None) for s in shots]
    return prior.with_error_model(fit_error_model(fused, truths))


def prune_parts(
    prior: ShapePrior,
    fuse: Callable[[ShapePrior], Sequence[np.ndarray]],
    truths: Sequence[np.ndarray],
    names: Sequence[str],
) -> ShapePrior:
    """The prior without the parts (``stats["parts"]``) it does not help track on checked shots.

    Why: a part the prior pins in one direction (a lid along itself) may already be tracked
    better than the prior can say (a brow's end, which its detector sees to 0.2 px: 4x worse
    with the prior). A part is dropped when fusing with it makes that part's mean error against
    the artist's points more than ``PART_TOLERANCE`` worse; within that it is kept, since the
    prior is there for the fast move (a detector several px off along the lid) that one
    checked shot may not hold. Targets are solved one by one from the anchors, so one fusion
    with and one without all parts decide every part.

    Args:
        prior: a prior learned with ``parts``.
        fuse: fused points of every checked shot with a given prior, Shape: (F, L, 2) each.
        truths: the artists' points of those shots, Shape: (F, L, 2) each, NaN where unchecked.
        names: landmark names (L).
    """
    parts = [t for t in prior.stats.get("parts", []) if t in prior.targets]
    if not parts:
        return prior

    def part_errors(candidate: ShapePrior) -> Dict[str, float]:
        errs = [np.linalg.norm(pts - truth, axis=2) for pts, truth in zip(fuse(candidate), truths)]
        out = {}
        for t in parts:
            col = np.concatenate([e[:, names.index(t)] for e in errs])
            out[t] = float(np.nanmean(col)) if np.isfinite(col).any() else float("nan")
        return out

    with_parts = part_errors(prior)
    without = part_errors(prior.without(parts)) if len(parts) < len(prior.targets) else {}
    dropped = [t for t in parts if not with_parts[t] <= (1.0 + PART_TOLERANCE) * without.get(t, float("inf"))]
    for t in parts:
        logger.info(
            "shape prior part %s: %.3f px with it, %.3f px without on the checked shots: %s",
            t, with_parts[t], without.get(t, float("nan")), "dropped" if t in dropped else "kept",
        )
    return prior.without(dropped) if dropped else prior


def calibrate_pieces(
    prior: ShapePrior,
    tracked: Sequence[np.ndarray],
    detections: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    names: Sequence[str],
) -> ShapePrior:
    """The prior with its replacement pieces' detector noise measured on checked shots.

    ``tracked`` are the shots fused without the pieces' model (their anchors give the face
    frames); a shot too short to measure on leaves the pieces' model unapplied, with a warning.
    """
    if prior.pieces is None:
        return prior
    try:
        pieces = measure_piece_noise(tracked, detections, truths, names, prior.pieces, prior.anchors, prior.template)
    except ValueError as err:
        logger.warning("replacement pieces' shape not applied: %s", err)
        return prior.with_pieces(dataclasses.replace(prior.pieces, detector_cov=None))
    logger.info("replacement pieces' detector noise measured on %s frames", pieces.stats.get("detector_frames"))
    return prior.with_pieces(pieces)


def calibrate_readout(
    character: Any, shots: Sequence[CheckedShot], annotations: Sequence[Annotation]
) -> Optional[PieceReadout]:
    """How far each piece landmark moves toward its snapped print, measured on the checked shots.

    ``character`` carries the prior and print library the new version will track with; each
    checked shot is fused and fitted as tracking does, and the artists' Roto shapes in
    ``annotations`` (one per shot) say which control point a piece landmark sits on. None when
    the character snaps no piece, no landmark sits on a control point, or too few frames were
    snapped (``seamroto.piecepoints.MIN_FRAMES``).
    """
    from seamroto.pipeline import TrackOptions, fit_shapes

    prior, library = character.shape_prior, character.prints
    if prior is None or library is None:
        return None
    library = library.with_readout(None)
    character = dataclasses.replace(character, prints=library)
    names = list(character.model.landmark_names)
    tracked, pieces, snapped, truths = [], [], [], []
    pins: Dict[str, Tuple[str, int]] = {}
    for shot, annotation in zip(shots, annotations):
        det = shot.detections
        fused = fuse_checked(character, shot, prior, prior.error_model)
        fit = fit_shapes(fused.points, fused.confidence, det.frames, character, TrackOptions(), names, det.grays)
        drawn = {}
        for name, cps in fit.pieces.items():
            s = next((r for r in annotation.shapes if r.name == name), None)
            if s is not None and s.point_count == cps.shape[1]:
                drawn[name] = np.array([
                    s.points_array(f)[:, :2] if f in s.keys else np.full((s.point_count, 2), np.nan) for f in det.frames
                ])
        for lm, pin in find_pins(shot.truth, names, drawn, character.info.discontinuous, prior.anchors,
                                 prior.template).items():
            pins.setdefault(lm, pin)
        tracked.append(fused.points)
        pieces.append(fit.pieces)
        snapped.append(fit.snapped)
        truths.append(shot.truth)
    readout = measure_readout(tracked, pieces, snapped, truths, names, pins, prior.anchors, prior.template)
    if readout is not None:
        for g in readout.groups:
            for name, j in zip(g.landmarks, g.indices):
                st = readout.stats["landmarks"][name]
                logger.info(
                    "%s read back from %s point %d: %.4f -> %.4f face units RMS on %d checked frames "
                    "(snapped alone %.4f)",
                    name, g.shape, j, st["tracked_rms"], st["read_back_rms"], st["frames"], st["snapped_rms"],
                )
    return readout


def write_model_with_prior(
    model_dir: Path,
    prior: ShapePrior,
    output: Optional[Path],
    change: str,
    metrics: Optional[Mapping[str, Any]] = None,
    prints: Optional[PrintLibrary] = None,
) -> Path:
    """Write ``prior`` (and ``prints``) into a verified copy of the model folder at ``output``.

    Without ``output`` they go into the folder itself.

    The copy is a new version of the character: its card lists and hashes the prior (and the
    print library), records the parent and ``change``, and adds ``metrics`` under the card's
    metrics.

    Raises:
        OutputExistsError: ``output`` exists.
        ModelError, ModelChecksumError: the source folder does not match its card.
    """
    src = Path(model_dir)
    card = read_card(src)
    verify_files(src, card)
    if output is None:
        _install(src, prior, metrics, prints)
        return src
    out = Path(output)
    if out.exists():
        raise OutputExistsError(f"{out} exists; choose a new folder for the new version", path=str(out))
    with staged_dir(out) as tmp:
        for p in sorted(src.iterdir()):
            if p.is_file():
                shutil.copy2(p, tmp / p.name)
        lineage = {
            "parent": f"{card.character}/{card.version}",
            "parent_weights_sha256": card.files.get(WEIGHTS_FILE),
            "change": change,
        }
        _install(tmp, prior, metrics, prints, version=out.name, lineage=lineage)
    return out


def _install(
    folder: Path,
    prior: ShapePrior,
    metrics: Optional[Mapping[str, Any]],
    prints: Optional[PrintLibrary] = None,
    **card_changes: Any,
) -> None:
    path = write_shape_prior(folder, prior)
    card = read_card(folder)
    files = dict(card.files)
    files[SHAPE_PRIOR_FILE] = file_sha256(path)
    if prints is not None:
        files[PRINTS_FILE] = file_sha256(write_print_library(folder, prints))
    all_metrics = {**card.metrics, **(metrics or {})}
    write_card(folder, dataclasses.replace(card, files=files, metrics=all_metrics, **card_changes))
    logger.info(
        "shape prior written to %s (anchors %s; targets %s)", path, ", ".join(prior.anchors), ", ".join(prior.targets)
    )


def next_version_dir(model_dir: Path) -> Path:
    """The folder a new version of this model goes to by default: ``v3`` -> ``v4``, ``v009`` -> ``v010``.

    Any other folder name gets ``_calibrated``; a name already taken gets the next free one.
    """
    from seamroto.fileio import next_free_dir

    path = Path(model_dir)
    name = path.name
    digits = name[1:]
    new = f"v{int(digits) + 1:0{len(digits)}d}" if name[:1] == "v" and digits.isdigit() else f"{name}_calibrated"
    return next_free_dir(path.parent / new)


def calibrate_command(
    model_dir: Path,
    shots: Sequence[Path],
    output: Path,
    *,
    prior_shots: Sequence[Path] = (),
    command: str = "",
    progress: Optional[Progress] = None,
) -> Dict[str, Any]:
    """``seamroto calibrate``: fit the flags on checked shots and write the new version to ``output``.

    Returns:
        ``{"model": output, "before": [FlagFigures...], "after": [...]}`` per checked shot.

    Raises:
        OutputExistsError: ``output`` exists (checked before any work).
        AnnotationError, ModelError, PlateError, CancelledError: bad input, or cancelled.
    """
    from seamroto.annotations import load_annotations
    from seamroto.pipeline import load_character

    out = Path(output)
    if out.exists():
        raise OutputExistsError(f"{out} exists; choose a new folder for the new version", path=str(out))
    if not shots:
        raise AnnotationError("no checked shot given: pass --shot CHECKED.nk (repeat)")
    character = load_character(Path(model_dir))
    checked_scripts = load_annotations(shots)
    checked = [checked_shot(character, a, progress) for a in checked_scripts]
    priors = load_annotations(prior_shots) if prior_shots else []
    error_model = character.shape_prior.error_model if character.shape_prior is not None else None
    before = [flag_figures(fuse_checked(character, s, character.shape_prior, error_model), s.truth) for s in checked]
    prior = calibrate_prior(character, checked, priors)
    after = [flag_figures(fuse_checked(character, s, prior, prior.error_model), s.truth) for s in checked]
    prints = learn_print_library(
        priors, character.rig, prior.anchors, character.info.discontinuous, progress=progress
    ) if priors else None
    library = prints if prints is not None else character.prints
    if library is not None:
        # the read-back's gains belong to this prior and these prints: measured again every time
        tracking = dataclasses.replace(character, shape_prior=prior, prints=library)
        prints = library.with_readout(calibrate_readout(tracking, checked, checked_scripts))
    changes = ["review flags calibrated on checked shots"]
    if priors:
        changes.append(
            "shape prior (with the replacement pieces' shape) learned again from the training scripts, "
            "with the anchors' and pieces' noise measured on the checked shots"
        )
        if prints is not None:
            changes.append("replacement pieces' print library from the training scripts' plates")
    if prints is not None and prints.readout is not None:
        changes.append("replacement pieces' landmarks read back from the snapped prints, weighed on the checked shots")
    change = "; ".join(changes)
    metrics: Dict[str, Any] = {
        "calibration": {
            "command": command,
            "checked_shots": [s.source for s in checked],
            "prior_shots": [a.source for a in priors],
            "bad_frame_px": BAD_FRAME_PX,
            "in_sample": True,
            "before": [f.to_json() for f in before],
            "after": [f.to_json() for f in after],
        }
    }
    if prints is not None and prints.readout is not None:
        metrics["calibration"]["piece_read_back"] = dict(prints.readout.stats)
    path = write_model_with_prior(Path(model_dir), prior, out, change, metrics, prints)
    return {"model": path, "before": before, "after": after, "shots": [s.source for s in checked]}
