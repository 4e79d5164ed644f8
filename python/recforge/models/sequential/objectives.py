r"""Training objectives of the sequence models over the positions that have a target.

With query :math:`q_t` at a target position t, target item :math:`y_t` and score
:math:`s(q, c) = q \cdot e_c + b_c`:

* ``"bce"`` (original SASRec), one sampled negative :math:`n_t` per position, outside the
  user's sequence: :math:`\ell = \frac1T\sum_t -\log\sigma(s(q_t,y_t)) - \log(1-\sigma(s(q_t,n_t)))`.
* ``"sampled_softmax"``, K negatives :math:`N` shared by the batch, drawn from :math:`Q`
  (uniform or popularity), with the logQ correction and accidental hits (:math:`c = y_t`) removed:
  :math:`\ell = \frac1T\sum_t -\log \frac{e^{s(q_t,y_t) - \log Q(y_t)}}{e^{s(q_t,y_t) - \log Q(y_t)} + \sum_{c\in N, c\ne y_t} e^{s(q_t,c) - \log Q(c)}}`.
* ``"ce"``, full cross-entropy over the catalogue:
  :math:`\ell = \frac1T\sum_t -\log \mathrm{softmax}_{y_t}(s(q_t, \cdot))`.

The reductions themselves are :mod:`recforge.torch.losses`; this module gathers the positions,
draws the negatives and computes the scores.
"""
from __future__ import annotations

import torch

from recforge.models.sequential.batching import PAD

LOSSES = ("bce", "sampled_softmax", "ce")
SAMPLERS = {"uniform": 0.0, "popularity": 1.0}  # name -> exponent alpha of q(c) ~ count_c^alpha


def gather_targets(queries: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(queries at target positions (T, d), target item codes (T,)), row-major order."""
    where = targets != PAD
    return queries[where], targets[where] - 1


def bce_loss(net, q: torch.Tensor, y: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    from recforge.torch import losses

    return losses.bce_sampled(net.score(q, y), net.score(q, negatives))


def sampled_softmax_loss(net, q: torch.Tensor, y: torch.Tensor, negatives: torch.Tensor,
                         log_q_all: torch.Tensor) -> torch.Tensor:
    """``negatives`` (K,) shared by every row; ``log_q_all`` (n_items,) log sampling probabilities."""
    from recforge.torch import losses

    neg = net.score_shared(q, negatives)
    neg = neg.masked_fill(negatives[None, :] == y[:, None], float("-inf"))
    log_q = torch.cat([log_q_all[y][:, None], log_q_all[negatives][None, :].expand(y.numel(), -1)], dim=1)
    return losses.sampled_softmax(net.score(q, y), neg, log_q=log_q)


def full_ce_loss(net, q: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    from recforge.torch import losses

    return losses.full_ce(net.score_shared(q), y)
