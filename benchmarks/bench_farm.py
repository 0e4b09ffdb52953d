"""Farm scale: per-frame costs of ``seamroto track`` on a 2K shot, and a feature's projection on N nodes.

Measured on a synthetic 2K EXR shot (``seamroto.synth``) with a character model of the default
architecture (``--model`` for a real one; else a throwaway model of the default architecture is
trained for a few steps: its accuracy is poor, its cost per frame is the real one). Stages come
from ``pipeline.track_shot``'s timings: detect is the streamed pass (decode in the background,
overlapped with face search, landmark network and optical flow, so it is not a sum of parts),
fuse (the offline smoother), fit (rig shapes); write is ``pipeline.write_outputs`` (.nk scripts +
result.json). Decoding the same frames alone (same reader) is measured beside it for scale.
Per-shot overheads: process start (``python -m seamroto`` importing the pipeline) and model
load + sequence scan.

The projection: a feature of PERFORMANCES shots of FRAMES frames, one task per shot, one task at a
time per node like this machine; wall time = ceil(shots / nodes) x task time.

    .venv/bin/python benchmarks/bench_farm.py                         # 24 frames, 2048x1080
    .venv/bin/python benchmarks/bench_farm.py --model models/mara/v001 --frames 48
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_track import decode_only  # noqa: E402  (one decode-only timing for every benchmark)
from seamroto import config  # noqa: E402
from seamroto.detection import memory_bytes  # noqa: E402
from seamroto.fileio import next_free_dir, staged_dir  # noqa: E402
from seamroto.models import machine_threads  # noqa: E402
from seamroto.pipeline import TrackOptions, track_shot, write_outputs  # noqa: E402
from seamroto.synth import synth_command  # noqa: E402

logger = logging.getLogger("bench_farm")

CHARACTER = "mara"
SIZE = (2048, 1080)
TRAIN_SEED, TEST_SEED = 11, 12
TRAIN_FRAMES = 12
TRAIN_STEPS = 20  # a cost benchmark: the architecture matters, not the accuracy
PERFORMANCES, FEATURE_FRAMES = 2000, 100
NODE_COUNTS = (1, 10, 50, 100, 200)
REPEATS = 2
STAGES = ("detect", "fuse", "fit", "write")


def train_throwaway(root: Path) -> Path:
    """A model of the default architecture (refiner included when training has one), few steps."""
    from seamroto.annotations import load_annotations
    from seamroto.datamodel import Character
    from seamroto.rigtrain import learn_parts, write_parts
    from training.train import TrainConfig, train_character

    shot = synth_command(CHARACTER, TRAIN_SEED, TRAIN_FRAMES, SIZE[0], SIZE[1], root / "train_shot", ("exr",))
    annotations = load_annotations([str(shot / "gt.nk")])
    parts = learn_parts(CHARACTER, annotations)
    rig = parts.rig
    character = Character(CHARACTER, tuple(rig.landmark_names), parts.info.seams, rig.shape_specs())  # type: ignore[attr-defined]
    cfg = dataclasses.replace(TrainConfig(), steps=TRAIN_STEPS, warmup_steps=1, checkpoint_every_steps=0, int8=False)
    refiner = getattr(cfg, "refiner", None)
    if refiner is not None:
        cfg = dataclasses.replace(cfg, refiner=dataclasses.replace(refiner, steps=TRAIN_STEPS))  # type: ignore[call-arg]
    return train_character(
        CHARACTER, annotations, root / "models" / CHARACTER / "v001", config=cfg, character=character,
        extra_files=lambda folder: write_parts(folder, parts),
    )


def process_start_s() -> float:
    """Seconds for a fresh ``python`` to import what a farm task imports before its first frame."""
    code = "import seamroto.pipeline, seamroto.batch, openvino, cv2, OpenImageIO"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t0


def measure(plates: str, model: Path, out: Path) -> Dict[str, float]:
    """Seconds per stage for one run of the shot (plus ``overhead``: model load and scan)."""
    result, shot, _, t = track_shot(plates, model, TrackOptions())
    t0 = time.perf_counter()
    with staged_dir(out) as tmp:
        write_outputs(tmp, result, shot, seam_width_px=config.DEFAULT_SEAM_BAND_PX)
    write = time.perf_counter() - t0
    stages = {
        "detect": sum(t.get(k, 0.0) for k in ("decode", "face", "landmarks", "flow_prep", "flow")),
        "fuse": t["fusion"],
        "fit": t["fit"],
        "write": write,
    }
    stages["overhead"] = t["total"] - sum(v for k, v in stages.items() if k != "write")
    return stages


def project(task_s: float, nodes: Sequence[int]) -> List[str]:
    frames = PERFORMANCES * FEATURE_FRAMES
    lines = [f"feature: {PERFORMANCES} performances x {FEATURE_FRAMES} frames = {frames} frames"]
    node_hours = PERFORMANCES * task_s / 3600
    lines.append(f"  one task (shot) on one node like this: {task_s:.1f} s; node-hours: {node_hours:.1f}")
    for n in nodes:
        wall = math.ceil(PERFORMANCES / n) * task_s
        lines.append(f"  {n:4d} node(s): {wall / 3600:7.2f} h wall")
    return lines


def main(argv: Sequence[str] = ()) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="a character model folder (default: train a throwaway one)")
    ap.add_argument("--frames", type=int, default=24, help="frames of the synthetic 2K shot (default: 24)")
    ap.add_argument("--out", type=Path, default=None, help="work folder (default: a temp folder)")
    args = ap.parse_args(list(argv) or None)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    root = args.out or Path(tempfile.mkdtemp(prefix="bench_farm_"))
    root.mkdir(parents=True, exist_ok=True)

    model = args.model or train_throwaway(root)
    shot = root / f"bench_shot_{args.frames}f"
    if not (shot / "gt.json").exists():  # a re-run with the same --out reuses the rendered shot
        shot = synth_command(CHARACTER, TEST_SEED, args.frames, SIZE[0], SIZE[1], shot, ("exr",))
    plates = str(shot / "plates" / f"{CHARACTER}_s{TEST_SEED}.####.exr")
    frame_bytes = statistics.mean(p.stat().st_size for p in (shot / "plates").glob("*.exr"))
    start = process_start_s()
    runs = [measure(plates, model, next_free_dir(root / f"track_{i}")) for i in range(REPEATS + 1)][1:]  # 1st: warm-up
    best = {k: min(r[k] for r in runs) for k in runs[0]}
    n = args.frames

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {machine_threads()} cores, load average {load:.1f}; {SIZE[0]}x{SIZE[1]} EXR (half, PIZ), "
          f"{n} frames, {frame_bytes / 1e6:.1f} MB/frame; model {model}")
    print(f"{'stage':10s} {'ms/frame':>9s}")
    for k in STAGES:
        print(f"{k:10s} {1000 * best[k] / n:9.1f}")
    per_frame = sum(best[k] for k in STAGES) / n
    print(f"{'total':10s} {1000 * per_frame:9.1f}   ({1 / per_frame:.1f} frames/s)")
    decode = min(decode_only(plates) for _ in range(REPEATS))
    print(f"(decode alone, same reader: {1000 * decode / n:.1f} ms/frame)")
    per_shot = start + best["overhead"]
    print(f"per shot: process start {start:.2f} s + model load/scan {best['overhead']:.2f} s")
    task = per_shot + FEATURE_FRAMES * per_frame
    for line in project(task, NODE_COUNTS):
        print(line)
    memory = memory_bytes(FEATURE_FRAMES, SIZE[0], SIZE[1])
    print(f"memory per {FEATURE_FRAMES}-frame task (upper bound): {memory / 1e9:.2f} GB; plates read for the feature: "
          f"{PERFORMANCES * FEATURE_FRAMES * frame_bytes / 1e12:.2f} TB")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}  (work folder {root})")
    if os.environ.get("BENCH_FARM_KEEP") is None and args.out is None:
        import shutil

        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
