"""Learn a whole character: the landmark network (PyTorch -> OpenVINO) plus rig, face model, facts.

The shape prior (``seamroto.shapeprior``: where silhouette and seam landmarks sit given the
face's interior) is learned from the same ground truth and written beside them; it is skipped,
with a log line, when the landmarks cannot support one. With it comes the print library
(``seamroto.printlib``: the replacement pieces' edges on the training plates), which needs the
prior's rigid anchors to measure the face's size.

``seamroto train`` (without ``--rig-only``) imports this module at run time, so the core itself
never needs torch.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional, Sequence

from seamroto.calibration import learn_prior_from
from seamroto.datamodel import Annotation, Character
from seamroto.errors import AnnotationError
from seamroto.printlib import PrintLibrary, learn_print_library, write_print_library
from seamroto.progress import NullProgress, Progress
from seamroto.rigtrain import Parts, learn_parts, write_parts
from seamroto.shapeprior import ShapePrior, write_shape_prior
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
    prior = learn_prior(annotations, parts)
    prints = None if prior is None else learn_print_library(
        annotations, parts.rig, prior.anchors, parts.info.discontinuous
    )
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
        extra_files=lambda folder: _write_extras(folder, parts, prior, prints),
    )


def learn_prior(annotations: Sequence[Annotation], parts: Parts) -> Optional[ShapePrior]:
    """The character's shape prior from its ground truth, or None when it cannot have one."""
    names = list(parts.rig.landmark_names)  # type: ignore[attr-defined]
    try:
        return learn_prior_from(annotations, names, parts.info.seams, parts.info.discontinuous)
    except AnnotationError as err:
        logger.info("no shape prior for this character: %s", err)
        return None


def _write_extras(
    folder: Path, parts: Parts, prior: Optional[ShapePrior], prints: Optional[PrintLibrary]
) -> List[Path]:
    paths = write_parts(folder, parts)
    if prior is not None:
        paths.append(write_shape_prior(folder, prior))
    if prints is not None:
        paths.append(write_print_library(folder, prints))
    return paths
