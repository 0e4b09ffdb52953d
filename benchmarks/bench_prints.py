"""Print library on other characters: replacement pieces rigged from landmarks vs snapped onto the plate.

    .venv/bin/python benchmarks/bench_prints.py [--characters otto pip] [--work DIR]

For each synthetic character: five training shots (seeds 1-5) give the rig, the shape prior's
anchors and the print library, exactly as ``seamroto train`` / ``calibrate --prior-shot`` learn
them; on two other shots (seeds 11, 12) the artists' landmarks plus Gaussian noise (``--noise``
px per coordinate, about a tracker's) drive the rig, and each replacement piece is snapped onto
its frame with the library. Printed per shot and piece: mean control-point error and excess
jitter (RMS of the error's second temporal difference) of the rigged and of the snapped piece,
against the artists' shape. Without a landmark network, so it runs in a minute per character;
``bench_track.py`` measures the whole tracker on the bundled character.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List

import numpy as np

from seamroto.annotations import load_annotations
from seamroto.calibration import learn_prior_from
from seamroto.colour import model_gray_u8
from seamroto.curves import excess_jitter_px
from seamroto.datamodel import tracks_to_array
from seamroto.detection import GrayRegion
from seamroto.plates import PlateSequence
from seamroto.printlib import learn_print_library, snap_fitted
from seamroto.rigtrain import learn_parts
from seamroto.synth import synth_command

TRAIN_SEEDS = (1, 2, 3, 4, 5)
TEST_SEEDS = (11, 12)


def _shot(work: Path, character: str, seed: int, frames: int, size: List[int]) -> Path:
    out = work / f"{character}_s{seed}"
    if not (out / "gt.nk").is_file():
        synth_command(character, seed, frames, size[0], size[1], out, ("exr",))
    return out / "gt.nk"


def bench_character(character: str, work: Path, frames: int, size: List[int], noise: float) -> List[str]:
    """Rows of the table for one character."""
    train = load_annotations([_shot(work, character, s, frames, size) for s in TRAIN_SEEDS])
    parts = learn_parts(character, train)
    rig, info = parts.rig, parts.info
    names = list(rig.landmark_names)  # type: ignore[attr-defined]
    prior = learn_prior_from(train, names, info.seams, info.discontinuous)
    library = learn_print_library(train, rig, prior.anchors, info.discontinuous)
    if library is None:
        return [f"{character:8s} no replacement piece with prints"]
    rng = np.random.default_rng(0)
    rows = []
    for seed in TEST_SEEDS:
        shot = load_annotations([_shot(work, character, seed, frames, size)])[0]
        assert shot.shot is not None
        shot_frames = list(shot.shot.frames)
        truth = tracks_to_array(shot.tracks, names, shot_frames)[..., :2]
        landmarks = truth + rng.normal(0.0, noise, truth.shape)
        fitted = rig.apply(landmarks, frames=shot_frames)  # type: ignore[attr-defined]
        seq = PlateSequence.open(shot.shot.plates)
        grays = [GrayRegion((0, 0), model_gray_u8(seq.read(f), seq.colourspace)) for f in shot_frames]
        snapped, outcome = snap_fitted(fitted, landmarks, names, grays, library)
        artists = {s.name: s for s in shot.shapes}
        for name in library.shape_names:
            t = np.array([artists[name].points_array(f)[:, :2] for f in shot_frames])
            r, s = fitted[name].points[:, :, :2], snapped[name].points[:, :, :2]
            rows.append(
                f"{character:8s} s{seed:<4d} {name:8s} {np.linalg.norm(r - t, axis=2).mean():10.3f} "
                f"{excess_jitter_px(r - t):10.3f} {np.linalg.norm(s - t, axis=2).mean():10.3f} "
                f"{excess_jitter_px(s - t):10.3f} {outcome[name].snapped:4d}/{len(shot_frames)}"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--characters", nargs="+", default=["otto", "pip"], help="synthetic characters")
    parser.add_argument("--work", type=Path, default=Path("/tmp/seamroto_bench_prints"), help="shots folder")
    parser.add_argument("--frames", type=int, default=24, help="frames per shot")
    parser.add_argument("--size", default="1920x1080", help="WIDTHxHEIGHT")
    parser.add_argument("--noise", type=float, default=0.4, help="landmark noise, px per coordinate")
    args = parser.parse_args()
    size = [int(v) for v in args.size.lower().split("x")]
    print("char     shot  piece     rig_err_px rig_jit_px snap_err_px snap_jit_px snapped")
    for character in args.characters:
        for row in bench_character(character, args.work, args.frames, size, args.noise):
            print(row, flush=True)
    print(f"command: python benchmarks/bench_prints.py --characters {' '.join(args.characters)} "
          f"--frames {args.frames} --size {args.size} --noise {args.noise}")


if __name__ == "__main__":
    main()
