"""The core's protocol commands (``track``, ``train``, ``calibrate``, ``refit``): request args -> pipeline calls.

``seamroto.protocol`` registers these; the Nuke plugin sends them in process or through
``python -m seamroto serve-request``. Arg names are documented in ``seamroto.protocol``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from seamroto.errors import ProtocolError
from seamroto.progress import Progress

Command = Callable[[Dict[str, Any], Progress], Dict[str, Any]]


def _need(args: Dict[str, Any], key: str) -> Any:
    value = args.get(key)
    if value in (None, ""):
        raise ProtocolError(f"the request needs args.{key}", knob=key)
    return value


def _opt_float(args: Dict[str, Any], key: str) -> Optional[float]:
    value = args.get(key)
    return None if value in (None, "") else float(value)


def _opt_int(args: Dict[str, Any], key: str) -> Optional[int]:
    value = args.get(key)
    return None if value in (None, "") else int(value)


def _names(args: Dict[str, Any]) -> Any:
    from seamroto.pipeline import NodeNames

    return NodeNames(str(args.get("node_prefix") or "SeamRoto"), _opt_int(args, "node_version"))


def _scripts(args: Dict[str, Any], command: str, what: str) -> List[str]:
    """Ground-truth scripts of a request: the host's exported shots, then its .nk files."""
    shots = [str(_need(s, "ground_truth_nk")) for s in args.get("shots", [])]
    shots += [str(p) for p in args.get("nk_files", []) if p]
    if not shots:
        raise ProtocolError(f"{command} needs args.shots or args.nk_files ({what})", knob="shots")
    return shots


def track_job(args: Dict[str, Any], progress: Progress) -> Dict[str, Any]:
    """Track a plate and write a paste-ready build into ``out_dir`` (which must not exist)."""
    from seamroto import config
    from seamroto.fileio import staged_dir
    from seamroto.pipeline import TrackOptions, _write_report, track_shot, write_outputs

    out = Path(_need(args, "out_dir"))
    if out.exists():
        raise ProtocolError("out_dir exists; the host must pick a new version folder", path=str(out), knob="out_dir")
    options = TrackOptions(
        first=_opt_int(args, "first"),
        last=_opt_int(args, "last"),
        confidence_threshold=_opt_float(args, "confidence_threshold"),
        smoothing=_opt_float(args, "smoothing"),
        seam_band_px=_opt_float(args, "seam_band_px"),
        feather_px=_opt_float(args, "feather_px"),
        report=bool(args.get("report", False)),
        colourspace=str(args.get("colourspace") or "") or None,
        snap_pieces=bool(args.get("snap_pieces", True)),
    )
    result, shot, character, _ = track_shot(
        str(_need(args, "plate")), Path(_need(args, "model_dir")), options, progress
    )
    with staged_dir(out) as tmp:
        paths = write_outputs(
            tmp,
            result,
            shot,
            seam_width_px=options.seam_band_px or config.DEFAULT_SEAM_BAND_PX,
            names=_names(args),
            include_read=bool(args.get("include_read", True)),
        )
        if options.report:
            paths["report"] = _write_report(tmp, result, options)
    final = {k: str(out / p.relative_to(tmp)) for k, p in paths.items()}
    return {
        "nk": final["seamroto"],
        "result": final["result"],
        "report": final.get("report", ""),
        "character": character.ref.name,
        "model_version": character.ref.version,
        "flagged_frames": list(result.flagged_frames),
    }


def train_job(args: Dict[str, Any], progress: Progress) -> Dict[str, Any]:
    """Train a character from exported ground-truth shots and/or .nk files."""
    from seamroto.pipeline import train_command

    shots = _scripts(args, "train", "ground-truth scripts")
    epochs = _opt_float(args, "epochs")
    model_dir = train_command(
        str(_need(args, "character")),
        shots=shots,
        output=Path(_need(args, "out_dir")),
        base_model=Path(args["base_model_dir"]) if args.get("base_model_dir") else None,
        minutes=_opt_float(args, "minutes"),
        progress=progress,
    )
    del epochs  # the training budget is in steps/minutes; epochs is accepted for older hosts
    return {"model_dir": str(model_dir), "character": str(args["character"]), "model_version": model_dir.name}


def calibrate_job(args: Dict[str, Any], progress: Progress) -> Dict[str, Any]:
    """Calibrate a character's review flags on checked shots (exported and/or .nk files).

    Returns ``model_dir``, ``character``, ``model_version`` and ``summary`` (one line per
    checked shot: the flag figures before and after, for the artist's status line).
    """
    from seamroto.calibration import calibrate_command

    shots = _scripts(args, "calibrate", "checked scripts")
    done = calibrate_command(
        Path(_need(args, "model_dir")),
        [Path(s) for s in shots],
        Path(_need(args, "out_dir")),
        command="seamroto_nuke calibrate",
        progress=progress,
    )
    model_dir = Path(done["model"])
    summary = [f"{Path(src).name}: before {b.summary()}; after {a.summary()}"
               for src, b, a in zip(done["shots"], done["before"], done["after"])]
    return {
        "model_dir": str(model_dir),
        "character": model_dir.parent.name,
        "model_version": model_dir.name,
        "summary": summary,
    }


def refit_job(args: Dict[str, Any], progress: Progress) -> Dict[str, Any]:
    """Shapes from an edited Tracker4 (exported by the host) -> a new Roto node's .nk."""
    from seamroto.pipeline import TrackOptions, refit_command

    options = TrackOptions(
        feather_px=_opt_float(args, "feather_px"),
        smoothing=_opt_float(args, "smoothing"),
        snap_pieces=bool(args.get("snap_pieces", True)),
    )
    result = str(args.get("result") or "")
    outputs = refit_command(
        Path(_need(args, "model_dir")),
        Path(_need(args, "tracks_nk")),
        Path(_need(args, "out_dir")),
        progress,
        options=options,
        names=_names(args),
        like=Path(result) if result else None,
    )
    return {"nk": str(outputs["shapes"]), "result": str(outputs["result"])}


def register_all(register: Callable[[str, Command], Any]) -> None:
    """Register the core's job commands with the protocol."""
    for name, fn in (("track", track_job), ("train", train_job), ("calibrate", calibrate_job), ("refit", refit_job)):
        register(name, fn)
