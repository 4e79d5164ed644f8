"""Re-rankers for any model's output: each takes per-user candidate lists ``(items, scores)``
(as ``model.recommend(users, n=100)`` returns them, -1 padding allowed) and returns the best n
of them under a new objective, vectorised over users (no Python loop per user), exactly n items
per user whenever n valid candidates exist.

* :func:`mmr` — maximal marginal relevance (Carbonell & Goldstein 1998): relevance against
  similarity to the items already chosen (intra-list diversity);
* :func:`calibrate` — calibrated recommendations (Steck, RecSys 2018): relevance against the KL
  divergence between the user's category profile and the list's;
* :func:`debias_popularity` — relevance against item popularity (long-tail promotion).
"""
from recforge.rerank.calibration import calibrate, category_distribution, kl_divergence
from recforge.rerank.mmr import mmr
from recforge.rerank.popularity import debias_popularity

__all__ = ["mmr", "calibrate", "debias_popularity", "category_distribution", "kl_divergence"]
