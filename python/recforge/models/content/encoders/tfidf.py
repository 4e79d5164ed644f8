r"""TF-IDF item vectors: scikit-learn's ``TfidfVectorizer`` (its tokeniser, its weighting).

With scikit-learn's defaults, :math:`x_{it} = \mathrm{tf}_{it}\,(\ln\frac{1 + N}{1 + \mathrm{df}_t} + 1)`,
each row scaled to unit L2 norm. ``options`` go to ``TfidfVectorizer`` unchanged (e.g.
``{"ngram_range": (1, 2), "min_df": 2, "sublinear_tf": True}``).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from recforge.models.content.encoders.base import Encoder, require_text


class TfidfEncoder(Encoder):
    name = "tfidf"
    sparse = True

    def __init__(self, **options: Any):
        self.options = options
        self._vectorizer = None

    def _new(self, **extra: Any):
        text = require_text("sklearn.feature_extraction.text", "the tfidf encoder")
        return text.TfidfVectorizer(dtype=np.float32, **self.options, **extra)

    def fit(self, docs: Sequence[str]) -> "TfidfEncoder":
        self._vectorizer = self._new().fit(list(docs))
        return self

    def encode(self, docs: Sequence[str], progress: bool = False):
        if self._vectorizer is None:
            raise RuntimeError("the tfidf encoder is not fitted")
        X = self._vectorizer.transform(list(docs)).tocsr().astype(np.float32)
        X.sort_indices()
        return X

    def version(self) -> str:
        import sklearn
        return f"tfidf sklearn-{sklearn.__version__} {sorted(self.options.items())!r}"

    def feature_names(self) -> list[str]:
        return [str(t) for t in self._vectorizer.get_feature_names_out()]

    def state(self) -> dict[str, Any]:
        return {"vocabulary": self.feature_names(), "idf": np.asarray(self._vectorizer.idf_, np.float64)}

    def restore(self, state: dict[str, Any]) -> None:
        vocabulary = [str(t) for t in state["vocabulary"]]
        idf = np.asarray(state["idf"], np.float64)
        if idf.shape != (len(vocabulary),):
            raise ValueError(f"tfidf state: {len(vocabulary)} terms but {idf.size} idf values")
        options = {k: v for k, v in self.options.items() if k not in ("vocabulary",)}
        text = require_text("sklearn.feature_extraction.text", "the tfidf encoder")
        vec = text.TfidfVectorizer(dtype=np.float32, vocabulary=vocabulary, **options)
        vec.idf_ = idf
        self._vectorizer = vec
