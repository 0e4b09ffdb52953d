"""SeamRoto's Track and Build nodes, end to end through the bridge (in process and subprocess)."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
from adapter_helpers import make_read, new_names, select_only, snapshot, wait_for_workers

JOB_TIMEOUT_S = 60.0


def _seamroto_on_read(sr: types.SimpleNamespace, tmp_path: Path, character: str = "mara") -> tuple:
    fake = sr.nuke
    read = make_read(fake, tmp_path)
    select_only(fake, read)
    node = sr.commands.create_node("SeamRoto")
    assert node is not None
    node["character"].setValue(character)
    return read, node


def _track(sr: types.SimpleNamespace, node: object) -> object:
    job = sr.commands.track(node)
    assert job.wait(JOB_TIMEOUT_S), "the track job did not finish"
    return job


def _out_root(tmp_path: Path) -> Path:
    return tmp_path / "shots" / "seamroto"


def test_track_builds_versioned_wired_backdropped_nodes(
    sr: types.SimpleNamespace, tmp_path: Path, bridge_mode: str, gui: bool
) -> None:
    fake = sr.nuke
    read, node = _seamroto_on_read(sr, tmp_path)
    assert node.name() == "SeamRoto1" and node.input(0) is read
    before = snapshot(fake)

    job = _track(sr, node)

    assert job.error is None
    assert new_names(before, fake) == ["SeamRoto1_backdrop_v1", "SeamRoto1_roto_v1", "SeamRoto1_tracks_v1"]
    tracker, roto, backdrop = (fake.toNode(f"SeamRoto1_{r}_v1") for r in ("tracks", "roto", "backdrop"))
    assert (tracker.Class(), roto.Class(), backdrop.Class()) == ("Tracker4", "Roto", "BackdropNode")
    assert tracker.input(0) is node and roto.input(0) is tracker
    for pasted in (tracker, roto):
        assert pasted.xpos() > node.xpos() + node.screenWidth()
        assert backdrop.xpos() < pasted.xpos() < backdrop.xpos() + backdrop["bdwidth"].value()
        assert backdrop.ypos() < pasted.ypos() < backdrop.ypos() + backdrop["bdheight"].value()
    assert "mara v10" in backdrop["label"].value()
    assert node["used_character"].value() == "mara"
    assert node["used_model_version"].value() == "v10"  # natural order: v10 is newer than v2
    out_dir = _out_root(tmp_path) / "SeamRoto1_v1"
    assert node["last_nk"].value() == str(out_dir / "seamroto.nk")
    assert node["status"].value().startswith("Track: v1:")
    request = json.loads((out_dir / "result.json").read_text())["args"]
    assert request["plate"] == read["file"].value()
    assert (request["first"], request["last"]) == (1001, 1004)
    assert request["model_dir"].endswith("mara/v10") and request["include_read"] is False
    assert (request["node_prefix"], request["node_version"]) == ("SeamRoto1", 1)
    assert request["snap_pieces"] is True  # the knob's default: the mouth onto each frame's edges
    assert fake._fake.messages == []
    if gui:
        (task,) = fake._fake.progress_tasks
        assert task.progress[-1] == 100 and task.title == "SeamRoto Track"
        assert fake._fake.main_thread_calls[-1].startswith("seamroto-")


def test_rerun_makes_new_versions_and_never_touches_existing_nodes(
    sr: types.SimpleNamespace, tmp_path: Path, bridge_mode: str
) -> None:
    fake = sr.nuke
    read, node = _seamroto_on_read(sr, tmp_path)
    _track(sr, node)
    tracker_v1 = fake.toNode("SeamRoto1_tracks_v1")
    tracker_v1["label"].setValue("artist fixed frame 1003")  # the artist's edits
    tracker_v1.setXYpos(500, 900)
    tracker_v1.setSelected(True)
    other = fake.nodes.Grade(name="ArtistGrade", xpos=-300)
    other.setInput(0, tracker_v1)
    before = snapshot(fake)
    ours = {node.name()}

    _track(sr, node)

    after = snapshot(fake)
    for name, knobs in before.items():
        if name not in ours:
            assert after[name] == knobs, f"{name} was changed"
    assert new_names(before, fake) == ["SeamRoto1_backdrop_v2", "SeamRoto1_roto_v2", "SeamRoto1_tracks_v2"]
    assert fake.toNode("SeamRoto1_tracks_v2").input(0) is node
    assert sorted(p.name for p in _out_root(tmp_path).iterdir()) == ["SeamRoto1_v1", "SeamRoto1_v2"]
    assert fake.toNode("SeamRoto1_backdrop_v2").ypos() > fake.toNode("SeamRoto1_backdrop_v1").ypos()


def test_build_nodes_pastes_the_last_result_again_as_a_new_version(sr: types.SimpleNamespace, tmp_path: Path) -> None:
    fake = sr.nuke
    fake.GUI = False
    read, node = _seamroto_on_read(sr, tmp_path)
    with pytest.raises(sr.errors.KnobError, match="press Track first"):
        sr.commands.button(node, "build_nodes")
    _track(sr, node)
    before = snapshot(fake)
    node["build_nodes"].execute()  # the button's own one-line script
    assert new_names(before, fake) == ["SeamRoto1_backdrop_v2", "SeamRoto1_roto_v2", "SeamRoto1_tracks_v2"]
    assert fake.toNode("SeamRoto1_tracks_v2")["tracks"].value() == fake.toNode("SeamRoto1_tracks_v1")["tracks"].value()


@pytest.mark.parametrize("answer", [False, True])
def test_many_nodes_are_pasted_only_after_asking(sr: types.SimpleNamespace, tmp_path: Path, answer: bool) -> None:
    fake = sr.nuke
    fake._fake.ask_answer = answer
    read, node = _seamroto_on_read(sr, tmp_path, character="crowd")
    before = snapshot(fake)
    job = _track(sr, node)
    assert job.error is None
    assert len(fake._fake.asked) == 1 and "create 16 nodes" in fake._fake.asked[0]
    made = new_names(before, fake)
    if answer:
        assert len(made) == 17  # 16 pasted + the backdrop
    else:
        assert made == [] and "not built" in node["status"].value()
        assert node["last_nk"].value()  # the result is kept: Build nodes can paste it later


def test_cancel_leaves_no_nodes_and_no_output(
    sr: types.SimpleNamespace, tmp_path: Path, bridge_mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = sr.nuke
    monkeypatch.setenv("SEAMROTO_FAKE_DELAY_S", "0.05")
    fake._fake.cancel_after_updates = 1
    read, node = _seamroto_on_read(sr, tmp_path)
    read["last"].setValue(1060)
    before = snapshot(fake)
    job = _track(sr, node)
    assert job.cancelled
    assert new_names(before, fake) == []
    root = _out_root(tmp_path)
    assert not root.exists() or list(root.iterdir()) == []  # no final folder, no staged leftovers
    assert fake._fake.messages == []  # a cancel is not an error dialog
    assert node["status"].value() == "Track: cancelled, nothing changed"
    assert node["last_nk"].value() == ""


def test_core_error_is_a_short_artist_message_in_gui(
    sr: types.SimpleNamespace, tmp_path: Path, bridge_mode: str
) -> None:
    fake = sr.nuke
    read, node = _seamroto_on_read(sr, tmp_path, character="broken")
    before = snapshot(fake)
    node["track"].execute()
    wait_for_workers()
    (text,) = fake._fake.messages
    assert "Track stopped" in text and "frame 1002" in text and "sh010.%04d.exr" in text
    assert "re-render" in text and "TD" not in text
    assert new_names(before, fake) == []
    assert "frame 1002" in node["status"].value()


def test_core_error_is_logged_and_raised_in_terminal_mode(
    sr: types.SimpleNamespace, tmp_path: Path, bridge_mode: str
) -> None:
    fake = sr.nuke
    fake.GUI = False
    read, node = _seamroto_on_read(sr, tmp_path, character="broken")
    with pytest.raises(sr.errors.CoreError) as caught:
        sr.commands.button(node, "track")
    assert caught.value.error_class == "PlateReadError" and caught.value.frame == 1002
    assert fake._fake.messages == []
    log = Path(sr.feedback.setup_logging()).read_text(encoding="utf-8")
    assert "Track stopped" in log and "frame 1002" in log


def test_unexpected_crash_points_the_artist_at_the_log(
    sr: types.SimpleNamespace, tmp_path: Path, bridge_mode: str
) -> None:
    fake = sr.nuke
    read, node = _seamroto_on_read(sr, tmp_path, character="crashy")
    _track(sr, node)
    (text,) = fake._fake.messages
    log_path = sr.feedback.setup_logging()
    assert "Track failed" in text and "Details for your TD" in text and str(log_path) in text
    log = Path(log_path).read_text(encoding="utf-8")
    assert "ZeroDivisionError" in log and "Traceback" in log


def test_non_read_input_is_rendered_to_exr_over_the_frame_range(
    sr: types.SimpleNamespace, tmp_path: Path, bridge_mode: str
) -> None:
    fake = sr.nuke
    read = make_read(fake, tmp_path)
    grade = fake.nodes.Grade(name="CC")
    grade.setInput(0, read)
    select_only(fake, grade)
    node = sr.commands.create_node("SeamRoto")
    node["character"].setValue("mara")
    node["use_custom_range"].setValue(True)
    node["first_frame"].setValue(1002)
    node["last_frame"].setValue(1003)
    _track(sr, node)

    (executed,) = fake._fake.executed
    assert executed == ("SeamRoto1.SeamRoto_render", 1002, 1003)
    assert [n.Class() for n in node.nodes()] == ["Input", "Output"]  # the temp Write is gone
    render_dir = _out_root(tmp_path) / "SeamRoto1_v1.plate"
    assert sorted(p.name for p in render_dir.iterdir()) == ["plate.1002.exr", "plate.1003.exr"]
    request = json.loads((_out_root(tmp_path) / "SeamRoto1_v1" / "result.json").read_text())["args"]
    assert request["plate"] == (render_dir / "plate.%04d.exr").as_posix()
    assert (request["first"], request["last"], request["colourspace"]) == (1002, 1003, "scene_linear")
    assert fake.toNode("SeamRoto1_tracks_v1").input(0) is node


def test_cancelled_render_removes_its_frames_and_skips_the_core(sr: types.SimpleNamespace, tmp_path: Path) -> None:
    fake = sr.nuke
    fake._fake.execute_error = RuntimeError("Cancelled")
    read = make_read(fake, tmp_path)
    grade = fake.nodes.Grade(name="CC")
    grade.setInput(0, read)
    select_only(fake, grade)
    node = sr.commands.create_node("SeamRoto")
    node["character"].setValue("mara")
    before = snapshot(fake)
    sr.commands.button(node, "track")
    assert new_names(before, fake) == []
    assert not (_out_root(tmp_path) / "SeamRoto1_v1.plate").exists()
    assert [n.Class() for n in node.nodes()] == ["Input", "Output"]
    assert fake._fake.messages == []  # cancelled: nothing to report


def test_missing_input_and_missing_models_are_knob_messages(
    sr: types.SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = sr.nuke
    select_only(fake)
    node = sr.commands.create_node("SeamRoto")
    node["character"].setValue("mara")
    sr.commands.button(node, "track")
    assert "SeamRoto1: connect the plate" in fake._fake.messages[-1]

    monkeypatch.setenv("SEAMROTO_MODELS", str(tmp_path / "nowhere"))
    lonely = sr.commands.create_node("SeamRoto")
    assert lonely["character"].values() == ["none_found"]
    lonely.setInput(0, make_read(fake, tmp_path, name="plate2"))
    sr.commands.button(lonely, "track")
    assert "SeamRoto2.character: pick a character" in fake._fake.messages[-1]
    assert "SEAMROTO_MODELS" in fake._fake.messages[-1]


def test_a_farm_rerun_reuses_the_model_version_the_artist_tracked_with(
    sr: types.SimpleNamespace, tmp_path: Path
) -> None:
    fake = sr.nuke
    read, node = _seamroto_on_read(sr, tmp_path)
    node["used_character"].setValue("mara")
    node["used_model_version"].setValue("v2")
    fake.GUI = False
    _track(sr, node)
    request = json.loads((_out_root(tmp_path) / "SeamRoto1_v1" / "result.json").read_text())["args"]
    assert request["model_version"] == "v2"
    fake.GUI = True
    _track(sr, node)
    request = json.loads((_out_root(tmp_path) / "SeamRoto1_v2" / "result.json").read_text())["args"]
    assert request["model_version"] == "v10"  # in the GUI, 'latest' means latest


def test_open_report_and_troubleshoot(sr: types.SimpleNamespace, tmp_path: Path, bridge_mode: str) -> None:
    fake = sr.nuke
    fake.GUI = False
    read, node = _seamroto_on_read(sr, tmp_path)
    with pytest.raises(sr.errors.KnobError, match="no report yet"):
        sr.commands.button(node, "open_report")
    _track(sr, node)
    assert sr.commands.button(node, "open_report").endswith("report.html")
    fake.GUI = True
    job = sr.commands.troubleshoot(node)
    assert job is not None and job.wait(JOB_TIMEOUT_S)
    (text,) = fake._fake.messages
    assert "send this to your TD" in text and "core commands:" in text and "track" in text
    assert f"core runs: {bridge_mode}" in text and "mara v10" in text


def test_a_second_track_on_a_busy_node_is_refused(
    sr: types.SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = sr.nuke
    monkeypatch.setenv("SEAMROTO_FAKE_DELAY_S", "0.05")
    read, node = _seamroto_on_read(sr, tmp_path)
    read["last"].setValue(1020)
    job = sr.commands.track(node)
    sr.commands.button(node, "track")
    assert "is already tracking" in fake._fake.messages[-1]
    assert job.wait(JOB_TIMEOUT_S) and job.error is None
    assert fake.toNode("SeamRoto1_tracks_v1") is not None and fake.toNode("SeamRoto1_tracks_v2") is None


def test_a_result_holding_a_root_node_is_refused_before_it_changes_the_script(
    sr: types.SimpleNamespace, tmp_path: Path
) -> None:
    fake = sr.nuke
    anchor = fake.nodes.Grade(name="anchor")
    nk = tmp_path / "bad.nk"
    nk.write_text("Root {\n first_frame 1\n last_frame 9\n}\nRoto {\n name R\n}\n", encoding="utf-8")
    with pytest.raises(sr.errors.PasteError, match="Root node"):
        sr.results.paste_result(str(nk), anchor=anchor, wire_to=anchor, prefix="anchor", version=1, label="x")
    assert fake.root()["last_frame"].value() == 100 and fake.toNode("R") is None
