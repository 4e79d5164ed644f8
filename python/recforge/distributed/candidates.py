"""Candidates prepared once and held on the workers across recforge.distributed calls.

    cands = rd.prepare_candidates(items, metric="cosine", client=client)   # prepared, scattered once
    for users_block in batches:
        S = rd.similarity_topk(users_block, 50, cands, metric="cosine", client=client)
    cands.release()                       # or: with rd.prepare_candidates(...) as cands: ...

Each :func:`recforge.distributed.similarity_topk` call against the handle ships only its query
rows: the prepared operand (:func:`recforge.kernels.prepare_candidates`: reweighted, transposed,
narrowed) already sits on every worker. The client keeps its own copy, so if every worker
holding it dies the next call scatters it again (a worker joining later fetches it from a peer).
"""
from __future__ import annotations

from typing import Any

import scipy.sparse as sp

from recforge.distributed.blocks import scatter_everywhere
from recforge.distributed.cluster import resolve_client


class ScatteredCandidates:
    """A :class:`~recforge.kernels.PreparedCandidates` held on every worker of one client.

    ``prepared``: the client's copy; ``metric``, ``shape``, ``dtype``: as prepared; ``nbytes``: the
    bytes each worker received; ``key``: the Dask key of the scattered data. Pass it as ``Y=`` to
    :func:`recforge.distributed.similarity_topk` with the same ``metric`` and client.
    """

    def __init__(self, prepared: Any, client: Any) -> None:
        self.prepared, self.client = prepared, client
        self.metric, self.shape, self.dtype = prepared.metric, prepared.shape, prepared.dtype
        self.nbytes = prepared_nbytes(prepared)
        self._future = None
        self.future()

    @property
    def key(self) -> str | None:
        """The Dask key of the scattered operand (None once released)."""
        return None if self._future is None else self._future.key

    def future(self) -> Any:
        """The scattered operand, scattered again when the cluster lost it (or it was released)."""
        if self._future is None or self._future.status in ("lost", "cancelled", "error"):
            self._future = scatter_everywhere(self.client, self.prepared)
        return self._future

    def release(self) -> None:
        """Free the workers' copies (a later call scatters them again)."""
        if self._future is not None:
            self._future.release()
            self._future = None

    def __enter__(self) -> "ScatteredCandidates":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __repr__(self) -> str:
        return (f"ScatteredCandidates(shape={self.shape}, metric={self.metric!r}, "
                f"{self.nbytes / 2**20:.1f} MiB per worker)")


def prepare_candidates(Y: Any, *, metric: str = "cosine", client: Any = None,
                       num_threads: int = 0) -> ScatteredCandidates:
    """Y prepared once (:func:`recforge.kernels.prepare_candidates`) and scattered to every worker.

    Returns a :class:`ScatteredCandidates` for any number of
    :func:`recforge.distributed.similarity_topk` calls with ``Y=`` it: identical results, bit for
    bit, to passing Y itself, without preparing and shipping Y per call. ``adjusted_cosine``
    cannot be prepared (ValueError), as in the kernel.
    """
    from recforge.kernels import prepare_candidates as prepare

    client = resolve_client(client)
    return ScatteredCandidates(prepare(Y, metric=metric, num_threads=num_threads), client)


def prepared_nbytes(prepared: Any) -> int:
    """Bytes of the arrays a PreparedCandidates carries (what a worker receives)."""
    import numpy as np

    total = 0
    for name in ("y_scale", "y_size", "idf", "_arrays"):
        value = getattr(prepared, name, None)
        for a in (value if isinstance(value, tuple) else (value,)):
            total += a.nbytes if isinstance(a, np.ndarray) else 0
    source = prepared.source     # not shipped when recforge.distributed.similarity.lean replaced it
    return total + (source.data.nbytes + source.indices.nbytes + source.indptr.nbytes if sp.issparse(source) else 0)
