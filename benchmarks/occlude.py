"""Copy a synthetic shot with a puppeteer's rod crossing the face: frames the tracker cannot see.

    .venv/bin/python benchmarks/occlude.py SHOT_DIR -o OUT_DIR [--first 14 --frames 20]

Why: on clean synthetic shots no landmark ends up more than 3 px off, so the review flags
(issue 3: >= 90 % of such frames flagged, <= 10 % of flagged frames fine) have nothing to catch.
In a stop-motion shot what hides a face is a rig arm, a puppeteer's rod or a hand passing in
front of it. This paints such a rod (dark, a little wider than an eye, soft-edged, tilted)
sweeping across the face box over ``--frames`` frames from ``--first`` (shot frames counted
from 0) into a copy of the plates, keeping the ground truth as it was: a landmark behind the rod
is where the artist would put it, so a frame whose track misses it by more than 3 px is a
frame to review. ``bench_track.py --occlude`` runs it on every shot it scores.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Dict, Tuple

import numpy as np

from seamroto.plates import read_frame, write_frame

#: The rod's width as a fraction of the face box width, its tilt from vertical (rad) and its
#: linear-light colour (a dark, slightly blue steel).
ROD_WIDTH = 0.14
ROD_TILT = 0.25
ROD_RGB = (0.030, 0.032, 0.040)
#: Soft edge (px) of the rod's matte.
EDGE_PX = 1.5
FIRST = 14
FRAMES = 20


def rod_matte(size: Tuple[int, int], box: Tuple[float, float, float, float], t: float) -> np.ndarray:
    """Coverage (H, W) float32 of the rod at sweep position ``t`` (0: left of the box, 1: right)."""
    w, h = size
    x, y, bw, bh = box
    centre_x = x - 0.3 * bw + t * 1.6 * bw
    centre_y = y + 0.5 * bh
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # signed distance across the tilted rod's axis
    across = (xx - centre_x) * np.cos(ROD_TILT) + (yy - centre_y) * np.sin(ROD_TILT)
    half = 0.5 * ROD_WIDTH * bw
    return np.clip((half - np.abs(across)) / EDGE_PX + 0.5, 0.0, 1.0)


def occlude_shot(shot: Path, out: Path, first: int = FIRST, frames: int = FRAMES) -> Dict[str, object]:
    """Write ``out`` (plates + gt.json) with the rod over frames ``first .. first + frames - 1``.

    Returns:
        ``{"frames": [...], "shot": name}``: the shot frames the rod covers part of the face on.
    """
    gt = json.loads((shot / "gt.json").read_text(encoding="utf-8"))
    plates = sorted((shot / "plates").glob("*.exr"))
    if not plates:
        raise SystemExit(f"{shot}: no EXR plates in {shot / 'plates'}")
    (out / "plates").mkdir(parents=True, exist_ok=False)
    shutil.copy2(shot / "gt.json", out / "gt.json")
    covered = []
    for k, path in enumerate(plates):
        target = out / "plates" / path.name
        frame = int(path.name.rsplit(".", 2)[1])
        if not first <= k < first + frames:
            shutil.copy2(path, target)
            continue
        img = read_frame(path)
        box = tuple(gt["face_boxes"][str(frame)])
        matte = rod_matte((img.shape[1], img.shape[0]), box, (k - first) / max(1, frames - 1))[..., None]
        write_frame(target, img * (1.0 - matte) + np.asarray(ROD_RGB, np.float32) * matte)
        covered.append(frame)
    return {"shot": shot.name, "frames": covered}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shot", type=Path, help="a `seamroto synth` shot folder (plates/*.exr + gt.json)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="new folder for the occluded copy")
    parser.add_argument("--first", type=int, default=FIRST, help="first covered frame, counted from 0")
    parser.add_argument("--frames", type=int, default=FRAMES, help="frames the rod takes to cross the face")
    args = parser.parse_args()
    done = occlude_shot(args.shot, args.output, args.first, args.frames)
    print(f"{args.output}: rod over frames {done['frames'][0]}-{done['frames'][-1]} of {done['shot']}")


if __name__ == "__main__":
    main()
