"""recforge.torch.losses against hand computations with python's math on small batches."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
from recforge.torch import losses  # noqa: E402


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def t(values) -> "torch.Tensor":
    return torch.tensor(values, dtype=torch.float64)


def test_bpr_one_and_several_negatives():
    pos, neg = [2.0, 0.5], [1.0, 1.5]
    expected = -(log_sigmoid(2.0 - 1.0) + log_sigmoid(0.5 - 1.5)) / 2
    assert losses.bpr(t(pos), t(neg)).item() == pytest.approx(expected, rel=1e-12)
    neg2 = [[1.0, -3.0], [1.5, 0.5]]
    expected2 = -sum(log_sigmoid(p - n) for p, row in zip(pos, neg2) for n in row) / 4
    assert losses.bpr(t(pos), t(neg2)).item() == pytest.approx(expected2, rel=1e-12)


def test_bpr_gradient_and_large_scores():
    pos = t([0.3]).requires_grad_()
    losses.bpr(pos, t([-0.2])).backward()
    # d/ds+ [-log sigma(s+ - s-)] = -(1 - sigma(s+ - s-))
    assert pos.grad.item() == pytest.approx(-(1 - 1 / (1 + math.exp(-0.5))), rel=1e-12)
    assert losses.bpr(t([100.0]), t([-100.0])).item() == pytest.approx(0.0, abs=1e-80)
    assert losses.bpr(t([-100.0]), t([100.0])).item() == pytest.approx(200.0, rel=1e-12)


def test_bce_sampled_with_mask():
    pos, neg = [1.0, -0.5, 3.0], [[0.2, -1.0], [2.0, 0.0], [9.0, 9.0]]
    rows = [-log_sigmoid(p) - sum(math.log(1 - 1 / (1 + math.exp(-n))) for n in row) for p, row in zip(pos, neg)]
    assert losses.bce_sampled(t(pos), t(neg)).item() == pytest.approx(sum(rows) / 3, rel=1e-12)
    mask = torch.tensor([True, True, False])
    assert losses.bce_sampled(t(pos), t(neg), mask).item() == pytest.approx((rows[0] + rows[1]) / 2, rel=1e-12)
    assert losses.bce_sampled(t(pos), t(neg), torch.zeros(3, dtype=torch.bool)).item() == 0.0


def test_sampled_softmax_with_and_without_log_q():
    pos, neg = [1.0, 0.0], [[0.5, -1.0, 2.0], [0.0, 0.3, -0.3]]
    log_q = [[-1.0, -2.0, -0.5, -3.0], [-1.5, -1.0, -2.5, -0.7]]

    def hand(use_q):
        total = 0.0
        for b in range(2):
            z = [pos[b]] + neg[b]
            if use_q:
                z = [zj - qj for zj, qj in zip(z, log_q[b])]
            total += math.log(sum(math.exp(x) for x in z)) - z[0]
        return total / 2

    assert losses.sampled_softmax(t(pos), t(neg)).item() == pytest.approx(hand(False), rel=1e-12)
    assert losses.sampled_softmax(t(pos), t(neg), t(log_q)).item() == pytest.approx(hand(True), rel=1e-12)
    # a shared log q per candidate column broadcasts over the batch
    shared = [-1.0, -2.0, -0.5, -3.0]
    expected = losses.sampled_softmax(t(pos), t(neg), t([shared, shared])).item()
    assert losses.sampled_softmax(t(pos), t(neg), t(shared)).item() == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="log_q"):
        losses.sampled_softmax(t(pos), t(neg), t([1.0, 2.0]))


def test_full_ce_ignores_padding():
    logits = [[[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]], [[-1.0, 1.0, 1.0], [5.0, 1.0, 0.0]]]
    target = torch.tensor([[1, -1], [2, 0]])
    rows = [(logits[0][0], 1), (logits[1][0], 2), (logits[1][1], 0)]
    expected = sum(math.log(sum(math.exp(x) for x in z)) - z[k] for z, k in rows) / 3
    assert losses.full_ce(t(logits), target).item() == pytest.approx(expected, rel=1e-12)
    assert losses.full_ce(t(logits), torch.where(target == -1, 0, target), ignore_index=0).item() == pytest.approx(
        (math.log(sum(math.exp(x) for x in logits[0][0])) - 2.0 + math.log(sum(math.exp(x) for x in logits[1][0])) - 1.0) / 2,
        rel=1e-12)
    z = t(logits).requires_grad_()
    loss = losses.full_ce(z, torch.full((2, 2), -1))
    loss.backward()
    assert loss.item() == 0.0 and torch.count_nonzero(z.grad) == 0


def test_shape_errors_name_the_argument():
    with pytest.raises(ValueError, match="pos must be 1-D"):
        losses.bpr(t([[1.0]]), t([1.0]))
    with pytest.raises(ValueError, match="neg must be"):
        losses.bpr(t([1.0, 2.0]), t([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="target must have shape"):
        losses.full_ce(t([[1.0, 2.0]]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="mask must have shape"):
        losses.bce_sampled(t([1.0, 2.0]), t([1.0, 2.0]), torch.tensor([True]))
