"""Where things are: the install, its models, the core's interpreter, logs and output folders.

Every path resolves relative to this file or to the environment, never to Nuke's cwd. The
model listing mirrors the core's layout (``<root>/<character>/<version>/card.json``) so the
character menu fills without starting the core; the core verifies the model it is given.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

PACKAGE_DIR = Path(__file__).resolve().parent
PLUGINS_DIR = PACKAGE_DIR.parent
INSTALL_DIR = PLUGINS_DIR.parent
ICONS_DIR = PLUGINS_DIR / "icons"
GIZMOS_DIR = PLUGINS_DIR / "gizmos"
BUNDLED_MODELS_DIR = INSTALL_DIR / "models"

ENV_MODELS = "SEAMROTO_MODELS"
ENV_PYTHON = "SEAMROTO_PYTHON"
ENV_LOG_DIR = "SEAMROTO_LOG_DIR"
ENV_BRIDGE = "SEAMROTO_BRIDGE"

MODEL_CARD = "card.json"
OUTPUT_SUBDIR = "seamroto"
LATEST = "latest"
_DIGITS = re.compile(r"(\d+)")

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class ModelChoice:
    """One installed model: ``character``/``version`` in folder ``path``."""

    character: str
    version: str
    path: Path


def version_key(text: str) -> Tuple[Tuple[int, Union[int, str]], ...]:
    """Natural sort key, so ``v10`` sorts after ``v9`` (plain string order would not)."""
    return tuple((0, int(t)) if t.isdigit() else (1, t) for t in _DIGITS.split(text) if t)


def model_search_paths() -> List[Path]:
    """Folders holding ``<character>/<version>`` trees: ``SEAMROTO_MODELS`` first, then bundled.

    Same precedence as the core's ``config.model_search_paths`` (environment before defaults).
    """
    env = os.environ.get(ENV_MODELS, "")
    paths = [Path(p).expanduser() for p in env.split(os.pathsep) if p.strip()]
    paths.append(BUNDLED_MODELS_DIR)
    return paths


def find_models(search_paths: Optional[List[Path]] = None) -> List[ModelChoice]:
    """Every installed model; the first search path wins when two hold the same version.

    Only folder names are read, so this is cheap enough for a knobChanged callback.
    """
    roots = model_search_paths() if search_paths is None else search_paths
    chosen: Dict[Tuple[str, str], ModelChoice] = {}
    for root in roots:
        if not root.is_dir():
            continue
        for card in root.glob(f"*/*/{MODEL_CARD}"):
            version_dir = card.parent
            if version_dir.name.startswith(".") or version_dir.parent.name.startswith("."):
                continue
            key = (version_dir.parent.name, version_dir.name)
            chosen.setdefault(key, ModelChoice(key[0], key[1], version_dir.resolve()))
    return sorted(chosen.values(), key=lambda m: (m.character, version_key(m.version)))


def characters(models: List[ModelChoice]) -> List[str]:
    """Character names, sorted, each once."""
    return sorted({m.character for m in models})


def versions(models: List[ModelChoice], character: str) -> List[str]:
    """Versions of ``character``, oldest first (natural order)."""
    return sorted({m.version for m in models if m.character == character}, key=version_key)


def resolve_model(models: List[ModelChoice], character: str, version: str) -> Optional[ModelChoice]:
    """The model for ``character`` at ``version`` (``latest`` = the newest), or None."""
    candidates = [m for m in models if m.character == character]
    if not candidates:
        return None
    if version == LATEST:
        return max(candidates, key=lambda m: version_key(m.version))
    for model in candidates:
        if model.version == version:
            return model
    return None


def venv_python(install_dir: Optional[Path] = None) -> Path:
    """The interpreter of the install's own venv (``.venv`` next to ``nuke_plugins``)."""
    install_dir = INSTALL_DIR if install_dir is None else install_dir
    if sys.platform == "win32":
        return install_dir / ".venv" / "Scripts" / "python.exe"
    return install_dir / ".venv" / "bin" / "python"


def python_candidates(knob_value: str = "") -> List[Tuple[str, str]]:
    """Where the core's interpreter may be, in precedence order: knob, env, the install's venv.

    Returns:
        ``(where it came from, path)`` pairs; empty settings are left out.
    """
    out: List[Tuple[str, str]] = []
    if knob_value.strip():
        out.append(("knob core_python", knob_value.strip()))
    env = os.environ.get(ENV_PYTHON, "").strip()
    if env:
        out.append((f"${ENV_PYTHON}", env))
    out.append(("the install's .venv", str(venv_python())))
    return out


def default_output_root(script_path: str) -> Path:
    """``<script folder>/seamroto`` for a saved script, else a per-user temp folder."""
    if script_path and script_path not in ("Root", "untitled"):
        parent = Path(script_path).expanduser().resolve().parent
        if parent.is_dir():
            return parent / OUTPUT_SUBDIR
    user = re.sub(r"\W", "_", os.environ.get("USER") or os.environ.get("USERNAME") or "user")
    return Path(tempfile.gettempdir()) / f"seamroto-{user}"
