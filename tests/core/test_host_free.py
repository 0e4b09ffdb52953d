"""The core never imports nuke or torch: checked on the source and in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE_DIR = Path(__file__).resolve().parents[2] / "seamroto"
FORBIDDEN = {"nuke", "torch", "nncf"}


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_sources_import_no_host_or_torch() -> None:
    offenders = {
        str(p.relative_to(CORE_DIR)): sorted(_imported_roots(p) & FORBIDDEN)
        for p in CORE_DIR.rglob("*.py")
        if _imported_roots(p) & FORBIDDEN
    }
    assert offenders == {}


def test_importing_the_cli_loads_no_torch() -> None:
    code = "import sys, seamroto.cli; print(sorted(m for m in ('torch','nuke') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
