"""Baseline estimates b_ui = mu + b_u + b_i by alternating least squares, as Surprise computes them."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def baseline_als(R: sp.csr_matrix, reg_i: float = 10.0, reg_u: float = 15.0,
                 n_epochs: int = 10) -> tuple[float, np.ndarray, np.ndarray]:
    r"""``(mu, b_u, b_i)`` for the ratings stored in the users x items CSR ``R``.

    mu is the mean rating; each epoch updates every item, then every user (Surprise's
    ``baseline_als``, itself after MyMediaLite):

    .. math::
        b_i = \frac{\sum_{u \in U_i} (r_{ui} - \mu - b_u)}{\mathrm{reg}_i + |U_i|}, \qquad
        b_u = \frac{\sum_{i \in I_u} (r_{ui} - \mu - b_i)}{\mathrm{reg}_u + |I_u|}

    Users and items without ratings get 0.
    """
    n_users, n_items = R.shape
    rows = np.repeat(np.arange(n_users), np.diff(R.indptr))
    cols = R.indices
    r = R.data.astype(np.float64)
    mu = float(r.mean()) if r.size else 0.0
    item_count = np.bincount(cols, minlength=n_items)
    user_count = np.bincount(rows, minlength=n_users)
    bu = np.zeros(n_users)
    bi = np.zeros(n_items)
    for _ in range(n_epochs):
        bi = _ratio(np.bincount(cols, weights=r - mu - bu[rows], minlength=n_items), reg_i + item_count)
        bu = _ratio(np.bincount(rows, weights=r - mu - bi[cols], minlength=n_users), reg_u + user_count)
    return mu, bu, bi


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(num.size), where=den > 0)
