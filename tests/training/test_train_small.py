"""Two optimiser steps, export, load through seamroto.models, and the safety of model folders."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from seamroto import models
from seamroto.errors import CancelledError, ModelChecksumError, ModelError, ModelSchemaError
from seamroto.landmarks import crop_matrix, infer_crops, predict_landmarks, warp_crop
from training.augment import AugmentConfig
from training.dataset import CropSampler, landmark_order, load_records
from training.evaluate import torch_predict
from training.net import NetConfig, build_net
from training.refine import RefineConfig
from training.train import (
    REFINER_PREFIX,
    TrainConfig,
    landmark_loss,
    refiner_net_config,
    train_character,
    train_loop,
)

from .conftest import BLOB_NAMES, blob_shot

# Tolerances in one table.
OV_VS_TORCH_PX = 1e-3  # FP32 IR vs eager torch, crop px
CROP_EQUAL = 1e-5  # training crop (stored region) vs inference crop (whole frame)

SMALL = TrainConfig(input_size=64, batch_size=4, steps=2, warmup_steps=1, checkpoint_every_steps=0,
                    refiner=RefineConfig(steps=2, batch_size=8))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("models")
    shots = [blob_shot(1), blob_shot(2, missing=[(1002, "chin")])]
    return train_character("blob", shots, root / "blob" / "v001", seed=0, config=SMALL,
                           validation=[blob_shot(3, frames=3)])


def test_model_folder_is_complete_and_card_is_valid(trained: Path) -> None:
    card = models.read_card(trained)
    assert card.landmarks == BLOB_NAMES
    assert card.input_size == 64 and card.crop.scale == SMALL.crop_scale
    assert set(card.files) >= {"model.xml", "model.bin", "weights.npz"}
    assert card.training["steps_done"] == 2
    assert len(card.training_data_sha256) == 64
    assert card.metrics["held_out"] == "shots" and "fp32" in card.metrics
    assert card.metrics["command"]
    assert card.precision in card.precisions
    assert set(card.precisions) <= {"fp32", "int8"}
    assert ("model_int8.xml" in card.files) == ("int8" in card.precisions)
    assert card.refiner is not None and {"refiner.xml", "refiner.bin"} <= set(card.files)
    assert card.training["refiner_steps_done"] == 2
    assert NetConfig.from_json(card.refiner.architecture) == refiner_net_config(len(BLOB_NAMES), SMALL.refiner)
    assert not any(p.name.startswith(".") for p in trained.parent.iterdir())  # checkpoint removed


def _torch_nets(folder: Path) -> tuple[torch.nn.Module, torch.nn.Module]:
    card = models.read_card(folder)
    net = build_net(NetConfig.from_json(card.architecture))
    assert card.refiner is not None
    ref = build_net(NetConfig.from_json(card.refiner.architecture))
    with np.load(folder / "weights.npz", allow_pickle=False) as z:
        net.load_state_dict({k[len("model/"):]: torch.from_numpy(z[k]) for k in z.files if k.startswith("model/")})
        ref.load_state_dict({k[len(REFINER_PREFIX):]: torch.from_numpy(z[k]) for k in z.files
                             if k.startswith(REFINER_PREFIX)})
    return net, ref


def test_openvino_inference_agrees_with_torch(trained: Path) -> None:
    net, ref = _torch_nets(trained)
    model = models.load_model(trained)
    assert model.precision == "fp32" and model.inference_precision == "f32"
    rng = np.random.default_rng(0)
    crops = rng.uniform(0, 1, (5, 64, 64, 3)).astype(np.float32)
    ov_pts, ov_conf = infer_crops(model, crops, batch_size=2)
    np.testing.assert_allclose(ov_pts, torch_predict(net, crops), atol=OV_VS_TORCH_PX)
    assert ov_conf.shape == (5, len(BLOB_NAMES)) and ((ov_conf >= 0) & (ov_conf <= 1)).all()
    assert model.refiner is not None
    patches = rng.uniform(0, 1, (7, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(infer_crops(model.refiner, patches, 3)[0], torch_predict(ref, patches),
                               atol=OV_VS_TORCH_PX)


def test_predict_landmarks_runs_both_stages_on_a_frame(trained: Path) -> None:
    model = models.load_model(trained)
    shot = blob_shot(3, frames=1)
    img = shot.image(1001)
    box = np.array([[60.0, 50.0, 150.0, 140.0], [70.0, 40.0, 140.0, 150.0]])
    pts2, conf2 = predict_landmarks(model, img, box)
    pts1, _ = predict_landmarks(model, img, box, use_refiner=False)
    assert pts2.shape == pts1.shape == (2, len(BLOB_NAMES), 2) and conf2.shape == (2, len(BLOB_NAMES))
    assert np.isfinite(pts2).all() and not np.allclose(pts1, pts2)


def _copy(trained: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "m" / "v001"
    shutil.copytree(trained, dst)
    return dst


def test_tampered_weights_raise_checksum_error_naming_the_file(trained: Path, tmp_path: Path) -> None:
    d = _copy(trained, tmp_path)
    data = bytearray((d / "model.bin").read_bytes())
    data[100] ^= 0xFF
    (d / "model.bin").write_bytes(bytes(data))
    with pytest.raises(ModelChecksumError, match="model.bin"):
        models.load_model(d)


def test_truncated_bin_fails_before_openvino_reads_anything(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = _copy(trained, tmp_path)
    (d / "model.bin").write_bytes((d / "model.bin").read_bytes()[:1000])

    def no_core() -> None:
        raise AssertionError("OpenVINO must not be touched for a bad model folder")

    monkeypatch.setattr(models, "get_core", no_core)
    with pytest.raises(ModelError):
        models.load_model(d)


def test_other_schema_is_refused_with_both_names(trained: Path, tmp_path: Path) -> None:
    d = _copy(trained, tmp_path)
    card = json.loads((d / "card.json").read_text())
    card["schema"] = "SeamRotoModelCard.99"
    (d / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelSchemaError, match=r"SeamRotoModelCard\.99.*SeamRotoModelCard\.1"):
        models.load_model(d)


def test_missing_file_and_missing_precision_are_model_errors(trained: Path, tmp_path: Path) -> None:
    d = _copy(trained, tmp_path)
    card = models.read_card(d)
    if "int8" not in card.precisions:
        with pytest.raises(ModelError, match="int8"):
            models.load_model(d, precision="int8")
    (d / "model.xml").unlink()
    with pytest.raises(ModelError, match="model.xml"):
        models.load_model(d)


def test_find_models_lists_search_path_and_env(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "more"
    shutil.copytree(trained, other / "blob2" / "v003")
    monkeypatch.setenv(models.MODELS_ENV, str(other))
    found = models.find_models()
    assert ("blob2", "v003") in [(e.character, e.version) for e in found]
    found = models.find_models([trained.parent.parent])
    assert [(e.character, e.version) for e in found] == [("blob", "v001")]


def test_resume_after_interrupt_equals_uninterrupted(tmp_path: Path) -> None:
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    shots = [blob_shot(1, frames=4)]
    names = landmark_order(shots, None)
    cfg = replace(SMALL, checkpoint_every_steps=0)
    sampler = CropSampler(load_records(shots, names, size=64, crop_scale=cfg.crop_scale),
                          size=64, crop_scale=cfg.crop_scale, augment=cfg.augment)
    total = 4

    def fresh() -> torch.nn.Module:
        torch.manual_seed(0)
        return build_net(NetConfig(len(names), input_size=64))

    straight = fresh()
    train_loop(straight, sampler, cfg, seed=5, total_steps=total)

    class CancelAfter:
        def __init__(self, n: int) -> None:
            self.n, self.seen = n, 0

        def update(self, done: int, total: int, message: str = "") -> None:
            self.seen = done

        @property
        def cancelled(self) -> bool:
            return self.seen >= self.n

    ckpt = tmp_path / "ckpt"
    interrupted = fresh()
    with pytest.raises(CancelledError):
        train_loop(interrupted, sampler, cfg, seed=5, total_steps=total, checkpoint_dir=ckpt,
                   progress=CancelAfter(2))
    assert (ckpt / "state.npz").is_file() and (ckpt / "state.json").is_file()
    resumed = fresh()  # a new process would start from scratch weights too
    steps = train_loop(resumed, sampler, cfg, seed=5, total_steps=total, checkpoint_dir=ckpt, resume=True)
    assert steps == total
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


def test_missing_landmarks_are_masked_not_zero() -> None:
    shot = blob_shot(2, frames=3, missing=[(1001, "chin"), (1002, "nose")])
    names = landmark_order([shot], None)
    recs = load_records([shot], names, size=64, crop_scale=1.4)
    assert np.isnan(recs[0].points[names.index("chin")]).all()
    sampler = CropSampler(recs, size=64, crop_scale=1.4, augment=AugmentConfig.off())
    _, pts, mask = sampler.sample(np.random.default_rng(0), index=0)
    assert not mask[names.index("chin")] and mask[names.index("nose")]
    assert np.isfinite(pts).all()
    # The loss does not see a masked landmark's target at all.
    pred = torch.rand(1, len(names), 2) * 64
    prob = torch.softmax(torch.rand(1, len(names), 256), -1).reshape(1, len(names), 16, 16)
    m = torch.from_numpy(mask[None])
    t1 = torch.from_numpy(pts[None]).float()
    t2 = t1.clone()
    t2[0, names.index("chin")] = 1000.0
    cfg = TrainConfig(input_size=64)
    assert torch.equal(landmark_loss(pred, prob, t1, m, cfg)[0], landmark_loss(pred, prob, t2, m, cfg)[0])


def test_training_crop_equals_inference_crop() -> None:
    shot = blob_shot(4, frames=1, width=640, height=480)
    names = landmark_order([shot], None)
    rec = load_records([shot], names, size=64, crop_scale=1.4)[0]
    sampler = CropSampler([rec], size=64, crop_scale=1.4, augment=AugmentConfig.off(), to_model=lambda c: c)
    train_crop, m, _ = sampler.crop_for(rec)
    infer_crop = warp_crop(shot.image(1001), crop_matrix(rec.box, 64, 1.4), 64)
    # Stored regions are float16; compare at that precision.
    np.testing.assert_allclose(train_crop, infer_crop, atol=CROP_EQUAL + 2e-3 * np.abs(infer_crop).max())
