r"""ContentKNN: recommend from what items say (titles, genres, tags, attributes).

Each item gets a unit vector :math:`x_i` from its metadata (``encoder``: TF-IDF, Word2Vec,
Sentence-BERT, multi-hot attributes, or a function), so :math:`s(j, i) = \langle x_j, x_i\rangle`
is the cosine of two items. A user is scored from their history's profile weights
:math:`w_{uj}` (:mod:`recforge.models.content.profiles`: mean, rating or recency),

.. math:: \mathrm{score}(u, i) = \sum_{j \in H_u} w_{uj}\, s_k(j, i),

where :math:`s_k = s` when ``k`` is None (then the score is :math:`\langle p_u, x_i\rangle`
with the profile :math:`p_u = \sum_j w_{uj} x_j`, computed at request time from the stored or
``history=`` interactions), or only the k most similar items of each j (an item-item
neighbour list) otherwise. Sparse vectors (tfidf, attributes) score through
:func:`recforge.kernels.similarity_topk`, dense ones (word2vec, bert) through
:func:`recforge.kernels.dense_topk`, both with the exclusion fused into the selection.

Cold start: every item of the catalogue has a vector, interacted with or not, and
:meth:`ContentKNN.add_items` encodes new items into the fitted space (nothing else is refitted).
:meth:`ContentKNN.explain` splits a score into the history items' (and, for word or label
vectors, the words') contributions, which sum to the score. Dense embeddings are cached on disk
(:mod:`recforge.models.content.cache`).

``profile="recency"`` reads the order of each history (the training sequences, or the order
of a ``history=`` list or Interactions); a loaded model keeps no training order, so for stored
users it then falls back to item code order: pass ``history=`` to recommend by recency after
``recforge.load``.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import scipy.sparse as sp

from recforge.data.idmap import IdMap
from recforge.kernels import dense_topk, similarity_topk
from recforge.kernels import _validation as v
from recforge.models.base import Recommender, check_code_range, ids_of_codes, known_codes
from recforge.models.content.profiles import PROFILES, profile_weights
from recforge.models.ranking import PAD_ITEM, PAD_SCORE, complete_sparse_topn
from recforge.models.training_data import HistoryChunk, TrainingData


class ContentKNN(Recommender):
    """Content-based recommender (module docstring).

    ``encoder``: "tfidf" | "word2vec" | "bert" | "attributes" | a callable ``texts -> vectors``
    (then ``encoder_options={"sparse": True}`` when it returns a sparse matrix);
    ``encoder_options``: passed to the encoder (e.g. TfidfVectorizer arguments, word2vec
    ``vector_size``/``path``, bert ``batch_size``/``num_threads``); ``fields``: the metadata
    columns read (texts are joined, "|"-lists become words; ``attributes`` turns each value into
    a label); ``k``: None for the full profile score, or the item neighbours kept per item;
    ``profile``: "mean" | "rating" | "recency" (with ``half_life`` in interactions);
    ``cache_dir`` / ``use_cache``: the embedding cache (default ``$RECFORGE_CACHE_DIR`` or
    ``~/.cache/recforge``).
    """

    requires = frozenset({"item_metadata"})
    #: ``recforge demo`` encodes its catalogue with Sentence-BERT once; later runs read the
    #: embedding cache (``$RECFORGE_CACHE_DIR`` or ``~/.cache/recforge``)
    demo_params = {"encoder": "bert"}

    def __init__(self, encoder: Any = "tfidf", fields: tuple = ("title", "genres", "tags"), k: int | None = None,
                 profile: str = "mean", half_life: float = 10.0, encoder_options: dict | None = None,
                 cache_dir: str | None = None, use_cache: bool = True, num_threads: int = 0,
                 progress: bool = False):
        self.encoder = encoder
        self.fields = fields
        self.k = k
        self.profile = profile
        self.half_life = half_life
        self.encoder_options = encoder_options
        self.cache_dir = cache_dir
        self.use_cache = use_cache
        self.num_threads = num_threads
        self.progress = progress

    # ------------------------------------------------------------------ parameters
    def _check_params(self) -> None:
        from recforge.models.content.encoders import ENCODERS
        if not callable(self.encoder) and self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {sorted(ENCODERS)} or a callable texts -> vectors, "
                             f"got {self.encoder!r}")
        if isinstance(self.fields, str) or not all(isinstance(f, str) for f in self.fields) or not self.fields:
            raise ValueError(f"fields must be a non-empty sequence of metadata column names, got {self.fields!r}")
        if self.k is not None:
            v.check_positive_int(self.k, "k")
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, got {self.profile!r}")
        if not (isinstance(self.half_life, (int, float)) and self.half_life > 0):
            raise ValueError(f"half_life must be a number > 0, got {self.half_life!r}")
        if self.encoder_options is not None and not isinstance(self.encoder_options, dict):
            raise TypeError(f"encoder_options must be a dict, got {type(self.encoder_options).__name__}")
        if isinstance(self.num_threads, bool) or not isinstance(self.num_threads, (int, np.integer)) \
                or self.num_threads < 0:
            raise ValueError(f"num_threads must be an integer >= 0 (0 = all cores), got {self.num_threads!r}")

    def _new_encoder(self):
        from recforge.models.content.encoders import make_encoder
        return make_encoder(self.encoder, self.encoder_options)

    # ------------------------------------------------------------------ fitting
    def _fit(self, data: TrainingData) -> None:
        encoder = self._new_encoder()
        docs = self._documents(data.item_metadata)
        encoder.fit(docs)
        self._encoder = encoder
        self.item_vectors_ = self._encode(docs)
        self._prepare()

    def _documents(self, meta: Any) -> list:
        """One document per metadata row: label lists for ``attributes``, texts otherwise."""
        from recforge.models.content.encoders import metadata_labels
        if self._wants_labels():
            return metadata_labels(meta, self.fields)
        holder = TrainingData(interactions=SimpleNamespace(item_metadata=meta), user_ids=IdMap.range(0),
                              item_ids=IdMap.range(len(meta)))
        return holder.item_texts(tuple(self.fields))

    def _wants_labels(self) -> bool:
        return not callable(self.encoder) and self.encoder == "attributes"

    def _encode(self, docs: list) -> Any:
        """Unit-length item vectors of ``docs``: from the cache when the encoder is costly."""
        from recforge.models.content.cache import encode_cached
        X, self.cache_hit_ = encode_cached(self._encoder, docs, self.cache_dir, self.use_cache, bool(self.progress))
        return _unit_rows(X)

    def _prepare(self) -> None:
        """Derived operands (not saved): the item-item neighbour lists when k is set."""
        X = self.item_vectors_
        self._sparse = sp.issparse(X)
        self._neighbours_t = None
        if self.k is None:
            return
        k = int(self.k)
        if self._sparse:
            S = similarity_topk(X, k, metric="dot", num_threads=int(self.num_threads))
        else:
            itself = sp.identity(X.shape[0], dtype=np.float32, format="csr")
            idx, val = dense_topk(X, X, k, exclude=itself, metric="dot", num_threads=int(self.num_threads))
            keep = (idx >= 0) & (val != 0)
            rows = np.repeat(np.arange(X.shape[0]), k).reshape(idx.shape)
            S = sp.csr_matrix((val[keep], (rows[keep], idx[keep])), shape=(X.shape[0], X.shape[0]))
        St = S.T.tocsr().astype(np.float32)       # row i: s_k(j, i) over j
        St.sort_indices()
        self._neighbours_t = St

    # ------------------------------------------------------------------ scoring
    def _weights(self, history: HistoryChunk) -> sp.csr_matrix:
        sequences = history.sequences if self.profile == "recency" else None
        return profile_weights(history.rows, self.profile, sequences, float(self.half_life))

    def _operands(self, W: sp.csr_matrix):
        """(left, right): score(u, i) = <left[u], right[i]>."""
        if self.k is not None:
            return sp.csr_matrix(W, dtype=np.float32), self._neighbours_t
        X = self.item_vectors_
        if self._sparse:
            P = sp.csr_matrix(W @ X.astype(np.float64), dtype=np.float32)
            P.sort_indices()
            return P, X
        return np.asarray(W @ X.astype(np.float64), dtype=np.float32), X

    def _recommend_chunk(self, codes, history, n, exclude):
        left, right = self._operands(self._weights(history))
        threads = int(self.num_threads)
        if not sp.issparse(right):
            return dense_topk(left, right, n, exclude=exclude, metric="dot", num_threads=threads)
        found = similarity_topk(left, n, right, metric="dot", exclude=exclude, num_threads=threads)
        return complete_sparse_topn(found, n, exclude, lambda which: (left[which] @ right.T).toarray())

    def _predict_codes(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        uniq, inv = np.unique(users, return_inverse=True)
        chunk = HistoryChunk(uniq, self.user_items_[uniq], stored=self._stored_sequences)
        left, right = self._operands(self._weights(chunk))
        if sp.issparse(right):
            L = sp.csr_matrix(left, dtype=np.float64)[inv]
            return np.asarray(L.multiply(sp.csr_matrix(right, dtype=np.float64)[items]).sum(axis=1)).reshape(-1)
        return np.einsum("ij,ij->i", np.asarray(left, np.float64)[inv], np.asarray(right, np.float64)[items])

    # ------------------------------------------------------------------ explanations
    def explain(self, user: Any, item: Any, *, history: Any = None, ids: bool = False) -> Explanation:
        """Why ``item`` scores what it does for ``user``: each history item's contribution
        :math:`w_{uj} s_k(j, i)` and, for word/label vectors with ``k=None``, each word's
        :math:`p_{ut} x_{it}`; each list sums to the score. ``history``: as in recommend (one row).
        Returns a :class:`recforge.models.explanation.Explanation`."""
        from recforge.models.explanation import Explanation, ranked

        self._require_fitted()
        codes = self._user_codes([user], ids, allow_unknown=history is not None)
        hist = self._history(codes, [user], history, ids)
        i = int(known_codes(self.item_ids_, [item], "item")[0]) if ids else int(item)
        check_code_range(np.array([i]), self.n_items_, "item")
        W = self._weights(hist)
        js, ws = W.indices.astype(np.int64), W.data
        if self.k is not None:
            sims = self._neighbours_t[i].toarray().reshape(-1)[js].astype(np.float64)
        elif self._sparse:
            X = self.item_vectors_
            sims = np.asarray((X[js].astype(np.float64) @ X[i].astype(np.float64).T).toarray()).reshape(-1)
        else:
            X = np.asarray(self.item_vectors_, np.float64)
            sims = X[js] @ X[i]
        contributions = ws * sims
        score = float(contributions.sum())
        sources, contributions = ranked(js, contributions)
        labels = ids_of_codes(self.item_ids_, sources) if ids else sources
        names = features = None
        vocabulary = self._encoder.feature_names() if self._sparse else None
        if self.k is None and vocabulary is not None:
            P = sp.csr_matrix(W @ self.item_vectors_.astype(np.float64))
            product = P.multiply(self.item_vectors_[i].astype(np.float64)).tocsr()
            terms, features = ranked(product.indices.astype(np.int64), product.data)
            names = [vocabulary[t] for t in terms]
        return Explanation(score, items=labels, item_contributions=contributions, features=names,
                           feature_contributions=features)

    # ------------------------------------------------------------------ cold start
    def known_items(self) -> np.ndarray:
        """Boolean over the items: those with a non-zero vector, which the model can score
        (interacted with or not); an item whose metadata gives no word or label has none."""
        self._require_fitted()
        X = self.item_vectors_
        if self._sparse:
            return np.diff(sp.csr_matrix(X).indptr) > 0
        return np.any(np.asarray(X) != 0, axis=1)

    def add_items(self, metadata: Any) -> "ContentKNN":
        """Encode new items (a DataFrame indexed by new item ids, with the model's fields) into the
        fitted space and append them to the catalogue; they are recommendable at once. The
        encoder is not refitted (TF-IDF keeps its vocabulary and idf, word2vec its words)."""
        self._require_fitted()
        if not hasattr(metadata, "index") or not hasattr(metadata, "columns"):
            raise TypeError(f"metadata must be a pandas DataFrame indexed by item id, got {type(metadata).__name__}")
        new_ids = np.asarray(metadata.index.to_numpy())
        if len(set(new_ids.tolist())) != new_ids.size:
            raise ValueError("metadata holds an item id twice")
        known = self.item_ids_.codes(new_ids, missing=-1) >= 0
        if known.any():
            raise ValueError(f"metadata holds items the model already has, e.g. {new_ids[known][0]!r}")
        if new_ids.size == 0:
            return self
        if not hasattr(self, "_encoder"):
            raise RuntimeError("the encoder of this model is unavailable (a callable encoder is not saved)")
        X_new = self._encode(self._documents(metadata))
        X = self.item_vectors_
        if self._sparse:
            X_new = sp.csr_matrix(X_new, dtype=np.float32)
            self.item_vectors_ = sp.vstack([X, X_new]).tocsr()
        else:
            self.item_vectors_ = np.ascontiguousarray(np.vstack([X, np.asarray(X_new, np.float32)]))
        old = self.item_ids_.to_numpy()
        self.item_ids_ = IdMap(np.concatenate([old.astype(object) if new_ids.dtype.kind == "O" else old, new_ids]))
        R = self.user_items_
        self.n_items_ = self.n_items_ + new_ids.size
        self.user_items_ = sp.csr_matrix((R.data, R.indices, R.indptr), shape=(self.n_users_, self.n_items_))
        self._prepare()
        return self

    # ------------------------------------------------------------------ neighbours
    def similar_items(self, items: Any, n: int = 10, *, ids: bool = False):
        """The n items whose vectors have the highest cosine with each item's (never itself)."""
        self._require_fitted()
        n = v.check_positive_int(n, "n")
        q = np.asarray(items).reshape(-1)
        q = known_codes(self.item_ids_, q, "items") if ids else q.astype(np.int64)
        check_code_range(q, self.n_items_, "items")
        X = self.item_vectors_
        itself = sp.csr_matrix((np.ones(q.size, np.float32), q, np.arange(q.size + 1)), shape=(q.size, self.n_items_))
        if self._sparse:
            found = similarity_topk(X[q], n, X, metric="dot", exclude=itself, num_threads=int(self.num_threads))
            out, scores = _rows_of(found, n)
        else:
            out, scores = dense_topk(X[q], X, n, exclude=itself, metric="dot", num_threads=int(self.num_threads))
        return (ids_of_codes(self.item_ids_, out), scores) if ids else (out, scores)

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, Any]:
        if callable(self.encoder):
            raise TypeError("a ContentKNN with a callable encoder cannot be saved (a function is not data); "
                            "save its vectors yourself or use a named encoder")
        state: dict[str, Any] = {"item_vectors_": self.item_vectors_}
        for key, value in self._encoder.state().items():
            state[f"encoder_{key}_"] = value
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        X = state["item_vectors_"]
        if X.shape[0] != self.n_items_:
            raise ValueError(f"item_vectors_ must have {self.n_items_} rows, got {X.shape[0]}")
        encoder = self._new_encoder()
        encoder_state = {k[len("encoder_"):-1]: val for k, val in state.items() if k.startswith("encoder_")}
        if encoder_state:
            encoder.restore(encoder_state)
        self._encoder = encoder
        self.item_vectors_ = sp.csr_matrix(X, dtype=np.float32) if sp.issparse(X) else np.asarray(X, np.float32)
        self._prepare()


def _unit_rows(X: Any) -> Any:
    """Rows scaled to unit L2 norm (zero rows stay zero): float32 CSR or dense array."""
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float64)
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).reshape(-1))
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        out = sp.csr_matrix(sp.diags(inv) @ X, dtype=np.float32)
        out.eliminate_zeros()
        out.sort_indices()
        return out
    X = np.asarray(X, dtype=np.float64)
    norms = np.linalg.norm(X, axis=1)
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return np.ascontiguousarray((X * inv[:, None]).astype(np.float32))


def _rows_of(found: sp.csr_matrix, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A kernel's best-first CSR rows as (items, scores) padded to n with -1 / -inf."""
    m = found.shape[0]
    items = np.full((m, n), PAD_ITEM, dtype=np.int64)
    scores = np.full((m, n), PAD_SCORE, dtype=np.float32)
    lengths = np.diff(found.indptr)
    rows = np.repeat(np.arange(m), lengths)
    place = np.arange(found.nnz) - found.indptr[:-1][rows]
    keep = place < n
    items[rows[keep], place[keep]] = found.indices[keep]
    scores[rows[keep], place[keep]] = found.data[keep]
    return items, scores
