"""recforge.torch.samplers: never a positive, exactly uniform, reproducible, clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

from recforge.torch.samplers import PopularityNegativeSampler, UniformNegativeSampler


@st.composite
def user_items(draw):
    users = draw(st.integers(1, 12))
    items = draw(st.integers(2, 30))
    density = draw(st.floats(0.0, 0.95))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    dense = rng.random((users, items)) < density
    dense[np.arange(users), rng.integers(0, items, users)] = False  # every user keeps a negative
    values = np.where(dense, rng.integers(1, 5, (users, items)), 0).astype(np.float32)
    return sp.csr_matrix(values), seed


@settings(max_examples=60, deadline=None)
@given(user_items(), st.integers(1, 7))
def test_never_returns_a_positive(case, n_neg):
    X, seed = case
    sampler = UniformNegativeSampler(X, seed=seed)
    users = np.random.default_rng(seed).integers(0, X.shape[0], 40)
    out = sampler.sample(users, n_neg)
    assert out.shape == (40, n_neg) and out.dtype == np.int64
    dense = X.toarray() != 0
    assert out.min() >= 0 and out.max() < X.shape[1]
    assert not dense[users[:, None], out].any()


def test_uniform_over_the_non_positive_items():
    positives = [1, 3, 4, 9]  # 10 items: 6 negatives, including the first and the last
    X = sp.csr_matrix((np.ones(4), positives, [0, 4]), shape=(1, 10))
    draws = UniformNegativeSampler(X, seed=7).sample(np.zeros(60_000, dtype=np.int64), 1)[:, 0]
    counts = np.bincount(draws, minlength=10)
    assert counts[positives].sum() == 0
    negatives = [0, 2, 5, 6, 7, 8]
    assert chisquare(counts[negatives]).pvalue > 1e-3


def test_uniform_per_user_with_many_positives():
    # user 0: all but items 0 and 19 positive; user 1: no positives
    X = sp.csr_matrix(np.vstack([np.r_[0, np.ones(18), 0], np.zeros(20)]))
    out = UniformNegativeSampler(X, seed=3).sample(np.array([0, 1] * 20_000), 1)[:, 0]
    first = np.bincount(out[0::2], minlength=20)
    assert set(np.flatnonzero(first)) == {0, 19}
    assert chisquare(first[[0, 19]]).pvalue > 1e-3
    assert chisquare(np.bincount(out[1::2], minlength=20)).pvalue > 1e-3


def test_same_seed_same_draws_and_rng_argument():
    X = sp.random(30, 50, density=0.2, format="csr", random_state=1)
    users = np.arange(30).repeat(5)
    a = UniformNegativeSampler(X, seed=11).sample(users, 3)
    b = UniformNegativeSampler(X, seed=11).sample(users, 3)
    c = UniformNegativeSampler(X, seed=12).sample(users, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    s = UniformNegativeSampler(X, seed=0)
    np.testing.assert_array_equal(s.sample(users, 2, rng=np.random.default_rng(5)),
                                  s.sample(users, 2, rng=np.random.default_rng(5)))


def test_draws_do_not_depend_on_the_thread_count():
    X = sp.random(200, 300, density=0.05, format="csr", random_state=2)
    users = np.random.default_rng(0).integers(0, 200, 70_000)  # above the one-thread cut-off
    draws = [UniformNegativeSampler(X, num_threads=t).sample(users, 2, rng=np.random.default_rng(1)) for t in (1, 2, 3)]
    np.testing.assert_array_equal(draws[0], draws[1])
    np.testing.assert_array_equal(draws[0], draws[2])


def test_bad_input_and_users_with_every_item_positive():
    X = sp.csr_matrix(np.array([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]))
    sampler = UniformNegativeSampler(X)
    assert set(sampler.sample(np.array([1] * 50), 1)[:, 0]) == {1, 2}
    with pytest.raises(ValueError, match=r"users \[0\] have every item positive"):
        sampler.sample(np.array([1, 0]), 1)
    with pytest.raises(ValueError, match="users must lie in"):
        sampler.sample(np.array([2]), 1)
    with pytest.raises(TypeError, match="users must be a 1-D integer array"):
        sampler.sample(np.array([0.5]), 1)
    with pytest.raises(ValueError, match="n_neg must be >= 1"):
        sampler.sample(np.array([1]), 0)
    with pytest.raises(TypeError, match="user_items"):
        UniformNegativeSampler(np.ones((2, 2)))
    with pytest.raises(TypeError, match="rng must be"):
        sampler.sample(np.array([1]), 1, rng=3)
    assert sampler.sample(np.array([], dtype=np.int64), 2).shape == (0, 2)


def test_popularity_sampler_frequencies_and_log_q():
    counts = np.array([5, 0, 1, 10, 4])
    sampler = PopularityNegativeSampler(counts, alpha=1.0, seed=2)
    items, log_q = sampler.sample((300, 100))
    assert items.shape == log_q.shape == (300, 100)
    np.testing.assert_allclose(log_q, np.log(counts[items] / 20.0), rtol=1e-12)
    freq = np.bincount(items.ravel(), minlength=5)
    assert freq[1] == 0
    nonzero = [0, 2, 3, 4]
    assert chisquare(freq[nonzero], counts[nonzero] / 20.0 * items.size).pvalue > 1e-3
    # alpha = 0.5 with smoothing 1: q_j proportional to sqrt(c_j + 1), every item drawable
    smooth = PopularityNegativeSampler(counts, alpha=0.5, smoothing=1.0, seed=2)
    weights = np.sqrt(counts + 1.0)
    np.testing.assert_allclose(smooth.probabilities, weights / weights.sum(), rtol=1e-12)
    # from a user x item matrix: counts per column
    X = sp.csr_matrix(np.array([[1, 0, 1], [1, 0, 0]], dtype=np.float32))
    np.testing.assert_allclose(PopularityNegativeSampler(X).probabilities, [2 / 3, 0, 1 / 3])
    with pytest.raises(ValueError, match="no item a positive probability"):
        PopularityNegativeSampler(np.zeros(3))
    with pytest.raises(ValueError, match="item_counts must be finite"):
        PopularityNegativeSampler(np.array([1.0, -1.0]))
