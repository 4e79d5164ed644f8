r"""Ranking losses for implicit-feedback models; each returns a scalar tensor (a mean).

Scores are raw logits s (dot products). With :math:`\sigma(x) = 1 / (1 + e^{-x})` and
:math:`\operatorname{softplus}(x) = \log(1 + e^x) = -\log \sigma(-x)`, all are computed through
softplus / logsumexp, so large scores do not overflow.
"""
from __future__ import annotations

from typing import Any

from recforge.torch._imports import require_torch

torch = require_torch()
F = torch.nn.functional


def _pair_shapes(pos: Any, neg: Any, name: str = "neg") -> tuple[Any, Any]:
    """pos (B,) and neg (B,) or (B, K) -> pos (B, 1), neg (B, K)."""
    if pos.dim() != 1:
        raise ValueError(f"pos must be 1-D (one score per row), got shape {tuple(pos.shape)}")
    if neg.dim() == 1:
        neg = neg.unsqueeze(1)
    if neg.dim() != 2 or neg.shape[0] != pos.shape[0]:
        raise ValueError(f"{name} must be (B,) or (B, K) with B = len(pos) = {pos.shape[0]}, got {tuple(neg.shape)}")
    return pos.unsqueeze(1), neg


def _masked_mean(values: Any, mask: Any) -> Any:
    if mask is None:
        return values.mean()
    if mask.shape != values.shape:
        raise ValueError(f"mask must have shape {tuple(values.shape)}, got {tuple(mask.shape)}")
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def bpr(pos: Any, neg: Any) -> Any:
    r"""Bayesian personalised ranking: :math:`\frac{1}{BK}\sum_{b,k} -\log\sigma(s^+_b - s^-_{bk})`.

    pos: (B,) scores of the positives; neg: (B,) or (B, K) scores of sampled negatives.
    Computed as :math:`\operatorname{softplus}(s^- - s^+)`.
    """
    pos, neg = _pair_shapes(pos, neg)
    return F.softplus(neg - pos).mean()


def bce_sampled(pos: Any, neg: Any, mask: Any = None) -> Any:
    r"""Binary cross-entropy with sampled negatives (SASRec):
    :math:`\frac{1}{B}\sum_b \big[-\log\sigma(s^+_b) - \sum_k \log(1 - \sigma(s^-_{bk}))\big]`.

    pos: (B,); neg: (B,) or (B, K). ``mask`` (B,) bool, optional: only rows with True count
    (padding positions of a sequence batch); the mean is over counted rows (0 when none).
    Computed as :math:`\operatorname{softplus}(-s^+) + \sum_k \operatorname{softplus}(s^-_k)`.
    """
    pos, neg = _pair_shapes(pos, neg)
    per_row = F.softplus(-pos[:, 0]) + F.softplus(neg).sum(dim=1)
    return _masked_mean(per_row, mask)


def sampled_softmax(pos: Any, neg: Any, log_q: Any = None, mask: Any = None) -> Any:
    r"""Softmax cross-entropy over the positive and K sampled negatives, with optional logQ correction.

    With logits :math:`z_b = (s^+_b, s^-_{b1}, \dots, s^-_{bK}) - \log q`, the loss is
    :math:`\frac{1}{B}\sum_b \big[\log\sum_{j=0}^{K} e^{z_{bj}} - z_{b0}\big]`.

    pos: (B,); neg: (B, K) (or (B,) for K = 1). ``log_q``: log-probabilities with which the
    candidates were sampled, subtracted from every logit, the positive's included; any shape
    broadcastable to (B, 1 + K) (column 0 is the positive), e.g. the ``log q`` returned by
    :class:`recforge.torch.samplers.PopularityNegativeSampler`. ``mask`` (B,) bool, optional, as
    in :func:`bce_sampled`.
    """
    pos, neg = _pair_shapes(pos, neg)
    logits = torch.cat([pos, neg], dim=1)
    if log_q is not None:
        log_q = torch.as_tensor(log_q, dtype=logits.dtype, device=logits.device)
        try:
            logits = logits - log_q
        except RuntimeError as exc:
            raise ValueError(f"log_q of shape {tuple(log_q.shape)} does not broadcast to (B, 1 + K) = "
                             f"{tuple(logits.shape)}") from exc
    per_row = torch.logsumexp(logits, dim=1) - logits[:, 0]
    return _masked_mean(per_row, mask)


def full_ce(logits: Any, target: Any, ignore_index: int = -1) -> Any:
    r"""Cross-entropy over the whole catalogue: mean over counted rows of
    :math:`\log\sum_j e^{z_{bj}} - z_{b,t_b}`.

    logits: (..., n_items); target: (...) integer item codes. Rows whose target equals
    ``ignore_index`` (padding) do not count; when no row counts the loss is 0 (with a gradient
    of zeros), not NaN.
    """
    if logits.dim() < 1 or target.shape != logits.shape[:-1]:
        raise ValueError(f"target must have shape {tuple(logits.shape[:-1])} (logits without the last axis), "
                         f"got {tuple(target.shape)}")
    flat_logits = logits.reshape(-1, logits.shape[-1])
    flat_target = target.reshape(-1).long()
    counted = (flat_target != ignore_index).sum().clamp_min(1)
    total = F.cross_entropy(flat_logits, flat_target, ignore_index=ignore_index, reduction="sum")
    return total / counted.to(total.dtype)
