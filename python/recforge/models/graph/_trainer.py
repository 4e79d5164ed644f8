r"""The BPR training problem of LightGCN (and of BPR-MF, its zero-layer case) for the shared loop.

One epoch holds as many (user u, positive i, negatives j_1..j_K) samples as there are training
interactions, in mini-batches B. ``sampling="user"`` (LightGCN's reference implementations):
u uniform over users with interactions, i uniform over u's items; ``sampling="interaction"``:
every training pair once, in random order; ``sampling="user-batches"`` (LightGCN's TensorFlow
reference and microsoft/recommenders' ``ImplicitCF``, exactly): ``n // batch_size + 1`` full
batches, each of ``batch_size`` distinct users drawn uniformly without replacement (with
replacement when there are fewer users with interactions than ``batch_size``), i uniform over
u's items. Negatives are uniform over u's non-interacted items
(:class:`recforge.torch.samplers.UniformNegativeSampler`).

Loss on the final embeddings :math:`F = P E` (:mod:`._propagation`) and the layer-0 rows E:

.. math::
    \ell = \frac{1}{|B| K} \sum_{(u,i,j) \in B} \operatorname{softplus}(f_u^\top f_j - f_u^\top f_i)
         + \lambda \frac{1}{2 |B|} \sum_{u,i,j \in B} (\|e_u\|^2 + \|e_i\|^2 + \sum_k \|e_{j_k}\|^2)

(BPR, :math:`-\log \sigma(f_u^\top f_i - f_u^\top f_j)`; or ``loss="bce"``: sampled binary
cross-entropy). The regulariser is LightGCN's: on the layer-0 rows the batch touches.

Where an epoch's time goes is written to the loop's timer: "sample" (batches), "propagate
forward", "gather+loss", "propagate backward" (inside the loop's "backward"), and the loop's own
"optimizer".
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import scipy.sparse as sp

from recforge.kernels import normalize_adjacency
from recforge.kernels.graph import combine_weights
from recforge.models.graph._propagation import GraphOperator, propagate_all, propagate_rows

SAMPLINGS = ("user", "interaction", "user-batches")
LOSSES = ("bpr", "bce")
INITS = ("normal", "xavier")


def initial_embeddings(torch, n_users: int, n_items: int, dim: int, init: str, init_std: float, generator,
                       dtype):
    r"""Layer-0 embeddings E (users, then items).

    ``"normal"``: every entry :math:`\sim \mathcal{N}(0, \sigma^2)`, :math:`\sigma` = ``init_std``
    (LightGCN's PyTorch reference, :math:`\sigma = 0.1`). ``"xavier"``: Glorot/Xavier uniform of each
    table on its own (LightGCN's TensorFlow reference and microsoft/recommenders), entries of the
    :math:`n \times d` user table (n = n_users) and item table (n = n_items) uniform on
    :math:`[-a, a]`, :math:`a = \sqrt{6 / (n + d)}` (variance :math:`a^2/3 = 2/(n + d)`).
    """
    if init == "normal":
        return torch.randn(n_users + n_items, dim, generator=generator, dtype=dtype) * init_std
    tables = []
    for rows in (n_users, n_items):
        bound = float(np.sqrt(6.0 / (rows + dim)))
        tables.append((torch.rand(rows, dim, generator=generator, dtype=dtype) * 2.0 - 1.0) * bound)
    return torch.cat(tables, 0)


class BPRGraphProblem:
    """Embeddings, graph, batches and loss of one LightGCN/BPR-MF training run."""

    def __init__(self, R: sp.csr_matrix, *, dim: int, layers: int, reg: float, batch_size: int, negatives: int,
                 loss: str, sampling: str, seed: int, num_threads: int, device: Any, timer: Any,
                 init_std: float = 0.1, init: str = "normal", dtype: Any = None):
        import torch

        from recforge.torch.samplers import UniformNegativeSampler

        self.torch = torch
        self.R = R.tocsr()
        self.n_users, self.n_items = self.R.shape
        self.layers, self.reg = int(layers), float(reg)
        self.batch_size, self.negatives = int(batch_size), int(negatives)
        self.loss_name, self.sampling = loss, sampling
        self.device, self.timer = device, timer
        self.dtype = dtype or torch.float32
        np_dtype = np.float64 if self.dtype == torch.float64 else np.float32
        self.op = None
        if self.layers > 0:
            self.op = GraphOperator(normalize_adjacency(self.R), combine_weights("mean", self.layers), num_threads,
                                    np_dtype, device, timer)
        gen = torch.Generator().manual_seed(int(seed))
        self.module = torch.nn.Module()
        E = initial_embeddings(torch, self.n_users, self.n_items, dim, init, init_std, gen, self.dtype)
        self.module.register_parameter("embedding", torch.nn.Parameter(E))
        self.sampler = UniformNegativeSampler(self.R, seed=seed, num_threads=num_threads)
        self.indptr = self.R.indptr.astype(np.int64)
        self.degrees = np.diff(self.indptr)
        self.active_users = np.flatnonzero(self.degrees)
        self.pair_users = np.repeat(np.arange(self.n_users, dtype=np.int64), self.degrees)
        self.pair_items = self.R.indices.astype(np.int64)

    @property
    def embedding(self):
        return self.module.embedding

    # -- batches (numpy) -------------------------------------------------------------------
    def epoch_batches(self, epoch: int, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, ...]]:
        n = self.pair_users.size
        order = rng.permutation(n) if self.sampling == "interaction" else None
        if self.sampling == "user-batches":
            sizes = [self.batch_size] * (n // self.batch_size + 1)
        else:
            sizes = [min(self.batch_size, n - start) for start in range(0, n, self.batch_size)]
        start = 0
        for size in sizes:
            with self.timer.section("sample"):
                if order is not None:
                    take = order[start:start + size]
                    start += size
                    users, pos = self.pair_users[take], self.pair_items[take]
                else:
                    if self.sampling == "user-batches" and self.active_users.size >= size:
                        users = self.active_users[rng.choice(self.active_users.size, size=size, replace=False)]
                    else:
                        users = self.active_users[rng.integers(0, self.active_users.size, size=size)]
                    offsets = (rng.random(size) * self.degrees[users]).astype(np.int64)
                    pos = self.pair_items[self.indptr[users] + offsets]
                neg = self.sampler.sample(users, self.negatives, rng=rng)
                nodes = np.concatenate([users, pos + self.n_users, neg.reshape(-1) + self.n_users])
                rows, inverse = np.unique(nodes, return_inverse=True)
            yield rows, inverse.astype(np.int64), nodes

    # -- loss (torch) ----------------------------------------------------------------------
    def step(self, batch) -> Any:
        torch = self.torch
        rows, inverse, nodes = batch
        with self.timer.section("propagate forward"):
            final = self.embedding[rows] if self.op is None else propagate_rows(self.op, self.embedding, rows)
        with self.timer.section("gather+loss"):
            b = inverse.shape[0] // (2 + self.negatives)
            f = final[inverse]
            fu, fi, fj = f[:b], f[b:2 * b], f[2 * b:].reshape(b, self.negatives, -1)
            pos = (fu * fi).sum(1)
            neg = (fu[:, None, :] * fj).sum(2)
            if self.loss_name == "bpr":
                main = torch.nn.functional.softplus(neg - pos[:, None]).mean()
            else:
                main = (torch.nn.functional.softplus(-pos) + torch.nn.functional.softplus(neg).sum(1)).mean()
            ego = self.embedding[nodes]
            return main + self.reg * 0.5 * ego.pow(2).sum() / b

    # -- results ---------------------------------------------------------------------------
    def final_embeddings(self) -> np.ndarray:
        """F = P E (all users, then all items) as a float32 numpy array."""
        E = self.embedding.detach()
        F = E if self.op is None else propagate_all(self.op, E)
        return np.ascontiguousarray(F.to("cpu").float().numpy())

    def item_fold_in(self) -> np.ndarray:
        r""":math:`G_i = \sum_{l \ge 1} w_l (A^{l-1} E)_i / \sqrt{d_i}` per item (float32).

        A user u with (binary) history H has :math:`(A^l E)_u = \sum_{i \in H} (A^{l-1} E)_i /
        \sqrt{|H| d_i}`, so its final vector is :math:`w_0 e_u + |H|^{-1/2} \sum_{i \in H} G_i`.
        """
        E = self.embedding.detach().to("cpu").double().numpy()
        weights = self.op.weights
        inv_sqrt = np.zeros(self.n_items)
        np.divide(1.0, np.sqrt(self.degrees_items()), out=inv_sqrt, where=self.degrees_items() > 0)
        op64 = GraphOperator(self.op.csr, weights, self.op.threads, np.float64)
        G = np.zeros((self.n_items, E.shape[1]))
        current = E
        for layer in range(1, self.layers + 1):
            G += weights[layer] * current[self.n_users:]
            if layer < self.layers:
                current = op64.spmm(current)
        return (G * inv_sqrt[:, None]).astype(np.float32)

    def degrees_items(self) -> np.ndarray:
        return np.bincount(self.R.indices, minlength=self.n_items).astype(np.float64)
