"""Training checkpoints as one safetensors file: tensors, plus a JSON document in its metadata.

Never pickle, never ``torch.save``. A checkpoint holds the module's weights, the best weights
so far, the optimizer state (tensors by parameter index, scalars and param_groups as JSON), the
mixed-precision scaler, the random states (python, numpy's global generator, torch CPU and CUDA)
and the loop's own state (history, early-stopping counters), so that a resumed run continues
exactly as the uninterrupted one would have. Written to a temporary file and renamed, so a
crash while writing leaves the previous checkpoint intact.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np

from recforge.torch._imports import require_safetensors, require_torch

torch = require_torch()

FORMAT_VERSION = 1
METADATA_KEY = "recforge_checkpoint"
FILENAME = "checkpoint.safetensors"


def _cpu_copy(tensor: Any) -> Any:
    return tensor.detach().to("cpu", copy=True).contiguous()


def _flatten_optimizer(state_dict: dict) -> tuple[dict[str, Any], dict]:
    tensors, scalars = {}, {}
    for index, entries in state_dict["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{key}"] = _cpu_copy(value)
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"scalars": scalars, "param_groups": state_dict["param_groups"]}


def _unflatten_optimizer(tensors: dict[str, Any], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for index, entries in meta["scalars"].items():
        state.setdefault(int(index), {}).update(entries)
    return {"state": state, "param_groups": meta["param_groups"]}


def _random_states() -> tuple[dict[str, Any], dict]:
    version, mt, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    meta = {"python": [version, list(mt), gauss],
            "numpy": {"keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)}}
    return tensors, meta


def _restore_random_states(tensors: dict[str, Any], meta: dict) -> None:
    version, mt, gauss = meta["python"]
    random.setstate((version, tuple(mt), gauss))
    n = meta["numpy"]
    np.random.set_state(("MT19937", np.asarray(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k[9:]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[:torch.cuda.device_count()])


def save(path: str | os.PathLike, *, module: Any, optimizer: Any, scaler: Any, best_weights: dict | None,
         loop_state: dict) -> None:
    """Write the checkpoint at ``path`` (a file), atomically."""
    st = require_safetensors()
    tensors = {f"model.{k}": _cpu_copy(v) for k, v in module.state_dict().items()}
    if best_weights is not None:
        tensors.update({f"best.{k}": _cpu_copy(v) for k, v in best_weights.items()})
    optimizer_tensors, optimizer_meta = _flatten_optimizer(optimizer.state_dict())
    rng_tensors, rng_meta = _random_states()
    tensors.update(optimizer_tensors)
    tensors.update(rng_tensors)
    meta = {"version": FORMAT_VERSION, "loop": loop_state, "optimizer": optimizer_meta,
            "scaler": scaler.state_dict(), "rng": rng_meta, "has_best": best_weights is not None}
    try:
        text = json.dumps(meta)
    except TypeError as exc:
        raise TypeError(f"checkpoint state is not JSON-serialisable (optimizer param_groups or loop state): {exc}") from exc
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    st.save_file(tensors, str(tmp), metadata={METADATA_KEY: text})
    os.replace(tmp, path)


def load(path: str | os.PathLike, *, module: Any, optimizer: Any, scaler: Any, device: Any) -> tuple[dict | None, dict]:
    """Restore module, optimizer, scaler and random states from ``path``; returns (best_weights, loop_state)."""
    st = require_safetensors()
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if METADATA_KEY not in metadata:
        raise ValueError(f"{path} is not a recforge training checkpoint (no {METADATA_KEY!r} metadata)")
    meta = json.loads(metadata[METADATA_KEY])
    if meta.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format version {meta.get('version')} is not {FORMAT_VERSION}")
    tensors = st.load_file(str(path))
    weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    module.load_state_dict(weights)
    best = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best.")} if meta["has_best"] else None
    optimizer.load_state_dict(_unflatten_optimizer(tensors, meta["optimizer"]))
    scaler.load_state_dict(meta["scaler"])
    _restore_random_states(tensors, meta["rng"])
    return best, meta["loop"]
