"""An on-disk cache of item embeddings, so that a second fit on the same texts does not re-encode.

An entry is one ``.npy`` file (dense float32, read with ``allow_pickle=False``) named by the
SHA-256 of the encoder's name, its model version (library and weights versions, options) and
the hash of the texts in order. Any change to one of them is a different key; a damaged file is
ignored and rewritten. Location: ``cache_dir``, else ``$RECFORGE_CACHE_DIR``, else
``~/.cache/recforge``, in the subfolder ``embeddings/``.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np


def default_cache_dir() -> Path:
    env = os.environ.get("RECFORGE_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "recforge"


def texts_digest(texts: Sequence[Any]) -> str:
    """SHA-256 of the texts in order (each one's length first, so boundaries count)."""
    h = hashlib.sha256()
    for t in texts:
        b = str(t).encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


class EmbeddingCache:
    """``get(key)`` / ``put(key, array)`` over a folder; :meth:`key` builds the key."""

    def __init__(self, cache_dir: Any = None):
        self.folder = Path(cache_dir if cache_dir is not None else default_cache_dir()) / "embeddings"

    @staticmethod
    def key(encoder: str, version: str, texts: Sequence[Any]) -> str:
        doc = json.dumps({"encoder": encoder, "version": version, "texts": texts_digest(texts)}, sort_keys=True)
        return hashlib.sha256(doc.encode("utf-8")).hexdigest()

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.npy"

    def get(self, key: str, n_rows: int) -> np.ndarray | None:
        """The stored array for ``key`` when it exists, is readable and has ``n_rows`` rows."""
        file = self.path(key)
        if not file.is_file():
            return None
        try:
            arr = np.load(file, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        if arr.ndim != 2 or arr.shape[0] != n_rows or arr.dtype.kind != "f" or not np.all(np.isfinite(arr)):
            return None
        return arr

    def put(self, key: str, arr: np.ndarray) -> Path:
        """Store ``arr`` atomically (a temporary file renamed into place)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, np.ascontiguousarray(arr, dtype=np.float32), allow_pickle=False)
            os.replace(tmp, self.path(key))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return self.path(key)


def encode_cached(encoder: Any, docs: Sequence[Any], cache_dir: Any = None, use_cache: bool = True,
                  progress: bool = False) -> tuple[Any, bool]:
    """(``encoder.encode(docs)``, whether it came from the cache). Costly encoders
    (``encoder.cacheable``) are looked up under the key of their name, version and the documents'
    ``repr`` in order, and stored after a miss; the others are always encoded."""
    if not (encoder.cacheable and use_cache):
        return encoder.encode(docs, progress=progress), False
    cache = EmbeddingCache(cache_dir)
    key = cache.key(encoder.name, encoder.version(), [repr(d) for d in docs])
    X = cache.get(key, len(docs))
    if X is not None:
        return X, True
    X = encoder.encode(docs, progress=progress)
    cache.put(key, X)
    return X, False
