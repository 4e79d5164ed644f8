"""Every kernel finding of issue 12, reproduced: each crashed, read out of bounds or answered
wrongly before the kernels validated their input. The calls run in a child process
(tests/crash_isolation.py), so a crash fails the test instead of killing pytest."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from crash_isolation import assert_rejected, run_cases

MALFORMED = {
    "similarity_index_too_large": """
        X = sp.csr_matrix((np.ones(3, np.float32), np.array([0, 1, 2]), np.array([0, 2, 3])), shape=(2, 3))
        X.indices[1] = 1_000_000
        similarity_topk(X, 5)
    """,
    "similarity_index_negative": """
        X = sp.csr_matrix((np.ones(3, np.float32), np.array([0, 1, 2]), np.array([0, 2, 3])), shape=(2, 3))
        X.indices[0] = -7
        similarity_topk(X, 5)
    """,
    "similarity_Y_index_too_large": """
        X = sp.random(4, 5, density=0.5, format="csr", random_state=0, dtype=np.float32)
        Y = sp.random(3, 5, density=0.6, format="csr", random_state=1, dtype=np.float32)
        Y.indices[-1] = 50
        similarity_topk(X, 2, Y)
    """,
    "similarity_indptr_decreasing": """
        X = sp.csr_matrix((np.ones(4, np.float32), np.array([0, 1, 2, 0]), np.array([0, 2, 4])), shape=(2, 3))
        X.indptr[1] = 5
        similarity_topk(X, 5)
    """,
    "similarity_indptr_not_starting_at_zero": """
        X = sp.csr_matrix((np.ones(4, np.float32), np.array([0, 1, 2, 0]), np.array([0, 2, 4])), shape=(2, 3))
        X.indptr[0] = 1
        similarity_topk(X, 5)
    """,
    "similarity_indptr_beyond_indices": """
        X = sp.csr_matrix((np.ones(4, np.float32), np.array([0, 1, 2, 0]), np.array([0, 2, 4])), shape=(2, 3))
        X.indptr[2] = 400
        similarity_topk(X, 5)
    """,
    "propagate_index_too_large": """
        A = sp.csr_matrix(np.array([[0, 1], [1, 0]], np.float32))
        A.indices[0] = 10_000_000
        propagate(A, np.ones((2, 3), np.float32), 2)
    """,
    "spmm_indptr_not_starting_at_zero": """
        A = sp.csr_matrix(np.array([[0, 1], [1, 0]], np.float32))
        A.indptr[0] = 1
        spmm(A, np.ones((2, 3), np.float32))
    """,
    "dense_exclude_index_beyond_V": """
        E = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 1, 0, 0]], np.float32))
        E.indices[1] = 9
        dense_topk(np.ones((2, 3), np.float32), np.ones((4, 3), np.float32), 3, exclude=E)
    """,
    "dense_exclude_indptr_not_starting_at_zero": """
        E = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 1, 0, 0]], np.float32))
        E.indptr[0] = 1
        dense_topk(np.ones((2, 3), np.float32), np.ones((4, 3), np.float32), 3, exclude=E)
    """,
    "similarity_exclude_index_beyond_n": """
        X = sp.random(6, 5, density=0.6, format="csr", random_state=0, dtype=np.float32)
        E = sp.csr_matrix(np.eye(6, dtype=np.float32))
        E.indices[2] = 1_000_000
        similarity_topk(X, 3, exclude=E)
    """,
    "similarity_exclude_index_negative": """
        X = sp.random(6, 5, density=0.6, format="csr", random_state=0, dtype=np.float32)
        E = sp.csr_matrix(np.eye(6, dtype=np.float32))
        E.indices[2] = -100_000
        similarity_topk(X, 3, exclude=E)
    """,
    "similarity_exclude_indptr_not_starting_at_zero": """
        X = sp.random(6, 5, density=0.6, format="csr", random_state=0, dtype=np.float32)
        E = sp.csr_matrix(np.eye(6, dtype=np.float32))
        E.indptr[0] = 1
        similarity_topk(X, 3, exclude=E)
    """,
}

NAMED = {
    "similarity_index_too_large": "X.indices", "similarity_index_negative": "X.indices",
    "similarity_Y_index_too_large": "Y.indices", "similarity_indptr_decreasing": "X.indptr",
    "similarity_indptr_not_starting_at_zero": "X.indptr", "similarity_indptr_beyond_indices": "X.indptr",
    "propagate_index_too_large": "A.indices", "spmm_indptr_not_starting_at_zero": "A.indptr",
    "dense_exclude_index_beyond_V": "exclude.indices",
    "dense_exclude_indptr_not_starting_at_zero": "exclude.indptr",
    "similarity_exclude_index_beyond_n": "exclude.indices",
    "similarity_exclude_index_negative": "exclude.indices",
    "similarity_exclude_indptr_not_starting_at_zero": "exclude.indptr",
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_sparse_input_is_a_value_error_naming_the_array(case):
    outcome = run_cases({case: MALFORMED[case]})[case]  # one child each: a crash names its case
    assert_rejected(outcome, NAMED[case], errors=("ValueError",))


def _cosine_reference(D: np.ndarray) -> np.ndarray:
    D = D.astype(np.float64)
    norms = np.linalg.norm(D, axis=1)
    return D @ D.T / np.outer(norms, norms)


LAYOUTS = {
    "reversed_data": """
        data = np.arange(1, 7, dtype=np.float32)[::-1]
        X = sp.csr_matrix((data, np.array([0, 1, 2, 0, 1, 2]), np.array([0, 3, 6])), shape=(2, 3))
    """,
    "strided_all": """
        data = np.repeat(np.arange(1, 7, dtype=np.float32), 2)[::2]
        indices = np.repeat(np.array([0, 1, 2, 0, 1, 2], np.int32), 3)[::3]
        indptr = np.repeat(np.array([0, 3, 6], np.int32), 2)[::2]
        X = sp.csr_matrix((data, indices, indptr), shape=(2, 3))
    """,
    "reversed_indices_indptr": """
        X = sp.csr_matrix((np.arange(1, 7, dtype=np.float32), np.array([2, 1, 0, 2, 1, 0], np.int32)[::-1],
                           np.array([6, 3, 0], np.int32)[::-1]), shape=(2, 3))
    """,
    "read_only": """
        X = sp.csr_matrix((np.arange(1, 7, dtype=np.float32), np.array([0, 1, 2, 0, 1, 2]), np.array([0, 3, 6])),
                          shape=(2, 3))
        for a in (X.data, X.indices, X.indptr):
            a.flags.writeable = False
    """,
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("metric", ["cosine", "dot", "bm25"])
def test_strided_reversed_and_read_only_arrays_are_read_as_they_are(layout, metric):
    cases = {"run": LAYOUTS[layout] + f"""
        dense = X.toarray().tolist()
        S = similarity_topk(X, 1, metric={metric!r}, num_threads=2)
        result = [dense, S.toarray().tolist()]
    """}
    out = run_cases(cases)["run"]
    assert out["ok"], out
    dense, got = (np.array(a) for a in out["value"])
    if layout != "reversed_data":
        assert np.array_equal(dense, [[1, 2, 3], [4, 5, 6]])
    if metric == "cosine":
        expected = _cosine_reference(dense)
        # the example of the issue: cosine 0.98995 between [6, 5, 4] and [3, 2, 1]
        assert got[0, 1] == pytest.approx(expected[0, 1], rel=1e-5)
        assert got[1, 0] == pytest.approx(expected[1, 0], rel=1e-5)
    elif metric == "dot":
        assert got[0, 1] == pytest.approx(float(dense[0] @ dense[1]), rel=1e-6)
    else:
        assert got[0, 1] == pytest.approx(got[1, 0], rel=1e-5) and np.isfinite(got).all()


def test_float32_overflowing_products_give_finite_cosine_and_a_clear_dot_error():
    setup_x = "X = sp.csr_matrix(np.array([[1e20, 1e20], [1e20, -1e20], [1e20, 1e20]], np.float32))\n"
    out = run_cases({
        "cosine": setup_x + "S = similarity_topk(X, 2, metric='cosine'); result = S.toarray().tolist()",
        "pearson": setup_x + "S = similarity_topk(X, 2, metric='pearson'); result = S.toarray().tolist()",
        "dot": setup_x + "similarity_topk(X, 2, metric='dot')",
    })
    assert out["cosine"]["ok"], out["cosine"]
    got = np.array(out["cosine"]["value"])
    assert np.isfinite(got).all()
    # rows 0 and 2 are parallel (cosine 1), row 1 is orthogonal to both (cosine 0: not returned)
    assert got[0, 2] == pytest.approx(1.0, rel=1e-6) and got[2, 0] == pytest.approx(1.0, rel=1e-6)
    assert got[0, 1] == 0 and got[1, 0] == 0 and got[1, 2] == 0
    assert out["pearson"]["ok"] and np.isfinite(np.array(out["pearson"]["value"])).all()
    assert_rejected(out["dot"], "overflow", errors=("ValueError",))


def test_memory_follows_the_output_not_k():
    """15,000 x 15,000 with 3 values per row: k = 10**9 must cost about what k = 10 costs."""
    out = run_cases({"peak": """
        import resource
        rng = np.random.default_rng(0)
        n = 15_000
        cols = np.concatenate([rng.choice(n, 3, replace=False) for _ in range(n)])
        X = sp.csr_matrix((np.ones(3 * n, np.float32), cols, np.arange(0, 3 * n + 1, 3)), shape=(n, n))
        small = similarity_topk(X, 10, num_threads=2)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        big = similarity_topk(X, 10 ** 9, num_threads=2)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result = [(after - before) * 1024, int(big.nnz), int(small.nnz), int(big.data.nbytes)]
    """}, timeout=300)["peak"]
    assert out["ok"], out
    grown, big_nnz, small_nnz, _ = out["value"]
    assert big_nnz >= small_nnz > 0
    assert grown < 100 * 2 ** 20, f"peak RSS grew by {grown / 2 ** 20:.0f} MiB for k = 10**9"


def test_absurd_thread_counts_do_not_crash():
    X = "X = sp.random(50, 40, density=0.2, format='csr', random_state=0, dtype=np.float32)\n"
    out = run_cases({
        "similarity": X + "result = similarity_topk(X, 3, num_threads=100_000).toarray().tolist()",
        "reference": X + "result = similarity_topk(X, 3, num_threads=1).toarray().tolist()",
        "dense": "result = dense_topk(np.eye(4), np.eye(4), 2, num_threads=100_000)[0].tolist()",
        "spmm": "result = spmm(sp.eye(4, format='csr'), np.ones((4, 2)), num_threads=100_000).tolist()",
        "huge": X + "similarity_topk(X, 3, num_threads=10 ** 30)",
    })
    for name in ("similarity", "dense", "spmm"):
        outcome = out[name]
        if not outcome["ok"]:  # rejected: the message must name the argument
            assert_rejected(outcome, "num_threads", errors=("ValueError",))
    if out["similarity"]["ok"]:
        assert out["similarity"]["value"] == out["reference"]["value"]
    if out["dense"]["ok"]:
        assert out["dense"]["value"] == [[0, 1], [1, 0], [2, 0], [3, 0]]
    huge = out["huge"]
    assert huge["ok"] or huge["error"] in ("ValueError", "OverflowError", "TypeError"), huge
