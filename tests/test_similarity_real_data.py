"""similarity_topk on MovieLens 100K, against Surprise's similarities and a dense reference."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from conftest import data_file
from recforge.kernels import similarity_topk
from similarity_reference import check_topk_row


@pytest.fixture(scope="module")
def ml100k_ratings():
    raw = np.loadtxt(data_file("ml-100k", "u.data"), dtype=np.int64)
    return raw[:, 0], raw[:, 1], raw[:, 2].astype(np.float64)


def surprise_user_matrix(users, items, ratings):
    """Surprise's full trainset and the users x items matrix in Surprise's inner-id order."""
    surprise = pytest.importorskip("surprise")
    import pandas as pd
    df = pd.DataFrame({"u": users, "i": items, "r": ratings})
    trainset = surprise.Dataset.load_from_df(df, surprise.Reader(rating_scale=(1, 5))).build_full_trainset()
    rows, cols, vals = [], [], []
    for inner_u, pairs in trainset.ur.items():
        for inner_i, r in pairs:
            rows.append(inner_u); cols.append(inner_i); vals.append(r)
    X = sp.csr_matrix((vals, (rows, cols)), shape=(trainset.n_users, trainset.n_items))
    return trainset, X


@pytest.mark.parametrize("metric", ["pearson", "msd"])
@pytest.mark.parametrize("min_support", [1, 5])
def test_user_similarities_equal_surprise(ml100k_ratings, metric, min_support):
    similarities = pytest.importorskip("surprise.similarities")
    trainset, X = surprise_user_matrix(*ml100k_ratings)
    reference = getattr(similarities, metric)(trainset.n_users, trainset.ir, min_support)
    np.fill_diagonal(reference, 0.0)
    k = 30
    S = similarity_topk(X, k, metric=metric, min_support=min_support)
    for u in range(X.shape[0]):
        row = S.getrow(u)
        check_topk_row(row.indices, row.data, reference[u], k, 1e-6, forbidden=[u])


def test_item_cosine_on_ml100k_matches_dense_reference(ml100k_ratings):
    users, items, ratings = ml100k_ratings
    R = sp.csr_matrix((ratings.astype(np.float32), (users - 1, items - 1)))
    X = R.T.tocsr()  # items x users
    dense = X.toarray().astype(np.float64)
    norms = np.linalg.norm(dense, axis=1)
    ref = dense @ dense.T / np.outer(norms, norms)
    np.fill_diagonal(ref, 0.0)
    k = 50
    S = similarity_topk(X, k, metric="cosine")
    for i in range(X.shape[0]):
        row = S.getrow(i)
        check_topk_row(row.indices, row.data, ref[i], k, 2e-5, forbidden=[i])


def test_item_cosine_scores_agree_with_implicit(ml100k_ratings):
    nn = pytest.importorskip("implicit.nearest_neighbours")
    users, items, ratings = ml100k_ratings
    R = sp.csr_matrix((ratings.astype(np.float32), (users - 1, items - 1)))
    k = 20
    model = nn.CosineRecommender(K=k + 1, num_threads=1)
    model.fit(R, show_progress=False)
    theirs = model.similarity.tocsr()
    ours = similarity_topk(R.T.tocsr(), k, metric="cosine")
    for i in range(R.shape[1]):
        lo, hi = theirs.indptr[i], theirs.indptr[i + 1]
        keep = theirs.indices[lo:hi] != i  # implicit counts an item as its own neighbour
        their_scores = np.sort(theirs.data[lo:hi][keep])[::-1][:k]
        our_scores = ours.getrow(i).data
        n = min(len(their_scores), len(our_scores))
        np.testing.assert_allclose(our_scores[:n], their_scores[:n], atol=1e-5)
