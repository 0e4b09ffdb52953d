"""``seamroto farm-job``: an Open Job Description job bundle that trains, tracks and sums up a manifest.

The bundle (``JOB_DIR/``) holds:

- ``template.yaml``: an OpenJD ``jobtemplate-2023-09`` job. A ``Train <character>`` step for each
  character whose model does not exist yet; a ``Track <character>`` step per character with one
  task per shot, depending on that character's Train step; a ``Summary`` step after every Track
  step. Each task runs ``python -m seamroto batch`` on the bundle's manifest for just its shot
  (or character), so a retried task skips a finished shot and restarts an interrupted one cleanly.
- ``manifest.json``: the manifest frozen at submit time: absolute paths, characters resolved to
  model folders, shots in a fixed order. Workers need no model search path.
- ``asset_references.yaml``: the input and output folders, for Deadline Cloud job attachments.

Tasks are whole shots, not frame chunks: tracking smooths and flows over the whole shot, so a
chunk would not give the same result as ``seamroto track`` at its boundaries. A feature's
thousands of shots are parallelism enough.

Paths: ``Manifest`` and ``ReportDir`` are ``PATH`` job parameters, which the farm maps itself;
the paths inside the manifest are mapped by ``seamroto batch`` with the session's rules file
(``{{Session.PathMappingRulesFile}}``). The same bundle runs with ``openjd run`` on one machine
and submits unchanged with ``deadline bundle submit JOB_DIR``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Union

from seamroto.errors import ManifestError, SeamRotoError
from seamroto.fileio import atomic_write_text, next_free_dir, staged_dir
from seamroto.manifest import Manifest

logger = logging.getLogger(__name__)

SPEC_VERSION = "jobtemplate-2023-09"
TEMPLATE_NAME = "template.yaml"
MANIFEST_NAME = "manifest.json"
ASSET_REFERENCES_NAME = "asset_references.yaml"
REPORT_DIR_NAME = "reports"
#: Tasks per Track step; the specification allows at most 1024 values in a task parameter's list.
MAX_TASKS_PER_STEP = 1000
STEP_NAME_MAX = 64
JOB_NAME_MAX = 128
SUMMARY_STEP = "Summary"

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class FarmJob:
    """A written job bundle, the names of its steps and the model folder of each character.

    ``models`` is what the manifest's character names resolved to at submit time (the frozen
    manifest holds these folders): a name can match a model on another search path than the
    submitter meant, for instance the bundled demo character, so the CLI prints them.
    """

    job_dir: Path
    template: Path
    manifest: Path
    asset_references: Path
    steps: tuple
    models: Tuple[Tuple[str, Path], ...] = ()


def _step_name(prefix: str, character: str, part: int = 0) -> str:
    suffix = f" ({part + 1})" if part else ""
    return f"{prefix} {character}"[: STEP_NAME_MAX - len(suffix)] + suffix


def _seamroto_action(args: Sequence[str]) -> Dict[str, Any]:
    """``{{Param.Python}} -m seamroto batch {{Param.Manifest}} ... `` with the session's path mapping."""
    common = [
        "--report-dir",
        "{{Param.ReportDir}}",
        "--path-mapping-rules",
        "{{Session.PathMappingRulesFile}}",
    ]
    return {
        "actions": {
            "onRun": {
                "command": "{{Param.Python}}",
                "args": ["-m", "seamroto", "batch", "{{Param.Manifest}}", *args, *common],
                # A cancel sends SIGTERM first: the batch removes its staged folder and stops.
                "cancelation": {"mode": "NOTIFY_THEN_TERMINATE"},
            }
        }
    }


def build_job_template(
    manifest: Manifest, *, manifest_file: str, report_dir: str, python: str, name: str
) -> Dict[str, Any]:
    """The OpenJD job template (a dict ready for YAML or JSON).

    OpenJD joins a ``PATH`` parameter's default to the template's folder and refuses absolute
    defaults, so both path defaults are relative to the bundle (which keeps it relocatable).

    Args:
        manifest: The manifest (its ``train`` entries that are ``needed`` get a Train step).
        manifest_file: The frozen manifest, relative to the bundle (``Manifest``'s default).
        report_dir: Logs and summary, relative to the bundle (``ReportDir``'s default).
        python: Default of the ``Python`` parameter: a Python with seamroto installed on the workers.
        name: Job name.
    """
    params: List[Dict[str, Any]] = [
        {
            "name": "Manifest",
            "type": "PATH",
            "objectType": "FILE",
            "dataFlow": "IN",
            "default": manifest_file,
            "description": "The frozen SeamRoto manifest (manifest.json in this bundle).",
            "userInterface": {"control": "CHOOSE_INPUT_FILE", "label": "Manifest"},
        },
        {
            "name": "ReportDir",
            "type": "PATH",
            "objectType": "DIRECTORY",
            "dataFlow": "OUT",
            "default": report_dir,
            "description": "Per-shot logs and the summary table (summary.csv).",
            "userInterface": {"control": "CHOOSE_DIRECTORY", "label": "Logs and summary"},
        },
        {
            "name": "Python",
            "type": "STRING",
            "minLength": 1,
            "default": python,
            "description": "The Python on the workers that has seamroto installed (python -m seamroto).",
            "userInterface": {"control": "LINE_EDIT", "label": "Python with SeamRoto"},
        },
    ]
    to_train = [t for t in manifest.train if t.needed]
    steps: List[Dict[str, Any]] = []
    train_steps: Dict[str, str] = {}
    for entry in to_train:
        step = _step_name("Train", entry.character)
        train_steps[entry.character] = step
        steps.append(
            {
                "name": step,
                "description": f"Train character {entry.character} into {entry.output}",
                "script": _seamroto_action(["--train-only", "--character", entry.character]),
            }
        )
    track_steps: List[str] = []
    for character in manifest.characters():
        names = [s.name for s in manifest.shots if s.character == character]
        for part, start in enumerate(range(0, len(names), MAX_TASKS_PER_STEP)):
            step = _step_name("Track", character, part)
            track_steps.append(step)
            track: Dict[str, Any] = {
                "name": step,
                "description": f"Track the shots of character {character}, one task per shot",
                "parameterSpace": {
                    "taskParameterDefinitions": [
                        {"name": "Shot", "type": "STRING", "range": names[start : start + MAX_TASKS_PER_STEP]}
                    ]
                },
                "script": _seamroto_action(
                    ["--no-train", "--no-summary-csv", "--jobs", "1", "--shot", "{{Task.Param.Shot}}"]
                ),
            }
            if character in train_steps:
                track["dependencies"] = [{"dependsOn": train_steps[character]}]
            steps.append(track)
    if track_steps:
        steps.append(
            {
                "name": SUMMARY_STEP,
                "description": "Summary table of every shot (frames, flagged frames, seconds) as summary.csv",
                "dependencies": [{"dependsOn": s} for s in track_steps],
                "script": _seamroto_action(["--summary-only"]),
            }
        )
    if not steps:
        raise ManifestError(
            "the manifest has no shot to track and no character to train; nothing to put in a farm job",
            path=str(manifest.path),
        )
    return {
        "specificationVersion": SPEC_VERSION,
        "name": name[:JOB_NAME_MAX],
        "description": f"SeamRoto: {len(manifest.shots)} shot(s), {len(to_train)} character(s) to train",
        "parameterDefinitions": params,
        "steps": steps,
    }


def _gt_plate_dirs(gt_scripts: Sequence[str]) -> Set[str]:
    """Folders of the plates the training scripts' Read nodes name.

    Best effort: a script that cannot be read is the Train step's error to report, not ours.
    """
    from seamroto.annotations import load_nk_annotation
    from seamroto.errors import SeamRotoError

    out: Set[str] = set()
    for script in gt_scripts:
        try:
            shot = load_nk_annotation(script).shot
        except SeamRotoError as err:
            logger.warning("asset references: cannot read %s (%s)", script, err)
            continue
        if shot is not None:
            out.add(os.path.dirname(shot.plates))
    return out


def build_asset_references(manifest: Manifest, report_dir: Path) -> Dict[str, Any]:
    """Deadline Cloud ``asset_references``: what job attachments upload and download."""
    inputs: Set[str] = set()
    outputs: Set[str] = {str(report_dir)}
    trained = {t.output for t in manifest.train}
    for shot in manifest.shots:
        inputs.add(os.path.dirname(shot.plates))
        if shot.model_dir not in trained:
            inputs.add(str(shot.model_dir))
        outputs.add(str(shot.output.parent))  # the parent: a changed shot becomes a sibling _vN
    for t in manifest.train:
        if not t.needed:
            continue
        inputs.update(os.path.dirname(s) for s in t.shots)
        inputs.update(t.laika)
        inputs.update(_gt_plate_dirs(t.shots))
        if t.base_model is not None:
            inputs.add(str(t.base_model))
        outputs.add(str(t.output.parent))
    return {
        "assetReferences": {
            "inputs": {"directories": sorted(inputs), "filenames": []},
            "outputs": {"directories": sorted(outputs)},
            "referencedPaths": [],
        }
    }


def farm_job_command(
    manifest_path: PathLike,
    job_dir: PathLike,
    *,
    python: Optional[str] = None,
    report_dir: Optional[PathLike] = None,
    model_paths: Sequence[PathLike] = (),
    name: Optional[str] = None,
) -> FarmJob:
    """``seamroto farm-job``: write a job bundle for a manifest into a new folder.

    Args:
        manifest_path: The manifest (CSV, YAML or JSON).
        job_dir: The bundle folder; when it exists, the next free ``_vN`` is used.
        python: Python with seamroto on the workers (default: this one, right for ``openjd run``).
        report_dir: Where tasks write logs and the summary (default: ``JOB_DIR/reports``).
        model_paths: Extra folders to resolve characters in.
        name: Job name (default: ``SeamRoto <manifest name>``).

    Raises:
        ManifestError: The manifest cannot be used (see ``read_manifest``).
    """
    import yaml

    from seamroto.manifest import read_manifest

    manifest = read_manifest(manifest_path, model_paths=model_paths)
    target = next_free_dir(Path(job_dir).resolve())
    frozen = target / MANIFEST_NAME
    reports = Path(report_dir).resolve() if report_dir else target / REPORT_DIR_NAME
    try:
        reports_rel = os.path.relpath(reports, target)
    except ValueError as err:  # Windows: another drive than the bundle
        raise SeamRotoError(
            f"the report folder {reports} must be on the same drive as the job bundle {target}; pick another "
            "--report-dir, or set the ReportDir parameter when you submit",
        ) from err
    template = build_job_template(
        manifest,
        manifest_file=MANIFEST_NAME,
        report_dir=Path(reports_rel).as_posix(),
        python=python or sys.executable,
        name=name or f"SeamRoto {manifest.path.stem}",
    )
    refs = build_asset_references(manifest, reports)
    with staged_dir(target) as tmp:
        atomic_write_text(tmp / MANIFEST_NAME, json.dumps(manifest.to_json(), indent=1) + "\n")
        atomic_write_text(tmp / TEMPLATE_NAME, yaml.safe_dump(template, sort_keys=False, width=1000))
        atomic_write_text(tmp / ASSET_REFERENCES_NAME, yaml.safe_dump(refs, sort_keys=False, width=1000))
    steps = tuple(s["name"] for s in template["steps"])
    models = tuple(dict.fromkeys((s.character, s.model_dir) for s in manifest.shots))
    logger.info("farm job %s: %s", target, ", ".join(steps))
    for character, model_dir in models:
        logger.info("farm job: %s tracks with %s", character, model_dir)
    return FarmJob(target, target / TEMPLATE_NAME, frozen, target / ASSET_REFERENCES_NAME, steps, models)
