"""Shared fixtures: where ../shared/ is, and the reference files in it."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_DIR = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_DIR.parent / "shared"
NK_REFERENCE_DIR = SHARED_DIR / "reference" / "nk"
LAIKA_DIR = SHARED_DIR / "reference" / "laika_sir_lionel"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED_DIR.is_dir():
        pytest.skip("../shared/ is not beside this checkout")
    return SHARED_DIR


@pytest.fixture(scope="session")
def nk_reference_dir() -> Path:
    if not NK_REFERENCE_DIR.is_dir():
        pytest.skip("../shared/reference/nk/ is not beside this checkout")
    return NK_REFERENCE_DIR


@pytest.fixture(scope="session")
def laika_dir() -> Path:
    if not LAIKA_DIR.is_dir():
        pytest.skip("../shared/reference/laika_sir_lionel/ is not beside this checkout")
    return LAIKA_DIR
