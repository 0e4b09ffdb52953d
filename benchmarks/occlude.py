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
from seamroto.synth.render import Region, bounds, coverage

#: The rod's width as a fraction of the face box width, its tilt from vertical (rad) and its
#: linear-light colour (a dark, slightly blue steel).
ROD_WIDTH = 0.14
ROD_TILT = 0.25
ROD_RGB = (0.030, 0.032, 0.040)
#: Sub-pixels per pixel side the rod's anti-aliased edge is drawn with (``synth.render.coverage``).
ROD_SUPERSAMPLE = 4
FIRST = 14
FRAMES = 20


def rod_polygon(box: Tuple[float, float, float, float], t: float, height: int) -> np.ndarray:
    """The rod's outline (4, 2) _img px at sweep position ``t`` (0: left of the box, 1: right),
    reaching past the top and bottom of a frame ``height`` px tall."""
    x, y, bw, bh = box
    centre = np.array([x - 0.3 * bw + t * 1.6 * bw, y + 0.5 * bh])
    along = np.array([-np.sin(ROD_TILT), np.cos(ROD_TILT)]) * 2.0 * height
    across = np.array([np.cos(ROD_TILT), np.sin(ROD_TILT)]) * 0.5 * ROD_WIDTH * bw
    return np.array([centre - along - across, centre + along - across, centre + along + across,
                     centre - along + across])


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
        h, w = img.shape[:2]
        rod = rod_polygon(tuple(gt["face_boxes"][str(frame)]), (k - first) / max(1, frames - 1), h)
        region = bounds(rod, 1.0, Region(0, 0, w, h))
        if not region.empty:
            matte = coverage([rod], region, ROD_SUPERSAMPLE)[..., None]
            rows, cols = region.inside(Region(0, 0, w, h))
            img[rows, cols] = img[rows, cols] * (1.0 - matte) + np.asarray(ROD_RGB, np.float32) * matte
        write_frame(target, img)
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
