r"""Private popularity: noisy item counts for a private MostPopular.

Each user's history (cut to ``max_items_per_user`` items) adds :math:`1/\sqrt{|I_u|}` to the
count of each of its items, so one user moves the count vector by exactly 1 in L2; Gaussian noise
of :func:`~recforge.privacy.dp.gaussian_sigma` (Delta = 1) on every count makes it user-level
(epsilon, delta)-DP, and the ranking is post-processing.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recforge.privacy.cooccurrence import bounded_histories
from recforge.privacy.dp import DP, gaussian_sigma


def private_popularity(R: sp.csr_matrix, dp: DP) -> tuple[np.ndarray, float]:
    """Noisy weighted item counts (module docstring) and the sigma used."""
    rng = np.random.default_rng(dp.seed)
    B = bounded_histories(R, dp.max_items_per_user, rng)
    lengths = np.diff(B.indptr).astype(np.float64)
    w = np.divide(1.0, np.sqrt(lengths), out=np.zeros_like(lengths), where=lengths > 0)
    counts = np.asarray((sp.diags(w) @ B).sum(axis=0)).reshape(-1)
    sigma = gaussian_sigma(float(dp.epsilon), float(dp.delta), 1.0)
    return counts + rng.normal(0.0, sigma, size=counts.size), sigma
