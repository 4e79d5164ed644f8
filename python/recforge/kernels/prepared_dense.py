"""prepare_dense_items: V prepared once for many dense_topk calls against it."""
from __future__ import annotations

from typing import Any

import numpy as np

from recforge import _core
from recforge.backend import resolve_backend, resolve_num_threads
from recforge.kernels import _validation as v
from recforge.kernels import dense as dn
from recforge.kernels._cuda_arrays import check_dense, is_torch, max_abs, on_device


class PreparedDenseItems:
    """V as :func:`recforge.kernels.dense_topk` derives it on every call, derived once.

    Holds, for one metric: V as a C-contiguous array of its compute dtype (rows scaled to unit
    length for ``cosine``), its largest absolute value (for the float32 overflow check) and V packed
    in the panel layout of the CPU microkernel, so a call does only its queries' work: no cast,
    normalisation or packing of V. Immutable: build a new one when V changes. Pass it as ``V=``
    with the same ``metric``.
    """

    __slots__ = ("metric", "source", "shape", "dtype", "max_abs", "_V", "_packed")

    def __init__(self, source: Any, metric: str, num_threads: int) -> None:
        self.metric, self.source = metric, source
        V = v.as_dense(source, "V")
        self.dtype = v.common_value_dtype(V.dtype, V.dtype)
        V = V.astype(self.dtype, copy=False)
        if metric == "cosine":
            V = dn._unit_rows(V)
        self._V = v.contiguous(V)
        self.shape = self._V.shape
        self.max_abs = max_abs(source) if metric == "dot" else 1.0
        self._packed = (_core.dense_pack(V=self._V, num_threads=resolve_num_threads(num_threads))
                        if self._V.shape[0] else None)

    def __reduce__(self):
        # The packed panels are this process's memory: a pickled copy (e.g. shipped to a Dask
        # worker) carries the source and is prepared again where it is loaded.
        return _rebuild, (self.source, self.metric)

    def __repr__(self) -> str:
        return f"PreparedDenseItems(shape={self.shape}, metric={self.metric!r}, dtype={self.dtype})"


def prepare_dense_items(V: Any, *, metric: str = "dot", num_threads: int = 0) -> PreparedDenseItems:
    """V (n x d, dense, on the host) prepared once for :func:`dense_topk` calls with ``V=`` it and ``metric``.

    Results are identical bit for bit to passing V itself (every score is the same microkernel's
    sum in the same order, whatever the call). A call whose Q is float64 against a float32 V, or
    whose Q is on a GPU, takes the plain path on V, with the same result as passing V.
    """
    if metric not in dn.METRICS:
        raise ValueError(f"metric must be one of {dn.METRICS}, got {metric!r}")
    check_dense(V, "V")
    if on_device(V) or is_torch(V):
        raise TypeError("V must be a host (numpy) array to be prepared; pass device arrays to dense_topk as they are")
    return PreparedDenseItems(np.asarray(V), metric, num_threads)


def _rebuild(source: np.ndarray, metric: str) -> PreparedDenseItems:
    return PreparedDenseItems(source, metric, 0)


def dense_topk_prepared(Q: Any, P: PreparedDenseItems, k: int, *, exclude: Any, metric: str, num_threads: int,
                        backend: str, check_input: bool) -> tuple[np.ndarray, np.ndarray]:
    """dense_topk(Q, V, k) for V prepared as P: the same checks, steps and result."""
    def plain():
        return dn.dense_topk(Q, P.source, k, exclude=exclude, metric=metric, num_threads=num_threads,
                             backend=backend, check_input=check_input)

    if metric != P.metric:
        raise ValueError(f"V was prepared for metric={P.metric!r}, but metric={metric!r} was asked")
    if resolve_backend(backend, Q, None, supported=("cpu", "cuda")) != "cpu":
        return plain()
    k = v.check_positive_int(k, "k")
    threads = resolve_num_threads(num_threads)
    check_dense(Q, "Q")
    Q = v.as_dense(Q, "Q")
    if v.common_value_dtype(Q.dtype, P.dtype) != P.dtype:
        return plain()     # computed in Q's wider dtype
    n, d = P.shape
    if Q.shape[1] != d:
        raise ValueError(f"Q and V must have the same number of columns, got {Q.shape[1]} and {d}")
    m = int(Q.shape[0])
    v.check_result_fits(m * k * 12, "k", f"an m x k = {m} x {k} result")
    if metric == "dot" and m and n and d * max_abs(Q) * P.max_abs >= v.FLOAT32_MAX:
        raise ValueError("Q and V hold values so large that inner products may overflow float32 scores; "
                         "rescale them (or use metric='cosine')")
    Q = Q.astype(P.dtype, copy=False)
    Q = dn._unit_rows(Q) if metric == "cosine" else v.contiguous(Q)
    ex_indptr = ex_indices = None
    if exclude is not None:
        v.check_pattern(exclude, "exclude", (m, n), check_input)
        E = v.as_pattern(exclude, "exclude", (m, n), check_input=False)
        ex_indptr, ex_indices = v.contiguous(E.indptr, np.int64), v.contiguous(E.indices, np.int64)
    if m == 0 or n == 0:
        return np.full((m, k), -1, dtype=np.int64), np.full((m, k), -np.inf, dtype=np.float32)
    return _core.dense_topk(Q=Q, V=P._V, k=min(k, n), out_k=k, ex_indptr=ex_indptr, ex_indices=ex_indices,
                            num_threads=threads, packed=P._packed)
