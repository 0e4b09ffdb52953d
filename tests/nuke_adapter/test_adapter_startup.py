"""init.py (every session, farm-safe) and menu.py (GUI only), including a broken install."""

from __future__ import annotations

import runpy
import subprocess
import sys
import types
from pathlib import Path

import pytest

REPO_DIR = Path(__file__).resolve().parents[2]
INIT_PY = REPO_DIR / "init.py"
MENU_PY = REPO_DIR / "menu.py"
ICONS_DIR = REPO_DIR / "nuke_plugins" / "icons"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _start(fake: types.ModuleType) -> None:
    """What Nuke does at start-up: every init.py, then (GUI) every menu.py."""
    runpy.run_path(str(INIT_PY))
    runpy.run_path(str(MENU_PY))


def test_init_adds_plugin_paths_and_callbacks_but_no_ui_in_terminal_mode(
    fake_nuke: types.ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_nuke.GUI = False
    _start(fake_nuke)
    paths = fake_nuke.pluginPath()
    assert str(REPO_DIR / "nuke_plugins") in paths and str(ICONS_DIR) in paths
    assert [cls for _, cls in fake_nuke._fake.callbacks["knobChanged"]] == ["Group"]
    assert fake_nuke._fake.menus == {}
    assert capsys.readouterr().err == ""


def test_menu_lists_every_node_type_with_icon_and_tooltip(
    fake_nuke: types.ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    _start(fake_nuke)
    import seamroto_nuke.nodes as nodes

    (menu,) = fake_nuke.menu("Nodes").items()
    assert menu.name() == "SeamRoto" and (ICONS_DIR / menu.icon()).is_file()
    entries = {item.name(): item for item in menu.items() if item.name() != "-"}
    for node_type in nodes.NODE_TYPES.values():
        item = entries[node_type.menu_label]
        assert item.tooltip_text and (ICONS_DIR / item.icon()).is_file()
        assert item.script() == f"seamroto_nuke.commands.create_node({node_type.name!r})"
    assert "Troubleshoot..." in entries and "Open log folder" in entries
    exec(entries["SeamRoto"].script(), {"seamroto_nuke": sys.modules["seamroto_nuke"]})
    assert fake_nuke.toNode("SeamRoto1") is not None
    assert capsys.readouterr().err == ""


def test_icons_are_small_pngs() -> None:
    for path in sorted(ICONS_DIR.glob("*.png")):
        data = path.read_bytes()
        assert data[:8] == PNG_SIGNATURE, path
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert (width, height) == (24, 24), path


@pytest.mark.parametrize("broken", ["seamroto_nuke.callbacks", "seamroto_nuke.commands"])
def test_a_broken_install_prints_one_line_and_nuke_still_starts(
    fake_nuke: types.ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    broken: str,
) -> None:
    monkeypatch.setitem(sys.modules, broken, None)  # importing it now raises ImportError
    _start(fake_nuke)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("SeamRoto: ") and "INSTALL_NUKE.md" in err[0]


def test_startup_files_survive_a_python_without_nuke() -> None:
    for script in (INIT_PY, MENU_PY):
        run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and "No module named 'nuke'" in lines[0]
