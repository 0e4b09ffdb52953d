"""The main job end to end on a tiny real model: track -> outputs, re-runs, refit, repair, export."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from seamroto import cli
from seamroto.errors import ModelChecksumError, PlateNotFoundError
from seamroto.nk import reader
from seamroto.pipeline import TrackOptions, export_command, refit_command, repair_command, track_command
from seamroto.protocol import make_request, run_request
from seamroto.result import RESULT_SCHEMA, read_result


@pytest.fixture(scope="module")
def tracked(tiny_model: Path, farm_plates, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("track") / "sh010"
    return track_command(farm_plates["s1"], tiny_model, out, TrackOptions(report=True, repair_preview=True))


def test_track_writes_every_output(tracked: dict) -> None:
    for key in ("tracks", "shapes", "seamroto", "result", "report", "clean_plates", "seam_mattes"):
        assert key in tracked
    data = json.loads(Path(tracked["result"]).read_text())
    assert data["schema"] == RESULT_SCHEMA
    assert data["first"] == 1001 and data["last"] == 1006 and data["format"] == [256, 144]
    assert data["model"]["name"] == "mara" and len(data["model"]["sha256"]) == 64
    assert set(data["landmarks"]) and set(data["shapes"])
    assert not [p for p in Path(tracked["result"]).parent.parent.iterdir() if p.name.startswith(".")]


def test_seamroto_nk_is_read_tracker_roto_repair(tracked: dict) -> None:
    script = reader.read_script(tracked["seamroto"])
    classes = [n.node_class for n in script.nodes]
    assert classes[:3] == ["Read", "Tracker4", "Roto"]
    assert "F_WireRemoval" in classes and classes[-1] == "BackdropNode"
    tracker = reader.find_node(script, name="SeamRoto_tracks")
    tracks = reader.tracker_tracks(script, tracker, 144)
    result = read_result(tracked["result"])
    assert {t.name for t in tracks} == {t.name for t in result.tracks}
    repair = reader.find_node(script, node_class="F_WireRemoval")
    assert repair.value("wireType") in ("Two Points", "Three Points", "Five Points")
    assert "point1" in repair.knobs and "point5" in repair.knobs
    shapes = reader.roto_shapes(script, reader.find_node(script, node_class="Roto"), 144)
    assert {s.name for s in shapes} == {s.name for s in result.shapes}


def test_rerun_makes_a_new_version_and_leaves_the_first(tiny_model, farm_plates, tracked: dict) -> None:
    first = Path(tracked["result"])
    before = first.read_bytes()
    again = track_command(farm_plates["s1"], tiny_model, first.parent, TrackOptions())
    assert Path(again["result"]).parent.name == first.parent.name + "_v2"
    assert first.read_bytes() == before


def test_refit_rebuilds_the_same_shapes_from_the_tracks(tiny_model, tracked: dict, tmp_path) -> None:
    out = refit_command(tiny_model, Path(tracked["tracks"]), tmp_path / "refit")
    ours = {s.name: s for s in read_result(out["result"]).shapes}
    tracked_shapes = {s.name: s for s in read_result(tracked["result"]).shapes}
    assert set(ours) == set(tracked_shapes)
    for name, shape in ours.items():
        for frame in shape.key_frames:
            a, b = shape.points_array(frame), tracked_shapes[name].points_array(frame)
            assert abs(a - b).max() < 1e-2, (name, frame)


def test_refit_flags_shapes_whose_landmarks_are_missing(tiny_model, tracked: dict, tmp_path) -> None:
    data = json.loads(Path(tracked["result"]).read_text())
    dropped = next(iter(data["landmarks"]))
    del data["landmarks"][dropped]
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data))
    out = refit_command(tiny_model, edited, tmp_path / "refit")
    refit = json.loads(Path(out["result"]).read_text())
    flagged = {n for n, s in refit["shapes"].items() if s.get("flagged_frames")}
    lost_or_flagged = (set(data["shapes"]) - set(refit["shapes"])) | flagged
    assert lost_or_flagged, f"no shape noticed that {dropped} is missing"
    assert set(refit["shapes"]) - flagged, "shapes that do not need it are still fitted"


def test_repair_and_silhouette_export(tracked: dict, tmp_path) -> None:
    clean = repair_command(Path(tracked["result"]), tmp_path / "clean")
    assert len(list(Path(clean["clean_plates"]).parent.glob("clean.*.png"))) == 6
    fxs = export_command(Path(tracked["result"]), fxs=tmp_path / "shapes.fxs")
    root = ET.parse(fxs).getroot()
    assert root.tag == "Silhouette" and root.get("width") == "256"
    assert root.findall(".//Object[@type='Shape']")


def test_protocol_track_names_nodes_for_the_host(tiny_model, farm_plates, tmp_path) -> None:
    out = run_request(
        make_request(
            "track",
            {"plate": farm_plates["s2"], "model_dir": str(tiny_model), "out_dir": str(tmp_path / "job"),
             "node_prefix": "SeamRoto3", "node_version": 2, "include_read": False},
        )
    )
    script = reader.read_script(out["nk"])
    names = [n.name for n in script.nodes]
    assert "SeamRoto3_tracks_v2" in names and not any(n.node_class == "Read" for n in script.nodes)
    assert out["node_count"] >= 3


def test_cli_track_reports_missing_plates(tiny_model, tmp_path, caplog) -> None:
    code = cli.run(["track", str(tmp_path / "nope.####.exr"), "--model", str(tiny_model), "-o", str(tmp_path / "o")])
    assert code == cli.EXIT_ERROR
    assert not (tmp_path / "o").exists()
    with pytest.raises(PlateNotFoundError):
        track_command(str(tmp_path / "nope.####.exr"), tiny_model, tmp_path / "o")


def test_tampered_model_is_refused_before_anything_runs(tiny_model, farm_plates, tmp_path) -> None:
    import shutil

    bad = tmp_path / "mara" / "v9"
    shutil.copytree(tiny_model, bad)
    rig = bad / "rig.npz"
    rig.write_bytes(rig.read_bytes()[:-10])
    with pytest.raises(ModelChecksumError):
        track_command(farm_plates["s1"], bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()
