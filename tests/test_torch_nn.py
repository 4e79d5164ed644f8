"""recforge.torch.nn.LightGCNPropagation against a dense reference; gradients reach the embedding table."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recforge.kernels import normalize_adjacency

torch = pytest.importorskip("torch")
from recforge.torch import nn as rnn  # noqa: E402


def graph(users=6, items=5, seed=0):
    rng = np.random.default_rng(seed)
    return normalize_adjacency(sp.csr_matrix((rng.random((users, items)) < 0.4).astype(np.float64)))


def dense_layers(A, E, weights):
    A = A.toarray()
    out, x = weights[0] * E, E
    for w in weights[1:]:
        x = A @ x
        out = out + w * x
    return out


@pytest.mark.parametrize("combine, layers, weights", [("mean", 3, [0.25] * 4), ("sum", 2, [1.0] * 3),
                                                      ([0.2, 0.0, 0.8], 2, [0.2, 0.0, 0.8])])
def test_forward_and_gradient_to_the_table(combine, layers, weights):
    A = graph()
    n = A.shape[0]
    table = torch.nn.Embedding(n, 4, dtype=torch.float64)
    layer = rnn.LightGCNPropagation(A, layers, combine)
    out = layer(table.weight)
    E = table.weight.detach().numpy()
    np.testing.assert_allclose(out.detach().numpy(), dense_layers(A, E, weights), rtol=1e-12, atol=1e-12)
    W = np.random.default_rng(1).standard_normal((n, 4))
    (out * torch.from_numpy(W)).sum().backward()
    np.testing.assert_allclose(table.weight.grad.numpy(), dense_layers(A, W, weights), rtol=1e-12, atol=1e-12)
    assert list(layer.parameters()) == []


def test_torch_sparse_path_matches_the_kernel():
    # the non-CPU path (torch.sparse products) is exercised on the CPU through its helper
    A = graph(seed=2)
    layer = rnn.LightGCNPropagation(A, 2)
    E = torch.randn(A.shape[0], 3, dtype=torch.float64, requires_grad=True)
    M = layer._device_adjacency(E.device, E.dtype)
    manual = 1 / 3 * (E + torch.sparse.mm(M, E) + torch.sparse.mm(M, torch.sparse.mm(M, E)))
    np.testing.assert_allclose(manual.detach().numpy(), layer(E).detach().numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_forward_and_backward_match_the_cpu_kernel():
    A = graph(seed=3)
    E = torch.randn(A.shape[0], 8, dtype=torch.float32)
    layer = rnn.LightGCNPropagation(A, 3)
    cpu_E, gpu_E = E.clone().requires_grad_(), E.cuda().requires_grad_()
    layer(cpu_E).square().sum().backward()
    out = layer(gpu_E)
    out.square().sum().backward()
    np.testing.assert_allclose(out.detach().cpu().numpy(), layer(E).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gpu_E.grad.cpu().numpy(), cpu_E.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_bad_input():
    with pytest.raises(ValueError, match="adjacency must be square"):
        rnn.LightGCNPropagation(sp.csr_matrix((3, 4)), 1)
    with pytest.raises(ValueError, match="layers must be >= 0"):
        rnn.LightGCNPropagation(graph(), -1)
    with pytest.raises(ValueError, match="combine"):
        rnn.LightGCNPropagation(graph(), 1, "median")
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        rnn.Nope  # noqa: B018


def test_package_layout():
    # that importing recforge.torch (and its samplers) imports no torch: test_torch_propagate.py
    import recforge.torch as rt
    from recforge.torch.nn import LightGCNPropagation

    assert rt.nn.LightGCNPropagation is LightGCNPropagation
    assert callable(rt.train.fit_loop) and callable(rt.losses.bpr) and callable(rt.autograd.propagate)
    assert rt.propagate is rt.autograd.propagate
