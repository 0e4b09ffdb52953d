"""The node types: knobs are a saved API (names frozen here), each has a tooltip, menus refresh."""

from __future__ import annotations

import re
import types

import pytest
from adapter_helpers import select_only

# Artists' scripts store these names: this list only ever grows. Never rename or remove one.
SAVED_KNOB_NAMES = {
    "SeamRoto": [
        "seamroto_node_type",
        "seamroto_knob_api",
        "seamroto_tab",
        "character",
        "model_version",
        "use_custom_range",
        "first_frame",
        "last_frame",
        "smoothing",
        "confidence_threshold",
        "feather_px",
        "seam_band_px",
        "write_report",
        "output_dir",
        "actions_divider",
        "track",
        "build_nodes",
        "open_report",
        "troubleshoot",
        "status",
        "advanced_tab",
        "core_python",
        "used_character",
        "used_model_version",
        "last_out_dir",
        "last_nk",
        "last_result",
        "last_report",
        "snap_pieces",
    ],
    "SeamRotoTrain": [
        "seamroto_node_type",
        "seamroto_knob_api",
        "train_tab",
        "character_name",
        "training_nodes",
        "use_selected",
        "training_nk_files",
        "add_nk_file",
        "fine_tune",
        "train_minutes",
        "models_dir",
        "actions_divider",
        "train",
        "open_report",
        "troubleshoot",
        "status",
        "advanced_tab",
        "core_python",
        "last_model_dir",
        "last_report",
        "calibrate",
    ],
    "SeamRotoRefit": [
        "seamroto_node_type",
        "seamroto_knob_api",
        "refit_tab",
        "seamroto_node",
        "roto_node",
        "use_selected",
        "feather_px",
        "smoothing",
        "output_dir",
        "actions_divider",
        "refit",
        "open_report",
        "troubleshoot",
        "status",
        "advanced_tab",
        "core_python",
        "last_nk",
        "last_report",
        "snap_pieces",
    ],
}
KNOB_CLASS = {
    "tab": "Tab_Knob",
    "text": "Text_Knob",
    "divider": "Text_Knob",
    "enum": "Enumeration_Knob",
    "int": "Int_Knob",
    "double": "Double_Knob",
    "bool": "Boolean_Knob",
    "string": "String_Knob",
    "file": "File_Knob",
    "multiline": "Multiline_Eval_String_Knob",
    "button": "PyScript_Knob",
}


@pytest.mark.parametrize("type_name", sorted(SAVED_KNOB_NAMES))
def test_saved_knob_names_are_all_still_there(sr: types.SimpleNamespace, type_name: str) -> None:
    names = [s.name for s in sr.nodes.NODE_TYPES[type_name].knobs.specs]
    assert [n for n in SAVED_KNOB_NAMES[type_name] if n not in names] == []
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in names)


@pytest.mark.parametrize("type_name", sorted(SAVED_KNOB_NAMES))
def test_every_knob_is_made_with_its_class_tooltip_and_default(sr: types.SimpleNamespace, type_name: str) -> None:
    fake = sr.nuke
    select_only(fake)
    node = sr.commands.create_node(type_name)
    node_type = sr.nodes.NODE_TYPES[type_name]
    assert sr.nodes.node_type_of(node) is node_type
    assert node.name() == f"{type_name}1" and fake._fake.panels_shown == [node.fullName()]
    for spec in node_type.knobs.specs:
        knob = node[spec.name]
        assert knob.Class() == KNOB_CLASS[spec.kind], spec.name
        assert knob.tooltip() == spec.tooltip and len(spec.tooltip) > 10, spec.name
        assert knob.getFlag(fake.INVISIBLE) == spec.hidden, spec.name
        if spec.kind == "button":
            assert (
                knob.command()
                == f"import seamroto_nuke.commands as _seamroto; _seamroto.button(nuke.thisNode(), {spec.name!r})"
            )
        elif spec.kind in ("int", "double", "bool", "string") and spec.default is not None:
            assert knob.value() == spec.default, spec.name
    assert [n.Class() for n in node.nodes()] == ["Input"] * len(node_type.inputs) + (
        ["Output"] if node_type.passthrough else []
    )


def test_a_knob_without_tooltip_is_refused(sr: types.SimpleNamespace) -> None:
    with pytest.raises(ValueError, match="needs a tooltip"):
        sr.knobs.KnobSpec("secret", "int", "secret", " ")


def test_character_menu_lists_every_model_folder(
    sr: types.SimpleNamespace, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    studio = tmp_path / "studio_models"
    (studio / "otto" / "v3").mkdir(parents=True)
    (studio / "otto" / "v3" / "card.json").write_text("{}")
    (studio / "mara" / "v2").mkdir(parents=True)  # same version as in the first folder: first wins
    (studio / "mara" / "v2" / "card.json").write_text("{}")
    (studio / ".hidden" / "v1").mkdir(parents=True)
    (studio / ".hidden" / "v1" / "card.json").write_text("{}")
    monkeypatch.setenv("SEAMROTO_MODELS", f"{tmp_path / 'models'}:{studio}")
    node = sr.commands.create_node("SeamRoto")
    assert node["character"].values() == ["broken", "crashy", "crowd", "mara", "otto"]
    node["character"].setValue("mara")
    sr.nodes.refresh(node)
    assert node["model_version"].values() == ["latest", "v1", "v2", "v10"]
    mara_v2 = sr.paths.resolve_model(sr.paths.find_models(), "mara", "v2")
    assert mara_v2 is not None and mara_v2.path == (tmp_path / "models" / "mara" / "v2").resolve()


def test_knob_changed_refreshes_menus_and_enables_the_frame_range(
    sr: types.SimpleNamespace, fake_nuke: types.ModuleType, tmp_path
) -> None:
    sr.callbacks.register()
    node = sr.commands.create_node("SeamRoto")
    assert not node["first_frame"].enabled()
    node["use_custom_range"].setValue(True)
    fake_nuke._fake.fire_knob_changed(node, "use_custom_range")
    assert node["first_frame"].enabled() and node["last_frame"].enabled()
    node["character"].setValue("crowd")
    fake_nuke._fake.fire_knob_changed(node, "character")
    assert node["model_version"].values() == ["latest", "v1"]
    (tmp_path / "models" / "zed" / "v1").mkdir(parents=True)
    (tmp_path / "models" / "zed" / "v1" / "card.json").write_text("{}")
    fake_nuke._fake.fire_knob_changed(node, "showPanel")  # the panel opened: pick up new models
    assert "zed" in node["character"].values() and node["character"].value() == "crowd"
    grade = fake_nuke.nodes.Grade(name="NotOurs")
    fake_nuke._fake.fire_knob_changed(grade, "label")  # other nodes are ignored quietly


def test_a_saved_character_missing_on_this_machine_stays_selected(
    sr: types.SimpleNamespace, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    node = sr.commands.create_node("SeamRoto")
    node["character"].setValue("mara")
    sr.nodes.refresh(node)  # what the knobChanged callback does when the artist picks it
    node["model_version"].setValue("v2")
    monkeypatch.setenv("SEAMROTO_MODELS", str(tmp_path / "elsewhere"))
    sr.nodes.refresh(node)
    assert node["character"].value() == "mara" and node["model_version"].value() == "v2"
    node.setInput(0, sr.nuke.nodes.Read(name="p", file="/x.%04d.exr"))
    sr.commands.button(node, "track")
    assert "model mara v2 is not installed on this machine" in sr.nuke._fake.messages[-1]
