"""Fixtures for the Nuke adapter: a fresh fake ``nuke`` per test, fake models, fake core commands.

The fake is installed as ``sys.modules["nuke"]`` here (not through a package ``__init__``), and
every ``seamroto_nuke`` module is re-imported against it, so no state leaks between tests.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import sys
import types
from pathlib import Path
from typing import Iterator

import pytest
from adapter_helpers import wait_for_workers

REPO_DIR = Path(__file__).resolve().parents[2]
PLUGINS_DIR = REPO_DIR / "nuke_plugins"
FAKE_NUKE = REPO_DIR / "tests" / "fakes" / "nuke.py"
FAKE_CORE = Path(__file__).resolve().with_name("fake_core.py")
FAKE_MODELS = {"mara": ["v1", "v2", "v10"], "broken": ["v1"], "crashy": ["v1"], "crowd": ["v1"]}
ADAPTER_MODULES = (
    "bridge",
    "callbacks",
    "commands",
    "errors",
    "feedback",
    "jobs",
    "knobs",
    "nodes",
    "paths",
    "render",
    "results",
)


def load_fake_nuke() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("nuke", FAKE_NUKE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_models(root: Path, models: dict) -> None:
    for character, versions in models.items():
        for version in versions:
            folder = root / character / version
            folder.mkdir(parents=True)
            card = {"schema": "SeamRotoModelCard.1", "character": character, "version": version}
            (folder / "card.json").write_text(json.dumps(card), encoding="utf-8")


@pytest.fixture
def fake_nuke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[types.ModuleType]:
    """The fake ``nuke`` (GUI session), fake models on SEAMROTO_MODELS, fake core commands."""
    module = load_fake_nuke()
    monkeypatch.setitem(sys.modules, "nuke", module)
    monkeypatch.syspath_prepend(str(PLUGINS_DIR))
    for name in [m for m in sys.modules if m == "seamroto_nuke" or m.startswith("seamroto_nuke.")]:
        monkeypatch.delitem(sys.modules, name)
    models = tmp_path / "models"
    write_models(models, FAKE_MODELS)
    monkeypatch.setenv("SEAMROTO_MODELS", str(models))
    monkeypatch.setenv("SEAMROTO_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("SEAMROTO_PROTOCOL_PLUGINS", str(FAKE_CORE))
    monkeypatch.setenv("SEAMROTO_BRIDGE", "inprocess")
    monkeypatch.delenv("SEAMROTO_PYTHON", raising=False)
    monkeypatch.delenv("SEAMROTO_FAKE_DELAY_S", raising=False)
    script = tmp_path / "shots" / "sh010_comp_v001.nk"
    script.parent.mkdir()
    module.root()["name"].setValue(str(script))

    protocol = importlib.import_module("seamroto.protocol")
    saved_levels = {name: logging.getLogger(name).level for name in ("seamroto_nuke", "seamroto")}
    saved_commands = dict(protocol.COMMANDS)
    saved_plugins = set(protocol._loaded_plugins)
    yield module
    wait_for_workers()
    protocol.COMMANDS.clear()
    protocol.COMMANDS.update(saved_commands)
    protocol._loaded_plugins.clear()
    protocol._loaded_plugins.update(saved_plugins)
    for name, level in saved_levels.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        for handler in [h for h in logger.handlers if getattr(h, "_seamroto_nuke_handler", False)]:
            logger.removeHandler(handler)
            handler.close()


@pytest.fixture
def sr(fake_nuke: types.ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> types.SimpleNamespace:
    """The adapter modules, imported against the fake (bundled models/ hidden)."""
    mods = {name: importlib.import_module(f"seamroto_nuke.{name}") for name in ADAPTER_MODULES}
    empty = tmp_path / "no_bundled_models"
    empty.mkdir()
    monkeypatch.setattr(mods["paths"], "BUNDLED_MODELS_DIR", empty)
    return types.SimpleNamespace(nuke=fake_nuke, **mods)


@pytest.fixture(params=["inprocess", "subprocess"])
def bridge_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the core in this process, or as ``python -m seamroto serve-request``."""
    monkeypatch.setenv("SEAMROTO_BRIDGE", request.param)
    if request.param == "subprocess":
        monkeypatch.setenv("SEAMROTO_PYTHON", sys.executable)
    return str(request.param)


@pytest.fixture(params=[True, False], ids=["gui", "terminal"])
def gui(request: pytest.FixtureRequest, fake_nuke: types.ModuleType) -> bool:
    """A GUI session (worker thread, dialogs) or ``nuke -t`` (inline, errors raised)."""
    fake_nuke.GUI = bool(request.param)
    return bool(request.param)
