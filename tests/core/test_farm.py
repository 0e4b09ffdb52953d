"""seamroto farm-job: an OpenJD job bundle that openjd checks, runs through path mapping like seamroto track."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import yaml

from seamroto import cli, farm
from seamroto.batchstate import DONE_MARKER
from seamroto.batchworker import STATUS_DONE
from seamroto.farm import farm_job_command
from seamroto.nk.numbers import parse_hex_float

TRACK_FILES = ("tracks.nk", "shapes.nk", "seamroto.nk", "result.json")
# A farm task (``batch --jobs 1``) tracks in its own process with the same code, model, frames
# and threads as ``seamroto track``: the outputs are identical (measured: 0.0). The tolerance
# only allows for the last printed digit.
SAME_OUTPUT_TOL = 1e-6
_NUMBER = re.compile(r"\bx[0-9a-f]{8}\b|-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _numbers(text: str) -> Tuple[str, List[float]]:
    """The text with every number replaced by '#', and the numbers (hex roto floats decoded)."""
    values: List[float] = []

    def take(m: re.Match[str]) -> str:
        tok = m.group(0)
        values.append(parse_hex_float(tok) if tok.startswith("x") else float(tok))
        return "#"

    return _NUMBER.sub(take, text), values


def _assert_same_output(ours: str, theirs: str, what: str) -> None:
    skel_a, num_a = _numbers(ours)
    skel_b, num_b = _numbers(theirs)
    assert skel_a == skel_b, f"{what}: structure differs"
    diffs = [(abs(a - b), i, a, b) for i, (a, b) in enumerate(zip(num_a, num_b))]
    worst = max(diffs, default=(0.0, -1, 0.0, 0.0))
    assert worst[0] <= SAME_OUTPUT_TOL, f"{what}: numbers differ by up to {worst} of {len(diffs)}"
OPENJD = Path(sys.executable).parent / "openjd"


def _openjd(*args: str) -> subprocess.CompletedProcess:
    exe = OPENJD if OPENJD.exists() else shutil.which("openjd")
    if not exe:
        pytest.skip("openjd-cli is not installed (pip install -e '.[dev]')")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300)


def _fake_model(root: Path, character: str, version: str) -> Path:
    folder = root / character / version
    folder.mkdir(parents=True)
    (folder / "card.json").write_text(json.dumps({"character": character, "version": version}))
    return folder


def _steps(template: Path) -> Dict[str, dict]:
    return {s["name"]: s for s in yaml.safe_load(template.read_text())["steps"]}


def test_template_trains_where_needed_tracks_per_shot_and_passes_openjd_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_model(tmp_path / "models", "otto", "v1")
    done = _fake_model(tmp_path / "models", "lionel", "v1")  # a train entry whose model exists
    m = tmp_path / "feature.yaml"
    m.write_text(
        "models: [models]\n"
        "train:\n"
        "  - {character: mara, shots: [gt/a.nk], output: models/mara/v1}\n"
        f"  - {{character: lionel, shots: [gt/b.nk], output: '{done}'}}\n"
        "shots:\n"
        "  - {shot: sh010, plates: plates/sh010.####.exr, character: mara, output: out/sh010}\n"
        "  - {shot: sh020, plates: plates/sh020.####.exr, character: otto, output: out/sh020}\n"
        "  - {shot: sh030, plates: plates/sh030.####.exr, character: otto, output: out/sh030}\n"
        "  - {shot: sh040, plates: plates/sh040.####.exr, character: otto, output: out/sh040}\n"
        "  - {shot: sh050, plates: plates/sh050.####.exr, character: lionel, output: out/sh050}\n"
    )
    monkeypatch.setattr(farm, "MAX_TASKS_PER_STEP", 2)  # a long shot list splits into steps
    job = farm_job_command(m, tmp_path / "job", python="python3")
    steps = _steps(job.template)
    assert list(steps) == ["Train mara", "Track mara", "Track lionel", "Track otto", "Track otto (2)", "Summary"]
    assert steps["Track mara"]["dependencies"] == [{"dependsOn": "Train mara"}]
    assert "dependencies" not in steps["Track otto"] and "dependencies" not in steps["Track lionel"]
    assert [d["dependsOn"] for d in steps["Summary"]["dependencies"]] == [
        "Track mara",
        "Track lionel",
        "Track otto",
        "Track otto (2)",
    ]
    shots = steps["Track otto"]["parameterSpace"]["taskParameterDefinitions"][0]["range"]
    assert shots == ["sh020", "sh030"]
    args = steps["Track otto"]["script"]["actions"]["onRun"]["args"]
    assert args[:4] == ["-m", "seamroto", "batch", "{{Param.Manifest}}"]
    assert "{{Session.PathMappingRulesFile}}" in args and "{{Task.Param.Shot}}" in args
    train_args = steps["Train mara"]["script"]["actions"]["onRun"]["args"]
    assert train_args[train_args.index("--character") + 1] == "mara" and "--train-only" in train_args
    params = {p["name"]: p for p in yaml.safe_load(job.template.read_text())["parameterDefinitions"]}
    assert params["Manifest"]["default"] == "manifest.json" and params["Manifest"]["dataFlow"] == "IN"
    assert params["ReportDir"]["default"] == "reports" and params["ReportDir"]["dataFlow"] == "OUT"

    frozen = json.loads(job.manifest.read_text())
    assert frozen["shots"][1]["model"] == str(tmp_path / "models" / "otto" / "v1")
    assert all(Path(s["plates"]).is_absolute() for s in frozen["shots"])
    refs = yaml.safe_load(job.asset_references.read_text())["assetReferences"]
    assert str(tmp_path / "plates") in refs["inputs"]["directories"]
    assert str(tmp_path / "gt") in refs["inputs"]["directories"]
    assert {str(tmp_path / "out"), str(tmp_path / "models" / "mara")} <= set(refs["outputs"]["directories"])

    checked = _openjd("check", str(job.template))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    again = farm_job_command(m, tmp_path / "job", python="python3")
    assert again.job_dir.name == "job_v2"  # an existing bundle is never overwritten


def test_cli_farm_job_prints_how_to_run_and_submit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fake_model(tmp_path / "models", "otto", "v1")
    m = tmp_path / "m.csv"
    m.write_text(f"shot,plates,character,output\nsh,p/sh.####.exr,{tmp_path / 'models/otto/v1'},out/sh\n")
    assert cli.run(["-q", "farm-job", str(m), "-o", str(tmp_path / "job")]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert f"openjd run {tmp_path / 'job' / 'template.yaml'}" in out
    assert f"deadline bundle submit {tmp_path / 'job'}" in out
    assert f"model:    otto -> {tmp_path / 'models/otto/v1'}" in out  # which model a name resolved to


def _read_summary(path: Path) -> Dict[str, Dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {r["shot"]: r for r in csv.DictReader(fh)}


def test_openjd_run_through_path_mapping_writes_what_seamroto_track_writes(
    tmp_path: Path, tiny_model: Path, farm_plates: Dict[str, str]
) -> None:
    # The submitter's storage is src/; the "worker" sees the same files under dst/.
    src, dst = tmp_path / "src", tmp_path / "dst"
    for name in ("s1", "s2"):
        shutil.copytree(Path(farm_plates[name]).parent, src / "plates" / name)
    shutil.copytree(tiny_model, src / "models" / "mara" / "v001")
    pattern = {n: f"plates/{n}/{Path(farm_plates[n]).name}" for n in ("s1", "s2")}
    # Plain ``mara``: the bundled demo model is on the search path too, so this also checks that
    # the manifest's own models folder wins (it once lost a v001 == v1 tie to the demo model).
    (src / "feature.yaml").write_text(
        "models: [models]\n"
        "shots:\n"
        f"  - {{shot: sh010, plates: '{pattern['s1']}', frames: 1002-1005, character: mara, output: out/sh010}}\n"
        f"  - {{shot: sh020, plates: '{pattern['s2']}', character: mara, output: out/sh020}}\n"
    )
    job = farm_job_command(src / "feature.yaml", src / "job")
    assert job.steps == ("Track mara", "Summary")
    assert job.models == (("mara", src / "models" / "mara" / "v001"),)  # the model seamroto track gets
    os.rename(src, dst)
    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps(
            {
                "version": "pathmapping-1.0",
                "path_mapping_rules": [
                    {"source_path_format": "POSIX", "source_path": str(src), "destination_path": str(dst)}
                ],
            }
        )
    )
    ran = _openjd("run", str(dst / "job" / "template.yaml"), "--path-mapping-rules", f"file://{rules}")
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr[-2000:]

    summary = _read_summary(dst / "job" / "reports" / "summary.csv")
    assert {k: (r["status"], r["frames"]) for k, r in summary.items()} == {
        "sh010": (STATUS_DONE, "4"),
        "sh020": (STATUS_DONE, "6"),
    }
    assert not src.exists() and not list(dst.rglob("*.partial"))
    model = dst / "models" / "mara" / "v001"
    for shot, plates, frames in (("sh010", "s1", ["--first", "1002", "--last", "1005"]), ("sh020", "s2", [])):
        ref = tmp_path / "ref" / shot
        argv: List[str] = ["-q", "track", str(dst / pattern[plates]), "--model", str(model), "-o", str(ref), *frames]
        assert cli.run(argv) == cli.EXIT_OK
        farm_out = dst / "out" / shot
        assert json.loads((farm_out / DONE_MARKER).read_text())["model"]["dir"] == str(model)
        for name in TRACK_FILES:
            _assert_same_output((farm_out / name).read_text(), (ref / name).read_text(), f"{shot}/{name}")
