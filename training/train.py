"""Few-shot training of a character's landmark model on CPU, ending in a complete model folder.

Deterministic per seed: the weights come from ``torch.manual_seed(seed)`` and batch ``k`` is a
pure function of ``(seed, k)`` (see ``CropSampler.batch``), so a run interrupted at any step and
resumed from its checkpoint ends with the same weights as an uninterrupted run. Ctrl-C or a
cancelled ``Progress`` saves a checkpoint between steps (never mid-step) and raises
``CancelledError``; the model folder itself appears only when complete (``staged_dir``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import math
import shlex
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Protocol, Sequence, Tuple, Union

import numpy as np
import torch

import seamroto
from seamroto import colour
from seamroto.datamodel import Annotation, Character
from seamroto.errors import CancelledError, ModelError
from seamroto.fileio import next_free_dir, staged_dir
from seamroto.landmarks import blend_refined, infer_crops
from seamroto.models import (
    CARD_NAME,
    CropRule,
    LandmarkModel,
    ModelCard,
    RefinerInfo,
    file_sha256,
    load_model,
    read_card,
    verify_files,
    write_card,
)
from seamroto.progress import NullProgress, Progress
from training.augment import AugmentConfig
from training.checkpoint import (
    load_module_arrays,
    load_optimizer_state,
    module_arrays,
    optimizer_state,
    read_checkpoint,
    remove_checkpoint,
    save_checkpoint,
)
from training.dataset import (
    AnnotatedFrames,
    Batch,
    CropSampler,
    DataDigest,
    FrameRecord,
    annotation_shot,
    error_stats,
    frame_errors,
    landmark_order,
    load_records,
    seam_indices,
)
from training.evaluate import evaluate_records, fit_blend, torch_predict, two_stage
from training.export import export_fp32, export_ir
from training.net import LandmarkNet, NetConfig, build_net
from training.refine import PatchRecord, PatchSampler, RefineConfig, patch_records

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "weights.npz"
CHECKPOINT_SUFFIX = ".checkpoint"
MAX_THREADS = 2
LR_FLOOR = 0.02
# Wall time of a refiner step relative to a face-network step (measured, 2 threads).
REFINER_STEP_COST = 0.5
DIR_MODE = 0o755
FILE_MODE = 0o644


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters; recorded in the card and checked on resume."""

    input_size: int = 128
    heatmap_stride: int = 4
    crop_scale: float = 1.4
    batch_size: int = 16
    steps: int = 1800
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    heatmap_weight: float = 1.0
    heatmap_sigma_cells: float = 1.0
    checkpoint_every_steps: int = 200
    holdout_fraction: float = 0.1
    int8: bool = True
    augment: AugmentConfig = AugmentConfig()
    refiner: Optional[RefineConfig] = RefineConfig()

    def to_json(self) -> Dict[str, Any]:
        """JSON-ready dict (augmentation and refiner nested)."""
        return asdict(self)


def lr_at(step: int, cfg: TrainConfig, total: int) -> float:
    """Linear warm-up then cosine decay to ``LR_FLOOR`` x lr (stateless, so resume is exact)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    return cfg.lr * (LR_FLOOR + (1 - LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def gaussian_targets(points: torch.Tensor, size: int, stride: int, sigma_cells: float) -> torch.Tensor:
    """Normalised Gaussian heatmaps (B, L, H, W) centred on ``points`` (crop px)."""
    grid = (torch.arange(size, dtype=torch.float32) + 0.5) * stride
    s = sigma_cells * stride
    gx = torch.exp(-((grid[None, None, :] - points[..., 0:1]) ** 2) / (2 * s * s))
    gy = torch.exp(-((grid[None, None, :] - points[..., 1:2]) ** 2) / (2 * s * s))
    t = gy[..., :, None] * gx[..., None, :]
    return t / t.sum(dim=(-1, -2), keepdim=True).clamp_min(1e-12)


def landmark_loss(
    pred: torch.Tensor,
    prob: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    cfg: TrainConfig,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Masked L1 in heatmap cells plus a Jensen-Shannon heatmap-shape term (DSNT-style).

    The shape term keeps each heatmap a single peak, so the soft-argmax is not pulled by
    stray mass and the spread-based confidence means something. Unknown landmarks (mask
    False) contribute nothing.
    """
    m = mask.float()
    denom = m.sum().clamp_min(1.0)
    l1 = ((pred - target).abs().sum(-1) / cfg.heatmap_stride * m).sum() / denom
    if cfg.heatmap_weight <= 0:
        return l1, l1.detach()
    q = gaussian_targets(target, prob.shape[-1], cfg.heatmap_stride, cfg.heatmap_sigma_cells)
    mix = 0.5 * (prob + q)
    eps = 1e-10
    js = 0.5 * (prob * (torch.log(prob + eps) - torch.log(mix + eps))).sum((-1, -2)) + 0.5 * (
        q * (torch.log(q + eps) - torch.log(mix + eps))
    ).sum((-1, -2))
    js = (js * m).sum() / denom
    return l1 + cfg.heatmap_weight * js, l1.detach()


@contextlib.contextmanager
def _sigint_flag() -> Iterator[List[bool]]:
    """Turn Ctrl-C into a flag checked between steps (main thread only), restoring on exit."""
    flag = [False]
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: Any) -> None:
        flag[0] = True
        logger.warning("interrupt: finishing this step, then saving a checkpoint")

    old = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, old)


def _run_key(net_cfg: NetConfig, cfg: TrainConfig, seed: int, data_sha: str, total: int) -> Dict[str, Any]:
    """What a checkpoint must match to be resumed (else it belongs to another run)."""
    return {
        "net": net_cfg.to_json(),
        "train": cfg.to_json(),
        "seed": seed,
        "data_sha256": data_sha,
        "total_steps": total,
    }


class BatchSource(Protocol):
    """Anything that gives batch ``step`` of a seeded run (``CropSampler``, ``PatchSampler``)."""

    def batch(self, seed: int, step: int, batch_size: int) -> Batch:
        """Batch ``step``."""


def train_loop(
    net: LandmarkNet,
    sampler: BatchSource,
    cfg: TrainConfig,
    *,
    seed: int,
    total_steps: int,
    checkpoint_dir: Optional[Path] = None,
    resume: bool = False,
    progress: Optional[Progress] = None,
    run_key: Optional[Dict[str, Any]] = None,
    time_budget_s: Optional[float] = None,
    save_final: bool = False,
    label: str = "",
) -> int:
    """Optimise ``net`` for ``total_steps`` steps; returns the steps completed.

    ``save_final`` also checkpoints the finished state, so a later stage can be resumed
    without redoing this one.

    Raises:
        CancelledError: Ctrl-C or ``progress.cancelled``; a checkpoint was saved first (when
            ``checkpoint_dir`` is set) and ``resume=True`` continues from it.
        ModelError: ``resume`` found a checkpoint from a different run.
    """
    progress = progress or NullProgress()
    key = run_key or {}
    net.train()
    net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start = 0
    if resume and checkpoint_dir is not None:
        got = read_checkpoint(checkpoint_dir)
        if got is not None:
            arrays, meta = got
            if meta.get("run") != key:
                raise ModelError(
                    "the checkpoint belongs to another training run (data, seed or settings "
                    "differ); delete it or train without --resume",
                    path=str(checkpoint_dir),
                )
            load_module_arrays(net, arrays)
            load_optimizer_state(opt, arrays, meta["optimizer"])
            torch.set_rng_state(torch.from_numpy(np.array(arrays["torch_rng"])))
            start = int(meta["step"])
            logger.info("resuming from step %d of %d", start, total_steps)

    def save(step: int) -> None:
        if checkpoint_dir is None:
            return
        arrays = module_arrays(net)
        opt_arrays, opt_meta = optimizer_state(opt)
        arrays.update(opt_arrays)
        arrays["torch_rng"] = torch.get_rng_state().numpy()
        save_checkpoint(checkpoint_dir, arrays, {"step": step, "run": key, "optimizer": opt_meta})

    t0 = time.monotonic()
    step = start
    loss_avg: Optional[float] = None
    with _sigint_flag() as interrupted:
        while step < total_steps:
            if interrupted[0] or progress.cancelled:
                save(step)
                raise CancelledError(f"training cancelled at step {step} of {total_steps}; "
                                     "run again with resume to continue")
            if time_budget_s is not None and time.monotonic() - t0 > time_budget_s:
                logger.warning("time budget of %.0f s reached at step %d of %d", time_budget_s, step, total_steps)
                break
            batch = sampler.batch(seed, step, cfg.batch_size)
            x = torch.from_numpy(batch.crops).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
            target = torch.from_numpy(batch.points)
            mask = torch.from_numpy(batch.mask)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg, total_steps)
            pred, _, prob = net.forward_train(x)
            loss, l1 = landmark_loss(pred, prob, target, mask, cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            lv = float(l1) * cfg.heatmap_stride
            loss_avg = lv if loss_avg is None else 0.98 * loss_avg + 0.02 * lv
            progress.update(step, total_steps, f"{label}L1 {loss_avg:.3f} px")
            if cfg.checkpoint_every_steps and step % cfg.checkpoint_every_steps == 0 and step < total_steps:
                save(step)
    if save_final and step > start:
        save(step)
    net.eval()
    return step


ShotLike = Union[Annotation, AnnotatedFrames]


def _as_frames(items: Sequence[ShotLike]) -> List[AnnotatedFrames]:
    out: List[AnnotatedFrames] = []
    for a in items:
        out.append(annotation_shot(a) if isinstance(a, Annotation) else a)
    return out


def _split_holdout(records: List[FrameRecord], fraction: float) -> Tuple[List[FrameRecord], List[FrameRecord]]:
    """Hold out the last ``fraction`` of each shot's frames (a block, so less correlated)."""
    if fraction <= 0:
        return records, []
    train: List[FrameRecord] = []
    held: List[FrameRecord] = []
    by_source: Dict[str, List[FrameRecord]] = {}
    for r in records:
        by_source.setdefault(r.source, []).append(r)
    for recs in by_source.values():
        recs = sorted(recs, key=lambda r: r.frame)
        k = int(round(len(recs) * fraction))
        if len(recs) - k < 1:
            k = 0
        train += recs[: len(recs) - k]
        held += recs[len(recs) - k :]
    return train, held


def _share_permissions(folder: Path) -> None:
    """World-readable model folder (temp files are created 0600/0700): farms read models."""
    folder.chmod(DIR_MODE)
    for p in folder.rglob("*"):
        p.chmod(DIR_MODE if p.is_dir() else FILE_MODE)


def _command_line() -> str:
    return " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])


def _load_base(base_model_dir: Path) -> Tuple[ModelCard, Dict[str, np.ndarray]]:
    card = read_card(base_model_dir)
    verify_files(base_model_dir, card)
    if WEIGHTS_NAME not in card.files:
        raise ModelError(
            f"the base model has no {WEIGHTS_NAME}, so it cannot be fine-tuned; train from scratch",
            path=str(base_model_dir),
        )
    with np.load(Path(base_model_dir) / WEIGHTS_NAME, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return card, arrays


def train_character(
    name: str,
    annotations: Sequence[ShotLike],
    out_dir: Union[str, Path],
    *,
    seed: int = 0,
    steps: Optional[int] = None,
    epochs: Optional[float] = None,
    time_budget_s: Optional[float] = None,
    base_model_dir: Optional[Union[str, Path]] = None,
    progress: Optional[Progress] = None,
    character: Optional[Character] = None,
    validation: Sequence[ShotLike] = (),
    config: TrainConfig = TrainConfig(),
    resume: bool = False,
    checkpoint_dir: Optional[Union[str, Path]] = None,
    threads: Optional[int] = None,
    extra_files: Optional[Callable[[Path], Any]] = None,
) -> Path:
    """Train (or fine-tune) a character's landmark model and write its model folder.

    Two stages when ``config.refiner`` is set: the face-crop network, then the per-landmark
    patch refiner (``training.refine``); the time budget is split between them in proportion
    to their steps.

    Args:
        name: character name (card and folder).
        annotations: ``Annotation`` objects (frames from plates) or ``AnnotatedFrames`` (decoded).
        out_dir: model folder to create, e.g. ``models/<name>/v001``; when it exists the next
            free ``_vN`` is used (a re-run never overwrites).
        seed: run seed (weights and every batch).
        steps: first-stage optimiser steps; else ``epochs`` x frames / batch; else ``config.steps``.
        epochs: alternative to ``steps``.
        time_budget_s: stop early (and still export) when training exceeds this.
        base_model_dir: fine-tune from this model (``--from``); landmarks must match.
        progress: receives (step, total) over both stages; ``cancelled`` stops with a checkpoint.
        character: rig with landmark order and seams (seam augmentation needs it).
        validation: shots held out for the card's metrics; else a block of each shot's frames.
        config: hyper-parameters.
        resume: continue from the checkpoint of an interrupted identical run.
        checkpoint_dir: where checkpoints go (default: hidden folder beside ``out_dir``).
        threads: torch threads (default: the machine's, at most ``MAX_THREADS``).
        extra_files: called with the staged folder to add files (rig, facts) before the card
            records every file's sha256.

    Returns:
        The model folder written.

    Raises:
        CancelledError: interrupted; a checkpoint was saved.
        AnnotationError, ModelError: unusable training data or base model.
    """
    from seamroto.models import machine_threads

    torch.set_num_threads(threads or min(MAX_THREADS, machine_threads()))
    out_dir = Path(out_dir)
    ckpt = Path(checkpoint_dir) if checkpoint_dir else out_dir.with_name(f".{out_dir.name}{CHECKPOINT_SUFFIX}")
    shots = _as_frames(annotations)
    val_shots = _as_frames(validation)
    base_card: Optional[ModelCard] = None
    base_arrays: Optional[Dict[str, np.ndarray]] = None
    if base_model_dir is not None:
        base_card, base_arrays = _load_base(Path(base_model_dir))
        names = list(base_card.landmarks)
        net_cfg = NetConfig.from_json(base_card.architecture)
        config = replace(config, input_size=net_cfg.input_size, heatmap_stride=net_cfg.heatmap_stride,
                         crop_scale=base_card.crop.scale)
    else:
        names = landmark_order(shots, character)
        net_cfg = NetConfig(len(names), input_size=config.input_size, heatmap_stride=config.heatmap_stride)
    rcfg = config.refiner
    size, scale = config.input_size, config.crop_scale

    patches: Dict[Tuple[str, int], PatchRecord] = {}

    def keep_patches(img: np.ndarray, rec: FrameRecord, cs: str) -> None:
        if rcfg is not None:
            patches[(rec.source, rec.frame)] = patch_records(img, rec, size=size, crop_scale=scale, cfg=rcfg,
                                                             colourspace=cs)

    digest = DataDigest()
    records = load_records(shots, names, size=size, crop_scale=scale, digest=digest, on_frame=keep_patches)
    data_sha = digest.hexdigest()
    if val_shots:
        held = load_records(val_shots, names, size=size, crop_scale=scale, on_frame=keep_patches)
        train_recs = records
    else:
        train_recs, held = _split_holdout(records, config.holdout_fraction)
    seams = seam_indices(character, names)
    sampler = CropSampler(train_recs, size=size, crop_scale=scale, augment=config.augment, seams=seams)
    if steps is None:
        steps = (int(math.ceil(epochs * len(train_recs) / config.batch_size))
                 if epochs is not None else config.steps)
    config = replace(config, steps=steps)
    ref_steps = 0 if rcfg is None else rcfg.steps
    all_steps = steps + ref_steps
    budget1 = None
    if time_budget_s is not None:
        budget1 = time_budget_s * steps / (steps + ref_steps * REFINER_STEP_COST)

    torch.manual_seed(seed)
    net = build_net(net_cfg)
    if base_arrays is not None:
        load_module_arrays(net, base_arrays)
    key = _run_key(net_cfg, config, seed, data_sha, steps)
    if base_card is not None:
        key["base"] = base_card.files.get(WEIGHTS_NAME)
    t0 = time.monotonic()
    done = train_loop(net, sampler, config, seed=seed, total_steps=steps, checkpoint_dir=ckpt / "stage1",
                      resume=resume, progress=_Offset(progress, 0, all_steps), run_key=key,
                      time_budget_s=budget1, save_final=rcfg is not None, label="face ")
    train_s = time.monotonic() - t0
    logger.info("face network: %d steps in %.0f s", done, train_s)

    refiner: Optional[LandmarkNet] = None
    ref_cfg: Optional[NetConfig] = None
    ref_done = 0
    if rcfg is not None:
        ref_cfg = refiner_net_config(len(names), rcfg)
        psampler = PatchSampler([patches[(r.source, r.frame)] for r in train_recs], size=size, crop_scale=scale,
                                cfg=rcfg, augment=config.augment)
        torch.manual_seed(seed + 1)
        refiner = build_net(ref_cfg)
        if base_arrays is not None and any(k.startswith(REFINER_PREFIX) for k in base_arrays):
            load_module_arrays(refiner, base_arrays, prefix=REFINER_PREFIX)
        rtrain = refiner_train_config(config, rcfg)
        rkey = {**_run_key(ref_cfg, rtrain, seed, data_sha, rcfg.steps), "stage": "refiner"}
        t1 = time.monotonic()
        budget2 = None if time_budget_s is None else max(0.0, time_budget_s - (t1 - t0))
        ref_done = train_loop(refiner, psampler, rtrain, seed=seed, total_steps=rcfg.steps,
                              checkpoint_dir=ckpt / "refiner", resume=resume,
                              progress=_Offset(progress, steps, all_steps), run_key=rkey, time_budget_s=budget2,
                              label="refiner ")
        logger.info("refiner: %d steps in %.0f s", ref_done, time.monotonic() - t1)
    train_s = time.monotonic() - t0

    target = next_free_dir(out_dir)
    with staged_dir(target) as tmp:
        arrays = module_arrays(net)
        if refiner is not None:
            arrays.update(module_arrays(refiner, prefix=REFINER_PREFIX))
        np.savez(tmp / WEIGHTS_NAME, **arrays)  # type: ignore[arg-type]
        held_patches = [patches[(r.source, r.frame)] for r in held] if refiner is not None else []
        refiner_info: Optional[RefinerInfo] = None
        if refiner is not None and rcfg is not None and ref_cfg is not None:
            refiner_info = RefinerInfo(rcfg.patch_size, rcfg.patch_fraction, architecture=ref_cfg.to_json())
            export_fp32(refiner, tmp / refiner_info.xml)
            if rcfg.blend:
                blend = fit_blend(lambda c: torch_predict(net, c), lambda c: torch_predict(refiner, c, 256),
                                  sampler, train_recs, [patches[(r.source, r.frame)] for r in train_recs],
                                  refiner_info, seed)
                refiner_info = replace(refiner_info, blend=blend)
        held_crops, held_mats = sampler.eval_crops(held) if held else (None, None)

        def held_error(points_crop: np.ndarray) -> float:
            # The whole pipeline, so INT8 is judged by what the artist gets.
            assert held_crops is not None and held_mats is not None
            p1, p2 = two_stage(lambda _c: points_crop,
                               None if refiner is None else (lambda c: torch_predict(refiner, c, 256)),
                               held_crops, held_mats, held_patches, refiner_info, sampler.to_model, size)
            pred = p1 if p2 is None or refiner_info is None else blend_refined(p1, p2, held_mats, refiner_info.blend)
            return float(frame_errors(pred, held).mean())

        calib, _ = sampler.eval_crops()
        result = export_ir(net, tmp, calibration_crops=calib, heldout_crops=held_crops,
                           heldout_error=held_error if held else None, int8=config.int8)
        metrics: Dict[str, Any] = {"command": _command_line(), "held_out": "shots" if val_shots else "frames",
                                   "crops": "ground-truth landmark box, unaugmented"}
        if held:
            metrics["frames"] = len(held)
            metrics["sources"] = sorted({r.source for r in held})
            pred = evaluate_records(lambda c: torch_predict(net, c), sampler, held,
                                    None if refiner is None else (lambda c: torch_predict(refiner, c, 256)),
                                    held_patches, refiner_info)
            metrics["torch"] = error_stats(frame_errors(pred, held))
            if refiner is not None:
                pred = evaluate_records(lambda c: torch_predict(net, c), sampler, held,
                                        lambda c: torch_predict(refiner, c, 256), held_patches, refiner_info,
                                        use_blend=False)
                metrics["torch_refiner_unblended"] = error_stats(frame_errors(pred, held))
        lineage: Dict[str, Any] = {}
        if base_card is not None:
            lineage = {"parent": f"{base_card.character}/{base_card.version}",
                       "parent_weights_sha256": base_card.files.get(WEIGHTS_NAME)}
        if extra_files is not None:
            extra_files(tmp)
        files = {p.name: file_sha256(p) for p in sorted(tmp.iterdir()) if p.is_file() and p.name != CARD_NAME}
        card = ModelCard(
            character=name,
            version=target.name,
            landmarks=tuple(names),
            input_size=size,
            colour_space=colour.MODEL_SPACE,
            normalisation={"input_range": [0.0, 1.0], "mean": list(LandmarkNet.MEAN),
                           "std": list(LandmarkNet.STD), "applied_in_graph": True},
            crop=CropRule(scale=scale),
            training_data_sha256=data_sha,
            files=files,
            metrics=metrics,
            lineage=lineage,
            created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            seamroto_version=seamroto.__version__,
            precision=result.precision,
            precisions=result.precisions,
            architecture=net_cfg.to_json(),
            training={**config.to_json(), "seed": seed, "steps_done": done, "refiner_steps_done": ref_done,
                      "train_seconds": round(train_s, 1), "frames": len(train_recs),
                      "torch_threads": torch.get_num_threads(), "export": result.to_json()},
            refiner=refiner_info,
        )
        write_card(tmp, card)
        if held:
            # Measure through the product's own loading path (checksums, f32 pinned).
            for precision in result.precisions:
                model = load_model(tmp, precision)
                stage2 = None if model.refiner is None else model.refiner

                def run(crops: np.ndarray, m: LandmarkModel = model) -> np.ndarray:
                    return infer_crops(m, crops)[0]

                def run2(p: np.ndarray, r: Any = stage2) -> np.ndarray:
                    return infer_crops(r, p, 64)[0]

                pred = evaluate_records(run, sampler, held, None if stage2 is None else run2, held_patches,
                                        refiner_info)
                metrics[precision] = error_stats(frame_errors(pred, held))
                if stage2 is not None:
                    pred1 = evaluate_records(run, sampler, held, None, [], None)
                    metrics[f"{precision}_face_stage_only"] = error_stats(frame_errors(pred1, held))
            card = replace(card, metrics=metrics)
            write_card(tmp, card)
        _share_permissions(tmp)
        logger.info("model written: %s (%s)", target, json.dumps(metrics.get(result.precision, {})))
    remove_checkpoint(ckpt)
    return target


REFINER_PREFIX = "refiner/"


def refiner_net_config(num_landmarks: int, rcfg: RefineConfig) -> NetConfig:
    """The refiner's network: the same family, small, stride-2 heatmaps on a small patch."""
    return NetConfig(num_landmarks, input_size=rcfg.patch_size, heatmap_stride=2, widths=(24, 32, 48, 64),
                     repeats=(1, 2, 2, 1), decoder=32)


def refiner_train_config(config: TrainConfig, rcfg: RefineConfig) -> TrainConfig:
    """Training settings of the refiner stage."""
    return replace(config, input_size=rcfg.patch_size, heatmap_stride=2, batch_size=rcfg.batch_size,
                   steps=rcfg.steps, refiner=None)


class _Offset:
    """Progress of one stage reported as part of the whole run."""

    def __init__(self, inner: Optional[Progress], offset: int, total: int) -> None:
        self.inner = inner or NullProgress()
        self.offset = offset
        self.total = total

    def update(self, done: int, total: int, message: str = "") -> None:
        self.inner.update(self.offset + done, self.total, message)

    @property
    def cancelled(self) -> bool:
        return self.inner.cancelled
