"""ItemKNN / UserKNN with implicit feedback: the contract, brute-force numpy references for the
similarity lists and scores, implicit's CosineRecommender as a peer, history= against a
refit, and partial_fit against a full refit."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recforge.data import Interactions
from recforge.models import ItemKNN, UserKNN
from recforge.models.neighbourhood import knn_base as knn_module
from recforge.models.neighbourhood import neighbours as neighbours_module

from conftest import data_file
from test_models_contract import RecommenderContract, random_user_items


# ----------------------------------------------------------------------------- references

def dense_similarity(rows: np.ndarray, metric: str) -> np.ndarray:
    """All-pairs similarity of the rows of a dense matrix (0 = not stored), diagonal zeroed."""
    A = np.asarray(rows, dtype=np.float64)
    stored = A != 0
    if metric == "cosine":
        norms = np.linalg.norm(A, axis=1)
        S = A @ A.T / np.outer(norms, norms).clip(min=1e-300)
    elif metric == "jaccard":
        inter = stored.astype(float) @ stored.T.astype(float)
        size = stored.sum(1)
        union = size[:, None] + size[None, :] - inter
        S = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    elif metric == "pearson":  # Surprise's pearson over co-stored dimensions
        n = A.shape[0]
        S = np.zeros((n, n))
        for a in range(n):
            for b in range(n):
                both = stored[a] & stored[b]
                c = both.sum()
                if c == 0:
                    continue
                x, y = A[a, both], A[b, both]
                num = c * (x * y).sum() - x.sum() * y.sum()
                den = np.sqrt((c * (x * x).sum() - x.sum() ** 2) * (c * (y * y).sum() - y.sum() ** 2))
                S[a, b] = num / den if den > 0 else 0.0
    else:
        raise AssertionError(metric)
    np.fill_diagonal(S, 0.0)
    return S


def keep_top_k(S: np.ndarray, k: int) -> np.ndarray:
    """Each row's k largest non-zero entries (ties: smaller column), the rest zeroed."""
    out = np.zeros_like(S)
    for r in range(S.shape[0]):
        cols = [c for c in range(S.shape[1]) if S[r, c] != 0]
        cols.sort(key=lambda c: (-S[r, c], c))
        for c in cols[:k]:
            out[r, c] = S[r, c]
    return out


def reference_scores(R: sp.csr_matrix, k: int, metric: str, user_based: bool) -> np.ndarray:
    """Users x items implicit scores: R S_k (item-based) or S_k R (user-based)."""
    D = R.toarray().astype(np.float64)
    if user_based:
        return keep_top_k(dense_similarity(D, metric), k) @ D
    return D @ keep_top_k(dense_similarity(D.T, metric), k)


# ----------------------------------------------------------------------------- contract

class TestItemKNNCosine(RecommenderContract):
    def make_model(self):
        return ItemKNN(k=5, similarity="cosine")


class TestUserKNNCosine(RecommenderContract):
    def make_model(self):
        return UserKNN(k=6, similarity="cosine")


class TestItemKNNPearson(RecommenderContract):
    """Pearson similarities can be negative: unscored items (score 0) must rank between the
    positive and the negative scores."""

    def make_model(self):
        return ItemKNN(k=8, similarity="pearson")


class TestUserKNNJaccard(RecommenderContract):
    def make_model(self):
        return UserKNN(k=4, similarity="jaccard", shrink=2.0)


# ----------------------------------------------------------------------------- brute force

@pytest.mark.parametrize("model_cls", [ItemKNN, UserKNN])
@pytest.mark.parametrize("metric", ["cosine", "jaccard", "pearson"])
@pytest.mark.parametrize("k", [1, 4, 100])
def test_scores_match_brute_force(model_cls, metric, k):
    R = random_user_items(n_users=25, n_items=18, density=0.25, seed=k)
    model = model_cls(k=k, similarity=metric).fit(R)
    want = reference_scores(R, k, metric, model_cls is UserKNN)
    u, i = np.divmod(np.arange(R.shape[0] * R.shape[1]), R.shape[1])
    np.testing.assert_allclose(model.predict(u, i).reshape(R.shape), want, rtol=2e-5, atol=1e-5)
    side = R.toarray() if model_cls is UserKNN else R.toarray().T
    np.testing.assert_allclose(model.similarity_.toarray(), keep_top_k(dense_similarity(side, metric), k),
                               rtol=2e-5, atol=1e-6)


def test_negative_scores_rank_after_unscored_items():
    # item-based, pearson: hand-made so that user 0's only scored candidate has a negative score
    # items 0 and 1 over users 1..3: (1, 2, 3) and (3, 2, 1) -> pearson -1; item 2 unrelated
    R = sp.csr_matrix(np.array([[5, 0, 0, 0],
                                [1, 3, 0, 0],
                                [2, 2, 0, 0],
                                [3, 1, 4, 2]], dtype=np.float32))
    model = ItemKNN(k=3, similarity="pearson").fit(R)
    assert model.similarity_[0, 1] == pytest.approx(-1.0)
    items, scores = model.recommend([0], n=3)
    # user 0 rated item 0 (5): item 1 scores 5 * -1 = -5; items 2, 3 have no score (0)
    np.testing.assert_array_equal(items[0], [2, 3, 1])
    np.testing.assert_allclose(scores[0], [0, 0, -5])


def test_similar_items_and_users_match_brute_force():
    R = random_user_items(n_users=30, n_items=20, seed=4)
    S_items = dense_similarity(R.toarray().T, "cosine")
    S_users = dense_similarity(R.toarray(), "cosine")
    for model in (ItemKNN(k=19).fit(R), UserKNN(k=29).fit(R)):
        for S, method in ((S_items, model.similar_items), (S_users, model.similar_users)):
            got, scores = method([0, 5], n=4)
            for row, q in zip(range(2), (0, 5)):
                want = sorted((c for c in range(S.shape[1]) if S[q, c] != 0), key=lambda c: (-S[q, c], c))[:4]
                np.testing.assert_array_equal(got[row], want)
                np.testing.assert_allclose(scores[row], S[q, want], rtol=1e-5)


# ----------------------------------------------------------------------------- peer: implicit

def _ml100k_base() -> sp.csr_matrix:
    raw = np.loadtxt(data_file("ml-100k", "u1.base"), dtype=np.int64)
    return sp.csr_matrix((raw[:, 2].astype(np.float64), (raw[:, 0] - 1, raw[:, 1] - 1)), shape=(943, 1682))


@pytest.mark.filterwarnings("ignore:Method expects CSR input")  # raised inside implicit itself
def test_item_scores_agree_with_implicit_cosine():
    """implicit's K includes the item itself, so recforge's k = K - 1; with seen items excluded
    the self term never reaches a candidate. Continuous weights make ties (where the two
    libraries may keep different equally-similar neighbours) practically impossible, except
    between items rated by one same user only (identical directions): items with fewer than
    5 ratings are left out."""
    implicit_nn = pytest.importorskip("implicit.nearest_neighbours")
    R = _ml100k_base()
    R = R[:, np.flatnonzero(np.diff(R.tocsc().indptr) >= 5)].tocsr()
    rng = np.random.default_rng(0)
    R.data = R.data + rng.random(R.nnz)
    peer = implicit_nn.CosineRecommender(K=21, num_threads=1)
    peer.fit(R.tocsr(), show_progress=False)
    users = np.arange(R.shape[0])
    want_items, want_scores = peer.recommend(users, R.tocsr(), N=20)
    model = ItemKNN(k=20, similarity="cosine").fit(R)
    items, scores = model.recommend(users, n=20)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-4)
    assert (items == want_items).mean() > 0.999


@pytest.mark.filterwarnings("ignore:Method expects CSR input")  # raised inside implicit itself
def test_item_similarities_agree_with_implicit_on_binary_data():
    """On 0/1 data many similarities tie, and the libraries may keep different tied items;
    each item's list of similarity values is the same (implicit's self entry removed; where the
    item ties at 1 with others implicit may drop itself and keep one more neighbour)."""
    implicit_nn = pytest.importorskip("implicit.nearest_neighbours")
    R = _ml100k_base()
    R.data[:] = 1.0
    peer = implicit_nn.CosineRecommender(K=11, num_threads=1)
    peer.fit(R.tocsr(), show_progress=False)
    theirs = peer.similarity.tocsr()
    ours = ItemKNN(k=10, similarity="cosine").fit(R).similarity_
    for j in range(R.shape[1]):
        row = theirs[j]
        values = np.sort(row.data[row.indices != j])
        mine = np.sort(ours[j].data)
        assert values.size - mine.size in (0, 1)
        np.testing.assert_allclose(mine, values[values.size - mine.size:], rtol=1e-5)


# ----------------------------------------------------------------------------- history

def test_user_history_equals_refit_with_that_history():
    R = random_user_items(n_users=35, n_items=25, seed=7)
    new_row = random_user_items(n_users=1, n_items=25, density=0.3, seed=8)
    model = UserKNN(k=5, similarity="cosine").fit(R)
    # a known user with newer interactions: the refit has the row replaced
    replaced = sp.vstack([R[:3], new_row, R[4:]]).tocsr()
    want = UserKNN(k=5, similarity="cosine").fit(replaced).recommend([3], n=8)
    got = model.recommend([3], n=8, history=new_row)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5)
    # a user the model never saw: the refit has the row appended
    appended = sp.vstack([R, new_row]).tocsr()
    want = UserKNN(k=5, similarity="cosine").fit(appended).recommend([35], n=8)
    got = model.recommend([-1], n=8, history=new_row)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5)


def test_item_history_scores_with_the_stored_neighbours():
    """ItemKNN keeps its item neighbours: a history row is scored as sum_j h_j S[j, i]."""
    R = random_user_items(n_users=35, n_items=25, seed=9)
    h = random_user_items(n_users=1, n_items=25, density=0.3, seed=10)
    model = ItemKNN(k=4).fit(R)
    want = h.toarray()[0].astype(np.float64) @ model.similarity_.toarray()
    items, scores = model.recommend([-1], n=25, history=h, exclude_seen=False)
    np.testing.assert_allclose(scores[0], np.sort(want)[::-1], rtol=1e-5, atol=1e-6)


def test_history_as_interactions_matches_by_id():
    R = random_user_items(n_users=20, n_items=15, seed=11)
    coo = R.tocoo()
    ids = np.array([f"i{c}" for c in range(15)], dtype=object)
    train = Interactions.from_arrays(coo.row + 100, ids[coo.col], coo.data)
    model = ItemKNN(k=4).fit(train)
    newer = Interactions.from_arrays([555, 555, 777], ["i3", "i9", "i3"], [1.0, 2.0, 1.0])
    items, _ = model.recommend([777, 555], n=3, ids=True, history=newer)
    direct, _ = model.recommend([-1, -1], n=3, history=sp.csr_matrix(
        ([1.0, 1.0, 2.0], ([0, 1, 1], [train.item_ids.code("i3"), train.item_ids.code("i3"),
                                       train.item_ids.code("i9")])), shape=(2, 15)))
    np.testing.assert_array_equal(items, train.item_ids.to_numpy()[direct])


# ----------------------------------------------------------------------------- partial_fit

@pytest.mark.parametrize("model_cls", [ItemKNN, UserKNN])
@pytest.mark.parametrize("metric", ["cosine", "pearson", "jaccard"])
def test_partial_fit_equals_full_refit(model_cls, metric, monkeypatch):
    R = random_user_items(n_users=60, n_items=50, density=0.15, seed=12)
    extra = random_user_items(n_users=64, n_items=52, density=0.004, seed=13)  # 4 new users, 2 new items
    model = model_cls(k=6, similarity=metric).fit(R)
    computed_rows = []
    real = knn_module.update_neighbours.__globals__["similarity_topk"]

    def counting(X, *args, **kwargs):
        if kwargs.get("exclude") is not None:   # a full recomputation: rows against every row
            computed_rows.append(X.shape[0])
        return real(X, *args, **kwargs)

    monkeypatch.setattr(neighbours_module, "similarity_topk", counting)
    model.partial_fit(extra)
    recomputed = sum(computed_rows)
    grown = sp.csr_matrix((R.data, R.indices, np.r_[R.indptr, [R.nnz] * 4]), shape=(64, 50))
    grown = sp.hstack([grown, sp.csr_matrix((64, 2))]).tocsr()
    refit = model_cls(k=6, similarity=metric).fit(grown + extra)
    np.testing.assert_allclose(model.similarity_.toarray(), refit.similarity_.toarray(), rtol=1e-5, atol=1e-6)
    users = np.arange(64)
    a, b = model.recommend(users, n=7), refit.recommend(users, n=7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-5)
    side = 64 if model_cls is UserKNN else 52
    assert 0 < recomputed < side, "only some neighbour lists are recomputed in full"


def test_partial_fit_with_interactions_extends_the_vocabulary():
    R = random_user_items(n_users=20, n_items=15, seed=14)
    coo = R.tocoo()
    train = Interactions.from_arrays(coo.row, coo.col + 1000, coo.data)
    model = ItemKNN(k=3).fit(train)
    more = Interactions.from_arrays([0, 99, 99], [1000, 1003, 5000], [1.0, 1.0, 1.0])
    model.partial_fit(more)
    assert len(model.user_ids_) == model.n_users_ and 99 in model.user_ids_ and 5000 in model.item_ids_
    everything = Interactions.from_arrays(np.r_[coo.row, [0, 99, 99]], np.r_[coo.col + 1000, [1000, 1003, 5000]],
                                          np.r_[coo.data, [1.0, 1.0, 1.0]])
    refit = ItemKNN(k=3).fit(everything)
    # same ids, possibly other codes: compare per original id
    order_ours = model.item_ids_.codes(refit.item_ids_.to_numpy())
    np.testing.assert_allclose(model.similarity_.toarray()[np.ix_(order_ours, order_ours)],
                               refit.similarity_.toarray(), rtol=1e-5, atol=1e-6)


def test_fit_in_blocks_equals_one_call(monkeypatch):
    R = random_user_items(n_users=50, n_items=40, seed=15)
    whole = ItemKNN(k=5).fit(R).similarity_.toarray()
    monkeypatch.setattr(neighbours_module, "BLOCK_ROWS", 7)
    blocked = ItemKNN(k=5, progress=False).fit(R).similarity_.toarray()
    np.testing.assert_allclose(blocked, whole, rtol=1e-6)


# ----------------------------------------------------------------------------- parameters

@pytest.mark.parametrize("kwargs, message", [
    ({"k": 0}, "k must be >= 1"),
    ({"similarity": "euclid"}, "similarity must be one of"),
    ({"feedback": "both"}, "feedback must be one of"),
    ({"centering": "mean"}, "centering applies to rating prediction"),
    ({"feedback": "explicit", "centering": "zscore"}, "centering must be one of"),
    ({"min_k": -1}, "min_k"),
    ({"shrink": -1.0}, "shrink"),
    ({"rating_range": (5, 1)}, "rating_range"),
])
def test_bad_parameters_are_named(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        ItemKNN(**kwargs).fit(random_user_items())


@pytest.mark.parametrize("progress", [True, False])
def test_fit_progress_bar_can_be_turned_off(monkeypatch, progress):
    calls = []
    real = neighbours_module.progress_bar

    def recording(total, desc, enabled):
        calls.append((total, enabled))
        return real(total, desc, enabled)

    monkeypatch.setattr(neighbours_module, "progress_bar", recording)
    monkeypatch.setattr(neighbours_module, "BLOCK_ROWS", 7)
    ItemKNN(k=3, progress=progress).fit(random_user_items(n_users=20, n_items=30))
    assert calls == [(30, progress)]


@pytest.mark.parametrize("model_cls", [ItemKNN, UserKNN])
@pytest.mark.parametrize("metric", ["cosine", "jaccard", "pearson", "msd", "adjusted_cosine", "bm25", "tfidf", "dot"])
def test_every_similarity_scores_as_the_formula_says(model_cls, metric):
    """Whatever the similarity, score = R S (item-based) or S R (user-based) with the model's
    own neighbour lists (each checked against numpy above for cosine/jaccard/pearson and in the
    kernel tests for the others), and every user gets exactly n items."""
    R = random_user_items(n_users=30, n_items=22, seed=21)
    model = model_cls(k=5, similarity=metric).fit(R)
    S, D = model.similarity_.toarray().astype(np.float64), R.toarray().astype(np.float64)
    assert (np.count_nonzero(S, axis=1) <= 5).all() and np.all(np.diag(S) == 0)
    want = S @ D if model_cls is UserKNN else D @ S
    u, i = np.divmod(np.arange(R.shape[0] * R.shape[1]), R.shape[1])
    np.testing.assert_allclose(model.predict(u, i).reshape(R.shape), want, rtol=2e-5, atol=1e-5)
    items, _ = model.recommend(np.arange(R.shape[0]), n=10)
    assert (items >= 0).all()


@pytest.mark.parametrize("cls", [ItemKNN, UserKNN])
def test_explain_contributions_sum_to_the_score(cls):
    """Brute force: the dense formula's terms, term by term, and their sum equals predict."""
    rng = np.random.default_rng(21)
    R = sp.random(40, 30, density=0.2, random_state=rng, format="csr", dtype=np.float32)
    R.data = (0.5 + rng.random(R.nnz)).astype(np.float32)
    model = cls(k=6, progress=False).fit(R)
    S = model.similarity_.toarray().astype(np.float64)
    D = R.toarray().astype(np.float64)
    for u, i in [(0, 3), (5, 17), (12, 29), (33, 0)]:
        e = model.explain(u, i)
        if cls is ItemKNN:
            terms = {j: D[u, j] * S[j, i] for j in range(30) if D[u, j] * S[j, i] != 0}
            got = dict(zip(e.items.tolist(), e.item_contributions.tolist()))
        else:
            terms = {v: S[u, v] * D[v, i] for v in range(40) if S[u, v] * D[v, i] != 0}
            got = dict(zip(e.users.tolist(), e.user_contributions.tolist()))
        assert got.keys() == terms.keys()
        for key in terms:
            assert got[key] == pytest.approx(terms[key], rel=1e-5)
        assert e.score == pytest.approx(sum(terms.values()), rel=1e-5, abs=1e-7)
        assert e.score == pytest.approx(model.predict([u], [i])[0], rel=1e-5, abs=1e-6)
        magnitudes = np.abs(list(got.values()))
        assert np.all(np.diff(magnitudes) <= 1e-12), "largest contribution first"
    with pytest.raises(NotImplementedError, match="explicit"):
        cls(feedback="explicit", similarity="msd", progress=False).fit(R).explain(0, 1)
