"""seamroto batch: manifests, path mapping, digests, and a batch killed mid-run that resumes cleanly."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest

from seamroto import batchworker, cli
from seamroto.batch import format_summary, run_batch, track_options, write_summary_csv
from seamroto.batchstate import DONE_MARKER, output_versions, remove_stale_partials, shot_digest
from seamroto.batchworker import STATUS_DONE, STATUS_FAILED, STATUS_TRACKED, ShotReport
from seamroto.errors import AnnotationError, ManifestError, PathMappingError
from seamroto.manifest import TrainEntry, read_manifest
from seamroto.pathmap import PathMapping, PathMappingRule, parse_path_mapping

KILL_TIMEOUT_S = 120.0  # generous: a loaded CI box; the shots themselves take about a second each
POLL_S = 0.02
TRACK_OUTPUTS = {"tracks.nk", "shapes.nk", "seamroto.nk", "result.json", DONE_MARKER}


def _fake_model(root: Path, character: str, version: str) -> Path:
    """A model folder as far as manifests and digests look: a card.json (nothing is loaded)."""
    folder = root / character / version
    folder.mkdir(parents=True)
    (folder / "card.json").write_text(json.dumps({"character": character, "version": version}))
    return folder


def _fake_plates(folder: Path, stem: str = "sh", frames: range = range(1001, 1004)) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for f in frames:
        (folder / f"{stem}.{f:04d}.exr").write_bytes(b"x" * (f - 1000))
    return str(folder / f"{stem}.####.exr")


def _rows(path: Path) -> Dict[str, Dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {r["shot"]: r for r in csv.DictReader(fh)}


# --- manifests ------------------------------------------------------------------------------


def test_csv_manifest_resolves_paths_frames_and_newest_model(tmp_path: Path) -> None:
    _fake_model(tmp_path / "models", "mara", "v2")
    newest = _fake_model(tmp_path / "models", "mara", "v10")
    pinned = _fake_model(tmp_path / "models", "otto", "v1")
    m = tmp_path / "m.csv"
    m.write_text(
        "# shots for reel 1\n"
        "shot,plates,frames,character,output\n"
        "sh010,plates/sh010.####.exr,1001-1048,mara,out/sh010\n"
        ",plates/sh020.####.exr,,otto/v1,out/sh020\n"
        "sh030,/abs/sh030.%04d.exr,1010,models/mara/v2,out/sh030\n"
    )
    man = read_manifest(m, model_paths=[tmp_path / "models"])
    a, b, c = man.shots
    assert (a.name, a.first, a.last, a.model_dir) == ("sh010", 1001, 1048, newest)  # v10 after v2
    assert a.plates == str(tmp_path / "plates" / "sh010.####.exr") and a.output == tmp_path / "out" / "sh010"
    assert (b.name, b.first, b.last, b.model_dir, b.character) == ("sh020", None, None, pinned, "otto")
    assert (c.first, c.last, c.plates, c.character) == (1010, 1010, "/abs/sh030.%04d.exr", "mara")
    assert man.characters() == ["mara", "otto"]


def test_yaml_manifest_with_training_options_and_json_round_trip(tmp_path: Path) -> None:
    m = tmp_path / "feature.yaml"
    m.write_text(
        "options: {precision: fp32, smoothing: 0.5}\n"
        "train:\n"
        "  - {character: mara, shots: [gt/a.nk, gt/b.nk], output: models/mara/v1, minutes: 5}\n"
        "shots:\n"
        "  - {shot: sh010, plates: p/sh010.####.exr, first: 1001, last: 1010, character: mara, output: out/sh010}\n"
    )
    man = read_manifest(m)
    (t,) = man.train
    assert t.needed and t.output == tmp_path / "models" / "mara" / "v1" and t.minutes == 5.0
    assert man.shots[0].model_dir == t.output  # the model the train entry will write
    assert track_options(man, man.shots[0]).smoothing == 0.5
    frozen = tmp_path / "frozen" / "manifest.json"
    frozen.parent.mkdir()
    frozen.write_text(json.dumps(man.to_json()))
    again = read_manifest(frozen)
    assert again.shots == man.shots and again.train == man.train and dict(again.options) == dict(man.options)


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ("shot,plates,character,output\na,p.####.exr,m,out/a\na,p.####.exr,m,out/b\n", "two shots are named"),
        ("shot,plates,character,output\na,p.####.exr,m,out/x\nb,p.####.exr,m,out/x\n", "both write"),
        ("shot,plates,character,output\na,p.####.exr,nobody,out/a\n", "neither a model folder"),
        ("shot,plates,frames,character,output\na,p.####.exr,10-2,m,out/a\n", "first > last"),
        ("shot,plates,frames,character,output\na,p.####.exr,ten,m,out/a\n", "FIRST-LAST"),
        ("shot,plates,character\na,p.####.exr,m\n", "no 'output'"),
        ("shot,plates,character,output\nsh 1,p.####.exr,m,out/a\n", "letters, digits"),
    ],
)
def test_bad_manifest_rows_name_the_problem(tmp_path: Path, rows: str, match: str) -> None:
    _fake_model(tmp_path, "m", "v1")
    m = tmp_path / "m.csv"
    m.write_text(rows)
    with pytest.raises(ManifestError, match=match):
        read_manifest(m, model_paths=[tmp_path])


def test_csv_errors_carry_the_line_and_unknown_options_are_refused(tmp_path: Path) -> None:
    m = tmp_path / "m.csv"
    m.write_text("shot,plates,character,output\n\nx,p.####.exr,ghost,out/x\n")
    with pytest.raises(ManifestError) as err:
        read_manifest(m, model_paths=[tmp_path])
    assert err.value.line == 3 and str(m) in str(err.value)
    y = tmp_path / "m.yaml"
    y.write_text("options: {smoothness: 1}\nshots: []\n")
    with pytest.raises(ManifestError, match="unknown option"):
        read_manifest(y)


# --- path mapping ---------------------------------------------------------------------------


def test_path_mapping_rules_match_whole_components_most_specific_first() -> None:
    mapping = parse_path_mapping(
        {
            "version": "pathmapping-1.0",
            "path_mapping_rules": [
                {"source_path_format": "POSIX", "source_path": "/mnt/show", "destination_path": "/farm/show"},
                {"source_path_format": "POSIX", "source_path": "/mnt/show/plates", "destination_path": "/fast"},
                {"source_path_format": "WINDOWS", "source_path": "S:\\Show", "destination_path": "/farm/win"},
                {"source_path_format": "URI", "source_path": "s3://bucket", "destination_path": "/s3"},
            ],
        }
    )
    assert len(mapping.rules) == 3  # the URI rule cannot match a file path
    assert mapping.map("/mnt/show/plates/sh010.####.exr") == "/fast/sh010.####.exr"
    assert mapping.map("/mnt/show/out/sh010") == "/farm/show/out/sh010"
    assert mapping.map("/mnt/shows/out") == "/mnt/shows/out"  # not a component match
    assert mapping.map("s:\\SHOW\\gt\\a.nk") == "/farm/win/gt/a.nk"  # Windows: case-insensitive
    assert mapping.map("relative/path") == "relative/path"
    assert not parse_path_mapping({}) and not PathMapping()
    with pytest.raises(PathMappingError, match="pathmapping-1.0"):
        parse_path_mapping({"version": "pathmapping-9"})


def test_manifest_paths_are_mapped_before_they_resolve(tmp_path: Path) -> None:
    model = _fake_model(tmp_path / "farm" / "models", "mara", "v1")
    m = tmp_path / "m.csv"
    m.write_text("plates,character,output\n/studio/p/sh.####.exr,/studio/models/mara/v1,/studio/out/sh010\n")
    mapping = PathMapping((PathMappingRule("POSIX", "/studio", str(tmp_path / "farm")),))
    (shot,) = read_manifest(m, path_mapping=mapping).shots
    assert shot.plates == str(tmp_path / "farm" / "p" / "sh.####.exr")
    assert shot.model_dir == model and shot.output == tmp_path / "farm" / "out" / "sh010"


# --- digests, versions, summary -------------------------------------------------------------


def test_digest_follows_plates_model_and_options_but_not_the_plate_folder(tmp_path: Path) -> None:
    model = _fake_model(tmp_path, "mara", "v1")
    m = tmp_path / "m.csv"
    plates = _fake_plates(tmp_path / "p")
    m.write_text(f"plates,character,output\n{plates},{model},out/sh\n")
    man = read_manifest(m)
    shot = man.shots[0]
    opts = track_options(man, shot)
    base = shot_digest(shot, opts)
    assert (base.first, base.last) == (1001, 1003)  # the range on disk
    assert shot_digest(shot, opts).digest == base.digest
    moved = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "p", moved)
    for src in (tmp_path / "p").iterdir():
        st = src.stat()
        os.utime(moved / src.name, ns=(st.st_atime_ns, st.st_mtime_ns))
    other = dataclasses.replace(shot, plates=str(moved / "sh.####.exr"))
    assert shot_digest(other, opts).digest == base.digest  # same files seen through another mount
    content = shot_digest(shot, opts, hash_plates=True).digest
    frame = tmp_path / "p" / "sh.1002.exr"
    os.utime(frame, ns=(frame.stat().st_atime_ns, frame.stat().st_mtime_ns + 10**9))
    assert shot_digest(shot, opts).digest != base.digest  # re-rendered plate
    assert shot_digest(shot, opts, hash_plates=True).digest == content  # same content
    now = shot_digest(shot, opts).digest
    assert shot_digest(shot, dataclasses.replace(opts, smoothing=2.0)).digest != now  # other options
    (model / "card.json").write_text("{}")  # another model
    assert shot_digest(shot, opts).digest != now


def test_output_versions_and_stale_partials(tmp_path: Path) -> None:
    names = ("sh010", "sh010_v3", "sh010_v2", "sh0100", ".sh010.abc.partial", ".sh010_v4.x.partial", ".other.partial")
    for name in names:
        (tmp_path / name).mkdir()
    out = tmp_path / "sh010"
    assert [p.name for p in output_versions(out)] == ["sh010", "sh010_v2", "sh010_v3"]
    removed = sorted(p.name for p in remove_stale_partials(out))
    assert removed == [".sh010.abc.partial", ".sh010_v4.x.partial"]
    assert (tmp_path / ".other.partial").is_dir() and (tmp_path / "sh0100").is_dir()


def test_summary_table_and_csv(tmp_path: Path) -> None:
    rows = [
        ShotReport("sh010", STATUS_TRACKED, 48, 2, 12.25, "/out/sh010", "/logs/sh010.log"),
        ShotReport("sh020", STATUS_DONE, 100, 0, 30.0, "/out/sh020", "/logs/sh020.log"),
        ShotReport("sh030", STATUS_FAILED, log="/logs/sh030.log", error="plates missing"),
    ]
    text = format_summary(rows)
    lines = text.splitlines()
    assert lines[0].split() == ["shot", "status", "frames", "flagged", "seconds", "output"]
    assert "plates missing" in lines[3]
    assert lines[-1].startswith("3 shot(s): 1 tracked, 1 already done, 1 failed; 148 frames, 2 flagged")
    got = _rows(write_summary_csv(tmp_path / "summary.csv", rows))
    assert got["sh010"]["frames"] == "48" and got["sh010"]["seconds"] == "12.250"
    assert got["sh030"]["status"] == STATUS_FAILED and got["sh030"]["error"] == "plates missing"


@pytest.mark.parametrize("name", ["batch", "farm-job"])
def test_help_has_examples(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.run([name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"seamroto {name}" in out


# --- the batch end to end (tiny real model) -------------------------------------------------


def _attempts(log: Path, shot: str) -> int:
    return log.read_text(encoding="utf-8").count(f"=== {shot}: tracking")


def test_the_first_search_path_with_the_character_wins(tmp_path: Path, monkeypatch) -> None:
    # a newer mara elsewhere on the path (SEAMROTO_MODELS, the bundled demo) must not outrank
    # the manifest's own models folder; within that folder the newest version wins.
    _fake_model(tmp_path / "elsewhere", "mara", "v9")
    monkeypatch.setenv("SEAMROTO_MODELS", str(tmp_path / "elsewhere"))
    _fake_model(tmp_path / "models", "mara", "v1")
    ours = _fake_model(tmp_path / "models", "mara", "v002")
    m = tmp_path / "m.yaml"
    m.write_text("models: [models]\nshots:\n  - {shot: sh, plates: p/sh.####.exr, character: mara, output: out/sh}\n")
    assert read_manifest(m).shots[0].model_dir == ours


def _partials(folder: Path) -> List[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".partial")]


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="kills a process group (POSIX)")
def test_killed_batch_resumes_without_losing_or_repeating_a_shot(
    tmp_path: Path, tiny_model: Path, farm_plates: Dict[str, str]
) -> None:
    m = tmp_path / "shots.csv"
    m.write_text(
        "shot,plates,frames,character,output\n"
        f"a,{farm_plates['s1']},1001-1006,{tiny_model},out/a\n"
        f"b,{farm_plates['s2']},,{tiny_model},out/b\n"
        f"c,{farm_plates['s1']},1002-1005,{tiny_model},out/c\n"
    )
    out, logs = tmp_path / "out", tmp_path / "shots_batch" / "logs"
    with open(tmp_path / "killed.log", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "seamroto", "batch", str(m), "--jobs", "1"],
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,  # its own process group: the kill takes everything it started
        )
        deadline = time.monotonic() + KILL_TIMEOUT_S
        try:
            # Kill while b is being built: a is marked done and b's staged folder exists.
            while not ((out / "a" / DONE_MARKER).is_file() and list(out.glob(".b.*.partial"))):
                assert proc.poll() is None, (tmp_path / "killed.log").read_text()
                assert time.monotonic() < deadline, "the batch never reached shot b"
                time.sleep(POLL_S)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["a"]  # b is not half there
    a_marker = (out / "a" / DONE_MARKER).read_text()

    assert cli.run(["-q", "batch", str(m), "--jobs", "2"]) == cli.EXIT_OK  # in-process, with a pool

    rows = _rows(tmp_path / "shots_batch" / "summary.csv")
    assert {k: r["status"] for k, r in rows.items()} == {"a": STATUS_DONE, "b": STATUS_TRACKED, "c": STATUS_TRACKED}
    assert (rows["a"]["frames"], rows["b"]["frames"], rows["c"]["frames"]) == ("6", "6", "4")
    assert sorted(p.name for p in out.iterdir()) == ["a", "b", "c"]  # no _v2, nothing hidden left
    assert not _partials(tmp_path)
    for shot in "abc":
        assert {p.name for p in (out / shot).iterdir()} == TRACK_OUTPUTS
        assert json.loads((out / shot / "result.json").read_text())["schema"] == "SeamRotoResult.1"
    assert (out / "a" / DONE_MARKER).read_text() == a_marker  # a was not tracked again
    assert (_attempts(logs / "a.log", "a"), _attempts(logs / "b.log", "b"), _attempts(logs / "c.log", "c")) == (1, 2, 1)

    report = run_batch(read_manifest(m))  # a third run has nothing left to do
    assert {r.status for r in report.shots} == {STATUS_DONE} and not report.failed


def test_changed_plates_get_a_new_version_and_failures_do_not_stop_the_rest(
    tmp_path: Path, tiny_model: Path, farm_plates: Dict[str, str]
) -> None:
    plates = tmp_path / "plates"
    shutil.copytree(Path(farm_plates["s1"]).parent, plates)
    pattern = str(plates / Path(farm_plates["s1"]).name)
    m = tmp_path / "m.yaml"
    m.write_text(
        "shots:\n"
        f"  - {{shot: sh, plates: '{pattern}', frames: 1001-1003, character: '{tiny_model}', output: out/sh}}\n"
        f"  - {{shot: gone, plates: '{tmp_path}/none.####.exr', character: '{tiny_model}', output: out/gone}}\n"
    )
    first = run_batch(read_manifest(m), jobs=1)
    assert [r.status for r in first.shots] == [STATUS_TRACKED, STATUS_FAILED]
    assert "none" in first.failed[0].error and first.failed[0].log.endswith("gone.log")
    frame = plates / Path(farm_plates["s1"]).name.replace("####", "1002")
    os.utime(frame, ns=(frame.stat().st_atime_ns, frame.stat().st_mtime_ns + 10**9))  # re-rendered
    again = run_batch(read_manifest(m), jobs=1, shots=["sh"])
    assert [(r.status, Path(r.output).name) for r in again.shots] == [(STATUS_TRACKED, "sh_v2")]
    assert (tmp_path / "out" / "sh" / DONE_MARKER).is_file()  # the old version is kept, untouched
    assert [(r.status, Path(r.output).name) for r in run_batch(read_manifest(m), shots=["sh"]).shots] == [
        (STATUS_DONE, "sh_v2")
    ]


def test_batch_trains_a_missing_character_once_and_a_failed_training_fails_only_its_shots(
    tmp_path: Path, tiny_model: Path, farm_plates: Dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: List[str] = []

    def fake_train(entry: TrainEntry, log: Path, progress: object) -> Path:
        calls.append(entry.character)
        if entry.character == "otto":
            raise AnnotationError("the ground truth has no landmark tracks", path=entry.shots[0])
        shutil.copytree(tiny_model, entry.output)  # what training writes, without the wait
        return entry.output

    monkeypatch.setattr(batchworker, "train_one", fake_train)
    m = tmp_path / "m.yaml"
    m.write_text(
        "train:\n"
        "  - {character: mara, shots: [gt/a.nk], output: models/mara/v1}\n"
        "  - {character: otto, shots: [gt/b.nk], output: models/otto/v1}\n"
        "shots:\n"
        f"  - {{shot: sh, plates: '{farm_plates['s1']}', frames: 1001-1002, character: mara, output: out/sh}}\n"
        f"  - {{shot: so, plates: '{farm_plates['s2']}', character: otto, output: out/so}}\n"
    )
    report = run_batch(read_manifest(m), jobs=1)
    assert calls == ["mara", "otto"] and report.trained == (tmp_path / "models" / "mara" / "v1",)
    assert [(r.shot, r.status) for r in report.shots] == [("sh", STATUS_TRACKED), ("so", STATUS_FAILED)]
    assert "training otto failed" in report.failed[0].error and len(report.train_errors) == 1
    again = run_batch(read_manifest(m), jobs=1)
    assert calls == ["mara", "otto", "otto"]  # mara's model exists now: not trained again
    assert again.shots[0].status == STATUS_DONE


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or sys.platform == "win32", reason="POSIX signals")
def test_farm_cancel_sigterm_stops_between_frames_and_leaves_nothing(
    tmp_path: Path, tiny_model: Path, farm_plates: Dict[str, str]
) -> None:
    m = tmp_path / "m.csv"
    m.write_text(f"shot,plates,character,output\nsh,{farm_plates['s1']},{tiny_model},out/sh\n")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "seamroto", "batch", str(m)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + KILL_TIMEOUT_S
    while not list(out.glob(".sh.*.partial")):
        assert proc.poll() is None and time.monotonic() < deadline, "the shot never started"
        time.sleep(POLL_S)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=KILL_TIMEOUT_S)
    assert proc.returncode == cli.EXIT_CANCELLED, err.decode()
    assert list(out.iterdir()) == []  # the staged folder was removed, no output under the final name
