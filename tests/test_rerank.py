"""Re-rankers: hand-worked examples, per-user loop references written from the papers' greedy
definitions (independent of the vectorised code), and the properties each promises."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recforge.rerank import calibrate, category_distribution, debias_popularity, kl_divergence, mmr


# ----------------------------------------------------------------------------- MMR
def test_mmr_hand_worked():
    # items 0 and 1 point the same way, item 2 is orthogonal; relevance 1, 0.9, 0 after scaling
    V = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    items, scores = np.array([[0, 1, 2]]), np.array([[5.0, 4.6, 0.6]])
    # lambda 0.5: step 1 picks 0; then item 1: 0.5*0.9 - 0.5*1 = -0.05 < item 2: 0 - 0 = 0
    got, kept = mmr(items, scores, V, lambda_=0.5, n=3)
    assert got.tolist() == [[0, 2, 1]]
    np.testing.assert_allclose(kept, [[5.0, 0.6, 4.6]])
    assert mmr(items, scores, V, lambda_=1.0, n=3)[0].tolist() == [[0, 1, 2]]
    assert mmr(items, scores, V, lambda_=0.0, n=2)[0].tolist() == [[0, 2]]   # ties: earlier candidate


def _greedy_loop(row_items, row_scores, n, value):
    """Per-user reference greedy: the valid candidates, their min-max scaled relevance, and at
    each step the not-yet-chosen position with the highest value(pos, chosen, rel, cand) (the
    first on ties)."""
    cand = [(i, s) for i, s in zip(row_items, row_scores) if i >= 0]
    lo, hi = min(s for _, s in cand), max(s for _, s in cand)
    rel = [((s - lo) / (hi - lo) if hi > lo else 1.0) for _, s in cand]
    chosen = []
    while len(chosen) < min(n, len(cand)):
        best, best_val = None, -math.inf
        for pos in range(len(cand)):
            if pos in chosen:
                continue
            val = value(pos, chosen, rel, cand)
            if val > best_val:
                best, best_val = pos, val
        chosen.append(best)
    return [cand[c][0] for c in chosen]


def _mmr_loop(items, scores, sim, lam, n):
    def value(pos, chosen, rel, cand):
        penalty = max((sim[cand[pos][0], cand[c][0]] for c in chosen), default=0.0)
        return lam * rel[pos] - (1 - lam) * penalty

    out = []
    for row_items, row_scores in zip(items, scores):
        picked = _greedy_loop(row_items, row_scores, n, value)
        out.append(picked + [-1] * (n - len(picked)))
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0, 1), st.integers(1, 8))
def test_mmr_equals_a_per_user_loop(seed, lam, n):
    rng = np.random.default_rng(seed)
    n_items, m, c = 30, 5, 9
    V = np.eye(4)[rng.integers(0, 4, n_items)] * rng.integers(1, 4, (n_items, 1))   # cosines exactly 0 or 1
    items = np.array([rng.choice(n_items, c, replace=False) for _ in range(m)])
    items[0, -2:] = -1                                      # padding
    scores = rng.random((m, c))
    norms = V / np.linalg.norm(V, axis=1, keepdims=True)
    sim = norms @ norms.T
    want = _mmr_loop(items, scores, sim, lam, n)
    assert mmr(items, scores, V, lambda_=lam, n=n)[0].tolist() == want
    A = np.where(rng.random(sim.shape) < 0.5, rng.random(sim.shape), 0.0)
    S = sp.csr_matrix(A + A.T)                              # a similarity is symmetric
    assert mmr(items, scores, similarity=S, lambda_=lam, n=n)[0].tolist() == \
        _mmr_loop(items, scores, S.toarray(), lam, n)


def test_mmr_raises_intra_list_diversity():
    rng = np.random.default_rng(1)
    V = rng.normal(size=(200, 8))
    scores = rng.random((20, 60))
    items = np.array([rng.choice(200, 60, replace=False) for _ in range(20)])
    Vn = V / np.linalg.norm(V, axis=1, keepdims=True)

    def ild(lists):
        return np.mean([np.mean([1 - Vn[a] @ Vn[b] for a in row for b in row if a != b]) for row in lists])

    plain, diverse = mmr(items, scores, V, lambda_=1.0)[0], mmr(items, scores, V, lambda_=0.3)[0]
    assert ild(diverse) > ild(plain)


def test_mmr_bad_input_is_named():
    with pytest.raises(ValueError, match="exactly one"):
        mmr([[0]], [[1.0]])
    with pytest.raises(ValueError, match="lambda_"):
        mmr([[0]], [[1.0]], np.ones((1, 2)), lambda_=2)
    with pytest.raises(ValueError, match="same shape"):
        mmr([[0, 1]], [[1.0]], np.ones((2, 2)))
    with pytest.raises(ValueError, match="item_vectors"):
        mmr([[5]], [[1.0]], np.ones((2, 2)))
    with pytest.raises(ValueError, match="finite"):
        mmr([[0]], [[np.nan]], np.ones((2, 2)))


# ----------------------------------------------------------------------------- calibration
def _calibrate_loop(items, scores, C, P, lam, n, alpha=0.01):
    C = C / np.maximum(C.sum(axis=1, keepdims=True), 1e-300)
    out = []
    for row_items, row_scores, p in zip(items, scores, P):
        def value(pos, chosen, rel, cand, p=p):
            trial = chosen + [pos]
            q = sum(C[cand[t][0]] for t in trial) / len(trial)
            qt = (1 - alpha) * q + alpha * p
            kl = sum(pg * math.log(pg / qg) for pg, qg in zip(p, qt) if pg > 0)
            return (1 - lam) * sum(rel[t] for t in trial) - lam * kl

        out.append(_greedy_loop(row_items, row_scores, n, value))
    return out


def test_calibration_hand_worked():
    # two action movies (0, 1) score above a drama (2); the user watches both genres equally
    C = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    P = np.array([[0.5, 0.5]])
    items, scores = np.array([[0, 1, 2]]), np.array([[3.0, 2.0, 1.0]])
    assert calibrate(items, scores, C, P, lambda_=0.0, n=2)[0].tolist() == [[0, 1]]
    # lambda 0.5, second pick: item 1 -> q=(1,0): KL = 0.5 log(0.5/0.995) + 0.5 log(0.5/0.005)
    # = 1.9589, value 0.5*(1+0.5) - 0.5*1.9589 < item 2 -> q=(.5,.5): KL 0, value 0.5*(1+0) = 0.5
    assert calibrate(items, scores, C, P, lambda_=0.5, n=2)[0].tolist() == [[0, 2]]


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0, 1), st.integers(1, 6))
def test_calibration_equals_a_per_user_loop(seed, lam, n):
    rng = np.random.default_rng(seed)
    n_items, m, c, g = 25, 4, 8, 3
    C = (rng.random((n_items, g)) < 0.4).astype(float)
    C[C.sum(axis=1) == 0, 0] = 1.0
    items = np.array([rng.choice(n_items, c, replace=False) for _ in range(m)])
    scores = rng.random((m, c))
    P = rng.dirichlet(np.ones(g), size=m)
    assert calibrate(items, scores, C, P, lambda_=lam, n=n)[0].tolist() == \
        _calibrate_loop(items, scores, C, P, lam, n)


def test_calibration_lowers_the_kl_divergence():
    rng = np.random.default_rng(3)
    n_items, g = 300, 6
    C = (rng.random((n_items, g)) < 0.25).astype(float)
    C[C.sum(axis=1) == 0, 0] = 1.0
    histories = sp.random(50, n_items, density=0.05, random_state=4, format="csr")
    P = category_distribution(histories, C)
    items = np.array([rng.choice(n_items, 80, replace=False) for _ in range(50)])
    scores = rng.random((50, 80)) + C[items, 0]              # the model favours category 0
    Cn = C / C.sum(axis=1, keepdims=True)

    def mean_kl(lists):
        return kl_divergence(P, Cn[lists].mean(axis=1)).mean()

    plain = calibrate(items, scores, C, P, lambda_=0.0)[0]
    calibrated = calibrate(items, scores, C, P, lambda_=0.7)[0]
    assert mean_kl(calibrated) < 0.5 * mean_kl(plain)


def test_category_distribution_and_kl_by_hand():
    C = np.array([[1.0, 1.0], [0.0, 2.0]])                  # item 0: half/half, item 1: all g1
    H = sp.csr_matrix(np.array([[1.0, 1.0], [0.0, 0.0]]))
    np.testing.assert_allclose(category_distribution(H, C), [[0.25, 0.75], [0.0, 0.0]])
    p, q = np.array([0.25, 0.75]), np.array([0.5, 0.5])
    want = 0.25 * math.log(0.25 / (0.99 * 0.5 + 0.01 * 0.25)) + 0.75 * math.log(0.75 / (0.99 * 0.5 + 0.01 * 0.75))
    assert kl_divergence(p, q) == pytest.approx(want)


# ----------------------------------------------------------------------------- popularity
def test_debias_popularity_hand_worked():
    counts = np.array([100.0, 1.0, 10.0])
    items, scores = np.array([[0, 1, 2]]), np.array([[1.0, 0.5, 0.0]])
    # rel 1, .5, 0; pi = log(1+c)/log(101): 1, .150, .520; beta .5: 0, .175, -.26
    got, kept = debias_popularity(items, scores, counts, beta=0.5, n=3)
    assert got.tolist() == [[1, 0, 2]]
    np.testing.assert_allclose(kept, [[0.5, 1.0, 0.0]])
    assert debias_popularity(items, scores, counts, beta=0.0, n=3)[0].tolist() == [[0, 1, 2]]


def test_rerankers_give_exactly_n_and_pad_only_when_short():
    rng = np.random.default_rng(5)
    V, counts = rng.normal(size=(40, 3)), rng.integers(0, 50, 40)
    items = np.array([rng.choice(40, 12, replace=False) for _ in range(6)])
    items[2, 3:] = -1                                        # user 2 has only 3 candidates
    scores = rng.random((6, 12))
    C = np.eye(4)[rng.integers(0, 4, 40)]
    P = np.full((6, 4), 0.25)
    for out, _ in (mmr(items, scores, V, n=5), debias_popularity(items, scores, counts, n=5),
                   calibrate(items, scores, C, P, n=5)):
        assert out.shape == (6, 5)
        for u in range(6):
            real = out[u][out[u] >= 0]
            assert len(set(real)) == real.size and set(real) <= set(items[u][items[u] >= 0])
            assert real.size == (3 if u == 2 else 5)
