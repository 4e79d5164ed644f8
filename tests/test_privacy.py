"""Differentially private ItemKNN and MostPopular: the sensitivity bound checked exhaustively, the
noise scale against its calibration (the analytic Gaussian mechanism's condition computed here
with scipy.stats), epsilon = inf equal to the non-private models, and the contract."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import norm

import recforge
from recforge.models import ItemKNN, MostPopular, UserKNN
from recforge.privacy import DP, gaussian_sigma
from recforge.privacy import cooccurrence
from recforge.privacy.cooccurrence import bounded_histories, noisy_pairs, weighted_cooccurrence

from test_models_contract import RecommenderContract, random_user_items


class TestPrivateItemKNNContract(RecommenderContract):
    def make_model(self):
        return ItemKNN(k=8, progress=False, privacy=DP(epsilon=5.0, delta=1e-5))


class TestPrivateMostPopularContract(RecommenderContract):
    def make_model(self):
        return MostPopular(privacy=DP(epsilon=2.0))


def _upper(C):
    return C[np.triu_indices(C.shape[0])]


def test_one_user_moves_the_clipped_statistics_by_at_most_one():
    """Exhaustively: for every user of a small matrix (heavy and light users, an empty one), the
    released upper triangle of C with and without that user differs by <= 1 in L2, and the
    private popularity counts likewise."""
    rng = np.random.default_rng(0)
    dense = (rng.random((12, 7)) < rng.random((12, 1))).astype(float)
    dense[3] = 1.0                  # a user with every item
    dense[5] = 0.0                  # a user with none
    R = sp.csr_matrix(dense)
    B = bounded_histories(R, None, rng)
    full = _upper(weighted_cooccurrence(B))
    lengths = np.diff(B.indptr).astype(float)
    counts = np.asarray((sp.diags(np.divide(1, np.sqrt(lengths), out=np.zeros(12), where=lengths > 0)) @ B)
                        .sum(axis=0)).ravel()
    worst = 0.0
    for u in range(12):
        others = np.delete(np.arange(12), u)
        without = _upper(weighted_cooccurrence(B[others]))
        worst = max(worst, np.linalg.norm(full - without))
        lo = lengths[others]
        w = np.divide(1, np.sqrt(lo), out=np.zeros(11), where=lo > 0)
        assert np.linalg.norm(counts - np.asarray((sp.diags(w) @ B[others]).sum(axis=0)).ravel()) <= 1 + 1e-12
    assert worst <= 1 + 1e-12
    assert worst > 0.7, "the bound is nearly reached by the heaviest user"


def test_history_cap_samples_without_replacement():
    R = sp.csr_matrix(np.ones((3, 50)))
    B = bounded_histories(R, 7, np.random.default_rng(1))
    assert np.all(np.diff(B.indptr) == 7) and np.all(B.data == 1)
    assert len({tuple(B[u].indices) for u in range(3)}) == 3, "each user draws its own sample"


@pytest.mark.parametrize("epsilon, delta", [(0.1, 1e-5), (1.0, 1e-5), (10.0, 1e-6)])
def test_sigma_is_the_smallest_that_satisfies_the_analytic_condition(epsilon, delta):
    def leak(sigma):
        a, b = 1 / (2 * sigma), epsilon * sigma
        return norm.cdf(a - b) - math.exp(epsilon) * norm.cdf(-a - b)

    sigma = gaussian_sigma(epsilon, delta)
    assert leak(sigma) <= delta * (1 + 1e-9)
    assert leak(sigma * 0.999) > delta
    if epsilon < 1:
        assert sigma <= math.sqrt(2 * math.log(1.25 / delta)) / epsilon, "never worse than the classic bound"
    assert gaussian_sigma(math.inf, delta) == 0.0


def _noisy_matrix(C, sigma, cut, seed):
    """The noisy pairs of a symmetric C (dense array), assembled from row blocks of NOISE_TILE."""
    n, T = C.shape[0], cooccurrence.NOISE_TILE
    out = np.zeros((n, n))
    for start in range(0, n, T):
        block = noisy_pairs(sp.csr_matrix(C[start:start + T]), start, n, sigma, cut, seed)
        assert not np.any(block.col == block.row + start), "never the diagonal"
        out[block.row + start, block.col] = block.data
    return out


def test_empirical_noise_matches_the_calibration(monkeypatch):
    """Pairs with a count far above the cut keep count + N(0, sigma^2): one symmetric draw each."""
    monkeypatch.setattr(cooccurrence, "NOISE_TILE", 4)
    sigma, n = gaussian_sigma(1.0, 1e-5), 10
    C = np.full((n, n), 1000.0)
    samples = []
    for seed in range(60):
        noisy = _noisy_matrix(C, sigma, 1.0, seed)
        np.testing.assert_array_equal(noisy, noisy.T)
        samples.append(noisy[np.triu_indices(n, 1)] - 1000.0)
    samples = np.concatenate(samples)                        # 60 x 45 draws
    assert np.unique(samples).size == samples.size
    assert abs(samples.mean()) < 4 * sigma / math.sqrt(samples.size)
    assert samples.std() == pytest.approx(sigma, rel=0.05)


def test_zero_pairs_survive_as_the_thresholded_gaussian(monkeypatch):
    """Zero pairs: the surviving count per draw is Binomial(M, P(Z >= cut)) in mean and variance,
    and the surviving values follow the normal truncated at the cut (Kolmogorov-Smirnov)."""
    from scipy.stats import kstest, truncnorm

    monkeypatch.setattr(cooccurrence, "NOISE_TILE", 8)
    n, sigma, t = 30, 2.0, 1.5
    q, M = norm.sf(t), n * (n - 1) // 2
    counts, values = [], []
    for seed in range(150):
        noisy = _noisy_matrix(np.zeros((n, n)), sigma, t * sigma, seed)
        np.testing.assert_array_equal(noisy, noisy.T)
        upper = noisy[np.triu_indices(n, 1)]
        counts.append(np.count_nonzero(upper))
        values.append(upper[upper != 0])
    counts = np.array(counts)
    assert abs(counts.mean() - M * q) < 4 * math.sqrt(M * q * (1 - q) / counts.size)
    assert counts.var() == pytest.approx(M * q * (1 - q), rel=0.3)
    values = np.concatenate(values)
    assert values.min() >= t * sigma
    assert kstest(values, truncnorm(t, np.inf, scale=sigma).cdf).pvalue > 1e-3


def test_noisy_pairs_do_not_depend_on_the_blocking(monkeypatch):
    """The same seed gives the same symmetric matrix for tiles of 4 read in row blocks, and a
    sparse C keeps its pattern's noise and the zero pairs' survivors across blocks."""
    monkeypatch.setattr(cooccurrence, "NOISE_TILE", 4)
    rng = np.random.default_rng(2)
    A = np.where(rng.random((11, 11)) < 0.3, rng.random((11, 11)) * 8, 0.0)
    C = np.triu(A, 1) + np.triu(A, 1).T
    first = _noisy_matrix(C, 1.0, 0.5, seed=3)
    np.testing.assert_allclose(first, first.T, rtol=1e-12)
    np.testing.assert_array_equal(_noisy_matrix(C, 1.0, 0.5, seed=3), first)
    assert not np.array_equal(_noisy_matrix(C, 1.0, 0.5, seed=4), first)
    for start in (8, 4):                                     # any block, in any order
        block = noisy_pairs(sp.csr_matrix(C[start:start + 4]), start, 11, 1.0, 0.5, 3).toarray()
        np.testing.assert_array_equal(block, first[start:start + 4])
    with pytest.raises(ValueError, match="start"):
        noisy_pairs(sp.csr_matrix(C[2:6]), 2, 11, 1.0, 0.5, 3)
    with pytest.raises(ValueError, match="C_rows"):
        noisy_pairs(sp.csr_matrix(C[4:11]), 4, 11, 1.0, 0.5, 3)


def test_infinite_epsilon_is_the_non_private_model_exactly():
    R = random_user_items(60, 40, seed=3)
    a, b = ItemKNN(k=6, progress=False, privacy=DP(epsilon=math.inf)).fit(R), ItemKNN(k=6, progress=False).fit(R)
    for x, y in zip(a.recommend(np.arange(60), 10), b.recommend(np.arange(60), 10)):
        np.testing.assert_array_equal(x, y)
    p, q = MostPopular(privacy=DP(epsilon=math.inf)).fit(R), MostPopular().fit(R)
    np.testing.assert_array_equal(p.popularity_, q.popularity_)


def test_privacy_noise_shrinks_with_epsilon():
    R = sp.csr_matrix((np.random.default_rng(4).random((400, 30)) < 0.2).astype(np.float32))
    exact = MostPopular().fit(R).popularity_

    def error(eps):
        m = MostPopular(privacy=DP(epsilon=eps, max_items_per_user=None)).fit(R)
        lengths = np.diff(R.indptr).astype(float)
        clean = np.asarray((sp.diags(1 / np.sqrt(np.maximum(lengths, 1))) @ R).sum(axis=0)).ravel()
        return np.abs(m.popularity_ - clean).mean(), m.privacy_sigma_

    (e1, s1), (e10, s10) = error(0.5), error(20.0)
    assert s10 < s1 and e10 < e1
    assert exact.argmax() == MostPopular(privacy=DP(epsilon=1e6)).fit(R).popularity_.argmax()


def test_private_model_saves_its_accounting(tmp_path):
    model = ItemKNN(k=5, progress=False, privacy=DP(epsilon=2.0, delta=1e-6, max_items_per_user=30, seed=7))
    model.fit(random_user_items(50, 30, seed=5)).save(tmp_path / "m")
    import json
    doc = json.loads((tmp_path / "m" / "model.json").read_text())
    assert doc["params"]["privacy"] == {"epsilon": 2.0, "delta": 1e-6, "max_items_per_user": 30, "threshold": 3.0,
                                        "seed": 7}
    loaded = recforge.load(tmp_path / "m")
    assert loaded.privacy == model.privacy and loaded.privacy_sigma_ == pytest.approx(model.privacy_sigma_)


def test_bad_privacy_arguments_are_named():
    with pytest.raises(ValueError, match="epsilon"):
        DP(epsilon=0)
    with pytest.raises(ValueError, match="delta"):
        DP(epsilon=1, delta=2)
    with pytest.raises(TypeError, match="privacy"):
        ItemKNN(privacy=1.0)
    R = random_user_items()
    with pytest.raises(ValueError, match="privacy"):
        UserKNN(privacy=DP(1.0)).fit(R)
    with pytest.raises(ValueError, match="privacy"):
        ItemKNN(similarity="jaccard", privacy=DP(1.0)).fit(R)
    with pytest.raises(ValueError, match="privacy budget"):
        ItemKNN(privacy=DP(1.0), progress=False).fit(R).partial_fit(R)


def _dense_reference(R, k, dp):
    """The mechanism written out densely, with an explicit sort per row."""
    B = bounded_histories(R, None, np.random.default_rng(dp.seed))
    sigma = gaussian_sigma(dp.epsilon, dp.delta)
    exact = weighted_cooccurrence(B)
    n = R.shape[1]
    C = _noisy_matrix(exact, sigma, dp.threshold * sigma, dp.seed)
    T = cooccurrence.NOISE_TILE
    diag = np.concatenate([np.random.Generator(np.random.Philox(np.random.SeedSequence([dp.seed, 0x9E3779B9, a, a, 1])))
                           .normal(0, sigma, T) for a in range(-(-n // T))])[:n]
    tau = 1 + (1 + dp.threshold) * sigma
    norms = np.sqrt(np.maximum(np.diag(exact) + diag, tau))
    lists = []
    for i in range(n):
        scored = [(-(C[i, j] / norms[i] / norms[j]), j) for j in range(n)
                  if j != i and C[i, j] >= dp.threshold * sigma and C[i, j] != 0]
        lists.append([(j, -s) for s, j in sorted(scored)[:k]])
    return lists


@pytest.mark.parametrize("tile", [4, 512])
def test_blockwise_neighbours_equal_the_dense_mechanism(monkeypatch, tile):
    monkeypatch.setattr(cooccurrence, "NOISE_TILE", tile)
    R = sp.csr_matrix((np.random.default_rng(8).random((300, 13)) < 0.3).astype(np.float32))
    dp = DP(epsilon=8.0, delta=1e-5, max_items_per_user=None, threshold=1.0, seed=5)
    S, sigma = cooccurrence.private_item_neighbours(R, 4, dp)
    assert sigma == gaussian_sigma(8.0, 1e-5) and S.shape == (13, 13)
    expected = _dense_reference(R, 4, dp)
    assert sum(map(len, expected)) > 13, "the test needs neighbours above the threshold"
    for i, pairs in enumerate(expected):
        row = S[i]
        assert row.indices.tolist() == [j for j, _ in pairs]
        np.testing.assert_allclose(row.data, [s for _, s in pairs], rtol=1e-6)


def test_top_k_sparse_breaks_ties_by_the_smaller_column():
    rows = np.array([0, 0, 0, 0, 0, 2, 2])
    cols = np.array([3, 0, 2, 1, 4, 5, 1])
    vals = np.array([0.5, 0.5, 0.5, 0.2, 0.0, 0.1, -0.3])
    T = cooccurrence.top_k_sparse(rows, cols, vals, 3, 6, 2)
    assert T[0].indices.tolist() == [0, 2] and T[0].data.tolist() == [0.5, 0.5]
    assert T[1].nnz == 0 and T[2].indices.tolist() == [5], "only positive entries are kept"
