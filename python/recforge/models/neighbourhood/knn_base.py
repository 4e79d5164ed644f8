r"""Neighbourhood collaborative filtering: ItemKNN and UserKNN.

Implicit feedback (``feedback="implicit"``, top-N scoring as implicit's ItemItemRecommender
and RecBole): with :math:`N_k(j)` the k most similar items of item j (never j itself) and
:math:`r_{uj}` the stored value (a count, a weight, or 1),

- ItemKNN: :math:`\mathrm{score}(u, i) = \sum_{j \in I_u,\ i \in N_k(j)} r_{uj}\, s(j, i)`
- UserKNN: :math:`\mathrm{score}(u, i) = \sum_{v \in N_k(u)} s(u, v)\, r_{vi}`

implicit's own similarity lists include the item itself (its all_pairs_knn keeps the diagonal),
so its ``K`` counts one slot for it; recforge's ``k`` counts real neighbours only. With seen
items excluded the two give the same scores when recforge's k equals implicit's K - 1.

Explicit feedback (``feedback="explicit"``) predicts ratings as Surprise's KNNBasic
(``centering="none"``), KNNWithMeans (``"mean"``) and KNNBaseline (``"baseline"``); see
:mod:`recforge.models.explicit`. The neighbourhood is then chosen per prediction among those
who rated the item (user-based) or among the items the user rated (item-based), so every
non-zero similarity is kept (memory O(pairs with a co-rating)). ``recommend`` ranks items by
predicted rating.

``recommend(..., history=H)``: ItemKNN scores H with its stored item neighbours (nothing
refitted; a history equal to the stored row gives the stored result). UserKNN finds the k
most similar stored users of each history row (a known user is never its own neighbour), which
equals a refit with that user's row replaced (or appended, for a new user) for the pairwise
similarities; with adjusted_cosine, bm25 and tfidf the corpus statistics stay those of the
training data. With explicit feedback the history rows are rated as extra users with the
fitted similarities and statistics (their own mean, and b_u from one ALS user step given the
fitted item biases); for UserKNN that equals a refit with the user appended wherever the
prediction does not fall back to the global mean.

Neighbour lists are computed row by row (never via the kernel's symmetric half product), so
they are the same bit for bit whether fitted at once, in blocks, or updated by ``partial_fit``.

Ratings of 0: with explicit feedback a stored 0 is a rating like any other — it counts in the
means, the baselines, the neighbourhoods and the predictions (as in Surprise). The kernels treat a
stored 0 as missing, so for the shift-invariant similarities (``msd``, ``pearson``: both depend
only on differences of co-rated values) the ratings are handed to the kernel shifted by
:math:`c = 1 - \min r` when the smallest rating is <= 0, which keeps every co-rating and leaves
the similarity unchanged; for the other similarities a 0 rating contributes nothing to the
products, and is not counted as a co-rating by ``min_support`` or ``shrink``.

Privacy (``privacy=recforge.privacy.DP(epsilon, delta, max_items_per_user)``, ItemKNN with
implicit feedback and cosine): the item neighbour lists come from bounded, noisy co-occurrence
counts (:mod:`recforge.privacy.cooccurrence`), user-level (epsilon, delta)-DP; the noise scale
is kept as ``privacy_sigma_`` and the parameters in the saved model. ``epsilon=math.inf`` is the
non-private model exactly.

Similarities (``similarity=``): those of :func:`recforge.kernels.similarity_topk` — cosine,
jaccard, pearson, msd, adjusted_cosine, bm25, tfidf, dot — with ``shrink`` and
``min_support``. Item-based models compare item columns (items x users), user-based ones user
rows.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recforge.kernels import prepare_candidates, similarity_topk
from recforge.kernels import _validation as v
from recforge.models.neighbourhood.baselines_als import baseline_als
from recforge.models.base import (Recommender, as_user_items, check_code_range, dense_blocks, ids_of_codes,
                                  known_codes, pattern)
from recforge.models.training_data import TrainingData
from recforge.privacy.dp import DP
from recforge.models.neighbourhood.explicit import RatingStats, predict_pairs
from recforge.models.neighbourhood.rows import extend, grow, lookup, replace_entries, rows_equal
from recforge.models.neighbourhood.neighbours import all_neighbours, self_pattern, update_neighbours
from recforge.kernels.prepared_rows import similarity_topk_rows
from recforge.models.stored_rows import as_csr as stored_csr, exclusion_arrays, gather_rows, is_canonical
from recforge.models.ranking import PAD_ITEM, PAD_SCORE, complete_sparse_topn, topn_dense

SHIFT_INVARIANT = ("msd", "pearson")
SIMILARITIES = ("cosine", "jaccard", "pearson", "msd", "adjusted_cosine", "bm25", "tfidf", "dot")
FEEDBACKS = ("implicit", "explicit")
CENTERINGS = ("none", "mean", "baseline")
PREDICT_BLOCK = 2_000_000   # entries of the per-user score rows gathered for predict


class NeighbourhoodModel(Recommender):
    """Shared by ItemKNN and UserKNN; ``user_based`` picks the side whose rows are compared."""

    user_based = False

    def __init__(self, k: int = 40, similarity: str = "cosine", shrink: float = 0.0, min_support: int = 1,
                 feedback: str = "implicit", centering: str = "none", min_k: int = 1,
                 rating_range: tuple[float, float] | None = None, baseline_reg_items: float = 10.0,
                 baseline_reg_users: float = 15.0, baseline_epochs: int = 10, num_threads: int = 0,
                 progress: bool = True, privacy: Any = None):
        self.k = k
        self.similarity = similarity
        self.shrink = shrink
        self.min_support = min_support
        self.feedback = feedback
        self.centering = centering
        self.min_k = min_k
        self.rating_range = rating_range
        self.baseline_reg_items = baseline_reg_items
        self.baseline_reg_users = baseline_reg_users
        self.baseline_epochs = baseline_epochs
        self.num_threads = num_threads
        self.progress = progress
        self.privacy = DP.of(privacy)

    @property
    def predicts_ratings(self) -> bool:  # type: ignore[override]
        return self.feedback == "explicit"

    # ------------------------------------------------------------------ parameters
    def _check_params(self) -> None:
        v.check_positive_int(self.k, "k")
        if self.similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {SIMILARITIES}, got {self.similarity!r}")
        v.check_non_negative_float(self.shrink, "shrink")
        v.check_positive_int(self.min_support, "min_support")
        if self.feedback not in FEEDBACKS:
            raise ValueError(f"feedback must be one of {FEEDBACKS}, got {self.feedback!r}")
        if self.centering not in CENTERINGS:
            raise ValueError(f"centering must be one of {CENTERINGS}, got {self.centering!r}")
        if self.feedback == "implicit" and self.centering != "none":
            raise ValueError("centering applies to rating prediction: use feedback='explicit' with "
                             f"centering={self.centering!r}")
        if isinstance(self.min_k, bool) or not isinstance(self.min_k, (int, np.integer)) or self.min_k < 0:
            raise ValueError(f"min_k must be an integer >= 0, got {self.min_k!r}")
        if self.rating_range is not None:
            rr = tuple(self.rating_range)
            if len(rr) != 2 or not all(np.isfinite(rr)) or rr[0] > rr[1]:
                raise ValueError(f"rating_range must be (low, high) with low <= high, got {self.rating_range!r}")
        v.check_non_negative_float(self.baseline_reg_items, "baseline_reg_items")
        v.check_non_negative_float(self.baseline_reg_users, "baseline_reg_users")
        v.check_positive_int(self.baseline_epochs, "baseline_epochs")
        if self.privacy is not None and (self.user_based or self.feedback != "implicit"
                                         or self.similarity != "cosine"):
            raise ValueError("privacy= is supported by ItemKNN with implicit feedback and similarity='cosine' "
                             "(recforge.privacy.cooccurrence)")
        if isinstance(self.num_threads, bool) or not isinstance(self.num_threads, (int, np.integer)) \
                or self.num_threads < 0:
            raise ValueError(f"num_threads must be an integer >= 0 (0 = all cores), got {self.num_threads!r}")

    def _sim_options(self) -> dict[str, Any]:
        return {"metric": self.similarity, "shrink": float(self.shrink), "min_support": int(self.min_support),
                "num_threads": int(self.num_threads)}

    def _private(self) -> bool:
        return self.privacy is not None and self.privacy.private

    def _sim_input(self, X: sp.csr_matrix) -> sp.csr_matrix:
        """X as the similarity kernel must see it: explicit ratings <= 0 shifted to stay stored
        (msd and pearson are unchanged by a constant shift of the ratings)."""
        if self.feedback != "explicit" or self.similarity not in SHIFT_INVARIANT or not X.nnz:
            return X
        low = float(X.data.min())
        if low > 0:
            return X
        return sp.csr_matrix(((X.data - np.float32(low - 1.0)).astype(X.dtype), X.indices, X.indptr),
                             shape=X.shape)

    def _stored_k(self) -> int | None:
        return None if self.feedback == "explicit" else int(self.k)

    # ------------------------------------------------------------------ fitting
    def _x_major(self, R: sp.csr_matrix) -> sp.csr_matrix:
        if self.user_based:
            return R
        Xt = R.T.tocsr()
        Xt.sort_indices()
        return Xt

    def _fit(self, data: TrainingData) -> None:
        R = data.matrix
        if self._private():
            from recforge.privacy.cooccurrence import private_item_neighbours

            self.similarity_, self.privacy_sigma_ = private_item_neighbours(R, int(self.k), self.privacy)
            self._prepare()
            return
        side = "users" if self.user_based else "items"
        self.similarity_ = all_neighbours(self._sim_input(self._x_major(R)), self._stored_k(), self._sim_options(),
                                          bool(self.progress), f"{type(self).__name__} {side}")
        self._fit_rating_stats(R)
        self._prepare()

    def _fit_rating_stats(self, R: sp.csr_matrix) -> None:
        if self.feedback != "explicit":
            return
        values = R.data.astype(np.float64)
        self.global_mean_ = float(values.mean()) if values.size else 0.0
        if self.rating_range is not None:
            self.rating_low_, self.rating_high_ = map(float, self.rating_range)
        else:
            self.rating_low_ = float(values.min()) if values.size else 0.0
            self.rating_high_ = float(values.max()) if values.size else 0.0
        X = self._x_major(R)
        counts = np.diff(X.indptr)
        sums = np.bincount(np.repeat(np.arange(X.shape[0]), counts), weights=X.data.astype(np.float64),
                           minlength=X.shape[0])
        self.means_ = np.divide(sums, counts, out=np.zeros(X.shape[0]), where=counts > 0)
        if self.centering == "baseline":
            _, self.user_bias_, self.item_bias_ = baseline_als(R, float(self.baseline_reg_items),
                                                               float(self.baseline_reg_users),
                                                               int(self.baseline_epochs))

    def _prepare(self) -> None:
        """Derived matrices (not saved): x-major data and the scoring operands."""
        R = self.user_items_
        self._X = self._x_major(R)
        self._Xt = self._X.T.tocsr()
        self._Xt.sort_indices()
        if self.feedback == "implicit":
            S = self.similarity_
            if self.user_based:
                self._score_operand = self._Xt                     # items x users: row i = R[:, i]
            else:
                self._score_operand = S.T.tocsr()                  # row i = S[:, i]
                self._score_operand.sort_indices()
            # transposed and narrowed once, so a recommend call does only its users' work
            self._score_candidates = prepare_candidates(self._score_operand, metric="dot",
                                                        num_threads=int(self.num_threads))
            self._lean_rows = not self.user_based and is_canonical(R)

    def _state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"similarity_": self.similarity_}
        if self._private():
            state["privacy_sigma_"] = float(self.privacy_sigma_)
        if self.feedback == "explicit":
            state.update(global_mean_=self.global_mean_, rating_low_=self.rating_low_,
                         rating_high_=self.rating_high_, means_=self.means_)
            if self.centering == "baseline":
                state.update(user_bias_=self.user_bias_, item_bias_=self.item_bias_)
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        super()._restore(state)
        self._prepare()

    # ------------------------------------------------------------------ incremental update
    def partial_fit(self, new_interactions: Any) -> "NeighbourhoodModel":
        """Add interactions and update only the neighbour lists they change (equal to a refit).

        ``new_interactions``: Interactions (matched by original id; unseen users and items are
        appended to the vocabulary) or a sparse matrix of codes (at least as large as the
        training matrix; extra rows/columns are new users/items). Implicit feedback adds the
        values to the stored ones (counts); explicit feedback replaces a stored rating. For the
        pairwise similarities (dot, cosine, jaccard, pearson, msd) only the rows whose data
        changed and the lists that pointed at them are recomputed; adjusted_cosine, bm25 and
        tfidf depend on corpus statistics, so they recompute everything.
        """
        self._require_fitted()
        if self._private():
            raise ValueError("partial_fit would release new statistics outside the privacy budget: refit a "
                             "private model on all the data")
        D = self._recode(new_interactions)
        R_old = self.user_items_
        n_users, n_items = D.shape
        R_old = sp.csr_matrix((R_old.data, R_old.indices, np.r_[R_old.indptr, np.full(n_users - R_old.shape[0],
                              R_old.indptr[-1])]), shape=(n_users, n_items))
        if self.feedback == "explicit":
            R_new = replace_entries(R_old, D)
        else:
            R_new = (R_old + D).tocsr()
            R_new.sum_duplicates()
            R_new.eliminate_zeros()
        R_new = R_new.astype(np.float32)
        touched = np.unique(D.tocoo().row if self.user_based else D.indices)
        self.similarity_ = update_neighbours(self.similarity_, self._sim_input(self._x_major(R_new)), touched,
                                             self._stored_k(), self._sim_options())
        self.user_items_ = R_new
        self.n_users_, self.n_items_ = R_new.shape
        self._fit_rating_stats(R_new)
        self._prepare()
        return self

    def _recode(self, new: Any) -> sp.csr_matrix:
        """New interactions as a CSR in the model's codes (vocabulary extended with unseen ids)."""
        if hasattr(new, "to_csr") and hasattr(new, "user_ids"):
            D = new.to_csr(duplicates=self._duplicates()).tocoo()
            self.user_ids_, ucodes = extend(self.user_ids_, new.user_ids)
            self.item_ids_, icodes = extend(self.item_ids_, new.item_ids)
            shape = (len(self.user_ids_), len(self.item_ids_))
            out = sp.csr_matrix((D.data, (ucodes[D.row], icodes[D.col])), shape=shape, dtype=np.float32)
        else:
            out, _, _ = as_user_items(new, "new_interactions", keep_zeros=self.predicts_ratings)
            if out.shape[0] < self.n_users_ or out.shape[1] < self.n_items_:
                raise ValueError(f"new_interactions must be at least {self.n_users_} x {self.n_items_} "
                                 f"(the training shape), got {out.shape}")
            self.user_ids_ = grow(self.user_ids_, out.shape[0])
            self.item_ids_ = grow(self.item_ids_, out.shape[1])
        out.sum_duplicates()
        return out

    # ------------------------------------------------------------------ recommend
    def _recommend_rows(self, codes, rows, n, exclude):
        if self.feedback == "explicit":
            return self._recommend_explicit(codes, rows, n, exclude)
        left = self._left_operand(codes, rows)
        found = similarity_topk(left, n, self._score_candidates, metric="dot", exclude=exclude,
                                num_threads=int(self.num_threads))
        return self._completed(found, n, exclude, left)

    def _completed(self, found: sp.csr_matrix, n: int, exclude: sp.csr_matrix | None,
                   left: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """The kernel's top-n of non-zero scores completed to n items per row, rows with negative
        scores re-ranked exactly from the left operand (``complete_sparse_topn``)."""
        def exact_rows(which):
            return self._scores_of(left[which]).toarray()

        return complete_sparse_topn(found, n, exclude, exact_rows)

    def _recommend_stored(self, codes, n, exclude_seen, blocked):
        """ItemKNN (implicit) from stored canonical rows: the kernel on array slices, completed
        as ``_recommend_rows`` completes (zero scores, padding, exact re-ranking of negatives)."""
        if self.feedback != "implicit" or not getattr(self, "_lean_rows", False):
            return None
        R = self.user_items_
        xp, xi, xd = gather_rows(R, codes)
        excluded = exclusion_arrays(xp, xi, blocked, exclude_seen)
        ep, ei = (None, None) if excluded is None else excluded
        found = similarity_topk_rows(xp, xi, xd, n, self._score_candidates, metric="dot", ex_indptr=ep,
                                     ex_indices=ei, num_threads=int(self.num_threads))
        if found is None:
            return None
        indptr, indices, data = found
        m = codes.size
        # no row holds more than n: m * n entries means n in every row (all positive: complete)
        if indices.shape[0] == m * n and data.min() > 0:
            return indices.astype(np.int64).reshape(m, n), data.astype(np.float32).reshape(m, n)
        shape = (m, self.n_items_)
        exclude = None if excluded is None else stored_csr(ep, ei, None, shape)
        return self._completed(stored_csr(indptr, indices, data, shape), n, exclude, stored_csr(xp, xi, xd, shape))

    def _left_operand(self, codes: np.ndarray, rows: sp.csr_matrix) -> sp.csr_matrix:
        """Rows whose dot product with the score operand gives each user's item scores."""
        if not self.user_based:
            return rows
        stored = self.user_items_[np.maximum(codes, 0)]
        same = (codes >= 0) & rows_equal(stored, rows)
        if same.all():
            return self.similarity_[codes]
        known = np.flatnonzero(codes >= 0)
        exclude = sp.csr_matrix((np.ones(known.size, np.float32), (known, codes[known])),
                                shape=(codes.size, self.n_users_))
        return similarity_topk(rows, int(self.k), self.user_items_, exclude=exclude, **self._sim_options())

    def _scores_of(self, left: sp.csr_matrix) -> sp.csr_matrix:
        """Full score rows (sparse) for rows of the left operand."""
        return (left @ self._score_operand.T).tocsr()

    def _recommend_explicit(self, codes, rows, n, exclude):
        stored = self.user_items_[np.maximum(codes, 0)]
        from_history = bool(((codes < 0) | ~rows_equal(stored, rows)).any())
        m = codes.size
        items = np.empty((m, n), dtype=np.int64)
        scores = np.empty((m, n), dtype=np.float32)
        step = max(1, PREDICT_BLOCK // max(self.user_items_.nnz, 1))
        all_items = np.arange(self.n_items_, dtype=np.int64)
        for start in range(0, m, step):
            part = slice(start, min(m, start + step))
            users = np.repeat(np.arange(part.start, part.stop) if from_history else codes[part], self.n_items_)
            i = np.tile(all_items, part.stop - part.start)
            if from_history:
                block = self._predict_from_history(rows[part], codes[part], users - part.start, i)
            else:
                block = self._predict_codes(users, i)
            block = block.reshape(-1, self.n_items_)
            items[part], scores[part] = topn_dense(block, n, None if exclude is None else exclude[part])
        return items, scores

    def _predict_from_history(self, H: sp.csr_matrix, codes: np.ndarray, which: np.ndarray,
                              items: np.ndarray) -> np.ndarray:
        """Ratings of (H[which[j]], items[j]) with the fitted similarities and statistics: the
        history rows join as extra users (never as raters of an item, nor anyone's neighbour);
        their mean and baseline b_u (one ALS user step given the fitted item biases) come from H."""
        R, m, n_users = self.user_items_, H.shape[0], self.n_users_
        counts = np.diff(H.indptr)
        owner = np.repeat(np.arange(m), counts)
        sums = np.bincount(owner, weights=H.data.astype(np.float64), minlength=m)
        h_means = np.divide(sums, counts, out=np.zeros(m), where=counts > 0)
        new_users = n_users + which
        user_bias = item_bias = None
        if self.centering == "baseline":
            dev = np.bincount(owner, weights=H.data - self.global_mean_ - self.item_bias_[H.indices], minlength=m)
            den = float(self.baseline_reg_users) + counts
            user_bias = np.r_[self.user_bias_, np.divide(dev, den, out=np.zeros(m), where=den > 0)]
            item_bias = self.item_bias_
        if self.user_based:
            X = sp.vstack([R, H]).tocsr()
            Xt = sp.hstack([self._Xt, sp.csr_matrix((self.n_items_, m), dtype=R.dtype)]).tocsr()
            known = np.flatnonzero(codes >= 0)        # a known user is not its own neighbour
            itself = sp.csr_matrix((np.ones(known.size, np.float32), (known, codes[known])), shape=(m, n_users))
            shifted = self._sim_input(sp.vstack([R, H]).tocsr())
            fresh = similarity_topk(shifted[n_users:], max(n_users, 1), shifted[:n_users], exclude=itself,
                                    **self._sim_options())
            S = sp.vstack([self.similarity_, fresh]).tocsr()
            S = sp.csr_matrix((S.data, S.indices, S.indptr), shape=(n_users + m, n_users + m))
            stats = RatingStats(self.centering, self.global_mean_, np.r_[self.means_, h_means],
                                user_bias, item_bias, self.rating_low_, self.rating_high_)
            x, y = new_users, items
        else:
            Xt = sp.vstack([R, H]).tocsr()
            X = sp.hstack([self._X, sp.csr_matrix((self.n_items_, m), dtype=R.dtype)]).tocsr()
            S = self.similarity_
            stats = RatingStats(self.centering, self.global_mean_, self.means_, item_bias, user_bias,
                                self.rating_low_, self.rating_high_)
            x, y = items, new_users
        Xt.sort_indices()
        return predict_pairs(x, y, X, Xt, S, int(self.k), int(self.min_k), stats, int(self.num_threads))

    # ------------------------------------------------------------------ predict
    def _predict_codes(self, users, items):
        if self.feedback == "explicit":
            x, y = (users, items) if self.user_based else (items, users)
            stats = RatingStats(self.centering, self.global_mean_, self.means_,
                                *self._xy_biases(), self.rating_low_, self.rating_high_)
            return predict_pairs(x, y, self._X, self._Xt, self.similarity_, int(self.k), int(self.min_k),
                                 stats, int(self.num_threads))
        out = np.zeros(users.size)
        uniq, inv = np.unique(users, return_inverse=True)
        for part in dense_blocks(uniq.size, self.n_items_):
            block_users = uniq[part]
            P = self._scores_of(self._left_operand(block_users, self.user_items_[block_users]))
            P.sort_indices()
            sel = np.flatnonzero((inv >= part.start) & (inv < part.stop))
            out[sel] = lookup(P, inv[sel] - part.start, items[sel])
        return out

    def _xy_biases(self):
        if self.centering != "baseline":
            return None, None
        if self.user_based:
            return self.user_bias_, self.item_bias_
        return self.item_bias_, self.user_bias_

    # ------------------------------------------------------------------ neighbours
    def _neighbours(self, which: Any, n: int, ids: bool, item_side: bool):
        self._require_fitted()
        n = v.check_positive_int(n, "n")
        idmap = self.item_ids_ if item_side else self.user_ids_
        size = self.n_items_ if item_side else self.n_users_
        q = np.asarray(which).reshape(-1)
        name = "items" if item_side else "users"
        q = known_codes(idmap, q, name) if ids else q.astype(np.int64)
        check_code_range(q, size, name)
        if item_side != self.user_based:          # the stored lists are of this side
            S = self.similarity_[q]
        else:
            Z = self._Xt if self.user_based else self.user_items_
            Z = self._sim_input(Z)
            S = similarity_topk(Z[q], n, Z, exclude=self_pattern(q, size), **self._sim_options())
        items = np.full((q.size, n), PAD_ITEM, dtype=np.int64)
        scores = np.full((q.size, n), PAD_SCORE, dtype=np.float32)
        lengths = np.diff(S.indptr)
        rows = np.repeat(np.arange(q.size), lengths)
        place = np.arange(S.nnz) - S.indptr[:-1][rows]
        keep = place < n
        items[rows[keep], place[keep]] = S.indices[keep]
        scores[rows[keep], place[keep]] = S.data[keep]
        if ids:
            return ids_of_codes(idmap, items), scores
        return items, scores

    # ------------------------------------------------------------------ explanations
    def explain(self, user: Any, item: Any, *, history: Any = None, ids: bool = False):
        r"""Why ``item`` scores what it does for ``user`` (implicit feedback): ItemKNN lists each
        history item j with its contribution :math:`r_{uj}\, s(j, i)`, UserKNN each neighbour v
        with :math:`s(u, v)\, r_{vi}`; the contributions sum to the score ``recommend`` ranks by.
        ``history``: as in recommend (one row). Returns an :class:`Explanation`."""
        from recforge.models.explanation import Explanation, ranked

        self._require_fitted()
        if self.feedback == "explicit":
            raise NotImplementedError("explain covers implicit-feedback scores; an explicit rating prediction "
                                      "is a weighted mean over the neighbours (see predict)")
        codes = self._user_codes([user], ids, allow_unknown=history is not None)
        rows = self._history(codes, [user], history, ids).rows
        i = known_codes(self.item_ids_, [item], "item")[0] if ids else int(item)
        check_code_range(np.array([i]), self.n_items_, "item")
        left = self._left_operand(codes, rows)                      # 1 x (items or users)
        sources = left.indices.astype(np.int64)
        if self.user_based:
            values = self.user_items_[sources, i].toarray().reshape(-1) if sources.size else np.zeros(0)
        else:
            values = self.similarity_[sources, i].toarray().reshape(-1) if sources.size else np.zeros(0)
        contributions = left.data.astype(np.float64) * values
        score = float(contributions.sum())
        sources, contributions = ranked(sources, contributions)
        labels = ids_of_codes(self.user_ids_ if self.user_based else self.item_ids_, sources) if ids else sources
        if self.user_based:
            return Explanation(score, users=labels, user_contributions=contributions)
        return Explanation(score, items=labels, item_contributions=contributions)

    def similar_items(self, items, n=10, *, ids=False):
        """The n items most similar to each item (never itself), best first; padded -1 / -inf.
        ItemKNN reads its stored lists (at most k per item with implicit feedback)."""
        return self._neighbours(items, n, ids, item_side=True)

    def similar_users(self, users, n=10, *, ids=False):
        """The n users most similar to each user (never itself), best first; padded -1 / -inf.
        UserKNN reads its stored lists (at most k per user with implicit feedback)."""
        return self._neighbours(users, n, ids, item_side=False)
