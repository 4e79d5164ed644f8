"""Saving and loading models: a folder with ``model.json`` and ``arrays.npz``, never pickle.

``model.json`` holds the format name and version, the recforge version that wrote it, the
registered model name, its constructor parameters, the id vocabularies' kinds, the learned
scalars, and for every array its dtype, shape and SHA-256. ``arrays.npz`` holds plain numeric or
fixed-width string arrays, read with ``allow_pickle=False``. Loading constructs only classes of
:mod:`recforge.models.registry`, checks every checksum and the sparse matrices' structure, and
refuses a format version newer than this recforge understands, so a tampered, truncated or
foreign file gives :class:`ArtifactError` instead of running code or returning a wrong model.
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recforge.data.idmap import IdMap

FORMAT = "recforge-model"
#: the model format's major version: files of another major version are refused with a message
FORMAT_VERSION = 1
#: the oldest major version this recforge still reads
MIN_FORMAT_VERSION = 1
JSON_NAME = "model.json"
ARRAYS_NAME = "arrays.npz"


#: learned state every model may carry, saved without the model listing it (ordered histories)
BASE_STATE = ("sequence_indptr_", "sequence_items_")


class ArtifactError(ValueError):
    """A saved model cannot be loaded: missing, corrupt, tampered with, or not a recforge model."""


class ArtifactVersionError(ArtifactError):
    """A saved model was written in a newer format than this recforge can read."""


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).view(np.uint8).reshape(-1)).hexdigest()


def _ids_array(idmap: IdMap) -> tuple[np.ndarray, str]:
    ids = idmap.to_numpy()
    if ids.dtype.kind == "O":
        return np.asarray(ids.tolist(), dtype=str), "str"
    return np.ascontiguousarray(ids, dtype=np.int64), "int"


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_dict") and not isinstance(value, dict):    # parameter objects (privacy.DP)
        return _jsonable(value.to_dict())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (tuple, list)):
        return [_jsonable(x) for x in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(x) for k, x in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot save parameter value of type {type(value).__name__}")


def save_model(model: Any, path: Any) -> Path:
    """Write a fitted model to the folder ``path`` (created if needed); returns the folder."""
    from recforge import __version__
    from recforge.models import registry

    model._require_fitted()
    name = type(model).__name__
    if registry.get(name) is not type(model):
        raise TypeError(f"{name} is not a registered model; register it in recforge.models.registry")
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    state_doc: dict[str, Any] = {}

    def put_csr(key: str, M: sp.csr_matrix) -> dict:
        M = sp.csr_matrix(M)
        for part in ("indptr", "indices", "data"):
            arrays[f"{key}.{part}"] = np.ascontiguousarray(getattr(M, part))
        return {"kind": "csr", "shape": list(M.shape)}

    user_ids, user_kind = _ids_array(model.user_ids_)
    item_ids, item_kind = _ids_array(model.item_ids_)
    arrays["user_ids"], arrays["item_ids"] = user_ids, item_ids
    put_csr("user_items", model.user_items_)
    base_state = {key: getattr(model, key) for key in BASE_STATE if getattr(model, key, None) is not None}
    for key, value in {**base_state, **model._state()}.items():
        if sp.issparse(value):
            state_doc[key] = put_csr(f"state.{key}", value)
        elif isinstance(value, np.ndarray):
            if value.dtype.kind not in "biuf":
                raise TypeError(f"state {key!r} has dtype {value.dtype}, which cannot be saved without pickle")
            arrays[f"state.{key}"] = np.ascontiguousarray(value)
            state_doc[key] = {"kind": "array"}
        else:
            state_doc[key] = {"kind": "value", "value": _jsonable(value)}
    doc = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "recforge_version": __version__,
        "model": name, "params": _jsonable(_params_to_save(model, folder)),
        "shape": [int(model.n_users_), int(model.n_items_)],
        "id_kinds": {"user": user_kind, "item": item_kind}, "state": state_doc,
        "arrays": {k: {"dtype": a.dtype.str, "shape": list(a.shape), "sha256": _digest(a)} for k, a in arrays.items()},
    }
    with open(folder / ARRAYS_NAME, "wb") as fh:
        np.savez(fh, **arrays)
    (folder / JSON_NAME).write_text(json.dumps(doc, indent=1))
    return folder


def _params_to_save(model: Any, folder: Path) -> dict:
    """The constructor parameters as saved: models made of models (hybrids) save their parts
    into the folder and return references to them (``_params_to_save``)."""
    if hasattr(model, "_params_to_save"):
        return model._params_to_save(folder)
    return model.get_params()


def load(path: Any):
    """The model saved in the folder ``path`` by ``model.save(path)``."""
    folder = Path(path)
    doc = _read_json(folder)
    arrays = _read_arrays(folder, doc)
    from recforge.models import registry
    try:
        cls = registry.get(doc["model"])
    except KeyError as exc:
        raise ArtifactError(f"{folder / JSON_NAME}: {exc.args[0]}") from None
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in doc["params"].items()}
    try:
        if hasattr(cls, "_params_from_saved"):   # models made of models (hybrids) load their parts
            params = cls._params_from_saved(params, folder)
        model = cls(**params)
        model._check_params()
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"{folder / JSON_NAME}: invalid parameters for {doc['model']}: {exc}") from None
    n_users, n_items = (int(x) for x in doc["shape"])
    model.user_ids_ = _idmap(arrays["user_ids"], doc["id_kinds"]["user"], n_users, "user_ids")
    model.item_ids_ = _idmap(arrays["item_ids"], doc["id_kinds"]["item"], n_items, "item_ids")
    model.user_items_ = _csr(arrays, "user_items", (n_users, n_items))
    model.n_users_, model.n_items_ = n_users, n_items
    state = {}
    for key, spec in doc["state"].items():
        if not (isinstance(key, str) and key.endswith("_") and key.isidentifier()):
            raise ArtifactError(f"invalid state name {key!r} in {folder / JSON_NAME}")
        kind = spec.get("kind")
        if kind == "csr":
            state[key] = _csr(arrays, f"state.{key}", tuple(spec["shape"]))
        elif kind == "array":
            state[key] = _array(arrays, f"state.{key}")
        elif kind == "value":
            state[key] = spec["value"]
        else:
            raise ArtifactError(f"unknown state kind {kind!r} for {key!r} in {folder / JSON_NAME}")
    for key in BASE_STATE:
        if key in state:
            setattr(model, key, state.pop(key))
    try:
        model._restore(state)
    except (ValueError, IndexError, TypeError) as exc:
        raise ArtifactError(f"{folder}: the saved state is inconsistent ({exc})") from None
    return model


def _read_json(folder: Path) -> dict:
    file = folder / JSON_NAME
    if not file.is_file():
        raise FileNotFoundError(f"no saved recforge model at {folder} ({JSON_NAME} is missing)")
    try:
        doc = json.loads(file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{file} is not valid JSON ({exc}); the file is corrupt or truncated") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ArtifactError(f"{file} is not a recforge model (format must be {FORMAT!r})")
    version = doc.get("format_version")
    if not isinstance(version, int):
        raise ArtifactError(f"{file} has no valid format_version")
    if version < MIN_FORMAT_VERSION:
        raise ArtifactVersionError(
            f"{file} was written by recforge {doc.get('recforge_version', '?')} in model format version "
            f"{version}; this recforge reads format versions {MIN_FORMAT_VERSION} to {FORMAT_VERSION}: "
            f"load it with an older recforge and save it again, or retrain")
    if version > FORMAT_VERSION:
        raise ArtifactVersionError(
            f"{file} was written by recforge {doc.get('recforge_version', '?')} in model format version "
            f"{version}; this recforge reads format versions up to {FORMAT_VERSION}: upgrade recforge to load it")
    for key in ("model", "params", "shape", "id_kinds", "state", "arrays"):
        if key not in doc:
            raise ArtifactError(f"{file} lacks the field {key!r}; the file is corrupt")
    return doc


def _read_arrays(folder: Path, doc: dict) -> dict[str, np.ndarray]:
    file = folder / ARRAYS_NAME
    if not file.is_file():
        raise FileNotFoundError(f"{file} is missing: the saved model is incomplete")
    manifest = doc["arrays"]
    try:
        with np.load(file, allow_pickle=False) as npz:
            if set(npz.files) != set(manifest):
                raise ArtifactError(f"{file} holds arrays {sorted(npz.files)}, but {JSON_NAME} lists {sorted(manifest)}")
            arrays = {name: npz[name] for name in npz.files}
    except ArtifactError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise ArtifactError(f"{file} cannot be read ({type(exc).__name__}: {exc}); it is corrupt or truncated") from None
    for name, spec in manifest.items():
        a = arrays[name]
        if a.dtype.str != spec["dtype"] or list(a.shape) != spec["shape"] or _digest(a) != spec["sha256"]:
            raise ArtifactError(f"array {name!r} in {file} does not match its checksum in {JSON_NAME}: "
                                f"the artifact was modified or damaged")
    return arrays


def _array(arrays: dict, name: str) -> np.ndarray:
    if name not in arrays:
        raise ArtifactError(f"the saved model lacks the array {name!r}")
    a = arrays[name]
    if a.dtype.kind not in "biuf":
        raise ArtifactError(f"array {name!r} has dtype {a.dtype}; expected numbers")
    return a


def _csr(arrays: dict, key: str, shape: tuple) -> sp.csr_matrix:
    parts = [_array(arrays, f"{key}.{p}") for p in ("indptr", "indices", "data")]
    try:
        M = sp.csr_matrix((parts[2], parts[1], parts[0]), shape=tuple(int(s) for s in shape))
        M.check_format(full_check=True)
    except (ValueError, TypeError) as exc:
        raise ArtifactError(f"sparse matrix {key!r} is malformed ({exc})") from None
    return M


def _idmap(a: np.ndarray, kind: str, size: int, name: str) -> IdMap:
    if a.ndim != 1 or a.size != size:
        raise ArtifactError(f"{name} must hold {size} ids, got shape {a.shape}")
    if kind == "str":
        if a.dtype.kind != "U":
            raise ArtifactError(f"{name} should hold strings, got dtype {a.dtype}")
        return IdMap(a.astype(object))
    if kind != "int" or a.dtype.kind not in "iu":
        raise ArtifactError(f"{name} has kind {kind!r} and dtype {a.dtype}; expected integer ids")
    return IdMap(a)
