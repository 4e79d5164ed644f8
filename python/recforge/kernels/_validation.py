"""Every input rule of the kernel API in one place (the edge where arguments are checked).

The compiled core trusts what leaves this module: canonical CSR (sorted, duplicate-free
indices, no explicit zeros), finite values, float32/float64 data, int32/int64 indices.
"""
from __future__ import annotations

import operator
from typing import Any

import numpy as np
import scipy.sparse as sp

VALUE_DTYPES = (np.float32, np.float64)


def check_int(value: Any, name: str, minimum: int) -> int:
    """An integer >= minimum (bools and floats are rejected)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


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


def as_csr(X: Any, name: str) -> sp.csr_matrix:
    """A canonical CSR view of a scipy sparse matrix; copies only when the input is not canonical."""
    if not (sp.issparse(X) and X.ndim == 2):
        if isinstance(X, np.ndarray) or hasattr(X, "__array__"):
            raise TypeError(f"{name} must be a scipy.sparse matrix (got a dense {type(X).__name__}); "
                            f"wrap it with scipy.sparse.csr_matrix")
        raise TypeError(f"{name} must be a 2-D scipy.sparse matrix, got {type(X).__name__}")
    dtype = value_dtype(X.dtype, name)
    X = X.tocsr() if X.format != "csr" else X
    if X.dtype != dtype:
        X = X.astype(dtype)
    if not np.all(np.isfinite(X.data)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    if X.nnz and not np.all(X.data != 0):
        X = X.copy()
        X.eliminate_zeros()
    return X


def as_pattern(E: Any, name: str, shape: tuple[int, int]) -> sp.csr_matrix:
    """A canonical CSR whose stored pattern (not values) is what matters, of the given shape."""
    if not (sp.issparse(E) and E.ndim == 2):
        raise TypeError(f"{name} must be a 2-D scipy.sparse matrix, got {type(E).__name__}")
    if E.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {E.shape}")
    E = E.tocsr() if E.format != "csr" else E
    if not E.has_canonical_format:
        E = E.copy()
        E.sum_duplicates()
    return E


def with_value_dtype(X: sp.csr_matrix, dtype: np.dtype) -> sp.csr_matrix:
    """X with values of ``dtype`` (no copy when it already has it)."""
    return X if X.dtype == dtype else X.astype(dtype)


def core_arrays(X: sp.csr_matrix, index_dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, indices, data) of a canonical CSR with one index dtype, as the core expects."""
    return (np.ascontiguousarray(X.indptr, dtype=index_dtype),
            np.ascontiguousarray(X.indices, dtype=index_dtype),
            np.ascontiguousarray(X.data))


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
    X = np.ascontiguousarray(X, dtype=dtype)
    if X.size and not (np.isfinite(X.max()) and np.isfinite(X.min())):  # max/min propagate NaN
        raise ValueError(f"{name} contains NaN or infinite values")
    return X
