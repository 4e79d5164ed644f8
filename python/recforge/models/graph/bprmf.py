r"""BPR matrix factorisation (Rendle et al., UAI 2009): LightGCN with no propagation.

:math:`\mathrm{score}(u, i) = e_u^\top e_i`, trained by the same BPR trainer and shared loop as
:class:`recforge.models.LightGCN` with ``layers=0`` (no graph is built or propagated).

``history=``: a user seen in training keeps its learned vector (a history then changes only
what is excluded: nothing is refitted); a user not seen in training gets the mean of its history
items' vectors (every history item counts once, as positives do in training) (the zero vector for an empty history).
"""
from __future__ import annotations

import numpy as np

from recforge.models.base import pattern
from recforge.models.graph.lightgcn import LightGCN
from recforge.models.training_data import HistoryChunk


class BPRMF(LightGCN):
    """BPR-MF: LightGCN's trainer with ``layers=0`` (see LightGCN for the parameters)."""

    #: quicker settings for ``recforge demo``
    demo_params = dict(epochs=10, lr=0.01, batch_size=4096)

    def __init__(self, dim: int = 64, lr: float = 1e-3, reg: float = 1e-4, batch_size: int = 2048, epochs: int = 50,
                 negatives: int = 1, loss: str = "bpr", sampling: str = "user", device: str = "auto",
                 num_threads: int = 0, seed: int = 0, validation_metric: str = "ndcg@20", validate_every: int = 1,
                 early_stopping: int | None = None, checkpoint_dir: str | None = None, progress: bool = False,
                 init_std: float = 0.1, init: str = "normal"):
        super().__init__(dim=dim, layers=0, lr=lr, reg=reg, batch_size=batch_size, epochs=epochs,
                         negatives=negatives, loss=loss, sampling=sampling, device=device, num_threads=num_threads,
                         seed=seed, validation_metric=validation_metric, validate_every=validate_every,
                         early_stopping=early_stopping, checkpoint_dir=checkpoint_dir, progress=progress, init_std=init_std,
                         init=init)

    def _user_vectors(self, codes: np.ndarray, history: HistoryChunk) -> np.ndarray:
        H = pattern(history.rows)  # positives are binary, as in training
        counts = np.diff(H.indptr).astype(np.float64)
        scale = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
        Q = ((H @ self.item_factors_.astype(np.float64)) * scale[:, None]).astype(np.float32)
        known = codes >= 0
        Q[known] = self.user_factors_[codes[known]]
        return Q
