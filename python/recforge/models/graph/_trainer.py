r"""One BPR mini-batch step of LightGCN (or BPR-MF when layers = 0) and where its time goes.

Loss of a batch B of (user u, positive i, negative j) triples, on the final embeddings
:math:`F = P E` (see :mod:`._propagation`) and the layer-0 embeddings E:

.. math::
    \ell = \frac{1}{|B|} \sum_{(u,i,j) \in B} \operatorname{softplus}(f_u^\top f_j - f_u^\top f_i)
         + \lambda \frac{1}{2 |B|} \sum_{(u,i,j) \in B} (\|e_u\|^2 + \|e_i\|^2 + \|e_j\|^2)

(softplus(x) = -log sigmoid(-x), i.e. :math:`-\log \sigma(f_u^\top f_i - f_u^\top f_j)`; the
regulariser is LightGCN's, on the layer-0 rows of the batch).
"""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Iterator

import numpy as np
import scipy.sparse as sp

from recforge.kernels import normalize_adjacency
from recforge.kernels.graph import combine_weights
from recforge.models.graph._propagation import GraphOperator, propagate_all, propagate_rows
from recforge.models.graph._sampling import PositiveLookup, sample_negatives


class Sections:
    """Wall-clock seconds accumulated per named section of an epoch."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] += now - self._last
        self._last = now

    def reset(self) -> dict[str, float]:
        out = dict(self.seconds)
        self.seconds = defaultdict(float)
        self._last = time.perf_counter()
        return out


class BPRGraphTrainer:
    """Parameters, graph and batch step of LightGCN/BPR-MF training on a users x items matrix."""

    def __init__(self, R: sp.csr_matrix, *, dim: int, layers: int, reg: float, lr: float, batch_size: int,
                 seed: int, num_threads: int, device: Any, sampling: str = "user", init_std: float = 0.1,
                 dtype: Any = None):
        import torch

        self.torch = torch
        self.R = R.tocsr()
        self.n_users, self.n_items = R.shape
        self.layers, self.reg, self.batch_size = int(layers), float(reg), int(batch_size)
        self.device = torch.device(device)
        self.dtype = dtype or torch.float32
        np_dtype = np.float64 if self.dtype == torch.float64 else np.float32
        self.op = None
        if self.layers > 0:
            self.op = GraphOperator(normalize_adjacency(self.R), combine_weights("mean", self.layers), num_threads,
                                    np_dtype, self.device)
        gen = torch.Generator().manual_seed(int(seed))
        E = torch.randn(self.n_users + self.n_items, dim, generator=gen, dtype=self.dtype) * init_std
        self.embedding = torch.nn.Parameter(E.to(self.device))
        self.module = torch.nn.ParameterList([self.embedding])
        self.lookup = PositiveLookup(self.R)
        self.pair_users = np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(self.R.indptr))
        self.pair_items = self.R.indices.astype(np.int64)
        self.degrees = np.diff(self.R.indptr).astype(np.int64)
        self.active_users = np.flatnonzero(self.degrees)
        self.sampling = sampling
        self.sections = Sections()

    # -- batches ---------------------------------------------------------------------------
    def epoch_batches(self, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """One epoch = as many (user, positive, negative) triples as training pairs, in batches.

        ``sampling="user"`` (LightGCN's reference implementations): each triple's user is drawn
        uniformly among users with interactions, its positive uniformly among the user's items.
        ``sampling="interaction"``: every training pair once, in random order. Negatives are
        uniform over the user's non-interacted items.
        """
        n = self.pair_users.size
        if self.sampling == "interaction":
            order = rng.permutation(n)
        for start in range(0, n, self.batch_size):
            size = min(self.batch_size, n - start)
            if self.sampling == "interaction":
                take = order[start:start + size]
                users, pos = self.pair_users[take], self.pair_items[take]
            else:
                users = self.active_users[rng.integers(0, self.active_users.size, size=size)]
                offsets = (rng.random(size) * self.degrees[users]).astype(np.int64)
                pos = self.pair_items[self.R.indptr[users] + offsets]
            neg = sample_negatives(self.lookup, users, rng)
            self.sections.lap("sample")
            yield users, pos, neg

    # -- loss ------------------------------------------------------------------------------
    def loss(self, batch) -> Any:
        torch = self.torch
        users, pos, neg = batch
        nodes = np.concatenate([users, pos + self.n_users, neg + self.n_users])
        rows, inverse = np.unique(nodes, return_inverse=True)
        rows_t = torch.from_numpy(rows).to(self.device)
        inverse_t = torch.from_numpy(inverse).to(self.device)
        if self.op is None:
            final = self.embedding[rows_t]
        else:
            final = propagate_rows(self.op, self.embedding, rows_t)
        self.sections.lap("propagate")
        b = users.size
        f = final[inverse_t]
        fu, fi, fj = f[:b], f[b:2 * b], f[2 * b:]
        bpr = torch.nn.functional.softplus((fu * (fj - fi)).sum(1)).mean()
        ego = self.embedding[torch.from_numpy(nodes).to(self.device)]
        loss = bpr + self.reg * 0.5 * ego.pow(2).sum() / b
        self.sections.lap("gather+loss")
        return loss

    def backward(self, loss) -> None:
        loss.backward()
        self.sections.lap("backward (propagation)")

    # -- results ---------------------------------------------------------------------------
    def final_embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """(user vectors, item vectors) of F = P E as float32 numpy arrays."""
        E = self.embedding.detach()
        F = E if self.op is None else propagate_all(self.op, E)
        F = F.to("cpu").float().numpy()
        return np.ascontiguousarray(F[:self.n_users]), np.ascontiguousarray(F[self.n_users:])
