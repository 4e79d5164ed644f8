"""Differentially private statistics for recommenders (user-level privacy).

* :class:`DP` — the privacy parameters a model is given: ``ItemKNN(privacy=DP(epsilon=1.0))``,
  ``MostPopular(privacy=DP(epsilon=1.0))``;
* :class:`DPSGD` — user-level DP-SGD through Opacus for embedding models:
  ``BPRMF(privacy=DPSGD(epsilon=2.0))`` (:mod:`recforge.privacy.dpsgd`; ``pip install "recforge[privacy]"``);
* :func:`gaussian_sigma` — the analytic Gaussian mechanism's noise scale (Balle & Wang 2018);
* :mod:`recforge.privacy.cooccurrence` — bounded, noisy item co-occurrence and item neighbours
  after McSherry & Mironov (KDD 2009); :mod:`recforge.privacy.counts` — noisy popularity.

What (epsilon, delta) cover: neighbouring datasets differ in *all* interactions of one user
(user-level DP). The released object is the model's learned statistics — the item neighbour
lists of a private ItemKNN, the popularity vector of a private MostPopular — and everything
computed from them alone (post-processing). Recommending to a user additionally reads that
user's own history, which is not a release about anyone else.
"""
from recforge.privacy.dp import DP, gaussian_sigma
from recforge.privacy.dpsgd import DPSGD

__all__ = ["DP", "DPSGD", "gaussian_sigma"]
