"""normalize_adjacency, spmm and propagate against dense numpy references."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import data_file
from hypothesis import given, settings
from hypothesis import strategies as st

from recforge import _core
from recforge.kernels import normalize_adjacency, propagate, spmm
from recforge.kernels import _validation as v

ISAS = [isa for isa in (0, 1, 2) if isa <= _core.graph_isa()]  # portable, AVX2+FMA, AVX-512


def dense_adjacency(R: np.ndarray) -> np.ndarray:
    """D^-1/2 [[0, R], [R^T, 0]] D^-1/2 with 1/sqrt(0) taken as 0, in float64."""
    U, I = R.shape
    B = np.zeros((U + I, U + I))
    B[:U, U:] = R
    B[U:, :U] = R.T
    deg = B.sum(axis=1)
    inv = np.zeros_like(deg)
    inv[deg > 0] = deg[deg > 0] ** -0.5
    return inv[:, None] * B * inv[None, :]


def dense_propagate(A: np.ndarray, E: np.ndarray, weights) -> np.ndarray:
    out, x = weights[0] * E, E
    for w in weights[1:]:
        x = A @ x
        out = out + w * x
    return out


def random_interactions(rng, users, items, density, weighted=False):
    R = (rng.random((users, items)) < density).astype(np.float64)
    if weighted:
        R *= rng.integers(1, 5, size=R.shape)
    return R


def test_normalize_adjacency_hand_worked():
    # R = [[1, 1], [0, 1]]: user degrees 2, 1; item degrees 1, 2.
    # a(u0, i0) = 1/sqrt(2*1), a(u0, i1) = 1/sqrt(2*2) = 1/2, a(u1, i1) = 1/sqrt(1*2); nodes u0 u1 i0 i1.
    A = normalize_adjacency(sp.csr_matrix(np.array([[1.0, 1.0], [0.0, 1.0]])))
    s = 1 / np.sqrt(2)
    expected = np.array([[0, 0, s, 0.5], [0, 0, 0, s], [s, 0, 0, 0], [0.5, s, 0, 0]])
    np.testing.assert_allclose(A.toarray(), expected, rtol=1e-12)
    assert A.dtype == np.float64


@settings(max_examples=40, deadline=None)
@given(users=st.integers(1, 25), items=st.integers(1, 25), density=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
       weighted=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_normalize_adjacency_matches_dense_reference(users, items, density, weighted, seed):
    R = random_interactions(np.random.default_rng(seed), users, items, density, weighted)
    R[0] = 0  # an isolated user (and, when users > 1, possibly isolated items)
    A = normalize_adjacency(sp.csr_matrix(R))
    assert A.shape == (users + items, users + items)
    dense = A.toarray()
    assert np.isfinite(dense).all()
    np.testing.assert_allclose(dense, dense_adjacency(R), rtol=1e-12, atol=0)
    assert A.indptr[1] == A.indptr[0]  # isolated row 0 is empty
    assert A.has_canonical_format
    assert np.count_nonzero(np.diag(dense)) == 0


def test_normalize_adjacency_dtypes_and_errors():
    assert normalize_adjacency(sp.csr_matrix(np.ones((2, 3), dtype=np.int64))).dtype == np.float32
    with pytest.raises(ValueError, match="R must not contain negative"):
        normalize_adjacency(sp.csr_matrix(np.array([[1.0, -1.0]])))
    with pytest.raises(ValueError, match="R contains NaN"):
        normalize_adjacency(sp.csr_matrix(np.array([[1.0, np.nan]])))
    with pytest.raises(TypeError, match="R must be a scipy.sparse"):
        normalize_adjacency(np.ones((2, 2)))


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(0, 40), cols=st.integers(1, 40), d=st.sampled_from([1, 3, 16, 32, 33, 64, 128]),
       density=st.sampled_from([0.0, 0.05, 0.3, 1.0]), dtype=st.sampled_from([np.float32, np.float64]),
       wide=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_spmm_matches_dense_product(rows, cols, d, density, dtype, wide, seed):
    rng = np.random.default_rng(seed)
    A = sp.random(rows, cols, density=density, format="csr", random_state=seed, dtype=dtype)
    if wide:  # int64 indices take the int64 path of the core; set after construction, since
        # sp.csr_matrix((d, i64, i64)) narrows them back to int32
        A.indices, A.indptr = A.indices.astype(np.int64), A.indptr.astype(np.int64)
        assert A.indices.dtype == np.int64
    B = rng.standard_normal((cols, d)).astype(dtype)
    Y = spmm(A, B, num_threads=2)
    assert Y.dtype == dtype and Y.shape == (rows, d)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(Y, A.toarray().astype(np.float64) @ B.astype(np.float64), rtol=tol, atol=tol)


COMBINES = [("mean", 3), ("sum", 2), ("last", 3), ("last", 1), ("mean", 0), ([0.5, 0.0, 2.0], 2),
            ([0.0, 0.0, 0.0], 2), ([0.0, 1.0, 0.0, 0.0], 3), ([2.0, 0.0], 1)]


def weights_of(combine, layers):
    if combine == "mean":
        return [1 / (layers + 1)] * (layers + 1)
    if combine == "sum":
        return [1.0] * (layers + 1)
    if combine == "last":
        return [0.0] * layers + [1.0]
    return combine


@pytest.mark.parametrize("combine, layers", COMBINES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_propagate_matches_dense_reference(combine, layers, dtype):
    rng = np.random.default_rng(layers)
    R = random_interactions(rng, 30, 20, 0.15)
    A = normalize_adjacency(sp.csr_matrix(R.astype(dtype)))
    E = rng.standard_normal((50, 64)).astype(dtype)
    out = propagate(A, E, layers, combine=combine, num_threads=2)
    expected = dense_propagate(dense_adjacency(R), E.astype(np.float64), weights_of(combine, layers))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("d", [5, 16, 64, 100])
@pytest.mark.parametrize("block_bytes", [0, 512, 4096])  # 0: one pass; else column blocks of E
def test_every_row_loop_matches_reference(isa, d, block_bytes):
    rng = np.random.default_rng(d)
    R = random_interactions(rng, 60, 45, 0.1)
    A = normalize_adjacency(sp.csr_matrix(R.astype(np.float32)))
    E = rng.standard_normal((105, d)).astype(np.float32)
    for weights in ([0.25] * 4, [0.0, 0.0, 1.0], [1.0, 2.0]):
        out = _core.propagate(indptr=A.indptr, indices=A.indices, data=A.data, rows=A.shape[0], E=E,
                              weights=weights, num_threads=2, isa=isa, block_bytes=block_bytes)
        expected = dense_propagate(dense_adjacency(R), E.astype(np.float64), weights)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(users=st.integers(1, 20), items=st.integers(1, 20), layers=st.integers(0, 4), d=st.integers(1, 40),
       seed=st.integers(0, 2**31 - 1))
def test_propagate_property(users, items, layers, d, seed):
    rng = np.random.default_rng(seed)
    R = random_interactions(rng, users, items, 0.2, weighted=True)
    A = normalize_adjacency(sp.csr_matrix(R))
    E = rng.standard_normal((users + items, d))
    weights = list(rng.standard_normal(layers + 1))
    out = propagate(A, E, layers, combine=weights)
    np.testing.assert_allclose(out, dense_propagate(dense_adjacency(R), E, weights), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((sp.csr_matrix((3, 4)), np.ones((3, 2)), 2), {}, ValueError, "A must be square"),
    ((sp.eye(3, format="csr"), np.ones((4, 2)), 2), {}, ValueError, "E must have one row per node"),
    ((sp.eye(3, format="csr"), np.full((3, 2), np.nan), 2), {}, ValueError, "E contains NaN"),
    ((sp.eye(3, format="csr"), np.ones((3, 2)), -1), {}, ValueError, "layers must be >= 0"),
    ((sp.eye(3, format="csr"), np.ones((3, 2)), 1.0), {}, TypeError, "layers must be an integer"),
    ((sp.eye(3, format="csr"), np.ones((3, 2)), 2), {"combine": "max"}, ValueError, "combine"),
    ((sp.eye(3, format="csr"), np.ones((3, 2)), 2), {"combine": [1.0, 2.0]}, ValueError, "3 weights"),
    ((sp.eye(3, format="csr"), np.ones((3, 2)), 1), {"combine": [1.0, np.inf]}, ValueError, "finite"),
    ((np.eye(3), np.ones((3, 2)), 1), {}, TypeError, "A must be a scipy.sparse"),
    ((sp.eye(3, format="csr"), np.ones(3), 1), {}, ValueError, "E must be 2-D"),
])
def test_propagate_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        propagate(*args, **kwargs)


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 50), cols=st.integers(1, 300), d=st.sampled_from([1, 7, 32, 64]),
       density=st.sampled_from([0.01, 0.1, 0.5]), block_bytes=st.integers(1, 5000),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31 - 1))
def test_column_blocked_spmm_matches_dense_product(rows, cols, d, density, block_bytes, dtype, seed):
    rng = np.random.default_rng(seed)
    A = sp.random(rows, cols, density=density, format="csr", random_state=seed, dtype=dtype)
    B = rng.standard_normal((cols, d)).astype(dtype)
    Y = _core.spmm(indptr=A.indptr, indices=A.indices, data=A.data, rows=rows, B=B, num_threads=2,
                   block_bytes=block_bytes)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(Y, A.toarray().astype(np.float64) @ B.astype(np.float64), rtol=tol, atol=tol)


def test_spmm_bad_input():
    with pytest.raises(ValueError, match="A has 3 columns but B has 4 rows"):
        spmm(sp.eye(3, format="csr"), np.ones((4, 2)))
    with pytest.raises(ValueError, match="B contains NaN"):
        spmm(sp.eye(3, format="csr"), np.full((3, 2), np.inf))


def read_lightgcn_train(path) -> sp.csr_matrix:
    users, items = [], []
    for line in path.read_text().split("\n"):
        parts = line.split()
        if len(parts) > 1:
            users += [int(parts[0])] * (len(parts) - 1)
            items += [int(p) for p in parts[1:]]
    R = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)))
    R.sum_duplicates()
    R.data[:] = 1
    return R


def test_gowalla_adjacency_and_one_layer_against_scipy():
    R = read_lightgcn_train(data_file("lightgcn-gowalla", "train.txt"))
    A = normalize_adjacency(R)
    U, I = R.shape
    assert A.shape == (U + I, U + I) and A.nnz == 2 * R.nnz
    diff = A - A.T
    assert abs(diff).max() == 0  # exactly symmetric
    # Spot-check entries: a(u, U + i) = 1 / sqrt(deg u * deg i) for binary R.
    du, di = np.asarray(R.sum(axis=1)).ravel(), np.asarray(R.sum(axis=0)).ravel()
    coo = R.tocoo()
    pick = np.random.default_rng(0).choice(R.nnz, 1000, replace=False)
    u, i = coo.row[pick], coo.col[pick]
    np.testing.assert_allclose(np.asarray(A[u, U + i]).ravel(), 1 / np.sqrt(du[u] * di[i]), rtol=1e-6)
    E = np.random.default_rng(1).standard_normal((U + I, 32)).astype(np.float32)
    A64 = v.with_value_dtype(A, np.float64)
    expected = dense_free_mean(A64, E.astype(np.float64), 2)
    np.testing.assert_allclose(propagate(A, E, 2), expected, rtol=1e-4, atol=1e-5)


def dense_free_mean(A, E, layers):
    """LightGCN mean with scipy's sparse product (single-threaded, float64)."""
    out, x = E.copy(), E
    for _ in range(layers):
        x = A @ x
        out += x
    return out / (layers + 1)


def test_results_larger_than_memory_are_refused_by_name():
    """A few stored entries may declare dimensions whose result (offsets per node, rows x d) no
    machine holds: a ValueError naming the operand, not a MemoryError or the OOM killer."""
    with pytest.raises(ValueError, match="R asks for"):
        normalize_adjacency(sp.csr_matrix((3, 2 ** 40), dtype=np.float32))
    with pytest.raises(ValueError, match="A asks for"):
        spmm(sp.csr_matrix((10 ** 8, 3), dtype=np.float32), np.ones((3, 10 ** 5), np.float32))
