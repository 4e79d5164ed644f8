"""recforge.torch.propagate: forward against a dense reference, gradcheck, bad input."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from recforge.kernels import normalize_adjacency

torch = pytest.importorskip("torch")
import recforge.torch as rt  # noqa: E402


def small_graph(users=7, items=5, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    R = (rng.random((users, items)) < 0.4).astype(dtype)
    R[0] = 0  # an isolated user
    return normalize_adjacency(sp.csr_matrix(R))


def dense_reference(A, E, weights):
    A = A.toarray().astype(np.float64)
    out, x = weights[0] * E, E
    for w in weights[1:]:
        x = A @ x
        out = out + w * x
    return out


@pytest.mark.parametrize("combine, layers, weights", [
    ("mean", 3, [0.25] * 4), ("sum", 2, [1.0] * 3), ("last", 2, [0.0, 0.0, 1.0]), ([0.5, -1.0], 1, [0.5, -1.0]),
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_and_backward_match_dense_reference(combine, layers, weights, dtype):
    A = small_graph()
    n = A.shape[0]
    E = torch.randn(n, 6, dtype=dtype, generator=torch.Generator().manual_seed(1), requires_grad=True)
    out = rt.propagate(A, E, layers, combine)
    assert out.dtype == dtype and out.shape == E.shape
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    expected = dense_reference(A, E.detach().double().numpy(), weights)
    np.testing.assert_allclose(out.detach().double().numpy(), expected, rtol=tol, atol=tol)
    # d/dE sum(out * W) = sum_l w_l (A^l)^T W, and A is symmetric.
    W = torch.randn(n, 6, dtype=dtype, generator=torch.Generator().manual_seed(2))
    (out * W).sum().backward()
    Ad = A.toarray().astype(np.float64)
    grad, x = weights[0] * W.double().numpy(), W.double().numpy()
    for w in weights[1:]:
        x = Ad.T @ x
        grad = grad + w * x
    np.testing.assert_allclose(E.grad.double().numpy(), grad, rtol=tol, atol=tol)


@pytest.mark.parametrize("combine, layers", [("mean", 2), ("sum", 3), ("last", 1), ([0.3, 0.0, 1.5], 2)])
def test_gradcheck(combine, layers):
    A = small_graph(seed=layers)
    E = torch.randn(A.shape[0], 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    assert torch.autograd.gradcheck(lambda e: rt.propagate(A, e, layers, combine, num_threads=1), (E,), eps=1e-6, atol=1e-8)


def test_torch_sparse_adjacency_and_non_contiguous_input():
    A = small_graph()
    n = A.shape[0]
    A_t = torch.sparse_csr_tensor(torch.from_numpy(A.indptr.astype(np.int64)), torch.from_numpy(A.indices.astype(np.int64)),
                                  torch.from_numpy(A.data), size=A.shape)
    E = torch.randn(4, n, dtype=torch.float64).T  # non-contiguous view
    expected = dense_reference(A, E.numpy(), [0.5, 0.5])
    np.testing.assert_allclose(rt.propagate(A_t, E, 1).numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(rt.propagate(A_t.to_sparse_coo(), E, 1).numpy(), expected, rtol=1e-12)


def test_bad_input():
    A = small_graph()
    n = A.shape[0]
    E = torch.zeros(n, 2)
    with pytest.raises(ValueError, match="A must be square"):
        rt.propagate(sp.csr_matrix((n, n + 1)), E, 1)
    with pytest.raises(ValueError, match="A must be symmetric"):
        rt.propagate(sp.csr_matrix(np.triu(np.ones((n, n)))), E, 1)
    with pytest.raises(ValueError, match="E must have one row per node"):
        rt.propagate(A, torch.zeros(n + 1, 2), 1)
    with pytest.raises(ValueError, match="E contains NaN"):
        rt.propagate(A, torch.full((n, 2), float("nan")), 1)
    with pytest.raises(TypeError, match="E must be a torch.Tensor"):
        rt.propagate(A, np.zeros((n, 2)), 1)
    with pytest.raises(TypeError, match="E must be float32 or float64"):
        rt.propagate(A, torch.zeros(n, 2, dtype=torch.int64), 1)
    with pytest.raises(ValueError, match="combine"):
        rt.propagate(A, E, 1, "median")
    with pytest.raises(TypeError, match="dense tensor"):
        rt.propagate(torch.eye(n), E, 1)


def test_importing_recforge_does_not_import_torch():
    code = ("import sys, recforge, recforge.kernels, recforge.torch\n"
            "from recforge.torch import propagate, samplers\n"
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
