"""Training checkpoints without pickle: tensors in a .npz, everything else in JSON.

``torch.save``/``torch.load`` pickle, and unpickling runs code from the file; a checkpoint
here is ``state.npz`` (read with ``allow_pickle=False``) plus ``state.json``, written into a
staged folder and renamed, so an interrupted save never leaves a half checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np
import torch

from seamroto.fileio import staged_dir

logger = logging.getLogger(__name__)

STATE_NPZ = "state.npz"
STATE_JSON = "state.json"
CHECKPOINT_SCHEMA = "SeamRotoCheckpoint.1"


def module_arrays(module: torch.nn.Module, prefix: str = "model/") -> Dict[str, np.ndarray]:
    """Parameters and persistent buffers as numpy arrays keyed ``prefix + name``."""
    return {prefix + k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def load_module_arrays(module: torch.nn.Module, arrays: Mapping[str, np.ndarray], prefix: str = "model/") -> None:
    """Inverse of ``module_arrays`` (strict: every key must match)."""
    state = {k[len(prefix):]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith(prefix)}
    module.load_state_dict(state, strict=True)


def optimizer_state(opt: torch.optim.Optimizer) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
    """Split an optimizer's state dict into tensors (npz) and plain values (JSON)."""
    sd = opt.state_dict()
    arrays: Dict[str, np.ndarray] = {}
    scalars: Dict[str, Dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for name, val in st.items():
            if torch.is_tensor(val):
                arrays[f"opt/{idx}/{name}"] = val.detach().cpu().numpy().copy()
            else:
                scalars.setdefault(str(idx), {})[name] = val
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return arrays, {"param_groups": groups, "scalars": scalars}


def load_optimizer_state(opt: torch.optim.Optimizer, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """Inverse of ``optimizer_state``."""
    state: Dict[int, Dict[str, Any]] = {}
    for key, val in arrays.items():
        if not key.startswith("opt/"):
            continue
        _, idx, name = key.split("/", 2)
        state.setdefault(int(idx), {})[name] = torch.from_numpy(np.array(val))
    for idx, sc in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(sc)
    groups = []
    for g in meta["param_groups"]:
        g2 = dict(g)
        if "betas" in g2:
            g2["betas"] = tuple(g2["betas"])
        groups.append(g2)
    opt.load_state_dict({"state": state, "param_groups": groups})


def save_checkpoint(path: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> Path:
    """Write ``arrays`` + ``meta`` as a checkpoint folder at ``path``, replacing an older one."""
    path = Path(path)
    old: Optional[Path] = None
    if path.exists():
        old = path.with_name(path.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    with staged_dir(path) as tmp:
        np.savez(tmp / STATE_NPZ, **dict(arrays))  # type: ignore[arg-type]
        (tmp / STATE_JSON).write_text(
            json.dumps({"schema": CHECKPOINT_SCHEMA, **meta}, indent=1), encoding="utf-8"
        )
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    logger.info("checkpoint saved at step %s: %s", meta.get("step"), path)
    return path


def read_checkpoint(path: Path) -> Optional[Tuple[Dict[str, np.ndarray], Dict[str, Any]]]:
    """(arrays, meta) of a checkpoint folder, or None when there is none."""
    path = Path(path)
    if not (path / STATE_JSON).is_file():
        old = path.with_name(path.name + ".old")
        if not (old / STATE_JSON).is_file():
            return None
        path = old  # crashed between moving the old one aside and renaming the new one
    meta = json.loads((path / STATE_JSON).read_text(encoding="utf-8"))
    if meta.get("schema") != CHECKPOINT_SCHEMA:
        raise ValueError(f"{path}: checkpoint schema {meta.get('schema')!r} is not {CHECKPOINT_SCHEMA!r}")
    with np.load(path / STATE_NPZ, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, meta


def remove_checkpoint(path: Path) -> None:
    """Delete a checkpoint folder (after the model it led to is written)."""
    shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(Path(path).with_name(Path(path).name + ".old"), ignore_errors=True)
