"""End-to-end tracking figures (issues 3 and 4), measured side by side in one run.

    .venv/bin/python benchmarks/bench_track.py --model models/mara/v7 --shots DIR [DIR ...]
    .venv/bin/python benchmarks/bench_track.py --model models/mara/v7 --speed DIR [--repeat 3]

Each DIR is a ``seamroto synth`` shot (plates + gt.json) the model did NOT train on. Per shot it
runs the whole tracker in memory and, in the same run, decodes every frame alone, then prints:
landmark error (mean, p95, excess jitter: RMS of the second temporal difference of the error,
over all landmarks and split into continuous ones and replacement pieces),
review flags (recall of frames with any landmark error > 3 px, share of flagged frames that are
fine), shape IoU and control-point jitter from tracked landmarks, seam-band coverage of the true
seam pixels and its area ratio, and track time / decode-only time.

``--speed DIR`` times what an artist runs, ``seamroto track`` end to end (model load, tracking,
writing tracks.nk, shapes.nk, seamroto.nk and result.json), against decoding the same frames
alone, alternating the two ``--repeat`` times and keeping each one's fastest run, so a busy
machine slows both alike. Decode-only uses the tracker's own reader settings (two frames decoded
side by side); the ratio against decoding one frame at a time is printed too.

``--occlude`` scores copies of the shots in which a puppeteer's rod crosses the face
(``benchmarks/occlude.py``): clean synthetic shots leave no frame more than 3 px off, so only
frames the tracker cannot see put the review flags to the test.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Optional

import numpy as np

from seamroto.curves import excess_jitter_px, rasterise, shape_iou
from seamroto.datamodel import tracks_to_array
from seamroto.pipeline import TrackOptions, track_shot
from seamroto.plates import PlateSequence
from seamroto.synth import read_gt

BAD_PX = 3.0


def _plates(shot_dir: Path) -> str:
    first = sorted((shot_dir / "plates").glob("*.exr"))[0].name
    stem, frame, ext = first.rsplit(".", 2)
    return str(shot_dir / "plates" / f"{stem}.{'#' * len(frame)}.{ext}")


def decode_only(pattern: str, workers: Optional[int] = None) -> float:
    """Seconds to decode every frame of the shot: the reader, decoders and read-ahead tracking uses.

    ``workers`` overrides the number of frames decoded side by side (1: one frame at a time,
    the reader as it was before tracking decoded two).
    """
    from seamroto.detection import DECODE_WORKERS, PREFETCH

    seq = PlateSequence.open(pattern)
    t0 = time.perf_counter()
    for _frame, _img in seq.iter_prepared(_keep, prefetch=PREFETCH, workers=workers or DECODE_WORKERS):
        pass
    return time.perf_counter() - t0


def _keep(img: np.ndarray) -> np.ndarray:
    return img


def speed(model: Path, shot_dir: Path, repeat: int, baseline: Optional[Path] = None) -> dict:
    """Fastest decode-only and fastest ``seamroto track`` wall time of ``repeat`` alternating runs.

    With ``baseline`` (another model folder, such as the previous version) its ``seamroto track``
    is timed in the same alternation, so the two models' ratio does not depend on the host's hour.
    """
    import tempfile

    from seamroto.pipeline import track_command

    pattern = _plates(shot_dir)
    decode, single, track, base = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(repeat):
            decode.append(decode_only(pattern))
            single.append(decode_only(pattern, workers=1))
            t0 = time.perf_counter()
            track_command(pattern, model, Path(tmp) / f"run{k}", TrackOptions())
            track.append(time.perf_counter() - t0)
            if baseline is not None:
                t0 = time.perf_counter()
                track_command(pattern, baseline, Path(tmp) / f"base{k}", TrackOptions())
                base.append(time.perf_counter() - t0)
    seq = PlateSequence.open(pattern)
    extra = {}
    if base:
        extra = {"baseline": str(baseline), "baseline_track_s": min(base),
                 "baseline_over_decode": min(base) / min(decode), "track_over_baseline": min(track) / min(base)}
    return {**extra,
        "shot": shot_dir.name,
        "frames": len(seq.frames),
        "size": [seq.width, seq.height],
        "decode_s": min(decode),
        "track_s": min(track),
        "track_over_decode": min(track) / min(decode),
        "decode_one_at_a_time_s": min(single),
        "track_over_decode_one_at_a_time": min(track) / min(single),
        "runs": {"decode_s": decode, "decode_one_at_a_time_s": single, "track_s": track, "baseline_track_s": base},
    }


def _seam_band_cover(result, truth, frame: int, w: int, h: int) -> tuple:
    band = next((s for s in result.shapes if s.name.endswith("_band") and frame in s.keys), None)
    seam = next((s for s in truth.shapes if s.name == "seam" and frame in s.keys), None)
    true_band = next((s for s in truth.shapes if s.name.endswith("_band") and frame in s.keys), None)
    if band is None or seam is None or true_band is None:
        return (np.nan, np.nan)
    seam_px = rasterise(seam.points_array(frame), False, w, h, ss=2) > 0.25
    ours = rasterise(band.points_array(frame), True, w, h, ss=2)
    theirs = rasterise(true_band.points_array(frame), True, w, h, ss=2)
    cover = float((ours[seam_px] > 0.5).mean()) if seam_px.any() else np.nan
    return cover, float(ours.sum() / max(theirs.sum(), 1e-6))


def _mean_or_nan(values: list) -> float:
    return float(np.mean(values)) if values else float("nan")


def bench_shot(model: Path, shot_dir: Path) -> dict:
    """Every figure for one held-out shot."""
    pattern = _plates(shot_dir)
    t_decode = decode_only(pattern)
    t0 = time.perf_counter()
    result, _shot, char, timings = track_shot(pattern, model, TrackOptions())
    t_track = time.perf_counter() - t0
    truth = read_gt(shot_dir / "gt.json")
    names = [t.name for t in result.tracks]
    frames = list(range(result.first, result.last + 1))
    ours = tracks_to_array(result.tracks, names, frames)[..., :2]
    gt = tracks_to_array(truth.tracks, names, frames)[..., :2]
    err_vec = ours - gt
    swapped = np.array([n in set(char.info.discontinuous) for n in names])
    err = np.linalg.norm(err_vec, axis=-1)
    ok = np.isfinite(err)
    bad = np.array([bool(np.nanmax(e) > BAD_PX) if np.isfinite(e).any() else False for e in err])
    flagged = np.array([f in set(result.flagged_frames) for f in frames])
    recall = float((bad & flagged).sum() / bad.sum()) if bad.any() else 1.0
    fine_share = float((flagged & ~bad).sum() / flagged.sum()) if flagged.any() else 0.0
    rig_landmarks = {sr.name: sr.landmarks for sr in char.rig.shapes}
    ious, jit, iou_min = [], {}, {}
    truth_shapes = {s.name: s for s in truth.shapes}
    for s in result.shapes:
        t = truth_shapes.get(s.name)
        if t is None:
            continue
        keys = [f for f in frames if f in s.keys and f in t.keys]
        if s.closed and not s.name.endswith("_band"):
            shape_ious = [shape_iou(s.points_array(f), t.points_array(f)) for f in keys[::4]]
            ious += shape_ious
            if shape_ious:
                iou_min[s.name] = round(float(np.min(shape_ious)), 4)
        pts = np.array([s.points_array(f)[:, :2] for f in keys])
        if len(pts) >= 3 and t.point_count == s.point_count:
            tp = np.array([t.points_array(f)[:, :2] for f in keys])
            jit[s.name] = excess_jitter_px(pts - tp)
    covers = [_seam_band_cover(result, truth, f, result.width, result.height) for f in frames[::6]]
    cover = np.array(covers, dtype=np.float64)
    return {
        "shot": shot_dir.name,
        "frames": len(frames),
        "mean_px": float(err[ok].mean()),
        "p95_px": float(np.percentile(err[ok], 95)),
        "excess_jitter_px": excess_jitter_px(err_vec),
        # replacement pieces change every frame: their "jitter" is the detector's per-frame error
        "jitter_continuous_px": excess_jitter_px(err_vec[:, ~swapped]),
        "jitter_replacement_px": excess_jitter_px(err_vec[:, swapped]) if swapped.any() else float("nan"),
        "flag_recall": recall,
        "flagged_fine_share": fine_share,
        "flagged": int(flagged.sum()),
        "bad_frames": int(bad.sum()),
        "shape_iou_mean": float(np.mean(ious)) if ious else float("nan"),
        "shape_iou_min": float(np.min(ious)) if ious else float("nan"),
        "shape_iou_min_per_shape": iou_min,
        "control_point_jitter_px": float(np.mean(list(jit.values()))) if jit else float("nan"),
        # shapes a replacement piece drives (the mouth): a new print every frame
        "control_point_jitter_continuous_px": _mean_or_nan(
            [v for k, v in jit.items() if not set(rig_landmarks.get(k, ())) & set(char.info.discontinuous)]
        ),
        "control_point_jitter_replacement_px": _mean_or_nan(
            [v for k, v in jit.items() if set(rig_landmarks.get(k, ())) & set(char.info.discontinuous)]
        ),
        "control_point_jitter_per_shape_px": jit,
        "seam_band_cover": float(np.nanmean(cover[:, 0])),
        "seam_band_area_ratio": float(np.nanmean(cover[:, 1])),
        "decode_s": t_decode,
        "track_s": t_track,
        "track_over_decode": t_track / t_decode,
        "stages_s": {k: round(v, 2) for k, v in timings.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--shots", type=Path, nargs="+", default=[], help="held-out shots to score")
    parser.add_argument("--speed", type=Path, help="a shot to time `seamroto track` on against decode-only")
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs for --speed (fastest kept)")
    parser.add_argument("--baseline-model", type=Path,
                        help="with --speed: also time this model folder (e.g. the previous version) in the same runs")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--occlude", action="store_true",
                        help="score copies of the shots with a rod crossing the face (benchmarks/occlude.py): "
                        "frames the tracker cannot see, for the review flags")
    args = parser.parse_args()
    if not args.shots and not args.speed:
        parser.error("give --shots, --speed or both")
    if args.speed:
        sp = speed(args.model, args.speed, args.repeat, args.baseline_model)
        print(
            f"{sp['shot']}: {sp['frames']} frames {sp['size'][0]}x{sp['size'][1]}: decode-only {sp['decode_s']:.2f} s, "
            f"seamroto track {sp['track_s']:.2f} s, ratio {sp['track_over_decode']:.2f}x (fastest of {args.repeat}); "
            f"against decoding one frame at a time ({sp['decode_one_at_a_time_s']:.2f} s): "
            f"{sp['track_over_decode_one_at_a_time']:.2f}x"
        )
        if "baseline" in sp:
            print(
                f"baseline {sp['baseline']}: seamroto track {sp['baseline_track_s']:.2f} s, ratio "
                f"{sp['baseline_over_decode']:.2f}x; --model / baseline {sp['track_over_baseline']:.2f}x"
            )
        if args.json and not args.shots:
            args.json.write_text(json.dumps({"speed": sp}, indent=1))
        if not args.shots:
            return
    if args.occlude:
        import tempfile

        from occlude import occlude_shot

        with tempfile.TemporaryDirectory() as tmp:
            rows = []
            for d in args.shots:
                copy = Path(tmp) / f"{d.name}_rod"
                occlude_shot(d, copy)
                rows.append(bench_shot(args.model, copy))
    else:
        rows = [bench_shot(args.model, d) for d in args.shots]
    keys = ["mean_px", "p95_px", "excess_jitter_px", "jitter_continuous_px", "jitter_replacement_px",
            "flag_recall", "flagged_fine_share", "shape_iou_mean",
            "shape_iou_min", "control_point_jitter_px", "control_point_jitter_continuous_px",
            "control_point_jitter_replacement_px", "seam_band_cover",
            "seam_band_area_ratio", "track_over_decode"]
    short = {"control_point_jitter_px": "cp_jitter", "control_point_jitter_continuous_px": "cp_jitter_cont",
             "control_point_jitter_replacement_px": "cp_jitter_repl"}
    print("shot        " + " ".join(f"{short.get(k, k)[:14]:>14s}" for k in keys) + "  bad flagged")
    for r in rows:
        counts = f"  {r['bad_frames']:3d} {r['flagged']:7d}"
        print(f"{r['shot']:12s}" + " ".join(f"{r[k]:14.3f}" for k in keys) + counts)
    summary = {k: float(np.nanmean([r[k] for r in rows])) for k in keys}
    print("mean        " + " ".join(f"{summary[k]:14.3f}" for k in keys))
    for r in rows:
        print(r["shot"], "stages:", r["stages_s"], f"decode {r['decode_s']:.1f}s track {r['track_s']:.1f}s")
    if args.json:
        args.json.write_text(json.dumps({"shots": rows, "mean": summary}, indent=1))


if __name__ == "__main__":
    main()
