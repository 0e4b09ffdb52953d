"""SeamRoto command line: track split-face puppet shots, train characters, inspect Nuke scripts.

Every subcommand has its own --help with examples. The usual order is:

  seamroto synth -o shots/mara_s1                      # (no plates yet?) make a synthetic shot
  seamroto train mara --shot shots/mara_s1/gt.nk -o models/mara/v1
  seamroto calibrate --model models/mara/v1 --shot checked/sh060.nk   # flags measured on a checked shot
  seamroto track 'plates/sh010.####.exr' --model models/mara/v2 -o out/sh010 --report
  seamroto inspect out/sh010/seamroto.nk               # what a script holds

Exit codes: 0 done, 1 bad input or failed (the message says what to fix), 2 usage, 130 cancelled.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence

from seamroto import __version__
from seamroto.errors import CancelledError, SeamRotoError
from seamroto.progress import Progress

logger = logging.getLogger("seamroto")

Handler = Callable[[argparse.Namespace], int]
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 2048x1080, got {text!r}") from None


def _progress(args: argparse.Namespace) -> Progress:
    from seamroto.progress import ConsoleProgress, NullProgress

    return NullProgress() if getattr(args, "quiet", False) else ConsoleProgress()


# --- handlers: read args, call the core, print where things are -----------------------------


def _cmd_inspect(args: argparse.Namespace) -> int:
    from seamroto.nk.inspect import format_inspect, inspect_script

    info = inspect_script(args.file)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(format_inspect(info))
    return EXIT_OK


def _cmd_synth(args: argparse.Namespace) -> int:
    from seamroto.fileio import next_free_dir
    from seamroto.synth import synth_command

    width, height = args.size
    out = next_free_dir(args.output)
    path = synth_command(
        args.character, args.seed, args.frames, width, height, out, tuple(args.formats.split(","))
    )
    print(f"synthetic shot: {path}")
    print(f"  plates:       {path / 'plates'}")
    print(f"  ground truth: {path / 'gt.nk'}  {path / 'gt.json'}")
    return EXIT_OK


def _cmd_train(args: argparse.Namespace) -> int:
    from seamroto.pipeline import train_command

    path = train_command(
        args.name,
        shots=args.shot,
        laika=args.laika,
        output=args.output,
        base_model=args.base_model,
        rig_only=args.rig_only,
        seed=args.seed,
        minutes=args.minutes,
        resume=args.resume,
        progress=_progress(args),
    )
    print(f"model: {path}")
    for card in ("card.json", "rig_card.json"):
        if (path / card).exists():
            print(f"  card: {path / card}")
    if not args.rig_only:
        print(f"next: seamroto calibrate --model {path} --shot CHECKED.nk")
        print("      (measures the review flags on a shot it did not train on, as a new version)")
    return EXIT_OK


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from seamroto.calibration import calibrate_command, next_version_dir

    output = args.output or next_version_dir(args.model)
    done = calibrate_command(
        args.model,
        args.shot,
        output,
        prior_shots=args.prior_shot,
        command="seamroto " + " ".join(args.argv),
        progress=_progress(args),
    )
    print(f"model: {done['model']}")
    print("review flags on the checked shots (in-sample: judge the new version on other shots):")
    for shot, before, after in zip(done["shots"], done["before"], done["after"]):
        print(f"  {shot}")
        for label, fig in (("before", before), ("after", after)):
            print(f"    {label:6s} {fig.summary()}")
    return EXIT_OK


def _cmd_track(args: argparse.Namespace) -> int:
    from seamroto.pipeline import TrackOptions, track_command

    options = TrackOptions(
        first=args.first,
        last=args.last,
        confidence_threshold=args.confidence_threshold,
        smoothing=args.smoothing,
        seam_band_px=args.seam_band,
        feather_px=args.feather,
        precision=args.precision,
        report=args.report,
        colourspace=args.colourspace,
        snap_pieces=args.snap_pieces,
    )
    outputs = track_command(args.plates, args.model, args.output, options, progress=_progress(args))
    _print_outputs(outputs)
    return EXIT_OK


def _add_no_snap(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-snap", dest="snap_pieces", action="store_false",
        help="leave replacement pieces (the mouth) as the rig fits them from the landmarks instead of "
        "snapping them onto each frame's edges with the character's print library (and leave their "
        "tracks as detected: a calibrated character otherwise reads them back from the snapped print)",
    )


def _cmd_refit(args: argparse.Namespace) -> int:
    from seamroto.pipeline import TrackOptions, refit_command

    options = TrackOptions(snap_pieces=args.snap_pieces)
    outputs = refit_command(
        args.model, args.tracks, args.output, progress=_progress(args), options=options
    )
    _print_outputs(outputs)
    return EXIT_OK


def _cmd_repair(args: argparse.Namespace) -> int:
    from seamroto.pipeline import repair_command

    outputs = repair_command(args.result, args.output, progress=_progress(args))
    _print_outputs(outputs)
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from seamroto.pipeline import export_command

    path = export_command(args.result, fxs=args.fxs)
    print(f"silhouette shapes: {path}")
    return EXIT_OK


def _cmd_models(args: argparse.Namespace) -> int:
    from seamroto.config import model_search_paths
    from seamroto.models import find_models

    found = find_models(model_search_paths(args.path))
    if args.json:
        print(json.dumps([{"character": m.character, "version": m.version, "path": str(m.path)} for m in found]))
    elif not found:
        print("no character models found in: " + ", ".join(map(str, model_search_paths(args.path))))
    for m in found:
        print(f"{m.character:20s} {m.version:8s} {m.path}")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from seamroto.pipeline import demo_command

    outputs = demo_command(args.output, progress=_progress(args))
    _print_outputs(outputs)
    return EXIT_OK


def _cmd_batch(args: argparse.Namespace) -> int:
    from seamroto.batch import LOGS_DIR, batch_command, format_summary

    report = batch_command(
        args.manifest,
        report_dir=args.report_dir,
        jobs=args.jobs,
        shots=args.shot,
        characters=args.character,
        train=not (args.no_train or args.summary_only),
        track=not (args.train_only or args.summary_only),
        hash_plates=args.hash_plates,
        summary_csv=not args.no_summary_csv,
        path_mapping_rules=args.path_mapping_rules,
        model_paths=args.models,
        progress=_progress(args),
    )
    for path in report.trained:
        print(f"model: {path}")
    if report.shots:
        print(format_summary(report.shots))
    if report.summary_csv:
        print(f"summary: {report.summary_csv}")
    failed = [r.shot for r in report.failed]
    for message in report.train_errors:
        logger.error("error: %s", message)
    if failed:
        logger.error("error: %d shot(s) failed: %s (logs in %s)", len(failed), ", ".join(failed),
                     report.report_dir / LOGS_DIR)
    return EXIT_ERROR if failed or report.train_errors else EXIT_OK


def _cmd_farm_job(args: argparse.Namespace) -> int:
    from seamroto.farm import farm_job_command

    job = farm_job_command(
        args.manifest, args.output, python=args.python, report_dir=args.report_dir, model_paths=args.models,
        name=args.name,
    )
    print(f"job bundle: {job.job_dir}")
    print(f"  steps:    {', '.join(job.steps)}")
    for character, model_dir in job.models:
        print(f"  model:    {character} -> {model_dir}")
    print(f"  check:    openjd check {job.template}")
    print(f"  run here: openjd run {job.template}")
    print(f"  submit:   deadline bundle submit {job.job_dir}")
    return EXIT_OK


def _cmd_motion2roto(args: argparse.Namespace) -> int:
    import dataclasses

    from seamroto.fileio import next_free_file
    from seamroto.motion2roto import motion2roto
    from seamroto.propagate import DEFAULT_PARAMS

    out = next_free_file(args.output)
    params = DEFAULT_PARAMS
    if args.no_replacement or args.replacement:
        # None (neither flag) lets the keys decide which shapes are replacement pieces
        params = dataclasses.replace(params, replacement_shapes=() if args.no_replacement else tuple(args.replacement))
    path = motion2roto(
        args.script, args.roto, args.shape, args.plates, out, vectors=args.vectors, params=params,
        progress=_progress(args),
    )
    print(f"new Roto node: {path}")
    print(f"  report:      {path.with_suffix('.json')}")
    return EXIT_OK


def _cmd_bbox(args: argparse.Namespace) -> int:
    from seamroto.bbox import track_plates, write_box_outputs
    from seamroto.fileio import next_free_dir

    out = next_free_dir(args.output)
    track, seq = track_plates(args.plates, args.frame, args.box, progress=_progress(args))
    outputs = write_box_outputs(track, seq, out, args.name)
    _print_outputs({**{k: str(v) for k, v in outputs.items()}, "flagged": len(track.flagged)})
    return EXIT_OK


def _cmd_serve_request(args: argparse.Namespace) -> int:
    from seamroto.protocol import serve

    return serve(sys.stdin, sys.stdout)


def _print_outputs(outputs: Mapping[str, object]) -> None:
    width = max((len(k) for k in outputs), default=0)
    for key, value in outputs.items():
        print(f"{key:{width}s}  {value}")


# --- parser ---------------------------------------------------------------------------------

EXAMPLES: Dict[str, str] = {
    "inspect": """examples:
  seamroto inspect shot010_roto_v003.nk            # table of nodes, shapes, points, keys, tracks
  seamroto inspect shot010_roto_v003.nk --json     # the same as JSON, for pipeline scripts
""",
    "synth": """examples:
  seamroto synth -o shots/mara_s1                          # 48 frames, 2048x1080, EXR + PNG + gt.nk/gt.json
  seamroto synth --character otto --seed 7 --frames 100 -o shots/otto_s7
  seamroto synth --size 960x540 --frames 12 --formats png -o /tmp/quick
An existing output folder is never overwritten: the next free name (shots/mara_s1_v2) is used.
""",
    "train": """examples:
  seamroto train mara --shot gt/sh010.nk --shot gt/sh020.nk --shot gt/sh030.nk -o models/mara/v1
  seamroto train mara --from models/mara/v1 --shot fixed/sh040.nk -o models/mara/v2   # learn from corrections
  seamroto train lionel --rig-only --laika ../shared/reference/laika_sir_lionel -o models/lionel/v1
Each --shot is a Nuke script holding a Read node, the artists' Tracker4 tracks (one per landmark,
named by track name) and their Roto shapes. Ctrl-C stops and keeps a checkpoint; --resume continues.
""",
    "calibrate": """examples:
  seamroto calibrate --model models/mara/v7 --shot checked/sh060.nk                 # -> models/mara/v8
  seamroto calibrate --model models/mara/v7 --shot checked/sh060.nk --shot checked/sh070.nk -o models/mara/v8
  seamroto calibrate --model models/mara/v1 --shot checked/sh060.nk --prior-shot gt/sh010.nk --prior-shot gt/sh020.nk
Each --shot is a shot the character did NOT train on, tracked (or corrected) by an artist: a Read node
and one Tracker4 track per landmark, as `train` takes. SeamRoto tracks its plates, compares with the
artist's points and fits how sure each landmark is, which decides the frames flagged for review.
--prior-shot (the character's training scripts) also learns the shape prior and the replacement pieces'
shape again, with their noise measured on the checked shots, and keeps the pieces' print library (the
artists' mouths' edges on a dozen of those scripts' plates, which `track` snaps each frame's mouth onto:
the scripts' Read nodes must find their plates). The prior also offers the parts that move on their
own (upper lids, brows), pinned in the one direction they hold, and keeps each only if tracking the
checked shots with it does not make that part more than 10 % worse (the log says which). Where the
checked shots' mouth landmarks sit on their Roto shape's control points (a corner track on the corner
point), it also measures how far `track` moves them toward the snapped mouth (the log gives each one's
error before and after). The model folder is never changed: the result is a new version whose card
holds the flag figures before and after.
""",
    "track": """examples:
  seamroto track 'plates/sh050.####.exr' --model models/mara/v1 -o out/sh050
  seamroto track 'plates/sh050.%04d.exr' --model models/mara/v1 --first 1001 --last 1048 -o out/sh050 --report
Writes OUT/seamroto.nk (Read -> Tracker4 -> Roto -> seam repair, paste it into Nuke), OUT/tracks.nk,
OUT/shapes.nk, OUT/result.json and, with --report, OUT/report.html. An existing OUT gets a new version.
""",
    "refit": """examples:
  seamroto refit --model models/mara/v1 --tracks out/sh050/tracks_fixed.nk -o out/sh050_refit
  seamroto refit --model models/mara/v1 --tracks out/sh050/result.json -o out/sh050_refit
Rebuilds the roto shapes from landmarks an artist corrected (Tracker4 named by landmark, or result.json).
""",
    "repair": """examples:
  seamroto repair out/sh050/result.json -o out/sh050_clean      # preview clean plates (PNG) along the seam
""",
    "export": """examples:
  seamroto export out/sh050/result.json --fxs out/sh050/shapes.fxs   # Silhouette shapes
""",
    "models": """examples:
  seamroto models                   # every character on SEAMROTO_MODELS and in the bundled models/
  seamroto models --json
""",
    "demo": """examples:
  seamroto demo -o demo_out         # synthesise a shot, track it with the bundled demo character, build nodes
""",
    "batch": """examples:
  seamroto batch shots.csv                          # every row: plates,frames,character,output
  seamroto batch feature.yaml -j 4                  # train missing characters, then 4 shots at a time
  seamroto batch feature.yaml --shot sh050          # one shot (what a farm task runs)
  seamroto batch feature.yaml --summary-only        # the table only: which shots are done
A shot whose plates, model and options are unchanged since it was tracked is skipped, so a re-run
after a crash does only what is left. Logs and summary.csv go to MANIFEST_batch/ (--report-dir).
""",
    "farm-job": """examples:
  seamroto farm-job feature.yaml -o jobs/feature    # Open Job Description bundle: Train, Track, Summary steps
  seamroto farm-job feature.yaml -o jobs/feature --python /opt/seamroto/bin/python --report-dir /show/logs
  openjd run jobs/feature/template.yaml             # run it on this machine
  deadline bundle submit jobs/feature               # submit it to AWS Deadline Cloud
""",
    "motion2roto": """examples:
  seamroto motion2roto sh050_roto.nk --roto Roto1 --plates 'plates/sh050.####.exr' -o sh050_motion.nk
  seamroto motion2roto sh050_roto.nk --roto Roto1 --shape lid_L --shape lid_R --plates 'plates/sh050.####.exr' \\
      --vectors 'vectors/sh050.####.exr' -o sh050_lids.nk
  seamroto motion2roto sh050_roto.nk --roto Roto1 --replacement mouth --plates 'plates/sh050.####.exr' -o m.nk
Keys stay exactly where the artist put them; frames between (and beyond) them follow the motion.
Writes OUT.nk (one new Roto node; the source script is never changed) and OUT.json (frames to review).
""",
    "bbox": """examples:
  seamroto bbox --plates 'plates/sh050.####.exr' --frame 1012 --box 820 310 420 560 -o out/sh050_box
The box is x y w h in image pixels (origin top-left, y down) on --frame. Writes OUT/bbox.nk (a Tracker4
with the four corners and the centre) and OUT/bbox.json; an existing OUT gets a new version.
""",
    "serve-request": """Reads one JSON request (schema SeamRotoRequest.1) on stdin and answers with JSON lines
(progress, log, result or error) on stdout. Used by the Nuke plugin when the core runs in its own venv.
""",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; every subcommand's help ends with examples."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="seamroto", description=__doc__, formatter_class=fmt)
    parser.add_argument("--version", action="version", version=f"seamroto {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log detail (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, warnings only")
    parser.add_argument("--log-file", type=Path, help="also write the full log to this file")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name, help=help_text, description=help_text, epilog=EXAMPLES.get(name), formatter_class=fmt
        )
        p.set_defaults(handler=handler)
        return p

    p = add("inspect", _cmd_inspect, "Show the nodes, roto shapes and tracks a .nk script holds.")
    p.add_argument("file", metavar="FILE.nk", help="a Nuke script (saved, or copied from the node graph)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = add("synth", _cmd_synth, "Render a synthetic split-face puppet shot with exact ground truth.")
    p.add_argument(
        "-o", "--output", type=Path, required=True, help="output folder (a new version if it exists)"
    )
    p.add_argument("--character", default="mara", help="synthetic character (default: mara)")
    p.add_argument("--seed", type=int, default=1, help="random seed: same seed, same shot (default: 1)")
    p.add_argument("--frames", type=int, default=48, help="number of frames from 1001 (default: 48)")
    p.add_argument("--size", type=_size, default=(2048, 1080), help="WIDTHxHEIGHT (default: 2048x1080)")
    p.add_argument("--formats", default="exr,png", help="comma list of exr,png (default: exr,png)")

    p = add("train", _cmd_train, "Learn a character from shots artists already tracked and rotoscoped.")
    p.add_argument("name", help="character name, e.g. mara")
    p.add_argument(
        "--shot", action="append", default=[], metavar="GT.nk", help="ground-truth Nuke script (repeat)"
    )
    p.add_argument(
        "--laika", action="append", default=[], metavar="DIR", help="LAIKA-format ground truth (repeat)"
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="model folder, e.g. models/mara/v1")
    p.add_argument("--from", dest="base_model", type=Path, help="fine-tune this model with the new shots")
    p.add_argument("--rig-only", action="store_true", help="learn only the roto rig (no images needed)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default: 0)")
    p.add_argument("--minutes", type=float, default=None, help="training time budget in minutes")
    p.add_argument("--resume", action="store_true", help="continue an interrupted training of OUTPUT")

    p = add("calibrate", _cmd_calibrate, "Calibrate a character's review flags on shots an artist checked.")
    p.add_argument("--model", type=Path, required=True, help="character model folder (models/NAME/vN)")
    p.add_argument(
        "--shot", action="append", default=[], required=True, metavar="CHECKED.nk",
        help="a checked shot the character did not train on: Read + Tracker4 (repeat)",
    )
    p.add_argument(
        "--prior-shot", action="append", default=[], metavar="GT.nk",
        help="a training script: learn the shape prior and print library again from these "
        "(repeat; default: keep the model's)",
    )
    p.add_argument(
        "-o", "--output", type=Path, default=None,
        help="the new version's folder (default: the next version beside --model, e.g. v5 -> v6)",
    )

    p = add("track", _cmd_track, "Track a shot: landmarks, roto shapes and seam-repair nodes for Nuke.")
    p.add_argument("plates", help="plate pattern in Nuke syntax: name.####.exr or name.%%04d.exr")
    p.add_argument("--model", type=Path, required=True, help="character model folder (models/NAME/vN)")
    p.add_argument(
        "-o", "--output", type=Path, required=True, help="output folder (a new version if it exists)"
    )
    p.add_argument("--first", type=int, help="first frame (default: first on disk)")
    p.add_argument("--last", type=int, help="last frame (default: last on disk)")
    p.add_argument("--confidence-threshold", type=float, default=None, help="flag frames below this (0-1)")
    p.add_argument("--smoothing", type=float, default=None, help="temporal smoothing strength (0 = off)")
    p.add_argument("--seam-band", type=float, default=None, help="seam-band matte width in px")
    p.add_argument("--feather", type=float, default=None, help="feather of the emitted shapes in px")
    p.add_argument("--precision", choices=["fp32", "int8"], default="fp32", help="model precision")
    p.add_argument(
        "--colourspace", default=None, help="OCIO colour space of the plates (default: by extension)"
    )
    p.add_argument("--report", action="store_true", help="also write OUT/report.html for review")
    _add_no_snap(p)

    p = add("refit", _cmd_refit, "Rebuild roto shapes from landmark tracks an artist corrected.")
    p.add_argument("--model", type=Path, required=True, help="character model folder")
    p.add_argument("--tracks", type=Path, required=True, help="tracks as .nk (Tracker4) or result.json")
    p.add_argument(
        "-o", "--output", type=Path, required=True, help="output folder (a new version if it exists)"
    )
    _add_no_snap(p)

    p = add("repair", _cmd_repair, "Render preview clean plates, inpainting along the seam band.")
    p.add_argument("result", type=Path, help="result.json from seamroto track")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")

    p = add("export", _cmd_export, "Export tracked shapes for other paint tools.")
    p.add_argument("result", type=Path, help="result.json from seamroto track")
    p.add_argument("--fxs", type=Path, required=True, help="Silhouette shape file to write")

    p = add("models", _cmd_models, "List the character models SeamRoto can see.")
    p.add_argument("--path", action="append", default=[], help="extra folder to search (repeat)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add("demo", _cmd_demo, "Run the main job on the bundled demo character and a synthetic shot.")
    p.add_argument("-o", "--output", type=Path, default=Path("demo_out"), help="output folder")

    p = add("batch", _cmd_batch, "Train and track every shot of a manifest, resumably, on this machine.")
    p.add_argument("manifest", type=Path, metavar="MANIFEST", help="shots as .csv, .yaml or .json")
    p.add_argument("-j", "--jobs", type=int, default=None, help="shots at once (default: cores, memory permitting)")
    p.add_argument("--report-dir", type=Path, default=None, help="logs and summary.csv (default: MANIFEST_batch/)")
    p.add_argument("--shot", action="append", default=[], metavar="NAME", help="only this shot (repeat)")
    p.add_argument("--character", action="append", default=[], metavar="NAME", help="only this character (repeat)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--no-train", action="store_true", help="track only; never train a missing character")
    mode.add_argument("--train-only", action="store_true", help="train the characters that need it, track nothing")
    mode.add_argument("--summary-only", action="store_true", help="report which shots are done; change nothing")
    p.add_argument("--hash-plates", action="store_true", help="recognise done shots by plate content, not mtime")
    p.add_argument("--no-summary-csv", action="store_true", help="do not write summary.csv (farm tasks)")
    p.add_argument("--models", action="append", default=[], type=Path, metavar="DIR", help="model folder to search")
    p.add_argument(
        "--path-mapping-rules", type=Path, default=None, metavar="FILE",
        help="OpenJD path mapping rules for the paths in the manifest ({{Session.PathMappingRulesFile}})",
    )

    p = add("farm-job", _cmd_farm_job, "Write an Open Job Description job bundle for a manifest (render farm).")
    p.add_argument("manifest", type=Path, metavar="MANIFEST", help="shots as .csv, .yaml or .json")
    p.add_argument("-o", "--output", type=Path, required=True, help="job bundle folder (a new version if it exists)")
    p.add_argument("--python", default=None, help="Python with seamroto on the workers (default: this one)")
    p.add_argument("--report-dir", type=Path, default=None, help="logs and summary (default: JOB_DIR/reports)")
    p.add_argument("--models", action="append", default=[], type=Path, metavar="DIR", help="model folder to search")
    p.add_argument("--name", default=None, help="job name (default: SeamRoto MANIFEST)")

    p = add("motion2roto", _cmd_motion2roto, "Animate keyed roto shapes through a shot with motion.")
    p.add_argument("script", metavar="SCRIPT.nk", help="the Nuke script holding the keyed Roto node (only read)")
    p.add_argument("--roto", required=True, help="name of the Roto node (Group.Name inside a Group)")
    p.add_argument("--shape", action="append", default=[], help="shape to animate (repeat; default: all)")
    p.add_argument("--plates", required=True, help="plate pattern in Nuke syntax: name.####.exr or name.%%04d.exr")
    p.add_argument("--vectors", help="motion-vector EXR pattern (forward/backward u,v) instead of optical flow")
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--replacement", action="append", default=[], metavar="NAME",
        help="a replacement piece (a new print every frame): snapped to each frame's edges from the keys' "
        "prints instead of following motion (repeat; default: shapes whose keys differ by more than an "
        "affine move, decided from the keys)",
    )
    group.add_argument("--no-replacement", action="store_true", help="every shape follows motion")
    p.add_argument("-o", "--output", type=Path, required=True, help="new .nk file (a new version if it exists)")

    p = add("bbox", _cmd_bbox, "Track a box keyed on one frame through the whole shot.")
    p.add_argument("--plates", required=True, help="plate pattern in Nuke syntax: name.####.exr or name.%%04d.exr")
    p.add_argument("--frame", type=int, required=True, help="the frame the box is drawn on")
    p.add_argument(
        "--box", type=float, nargs=4, required=True, metavar=("X", "Y", "W", "H"),
        help="the box on --frame: image pixels, origin top-left, y down",
    )
    p.add_argument("--name", default="BBoxTrack1", help="name of the Tracker4 node (default: BBoxTrack1)")
    p.add_argument(
        "-o", "--output", type=Path, required=True, help="output folder (a new version if it exists)"
    )

    add("serve-request", _cmd_serve_request, "Answer one JSON request on stdin (for the Nuke bridge).")
    return parser


def _setup_logging(verbose: int, quiet: bool, log_file: Optional[Path]) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    env_level = os.environ.get("SEAMROTO_LOG_LEVEL")
    if env_level:
        level = getattr(logging, env_level.upper(), level)
    handlers: List[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    handlers[0].setFormatter(logging.Formatter("%(levelname)s %(message)s" if verbose else "%(message)s"))
    if log_file:
        fh = logging.FileHandler(log_file, encoding="utf-8")
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        fh.setLevel(logging.DEBUG)
        handlers.append(fh)
    root = logging.getLogger("seamroto")
    root.handlers[:] = handlers
    root.setLevel(logging.DEBUG if log_file else level)
    handlers[0].setLevel(level)
    root.propagate = False


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Entry point of the ``seamroto`` script; the only place that calls ``sys.exit``."""
    sys.exit(run(argv))


def run(argv: Optional[Sequence[str]] = None) -> int:
    """Parse ``argv``, run the subcommand and return its exit code (tests call this)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what was run, for cards and logs
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    _setup_logging(args.verbose, args.quiet, args.log_file)
    try:
        return int(args.handler(args))
    except CancelledError:
        logger.warning("cancelled: nothing partial was left behind")
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        logger.warning("interrupted")
        return EXIT_CANCELLED
    except SeamRotoError as err:
        logger.error("error: %s", err)
        return EXIT_ERROR
