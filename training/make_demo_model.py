"""Rebuild the bundled demo character's networks, rig and face model from synthetic shots, reproducibly.

    .venv/bin/python -m training.make_demo_model -o DIR/models/mara/v2    # the first step of `make demo-model`

Five synthetic shots of the character ``mara`` (seeds 1-5, 48 frames, 1920x1080) are rendered
with ``seamroto synth`` into a work folder, the character is trained on them with a fixed seed,
and the model is written to ``-o`` (a new ``_vN`` if that exists). Metrics in its card are
measured on held-out frames. ``make demo-model`` then calibrates the character's shape prior on
a separate shot (seed 21) and writes the result as the bundled ``models/mara/v7``
(``make demo-model-prior``; see the Makefile).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from seamroto.annotations import load_annotations
from seamroto.config import DEMO_CHARACTER
from seamroto.progress import ConsoleProgress
from seamroto.synth import synth_command
from training.character import train_full

logger = logging.getLogger("training.make_demo_model")

TRAIN_SEEDS = (1, 2, 3, 4, 5)
FRAMES = 48
SIZE = (1920, 1080)
TRAIN_SEED = 0


def main(argv: list[str] | None = None) -> int:
    """Render the training shots (or reuse them) and train the demo character."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "seamroto_demo_shots",
                        help="where the synthetic training shots go (reused when present)")
    default_out = Path(tempfile.gettempdir()) / "seamroto_demo_shots" / "models" / DEMO_CHARACTER / "v2"
    parser.add_argument("-o", "--output", type=Path, default=default_out)
    parser.add_argument("--minutes", type=float, default=None, help="training time budget")
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps (default: the config's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    shots = []
    for seed in TRAIN_SEEDS:
        folder = args.work / f"{DEMO_CHARACTER}_s{seed}"
        if not (folder / "gt.nk").exists():
            synth_command(DEMO_CHARACTER, seed, FRAMES, SIZE[0], SIZE[1], folder, ("exr",))
        shots.append(folder / "gt.nk")
    annotations = load_annotations(shots)
    path = train_full(
        DEMO_CHARACTER,
        annotations,
        args.output,
        seed=TRAIN_SEED,
        steps=args.steps,
        time_budget_s=None if args.minutes is None else args.minutes * 60.0,
        progress=ConsoleProgress("training"),
    )
    print(f"demo model: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
