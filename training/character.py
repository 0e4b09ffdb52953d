"""Learn a whole character: the landmark network (PyTorch -> OpenVINO) plus rig, face model, facts.

``seamroto train`` (without ``--rig-only``) imports this module at run time, so the core itself
never needs torch.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Sequence

from seamroto.datamodel import Annotation, Character
from seamroto.progress import NullProgress, Progress
from seamroto.rigtrain import learn_parts, write_parts
from training.train import train_character

logger = logging.getLogger(__name__)


def train_full(
    name: str,
    annotations: Sequence[Annotation],
    output: Path,
    *,
    base_model: Optional[Path] = None,
    seed: int = 0,
    time_budget_s: Optional[float] = None,
    steps: Optional[int] = None,
    resume: bool = False,
    progress: Optional[Progress] = None,
    validation: Sequence[Annotation] = (),
) -> Path:
    """Train a character model folder: IR + card, rig, face model and character facts.

    Args:
        name: Character name.
        annotations: Ground truth with images (plates or LAIKA images).
        output: Model folder (a new version if it exists).
        base_model: Fine-tune from this model folder (``--from``); its lineage goes in the card.
        seed: Training seed.
        time_budget_s: Stop training after this long (the model is still exported).
        steps: Optimiser steps (default: the training config's).
        resume: Continue an interrupted identical run from its checkpoint.
        progress: Progress and cancel.
        validation: Held-out shots for the card's metrics (default: a block of each shot).

    Returns:
        The model folder written.
    """
    progress = progress or NullProgress()
    parts = learn_parts(name, annotations, progress=progress)
    character = Character(
        name,
        tuple(parts.rig.landmark_names),  # type: ignore[attr-defined]
        parts.info.seams,
        parts.rig.shape_specs(),  # type: ignore[attr-defined]
    )
    return train_character(
        name,
        list(annotations),
        output,
        seed=seed,
        steps=steps,
        time_budget_s=time_budget_s,
        base_model_dir=base_model,
        progress=progress,
        character=character,
        validation=list(validation),
        resume=resume,
        extra_files=lambda folder: write_parts(folder, parts),
    )
