"""The peer libraries' versions of recforge's kernels, shared by ``recforge bench`` and benchmarks/.

Every peer is imported inside the function that uses it (``import recforge.bench`` imports
none of torch, faiss, implicit, sparse_dot_topn or Surprise). Each adapter returns its result in
recforge's layout so that :mod:`recforge.bench.agreement` can compare it:

* similarity: a square CSR of item-item scores (the item itself may be present: it is ignored);
* dense top-k: ``(indices (m, k), scores (m, k))``, best first;
* propagate: the dense ``(n, d)`` combined embeddings.
"""
from __future__ import annotations

import importlib.util
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def torch_cuda_available() -> bool:
    if not installed("torch"):
        return False
    import torch

    return bool(torch.cuda.is_available())


def l2_rows(X: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled to unit L2 norm (empty rows stay empty)."""
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(inv.astype(X.dtype)) @ X)


# ----------------------------------------------------------------------------- similarity_topk
def implicit_cosine(R: sp.csr_matrix, k: int, threads: int) -> sp.csr_matrix:
    """implicit's CosineRecommender on users x items R; K = k + 1 (its lists include the item)."""
    from implicit.nearest_neighbours import CosineRecommender

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = CosineRecommender(K=k + 1, num_threads=threads)
        model.fit(R, show_progress=False)
    return model.similarity


def sparse_dot_topn_cosine(X: sp.csr_matrix, k: int, threads: int) -> sp.csr_matrix:
    """sparse_dot_topn's sp_matmul_topn on the L2-normalised rows of X (items x users)."""
    from sparse_dot_topn import sp_matmul_topn

    Xn = l2_rows(X)
    return sp_matmul_topn(Xn, Xn.T.tocsr(), top_n=k + 1, sort=True, n_threads=threads)


def scipy_cosine(X: sp.csr_matrix, k: int, chunk: int = 2048) -> sp.csr_matrix:
    """Single-threaded: a sparse product per block of rows, the diagonal zeroed, then argpartition."""
    Xn = l2_rows(X)
    XT = Xn.T.tocsc()
    n = X.shape[0]
    rows, cols, vals = [], [], []
    for start in range(0, n, chunk):
        block = (Xn[start:start + chunk] @ XT).toarray()
        block[np.arange(block.shape[0]), np.arange(start, start + block.shape[0])] = 0
        kk = min(k, n - 1)
        top = np.argpartition(-block, kk - 1, axis=1)[:, :kk] if kk > 0 else np.empty((block.shape[0], 0), int)
        v = np.take_along_axis(block, top, axis=1)
        r = np.repeat(np.arange(start, start + block.shape[0]), top.shape[1])
        keep = v.ravel() != 0
        rows.append(r[keep]), cols.append(top.ravel()[keep]), vals.append(v.ravel()[keep])
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


# ----------------------------------------------------------------------------- dense_topk
def faiss_flat_index(V: np.ndarray):
    """A faiss IndexFlatIP holding the rows of V."""
    import faiss

    index = faiss.IndexFlatIP(V.shape[1])
    index.add(np.ascontiguousarray(V, dtype=np.float32))
    return index


def faiss_topk(index, Q: np.ndarray, k: int, threads: int, exclude: sp.csr_matrix | None = None):
    """faiss exact inner-product search; with ``exclude``, asks for k + (most excluded in a row)
    results and drops the excluded ones in numpy, keeping faiss's order."""
    import faiss

    faiss.omp_set_num_threads(threads)
    if exclude is None or exclude.nnz == 0:
        scores, idx = index.search(Q, k)
        return idx, scores
    extra = int(np.diff(exclude.indptr).max())
    scores, idx = index.search(Q, k + extra)
    m, n = exclude.shape
    excluded = np.repeat(np.arange(m, dtype=np.int64), np.diff(exclude.indptr)) * n + exclude.indices
    excluded.sort()
    codes = np.arange(m, dtype=np.int64)[:, None] * n + idx
    pos = np.minimum(np.searchsorted(excluded, codes), excluded.size - 1)
    keep = np.argsort(excluded[pos] == codes, axis=1, kind="stable")[:, :k]   # kept first, order unchanged
    return np.take_along_axis(idx, keep, axis=1), np.take_along_axis(scores, keep, axis=1)


def torch_topk(torch, Q, V, k: int, threads: int | None, exclude: sp.csr_matrix | None = None,
               chunk: int = 4096):
    """torch ``Q @ V.T`` then ``topk`` per block of queries; excluded scores set to -inf first.

    Q, V are torch tensors (on any device); the result comes back as numpy.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    scores, indices = [], []
    for start in range(0, Q.shape[0], chunk):
        S = Q[start:start + chunk] @ V.T
        if exclude is not None:
            block = exclude[start:start + chunk]
            rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
            S[torch.from_numpy(rows).to(S.device), torch.from_numpy(block.indices.astype(np.int64)).to(S.device)] = \
                -float("inf")
        s, i = torch.topk(S, k, dim=1)
        scores.append(s), indices.append(i)
    return torch.cat(indices).cpu().numpy(), torch.cat(scores).cpu().numpy()


def numpy_topk(Q: np.ndarray, V: np.ndarray, k: int, exclude: sp.csr_matrix | None = None, chunk: int = 4096):
    """numpy BLAS ``Q @ V.T`` per block, excluded scores -inf, argpartition, ties by smaller index."""
    idx_out = np.empty((Q.shape[0], k), dtype=np.int64)
    val_out = np.empty((Q.shape[0], k), dtype=np.float32)
    for start in range(0, Q.shape[0], chunk):
        S = Q[start:start + chunk] @ V.T
        if exclude is not None:
            block = exclude[start:start + chunk].tocoo()
            S[block.row, block.col] = -np.inf
        top = np.argpartition(-S, k - 1, axis=1)[:, :k]
        val = np.take_along_axis(S, top, axis=1)
        order = np.lexsort((top, -val))   # per row: higher score first, ties by smaller index
        idx_out[start:start + chunk] = np.take_along_axis(top, order, axis=1)
        val_out[start:start + chunk] = np.take_along_axis(val, order, axis=1)
    return idx_out, val_out


# ----------------------------------------------------------------------------- propagate
def scipy_propagate(A: sp.csr_matrix, E: np.ndarray, layers: int) -> np.ndarray:
    """mean(E, A E, A^2 E, ..., A^layers E) with scipy's single-threaded ``A @ E``."""
    out = E.copy()
    cur = E
    for _ in range(layers):
        cur = A @ cur
        out += cur
    return out / np.float32(layers + 1)


def torch_csr(torch, A: sp.csr_matrix):
    """A scipy CSR as a torch sparse CSR tensor (int64 indices, shared float32 values)."""
    return torch.sparse_csr_tensor(torch.from_numpy(A.indptr.astype(np.int64)),
                                   torch.from_numpy(A.indices.astype(np.int64)), torch.from_numpy(A.data),
                                   size=A.shape)


def torch_propagate(torch, A, E, layers: int, threads: int | None) -> np.ndarray:
    """The same LightGCN mean with ``torch.sparse.mm`` on a CSR tensor (any device); numpy result."""
    if threads is not None:
        torch.set_num_threads(threads)
    out = E.clone()
    cur = E
    for _ in range(layers):
        cur = A @ cur
        out += cur
    return (out / (layers + 1)).cpu().numpy()


def to_host(result: Any) -> Any:
    """A kernel result as numpy / scipy (torch and cupy results are copied back)."""
    if isinstance(result, tuple):
        return tuple(to_host(r) for r in result)
    if hasattr(result, "detach") and hasattr(result, "cpu"):           # torch
        if getattr(result, "layout", None) is not None and "sparse" in str(result.layout):
            crow, col, val = (t.cpu().numpy() for t in (result.crow_indices(), result.col_indices(), result.values()))
            return sp.csr_matrix((val, col, crow), shape=tuple(result.shape))
        return result.detach().cpu().numpy()
    if type(result).__module__.startswith(("cupy", "cupyx")) and hasattr(result, "get"):
        return result.get()
    return result
