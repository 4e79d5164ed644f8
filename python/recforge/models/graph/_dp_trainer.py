r"""User-level DP-SGD training problem of BPR-MF for the shared loop (Opacus).

See :mod:`recforge.privacy.dpsgd` for what is private and why. Per step, users are Poisson
sampled with rate :math:`q = B / n`; a sampled user u brings up to L = ``max_items_per_user``
of its positives :math:`P_u` (a uniform sample), each with K uniform negatives :math:`N_{ut}`,
as *one* row of the batch, so that its per-sample gradient is the gradient of

.. math::
    \ell_u = \frac{1}{|P_u|} \sum_{t \in P_u} \Big[\frac{1}{K} \sum_{j \in N_{ut}}
             \operatorname{softplus}(e_u^\top e_j - e_u^\top e_t)
             + \frac{\lambda}{2}\big(\|e_t\|^2 + \sum_{j \in N_{ut}} \|e_j\|^2\big)\Big]
             + \frac{\lambda}{2}\|e_u\|^2

(or ``loss="bce"``: :math:`\operatorname{softplus}(-e_u^\top e_t) + \sum_j \operatorname{softplus}(e_u^\top e_j)`
in the bracket). The step's loss is :math:`\frac{1}{B}\sum_u \ell_u` (B the *expected* batch size,
as Poisson sampling requires), so the item embedding table — an ``nn.Embedding`` wrapped in
Opacus' ``GradSampleModule`` — gets per-user gradients :math:`g_u / B`, clipped by Opacus'
``DPOptimizer`` at C / B and noised with standard deviation σC / B: exactly
:math:`(\sum_u \bar g_u + \mathcal N(0, \sigma^2 C^2)) / B`. The user table is a plain
``nn.Embedding`` with its own Adam (local parameters). Opacus' accountant is attached to the
optimizer and counts every step.

Memory: Opacus materialises each sampled user's gradient of the item table, B x n_items x dim
floats per step (ML-100K, B = 256, dim = 64: 110 MB): keep B x n_items moderate.
"""
from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np
import scipy.sparse as sp

from recforge.privacy.dpsgd import DPSGD, accountant_options, require_opacus


class JointOptimizer:
    """Steps the DP optimizer of the item table and the plain one of the user table together."""

    def __init__(self, users: Any, items: Any):
        self.users, self.items = users, items

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.users.zero_grad(set_to_none=set_to_none)
        self.items.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.users.step()
        self.items.step()

    def state_dict(self) -> dict:
        return {"users": self.users.state_dict(), "items": self.items.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.users.load_state_dict(state["users"])
        self.items.load_state_dict(state["items"])


class PrivateBPRProblem:
    """Embeddings, user-level Poisson batches, per-user loss and DP optimizer of one DP BPR-MF run."""

    def __init__(self, R: sp.csr_matrix, *, dp: DPSGD, dim: int, reg: float, batch_size: int, negatives: int,
                 loss: str, epochs: int, seed: int, num_threads: int, timer: Any, init_std: float = 0.1):
        import torch
        require_opacus()
        from opacus import GradSampleModule

        from recforge.torch.samplers import UniformNegativeSampler

        self.torch, self.dp, self.timer = torch, dp, timer
        self.R = R.tocsr()
        self.n_users, self.n_items = self.R.shape
        self.reg, self.negatives, self.loss_name = float(reg), int(negatives), loss
        self.indptr = self.R.indptr.astype(np.int64)
        self.degrees = np.diff(self.indptr)
        self.active_users = np.flatnonzero(self.degrees)
        n = max(self.active_users.size, 1)
        self.expected_batch = min(int(batch_size), n)
        self.sample_rate = self.expected_batch / n
        self.steps_per_epoch = math.ceil(n / self.expected_batch)
        self.max_positives = int(dp.max_items_per_user)
        self.noise_multiplier = dp.resolve_noise_multiplier(self.sample_rate, self.steps_per_epoch * int(epochs))

        gen = torch.Generator().manual_seed(int(seed))
        E = torch.randn(self.n_users + self.n_items, dim, generator=gen) * init_std
        self.users = torch.nn.Embedding(self.n_users, dim, _weight=E[:self.n_users].clone())
        self.items = GradSampleModule(torch.nn.Embedding(self.n_items, dim, _weight=E[self.n_users:].clone()),
                                      batch_first=True, loss_reduction="sum")
        self.module = torch.nn.Module()
        self.module.users, self.module.items = self.users, self.items
        self.sampler = UniformNegativeSampler(self.R, seed=seed, num_threads=num_threads)
        self.accountant = None

    # -- optimizer (Opacus) ------------------------------------------------------------------
    def make_optimizer(self, lr: float) -> JointOptimizer:
        from opacus.accountants import create_accountant
        from opacus.optimizers import DPOptimizer

        torch = self.torch
        B = self.expected_batch
        item_opt = DPOptimizer(torch.optim.Adam(self.items.parameters(), lr=lr),
                               noise_multiplier=self.noise_multiplier, max_grad_norm=float(self.dp.max_grad_norm) / B,
                               expected_batch_size=None, loss_reduction="sum",
                               generator=torch.Generator().manual_seed(int(self.dp.seed)))
        self.accountant = create_accountant(self.dp.accountant)
        item_opt.attach_step_hook(self.accountant.get_optimizer_hook_fn(sample_rate=self.sample_rate))
        return JointOptimizer(torch.optim.Adam(self.users.parameters(), lr=lr), item_opt)

    def epsilon(self) -> float:
        """The accountant's ε for the steps taken (inf without noise, 0 before any step)."""
        steps = self.steps_taken()
        if steps == 0:
            return 0.0
        if self.noise_multiplier == 0:
            return math.inf
        return float(self.accountant.get_epsilon(delta=float(self.dp.delta), **accountant_options(self.dp.accountant)))

    def steps_taken(self) -> int:
        return 0 if self.accountant is None else sum(s for _, _, s in self.accountant.history)

    # -- batches (numpy) ---------------------------------------------------------------------
    def epoch_batches(self, epoch: int, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, ...]]:
        for _ in range(self.steps_per_epoch):
            with self.timer.section("sample"):
                chosen = self.active_users[rng.random(self.active_users.size) < self.sample_rate]
                batch = self.user_rows(chosen, rng)
            yield batch

    def user_rows(self, users: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """(users, item indices b x L(1+K): positives then negatives, valid b x L) for the sampled users."""
        b, L, K = users.size, self.max_positives, self.negatives
        deg = self.degrees[users]
        total = int(deg.sum())
        owner = np.repeat(np.arange(b), deg)
        first = np.repeat(np.cumsum(deg) - deg, deg)
        entry = np.arange(total) - first + np.repeat(self.indptr[users], deg)
        order = np.lexsort((rng.random(total), owner))             # each user's items in random order
        rank = np.arange(total) - first
        take = rank < np.repeat(np.minimum(deg, L), deg)
        rows, slots = owner[take], rank[take]
        positives = np.zeros((b, L), dtype=np.int64)
        valid = np.zeros((b, L), dtype=np.float32)
        positives[rows, slots] = self.R.indices[entry[order][take]]
        valid[rows, slots] = 1.0
        negatives = np.zeros((b, L, K), dtype=np.int64)
        if rows.size:
            negatives[rows, slots] = self.sampler.sample(users[rows], K, rng=rng)
        return users.astype(np.int64), np.concatenate([positives, negatives.reshape(b, L * K)], axis=1), valid

    # -- loss (torch) ------------------------------------------------------------------------
    def per_user_loss(self, batch) -> Any:
        r""":math:`\ell_u` of every row of the batch (module docstring)."""
        torch = self.torch
        users, items, valid = batch
        b, L, K = users.shape[0], self.max_positives, self.negatives
        eu = self.users(users)
        ev = self.items(items)
        et, ej = ev[:, :L], ev[:, L:].reshape(b, L, K, -1)
        pos = (eu[:, None, :] * et).sum(-1)
        neg = (eu[:, None, None, :] * ej).sum(-1)
        softplus = torch.nn.functional.softplus
        if self.loss_name == "bpr":
            main = softplus(neg - pos[:, :, None]).mean(-1)
        else:
            main = softplus(-pos) + softplus(neg).sum(-1)
        item_reg = et.pow(2).sum(-1) + ej.pow(2).sum((-1, -2))
        per_positive = (main + 0.5 * self.reg * item_reg) * valid
        return per_positive.sum(1) / valid.sum(1).clamp(min=1) + 0.5 * self.reg * eu.pow(2).sum(-1)

    def step(self, batch) -> Any:
        with self.timer.section("gather+loss"):
            return self.per_user_loss(batch).sum() / self.expected_batch

    # -- results -----------------------------------------------------------------------------
    def user_factors(self) -> np.ndarray:
        return np.ascontiguousarray(self.users.weight.detach().to("cpu").float().numpy())

    def item_factors(self) -> np.ndarray:
        return np.ascontiguousarray(self.items._module.weight.detach().to("cpu").float().numpy())
