"""Defaults, and the one precedence rule: CLI flag or knob, then ``SEAMROTO_*`` env, then these."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
BUNDLED_MODELS_DIR = REPO_DIR / "models"
DEMO_CHARACTER = "mara"

ENV_MODELS = "SEAMROTO_MODELS"
ENV_LOG_LEVEL = "SEAMROTO_LOG_LEVEL"
ENV_THREADS = "SEAMROTO_THREADS"

DEFAULT_CONFIDENCE_THRESHOLD = 0.5
DEFAULT_SMOOTHING = 1.0
DEFAULT_SEAM_BAND_PX = 6.0
DEFAULT_FEATHER_PX = 2.0


def model_search_paths(extra: Optional[List[str]] = None) -> List[Path]:
    """Folders that hold character models: flags first, then ``SEAMROTO_MODELS``, then bundled."""
    paths: List[Path] = [Path(p) for p in (extra or [])]
    env = os.environ.get(ENV_MODELS, "")
    paths += [Path(p) for p in env.split(os.pathsep) if p]
    paths.append(BUNDLED_MODELS_DIR)
    return paths


def thread_count() -> int:
    """Threads for inference/flow: ``SEAMROTO_THREADS`` or every core this process may use."""
    env = os.environ.get(ENV_THREADS)
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)
