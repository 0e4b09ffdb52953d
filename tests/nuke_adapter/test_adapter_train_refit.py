"""SeamRotoTrain and SeamRotoRefit: ground truth out of the script, new versions back in."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
from adapter_helpers import make_read, new_names, select_only, snapshot

JOB_TIMEOUT_S = 60.0


def _ground_truth(fake: types.ModuleType, tmp_path: Path) -> tuple:
    read = make_read(fake, tmp_path, name="sh020_plate")
    tracks = fake.nodes.Tracker4(name="gt_tracks")
    tracks.setInput(0, read)
    roto = fake.nodes.Roto(name="gt_roto")
    roto.setInput(0, tracks)
    return read, tracks, roto


def test_train_exports_ground_truth_and_writes_a_new_model_version(
    sr: types.SimpleNamespace, tmp_path: Path, bridge_mode: str, gui: bool
) -> None:
    fake = sr.nuke
    read, tracks, roto = _ground_truth(fake, tmp_path)
    select_only(fake, read, tracks, roto)
    node = sr.commands.create_node("SeamRotoTrain")
    assert node["training_nodes"].value() == "gt_tracks gt_roto"
    node["character_name"].setValue("mara")  # exists: v1, v2, v10 -> v11, fine-tuned from v10
    before = snapshot(fake)

    job = sr.commands.train(node)
    assert job.wait(JOB_TIMEOUT_S) and job.error is None

    model_dir = tmp_path / "models" / "mara" / "v11"
    assert node["last_model_dir"].value() == str(model_dir)
    request = json.loads((model_dir / "train_args.json").read_text())
    assert request["base_model_dir"].endswith("mara/v10")
    (shot,) = request["shots"]
    assert shot["plate"] == read["file"].value() and shot["nodes"] == ["gt_tracks", "gt_roto"]
    assert not Path(shot["ground_truth_nk"]).exists()  # staging copies are removed afterwards
    assert {k: v for k, v in snapshot(fake).items() if k != node.name()} == {
        k: v for k, v in before.items() if k != node.name()
    }
    assert [n.name() for n in fake.selectedNodes()] == ["SeamRotoTrain1"]  # selection restored after export
    assert "v11" in sr.paths.versions(sr.paths.find_models(), "mara")
    if gui:
        assert any("trained mara v11" in m for m in fake._fake.messages)


def test_train_needs_a_name_and_ground_truth(sr: types.SimpleNamespace, tmp_path: Path) -> None:
    fake = sr.nuke
    fake.GUI = False
    select_only(fake)
    node = sr.commands.create_node("SeamRotoTrain")
    with pytest.raises(sr.errors.KnobError, match="character_name: type a character name"):
        sr.commands.button(node, "train")
    node["character_name"].setValue("otto")
    with pytest.raises(sr.errors.KnobError, match="training_nodes: pick ground truth"):
        sr.commands.button(node, "train")
    node["training_nk_files"].setValue(str(tmp_path / "missing.nk"))
    with pytest.raises(sr.errors.KnobError, match="does not exist"):
        sr.commands.button(node, "train")


def test_calibrate_sends_the_checked_shots_and_the_newest_model_and_writes_the_next_version(
    sr: types.SimpleNamespace, tmp_path: Path, bridge_mode: str
) -> None:
    fake = sr.nuke
    fake.GUI = False
    read, tracks, roto = _ground_truth(fake, tmp_path)
    select_only(fake, read, tracks)
    node = sr.commands.create_node("SeamRotoTrain")
    node["character_name"].setValue("mara")  # v1, v2, v10: calibrates v10 into v11
    before = snapshot(fake)
    job = sr.commands.button(node, "calibrate")
    assert job.wait(JOB_TIMEOUT_S) and job.error is None
    model_dir = tmp_path / "models" / "mara" / "v11"
    assert node["last_model_dir"].value() == str(model_dir)
    request = json.loads((model_dir / "calibrate_args.json").read_text())
    assert request["model_dir"].endswith("mara/v10") and request["out_dir"] == str(model_dir)
    (shot,) = request["shots"]
    assert shot["nodes"] == ["gt_tracks"] and not Path(shot["ground_truth_nk"]).exists()
    assert "calibrated mara v11 from v10" in node["status"].value() and "after" in node["status"].value()
    assert {k: v for k, v in snapshot(fake).items() if k != node.name()} == {
        k: v for k, v in before.items() if k != node.name()
    }


def test_calibrate_needs_a_trained_character(sr: types.SimpleNamespace, tmp_path: Path) -> None:
    fake = sr.nuke
    fake.GUI = False
    read, tracks, _ = _ground_truth(fake, tmp_path)
    select_only(fake, read, tracks)
    node = sr.commands.create_node("SeamRotoTrain")
    node["character_name"].setValue("nobody")
    with pytest.raises(sr.errors.KnobError, match="no model of 'nobody'.*train it first"):
        sr.commands.button(node, "calibrate")


def test_use_selected_and_add_nk_file_fill_the_pick_lists(sr: types.SimpleNamespace, tmp_path: Path) -> None:
    fake = sr.nuke
    read, tracks, roto = _ground_truth(fake, tmp_path)
    select_only(fake)
    node = sr.commands.create_node("SeamRotoTrain")
    select_only(fake, read, roto)
    node["use_selected"].execute()
    assert node["training_nodes"].value() == "gt_roto"
    fake._fake.get_filename_answer = "/shows/ep1/sh030_gt.nk"
    node["add_nk_file"].execute()
    node["add_nk_file"].execute()
    assert node["training_nk_files"].value() == "/shows/ep1/sh030_gt.nk"


def test_refit_pastes_a_new_roto_beside_the_old_one(
    sr: types.SimpleNamespace, tmp_path: Path, bridge_mode: str, gui: bool
) -> None:
    fake = sr.nuke
    read = make_read(fake, tmp_path)
    select_only(fake, read)
    seamroto = sr.commands.create_node("SeamRoto")
    seamroto["character"].setValue("mara")
    assert sr.commands.track(seamroto).wait(JOB_TIMEOUT_S)
    tracker = fake.toNode("SeamRoto1_tracks_v1")
    old_roto = fake.toNode("SeamRoto1_roto_v1")
    tracker["label"].setValue("keys moved by the artist")
    select_only(fake, tracker)
    refit = sr.commands.create_node("SeamRotoRefit")
    assert refit.input(0) is tracker
    assert (refit["seamroto_node"].value(), refit["roto_node"].value()) == ("SeamRoto1", "SeamRoto1_roto_v1")
    refit["snap_pieces"].setValue(False)  # this shot's mouth: as the rig fits it
    before = snapshot(fake)

    job = sr.commands.refit(refit)
    assert job.wait(JOB_TIMEOUT_S) and job.error is None

    assert new_names(before, fake) == ["SeamRoto1_backdrop_v2", "SeamRoto1_roto_v2"]
    new_roto = fake.toNode("SeamRoto1_roto_v2")
    assert new_roto.input(0) is old_roto.input(0) is tracker
    assert new_roto.xpos() > old_roto.xpos()
    for name, knobs in before.items():
        if name != refit.name():
            assert snapshot(fake)[name] == knobs, f"{name} was changed"
    request = json.loads((tmp_path / "shots" / "seamroto" / "SeamRoto1_v2" / "refit_args.json").read_text())
    assert request["model_dir"].endswith("mara/v10") and request["result"].endswith("SeamRoto1_v1/result.json")
    assert request["snap_pieces"] is False
    assert not Path(request["tracks_nk"]).exists()  # the exported tracks were staging only


def test_refit_needs_a_tracker_and_a_tracked_seamroto_node(sr: types.SimpleNamespace, tmp_path: Path) -> None:
    fake = sr.nuke
    fake.GUI = False
    select_only(fake)
    refit = sr.commands.create_node("SeamRotoRefit")
    with pytest.raises(sr.errors.InputError, match="connect the edited Tracker4"):
        sr.commands.button(refit, "refit")
    tracker = fake.nodes.Tracker4(name="hand_tracks")
    refit.setInput(0, tracker)
    with pytest.raises(sr.errors.KnobError, match="seamroto_node: name the SeamRoto node"):
        sr.commands.button(refit, "refit")
    seamroto = sr.commands.create_node("SeamRoto")
    refit["seamroto_node"].setValue(seamroto.name())
    with pytest.raises(sr.errors.KnobError, match="has not been tracked yet"):
        sr.commands.button(refit, "refit")
