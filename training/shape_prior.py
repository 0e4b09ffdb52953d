r"""Learn a character's shape prior, or install a calibrated one, in a model folder, card included.

    .venv/bin/python -m training.shape_prior --model models/mara/v7 \
        (--shots .../mara_s{1,2,3,4,5}/gt.nk | --prior-from CALIBRATED.json) (-o OUT | --in-place)

``--shots``: the prior (``seamroto.shapeprior``) is learned from the ground-truth landmarks of the
training shots, in the model's landmark order and with its character facts (seams, replacement
pieces), with white anchor noise and fusion's default error model. ``--prior-from``: a prior
calibrated on a calibration shot (anchor noise and error model; written by
``benchmarks/bench_fusion.py --prior-shots ... --calibrate CAL.npz --write-prior``) is checked
against the model's landmarks and installed as it is.

``shape_prior.json`` is written and ``card.json`` gets its sha256, so ``load_model`` and
``load_shape_prior`` verify it like every other file. ``-o OUT`` writes a verified copy of the
folder (OUT must not exist); ``--in-place`` rewrites the folder itself (prior, then card, each
atomically). ``training.character.train_full`` learns the (uncalibrated) prior on every full
training run too.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from seamroto.annotations import load_annotations
from seamroto.calibration import learn_prior_for_model, write_model_with_prior
from seamroto.errors import ModelError
from seamroto.models import read_card
from seamroto.shapeprior import SHAPE_PRIOR_FILE, ShapePrior

logger = logging.getLogger(__name__)

ADDED = "shape prior added; networks, rig and face model as in the parent"


def add_to_model(model_dir: Path, prior: ShapePrior, output: Optional[Path] = None) -> Path:
    """Write ``prior`` into the folder (or a verified copy at ``output``, a new version) and list it in the card.

    Raises:
        OutputExistsError: ``output`` exists.
        ModelError, ModelChecksumError: the source folder does not match its card.
    """
    return write_model_with_prior(model_dir, prior, output, ADDED)


def read_prior_file(model_dir: Path, path: Path) -> ShapePrior:
    """A prior JSON checked against the model's landmarks.

    Raises:
        ModelError, ModelSchemaError: unreadable, another schema, or for other landmarks.
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"cannot read the shape prior: {err}", path=str(path)) from err
    prior = ShapePrior.from_dict(doc, str(path))
    names = set(read_card(model_dir).landmarks)
    unknown = sorted((set(prior.anchors) | set(prior.targets)) - names)
    if unknown:
        raise ModelError(f"the prior uses landmarks {unknown} that the model does not track", path=str(path))
    return prior


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Learn the prior from ``--shots`` (or take ``--prior-from``) and add it to ``--model``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="character model folder")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--shots", type=Path, nargs="+", help="training ground truth (.nk) to learn from")
    source.add_argument("--prior-from", type=Path, help="a calibrated shape_prior.json to install")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("-o", "--output", type=Path, help="write a copy of the model folder here")
    where.add_argument("--in-place", action="store_true", help="add the prior to --model itself")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.prior_from:
        prior = read_prior_file(args.model, args.prior_from)
    else:
        prior = learn_prior_for_model(args.model, load_annotations(args.shots))
    out = add_to_model(args.model, prior, None if args.in_place else args.output)
    print(f"shape prior added: {out / SHAPE_PRIOR_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
