"""Static checks of the adapter: Python 3.9 syntax, stdlib + nuke only, and mypy with the overlay."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_DIR = Path(__file__).resolve().parents[2]
ADAPTER_DIR = REPO_DIR / "nuke_plugins" / "seamroto_nuke"
STARTUP_FILES = [REPO_DIR / "init.py", REPO_DIR / "menu.py"]
MYPY_INI = REPO_DIR / "nuke_plugins" / "mypy.ini"
ALLOWED_ROOTS = set(sys.stdlib_module_names) | {"nuke", "seamroto_nuke", "__future__"}
MYPY_TIMEOUT_S = 240

ROTO_PROBE = """
import nuke
import nuke.rotopaint as rp


def make(node: nuke.Node) -> None:
    curves = node["curves"]
    assert isinstance(curves, rp.CurveKnob)
    shape = rp.Shape(curves, type="bezier")
    shape.append(rp.AnimControlPoint(10.0, 20.0))
    for point in shape:
        point.center.addPositionKey(1001, (10.0, 20.0))        # view omitted, as Nuke allows
        point.featherCenter.addPositionKey(1001, (0.0, 0.0))
    shape.getAttributes().set(rp.AnimAttributes.kFeatherFallOffAttribute, 1.0)   # time omitted
    curves.rootLayer.append(shape)
    curves.changed()
    nuke.executeInMainThread(print, ("done",))
"""
ROTO_PROBE_WRONG = """
import nuke
import nuke.rotopaint as rp


def make(point: rp.ShapeControlPoint) -> None:
    point.center.addPositionKey("frame one", (10.0, 20.0))
    nuke.executeInMainThread(42)
"""


def _sources() -> list:
    return sorted(ADAPTER_DIR.glob("*.py")) + STARTUP_FILES


@pytest.mark.parametrize("path", _sources(), ids=lambda p: p.name)
def test_adapter_parses_as_python_3_9(path: Path) -> None:
    ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 9))


@pytest.mark.parametrize("path", _sources(), ids=lambda p: p.name)
def test_adapter_imports_only_stdlib_and_nuke(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    assert roots - ALLOWED_ROOTS == set()


def _mypy(*targets: str, cache: Path) -> subprocess.CompletedProcess:
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent))
    if mypy is None:
        pytest.skip("mypy is not installed in this venv")
    cmd = [mypy, "--config-file", str(MYPY_INI), "--cache-dir", str(cache), *targets]
    return subprocess.run(cmd, cwd=REPO_DIR, capture_output=True, text=True, timeout=MYPY_TIMEOUT_S)


def test_mypy_accepts_the_adapter_against_types_nuke_and_the_overlay(tmp_path: Path) -> None:
    run = _mypy("nuke_plugins/seamroto_nuke", "init.py", "menu.py", cache=tmp_path / "cache")
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_overlay_types_roto_calls_as_nuke_accepts_them(tmp_path: Path) -> None:
    good = tmp_path / "probe_good_roto.py"
    bad = tmp_path / "probe_bad_roto.py"
    good.write_text(ROTO_PROBE, encoding="utf-8")
    bad.write_text(ROTO_PROBE_WRONG, encoding="utf-8")
    ok = _mypy(str(good), cache=tmp_path / "cache")
    wrong = _mypy(str(bad), cache=tmp_path / "cache")
    assert ok.returncode == 0, ok.stdout
    assert wrong.returncode == 1
    assert 'Argument 1 to "addPositionKey"' in wrong.stdout and '"executeInMainThread"' in wrong.stdout
