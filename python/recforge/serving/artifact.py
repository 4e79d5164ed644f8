"""Served artifacts: a saved model folder plus ``manifest.json``, verified before serving.

``save_artifact(model, path, training_data=None, metrics=None)`` writes the model with
``model.save`` (``model.json`` + ``arrays.npz``, never pickle), then ``manifest.json`` — last, so a
reader that sees a new manifest sees complete files — holding:

* ``files``: the SHA-256 and size of every file of the folder;
* ``recforge_version`` and the manifest ``format_version``;
* ``training_data``: a fingerprint (SHA-256 over the training interactions' users, items, values
  and timestamps with their id vocabularies, or over the model's training matrix) and its counts;
* ``metrics``: whatever the caller measured at training time (e.g. ``{"ndcg@10": 0.41}``);
* ``model``: the registered model name; ``created_at`` (UTC, ISO 8601);
* ``events_upto``: the id of the last event-store event the training data includes (0: none), so
  a server adds only later events to the users' histories.

``load_artifact(path)`` refuses (``ArtifactError``) a folder without a manifest, any file whose
checksum or size differs, an extra or missing file, a manifest format newer than this recforge
reads, or an artifact written by a newer recforge (major.minor); then loads with
:func:`recforge.load`, which checks every array's checksum again and never unpickles.
The ``version`` of a loaded artifact is the first 16 hex digits of the manifest's SHA-256.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from recforge.models.artifacts import ArtifactError, ArtifactVersionError

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "recforge-artifact"
MANIFEST_VERSION = 1
_CHUNK = 1 << 20


@dataclass(frozen=True)
class LoadedArtifact:
    """A verified model and what its manifest says about it."""

    model: Any
    manifest: dict
    version: str
    path: Path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(training_data: Any = None, model: Any = None) -> dict:
    """SHA-256 over the training data's columns and id vocabularies, with its counts.

    ``training_data``: an ``Interactions`` (users, items, values, timestamps, user_ids, item_ids)
    or a users x items sparse matrix; None: the model's stored training matrix and ids.
    """
    digest = hashlib.sha256()

    def feed(name: str, array: Any) -> None:
        digest.update(name.encode())
        if array is None:
            digest.update(b"<none>")
            return
        a = np.asarray(array)
        if a.dtype.kind == "O" or a.dtype.kind == "U":
            digest.update("\x1f".join(map(str, a.tolist())).encode())
        else:
            a = np.ascontiguousarray(a)
            digest.update(a.dtype.str.encode() + str(a.shape).encode())
            digest.update(a.view(np.uint8).reshape(-1))

    if training_data is not None and hasattr(training_data, "to_csr") and hasattr(training_data, "user_ids"):
        for name in ("users", "items", "values", "timestamps"):
            feed(name, getattr(training_data, name))
        feed("user_ids", training_data.user_ids.to_numpy())
        feed("item_ids", training_data.item_ids.to_numpy())
        counts = {"n_users": len(training_data.user_ids), "n_items": len(training_data.item_ids),
                  "n_interactions": int(len(training_data.users))}
        source = "interactions"
    else:
        import scipy.sparse as sp

        R = training_data if training_data is not None else model.user_items_
        if not sp.issparse(R):
            raise TypeError(f"training_data must be Interactions or a scipy sparse matrix, got {type(R).__name__}")
        R = sp.csr_matrix(R)
        for name in ("indptr", "indices", "data"):
            feed(name, getattr(R, name))
        if training_data is None:
            feed("user_ids", model.user_ids_.to_numpy())
            feed("item_ids", model.item_ids_.to_numpy())
        counts = {"n_users": int(R.shape[0]), "n_items": int(R.shape[1]), "n_interactions": int(R.nnz)}
        source = "matrix"
    return {"sha256": digest.hexdigest(), "source": source, **counts}


def save_artifact(model: Any, path: Any, *, training_data: Any = None,
                  metrics: Mapping[str, float] | None = None, events_upto: int = 0) -> Path:
    """Save ``model`` to the folder ``path`` with a manifest (see the module docstring)."""
    from recforge import __version__

    folder = Path(path)
    if isinstance(events_upto, bool) or not isinstance(events_upto, (int, np.integer)) or events_upto < 0:
        raise ValueError(f"events_upto must be an event id >= 0, got {events_upto!r}")
    metrics_doc = {}
    for key, value in dict(metrics or {}).items():
        number = float(value)
        if not np.isfinite(number):
            raise ValueError(f"metrics[{key!r}] must be a finite number, got {value!r}")
        metrics_doc[str(key)] = number
    stale = folder / MANIFEST_NAME
    if stale.exists():
        stale.unlink()          # a reader never pairs the old manifest with new files
    model.save(folder)
    files = {}
    for file in sorted(p for p in folder.iterdir() if p.is_file() and p.name != MANIFEST_NAME):
        files[file.name] = {"sha256": file_sha256(file), "bytes": file.stat().st_size}
    manifest = {
        "format": MANIFEST_FORMAT, "format_version": MANIFEST_VERSION, "recforge_version": __version__,
        "model": type(model).__name__,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "files": files, "training_data": fingerprint(training_data, model), "metrics": metrics_doc,
        "events_upto": int(events_upto),
    }
    partial = folder / (MANIFEST_NAME + ".partial")
    with open(partial, "w") as fh:
        json.dump(manifest, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(partial, folder / MANIFEST_NAME)
    return folder


def read_manifest(path: Any) -> tuple[dict, str]:
    """The manifest of the artifact at ``path`` and its version (checks format, not files)."""
    file = Path(path) / MANIFEST_NAME
    if not file.is_file():
        raise ArtifactError(f"{Path(path)} has no {MANIFEST_NAME}: save served models with "
                            f"recforge.serving.save_artifact(model, path)")
    raw = file.read_bytes()
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{file} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ArtifactError(f"{file} is not a recforge artifact manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > MANIFEST_VERSION:
        raise ArtifactVersionError(f"{file} has manifest format {version!r}; this recforge reads up to "
                                   f"{MANIFEST_VERSION}: upgrade recforge")
    if not isinstance(manifest.get("files"), dict) or not manifest["files"]:
        raise ArtifactError(f"{file} lists no files")
    return manifest, hashlib.sha256(raw).hexdigest()[:16]


def _check_library_version(manifest: dict, file: Path) -> None:
    from recforge import __version__

    def major_minor(text: str) -> tuple[int, int]:
        parts = str(text).split(".")
        try:
            return int(parts[0]), int(parts[1])
        except (IndexError, ValueError):
            raise ArtifactError(f"{file} has an invalid recforge_version {text!r}") from None

    written = manifest.get("recforge_version")
    if written is None:
        raise ArtifactError(f"{file} does not say which recforge wrote it")
    if major_minor(written) > major_minor(__version__):
        raise ArtifactVersionError(f"{file} was written by recforge {written}, newer than this recforge "
                                   f"{__version__}: upgrade recforge to serve it")


def verify_files(path: Any, manifest: dict) -> None:
    """Every file listed has its size and checksum, and the folder holds no other file."""
    folder = Path(path)
    listed = manifest["files"]
    present = {p.name for p in folder.iterdir() if p.is_file() and p.name != MANIFEST_NAME
               and not p.name.endswith(".partial")}
    if present != set(listed):
        raise ArtifactError(f"{folder} holds {sorted(present)} but its manifest lists {sorted(listed)}")
    for name, spec in listed.items():
        file = folder / name
        if file.stat().st_size != spec.get("bytes") or file_sha256(file) != spec.get("sha256"):
            raise ArtifactError(f"{file} does not match its checksum in {MANIFEST_NAME}: "
                                f"the artifact was modified or damaged")


def load_artifact(path: Any) -> LoadedArtifact:
    """The verified model at ``path`` (see the module docstring); ArtifactError when refused."""
    from recforge.models.artifacts import load

    folder = Path(path)
    manifest, version = read_manifest(folder)
    _check_library_version(manifest, folder / MANIFEST_NAME)
    verify_files(folder, manifest)
    model = load(folder)
    if type(model).__name__ != manifest.get("model"):
        raise ArtifactError(f"{folder}: the manifest names {manifest.get('model')!r} but the model is "
                            f"{type(model).__name__}")
    return LoadedArtifact(model=model, manifest=manifest, version=version, path=folder)


def artifact_signature(path: Any) -> tuple | None:
    """What changes when a new version is published at ``path`` (the manifest's identity)."""
    try:
        st = os.stat(Path(path) / MANIFEST_NAME)
    except OSError:
        return None
    return (os.path.realpath(path), st.st_ino, st.st_mtime_ns, st.st_size)
