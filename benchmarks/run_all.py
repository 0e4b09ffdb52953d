"""Run every benchmark once on the bundled demo character (``make bench``; slow: about half an hour on 2 cores).

    .venv/bin/python benchmarks/run_all.py [--work DIR] [--model models/mara/v7] [--only rig prints ...]

Each benchmark runs as its own process (so one that fails does not stop the others) and prints
its own figures with the command that made them; the shots they need are synthesised into
``--work`` once and reused. Exit status 1 when any benchmark failed. The figures quoted in the
README come from these commands, run with the other jobs on the machine paused.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
#: Held-out tracking shots of issue 3 (seed, frames, size) and the 100-frame speed shot.
TRACK_SHOTS = ((11, 48, "1920x1080"), (12, 48, "1920x1080"), (13, 48, "1920x1080"))
SPEED_SHOT = (21, 100, "2048x1080")


def _synth(work: Path, seed: int, frames: int, size: str, name: str) -> Path:
    out = work / name
    if not (out / "gt.nk").is_file():
        subprocess.run(
            [sys.executable, "-m", "seamroto", "synth", "--character", "mara", "--seed", str(seed),
             "--frames", str(frames), "--size", size, "--formats", "exr", "-o", str(out)],
            check=True, cwd=REPO,
        )
    return out


def _commands(work: Path, model: Path, only: List[str]) -> Dict[str, List[str]]:
    def script(name: str) -> List[str]:
        return [sys.executable, str(HERE / f"bench_{name}.py")]

    runs: Dict[str, List[str]] = {
        "rig": script("rig"),
        "prints": [*script("prints"), "--work", str(work / "prints")],
        "landmarks": [*script("landmarks"), "--model", str(model)],
        "motion2roto": [*script("motion2roto"), "--out", str(work / "motion2roto")],
        "farm": [*script("farm"), "--model", str(model), "--out", str(work / "farm")],
        "track": [*script("track"), "--model", str(model)],
        "occlusion": [*script("track"), "--model", str(model), "--occlude"],
    }
    wanted = set(only or runs)
    if "track" in wanted:
        shots = [_synth(work, s, f, size, f"mara_s{s}") for s, f, size in TRACK_SHOTS]
        seed, frames, size = SPEED_SHOT
        speed = _synth(work, seed, frames, size, f"mara_s{seed}_{frames}f")
        runs["track"] += ["--shots", *map(str, shots), "--speed", str(speed), "--repeat", "3"]
    if "occlusion" in wanted:
        runs["occlusion"] += ["--shots", *(str(_synth(work, s, f, size, f"mara_s{s}")) for s, f, size in TRACK_SHOTS)]
    return {k: v for k, v in runs.items() if k in wanted}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/seamroto_bench"), help="shots and outputs")
    parser.add_argument("--model", type=Path, default=REPO / "models" / "mara" / "v7", help="character model")
    parser.add_argument("--only", nargs="*", default=[], help="benchmarks to run (default: all)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    failed = []
    for name, cmd in _commands(args.work, args.model, args.only).items():
        print(f"\n=== {name}: {' '.join(cmd)}", flush=True)
        started = time.perf_counter()
        code = subprocess.run(cmd, cwd=REPO).returncode
        print(f"=== {name}: {'ok' if code == 0 else f'FAILED ({code})'} in {time.perf_counter() - started:.0f} s",
              flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
