"""Every input rule of the kernel API in one place (the edge where arguments are checked).

The compiled core trusts what leaves this module: canonical CSR (sorted, duplicate-free
indices, no explicit zeros), finite values, float32/float64 data, int32/int64 indices.

Sparse inputs are checked for structure before anything reads them (:func:`check_sparse_structure`):
``indptr`` has rows + 1 entries, starts at 0, never decreases and ends within the stored
entries; every index lies in [0, columns). The check is vectorised, O(nnz), and copies nothing.
A malformed matrix raises ValueError naming the array (``X.indptr``, ``exclude.indices``), never
reaching code that would read or write out of bounds. Kernels take ``check_input=False`` to skip
it for inputs the caller has already validated (a wrong promise may then crash the process).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import scipy.sparse as sp

from recforge.backend import check_int

VALUE_DTYPES = (np.float32, np.float64)
INT32_MAX = int(np.iinfo(np.int32).max)
FLOAT32_MAX = float(np.finfo(np.float32).max)
COMBINE_MODES = ("mean", "sum", "last")

__all__ = ["check_int", "check_positive_int", "check_non_negative_float", "check_compressed",
           "check_sparse_structure", "as_csr", "as_pattern", "as_dense", "combine_weights"]


def check_index_array(a: Any, name: str) -> None:
    """A 1-D array of integers (the ``indptr`` / ``indices`` of a sparse matrix)."""
    if getattr(a, "ndim", None) != 1:
        raise ValueError(f"{name} must be a 1-D array, got {getattr(a, 'ndim', type(a).__name__)} dimensions")
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {a.dtype}")


def check_compressed(indptr: Any, indices: Any, n_values: int, major: int, minor: int, name: str,
                     axis_names: tuple[str, str] = ("rows", "columns")) -> None:
    """The structure of a compressed sparse matrix (CSR: major = rows, minor = columns).

    Works on numpy and cupy arrays alike (only array methods are used). O(major + nnz), no copy.
    """
    check_index_array(indptr, f"{name}.indptr")
    check_index_array(indices, f"{name}.indices")
    if indptr.shape[0] != major + 1:
        raise ValueError(f"{name}.indptr must have {major + 1} entries ({axis_names[0]} + 1), got {indptr.shape[0]}")
    first, nnz = int(indptr[0]), int(indptr[-1])
    if first != 0:
        raise ValueError(f"{name}.indptr must start at 0, got {first}")
    stored = min(int(indices.shape[0]), int(n_values))
    if nnz < 0 or nnz > stored:
        raise ValueError(f"{name}.indptr ends at {nnz}, outside the {stored} stored entries of "
                         f"{name}.indices and {name}.data")
    if major > 1 and bool((indptr[1:] < indptr[:-1]).any()):
        raise ValueError(f"{name}.indptr must not decrease")
    if nnz:
        used = indices[:nnz]
        low, high = int(used.min()), int(used.max())
        if low < 0 or high >= minor:
            bad = low if low < 0 else high
            raise ValueError(f"{name}.indices must lie in [0, {minor}) (the {axis_names[1]}), found {bad}")


def check_sparse_structure(X: Any, name: str) -> None:
    """Structural validity of a scipy (or cupyx) sparse matrix before anything reads it.

    CSR, CSC and BSR are checked as compressed matrices and COO by its coordinate ranges; the
    other formats (LIL, DOK, DIA) only exist as scipy built them and are converted by scipy.
    """
    rows, cols = (int(s) for s in X.shape)
    fmt = X.format
    if fmt == "csr":
        check_compressed(X.indptr, X.indices, X.data.shape[0], rows, cols, name)
    elif fmt == "csc":
        check_compressed(X.indptr, X.indices, X.data.shape[0], cols, rows, name, ("columns", "rows"))
    elif fmt == "bsr":
        R, C = X.blocksize
        check_compressed(X.indptr, X.indices, X.data.shape[0], rows // R, cols // C, name,
                         ("block rows", "block columns"))
    elif fmt == "coo":
        coords = getattr(X, "coords", None) or (X.row, X.col)
        for axis, (c, size) in enumerate(zip(coords, (rows, cols))):
            part = f"{name}.{('row', 'col')[axis]}"
            check_index_array(c, part)
            if c.shape[0] != X.data.shape[0]:
                raise ValueError(f"{part} must have one entry per stored value ({X.data.shape[0]}), got {c.shape[0]}")
            if c.shape[0] and (int(c.min()) < 0 or int(c.max()) >= size):
                raise ValueError(f"{part} must lie in [0, {size})")


def check_positive_int(value: Any, name: str) -> int:
    """An integer >= 1 (bools and floats are rejected)."""
    return check_int(value, name, 1)


def check_non_negative_float(value: Any, name: str) -> float:
    """A finite real number >= 0."""
    if isinstance(value, (bool, np.bool_)) or not np.isscalar(value) or not np.isreal(value):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


def value_dtype(dtype: np.dtype, name: str) -> np.dtype:
    """float64 stays float64; every other real dtype (bool, ints, float16/32) computes in float32."""
    dtype = np.dtype(dtype)
    if dtype == np.float64:
        return dtype
    if dtype.kind in "biuf":
        return np.dtype(np.float32)
    raise TypeError(f"{name} must hold real numbers, got dtype {dtype}")


def common_value_dtype(*dtypes: np.dtype) -> np.dtype:
    """float64 when any operand is float64, else float32."""
    return np.dtype(np.float64) if any(np.dtype(d) == np.float64 for d in dtypes) else np.dtype(np.float32)


def check_finite(data: Any, name: str) -> None:
    """No NaN or infinity among the values (max and min propagate NaN: no boolean temporary)."""
    if data.shape[0] and not (np.isfinite(data.max()) and np.isfinite(data.min())):
        raise ValueError(f"{name} contains NaN or infinite values")


def as_sparse(X: Any, name: str, check_input: bool = True) -> Any:
    """X itself when it is a 2-D scipy sparse matrix with a valid structure, else a clear error."""
    if not (sp.issparse(X) and X.ndim == 2):
        if isinstance(X, np.ndarray) or hasattr(X, "__array__"):
            raise TypeError(f"{name} must be a scipy.sparse matrix (got a dense {type(X).__name__}); "
                            f"wrap it with scipy.sparse.csr_matrix")
        raise TypeError(f"{name} must be a 2-D scipy.sparse matrix, got {type(X).__name__}")
    if check_input:
        check_sparse_structure(X, name)
    return X


def _trimmed(X: sp.csr_matrix) -> sp.csr_matrix:
    """X without stored arrays longer than its nnz (scipy allows a tail past ``indptr[-1]``); views."""
    nnz = int(X.indptr[-1])
    if X.indices.shape[0] == nnz and X.data.shape[0] == nnz:
        return X
    return sp.csr_matrix((X.data[:nnz], X.indices[:nnz], X.indptr), shape=X.shape)


def as_csr(X: Any, name: str, check_input: bool = True) -> sp.csr_matrix:
    """A canonical CSR view of a scipy sparse matrix; copies only when the input is not canonical.

    ``check_input=False`` skips the structural check (the caller promises a valid matrix).
    """
    X = as_sparse(X, name, check_input)
    dtype = value_dtype(X.dtype, name)
    X = _aligned(_trimmed(X.tocsr() if X.format != "csr" else X))
    if X.dtype != dtype:
        X = X.astype(dtype)
    check_finite(X.data, name)
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    if X.nnz and not np.all(X.data != 0):
        X = X.copy()
        X.eliminate_zeros()
    return X


def _aligned(X: sp.csr_matrix) -> sp.csr_matrix:
    """X with aligned arrays (copied only when they are not). Arrays unpickled from a network buffer
    (a matrix scattered by Dask) can sit at odd addresses; numpy and scipy then take their slow
    unaligned paths on every pass over them (about 3% of a 20M-entry similarity_topk)."""
    if X.indptr.flags.aligned and X.indices.flags.aligned and X.data.flags.aligned:
        return X
    canonical = X.has_canonical_format
    A = sp.csr_matrix((contiguous(X.data), contiguous(X.indices), contiguous(X.indptr)), shape=X.shape)
    A.has_canonical_format = canonical
    return A


def check_pattern(E: Any, name: str, shape: tuple[int, int], check_input: bool = True) -> None:
    """E is a scipy or cupyx sparse matrix of the given shape with a valid structure."""
    if not (sp.issparse(E) or type(E).__module__.startswith("cupyx.scipy.sparse")) or len(E.shape) != 2:
        raise TypeError(f"{name} must be a 2-D scipy.sparse matrix, got {type(E).__name__}")
    if tuple(E.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(E.shape)}")
    if check_input:
        check_sparse_structure(E, name)


def as_pattern(E: Any, name: str, shape: tuple[int, int], check_input: bool = True) -> sp.csr_matrix:
    """A canonical CSR whose stored pattern (not values) is what matters, of the given shape."""
    check_pattern(E, name, shape, check_input)
    E = _trimmed(E.tocsr() if E.format != "csr" else E)
    if not E.has_canonical_format:
        E = E.copy()
        E.sum_duplicates()
    return E


def check_result_fits(nbytes: int, name: str, what: str) -> None:
    """A result of ``nbytes`` fits this machine's physical memory (else a ValueError naming ``name``)."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not reported on this platform
        return
    if nbytes > memory:
        raise ValueError(f"{name} asks for {what} of {nbytes / 2 ** 30:.1f} GiB, more than this machine's "
                         f"{memory / 2 ** 30:.1f} GiB of memory")


def with_value_dtype(X: sp.csr_matrix, dtype: np.dtype) -> sp.csr_matrix:
    """X with values of ``dtype`` (no copy when it already has it)."""
    return X if X.dtype == dtype else X.astype(dtype)


def contiguous(a: Any, dtype: Any = None) -> np.ndarray:
    """``a`` C-contiguous and aligned (a copy only when it is not): arrays unpickled from a
    buffer (e.g. shipped by Dask) may sit at an odd address, which the core must never read."""
    return np.require(a, dtype=dtype, requirements=("C", "A"))


def core_arrays(X: sp.csr_matrix, index_dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, indices, data) of a canonical CSR with one index dtype, as the core expects."""
    return (contiguous(X.indptr, index_dtype), contiguous(X.indices, index_dtype), contiguous(X.data))


def index_dtype_for(X: sp.csr_matrix, *others: sp.csr_matrix) -> np.dtype:
    """X's own index dtype when every operand fits it (so X is never copied), else int64."""
    limit = np.iinfo(np.int32).max
    fits = all(max(M.shape) <= limit and M.nnz <= limit for M in (X, *others))
    own = X.indices.dtype == np.int32 and X.indptr.dtype == np.int32
    return np.dtype(np.int32) if fits and own else np.dtype(np.int64)


def transpose_csr(X: sp.csr_matrix) -> sp.csr_matrix:
    """X transposed as canonical CSR (one O(nnz) pass)."""
    T = X.T.tocsr()
    T.sort_indices()
    return T


def as_dense(X: Any, name: str, dtype: np.dtype | None = None) -> np.ndarray:
    """A 2-D C-contiguous float32/float64 array with finite values; copies only when needed.

    float64 stays float64 and other real dtypes become float32, unless ``dtype`` is given.
    """
    if sp.issparse(X):
        raise TypeError(f"{name} must be a dense 2-D array, got a scipy.sparse matrix; use {name}.toarray()")
    try:
        X = np.asarray(X)
    except Exception as exc:  # e.g. a CUDA tensor or an object that is not array-like
        raise TypeError(f"{name} must be a 2-D array of real numbers, got {type(X).__name__}: {exc}") from None
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {X.shape}")
    dtype = value_dtype(X.dtype, name) if dtype is None else np.dtype(dtype)
    X = contiguous(X, dtype)
    if X.size and not (np.isfinite(X.max()) and np.isfinite(X.min())):  # max/min propagate NaN
        raise ValueError(f"{name} contains NaN or infinite values")
    return X


def check_index_range(shape: tuple, name: str) -> None:
    """Every dimension fits int32 (what the CUDA kernels index with)."""
    if max(shape, default=0) > INT32_MAX:
        raise ValueError(f"{name} has a dimension above 2**31 - 1, which the CUDA kernels do not support; "
                         f"use backend='cpu'")


def combine_weights(combine: Any, layers: int) -> list[float]:
    """The per-layer weights w_0..w_L that a propagate ``combine`` argument stands for."""
    if isinstance(combine, str):
        if combine == "mean":
            return [1.0 / (layers + 1)] * (layers + 1)
        if combine == "sum":
            return [1.0] * (layers + 1)
        if combine == "last":
            return [0.0] * layers + [1.0]
        raise ValueError(f"combine must be one of {COMBINE_MODES} or a list of layers + 1 weights, got {combine!r}")
    try:
        weights = np.asarray(combine, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"combine must be one of {COMBINE_MODES} or a list of numbers, got {combine!r}") from None
    if weights.shape != (layers + 1,):
        raise ValueError(f"combine must hold layers + 1 = {layers + 1} weights, got shape {weights.shape}")
    if not np.isfinite(weights).all():
        raise ValueError("combine weights must be finite")
    return [float(w) for w in weights]
