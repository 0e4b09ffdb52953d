"""Benchmark of face boxes + temporal fusion on synthetic puppet shots (issue 3 targets).

For each synthetic shot (1920x1080 by default) it measures:

* face boxes: ms/frame of ``face.locate_faces`` (model learned on other seeds), IoU vs truth,
  and whether out-of-frame frames are flagged;
* landmarks: per-frame detections are simulated as truth + Gaussian noise + outliers (or come
  from ``seamroto.landmarks`` when a trained model folder is given with ``--model``), LK flow
  is measured on the rendered plates, and ``fusion.fuse_tracks`` fuses them. Reported: mean
  error, p95, excess jitter (RMS of the second temporal difference of the error), for raw
  detections and fused tracks, and flag recall / false-positive share (a frame is "bad" when
  any landmark is more than ``BAD_PX`` off).

Targets (issue 3): excess jitter <= 0.3 px, flag recall >= 90 %, flag false positives <= 10 %.
Run: ``.venv/bin/python benchmarks/bench_fusion.py [--shots 3] [--frames 48]``.

Real detections, offline: ``--write-cache OUT --model models/mara/v7 --shot-dirs DIR...`` runs
the tracker's detection pass once per ``seamroto synth`` shot and stores its output (points,
confidences, LK flow both ways, face flags) with the ground truth in ``OUT/<shot>.npz``;
``--cached NPZ...`` then fuses those in well under a second per shot and prints the issue-3
figures, and ``--calibrate NPZ...`` fits ``confidence.ErrorModel`` on them (use a calibration
shot the character neither trained on nor is scored on, then judge held-out ones with ``--cached``).
``--shape-prior PRIOR`` (a ``shape_prior.json`` or a model folder holding one, see
``seamroto.shapeprior``) fuses with the character's geometric prior, and with the error model the
prior carries unless ``--calibrate`` fits one; ``--write-prior OUT.json`` stores the prior with the
error model just calibrated. ``--prior-cv NPZ...`` cross-validates the prior across cached
shots: each is fused with a prior learned from the others' ground truth (use training shots;
with ``--calibrate CAL.npz`` its anchor noise is measured on CAL).

The bundled character's calibrated prior is what ``seamroto calibrate --model BASE --shot CAL/gt.nk
--prior-shot .../mara_s{1..5}/gt.nk`` writes (``make demo-model-prior``); ``--calibrate`` and
``--prior-shots`` here fit the same error model and prior (``seamroto.calibration``) on cached shots.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from seamroto import confidence, face, flow, fusion, shapeprior
from seamroto.colour import LINEAR_SPACE, to_model_space
from seamroto.curves import excess_jitter_px
from seamroto.datamodel import tracks_to_array
from seamroto.synth import CHARACTERS, iter_frames, synth_truth

WIDTH, HEIGHT = 1920, 1080
BAD_PX = 3.0
DISCONTINUOUS = ("mouth_L", "mouth_top", "mouth_R", "mouth_bottom")
TRAIN_SEEDS = (901, 902, 903)
TRAIN_FRAMES = 4
# Simulated detector: per-axis noise (px at 1080p), outlier rate and size, confidences.
DET_SIGMA_PX = 1.0
OUTLIER_RATE = 0.03
OUTLIER_PX = (6.0, 20.0)
HIDDEN_CONF = 0.4


@dataclass
class ShotResult:
    name: str
    box_ms: float
    box_iou_min: float
    absent_flagged: str
    raw: Dict[str, float]
    fused: Dict[str, float]
    fused_cont: Dict[str, float]
    recall: float
    recall_cont: float
    bad_cont: int
    fp_share: float
    bad: int
    flagged: int
    fuse_ms: float
    sigmas: Tuple[float, float]


def _model_space(img: np.ndarray) -> np.ndarray:
    return to_model_space(img, LINEAR_SPACE)


def _error_stats(points: np.ndarray, truth: np.ndarray, cols: np.ndarray) -> Dict[str, float]:
    """Mean, p95 and excess jitter of ``points`` vs ``truth`` over landmarks ``cols``."""
    err = points[:, cols] - truth[:, cols]
    norm = np.linalg.norm(err, axis=2)
    acc = err[2:] - 2.0 * err[1:-1] + err[:-2]
    acc_norm = np.sqrt((acc**2).sum(axis=2))
    finite = np.isfinite(norm)
    return {
        "mean": float(np.nanmean(norm)) if finite.any() else float("nan"),
        "p95": float(np.nanpercentile(norm, 95)) if finite.any() else float("nan"),
        "jitter": float(np.sqrt(np.nanmean(acc_norm**2))) if np.isfinite(acc_norm).any() else float("nan"),
    }


def _simulate(truth: np.ndarray, hidden: np.ndarray, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    det = truth + rng.normal(0.0, DET_SIGMA_PX, truth.shape)
    out = (rng.random(truth.shape[:2]) < OUTLIER_RATE) & np.isfinite(truth).all(axis=2)
    mag = rng.uniform(*OUTLIER_PX, size=out.sum())
    ang = rng.uniform(0, 2 * np.pi, size=out.sum())
    det[out] += np.stack([mag * np.cos(ang), mag * np.sin(ang)], axis=1)
    conf = rng.uniform(0.75, 1.0, truth.shape[:2])
    conf[out] = rng.uniform(0.3, 0.9, out.sum())
    conf[hidden] *= HIDDEN_CONF
    return det, conf


def _face_model(character: str) -> face.FaceModel:
    samples = []
    for seed in TRAIN_SEEDS:
        truth = synth_truth(character, seed, frames=TRAIN_FRAMES, width=WIDTH, height=HEIGHT)
        for frame, img in iter_frames(character, seed, frames=TRAIN_FRAMES, width=WIDTH, height=HEIGHT):
            if frame in truth.face_boxes:
                samples.append((_model_space(img), truth.face_boxes[frame]))
    return face.learn_face_model(samples)


def run_shot(character: str, seed: int, frames: int, exit_frame: Optional[int]) -> ShotResult:
    rng = np.random.default_rng(seed)
    truth_shot = synth_truth(
        character, seed, frames=frames, width=WIDTH, height=HEIGHT, exit_frame=exit_frame
    )
    names = list(truth_shot.character.landmarks)
    numbers = list(truth_shot.shot.frames)
    truth = tracks_to_array(truth_shot.tracks, names, numbers)[..., :2]
    hidden = np.zeros(truth.shape[:2], dtype=bool)
    for j, name in enumerate(names):
        for fr in truth_shot.hidden.get(name, ()):
            hidden[numbers.index(fr), j] = True
    model = _face_model(character)

    grays: List[np.ndarray] = []
    producer = [0.0]

    def stream() -> Iterator[Tuple[int, np.ndarray]]:
        # rendering and colour conversion are timed here and taken out of the box timing.
        frames_iter = iter_frames(
            character, seed, frames=frames, width=WIDTH, height=HEIGHT, exit_frame=exit_frame
        )
        while True:
            start = time.perf_counter()
            item = next(frames_iter, None)
            if item is None:
                return
            ms = _model_space(item[1])
            grays.append(flow.to_gray_u8(ms))
            producer[0] += time.perf_counter() - start
            yield item[0], ms

    t0 = time.perf_counter()
    boxes = face.locate_faces(stream(), model)
    box_ms = (time.perf_counter() - t0 - producer[0]) * 1e3 / len(numbers)
    ious = []
    absent_ok = []
    for fr in numbers:
        gt = truth_shot.face_boxes.get(fr)
        b = boxes[fr]
        if gt is None:
            absent_ok.append(not b.ok)
        elif b.found:
            x0, y0 = max(b.x, 0.0), max(b.y, 0.0)
            x1, y1 = min(b.x + b.w, WIDTH), min(b.y + b.h, HEIGHT)
            ious.append(face.iou((x0, y0, x1 - x0, y1 - y0), gt))
    absent = f"{sum(absent_ok)}/{len(absent_ok)}" if absent_ok else "n/a"

    det, conf = _simulate(truth, hidden, rng)
    absent_frames = [fr for fr in numbers if fr not in truth_shot.face_boxes]
    det[[numbers.index(fr) for fr in absent_frames]] = np.nan
    disc = fusion.discontinuous_mask(names, DISCONTINUOUS)
    t1 = time.perf_counter()
    fwd, bwd = flow.landmark_flow(grays, det, skip=disc)
    flags = {fr: b.reason for fr, b in boxes.items() if not b.ok}
    absent_det = [fr for fr in numbers if boxes[fr].status == face.STATUS_LOST]
    fused = fusion.fuse_tracks(
        numbers, det, conf, fwd, bwd, landmark_names=names, discontinuous=DISCONTINUOUS,
        face_flags=flags, face_absent=absent_det,
    )
    fuse_ms = (time.perf_counter() - t1) * 1e3 / len(numbers)
    allc = np.ones(len(names), dtype=bool)
    err = np.linalg.norm(fused.points - truth, axis=2)
    present = np.isfinite(truth).all(axis=2).any(axis=1)
    # a landmark with truth but no output counts as wrong (it would need roto by hand).
    worst = np.where(np.isfinite(truth).all(axis=2), np.nan_to_num(err, nan=np.inf), 0.0)
    bad = present & (worst.max(axis=1) > BAD_PX)
    flagged = np.isin(numbers, fused.flagged_frames)
    # frames without a face count as correctly flagged when flagged, and are not "bad".
    recall = float((bad & flagged).sum() / bad.sum()) if bad.any() else 1.0
    cont_worst = np.where(disc[None, :], 0.0, worst).max(axis=1)
    bad_cont = present & (cont_worst > BAD_PX)
    recall_cont = float((bad_cont & flagged).sum() / bad_cont.sum()) if bad_cont.any() else 1.0
    fine_flagged = flagged & ~bad & present
    fp = float(fine_flagged.sum() / flagged.sum()) if flagged.any() else 0.0
    return ShotResult(
        name=f"{character}/{seed}" + (f" exit@{exit_frame}" if exit_frame else ""),
        box_ms=box_ms,
        box_iou_min=min(ious) if ious else float("nan"),
        absent_flagged=absent,
        raw=_error_stats(det, truth, allc & ~disc),
        fused=_error_stats(fused.points, truth, allc),
        fused_cont=_error_stats(fused.points, truth, allc & ~disc),
        recall=recall,
        recall_cont=recall_cont,
        bad_cont=int(bad_cont.sum()),
        fp_share=fp,
        bad=int(bad.sum()),
        flagged=int(flagged.sum()),
        fuse_ms=fuse_ms,
        sigmas=(fused.detection_sigma_px, fused.flow_sigma_px),
    )


def _print(r: ShotResult) -> None:
    print(f"{r.name}")
    print(
        f"  face boxes: {r.box_ms:.1f} ms/frame, IoU min {r.box_iou_min:.2f}, "
        f"frames without a face flagged {r.absent_flagged}"
    )
    print(
        f"  raw detections (continuous): mean {r.raw['mean']:.2f} px, p95 {r.raw['p95']:.2f}, "
        f"excess jitter {r.raw['jitter']:.2f}"
    )
    print(
        f"  fused (continuous):          mean {r.fused_cont['mean']:.2f} px, "
        f"p95 {r.fused_cont['p95']:.2f}, excess jitter {r.fused_cont['jitter']:.2f}"
    )
    print(
        f"  fused (all, mouth per-frame): mean {r.fused['mean']:.2f} px, "
        f"p95 {r.fused['p95']:.2f}, excess jitter {r.fused['jitter']:.2f}"
    )
    print(
        f"  flags: {r.flagged} flagged, {r.bad} bad (> {BAD_PX:g} px), recall {r.recall:.0%}, "
        f"fine among flagged {r.fp_share:.0%}; {r.bad_cont} bad on continuous landmarks, "
        f"recall {r.recall_cont:.0%} | sigmas det {r.sigmas[0]:.2f} / flow "
        f"{r.sigmas[1]:.3f} px | flow + fusion {r.fuse_ms:.1f} ms/frame",
        flush=True,
    )


def write_cache(model_dir: Path, shot_dir: Path, out: Path) -> Path:
    """Run the tracker's detection pass on one synthetic shot and store it with its truth."""
    from seamroto import pipeline
    from seamroto.colour import colourspace_for
    from seamroto.plates import PlateSequence
    from seamroto.progress import NullProgress
    from seamroto.synth import read_gt

    character = pipeline.load_character(model_dir)
    names = list(character.model.landmark_names)
    first = sorted((shot_dir / "plates").glob("*.exr"))[0].name
    stem, number, ext = first.rsplit(".", 2)
    pattern = str(shot_dir / "plates" / f"{stem}.{'#' * len(number)}.{ext}")
    seq = PlateSequence.open(pattern)
    # the pipeline's own detection step (plates -> face -> landmarks -> LK), as tracking runs it
    det = pipeline.detect_character_shot(seq, character, seq.colourspace or colourspace_for(pattern), NullProgress())
    truth = read_gt(shot_dir / "gt.json")
    frames = list(det.frames)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{shot_dir.name}.npz"
    nan_ap = np.full(det.points.shape[:2] + (2, 2), np.nan)
    np.savez_compressed(
        path, frames=np.array(frames), points=det.points, conf=det.conf,
        fwd_d=det.forward.displacement, fwd_r=det.forward.reliability,
        fwd_a=nan_ap if det.forward.aperture is None else det.forward.aperture,
        bwd_d=det.backward.displacement, bwd_r=det.backward.reliability,
        bwd_a=nan_ap if det.backward.aperture is None else det.backward.aperture,
        face_flags=json.dumps({str(k): v for k, v in det.face_flags.items()}),
        face_absent=np.array(det.face_absent, int), names=np.array(names),
        disc=np.array([n for n in character.info.discontinuous if n in names]),
        gt=tracks_to_array(truth.tracks, names, frames)[..., :2],
    )
    return path


def _load_cached(path: Path) -> Dict[str, object]:
    z = np.load(path, allow_pickle=False)
    d: Dict[str, object] = {k: z[k] for k in z.files}
    d["face_flags"] = {int(k): v for k, v in json.loads(str(d["face_flags"])).items()}
    d["names"] = [str(n) for n in z["names"]]
    d["disc"] = [str(n) for n in z["disc"]]
    return d


def _fuse_cached(
    d: Dict[str, object], params: fusion.FusionParams, prior: Optional[shapeprior.ShapePrior] = None
) -> fusion.FusedTracks:
    def pf(prefix: str) -> flow.PointFlow:
        ap = np.asarray(d[f"{prefix}_a"])
        return flow.PointFlow(
            np.asarray(d[f"{prefix}_d"]), np.asarray(d[f"{prefix}_r"]), ap if np.isfinite(ap).any() else None
        )

    return fusion.fuse_tracks(
        [int(f) for f in np.asarray(d["frames"])], np.asarray(d["points"]), np.asarray(d["conf"]),
        pf("fwd"), pf("bwd"), landmark_names=d["names"], discontinuous=d["disc"],  # type: ignore[arg-type]
        face_flags=d["face_flags"], face_absent=[int(f) for f in np.asarray(d["face_absent"])],  # type: ignore[arg-type]
        params=params, shape_prior=prior,
    )


def cached_figures(
    path: Path, params: Optional[fusion.FusionParams] = None, prior: Optional[shapeprior.ShapePrior] = None
) -> Dict[str, float]:
    """Issue-3 figures of fusion on one cached shot (as ``bench_track.py`` computes them)."""
    d = _load_cached(path)
    res = _fuse_cached(d, params or fusion.FusionParams(), prior)
    gt = np.asarray(d["gt"])
    disc = np.isin(d["names"], d["disc"])  # type: ignore[arg-type]
    err_vec = res.points - gt
    err = np.linalg.norm(err_vec, axis=2)
    ok = np.isfinite(err)
    bad = np.array([bool(np.nanmax(e) > BAD_PX) if np.isfinite(e).any() else False for e in err])
    flagged = np.isin(np.asarray(d["frames"]), res.flagged_frames)
    return {
        "mean": float(err[ok].mean()),
        "p95": float(np.percentile(err[ok], 95)),
        "jitter": excess_jitter_px(err_vec),
        "jitter_cont": excess_jitter_px(err_vec[:, ~disc]),
        "jitter_mouth": excess_jitter_px(err_vec[:, disc]),
        "recall": float((bad & flagged).sum() / bad.sum()) if bad.any() else 1.0,
        "fine": float((flagged & ~bad).sum() / flagged.sum()) if flagged.any() else 0.0,
        "bad": float(bad.sum()),
        "flagged": float(flagged.sum()),
    }


def calibrate_cached(
    paths: Sequence[Path], prior: Optional[shapeprior.ShapePrior] = None
) -> confidence.ErrorModel:
    """Fit the error model on cached shots with truth (posterior gain held at 1, hidden-move gain at its set value)."""
    from seamroto.calibration import fit_error_model

    docs = [_load_cached(path) for path in paths]
    # the evidence exactly as fusion feeds it to its error model, fitted as `seamroto calibrate` fits it
    fused = [_fuse_cached(d, fusion.FusionParams(error_model=None), prior) for d in docs]
    model = fit_error_model(fused, [np.asarray(d["gt"]) for d in docs])
    print(f"fitted on {len(paths)} shot(s): {model}")
    return model


def _read_prior(path: Path) -> shapeprior.ShapePrior:
    """A prior from a ``shape_prior.json`` or a model folder (the folder's card must list it)."""
    if path.is_dir():
        prior = shapeprior.load_shape_prior(path)
        if prior is None:
            raise SystemExit(f"{path} holds no shape prior its card lists")
        return prior
    return shapeprior.ShapePrior.from_dict(json.loads(path.read_text(encoding="utf-8")), str(path))


def learn_prior_cached(
    paths: Sequence[Path], noise_from: Sequence[Path] = ()
) -> shapeprior.ShapePrior:
    """A shape prior from the ground truth stored in cached shots (as training learns it).

    With ``noise_from`` (cached calibration shots), the anchors' errors are measured there, on
    fusion without a prior, and the prior is learned again with them (``AnchorNoise``).
    """
    from seamroto.rigtrain import seams_from_names

    docs = [_load_cached(p) for p in paths]
    names = docs[0]["names"]

    def learn(noise: Optional[shapeprior.AnchorNoise]) -> shapeprior.ShapePrior:
        return shapeprior.learn_shape_prior(
            [np.asarray(d["gt"]) for d in docs], names,  # type: ignore[arg-type]
            seams=seams_from_names(names), discontinuous=docs[0]["disc"],  # type: ignore[arg-type]
            anchor_noise=noise,
        )

    prior = learn(None)
    return learn(measure_noise_cached(noise_from, prior)) if noise_from else prior


def measure_noise_cached(paths: Sequence[Path], prior: shapeprior.ShapePrior) -> shapeprior.AnchorNoise:
    """How fusion (without a prior) gets the prior's anchors wrong on cached shots with truth."""
    tracked, truth = [], []
    names: List[str] = []
    for path in paths:
        d = _load_cached(path)
        tracked.append(_fuse_cached(d, fusion.FusionParams()).points)
        truth.append(np.asarray(d["gt"]))
        names = d["names"]  # type: ignore[assignment]
    return shapeprior.measure_anchor_noise(tracked, truth, names, prior)


def calibrate_prior(
    model_dir: Path, shots: Sequence[Path], calibration: Sequence[Path]
) -> shapeprior.ShapePrior:
    """The character's calibrated prior, as the bundled model carries it.

    Learned from the training ground truth (``shots``, .nk) with the anchor noise measured on
    the calibration shots (cached), and carrying the error model fitted there for fusion with it.
    """
    from seamroto.annotations import load_annotations
    from seamroto.calibration import calibrate_pieces, learn_prior_for_model, prune_parts

    annotations = load_annotations(shots)
    prior = learn_prior_for_model(model_dir, annotations)
    noise = measure_noise_cached(calibration, prior)
    prior = learn_prior_for_model(model_dir, annotations, anchor_noise=noise, parts=True)
    docs = [_load_cached(p) for p in calibration]
    prior = prune_parts(
        prior, lambda c: [_fuse_cached(d, fusion.FusionParams(error_model=None), c).points for d in docs],
        [np.asarray(d["gt"]) for d in docs], docs[0]["names"],  # type: ignore[arg-type]
    )
    tracked = [_fuse_cached(d, fusion.FusionParams(error_model=None), prior.with_pieces(None)).points for d in docs]
    prior = calibrate_pieces(
        prior, tracked, [np.asarray(d["points"]) for d in docs], [np.asarray(d["gt"]) for d in docs],
        docs[0]["names"],  # type: ignore[arg-type]
    )
    return prior.with_error_model(calibrate_cached(calibration, prior))


def _print_rows(label: str, rows: Sequence[Tuple[str, Dict[str, float]]]) -> None:
    keys = ["mean", "p95", "jitter", "jitter_cont", "jitter_mouth", "recall", "fine", "bad", "flagged"]
    print(f"{label:14s} " + " ".join(f"{k:>12s}" for k in keys))
    for name, r in rows:
        print(f"{name:14s} " + " ".join(f"{r[k]:12.3f}" for k in keys))
    print(f"{'mean':14s} " + " ".join(f"{np.mean([r[k] for _, r in rows]):12.3f}" for k in keys))


def _main_prior_cv(
    paths: Sequence[Path], error_model: Optional[confidence.ErrorModel], noise_from: Sequence[Path]
) -> None:
    """Leave-one-shot-out: fuse each shot without a prior and with one learned from the others.

    With the prior, the error model is ``error_model`` (one calibrated for fusion with a prior,
    e.g. the one a ``--shape-prior`` carries) or fusion's default; ``noise_from`` are the
    calibration shots the anchor noise is measured on (none: white noise).
    """
    params = fusion.FusionParams()
    if error_model is not None:
        params = dataclasses.replace(params, error_model=error_model)
    without, with_prior = [], []
    for k, path in enumerate(paths):
        prior = learn_prior_cached([p for m, p in enumerate(paths) if m != k], noise_from)
        without.append((path.stem, cached_figures(path)))
        with_prior.append((path.stem, cached_figures(path, params, prior)))
    _print_rows("no prior", without)
    _print_rows("held-out prior", with_prior)


def _main_cached(args: argparse.Namespace) -> None:
    params = fusion.FusionParams()
    prior = _read_prior(args.shape_prior) if args.shape_prior else None
    if args.prior_shots:
        if args.model is None or not args.calibrate:
            raise SystemExit("--prior-shots needs --model and --calibrate")
        prior = calibrate_prior(args.model, args.prior_shots, args.calibrate)
        print(f"prior learned from {len(args.prior_shots)} shot(s): {json.dumps(prior.stats)}")
    elif args.calibrate:
        model = calibrate_cached(args.calibrate, prior)
        prior = prior.with_error_model(model) if prior is not None else None
        params = dataclasses.replace(params, error_model=model)
    if prior is not None and prior.error_model is not None:
        params = dataclasses.replace(params, error_model=prior.error_model)
    if args.write_prior and prior is not None:
        args.write_prior.write_text(json.dumps(prior.to_dict(), indent=1) + "\n", encoding="utf-8")
        print(f"prior written to {args.write_prior}")
    if not args.cached:
        return
    keys = ["mean", "p95", "jitter", "jitter_cont", "jitter_mouth", "recall", "fine", "bad", "flagged"]
    print("shot       " + " ".join(f"{k:>12s}" for k in keys))
    rows = [cached_figures(p, params, prior) for p in args.cached]
    for p, r in zip(args.cached, rows):
        print(f"{p.stem:10s} " + " ".join(f"{r[k]:12.3f}" for k in keys))
    print("mean       " + " ".join(f"{np.mean([r[k] for r in rows]):12.3f}" for k in keys))
    print("targets: jitter_cont <= 0.3 px, recall >= 0.9, fine <= 0.1, p95 <= 3 px, mean <= 1 px")


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shots", type=int, default=4, help="shots, cycling the characters")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--write-cache", type=Path, help="store real detections of --shot-dirs here")
    parser.add_argument("--model", type=Path, help="character model folder for --write-cache")
    parser.add_argument("--shot-dirs", type=Path, nargs="+", default=[])
    parser.add_argument("--cached", type=Path, nargs="+", help="cached shots (.npz) to fuse and score")
    parser.add_argument("--calibrate", type=Path, nargs="+", help="cached shots to fit the error model on")
    parser.add_argument("--shape-prior", type=Path, help="shape_prior.json or a model folder holding one")
    parser.add_argument("--write-prior", type=Path, help="with --calibrate: the prior plus that error model")
    parser.add_argument("--prior-cv", type=Path, nargs="+", help="cached shots to cross-validate the prior on")
    parser.add_argument("--prior-shots", type=Path, nargs="+",
                        help="training ground truth (.nk) to learn the prior from (with --model, --calibrate)")
    args = parser.parse_args(argv)
    if args.write_cache:
        if args.model is None or not args.shot_dirs:
            parser.error("--write-cache needs --model and --shot-dirs")
        for shot_dir in args.shot_dirs:
            print("cached", write_cache(args.model, shot_dir, args.write_cache), flush=True)
        return
    if args.prior_cv:
        em = _read_prior(args.shape_prior).error_model if args.shape_prior else None
        _main_prior_cv(args.prior_cv, em, args.calibrate or ())
        return
    if args.cached or args.calibrate or args.prior_shots:
        _main_cached(args)
        return
    chars = sorted(CHARACTERS)
    results = []
    print(
        f"{WIDTH}x{HEIGHT}, {args.frames} frames/shot, simulated detector: sigma {DET_SIGMA_PX} px, "
        f"{OUTLIER_RATE:.0%} outliers of {OUTLIER_PX[0]:g}-{OUTLIER_PX[1]:g} px"
    )
    for k in range(args.shots):
        exit_frame = 1001 + args.frames - 8 if k == args.shots - 1 else None
        results.append(run_shot(chars[k % len(chars)], 100 + k, args.frames, exit_frame))
        _print(results[-1])
    jit = float(np.mean([r.fused_cont["jitter"] for r in results]))
    jit_all = float(np.mean([r.fused["jitter"] for r in results]))
    rec = float(np.mean([r.recall for r in results]))
    rec_cont = float(np.mean([r.recall_cont for r in results]))
    fp = float(np.mean([r.fp_share for r in results]))
    ms = float(np.mean([r.box_ms for r in results]))
    print("summary (mean over shots)  [target]")
    print(f"  excess jitter, continuous landmarks: {jit:.2f} px  [<= 0.3]")
    print(f"  excess jitter, all landmarks:        {jit_all:.2f} px")
    print(f"  flag recall:                          {rec:.0%}  [>= 90%]")
    print(f"  flag recall, continuous-landmark errors: {rec_cont:.0%}")
    print(f"  fine frames among flagged:            {fp:.0%}  [<= 10%]")
    print(f"  face boxes:                           {ms:.1f} ms/frame  [<= 15]")


if __name__ == "__main__":
    main()
