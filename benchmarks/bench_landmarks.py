"""Landmark model benchmark: train on synthetic shots, then speed and accuracy of torch vs OpenVINO.

One run, side by side: eager torch vs OpenVINO FP32 vs INT8 crops/s at batch 1 and 8 (with
ratios), and held-out accuracy (mean / p95 px in full-frame coordinates) of each, on shots the
model never saw, cropped on the ground-truth face box (the crop stage alone). Also the
end-to-end ``predict_landmarks`` rate (crop + colour + inference) and the refinement pass.

    .venv/bin/python benchmarks/bench_landmarks.py --character mara --out /tmp/bench_landmarks
    .venv/bin/python benchmarks/bench_landmarks.py --model models/mara/v001   # skip training
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shlex
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from seamroto import colour, models  # noqa: E402
from seamroto.landmarks import (  # noqa: E402
    blend_refined,
    box_from_points,
    infer_crops,
    make_crops,
    patch_matrices,
    predict_landmarks,
    warp_crop,
)
from seamroto.progress import ConsoleProgress  # noqa: E402
from training.checkpoint import load_module_arrays  # noqa: E402
from training.dataset import StreamedShot, synth_shot  # noqa: E402
from training.evaluate import torch_predict  # noqa: E402
from training.net import LandmarkNet, NetConfig, build_net  # noqa: E402
from training.train import REFINER_PREFIX, TrainConfig, train_character  # noqa: E402

logger = logging.getLogger("bench_landmarks")

TRAIN_SEEDS = (1, 2, 3, 4, 5)
TEST_SEEDS = (101, 102, 103)
TRAIN_SIZE = (2048, 1080)
TEST_SIZE = (1920, 1080)
SPEED_CROPS = 256
SPEED_REPEATS = 3


def synth_fingerprint() -> str:
    """Short hash of the synth sources: a cache rendered by another synth version is not reused."""
    h = hashlib.sha256()
    for p in sorted((REPO / "seamroto" / "synth").glob("*.py")):
        h.update(p.read_bytes())
    return h.hexdigest()[:10]


def load_cached(cache: Path, character: str, seed: int, size: Tuple[int, int]) -> StreamedShot:
    """A synthetic shot, rendered once into ``cache`` as float16 .npy frames + ground truth JSON."""
    from seamroto.datamodel import LandmarkSample, LandmarkTrack, shape_from_arrays

    d = cache / f"{synth_fingerprint()}_{character}_{seed}_{size[0]}x{size[1]}"
    if not (d / "done").is_file():
        d.mkdir(parents=True, exist_ok=True)
        shot = synth_shot(character, seed, width=size[0], height=size[1])
        gt = {t.name: {str(f): [s.x, s.y] for f, s in t.samples.items()} for t in shot.tracks}
        hidden_json = {k: sorted(v) for k, v in shot.hidden.items()}
        shapes = {s.name: {"closed": s.closed, "keys": {str(f): s.points_array(f).tolist() for f in s.keys}}
                  for s in shot.shapes}
        (d / "gt.json").write_text(json.dumps({"tracks": gt, "hidden": hidden_json, "shapes": shapes}))
        for f, img in shot.iter_images():
            np.save(d / f"{f}.npy", img.astype(np.float16))
        (d / "done").write_text("1")
    data = json.loads((d / "gt.json").read_text())
    tracks = tuple(
        LandmarkTrack(n, {int(f): LandmarkSample(*xy) for f, xy in s.items()}) for n, s in data["tracks"].items()
    )
    shape_list = tuple(
        shape_from_arrays(n, s["closed"], {int(f): np.array(a) for f, a in s["keys"].items()})
        for n, s in data["shapes"].items()
    )
    frames = tuple(sorted({f for t in tracks for f in t.samples}))

    def stream() -> Any:
        for f in frames:
            yield f, np.load(d / f"{f}.npy").astype(np.float32)

    hidden: Dict[str, frozenset] = {k: frozenset(v) for k, v in data["hidden"].items()}
    return StreamedShot(f"synth:{character}:{seed}:{size[0]}x{size[1]}", tracks, frames, stream,
                        colour.LINEAR_SPACE, hidden, shape_list)


def gt_array(shot: StreamedShot, names: Sequence[str]) -> Dict[int, np.ndarray]:
    """Frame -> (L, 2) ground truth with NaN for unknown or hidden landmarks."""
    out: Dict[int, np.ndarray] = {}
    by = {t.name: t for t in shot.tracks}
    for f in shot.frames():
        a = np.full((len(names), 2), np.nan)
        for j, n in enumerate(names):
            s = by[n].samples.get(f) if n in by else None
            if s is not None and f not in shot.hidden.get(n, frozenset()):
                a[j] = (s.x, s.y)
        out[f] = a
    return out


def stats(err: np.ndarray) -> Dict[str, float]:
    e = err[np.isfinite(err)]
    return {"mean_px": float(e.mean()), "p95_px": float(np.percentile(e, 95)),
            "median_px": float(np.median(e)), "max_px": float(e.max()), "count": int(e.size)}


def rate(fn: Callable[[], Any], items: int) -> float:
    fn()
    best = float("inf")
    for _ in range(SPEED_REPEATS):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return items / best


def torch_nets_for(model_dir: Path) -> Tuple[LandmarkNet, Optional[LandmarkNet]]:
    """The eager torch networks of a model folder (face network, refiner or None)."""
    card = models.read_card(model_dir)
    net = build_net(NetConfig.from_json(card.architecture))
    ref = None if card.refiner is None else build_net(NetConfig.from_json(card.refiner.architecture))
    with np.load(model_dir / "weights.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    load_module_arrays(net, arrays, prefix="model/")
    if ref is not None:
        load_module_arrays(ref, arrays, prefix=REFINER_PREFIX)
        ref.eval()
    return net.eval(), ref


def torch_pipeline(
    net: LandmarkNet, ref: Optional[LandmarkNet], card: models.ModelCard, img: np.ndarray, box: np.ndarray,
    to_model: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """Both stages in eager torch, cropping exactly as ``predict_landmarks`` does."""
    crops, mats = make_crops(img, box, card.input_size, card.crop.scale, to_model)
    pts = np.stack([p @ m[:, :2].T + m[:, 2] for p, m in zip(torch_predict(net, crops), mats)])
    if ref is None or card.refiner is None:
        return pts
    info = card.refiner
    pm = patch_matrices(mats, pts, card.input_size, info.patch_size, info.patch_fraction)
    patches = to_model(np.stack([warp_crop(img, m, info.patch_size) for m in pm]))
    out = torch_predict(ref, patches, batch=256)
    k = np.arange(len(pm))
    sel = out[k, k % pts.shape[1]].astype(np.float64)
    refined = (np.einsum("kij,kj->ki", pm[:, :, :2], sel) + pm[:, :, 2]).reshape(pts.shape)
    return blend_refined(pts, refined, mats, info.blend)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--character", default="mara")
    ap.add_argument("--model", type=Path, help="existing model folder (skip training)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench_landmarks"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/bench_landmarks/cache"))
    ap.add_argument("--steps", type=int, default=None, help="face-network steps (default: TrainConfig)")
    ap.add_argument("--refiner-steps", type=int, default=None, help="refiner steps (default: RefineConfig)")
    ap.add_argument("--minutes", type=float, default=None, help="training time budget")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    command = " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])

    from seamroto.synth import CHARACTERS
    from seamroto.synth.characters import character_model

    character = character_model(CHARACTERS[args.character])
    t = time.perf_counter()
    train = [load_cached(args.cache, args.character, s, TRAIN_SIZE) for s in TRAIN_SEEDS]
    test = [load_cached(args.cache, args.character, s, TEST_SIZE) for s in TEST_SEEDS]
    logger.info("synthetic shots ready in %.0f s", time.perf_counter() - t)

    result: Dict[str, Any] = {"command": command, "threads": args.threads, "cpu_count": os.cpu_count()}
    if args.model is None:
        cfg = TrainConfig() if args.steps is None else TrainConfig(steps=args.steps)
        if args.refiner_steps is not None and cfg.refiner is not None:
            cfg = replace(cfg, refiner=replace(cfg.refiner, steps=args.refiner_steps))
        t, c = time.perf_counter(), time.process_time()
        model_dir = train_character(args.character, train, args.out / "models" / args.character / "bench",
                                    seed=args.seed, character=character, validation=test, config=cfg,
                                    progress=ConsoleProgress("train", 30.0), threads=args.threads,
                                    time_budget_s=None if args.minutes is None else 60.0 * args.minutes)
        result["train"] = {"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c,
                           "steps": models.read_card(model_dir).training.get("steps_done"),
                           "frames": len(train) * 48}
    else:
        model_dir = args.model
    card = models.read_card(model_dir)
    names = list(card.landmarks)
    result["model"] = str(model_dir)
    result["model_bytes"] = sum(p.stat().st_size for p in model_dir.iterdir())
    loaded = {p: models.load_model(model_dir, p) for p in card.precisions}
    net, ref = torch_nets_for(model_dir)

    def to_model(crop: np.ndarray) -> np.ndarray:
        return colour.to_model_space(crop, colour.LINEAR_SPACE)

    # Accuracy on held-out shots, full-frame px, ground-truth boxes.
    errs: Dict[str, List[np.ndarray]] = {k: [] for k in ["torch", *loaded, *(f"{p}_refine" for p in loaded)]}
    crops_all: List[np.ndarray] = []
    for shot in test:
        gt = gt_array(shot, names)
        for f, img in shot.iter_images():
            g = gt[f]
            if np.isfinite(g).all(axis=1).sum() < 2:
                continue
            box = box_from_points(g)[None]
            crops, mats = make_crops(img, box, card.input_size, card.crop.scale, to_model)
            crops_all.append(crops)
            errs["torch"].append(np.linalg.norm(torch_pipeline(net, ref, card, img, box, to_model)[0] - g, axis=-1))
            for p, m in loaded.items():
                pts, _ = predict_landmarks(m, img, box, convert=to_model, use_refiner=False)
                errs.setdefault(f"{p}_face_stage_only", []).append(np.linalg.norm(pts[0] - g, axis=-1))
            for p, m in loaded.items():
                pts, _ = predict_landmarks(m, img, box, convert=to_model)
                errs[p].append(np.linalg.norm(pts[0] - g, axis=-1))
                pts, _ = predict_landmarks(m, img, box, convert=to_model, refine=1)
                errs[f"{p}_refine"].append(np.linalg.norm(pts[0] - g, axis=-1))
    acc = {k: stats(np.concatenate(v)) for k, v in errs.items()}
    per_landmark = {n: float(v) for n, v in zip(names, np.nanmean(np.stack(errs["fp32"]), axis=0))}
    result["accuracy"] = acc
    result["per_landmark_mean_px_fp32"] = per_landmark

    # Speed: inference only, on prepared crops.
    crops = np.concatenate(crops_all)[:SPEED_CROPS]
    n = len(crops)
    speed: Dict[str, Dict[str, float]] = {}
    for bs in (1, 8):
        speed.setdefault("torch", {})[f"b{bs}"] = rate(partial(torch_predict, net, crops, bs), n)
        for p, m in loaded.items():
            speed.setdefault(p, {})[f"b{bs}"] = rate(partial(infer_crops, m, crops, bs), n)
    if ref is not None and card.refiner is not None:
        ps = card.refiner.patch_size
        nl = len(card.landmarks)
        reps = (nl * 8) // len(crops) + 1
        patches = np.ascontiguousarray(np.stack([c[:ps, :ps] for c in crops] * reps)[: nl * 8])
        npatch = len(patches)
        speed["torch_refiner"] = {"b34": rate(partial(torch_predict, ref, patches, nl), npatch)}
        for p, m in loaded.items():
            speed[f"{p}_refiner"] = {"b34": rate(partial(infer_crops, m.refiner, patches, nl), npatch)}
    result["speed_crops_per_s"] = speed
    result["ratios"] = {f"{p}_vs_torch_b{bs}": speed[p][f"b{bs}"] / speed["torch"][f"b{bs}"]
                        for p in loaded for bs in (1, 8)}
    if "torch_refiner" in speed:
        result["ratios"].update({f"{p}_refiner_vs_torch": speed[f"{p}_refiner"]["b34"] / speed["torch_refiner"]["b34"]
                                 for p in loaded})
    # End to end on a 2K frame: crop + colour + inference, one face per call.
    shot = test[0]
    frame, img = next(iter(shot.iter_images()))
    box = box_from_points(gt_array(shot, names)[frame])[None]
    calls = 64
    boxes8 = np.repeat(box, 8, axis=0)
    e2e: Dict[str, float] = {}

    def repeat(m: models.LandmarkModel, boxes: np.ndarray, times: int, use_refiner: bool = True) -> None:
        for _ in range(times):
            predict_landmarks(m, img, boxes, convert=to_model, use_refiner=use_refiner)

    for p, m in loaded.items():
        e2e[p] = rate(partial(repeat, m, box, calls), calls)
        e2e[f"{p}_face_stage_only"] = rate(partial(repeat, m, box, calls, False), calls)
        e2e[f"{p}_8_faces_per_frame"] = rate(partial(repeat, m, boxes8, calls // 8), calls)
    result["end_to_end_faces_per_s"] = e2e

    lines = [f"model {model_dir} ({result['model_bytes'] / 1e6:.1f} MB), {args.threads} threads"]
    if "train" in result:
        tr = result["train"]
        lines.append(f"training: {tr['steps']} steps, {tr['wall_s']:.0f} s wall, {tr['cpu_s']:.0f} s CPU")
    lines.append(f"{'':14}{'b1 crops/s':>12}{'b8 crops/s':>12}{'mean px':>10}{'p95 px':>9}")
    for k in ("torch", *loaded):
        a = acc[k]
        lines.append(f"{k:14}{speed[k]['b1']:12.0f}{speed[k]['b8']:12.0f}{a['mean_px']:10.3f}{a['p95_px']:9.3f}")
    for k in acc:
        if k not in speed:
            lines.append(f"{k:24}{'':14}{acc[k]['mean_px']:10.3f}{acc[k]['p95_px']:9.3f}")
    for k in speed:
        if k.endswith("refiner"):
            lines.append(f"{k} patches/s (34 per batch): {speed[k]['b34']:.0f}")
    lines.append("ratios: " + ", ".join(f"{k} {v:.1f}x" for k, v in result["ratios"].items()))
    lines.append("end to end: " + ", ".join(f"{k} {v:.0f}/s" for k, v in result["end_to_end_faces_per_s"].items()))
    for line in lines:
        logger.info("%s", line)
    out = args.json or args.out / "bench_landmarks.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    logger.info("results written to %s", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
