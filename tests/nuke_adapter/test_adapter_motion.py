"""Motion2Roto and BBoxTracker nodes (issue 6): knobs, requests, pastes and errors, on the fake Nuke."""

from __future__ import annotations

import importlib
import json
import os
import types
from pathlib import Path

import pytest
from adapter_helpers import make_read, new_names, select_only, snapshot

JOB_TIMEOUT_S = 60.0
FAKE_MOTION_CORE = Path(__file__).resolve().with_name("fake_core_motion.py")

# Artists' scripts store these names: this list only ever grows. Never rename or remove one.
SAVED_KNOB_NAMES = {
    "Motion2Roto": [
        "seamroto_node_type", "seamroto_knob_api", "motion2roto_tab", "shape_names", "use_vectors",
        "vectors_file", "flow_preset", "output_dir", "actions_divider", "animate", "troubleshoot", "status",
        "advanced_tab", "core_python", "flagged_frames", "last_nk", "last_report", "replacement_shapes",
    ],
    "BBoxTracker": [
        "seamroto_node_type", "seamroto_knob_api", "bbox_tab", "box", "reference_frame", "use_current_frame",
        "output_dir", "actions_divider", "track_box", "troubleshoot", "status", "advanced_tab", "core_python",
        "flagged_frames", "last_nk", "last_result",
    ],
}
KNOB_CLASS = {
    "tab": "Tab_Knob", "text": "Text_Knob", "divider": "Text_Knob", "enum": "Enumeration_Knob", "int": "Int_Knob",
    "bool": "Boolean_Knob", "string": "String_Knob", "file": "File_Knob", "button": "PyScript_Knob",
    "bbox": "BBox_Knob",
}


@pytest.fixture
def motion(sr: types.SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """The adapter plus the motion-tool modules, with fake motion commands in the core."""
    plugins = os.environ["SEAMROTO_PROTOCOL_PLUGINS"] + os.pathsep + str(FAKE_MOTION_CORE)
    monkeypatch.setenv("SEAMROTO_PROTOCOL_PLUGINS", plugins)
    sr.motion_knobs = importlib.import_module("seamroto_nuke.motion_knobs")
    sr.motion_commands = importlib.import_module("seamroto_nuke.motion_commands")
    return sr


def _roto_on_read(fake: types.ModuleType, tmp_path: Path) -> tuple:
    read = make_read(fake, tmp_path)
    roto = fake.nodes.Roto(name="Roto1")
    roto.setInput(0, read)
    roto["curves"].setValue("{artist curves}")
    return read, roto


def _wait(job: object) -> object:
    assert job.wait(JOB_TIMEOUT_S), "the job did not finish"
    return job


@pytest.mark.parametrize("type_name", sorted(SAVED_KNOB_NAMES))
def test_motion_nodes_keep_their_saved_knobs_with_tooltips(motion: types.SimpleNamespace, type_name: str) -> None:
    fake = motion.nuke
    select_only(fake)
    node = motion.commands.create_node(type_name)
    node_type = motion.nodes.NODE_TYPES[type_name]
    names = [s.name for s in node_type.knobs.specs]
    assert [n for n in SAVED_KNOB_NAMES[type_name] if n not in names] == []
    for spec in node_type.knobs.specs:
        knob = node[spec.name]
        assert knob.Class() == KNOB_CLASS[spec.kind], spec.name
        assert knob.tooltip() == spec.tooltip and len(spec.tooltip) > 10, spec.name
        if spec.kind == "button":
            assert spec.name in motion.commands.ACTIONS, spec.name
    assert [n.Class() for n in node.nodes()] == ["Input"] * len(node_type.inputs) + ["Output"]


def test_the_box_knob_starts_on_its_default_and_holds_nuke_coordinates(motion: types.SimpleNamespace) -> None:
    node = motion.commands.create_node("BBoxTracker")
    assert motion.motion_commands.box_value(node) == list(motion.motion_knobs.DEFAULT_BOX)
    node["box"].fromDict({"x": 10, "y": 20, "r": 110, "t": 220})
    assert motion.motion_commands.box_value(node) == [10.0, 20.0, 110.0, 220.0]


def test_motion2roto_on_a_selected_roto_pastes_a_new_roto_and_never_touches_the_source(
    motion: types.SimpleNamespace, tmp_path: Path, bridge_mode: str, gui: bool
) -> None:
    fake = motion.nuke
    read, roto = _roto_on_read(fake, tmp_path)
    select_only(fake, roto)
    node = motion.commands.create_node("Motion2Roto")
    assert node.input(0) is roto
    node["shape_names"].setValue("eye_L lid_L")
    before = snapshot(fake)

    job = _wait(motion.motion_commands.motion2roto(node))

    assert job.error is None
    assert new_names(before, fake) == ["Motion2Roto1_backdrop_v1", "Motion2Roto1_roto_v1"]
    pasted = fake.toNode("Motion2Roto1_roto_v1")
    assert pasted.Class() == "Roto" and pasted.input(0) is read  # beside the source, on the same plate
    unchanged = {k: v for k, v in snapshot(fake).items() if k in before and k != node.name()}
    assert unchanged == {k: v for k, v in before.items() if k != node.name()}
    report = json.loads(Path(node["last_report"].value()).read_text())
    request = report["args"]
    assert request["plate"] == read["file"].value() and (request["first"], request["last"]) == (1001, 1004)
    assert request["roto_node"] == "Roto1" and request["shapes"] == ["eye_L", "lid_L"]
    assert request["vectors"] == "" and request["preset"] == "ultrafast"
    assert "{artist curves}" in report["script"]  # the exported copy of the artist's Roto
    assert not Path(request["script"]).exists()  # and its staging copy is gone
    assert node["flagged_frames"].value() == "1002, 1003"
    assert "2 frame(s) to review: 1002, 1003" in node["status"].value()
    assert fake._fake.messages == []


def test_motion2roto_asks_for_a_roto_and_for_vectors_when_they_are_on(
    motion: types.SimpleNamespace, tmp_path: Path
) -> None:
    fake = motion.nuke
    fake.GUI = False
    read = make_read(fake, tmp_path)
    select_only(fake, read)
    node = motion.commands.create_node("Motion2Roto")
    with pytest.raises(motion.errors.InputError, match="connect the keyed Roto node"):
        motion.commands.button(node, "animate")
    _, roto = _roto_on_read(fake, tmp_path)
    node.setInput(0, roto)
    node["use_vectors"].setValue(True)
    with pytest.raises(motion.errors.KnobError, match="vectors_file: pick the motion-vector EXR"):
        motion.commands.button(node, "animate")


def test_motion2roto_without_a_plate_says_where_to_connect_it(motion: types.SimpleNamespace) -> None:
    fake = motion.nuke
    fake.GUI = False
    roto = fake.nodes.Roto(name="Roto1")
    select_only(fake, roto)
    node = motion.commands.create_node("Motion2Roto")
    with pytest.raises(motion.errors.InputError, match="connect it to the 'plate' input"):
        motion.commands.button(node, "animate")


def test_motion2roto_sends_the_vectors_when_asked(motion: types.SimpleNamespace, tmp_path: Path) -> None:
    fake = motion.nuke
    fake.GUI = False
    _, roto = _roto_on_read(fake, tmp_path)
    select_only(fake, roto)
    node = motion.commands.create_node("Motion2Roto")
    node["use_vectors"].setValue(True)
    node["vectors_file"].setValue("/vectors/sh010.####.exr")
    _wait(motion.motion_commands.motion2roto(node))
    request = json.loads(Path(node["last_report"].value()).read_text())["args"]
    assert request["vectors"] == "/vectors/sh010.####.exr" and request["shapes"] == []
    assert request["replacement"] == "auto"


def test_motion2roto_sends_the_replacement_pieces_as_typed(motion: types.SimpleNamespace, tmp_path: Path) -> None:
    fake = motion.nuke
    fake.GUI = False
    _, roto = _roto_on_read(fake, tmp_path)
    select_only(fake, roto)
    node = motion.commands.create_node("Motion2Roto")
    node["replacement_shapes"].setValue("mouth  jaw")
    _wait(motion.motion_commands.motion2roto(node))
    request = json.loads(Path(node["last_report"].value()).read_text())["args"]
    assert request["replacement"] == "mouth  jaw"  # the core reads the words (auto, none, names)


def test_bbox_tracker_sends_the_box_in_nuke_coordinates_and_pastes_a_tracker(
    motion: types.SimpleNamespace, tmp_path: Path, bridge_mode: str, gui: bool
) -> None:
    fake = motion.nuke
    read = make_read(fake, tmp_path)
    select_only(fake, read)
    node = motion.commands.create_node("BBoxTracker")
    assert node.input(0) is read
    node["box"].fromDict({"x": 12, "y": 8, "r": 40, "t": 30})
    node["reference_frame"].setValue(1003)

    job = _wait(motion.commands.button(node, "track_box"))

    assert job.error is None
    tracker = fake.toNode("BBoxTracker1_box_v1")
    assert tracker.Class() == "Tracker4" and tracker.input(0) is node
    request = json.loads(Path(node["last_result"].value()).read_text())["args"]
    assert request["box_nuke"] == [12.0, 8.0, 40.0, 30.0] and request["frame"] == 1003
    assert request["plate"] == read["file"].value()
    assert node["status"].value().startswith("BBoxTracker: v1:")


def test_bbox_tracker_refuses_a_reference_frame_outside_the_plate(
    motion: types.SimpleNamespace, tmp_path: Path
) -> None:
    fake = motion.nuke
    fake.GUI = False
    select_only(fake, make_read(fake, tmp_path))
    node = motion.commands.create_node("BBoxTracker")
    node["reference_frame"].setValue(2000)
    with pytest.raises(motion.errors.KnobError, match="reference_frame: frame 2000 is outside the input's range"):
        motion.commands.button(node, "track_box")


def test_use_current_frame_takes_the_viewer_frame(motion: types.SimpleNamespace) -> None:
    fake = motion.nuke
    node = motion.commands.create_node("BBoxTracker")
    fake.frame(1017)
    node["use_current_frame"].execute()
    assert node["reference_frame"].value() == 1017
