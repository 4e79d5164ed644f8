r"""Item embeddings initialised from item texts (``item_init="text"`` of SASRec and BERT4Rec).

Each item's text (its metadata fields ``item_text_fields`` joined, :meth:`TrainingData.item_texts`)
is encoded by a content encoder (:mod:`recforge.models.content.encoders`; default ``"bert"``:
all-MiniLM-L6-v2, 384-d, offline, cached on disk by :func:`~recforge.models.content.cache.encode_cached`)
into :math:`X \in \mathbb{R}^{n \times D}`, then projected to the hidden size :math:`d` by a
fixed PCA and rescaled:

.. math::

    \bar X = X - \mathbf{1}\mu^\top,\qquad \bar X = U S V^\top,\qquad
    T = \bar X\, V_{:, :k}\ \text{(zero columns after } k = \min(d, \operatorname{rank})\text{)},\qquad
    E_0 = T \cdot \frac{1}{\sqrt{\tfrac1n \sum_i \lVert T_i\rVert^2}}

so the initial table's root-mean-square row norm is 1, the expected row norm of the random
init :math:`\mathcal N(0, 1/d)` (:class:`~.networks.SequenceNet`). Each principal direction's
sign is fixed by making its largest-magnitude loading (entry of :math:`V_{:, j}`) positive
(the first one on a tie), so the table is deterministic.

Why PCA, not a random or a learned projection: the initial table is what the network starts
from, and the inner products :math:`e_i \cdot e_j` are what it scores with; the top-``d``
principal directions are the rank-``d`` map that keeps the most of the (centred) text
geometry (Eckart–Young), where a random projection to d = 64 of 384 dims keeps it only
roughly (Johnson–Lindenstrauss distortion :math:`\sim 1/\sqrt d`). Centring removes the
direction all MiniLM vectors share, which would otherwise give every pair of items the same
large positive similarity. A learned linear projection (:math:`E = X W` trained end to end)
would be a different model — the table would stay tied to the texts and need the encoder's
vectors saved with the model — while ``item_init`` only chooses where the free table starts;
after the init every row is trained like a randomly initialised one.

Sparse encoders (``tfidf``) are projected the same way through
:func:`scipy.sparse.linalg.svds` on the implicitly centred matrix (no densifying). ``attributes``
encodes label lists, not texts, and is refused.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from recforge.models.training_data import MissingInputError, TrainingData

ITEM_INITS = ("random", "text")


def item_texts_for_init(data: TrainingData, fields: Sequence[str], model: str) -> list[str]:
    """One text per item code, or MissingInputError naming ``item_init`` / ``item_text_fields``."""
    try:
        texts = data.item_texts(tuple(fields))
    except MissingInputError as exc:
        raise MissingInputError(f"{model}(item_init='text') needs item texts: {exc}. Pass Interactions whose "
                                f"item_metadata has some of item_text_fields={tuple(fields)}, change "
                                f"item_text_fields, or use item_init='random'") from None
    if not any(t.strip() for t in texts):
        raise MissingInputError(f"{model}(item_init='text'): every item text from item_text_fields={tuple(fields)} "
                                f"is empty")
    return texts


def encode_texts(texts: Sequence[str], encoder: str = "bert", options: dict | None = None,
                 progress: bool = False, cache_dir: Any = None) -> Any:
    """The content encoder's vectors of ``texts`` (dense float32 or CSR), fitted on ``texts``
    (a vocabulary for tfidf, word vectors for word2vec; nothing for bert) and cached on disk
    when the encoder is costly."""
    from recforge.models.content.cache import encode_cached
    from recforge.models.content.encoders import make_encoder

    enc = make_encoder(encoder, options)
    if enc.wants_labels:
        raise ValueError(f"item_encoder={encoder!r} encodes metadata label lists, not texts; "
                         f"choose a text encoder (bert, tfidf, word2vec)")
    docs = list(texts)
    enc.fit(docs)
    X, _ = encode_cached(enc, docs, cache_dir=cache_dir, progress=progress)
    return X


def principal_projection(X: Any, dim: int) -> np.ndarray:
    """(n, dim) float64: the centred rows of ``X`` on its top ``min(dim, rank)`` principal
    directions (signs fixed as in the module docstring), zero columns after those."""
    n = X.shape[0]
    out = np.zeros((n, dim), dtype=np.float64)
    if n < 2:
        return out
    if sp.issparse(X):
        directions = _sparse_directions(sp.csr_matrix(X, dtype=np.float64), dim)
        mean = np.asarray(X.mean(axis=0), dtype=np.float64).reshape(-1)
        projected = np.asarray(X @ directions) - mean @ directions
    else:
        Xc = np.asarray(X, dtype=np.float64)
        Xc = Xc - Xc.mean(axis=0)
        _, s, vt = np.linalg.svd(Xc, full_matrices=False)
        directions = vt[:min(dim, _rank(s, Xc.shape))].T
        projected = Xc @ directions
    directions, projected = _fix_signs(directions, projected)
    out[:, :projected.shape[1]] = projected
    return out


def _fix_signs(directions: np.ndarray, projected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if directions.shape[1] == 0:
        return directions, projected
    lead = np.argmax(np.abs(directions), axis=0)
    signs = np.sign(directions[lead, np.arange(directions.shape[1])])
    signs[signs == 0] = 1.0
    return directions * signs, projected * signs


def _sparse_directions(X: sp.csr_matrix, dim: int) -> np.ndarray:
    from scipy.sparse.linalg import LinearOperator, svds

    n, m = X.shape
    k = min(dim, min(n, m) - 1)
    if k < 1:
        return np.zeros((m, 0))
    mean = np.asarray(X.mean(axis=0)).reshape(-1)
    ones = np.ones(n)
    centred = LinearOperator((n, m), dtype=np.float64,
                             matvec=lambda v: X @ v.ravel() - ones * (mean @ v.ravel()),
                             rmatvec=lambda u: X.T @ u.ravel() - mean * u.sum())
    v0 = np.full(min(n, m), 1.0 / np.sqrt(min(n, m)))
    _, s, vt = svds(centred, k=k, v0=v0, solver="arpack")
    order = np.argsort(-s, kind="stable")
    s, vt = s[order], vt[order]
    return vt[:_rank(s, (n, m))].T


def _rank(singular_values: np.ndarray, shape: tuple) -> int:
    """How many of the (descending) singular values exceed numpy's matrix_rank tolerance."""
    if singular_values.size == 0 or not singular_values[0] > 0:
        return 0
    return int(np.sum(singular_values > singular_values[0] * max(shape) * np.finfo(np.float64).eps))


def text_item_table(texts: Sequence[str], hidden: int, encoder: str = "bert", options: dict | None = None,
                    progress: bool = False, cache_dir: Any = None) -> np.ndarray:
    """(len(texts), hidden) float32 initial item table :math:`E_0` (module docstring)."""
    T = principal_projection(encode_texts(texts, encoder, options, progress, cache_dir), int(hidden))
    rms = np.sqrt(np.mean(np.sum(T * T, axis=1)))
    if not rms > 0:
        raise ValueError("the item texts encode to identical vectors: nothing to initialise the items from")
    return (T / rms).astype(np.float32)
