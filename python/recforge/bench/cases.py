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

import importlib
import importlib.util
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

from recforge.bench import agreement
from recforge.bench.inputs import BenchInputs

SIMILARITY_K = 50
DENSE_K = 10
LAYERS = 3
#: the single-threaded scipy similarity is skipped above this many multiply-adds (it would take minutes)
SCIPY_SIMILARITY_LIMIT = 5e9


@dataclass
class Impl:
    """One implementation of a case: ``run()`` computes the result once."""

    name: str
    backend: str
    threads: int | None
    run: Callable[[], Any] | None
    sync: Callable[[], None] | None = None
    skipped: str = ""           # why it is not timed (then run is None)


@dataclass
class Case:
    kernel: str
    description: str
    flops: float
    bytes: float
    impls: list[Impl] = field(default_factory=list)
    agree: Callable[[Any, Any], tuple[bool, str]] | None = None
    exact: Callable[[Any, Any], bool] | None = None


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


def recforge_impls(fn: Callable[..., Any], threads: list[int], cuda: tuple[bool, str],
                   device_fn: Callable[[], Any] | None = None) -> list[Impl]:
    """recforge on the CPU at each thread count, then on CUDA (or why not).

    On CUDA ``fn`` gets host (numpy/scipy) arrays, so the time includes the copies to and from
    the device; ``device_fn`` (when cupy, or for dense inputs torch with CUDA, is installed)
    runs on arrays already on the device, which is the kernel's own speed.
    """
    impls = [Impl("recforge", "cpu", t, (lambda t=t: fn(num_threads=t, backend="cpu"))) for t in threads]
    usable, reason = cuda
    if not usable:
        impls.append(Impl("recforge", "cuda", None, None, skipped=f"CUDA not usable: {reason}"))
        return impls
    impls.append(Impl("recforge (host arrays, copies included)", "cuda", None, lambda: fn(backend="cuda")))
    if device_fn is not None:
        impls.append(Impl("recforge (arrays on the device)", "cuda", None, device_fn, sync=device_sync()))
    return impls


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
        case.impls.append(Impl("implicit (CosineRecommender)", "cpu", n, lambda: _implicit_cosine(R, k, n)))
    else:
        case.impls.append(Impl("implicit", "cpu", n, None, skipped="not installed"))
    if installed("sparse_dot_topn"):
        case.impls.append(Impl("sparse_dot_topn (sp_matmul_topn)", "cpu", n, lambda: _sdt_cosine(X, k, n)))
    else:
        case.impls.append(Impl("sparse_dot_topn", "cpu", n, None, skipped="not installed"))
    if madds <= SCIPY_SIMILARITY_LIMIT:
        case.impls.append(Impl("scipy (chunked X X^T + argpartition)", "cpu", 1, lambda: _scipy_cosine(X, k)))
    else:
        case.impls.append(Impl("scipy", "cpu", 1, None,
                               skipped=f"{madds / 1e9:.0f} G multiply-adds would take many minutes on 1 thread"))
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


def l2_rows(X: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(inv.astype(X.dtype)) @ X)


def _implicit_cosine(R: sp.csr_matrix, k: int, threads: int):
    from implicit.nearest_neighbours import CosineRecommender

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = CosineRecommender(K=k + 1, num_threads=threads)   # implicit's K counts the item itself
        model.fit(R, show_progress=False)
    return model.similarity


def _sdt_cosine(X: sp.csr_matrix, k: int, threads: int):
    from sparse_dot_topn import sp_matmul_topn

    Xn = l2_rows(X)
    return sp_matmul_topn(Xn, Xn.T.tocsr(), top_n=k + 1, sort=True, n_threads=threads)


def _scipy_cosine(X: sp.csr_matrix, k: int, chunk: int = 2048):
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
def dense_case(inputs: BenchInputs, kernel: Callable, threads: list[int], cuda, peers: bool) -> Case:
    Q, V, k = inputs.Q, inputs.V, DENSE_K
    m, n, d = Q.shape[0], V.shape[0], Q.shape[1]
    case = Case("dense_topk", f"inner-product top-{k}, {m:,} queries x {n:,} items x {d} dims",
                flops=2.0 * m * n * d, bytes=(m + n) * d * 4 + m * k * 12)
    device_fn = None
    to_device = device_copier() if cuda[0] else None
    if to_device is not None:
        Qd, Vd = to_device(Q), to_device(V)
        device_fn = lambda: kernel(Qd, Vd, k, backend="cuda")  # noqa: E731
    case.impls = recforge_impls(lambda **kw: kernel(Q, V, k, **kw), threads, cuda, device_fn)
    case.agree = agreement.same_dense_topk
    case.exact = lambda a, b: np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    if not peers:
        return case
    nt = max(threads)
    if installed("faiss"):
        import faiss

        index = faiss.IndexFlatIP(d)
        index.add(np.ascontiguousarray(V))

        def faiss_search():
            faiss.omp_set_num_threads(nt)
            scores, idx = index.search(Q, k)
            return idx, scores

        case.impls.append(Impl("faiss (IndexFlatIP)", "cpu", nt, faiss_search))
    else:
        case.impls.append(Impl("faiss", "cpu", nt, None, skipped="not installed"))
    if installed("torch"):
        import torch

        Qt, Vt = torch.from_numpy(Q), torch.from_numpy(V)
        case.impls.append(Impl("torch (mm + topk)", "cpu", nt, lambda: _torch_topk(torch, Qt, Vt, k, nt)))
        if torch_cuda_available():
            Qc, Vc = Qt.cuda(), Vt.cuda()
            case.impls.append(Impl("torch (mm + topk)", "cuda", None, lambda: _torch_topk(torch, Qc, Vc, k, None),
                                   sync=torch.cuda.synchronize))
    else:
        case.impls.append(Impl("torch", "cpu", nt, None, skipped="not installed"))
    case.impls.append(Impl("numpy (BLAS matmul + argpartition)", "cpu", None, lambda: _numpy_topk(Q, V, k)))
    return case


def _torch_topk(torch, Q, V, k: int, threads: int | None, chunk: int = 4096):
    if threads is not None:
        torch.set_num_threads(threads)
    scores, indices = [], []
    for start in range(0, Q.shape[0], chunk):
        s, i = torch.topk(Q[start:start + chunk] @ V.T, k, dim=1)
        scores.append(s), indices.append(i)
    return torch.cat(indices).cpu().numpy(), torch.cat(scores).cpu().numpy()


def _numpy_topk(Q: np.ndarray, V: np.ndarray, k: int, chunk: int = 4096):
    idx_out = np.empty((Q.shape[0], k), dtype=np.int64)
    val_out = np.empty((Q.shape[0], k), dtype=np.float32)
    for start in range(0, Q.shape[0], chunk):
        S = Q[start:start + chunk] @ V.T
        top = np.argpartition(-S, k - 1, axis=1)[:, :k]
        val = np.take_along_axis(S, top, axis=1)
        order = np.lexsort((top, -val))   # per row: higher score first, ties by smaller index
        idx_out[start:start + chunk] = np.take_along_axis(top, order, axis=1)
        val_out[start:start + chunk] = np.take_along_axis(val, order, axis=1)
    return idx_out, val_out


# ----------------------------------------------------------------------------- propagate
def bipartite_adjacency(R: sp.csr_matrix) -> sp.csr_matrix:
    """D^-1/2 [[0, R], [R^T, 0]] D^-1/2 as float32 CSR (users first), computed with scipy."""
    U, I = R.shape
    A = sp.bmat([[None, R], [R.T, None]], format="csr", dtype=np.float64)
    deg = np.asarray(A.sum(axis=1)).ravel()
    with np.errstate(divide="ignore"):
        inv = np.where(deg > 0, 1.0 / np.sqrt(deg), 0.0)
    A = sp.diags(inv) @ A @ sp.diags(inv)
    A = sp.csr_matrix(A, dtype=np.float32)
    A.sort_indices()
    return A


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
    case.impls.append(Impl("scipy (A @ E per layer)", "cpu", 1, lambda: _scipy_propagate(A, E, LAYERS)))
    if installed("torch"):
        import torch

        At = torch.sparse_csr_tensor(torch.from_numpy(A.indptr.astype(np.int64)),
                                     torch.from_numpy(A.indices.astype(np.int64)), torch.from_numpy(A.data),
                                     size=A.shape)
        Et = torch.from_numpy(E)
        case.impls.append(Impl("torch (sparse CSR @ dense)", "cpu", nt,
                               lambda: _torch_propagate(torch, At, Et, LAYERS, nt)))
        if torch_cuda_available():
            Ac, Ec = At.cuda(), Et.cuda()
            case.impls.append(Impl("torch (sparse CSR @ dense)", "cuda", None,
                                   lambda: _torch_propagate(torch, Ac, Ec, LAYERS, None), sync=torch.cuda.synchronize))
    else:
        case.impls.append(Impl("torch", "cpu", nt, None, skipped="not installed"))
    return case


def _scipy_propagate(A: sp.csr_matrix, E: np.ndarray, layers: int) -> np.ndarray:
    out = E.copy()
    cur = E
    for _ in range(layers):
        cur = A @ cur
        out += cur
    return out / np.float32(layers + 1)


def _torch_propagate(torch, A, E, layers: int, threads: int | None):
    if threads is not None:
        torch.set_num_threads(threads)
    out = E.clone()
    cur = E
    for _ in range(layers):
        cur = A @ cur
        out += cur
    return (out / (layers + 1)).cpu().numpy()


BUILDERS = {"similarity_topk": similarity_case, "dense_topk": dense_case, "propagate": propagate_case}
KERNELS = tuple(BUILDERS)
