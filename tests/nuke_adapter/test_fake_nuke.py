"""The fake ``nuke`` is only useful if it behaves like Nuke: its spec is types-nuke, and it acts."""

from __future__ import annotations

import ast
import inspect
import sysconfig
import types
from pathlib import Path
from typing import Dict, Set

import pytest

STUBS_DIR = Path(sysconfig.get_paths()["purelib"]) / "nuke-stubs"
# Attributes the fake adds for its own bookkeeping on classes that do exist in Nuke.
FAKE_ONLY_ATTRIBUTES = {"ProgressTask": {"title", "progress", "messages"}, "MenuItem": {"tooltip_text"}}


def _stub_names() -> Dict[str, Set[str]]:
    """Top-level names of the nuke stubs, and each class's members including inherited ones."""
    if not STUBS_DIR.is_dir():
        pytest.skip("types-nuke is not installed")
    top: Set[str] = set()
    members: Dict[str, Set[str]] = {}
    bases: Dict[str, list] = {}
    for path in STUBS_DIR.glob("*.pyi"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                top.add(node.name)
                names = members.setdefault(node.name, set())
                bases[node.name] = [b.id for b in node.bases if isinstance(b, ast.Name)]
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        names.add(item.name)
                    elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                        names.add(item.target.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                top.add(node.name)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                top.add(node.target.id)
            elif isinstance(node, ast.Assign):
                top.update(t.id for t in node.targets if isinstance(t, ast.Name))

    def resolved(name: str) -> Set[str]:
        out = set(members.get(name, set()))
        for base in bases.get(name, []):
            out |= resolved(base)
        return out

    return {"": top, **{name: resolved(name) for name in members}}


def _public(module: types.ModuleType) -> Dict[str, object]:
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    }


def test_every_public_fake_name_exists_in_types_nuke(fake_nuke: types.ModuleType) -> None:
    stubs = _stub_names()
    unknown = sorted(set(_public(fake_nuke)) - stubs[""])
    assert unknown == []


def test_every_fake_method_exists_on_the_stub_class(fake_nuke: types.ModuleType) -> None:
    stubs = _stub_names()
    problems = {}
    for name, value in _public(fake_nuke).items():
        if not inspect.isclass(value) or issubclass(value, BaseException):
            continue
        fake_members = {m for m in vars(value) if not m.startswith("_")}
        for klass in value.__mro__[1:]:
            if klass.__module__ == fake_nuke.__name__:
                fake_members |= {m for m in vars(klass) if not m.startswith("_")}
        extra = fake_members - stubs.get(name, set()) - FAKE_ONLY_ATTRIBUTES.get(name, set())
        if extra:
            problems[name] = sorted(extra)
    assert problems == {}


def test_unknown_attributes_fail_like_a_real_module(fake_nuke: types.ModuleType) -> None:
    with pytest.raises(AttributeError):
        fake_nuke.makeCoffee()  # type: ignore[attr-defined]
    read = fake_nuke.nodes.Read(name="r")
    with pytest.raises(AttributeError):
        read.teleport()
    with pytest.raises(NameError):
        read["no_such_knob"]
    assert read.knob("no_such_knob") is None
    with pytest.raises(RuntimeError):
        fake_nuke.nodes.NoSuchNodeClass()


def test_knobs_remember_values_and_enumerations_refuse_unknown_items(fake_nuke: types.ModuleType) -> None:
    knob = fake_nuke.Enumeration_Knob("character", "character", ["mara", "otto"])
    knob.setValue("otto")
    assert knob.value() == "otto"
    with pytest.raises(ValueError):
        knob.setValue("nobody")
    read = fake_nuke.nodes.Read(name="r", first=1001)
    read["first"].setValue(1005)
    assert read["first"].value() == 1005


def test_names_uncollide_and_groups_are_contexts(fake_nuke: types.ModuleType) -> None:
    a = fake_nuke.nodes.Grade(name="Grade1")
    b = fake_nuke.nodes.Grade(name="Grade1")
    assert (a.name(), b.name()) == ("Grade1", "Grade2")
    with pytest.raises(ValueError):
        b.setName("Grade1")
    group = fake_nuke.nodes.Group(name="G")
    with group:
        inner = fake_nuke.nodes.Input(name="plate")
    assert inner.fullName() == "G.plate"
    assert group.maxInputs() == 1
    assert fake_nuke.toNode("G.plate") is inner


def test_node_paste_runs_the_stack_and_selects_what_it_made(fake_nuke: types.ModuleType, tmp_path: Path) -> None:
    source = fake_nuke.nodes.Grade(name="src")
    source.setSelected(True)
    nk = tmp_path / "paste.nk"
    nk.write_text(
        "set cut_paste_input [stack 0]\nversion 15.1 v3\npush $cut_paste_input\n"
        "Tracker4 {\n tracks { { 1 31 1 }\n{ { 5 1 20 enable e 1 } }\n{ } }\n name T1\n}\n"
        "Roto {\n curves {{{v x3f99999a}\n  {f 0}}}\n name R1\n xpos 40\n}\n"
        "Read {\n inputs 0\n file /a/b.%04d.exr\n name Plate\n}\n",
        encoding="utf-8",
    )
    fake_nuke.nodePaste(str(nk))
    tracker, roto, read = (fake_nuke.toNode(n) for n in ("T1", "R1", "Plate"))
    assert tracker.Class() == "Tracker4" and tracker.input(0) is source
    assert roto.input(0) is tracker and roto.xpos() == 40
    assert read.input(0) is None and read["file"].value() == "/a/b.%04d.exr"
    assert [n.name() for n in fake_nuke.selectedNodes()] == ["T1", "R1", "Plate"]
    assert "tracks" in tracker.knobs() and "{ 5 1 20 enable e 1 }" in tracker["tracks"].value()


def test_progress_task_records_and_cancels(fake_nuke: types.ModuleType) -> None:
    fake_nuke._fake.cancel_after_updates = 2
    task = fake_nuke.ProgressTask("work")
    task.setProgress(10)
    assert not task.isCancelled()
    task.setProgress(20)
    assert task.isCancelled() and task.progress == [10, 20]


def test_execute_renders_a_write_and_main_thread_calls_run_inline(fake_nuke: types.ModuleType, tmp_path: Path) -> None:
    write = fake_nuke.nodes.Write(name="W", file=str(tmp_path / "render" / "out.%04d.exr"))
    fake_nuke.execute(write, 1, 3)
    assert sorted(p.name for p in (tmp_path / "render").iterdir()) == ["out.0001.exr", "out.0002.exr", "out.0003.exr"]
    seen = []
    fake_nuke.executeInMainThread(seen.append, (1,))
    assert seen == [1]
