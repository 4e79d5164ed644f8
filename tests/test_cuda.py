"""The CUDA backend: build, detection, loud failure without a GPU, and (marked ``gpu``) every
CUDA kernel against independent brute-force references and the CPU kernels.

GPU tests skip with the reason CUDA is unusable (no driver, no device, module not built).
References are dense numpy computations written here, never the code under test.
"""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recforge import backend as rb
from recforge.kernels import similarity_topk
from recforge.kernels import _cuda_dispatch as cd

from conftest import data_file

CUDA = rb.cuda_info()
gpu = pytest.mark.skipif(not CUDA.usable, reason=f"CUDA is not usable here: {CUDA.reason}")


def _toolkit_present() -> bool:
    return shutil.which("nvcc") is not None or os.path.exists("/usr/local/cuda/bin/nvcc")


# ---------------------------------------------------------------------------------------------
# Everywhere (no GPU needed)
# ---------------------------------------------------------------------------------------------

def test_cuda_module_is_built_when_a_toolkit_is_present():
    if os.environ.get("RECFORGE_DISABLE_CUDA") == "1" or not _toolkit_present():
        pytest.skip("no CUDA toolkit here (or RECFORGE_DISABLE_CUDA=1): recforge._cuda is not expected")
    from recforge import _cuda  # a failed CUDA build makes this an ImportError

    info = _cuda.device_info()
    assert {"devices", "driver_version", "runtime_version", "reason", "compiled_architectures"} <= set(info)


def test_device_info_reports_devices_or_why_not():
    if CUDA.details == {} and not CUDA.usable:
        assert "not built" in CUDA.reason
        return
    info = CUDA.details
    if CUDA.usable:
        dev = info["devices"][0]
        assert dev["name"] and dev["total_memory"] > 0
        major, minor = (int(x) for x in dev["compute_capability"].split("."))
        assert major >= 7 and minor >= 0
    else:
        assert CUDA.reason and CUDA.reason == info["reason"]
        assert any(word in CUDA.reason for word in ("driver", "device"))


def test_backends_lists_cpu_and_cuda():
    names = [b.name for b in rb.backends()]
    assert names == ["cpu", "cuda"]
    cpu = rb.backends()[0]
    assert cpu.usable and cpu.details["openmp_threads"] >= 1


def test_cli_info_shows_cuda_status(capsys):
    from recforge.cli import main

    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "backend cuda" in out
    assert ("usable" in out) if CUDA.usable else (CUDA.reason in out)


@pytest.mark.skipif(CUDA.usable, reason="a usable GPU is present")
def test_explicit_cuda_without_gpu_raises_with_reason():
    X = sp.random(20, 10, density=0.3, format="csr", random_state=0)
    with pytest.raises(rb.BackendUnavailableError, match="backend='cuda'") as err:
        similarity_topk(X, 3, backend="cuda")
    assert CUDA.reason in str(err.value)
    with pytest.raises(rb.BackendUnavailableError):
        cd.dense_topk_cuda(np.ones((2, 3)), np.ones((4, 3)), 2)
    with pytest.raises(rb.BackendUnavailableError):
        cd.spmm_cuda(sp.identity(3, format="csr"), np.ones((3, 2)))
    with pytest.raises(rb.BackendUnavailableError):
        cd.propagate_cuda(sp.identity(3, format="csr"), np.ones((3, 2)), 2)


@pytest.mark.skipif(CUDA.usable, reason="a usable GPU is present")
def test_env_cuda_makes_auto_ask_for_cuda(monkeypatch):
    monkeypatch.setenv("RECFORGE_BACKEND", "cuda")
    X = sp.random(20, 10, density=0.3, format="csr", random_state=0)
    with pytest.raises(rb.BackendUnavailableError, match="RECFORGE_BACKEND=cuda"):
        similarity_topk(X, 3)


def test_env_backend_cpu_and_bad_value(monkeypatch):
    X = sp.random(20, 10, density=0.3, format="csr", random_state=0)
    monkeypatch.setenv("RECFORGE_BACKEND", "cpu")
    assert rb.resolve_backend("auto", X) == "cpu"
    monkeypatch.setenv("RECFORGE_BACKEND", "tpu")
    with pytest.raises(ValueError, match="RECFORGE_BACKEND"):
        rb.resolve_backend("auto", X)


def test_on_gpu_recognises_device_arrays_without_importing_them():
    class FakeCupy:
        __cuda_array_interface__ = {"shape": (1,), "typestr": "<f4", "data": (0, False), "version": 3}

    class FakeDlpack:
        def __dlpack_device__(self):
            return (2, 0)

    class FakeTorchCuda:
        class device:
            type = "cuda"

    assert rb.on_gpu(FakeCupy()) and rb.on_gpu(FakeDlpack()) and rb.on_gpu(FakeTorchCuda())
    assert not rb.on_gpu(np.zeros(3)) and not rb.on_gpu(sp.identity(2, format="csr")) and not rb.on_gpu(None)


def test_combine_weights_hand_worked():
    from recforge.kernels.graph import combine_weights
    # L = 3: mean gives 1/4 each; sum gives 1 each; last keeps only E_3.
    assert combine_weights("mean", 3) == [0.25, 0.25, 0.25, 0.25]
    assert combine_weights("sum", 3) == [1.0, 1.0, 1.0, 1.0]
    assert combine_weights("last", 3) == [0.0, 0.0, 0.0, 1.0]
    assert combine_weights("last", 0) == [1.0]
    assert combine_weights([0.5, 0.25, 0.25], 2) == [0.5, 0.25, 0.25]
    with pytest.raises(ValueError, match="layers \\+ 1"):
        combine_weights([1.0, 1.0], 2)
    with pytest.raises(ValueError, match="combine"):
        combine_weights("max", 2)


def test_bad_arguments_fail_before_any_gpu_work():
    with pytest.raises(ValueError, match="same number of columns"):
        cd.dense_topk_cuda(np.ones((2, 3)), np.ones((4, 5)), 2)
    with pytest.raises(TypeError, match="k must be an integer"):
        cd.dense_topk_cuda(np.ones((2, 3)), np.ones((4, 3)), 2.5)
    with pytest.raises(ValueError, match="metric"):
        cd.dense_topk_cuda(np.ones((2, 3)), np.ones((4, 3)), 2, metric="l2")
    with pytest.raises(ValueError, match="NaN or infinite"):
        cd.dense_topk_cuda(np.array([[np.nan, 1.0]]), np.ones((4, 2)), 2)
    with pytest.raises(ValueError, match="2-D"):
        cd.dense_topk_cuda(np.ones(3), np.ones((4, 3)), 2)
    with pytest.raises(ValueError, match="overflow float32"):  # 3 * 2e19 * 2e19 = 1.2e39 > 3.4e38
        cd.dense_topk_cuda(np.full((2, 3), 2e19, np.float32), np.full((4, 3), -2e19, np.float32), 2)
    with pytest.raises(ValueError, match="columns but B has"):
        cd.spmm_cuda(sp.identity(3, format="csr"), np.ones((4, 2)))
    with pytest.raises(ValueError, match="square"):
        cd.propagate_cuda(sp.random(3, 4, density=0.5, format="csr"), np.ones((4, 2)), 1)
    with pytest.raises(ValueError, match="layers must be >= 0"):
        cd.propagate_cuda(sp.identity(3, format="csr"), np.ones((3, 2)), -1)
    with pytest.raises(TypeError, match="layers must be an integer"):
        cd.propagate_cuda(sp.identity(3, format="csr"), np.ones((3, 2)), 1.5)


def test_memory_budget_env(monkeypatch):
    monkeypatch.setenv("RECFORGE_CUDA_MEMORY_BUDGET", "12345")
    assert cd.scratch_budget() == 12345 and cd.scratch_budget(7) == 7
    monkeypatch.setenv("RECFORGE_CUDA_MEMORY_BUDGET", "lots")
    with pytest.raises(ValueError, match="RECFORGE_CUDA_MEMORY_BUDGET"):
        cd.scratch_budget()


# ---------------------------------------------------------------------------------------------
# Brute-force references (dense numpy, float64)
# ---------------------------------------------------------------------------------------------

def ref_similarity(X: sp.csr_matrix, Y: sp.csr_matrix | None, metric: str, shrink=0.0, min_support=1):
    """Dense m x n similarity matrix, straight from the metric definitions."""
    sym = Y is None
    Y = X if sym else Y
    x, y = X.toarray().astype(np.float64), Y.toarray().astype(np.float64)
    bx, by = (x != 0).astype(np.float64), (y != 0).astype(np.float64)
    n = bx @ by.T  # co-support
    if metric == "dot":
        S = x @ y.T
    elif metric == "cosine":
        nx, ny = np.linalg.norm(x, axis=1), np.linalg.norm(y, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            S = np.nan_to_num((x @ y.T) / np.outer(nx, ny))
    elif metric == "jaccard":
        union = bx.sum(1)[:, None] + by.sum(1)[None, :] - n
        S = np.divide(n, union, out=np.zeros_like(n), where=union > 0)
    elif metric == "pearson":
        sxy, sx, sy = x @ y.T, x @ by.T, bx @ y.T
        sxx, syy = (x * x) @ by.T, bx @ (y * y).T
        num = n * sxy - sx * sy
        den = np.sqrt(np.maximum((n * sxx - sx ** 2) * (n * syy - sy ** 2), 0))
        S = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    elif metric == "msd":
        sq = (x * x) @ by.T - 2 * (x @ y.T) + bx @ (y * y).T  # sum over co-rated of (x - y)^2
        S = np.where(n > 0, 1.0 / (np.divide(sq, n, out=np.zeros_like(sq), where=n > 0) + 1.0), 0.0)
    else:
        raise AssertionError(metric)
    if metric != "dot" or shrink > 0 or min_support > 1:
        if shrink > 0:
            S = S * n / (n + shrink)
        S = np.where(n >= min_support, S, 0.0)
    if sym:
        np.fill_diagonal(S, 0.0)
    return S


def ref_topk_rows(S: np.ndarray, k: int, valid: np.ndarray | None = None):
    """Per row: indices of the k best (score desc, index asc) among valid entries."""
    out = []
    for i, row in enumerate(S):
        cand = np.flatnonzero(row != 0) if valid is None else np.flatnonzero(valid[i])
        order = np.lexsort((cand, -row[cand]))
        out.append(cand[order[:k]])
    return out


def assert_topk_rows(got_idx, got_scores, S, k, valid=None, rtol=2e-5, atol=2e-6):
    """Each row holds the k best up to near-ties: scores match the reference's sorted scores,
    every returned index really has its returned score, no index is repeated or invalid."""
    expected = ref_topk_rows(S, k, valid)
    for i, (idx, sc) in enumerate(zip(got_idx, got_scores)):
        want = expected[i]
        assert len(idx) == len(want), f"row {i}: {len(idx)} entries, expected {len(want)}"
        np.testing.assert_allclose(sc, S[i, want], rtol=rtol, atol=atol, err_msg=f"row {i} scores")
        np.testing.assert_allclose(sc, S[i, idx], rtol=rtol, atol=atol, err_msg=f"row {i} indices")
        assert len(set(idx.tolist())) == len(idx)
        if valid is not None:
            assert valid[i, idx].all()
        # Sorted best first; equal returned scores are ordered by smaller index.
        for a in range(len(idx) - 1):
            assert sc[a] >= sc[a + 1], f"row {i}: scores not sorted"
            if sc[a] == sc[a + 1]:
                assert idx[a] < idx[a + 1], f"row {i}: tie not ordered by index"


def csr_rows(M: sp.csr_matrix):
    M = sp.csr_matrix(M)
    return ([M.indices[M.indptr[i]:M.indptr[i + 1]] for i in range(M.shape[0])],
            [M.data[M.indptr[i]:M.indptr[i + 1]] for i in range(M.shape[0])])


def random_csr(rng, m, d, density, integer=True, dtype=np.float32):
    M = sp.random(m, d, density=density, format="csr", random_state=rng, dtype=np.float64)
    if integer:
        M.data = rng.integers(1, 6, M.nnz).astype(np.float64)
    return M.astype(dtype)


# ---------------------------------------------------------------------------------------------
# GPU: similarity_topk
# ---------------------------------------------------------------------------------------------

@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("metric", ["dot", "cosine", "jaccard", "pearson", "msd"])
@pytest.mark.parametrize("symmetric", [True, False])
def test_similarity_cuda_matches_brute_force(metric, symmetric):
    rng = np.random.default_rng(1)
    X = random_csr(rng, 120, 40, 0.15)
    Y = None if symmetric else random_csr(rng, 90, 40, 0.2)
    S = ref_similarity(X, Y, metric)
    for k in (1, 7, 200):
        got = similarity_topk(X, k, Y, metric=metric, backend="cuda")
        assert isinstance(got, sp.csr_matrix) and got.shape == S.shape
        idx, sc = csr_rows(got)
        assert_topk_rows(idx, sc, S, k)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("metric", ["dot", "jaccard", "pearson", "msd"])
def test_similarity_cuda_shrink_and_min_support(metric):
    rng = np.random.default_rng(2)
    X = random_csr(rng, 80, 30, 0.25)
    S = ref_similarity(X, None, metric, shrink=3.0, min_support=2)
    got = similarity_topk(X, 10, metric=metric, shrink=3.0, min_support=2, backend="cuda")
    idx, sc = csr_rows(got)
    assert_topk_rows(idx, sc, S, 10)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("metric", ["cosine", "adjusted_cosine", "tfidf", "bm25", "pearson", "msd", "jaccard"])
def test_similarity_cuda_equals_cpu_kernel(metric):
    rng = np.random.default_rng(3)
    X = random_csr(rng, 150, 60, 0.1)
    Y = random_csr(rng, 70, 60, 0.15)
    for args in ((X, 12, None), (X, 12, Y)):
        cpu = similarity_topk(*args, metric=metric, backend="cpu")
        gpu_ = similarity_topk(*args, metric=metric, backend="cuda")
        # The documented dtype (float32 for float32 input); the CPU binding may return float64 for
        # jaccard, whose values it does not read, so only the values are compared with it.
        assert gpu_.dtype == np.float32 and gpu_.indices.dtype == cpu.indices.dtype
        for i in range(cpu.shape[0]):
            a, b = slice(cpu.indptr[i], cpu.indptr[i + 1]), slice(gpu_.indptr[i], gpu_.indptr[i + 1])
            # Sums in another order may turn an exact 0 into +-1e-9 (or back): ignore those.
            ka, kb = np.abs(cpu.data[a]) > 1e-6, np.abs(gpu_.data[b]) > 1e-6
            s_cpu, i_cpu = cpu.data[a][ka], cpu.indices[a][ka]
            s_gpu, i_gpu = gpu_.data[b][kb], gpu_.indices[b][kb]
            assert len(s_cpu) == len(s_gpu), f"row {i}"
            np.testing.assert_allclose(s_gpu, s_cpu, rtol=1e-5, atol=1e-6)
            # Same neighbours wherever the CPU's scores are not near-tied.
            clear = np.ones(len(s_cpu), bool)
            if len(s_cpu) > 1:
                close = np.isclose(s_cpu[1:], s_cpu[:-1], rtol=1e-5, atol=1e-6)
                clear[1:] &= ~close
                clear[:-1] &= ~close
            np.testing.assert_array_equal(i_gpu[clear], i_cpu[clear])


@gpu
@pytest.mark.gpu
def test_similarity_cuda_binary_ties_are_exact():
    # 0/1 data: dot and jaccard are exact integers / ratios, so CPU and GPU agree bit for bit,
    # including the order of the many ties.
    rng = np.random.default_rng(4)
    X = random_csr(rng, 300, 25, 0.2)
    X.data[:] = 1
    for metric in ("dot", "jaccard", "cosine"):
        cpu = similarity_topk(X, 15, metric=metric, backend="cpu")
        gpu_ = similarity_topk(X, 15, metric=metric, backend="cuda")
        np.testing.assert_array_equal(gpu_.indptr, cpu.indptr)
        np.testing.assert_array_equal(gpu_.indices, cpu.indices)
        np.testing.assert_array_equal(gpu_.data, cpu.data.astype(np.float32))  # CPU jaccard is float64


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("path", ["shared", "global"])
def test_similarity_cuda_tiles_and_accumulation_paths(monkeypatch, path):
    # A tiny memory budget forces one-row tiles; the global path is what wide Y take.
    if path == "global":
        monkeypatch.setenv("RECFORGE_CUDA_GLOBAL_ACCUMULATE", "1")
    monkeypatch.setenv("RECFORGE_CUDA_MEMORY_BUDGET", "1")
    rng = np.random.default_rng(5)
    X = random_csr(rng, 60, 30, 0.2)
    S = ref_similarity(X, None, "pearson")
    idx, sc = csr_rows(similarity_topk(X, 5, metric="pearson", backend="cuda"))
    assert_topk_rows(idx, sc, S, 5)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("symmetric", [True, False])
def test_similarity_cuda_exclusion_pattern(symmetric):
    # The unchecked core with plain dot products: excluded columns (the stored pattern, explicit
    # zeros included) are skipped inside the selection, so rows still get k entries when they can.
    rng = np.random.default_rng(17)
    X = random_csr(rng, 70, 25, 0.3)
    Y = X if symmetric else random_csr(rng, 90, 25, 0.3)
    n = Y.shape[0]
    E = sp.random(70, n, density=0.3, format="csr", random_state=18)
    E.data[::3] = 0  # stored zeros still exclude
    S = ref_similarity(X, None if symmetric else Y, "dot")
    pattern = np.zeros((70, n), bool)
    pattern[np.repeat(np.arange(70), np.diff(E.indptr)), E.indices] = True
    valid = (S != 0) & ~pattern
    got = cd.similarity_core_cuda(X, Y, 0, False, 8, 0.0, 1.0, None, None, None, None, symmetric, exclude=E)
    idx, sc = csr_rows(got)
    assert_topk_rows(idx, sc, S, 8, valid)


@gpu
@pytest.mark.gpu
def test_similarity_cuda_float64_and_int64_indices():
    rng = np.random.default_rng(6)
    X = random_csr(rng, 50, 20, 0.3, integer=False, dtype=np.float64)
    X.indices = X.indices.astype(np.int64)
    X.indptr = X.indptr.astype(np.int64)
    got = similarity_topk(X, 4, metric="cosine", backend="cuda")
    assert got.dtype == np.float64
    assert got.indices.dtype == similarity_topk(X, 4, metric="cosine", backend="cpu").indices.dtype
    idx, sc = csr_rows(got)
    assert_topk_rows(idx, sc, ref_similarity(X, None, "cosine"), 4, rtol=1e-12, atol=1e-14)


@gpu
@pytest.mark.gpu
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=st.integers(1, 40), n=st.integers(1, 40), d=st.integers(1, 15), density=st.floats(0.05, 0.6),
       k=st.integers(1, 45), metric=st.sampled_from(["dot", "cosine", "jaccard", "pearson", "msd"]),
       symmetric=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_similarity_cuda_property(m, n, d, density, k, metric, symmetric, seed):
    rng = np.random.default_rng(seed)
    X = random_csr(rng, m, d, density)
    Y = None if symmetric else random_csr(rng, n, d, density)
    S = ref_similarity(X, Y, metric)
    idx, sc = csr_rows(similarity_topk(X, k, Y, metric=metric, backend="cuda"))
    assert_topk_rows(idx, sc, S, k)


@gpu
@pytest.mark.gpu
def test_similarity_cuda_movielens_100k_item_item():
    raw = np.loadtxt(data_file("ml-100k", "u.data"), dtype=np.int64)
    R = sp.csr_matrix((raw[:, 2].astype(np.float32), (raw[:, 1] - 1, raw[:, 0] - 1)))  # items x users
    for metric in ("cosine", "jaccard", "pearson"):
        cpu = similarity_topk(R, 20, metric=metric, backend="cpu")
        gpu_ = similarity_topk(R, 20, metric=metric, backend="cuda")
        np.testing.assert_array_equal(gpu_.indptr, cpu.indptr)
        np.testing.assert_allclose(gpu_.data, cpu.data, rtol=1e-5, atol=1e-6)
        # Near-ties may swap; the overlap of neighbour sets stays essentially complete.
        same = sum(len(np.intersect1d(gpu_.indices[gpu_.indptr[i]:gpu_.indptr[i + 1]],
                                      cpu.indices[cpu.indptr[i]:cpu.indptr[i + 1]]))
                   for i in range(R.shape[0]))
        assert same >= 0.995 * cpu.nnz


# ---------------------------------------------------------------------------------------------
# GPU: dense_topk
# ---------------------------------------------------------------------------------------------

def ref_dense_scores(Q, V, metric):
    Q, V = np.asarray(Q, np.float64), np.asarray(V, np.float64)
    if metric == "cosine":
        nq, nv = np.linalg.norm(Q, axis=1), np.linalg.norm(V, axis=1)
        Q = Q / np.where(nq > 0, nq, 1)[:, None]
        V = V / np.where(nv > 0, nv, 1)[:, None]
    return Q @ V.T


def assert_dense_topk(idx, sc, S, k, allowed, rtol=1e-4, atol=1e-4):
    m, n = S.shape
    assert idx.shape == (m, k) and sc.shape == (m, k) and idx.dtype == np.int64 and sc.dtype == np.float32
    for i in range(m):
        cand = np.flatnonzero(allowed[i])
        order = np.lexsort((cand, -S[i, cand]))[:k]
        want = cand[order]
        got = idx[i][idx[i] >= 0]
        assert len(got) == len(want), f"row {i}: {len(got)} results, expected {len(want)}"
        assert np.all(idx[i][len(got):] == -1) and np.all(np.isneginf(sc[i][len(got):]))
        np.testing.assert_allclose(sc[i][:len(got)], S[i, want], rtol=rtol, atol=atol)
        np.testing.assert_allclose(sc[i][:len(got)], S[i, got], rtol=rtol, atol=atol)
        assert allowed[i, got].all() and len(set(got.tolist())) == len(got)
        assert np.all(np.diff(sc[i][:len(got)]) <= 0)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("metric", ["dot", "cosine"])
@pytest.mark.parametrize("shape", [(5, 3000, 24), (700, 900, 64), (130, 257, 7)])
def test_dense_topk_cuda_matches_brute_force(metric, shape):
    m, n, d = shape
    rng = np.random.default_rng(7)
    Q = rng.normal(size=(m, d)).astype(np.float32)
    V = rng.normal(size=(n, d)).astype(np.float32)
    V[3] = 0  # an all-zero item: cosine 0
    E = sp.random(m, n, density=0.05, format="csr", random_state=8)
    E.data[::4] = 0  # explicitly stored zeros exclude too: the pattern counts
    S = ref_dense_scores(Q, V, metric)
    allowed = np.ones((m, n), bool)
    allowed[np.repeat(np.arange(m), np.diff(E.indptr)), E.indices] = False
    for k in (1, 10, 100):
        idx, sc = cd.dense_topk_cuda(Q, V, k, exclude=E, metric=metric)
        assert_dense_topk(idx, sc, S, k, allowed)
    idx, sc = cd.dense_topk_cuda(Q, V, 10, metric=metric)
    assert_dense_topk(idx, sc, S, 10, np.ones_like(allowed))


@gpu
@pytest.mark.gpu
def test_dense_topk_cuda_any_k_and_padding():
    rng = np.random.default_rng(9)
    Q = rng.normal(size=(3, 8)).astype(np.float32)
    V = rng.normal(size=(5000, 8)).astype(np.float32)
    S = ref_dense_scores(Q, V, "dot")
    for k in (1025, 2049, 4999, 5000):  # past faiss's 1024/2048 limits, up to all items
        idx, sc = cd.dense_topk_cuda(Q, V, k)
        assert_dense_topk(idx, sc, S, k, np.ones(S.shape, bool))
    idx, sc = cd.dense_topk_cuda(Q, V, 5003)  # k > n pads with -1 / -inf
    assert idx.shape == (3, 5003) and np.all(idx[:, 5000:] == -1) and np.all(np.isneginf(sc[:, 5000:]))
    full = np.ones((3, 5000))
    full[0, 17] = 0
    E = sp.csr_matrix(full)
    idx, sc = cd.dense_topk_cuda(Q, V, 4, exclude=E)  # rows with everything excluded
    assert idx[0, 0] == 17 and np.all(idx[0, 1:] == -1) and np.all(idx[1:] == -1)


@gpu
@pytest.mark.gpu
def test_dense_topk_cuda_ties_by_smaller_index():
    # Integer vectors with many duplicate items: equal scores, order must follow the index.
    rng = np.random.default_rng(10)
    Q = rng.integers(-2, 3, size=(64, 4)).astype(np.float32)
    V = rng.integers(-2, 3, size=(700, 4)).astype(np.float32)
    S = ref_dense_scores(Q, V, "dot")
    idx, sc = cd.dense_topk_cuda(Q, V, 50)
    for i in range(64):
        order = np.lexsort((np.arange(700), -S[i]))[:50]
        np.testing.assert_array_equal(idx[i], order)


@gpu
@pytest.mark.gpu
def test_dense_topk_cuda_small_memory_budget(monkeypatch):
    monkeypatch.setenv("RECFORGE_CUDA_MEMORY_BUDGET", "1")  # one 64-query chunk at a time
    rng = np.random.default_rng(11)
    Q = rng.normal(size=(300, 16)).astype(np.float32)
    V = rng.normal(size=(1000, 16)).astype(np.float32)
    idx, sc = cd.dense_topk_cuda(Q, V, 20)
    assert_dense_topk(idx, sc, ref_dense_scores(Q, V, "dot"), 20, np.ones((300, 1000), bool))


@gpu
@pytest.mark.gpu
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=st.integers(1, 150), n=st.integers(1, 600), d=st.integers(1, 40), k=st.integers(1, 700),
       density=st.floats(0, 0.5), seed=st.integers(0, 2**31 - 1), metric=st.sampled_from(["dot", "cosine"]))
def test_dense_topk_cuda_property(m, n, d, k, density, seed, metric):
    rng = np.random.default_rng(seed)
    Q = rng.integers(-3, 4, size=(m, d)).astype(np.float32)
    V = rng.integers(-3, 4, size=(n, d)).astype(np.float32)
    E = sp.random(m, n, density=density, format="csr", random_state=rng)
    idx, sc = cd.dense_topk_cuda(Q, V, k, exclude=E, metric=metric)
    assert_dense_topk(idx, sc, ref_dense_scores(Q, V, metric), k, ~E.toarray().astype(bool))


# ---------------------------------------------------------------------------------------------
# GPU: spmm / propagate
# ---------------------------------------------------------------------------------------------

def bipartite_adjacency(R: sp.csr_matrix) -> sp.csr_matrix:
    """D^-1/2 [[0, R], [R^T, 0]] D^-1/2, written out here as the reference."""
    u, i = R.shape
    A = sp.bmat([[None, R], [R.T, None]], format="csr").astype(np.float64)
    deg = np.asarray(A.sum(axis=1)).ravel()
    inv = np.where(deg > 0, 1 / np.sqrt(np.where(deg > 0, deg, 1)), 0)
    return (sp.diags(inv) @ A @ sp.diags(inv)).tocsr()


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("d", [1, 3, 32, 64, 130, 256])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_spmm_cuda_matches_scipy(d, dtype):
    rng = np.random.default_rng(12)
    A = sp.random(500, 300, density=0.03, format="csr", random_state=rng).astype(dtype)
    A = sp.diags((np.arange(500) != 7).astype(dtype)) @ A  # row 7 empty
    A.eliminate_zeros()
    heavy = sp.csr_matrix((np.ones(300), (np.zeros(300, int), np.arange(300))), shape=(500, 300))
    A = (A + heavy.astype(dtype)).tocsr()  # row 0 is dense: split over warps
    B = rng.normal(size=(300, d)).astype(dtype)
    Y = cd.spmm_cuda(A, B)
    assert Y.dtype == dtype and Y.shape == (500, d)
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(Y, A.astype(np.float64) @ B.astype(np.float64), rtol=tol, atol=tol)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("combine", ["mean", "sum", "last", [0.0, 0.5, 0.0, 2.0], [1.0, 0.0, 0.0, 0.0]])
def test_propagate_cuda_matches_layer_by_layer_reference(combine):
    rng = np.random.default_rng(13)
    R = sp.random(120, 80, density=0.05, format="csr", random_state=rng)
    R.data[:] = 1
    A = bipartite_adjacency(R).astype(np.float32)
    E = rng.normal(size=(200, 64)).astype(np.float32)
    layers = 3
    w = {"mean": [0.25] * 4, "sum": [1.0] * 4, "last": [0, 0, 0, 1.0]}.get(
        combine if isinstance(combine, str) else "", combine)
    Es = [E.astype(np.float64)]
    for _ in range(layers):
        Es.append(A.astype(np.float64) @ Es[-1])
    want = sum(wl * El for wl, El in zip(w, Es))
    got = cd.propagate_cuda(A, E, layers, combine)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@gpu
@pytest.mark.gpu
def test_propagate_cuda_gowalla_sample():
    rows, cols = [], []
    with open(data_file("lightgcn-gowalla", "train.txt")) as f:
        for line in f:
            parts = np.array(line.split(), dtype=np.int64)
            if parts.size > 1 and parts[0] < 3000:
                rows.append(np.full(parts.size - 1, parts[0]))
                cols.append(parts[1:])
    r, c = np.concatenate(rows), np.concatenate(cols)
    R = sp.csr_matrix((np.ones(r.size, np.float32), (r, c)))
    A = bipartite_adjacency(R).astype(np.float32)
    E = np.random.default_rng(14).normal(scale=0.1, size=(A.shape[0], 64)).astype(np.float32)
    want = E.astype(np.float64)
    acc = want.copy()
    for _ in range(3):
        want = A.astype(np.float64) @ want
        acc += want
    np.testing.assert_allclose(cd.propagate_cuda(A, E, 3, "mean"), acc / 4, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# GPU: device inputs stay on the device (cupy, torch)
# ---------------------------------------------------------------------------------------------

@gpu
@pytest.mark.gpu
def test_cupy_inputs_give_cupy_outputs():
    cupy = pytest.importorskip("cupy", reason="cupy is not installed (pip install recforge[gpu])")
    import cupyx.scipy.sparse as csp

    rng = np.random.default_rng(15)
    Q = rng.normal(size=(40, 16)).astype(np.float32)
    V = rng.normal(size=(300, 16)).astype(np.float32)
    idx, sc = cd.dense_topk_cuda(cupy.asarray(Q), cupy.asarray(V), 7)
    assert isinstance(idx, cupy.ndarray) and isinstance(sc, cupy.ndarray)
    h_idx, h_sc = cd.dense_topk_cuda(Q, V, 7)
    np.testing.assert_array_equal(idx.get(), h_idx)
    np.testing.assert_array_equal(sc.get(), h_sc)

    A = sp.random(300, 300, density=0.02, format="csr", random_state=1, dtype=np.float32)
    Y = cd.spmm_cuda(csp.csr_matrix(A), cupy.asarray(V))
    assert isinstance(Y, cupy.ndarray)
    np.testing.assert_allclose(Y.get(), A @ V, rtol=1e-4, atol=1e-5)
    P = cd.propagate_cuda(csp.csr_matrix(A), cupy.asarray(V), 2, "sum")
    np.testing.assert_allclose(P.get(), V + A @ V + A @ (A @ V), rtol=1e-4, atol=1e-4)

    X = random_csr(rng, 50, 20, 0.3)
    S = similarity_topk(csp.csr_matrix(X), 5)  # auto: cupyx input selects CUDA
    assert isinstance(S, csp.csr_matrix)
    cpu = similarity_topk(X, 5, backend="cpu")
    np.testing.assert_array_equal(S.indptr.get(), cpu.indptr)
    np.testing.assert_allclose(S.data.get(), cpu.data, rtol=1e-5, atol=1e-6)


@gpu
@pytest.mark.gpu
def test_torch_cuda_tensors_give_torch_outputs():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("this torch build has no CUDA support")
    rng = np.random.default_rng(16)
    Q = rng.normal(size=(30, 8)).astype(np.float32)
    V = rng.normal(size=(200, 8)).astype(np.float32)
    idx, sc = cd.dense_topk_cuda(torch.from_numpy(Q).cuda(), torch.from_numpy(V).cuda(), 5, metric="cosine")
    assert isinstance(idx, torch.Tensor) and idx.is_cuda and idx.dtype == torch.int64
    h_idx, h_sc = cd.dense_topk_cuda(Q, V, 5, metric="cosine")
    np.testing.assert_array_equal(idx.cpu().numpy(), h_idx)
    np.testing.assert_allclose(sc.cpu().numpy(), h_sc, rtol=1e-6, atol=1e-7)
    A = sp.random(200, 200, density=0.05, format="csr", random_state=2, dtype=np.float32)
    Y = cd.spmm_cuda(A, torch.from_numpy(V).cuda())
    assert isinstance(Y, torch.Tensor) and Y.is_cuda
    np.testing.assert_allclose(Y.cpu().numpy(), A @ V, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# GPU: the CUDA twins against the CPU kernels (present once kernels-dense-graph is merged)
# ---------------------------------------------------------------------------------------------

def _cpu_kernel(name: str):
    import recforge.kernels as kernels

    fn = getattr(kernels, name, None)
    if fn is None:
        pytest.skip(f"recforge.kernels.{name} (the CPU kernel) is not in this tree")
    return fn


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("metric", ["dot", "cosine"])
def test_dense_topk_cuda_equals_cpu_kernel(metric):
    dense_topk = _cpu_kernel("dense_topk")
    rng = np.random.default_rng(19)
    Q = rng.normal(size=(300, 32)).astype(np.float32)
    V = rng.normal(size=(2000, 32)).astype(np.float32)
    E = sp.random(300, 2000, density=0.02, format="csr", random_state=20)
    for k in (10, 1500):
        i_cpu, s_cpu = dense_topk(Q, V, k, exclude=E, metric=metric, backend="cpu")
        i_gpu, s_gpu = cd.dense_topk_cuda(Q, V, k, exclude=E, metric=metric)
        np.testing.assert_allclose(s_gpu, s_cpu, rtol=1e-5, atol=1e-5)
        assert np.mean(i_gpu == i_cpu) > 0.999  # near-ties in float32 may swap


@gpu
@pytest.mark.gpu
def test_spmm_and_propagate_cuda_equal_cpu_kernels():
    spmm, propagate = _cpu_kernel("spmm"), _cpu_kernel("propagate")
    rng = np.random.default_rng(21)
    R = sp.random(400, 300, density=0.03, format="csr", random_state=rng)
    R.data[:] = 1
    A = bipartite_adjacency(R).astype(np.float32)
    E = rng.normal(size=(700, 64)).astype(np.float32)
    np.testing.assert_allclose(cd.spmm_cuda(A, E), spmm(A, E, backend="cpu"), rtol=1e-5, atol=1e-6)
    for combine in ("mean", "sum", "last"):
        np.testing.assert_allclose(cd.propagate_cuda(A, E, 3, combine),
                                   propagate(A, E, 3, combine=combine, backend="cpu"), rtol=1e-5, atol=1e-6)


def test_every_call_into_cuda_names_each_argument_of_the_binding():
    """The kernels call recforge._cuda by keyword only; without a GPU this checks, from the
    bindings' signatures and the source of the dispatch module, that every keyword exists and
    every argument without a default is given (a renamed argument would otherwise only fail on a GPU)."""
    import ast
    import re

    cuda = pytest.importorskip("recforge._cuda", reason="recforge._cuda is not built here")
    import recforge.kernels._cuda_dispatch as dispatch

    tree = ast.parse(open(dispatch.__file__).read())
    dicts = {t.id: {k.arg for k in node.value.keywords}
             for node in ast.walk(tree) if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
             and getattr(node.value.func, "id", "") == "dict" for t in node.targets if isinstance(t, ast.Name)}
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and getattr(node.func.value, "id", "") == "_cuda" and node.func.attr in
             ("similarity_topk", "dense_topk", "spmm", "propagate")]
    assert {c.func.attr for c in calls} == {"similarity_topk", "dense_topk", "spmm", "propagate"}
    for call in calls:
        assert not call.args, f"_cuda.{call.func.attr} is called with positional arguments"
        given = set()
        for kw in call.keywords:
            given |= dicts[kw.value.id] if kw.arg is None else {kw.arg}
        signature = getattr(cuda, call.func.attr).__doc__.splitlines()[0]
        params = re.findall(r"(?:\(|, )(\w+): [^,]*?(= [^,)]+)?(?=, \w+:|\) ->)", signature)
        names = {p for p, _ in params}
        required = {p for p, default in params if not default}
        assert given <= names, (call.func.attr, given - names)
        assert required <= given, (call.func.attr, required - given)
