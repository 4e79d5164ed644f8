"""similarity_topk against brute-force references written from each metric's formula."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from recforge.kernels import SIMILARITY_METRICS, similarity_topk
from similarity_reference import check_topk_row, reference_similarity

TOL = {np.float32: 2e-4, np.float64: 1e-9}


def assert_matches_reference(X, k, Y=None, metric="cosine", shrink=0.0, min_support=1, exclude=None, **kw):
    S = similarity_topk(X, k, Y, metric=metric, shrink=shrink, min_support=min_support, exclude=exclude, **kw)
    n = X.shape[0] if Y is None else Y.shape[0]
    assert isinstance(S, sp.csr_matrix) and S.shape == (X.shape[0], n)
    ref = reference_similarity(X.toarray(), None if Y is None else Y.toarray(), metric, shrink, min_support)
    dtype = np.float64 if (X.dtype == np.float64 or (Y is not None and Y.dtype == np.float64)) else np.float32
    assert S.dtype == dtype
    tol = TOL[dtype] if metric not in ("pearson", "msd") else 1e-6
    ex = None if exclude is None else sp.csr_matrix(exclude)
    for i in range(X.shape[0]):
        row = S.getrow(i)
        forbidden = set() if Y is not None else {i}
        if ex is not None:
            forbidden |= set(ex.indices[ex.indptr[i]:ex.indptr[i + 1]].tolist())
        check_topk_row(row.indices, row.data, ref[i], k, tol, sorted(forbidden))
    return S


def random_csr(rng, m, d, density, dtype=np.float32, integer=True):
    M = sp.random(m, d, density=density, format="csr", random_state=rng, dtype=np.float64)
    if integer:
        M.data = np.ceil(M.data * 5)
    return M.astype(dtype)


@pytest.mark.parametrize("metric", SIMILARITY_METRICS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_metric_self_similarity(metric, dtype):
    rng = np.random.default_rng(1)
    X = random_csr(rng, 40, 25, 0.25, dtype)
    assert_matches_reference(X, 5, metric=metric)


@pytest.mark.parametrize("metric", SIMILARITY_METRICS)
def test_every_metric_against_other_matrix(metric):
    rng = np.random.default_rng(2)
    X, Y = random_csr(rng, 30, 20, 0.3), random_csr(rng, 35, 20, 0.3, np.float64)
    assert_matches_reference(X, 7, Y, metric=metric)


@pytest.mark.parametrize("metric", ["cosine", "pearson", "jaccard", "msd", "dot"])
def test_shrink_and_min_support(metric):
    rng = np.random.default_rng(3)
    X = random_csr(rng, 30, 30, 0.3)
    assert_matches_reference(X, 6, metric=metric, shrink=10.0, min_support=3)


def test_exclusion_never_returns_excluded_columns():
    rng = np.random.default_rng(4)
    X, Y = random_csr(rng, 30, 20, 0.3), random_csr(rng, 25, 20, 0.3)
    E = sp.random(30, 25, density=0.4, format="csr", random_state=5)
    assert_matches_reference(X, 8, Y, metric="dot", exclude=E)
    E_self = sp.random(30, 30, density=0.4, format="csr", random_state=6)
    assert_matches_reference(X, 8, metric="cosine", exclude=E_self)


@st.composite
def problems(draw):
    m = draw(st.integers(0, 12))
    n_other = draw(st.integers(0, 12))
    d = draw(st.integers(0, 10))
    density = draw(st.sampled_from([0.0, 0.1, 0.3, 0.7, 1.0]))
    seed = draw(st.integers(0, 2**31 - 1))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    integer = draw(st.booleans())
    symmetric = draw(st.booleans())
    n = m if symmetric else n_other
    k = draw(st.sampled_from([1, 3, max(n, 1), n + 5]))
    metric = draw(st.sampled_from(SIMILARITY_METRICS))
    rng = np.random.default_rng(seed)
    X = random_csr(rng, m, d, density, dtype, integer)
    Y = None if symmetric else random_csr(rng, n_other, d, density, dtype, integer)
    use_exclude = draw(st.booleans())
    E = sp.random(m, n, density=0.3, format="csr", random_state=rng) if use_exclude and m and n else None
    index64 = draw(st.booleans())
    if index64:
        X.indices, X.indptr = X.indices.astype(np.int64), X.indptr.astype(np.int64)
    return X, Y, k, metric, E


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_property_matches_brute_force(problem):
    X, Y, k, metric, E = problem
    assert_matches_reference(X, k, Y, metric=metric, exclude=E)


@settings(max_examples=60, deadline=None)
@given(problems(), st.integers(1, 3))
def test_results_do_not_depend_on_thread_count(problem, threads):
    X, Y, k, metric, E = problem
    a = similarity_topk(X, k, Y, metric=metric, exclude=E, num_threads=1)
    b = similarity_topk(X, k, Y, metric=metric, exclude=E, num_threads=threads)
    assert (a != b).nnz == 0 and np.array_equal(a.indices, b.indices) and np.array_equal(a.indptr, b.indptr)


def test_unsorted_and_duplicate_indices_are_canonicalised():
    # row 0 stores column 2 twice (1 + 2 = 3) and lists columns out of order
    X = sp.csr_matrix((np.array([1.0, 2.0, 4.0, 5.0, 1.0, 2.0], dtype=np.float32),
                       np.array([2, 2, 0, 1, 0, 1]), np.array([0, 4, 6])), shape=(2, 3))
    assert not X.has_canonical_format
    S = similarity_topk(X, 1, metric="dot")
    # canonical row 0 = [4, 5, 3], row 1 = [1, 2, 0]: dot = 4 + 10 = 14
    assert S.toarray().tolist() == [[0.0, 14.0], [14.0, 0.0]]


def test_hand_worked_cosine_and_jaccard():
    X = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [0, 1, 1]], dtype=np.float32))
    S = similarity_topk(X, 2, metric="cosine").toarray()
    # rows 0,1: 1/(sqrt2*1); rows 0,2: 1/(sqrt2*sqrt2) = 0.5; rows 1,2: nothing in common
    np.testing.assert_allclose(S, [[0, 1 / np.sqrt(2), 0.5], [1 / np.sqrt(2), 0, 0], [0.5, 0, 0]], rtol=1e-6)
    J = similarity_topk(X, 2, metric="jaccard").toarray()
    # |{0,1} n {0}| / |{0,1} u {0}| = 1/2; |{0,1} n {1,2}| / 3 = 1/3
    np.testing.assert_allclose(J, [[0, 1 / 2, 1 / 3], [1 / 2, 0, 0], [1 / 3, 0, 0]], rtol=1e-6)


def test_negative_similarities_are_returned_when_among_the_best():
    # pearson of row 0 with row 1 is -1 (opposite trends), with row 2 +1
    X = sp.csr_matrix(np.array([[1, 2, 3], [3, 2, 1], [2, 4, 6]], dtype=np.float64))
    S = similarity_topk(X, 2, metric="pearson")
    assert S.getrow(0).indices.tolist() == [2, 1]
    np.testing.assert_allclose(S.getrow(0).data, [1.0, -1.0])


def test_k_larger_than_n_returns_every_non_zero_neighbour():
    rng = np.random.default_rng(7)
    X = random_csr(rng, 20, 10, 0.5)
    S = similarity_topk(X, 1000, metric="dot")
    dense = X.toarray().astype(np.float64) @ X.toarray().T.astype(np.float64)
    np.fill_diagonal(dense, 0)
    assert S.nnz == np.count_nonzero(dense)


def test_empty_inputs_give_empty_rows():
    assert similarity_topk(sp.csr_matrix((0, 5), dtype=np.float32), 3).shape == (0, 0)
    S = similarity_topk(sp.csr_matrix((4, 5), dtype=np.float32), 3)
    assert S.shape == (4, 4) and S.nnz == 0
    X = sp.csr_matrix(np.array([[1, 0], [0, 0], [1, 1]], dtype=np.float32))
    S = similarity_topk(X, 3, sp.csr_matrix((0, 2), dtype=np.float32))
    assert S.shape == (3, 0)
    assert similarity_topk(X, 3).getrow(1).nnz == 0


@pytest.mark.parametrize("bad, exc, word", [
    (np.nan, ValueError, "NaN"), (np.inf, ValueError, "NaN"),
])
def test_non_finite_values_are_rejected(bad, exc, word):
    X = sp.csr_matrix(np.array([[1.0, bad], [1.0, 2.0]]))
    with pytest.raises(exc, match=word):
        similarity_topk(X, 1)
    with pytest.raises(exc, match="Y"):
        similarity_topk(sp.csr_matrix(np.ones((2, 2))), 1, X)


def test_bad_arguments_name_the_argument():
    X = sp.csr_matrix(np.ones((3, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="k"):
        similarity_topk(X, 0)
    with pytest.raises(TypeError, match="k"):
        similarity_topk(X, 2.5)
    with pytest.raises(TypeError, match="X"):
        similarity_topk(np.ones((3, 2)), 2)
    with pytest.raises(TypeError, match="X"):
        similarity_topk([[1, 2]], 2)
    with pytest.raises(ValueError, match="columns"):
        similarity_topk(X, 2, sp.csr_matrix(np.ones((3, 3))))
    with pytest.raises(TypeError, match="X"):
        similarity_topk(sp.csr_matrix(np.ones((2, 2), dtype=np.complex64)), 1)
    with pytest.raises(ValueError, match="shrink"):
        similarity_topk(X, 2, shrink=-1)
    with pytest.raises(ValueError, match="metric"):
        similarity_topk(X, 2, metric="euclid")
    with pytest.raises(ValueError, match="min_support"):
        similarity_topk(X, 2, min_support=0)
    with pytest.raises(ValueError, match="num_threads"):
        similarity_topk(X, 2, num_threads=-1)
    with pytest.raises(ValueError, match="exclude"):
        similarity_topk(X, 2, exclude=sp.csr_matrix((2, 2)))
    with pytest.raises(ValueError, match="non-negative"):
        similarity_topk(sp.csr_matrix(-np.ones((2, 2))), 1, metric="bm25")


def test_cuda_backend_without_gpu_fails_loudly():
    from recforge.backend import BackendUnavailableError, cuda_info
    if cuda_info().usable:
        pytest.skip("a CUDA device is present")
    X = sp.csr_matrix(np.ones((3, 2), dtype=np.float32))
    with pytest.raises(BackendUnavailableError, match="(?i)cuda"):
        similarity_topk(X, 2, backend="cuda")


def test_gil_is_released_while_the_kernel_runs():
    rng = np.random.default_rng(8)
    X = sp.random(3000, 3000, density=0.02, format="csr", random_state=rng, dtype=np.float32)
    done = threading.Event()
    worker = threading.Thread(target=lambda: (similarity_topk(X, 20, X, num_threads=1), done.set()))
    ticks = 0
    worker.start()
    while not done.is_set():
        ticks += 1
    worker.join()
    # With the GIL held for the whole kernel, this loop could only run between Python steps.
    assert ticks > 10_000


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("k", [1, 4, 60])
def test_long_rows_select_exactly(binary, k):
    # rows with well over 1,000 candidates take the sampled-threshold selection path
    rng = np.random.default_rng(11)
    X = random_csr(rng, 1400, 12, 0.35, np.float32, integer=True)
    if binary:
        X.data[:] = 1.0
    dense = X.toarray().astype(np.float64)
    ref = dense @ dense.T
    np.fill_diagonal(ref, 0.0)
    S = similarity_topk(X, k, metric="dot")
    for i in range(X.shape[0]):
        row = S.getrow(i)
        check_topk_row(row.indices, row.data, ref[i], k, 1e-4, forbidden=[i])


@settings(max_examples=80, deadline=None)
@given(problems())
def test_half_product_with_shared_row_buffers(problem):
    # with no budget for per-thread row buffers the half product shares one locked set
    import recforge.kernels.similarity as module
    X, Y, k, metric, E = problem
    saved = module.HALF_PRODUCT_PRIVATE_BUDGET
    module.HALF_PRODUCT_PRIVATE_BUDGET = 0
    try:
        assert_matches_reference(X, k, None, metric=metric, exclude=None, num_threads=2)
    finally:
        module.HALF_PRODUCT_PRIVATE_BUDGET = saved


def test_half_product_is_taken_for_dense_products():
    # many multiply-adds per produced pair: the kernel forms each pair once (both code paths)
    import recforge.kernels.similarity as module
    rng = np.random.default_rng(12)
    X = random_csr(rng, 60, 8, 0.9)
    Xt = X.T.tocsr()
    assert module._half_product_pays(X, np.diff(Xt.indptr), 1)
    for budget in (0, module.HALF_PRODUCT_PRIVATE_BUDGET):
        saved = module.HALF_PRODUCT_PRIVATE_BUDGET
        module.HALF_PRODUCT_PRIVATE_BUDGET = budget
        try:
            assert_matches_reference(X, 5, metric="cosine", num_threads=2)
            assert_matches_reference(X, 5, metric="pearson", num_threads=2,
                                     exclude=sp.random(60, 60, density=0.2, format="csr", random_state=1))
        finally:
            module.HALF_PRODUCT_PRIVATE_BUDGET = saved


def test_fewer_openmp_threads_than_requested(tmp_path):
    # OMP_THREAD_LIMIT caps the team below num_threads: results must not change (nor crash)
    import os
    import subprocess
    import sys
    code = (
        "import numpy as np, scipy.sparse as sp\n"
        "from recforge.kernels import similarity_topk\n"
        "X = sp.random(300, 20, density=0.8, format='csr', random_state=0, dtype=np.float32)\n"
        "a = similarity_topk(X, 5, num_threads=4)\n"
        "np.save(r'%s', np.concatenate([a.indptr, a.indices]).astype(np.float64))\n"
        "np.save(r'%s', a.data)\n" % (tmp_path / "idx.npy", tmp_path / "val.npy"))
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
    X = sp.random(300, 20, density=0.8, format="csr", random_state=0, dtype=np.float32)
    b = similarity_topk(X, 5, num_threads=1)
    np.testing.assert_array_equal(np.load(tmp_path / "idx.npy"), np.concatenate([b.indptr, b.indices]))
    np.testing.assert_array_equal(np.load(tmp_path / "val.npy"), b.data)


@settings(max_examples=60, deadline=None)
@given(problems(), st.integers(1, 7))
def test_half_product_equals_row_blocks_bit_for_bit(problem, block):
    """Y=None may form each pair once (the half product); every row must still get the same
    scores, to the last bit, as when its rows are computed as separate blocks against X
    (what recforge.distributed does), whatever the metric."""
    import recforge.kernels.similarity as module
    X, _, k, metric, _ = problem
    assume(metric != "adjusted_cosine")  # centres columns over X and Y: blocks differ by definition
    m = X.shape[0]
    for budget in (0, module.HALF_PRODUCT_PRIVATE_BUDGET):
        saved, ratio = module.HALF_PRODUCT_PRIVATE_BUDGET, module._half_product_pays.__defaults__
        module.HALF_PRODUCT_PRIVATE_BUDGET = budget
        module._half_product_pays.__defaults__ = (0.0,)      # always take the half product
        try:
            whole = similarity_topk(X, k, metric=metric, num_threads=2)
        finally:
            module.HALF_PRODUCT_PRIVATE_BUDGET = saved
            module._half_product_pays.__defaults__ = ratio
        parts = []
        for start in range(0, m, block):
            rows = np.arange(start, min(m, start + block))
            itself = sp.csr_matrix((np.ones(rows.size), (np.arange(rows.size), rows)), shape=(rows.size, m))
            parts.append(similarity_topk(X[rows], k, X, metric=metric, exclude=itself, num_threads=1))
        blocks = sp.vstack(parts).tocsr() if parts else whole
        np.testing.assert_array_equal(whole.indptr, blocks.indptr)
        np.testing.assert_array_equal(whole.indices, blocks.indices)
        np.testing.assert_array_equal(whole.data, blocks.data)


def test_the_core_is_called_by_keyword_with_one_enum_of_kinds():
    from recforge import _core

    assert [k.name for k in _core.SimilarityKind.__members__.values()] == ["dot", "jaccard", "pearson", "msd"]
    X = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1]], dtype=np.float32))
    Xt = X.T.tocsr()
    with pytest.raises(TypeError):  # positional arguments are refused (a swapped flag cannot slip through)
        _core.similarity_topk(X.indptr, X.indices, X.data, 2, 3, Xt.indptr, Xt.indices, Xt.data, 2,
                              _core.SimilarityKind.dot, False, 1)
    indptr, indices, data = _core.similarity_topk(
        x_indptr=X.indptr, x_indices=X.indices, x_data=X.data, m=2, d=3, yt_indptr=Xt.indptr,
        yt_indices=Xt.indices, yt_data=Xt.data, n=2, kind=_core.SimilarityKind.dot, k=1, exclude_self=True,
        num_threads=1)
    assert indices.tolist() == [1, 0] and data.tolist() == [1.0, 1.0]  # the rows share column 0


@pytest.mark.parametrize("bad", ["strided", "dtype", "length"])
def test_the_core_checks_the_layout_of_what_it_reads(bad):
    from recforge import _core

    X = sp.csr_matrix(np.array([[1, 2, 0], [3, 0, 4]], dtype=np.float32))
    data = {"strided": np.repeat(X.data, 2)[::2], "dtype": X.data.astype(np.float16),
            "length": X.data[:2]}[bad]
    with pytest.raises(ValueError, match="data|stored entries"):
        _core.row_square_sums(indptr=X.indptr, data=data, num_threads=1)


def test_check_input_false_skips_only_the_structural_check():
    X = sp.random(30, 20, density=0.2, format="csr", random_state=3, dtype=np.float32)
    a = similarity_topk(X, 5, num_threads=2)
    b = similarity_topk(X, 5, num_threads=2, check_input=False)
    assert (a != b).nnz == 0
    X.data[0] = np.nan  # values are still checked
    with pytest.raises(ValueError, match="NaN"):
        similarity_topk(X, 5, check_input=False)


def test_columns_beyond_int32_are_compacted_not_allocated():
    """2**31 + 5 declared columns, three used: the transposed operand must not hold 2**31 offsets."""
    W = sp.csr_matrix((3, 2 ** 31 + 5), dtype=np.float32)
    cols = np.array([7, 2 ** 31 + 1, 2 ** 31 + 4], dtype=np.int64)
    W.indptr = np.array([0, 2, 3, 5], dtype=np.int64)
    W.indices = np.array([cols[0], cols[2], cols[1], cols[0], cols[1]], dtype=np.int64)
    W.data = np.array([1, 2, 3, 4, 5], dtype=np.float32)
    S = similarity_topk(W, 2, metric="dot", num_threads=1).toarray()
    # rows: {7: 1, c2: 2}, {c1: 3}, {7: 4, c1: 5}
    np.testing.assert_array_equal(S, [[0, 0, 4], [0, 0, 15], [4, 15, 0]])


def _at_odd_address(a: np.ndarray, offset: int = 10) -> np.ndarray:
    """A copy of ``a`` starting ``offset`` bytes past a 64-byte boundary (as Dask can unpickle it)."""
    buf = np.zeros(a.nbytes + 128, dtype=np.uint8)
    start = (-buf.ctypes.data) % 64 + offset
    out = buf[start:start + a.nbytes].view(a.dtype)
    out[...] = a
    return out


@pytest.mark.parametrize("metric", ["cosine", "dot", "jaccard"])
def test_unaligned_arrays_give_the_aligned_result(metric):
    rng = np.random.default_rng(7)
    X = random_csr(rng, 40, 30, 0.2)
    odd = X.copy()          # scipy's constructor would copy the arrays: set them as unpickling does
    odd.data, odd.indices, odd.indptr = (_at_odd_address(X.data), _at_odd_address(X.indices),
                                         _at_odd_address(X.indptr, 4))
    assert not odd.data.flags.aligned and not odd.indices.flags.aligned
    from recforge.kernels._validation import as_csr
    checked = as_csr(odd, "X")     # aligned once here, not on every pass of the call
    assert checked.data.flags.aligned and checked.indices.flags.aligned and checked.indptr.flags.aligned
    want = similarity_topk(X, 5, metric=metric, num_threads=2)
    got = similarity_topk(odd, 5, metric=metric, num_threads=2)
    assert np.array_equal(got.indptr, want.indptr) and np.array_equal(got.indices, want.indices)
    assert np.array_equal(got.data, want.data)
    assert_matches_reference(odd, 5, metric=metric)
