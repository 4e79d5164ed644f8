"""A few users' stored rows and exclusions as raw CSR arrays: the lean path of ``recommend``.

``Recommender.recommend`` for a handful of known users (a served request) spends most of its
time building scipy matrices and re-validating rows that came from the model itself. Where a
model's ``user_items_`` is canonical (checked once: :func:`is_canonical`), its rows can go to a
kernel as array slices. The arrays are exactly those the general path hands the kernel:
the stored rows (``take_rows`` + ``_clean_rows`` change nothing in a canonical matrix) and,
per row, the sorted union of the seen items (``exclude_seen``) and the filtered items
(``_exclusion``).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: most users a recommend call serves through the lean path (larger calls gain nothing from it)
LEAN_USERS = 32


def is_canonical(R: sp.csr_matrix) -> bool:
    """float32 CSR without a tail past ``indptr[-1]``, indices strictly increasing within each
    row and inside [0, columns), values finite and non-zero: what ``_clean_rows`` and the
    kernels' input checks would leave unchanged."""
    if R.format != "csr" or R.dtype != np.float32:
        return False
    indptr, indices, data = R.indptr, R.indices, R.data
    m, d = R.shape
    if indptr.shape[0] != m + 1 or int(indptr[0]) != 0 or (m and bool((np.diff(indptr) < 0).any())):
        return False
    nnz = int(indptr[-1])
    if indices.shape[0] != nnz or data.shape[0] != nnz:
        return False
    if nnz == 0:
        return True
    if int(indices.min()) < 0 or int(indices.max()) >= d:
        return False
    if not (np.isfinite(data).all() and (data != 0).all()):
        return False
    row_start = np.zeros(nnz, dtype=bool)
    row_start[indptr[:-1][indptr[:-1] < nnz]] = True
    return bool(((np.diff(indices) > 0) | row_start[1:]).all())


def gather_rows(R: sp.csr_matrix, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, indices, data) of ``R[codes]`` (codes within range); slices, no copy for one row."""
    if codes.size == 1:
        c = int(codes[0])
        lo, hi = int(R.indptr[c]), int(R.indptr[c + 1])
        return np.array([0, hi - lo], dtype=np.int64), R.indices[lo:hi], R.data[lo:hi]
    starts, ends = R.indptr[codes], R.indptr[codes + 1]
    indptr = np.zeros(codes.size + 1, dtype=np.int64)
    np.cumsum(ends - starts, out=indptr[1:])
    indices = np.concatenate([R.indices[a:b] for a, b in zip(starts.tolist(), ends.tolist())])
    data = np.concatenate([R.data[a:b] for a, b in zip(starts.tolist(), ends.tolist())])
    return indptr, indices, data


def exclusion_arrays(indptr: np.ndarray, indices: np.ndarray, blocked: np.ndarray | None,
                     exclude_seen: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """(indptr, sorted indices) per row: its own items when ``exclude_seen``, plus ``blocked``
    (sorted unique codes) for every row; None when nothing is excluded."""
    m = indptr.shape[0] - 1
    has_blocked = blocked is not None and blocked.size > 0
    if not exclude_seen:
        if not has_blocked:
            return None
        return np.arange(m + 1, dtype=np.int64) * blocked.size, np.tile(blocked, m)
    if not has_blocked:
        return indptr, indices
    parts = [np.union1d(indices[indptr[r]:indptr[r + 1]], blocked) for r in range(m)]
    ex_indptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum([p.size for p in parts], out=ex_indptr[1:])
    return ex_indptr, np.concatenate(parts).astype(np.int64, copy=False)


def as_csr(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray | None, shape: tuple[int, int]) -> sp.csr_matrix:
    """The arrays as a scipy CSR (ones where ``data`` is None): for the rare rows that need the
    general completion."""
    if data is None:
        data = np.ones(indices.shape[0], dtype=np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=shape)
