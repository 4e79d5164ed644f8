"""The benchmarked kernels: recforge on each backend and thread count, and the peer libraries.

Work figures (what GFLOP/s and effective GB/s divide by the median time):

* ``similarity_topk`` — item-item cosine on X = R^T (items x users), k = 50.
  flops = 2 x sum over users of deg(u)^2 (the multiply-adds of X X^T);
  bytes = X read once (8 B per stored entry + 4 B per row pointer) + k results per row written (8 B).
* ``dense_topk`` — inner-product top-10 of Q (queries x 64) against V (items x 64).
  flops = 2 m n d; bytes = Q and V read once + m x k (index 8 B + score 4 B) written.
* ``propagate`` — LightGCN propagation, 3 layers, mean, over A = D^-1/2 [[0, R], [R^T, 0]] D^-1/2
  and E ((users + items) x 64). flops = layers x 2 nnz(A) d; bytes = per layer A read
  (8 B per entry + 4 B per row) + E_l read + E_{l+1} written, plus the result written.

Effective GB/s is therefore a lower bound on the traffic (repeated gathers of E rows or X
columns that miss the cache are not counted): compare it with the machine's copy bandwidth.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

from recforge.bench import agreement
from recforge.bench import peers as _peers
from recforge.bench.inputs import BenchInputs, bipartite_adjacency
from recforge.bench.peers import installed, l2_rows, to_host, torch_cuda_available

__all__ = ["Impl", "Case", "BUILDERS", "KERNELS", "IMPL_KEYS", "similarity_case", "dense_case", "propagate_case",
           "installed", "torch_cuda_available", "to_host", "l2_rows", "bipartite_adjacency"]


SIMILARITY_K = 50
DENSE_K = 10
LAYERS = 3
#: the single-threaded scipy similarity is skipped above this many multiply-adds (it would take minutes)
SCIPY_SIMILARITY_LIMIT = 5e9

#: every implementation a case may hold, by its key (what the pytest-benchmark suites parametrise over)
IMPL_KEYS = {
    "similarity_topk": ("recforge-cpu", "recforge-cuda", "recforge-cuda-device", "implicit", "sparse_dot_topn",
                        "scipy"),
    "dense_topk": ("recforge-cpu", "recforge-cuda", "recforge-cuda-device", "faiss", "torch-cpu", "torch-cuda",
                   "numpy"),
    "propagate": ("recforge-cpu", "recforge-cuda", "recforge-cuda-device", "scipy", "torch-cpu", "torch-cuda"),
}


@dataclass
class Impl:
    """One implementation of a case: ``run()`` computes the result once."""

    name: str
    backend: str
    threads: int | None
    run: Callable[[], Any] | None
    sync: Callable[[], None] | None = None
    skipped: str = ""           # why it is not timed (then run is None)
    key: str = ""               # one of IMPL_KEYS[kernel]


@dataclass
class Case:
    kernel: str
    description: str
    flops: float
    bytes: float
    impls: list[Impl] = field(default_factory=list)
    agree: Callable[[Any, Any], tuple[bool, str]] | None = None
    exact: Callable[[Any, Any], bool] | None = None

    def impl(self, key: str) -> Impl | None:
        """The first implementation with this key (None when the case has none)."""
        return next((impl for impl in self.impls if impl.key == key), None)


def recforge_impls(fn: Callable[..., Any], threads: list[int], cuda: tuple[bool, str],
                   device_fn: Callable[[], Any] | None = None) -> list[Impl]:
    """recforge on the CPU at each thread count, then on CUDA (or why not).

    On CUDA ``fn`` gets host (numpy/scipy) arrays, so the time includes the copies to and from
    the device; ``device_fn`` (when cupy, or for dense inputs torch with CUDA, is installed)
    runs on arrays already on the device, which is the kernel's own speed.
    """
    impls = [Impl("recforge", "cpu", t, (lambda t=t: fn(num_threads=t, backend="cpu")), key="recforge-cpu")
             for t in threads]
    usable, reason = cuda
    if not usable:
        impls.append(Impl("recforge", "cuda", None, None, skipped=f"CUDA not usable: {reason}", key="recforge-cuda"))
        return impls
    impls.append(Impl("recforge (host arrays, copies included)", "cuda", None, lambda: fn(backend="cuda"),
                      key="recforge-cuda"))
    if device_fn is not None:
        impls.append(Impl("recforge (arrays on the device)", "cuda", None, device_fn, sync=device_sync(),
                          key="recforge-cuda-device"))
    return impls


def missing(name: str, key: str, threads: int | None, why: str = "not installed") -> Impl:
    return Impl(name, "cpu", threads, None, skipped=why, key=key)


def device_copier() -> Callable[[np.ndarray], Any] | None:
    """numpy -> a GPU array (cupy when installed, else a CUDA torch tensor), or None."""
    if installed("cupy"):
        import cupy

        return cupy.asarray
    if torch_cuda_available():
        import torch

        return lambda a: torch.from_numpy(a).cuda()
    return None


def device_sync() -> Callable[[], None]:
    """Waits for all queued GPU work (so that timings include it)."""
    waits = []
    if installed("cupy"):
        import cupy

        waits.append(cupy.cuda.runtime.deviceSynchronize)
    if torch_cuda_available():
        import torch

        waits.append(torch.cuda.synchronize)

    def sync() -> None:
        for wait in waits:
            wait()
    return sync


# ----------------------------------------------------------------------------- similarity_topk
def similarity_case(inputs: BenchInputs, kernel: Callable, threads: list[int], cuda, peers: bool) -> Case:
    R = inputs.R
    X = R.T.tocsr()
    k = SIMILARITY_K
    madds = float(np.square(np.diff(R.indptr).astype(np.float64)).sum())
    case = Case("similarity_topk", f"item-item cosine, {X.shape[0]:,} items x {X.shape[1]:,} users, "
                f"{X.nnz:,} entries, k={k}", flops=2 * madds,
                bytes=X.nnz * 8 + (X.shape[0] + 1) * 4 + X.shape[0] * k * 8)
    case.impls = recforge_impls(lambda **kw: kernel(X, k, metric="cosine", **kw), threads, cuda)
    terms = int(np.diff(X.indptr).max()) if X.nnz else 1   # the longest dot product behind a cosine
    case.agree = lambda ref, out: agreement.same_topk_scores(topk_rows_cached(ref, k), agreement.topk_rows(out, k),
                                                             terms)
    case.exact = lambda ref, out: _same_csr(ref, out)
    if not peers:
        return case
    n = max(threads)
    if installed("implicit"):
        case.impls.append(Impl("implicit (CosineRecommender)", "cpu", n, lambda: _peers.implicit_cosine(R, k, n),
                               key="implicit"))
    else:
        case.impls.append(missing("implicit", "implicit", n))
    if installed("sparse_dot_topn"):
        case.impls.append(Impl("sparse_dot_topn (sp_matmul_topn)", "cpu", n,
                               lambda: _peers.sparse_dot_topn_cosine(X, k, n), key="sparse_dot_topn"))
    else:
        case.impls.append(missing("sparse_dot_topn", "sparse_dot_topn", n))
    if madds <= SCIPY_SIMILARITY_LIMIT:
        case.impls.append(Impl("scipy (chunked X X^T + argpartition)", "cpu", 1, lambda: _peers.scipy_cosine(X, k),
                               key="scipy"))
    else:
        case.impls.append(missing("scipy", "scipy", 1,
                                  f"{madds / 1e9:.0f} G multiply-adds would take many minutes on 1 thread"))
    return case


_TOPK_CACHE: dict[int, tuple[Any, np.ndarray]] = {}


def topk_rows_cached(S: sp.csr_matrix, k: int) -> np.ndarray:
    """agreement.topk_rows of the reference result, computed once per reference object."""
    hit = _TOPK_CACHE.get(id(S))
    if hit is None or hit[0] is not S:
        _TOPK_CACHE.clear()
        hit = (S, agreement.topk_rows(S, k))
        _TOPK_CACHE[id(S)] = hit
    return hit[1]


def _same_csr(a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
    return (a.shape == b.shape and np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
            and np.array_equal(a.data, b.data))


# ----------------------------------------------------------------------------- dense_topk
def dense_case(inputs: BenchInputs, kernel: Callable, threads: list[int], cuda, peers: bool,
               exclude: sp.csr_matrix | None = None) -> Case:
    """Inner-product top-10 of Q against V; with ``exclude`` (queries x items CSR), those items
    are never returned (recforge's ``exclude=``; faiss asked for more then filtered; torch and
    numpy set the excluded scores to -inf before their top-k)."""
    Q, V, k = inputs.Q, inputs.V, DENSE_K
    m, n, d = Q.shape[0], V.shape[0], Q.shape[1]
    excluding = "" if exclude is None else f", ~{exclude.nnz / max(m, 1):.0f} excluded items per query"
    case = Case("dense_topk", f"inner-product top-{k}, {m:,} queries x {n:,} items x {d} dims{excluding}",
                flops=2.0 * m * n * d, bytes=(m + n) * d * 4 + m * k * 12)
    device_fn = None
    to_device = device_copier() if cuda[0] and exclude is None else None
    if to_device is not None:
        Qd, Vd = to_device(Q), to_device(V)
        device_fn = lambda: kernel(Qd, Vd, k, backend="cuda")  # noqa: E731
    case.impls = recforge_impls(lambda **kw: kernel(Q, V, k, exclude=exclude, **kw), threads, cuda, device_fn)
    case.agree = agreement.same_dense_topk if exclude is None else _excluding_agreement(exclude)
    case.exact = lambda a, b: np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    if not peers:
        return case
    nt = max(threads)
    if installed("faiss"):
        index = _peers.faiss_flat_index(V)
        label = "faiss (IndexFlatIP)" if exclude is None else "faiss (IndexFlatIP, k + most excluded, filtered)"
        case.impls.append(Impl(label, "cpu", nt, lambda: _peers.faiss_topk(index, Q, k, nt, exclude), key="faiss"))
    else:
        case.impls.append(missing("faiss", "faiss", nt))
    masked = "" if exclude is None else ", excluded set to -inf"
    if installed("torch"):
        import torch

        Qt, Vt = torch.from_numpy(Q), torch.from_numpy(V)
        case.impls.append(Impl(f"torch (mm + topk{masked})", "cpu", nt,
                               lambda: _peers.torch_topk(torch, Qt, Vt, k, nt, exclude), key="torch-cpu"))
        if torch_cuda_available():
            Qc, Vc = Qt.cuda(), Vt.cuda()
            case.impls.append(Impl(f"torch (mm + topk{masked})", "cuda", None,
                                   lambda: _peers.torch_topk(torch, Qc, Vc, k, None, exclude),
                                   sync=torch.cuda.synchronize, key="torch-cuda"))
    else:
        case.impls.append(missing("torch", "torch-cpu", nt))
    case.impls.append(Impl(f"numpy (BLAS matmul + argpartition{masked})", "cpu", None,
                           lambda: _peers.numpy_topk(Q, V, k, exclude), key="numpy"))
    return case


def _excluding_agreement(exclude: sp.csr_matrix) -> Callable[[Any, Any], tuple[bool, str]]:
    """same_dense_topk, and no excluded item returned."""
    m, n = exclude.shape
    excluded = np.repeat(np.arange(m, dtype=np.int64), np.diff(exclude.indptr)) * n + exclude.indices

    def agree(ref, other):
        ok, detail = agreement.same_dense_topk(ref, other)
        idx = np.asarray(other[0])
        returned = np.arange(m, dtype=np.int64)[:, None] * n + idx
        leaked = int(np.isin(returned[idx >= 0], excluded).sum())
        return ok and leaked == 0, f"{detail}, {leaked} excluded items returned"
    return agree


# ----------------------------------------------------------------------------- propagate
def propagate_case(inputs: BenchInputs, kernel: Callable, threads: list[int], cuda, peers: bool) -> Case:
    with warnings.catch_warnings():   # torch: "sparse CSR support is in beta" and invariant-check notices
        warnings.simplefilter("ignore")
        return _propagate_case(inputs, kernel, threads, cuda, peers)


def _propagate_case(inputs: BenchInputs, kernel: Callable, threads: list[int], cuda, peers: bool) -> Case:
    A = bipartite_adjacency(inputs.R)
    n, d = A.shape[0], inputs.Q.shape[1]
    E = np.random.default_rng(2).standard_normal((n, d), dtype=np.float32) * 0.1
    layer_bytes = A.nnz * 8 + (n + 1) * 4 + 2 * n * d * 4
    case = Case("propagate", f"LightGCN mean of {LAYERS} layers, A {n:,} x {n:,} with {A.nnz:,} entries, "
                f"E {n:,} x {d}", flops=LAYERS * 2.0 * A.nnz * d, bytes=LAYERS * layer_bytes + n * d * 4)
    device_fn = None
    if cuda[0] and installed("cupy"):     # recforge takes a sparse A on the device as cupyx CSR
        import cupy
        import cupyx.scipy.sparse as csp

        Ad, Ed = csp.csr_matrix(A), cupy.asarray(E)
        device_fn = lambda: kernel(Ad, Ed, LAYERS, combine="mean", backend="cuda")  # noqa: E731
    case.impls = recforge_impls(lambda **kw: kernel(A, E, LAYERS, combine="mean", **kw), threads, cuda, device_fn)
    case.agree = agreement.same_dense
    case.exact = lambda a, b: np.array_equal(a, b)
    if not peers:
        return case
    nt = max(threads)
    case.impls.append(Impl("scipy (A @ E per layer)", "cpu", 1, lambda: _peers.scipy_propagate(A, E, LAYERS),
                           key="scipy"))
    if installed("torch"):
        import torch

        At, Et = _peers.torch_csr(torch, A), torch.from_numpy(E)
        case.impls.append(Impl("torch (sparse CSR @ dense)", "cpu", nt,
                               lambda: _peers.torch_propagate(torch, At, Et, LAYERS, nt), key="torch-cpu"))
        if torch_cuda_available():
            Ac, Ec = At.cuda(), Et.cuda()
            case.impls.append(Impl("torch (sparse CSR @ dense)", "cuda", None,
                                   lambda: _peers.torch_propagate(torch, Ac, Ec, LAYERS, None),
                                   sync=torch.cuda.synchronize, key="torch-cuda"))
    else:
        case.impls.append(missing("torch", "torch-cpu", nt))
    return case


BUILDERS = {"similarity_topk": similarity_case, "dense_topk": dense_case, "propagate": propagate_case}
KERNELS = tuple(BUILDERS)
