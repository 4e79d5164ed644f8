r"""Word2Vec item vectors (gensim): the mean of the item text's word vectors.

Words are gensim's ``simple_preprocess`` tokens. By default a skip-gram-free CBOW model is
trained on the item texts themselves (``vector_size`` 64, ``window`` 5, ``min_count`` 1,
``epochs`` 20, one worker, ``seed`` 0 and a fixed string hash, so two fits give identical
vectors); ``path=`` loads pretrained vectors instead (gensim ``KeyedVectors.load``, or the
word2vec text/binary format for ``.txt``/``.bin``). An item with no known word gets the zero
vector. :math:`x_i = \frac{1}{|W_i|}\sum_{w \in W_i} v_w` over the known words :math:`W_i`.
"""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from recforge._progress import progress_bar
from recforge.models.content.encoders.base import Encoder, require_text

DEFAULTS = {"vector_size": 64, "window": 5, "min_count": 1, "epochs": 20, "seed": 0, "sg": 0}


def stable_hash(text: str) -> int:
    """A string hash that does not change between processes (Python's hash() does)."""
    return zlib.crc32(text.encode("utf-8"))


class Word2VecEncoder(Encoder):
    name = "word2vec"
    cacheable = True

    def __init__(self, path: Any = None, **options: Any):
        unknown = set(options) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown word2vec options {sorted(unknown)}; known: {sorted(DEFAULTS)} and path")
        self.path = path
        self.options = {**DEFAULTS, **options}
        self._words: list[str] | None = None
        self._vectors: np.ndarray | None = None
        self._index: dict[str, int] = {}

    @staticmethod
    def tokens(text: str) -> list[str]:
        utils = require_text("gensim.utils", "the word2vec encoder")
        return utils.simple_preprocess(str(text))

    def fit(self, docs: Sequence[str]) -> "Word2VecEncoder":
        models = require_text("gensim.models", "the word2vec encoder")
        if self.path is not None:
            path = Path(self.path)
            if path.suffix in (".txt", ".bin"):
                kv = models.KeyedVectors.load_word2vec_format(str(path), binary=path.suffix == ".bin")
            else:
                kv = models.KeyedVectors.load(str(path))
        else:
            sentences = [self.tokens(t) for t in docs]
            sentences = [s for s in sentences if s]
            if not sentences:
                raise ValueError("the item texts hold no words to train word2vec on")
            kv = models.Word2Vec(sentences=sentences, workers=1, hashfxn=stable_hash, **self.options).wv
        self._set(list(kv.index_to_key), np.asarray(kv.vectors, dtype=np.float32))
        return self

    def _set(self, words: list[str], vectors: np.ndarray) -> None:
        self._words, self._vectors = words, vectors
        self._index = {w: k for k, w in enumerate(words)}

    def encode(self, docs: Sequence[str], progress: bool = False) -> np.ndarray:
        if self._vectors is None:
            raise RuntimeError("the word2vec encoder is not fitted")
        out = np.zeros((len(docs), self._vectors.shape[1]), dtype=np.float32)
        with progress_bar(len(docs), "word2vec", progress) as bar:
            for r, text in enumerate(docs):
                idx = [self._index[w] for w in self.tokens(text) if w in self._index]
                if idx:
                    out[r] = self._vectors[idx].mean(axis=0)
                bar.update(1)
        return out

    def version(self) -> str:
        gensim = require_text("gensim", "the word2vec encoder")
        source = "trained"
        if self.path is not None:
            st = Path(self.path).stat()
            source = f"{Path(self.path).resolve()}:{st.st_size}:{st.st_mtime_ns}"
        return f"word2vec gensim-{gensim.__version__} {source} {sorted(self.options.items())!r}"

    def state(self) -> dict[str, Any]:
        return {"words": list(self._words or []), "vectors": self._vectors}

    def restore(self, state: dict[str, Any]) -> None:
        vectors = np.asarray(state["vectors"], np.float32)
        words = [str(w) for w in state["words"]]
        if vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise ValueError(f"word2vec state: {len(words)} words but vectors of shape {vectors.shape}")
        self._set(words, vectors)
