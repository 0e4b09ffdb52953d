"""Session fixtures for batch and farm tests: two tiny synthetic shots and a tiny trained character.

The model is real (trained for one step, exported to OpenVINO, with rig and face model), so the
whole pipeline runs; it is only small: 32 px crops, no INT8, no refiner. It takes a few seconds
of training and export, once per session; tests that need it skip when torch is absent.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Dict

import pytest

FARM_CHARACTER = "mara"
FARM_SIZE = (256, 144)
FARM_FRAMES = 6
FARM_SEEDS = (1, 2)
#: TrainConfig for a model that only has to run, not to be accurate.
TINY_TRAIN = dict(
    input_size=32, batch_size=2, steps=1, warmup_steps=1, checkpoint_every_steps=0, int8=False, refiner=None
)


@pytest.fixture(scope="session")
def farm_shots(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    """Two synthetic shots (EXR plates + gt.nk), by name ``s1``/``s2``."""
    from seamroto.synth import synth_command

    root = tmp_path_factory.mktemp("farm_shots")
    width, height = FARM_SIZE
    return {
        f"s{seed}": synth_command(FARM_CHARACTER, seed, FARM_FRAMES, width, height, root / f"s{seed}", ("exr",))
        for seed in FARM_SEEDS
    }


@pytest.fixture(scope="session")
def farm_plates(farm_shots: Dict[str, Path]) -> Dict[str, str]:
    """The plate patterns of ``farm_shots`` (``.../plates/mara_s1.####.exr``), by shot name."""
    return {name: str(d / "plates" / f"{FARM_CHARACTER}_{name}.####.exr") for name, d in farm_shots.items()}


@pytest.fixture(scope="session")
def tiny_model(farm_shots: Dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained character model folder (``models/mara/v001``) learned from ``farm_shots``."""
    torch = pytest.importorskip("torch")
    from seamroto.annotations import load_annotations
    from seamroto.datamodel import Character
    from seamroto.rigtrain import learn_parts, write_parts
    from training.train import TrainConfig, train_character

    torch.set_num_threads(2)
    annotations = load_annotations([str(d / "gt.nk") for d in farm_shots.values()])
    parts = learn_parts(FARM_CHARACTER, annotations)
    rig = parts.rig
    character = Character(FARM_CHARACTER, tuple(rig.landmark_names), parts.info.seams, rig.shape_specs())  # type: ignore[attr-defined]
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in TINY_TRAIN.items() if k in known})  # type: ignore[arg-type]
    out = tmp_path_factory.mktemp("farm_models") / FARM_CHARACTER / "v001"
    return train_character(
        FARM_CHARACTER,
        annotations,
        out,
        config=config,
        character=character,
        extra_files=lambda folder: write_parts(folder, parts),
        threads=2,
    )
