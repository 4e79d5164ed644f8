"""Brute-force dense references for similarity_topk, written from the formulas (loops over pairs)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

K1, B = 1.2, 0.75


def random_int_csr(m, d, density, seed, dtype=np.float32):
    """A seeded random m x d CSR with integer values 1..5 (exact in float32 sums of few terms)."""
    rng = np.random.default_rng(seed)
    X = sp.random(m, d, density=density, format="csr", random_state=rng, dtype=np.float64)
    X.data = rng.integers(1, 6, X.nnz).astype(np.float64)
    return X.astype(dtype)


def merge_by_hand(parts, k):
    """Row by row: every candidate of every part, best score first, ties smaller column first."""
    m, n = parts[0].shape
    rows = []
    for i in range(m):
        found = [(float(P.data[t]), int(P.indices[t])) for P in parts for t in range(P.indptr[i], P.indptr[i + 1])]
        rows.append(sorted(found, key=lambda sc: (-sc[0], sc[1]))[:k])
    return rows


def _cosine(a, b):
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return 0.0 if na == 0 or nb == 0 else float(a @ b) / (na * nb)


def centre_columns(Xd, Yd):
    stacked = np.vstack([Xd, Yd]) if Yd is not None else Xd
    stored = stacked != 0
    counts = stored.sum(axis=0)
    means = np.where(counts > 0, stacked.sum(axis=0) / np.maximum(counts, 1), 0.0)
    centre = lambda M: np.where(M != 0, M - means, 0.0)  # noqa: E731
    return centre(Xd), (None if Yd is None else centre(Yd))


def weight_rows(Xd, Yd, metric):
    corpus = Xd if Yd is None else Yd
    N = corpus.shape[0]
    df = (corpus != 0).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        idf = np.log(N) - np.log1p(df)
        avg = corpus.sum(axis=1).mean() if N else 0.0

    def weigh(M):
        out = np.zeros_like(M, dtype=np.float64)
        for r in range(M.shape[0]):
            length = M[r].sum()
            for c in range(M.shape[1]):
                v = M[r, c]
                if v == 0:
                    continue
                if metric == "tfidf":
                    out[r, c] = np.sqrt(v) * idf[c]
                else:
                    norm = (1 - B) + B * length / avg
                    out[r, c] = v * (K1 + 1) / (K1 * norm + v) * idf[c]
        return out

    return weigh(Xd), (None if Yd is None else weigh(Yd))


def reference_similarity(Xd, Yd, metric, shrink=0.0, min_support=1):
    """Dense m x n similarities; Yd None means Y = X (the diagonal is left for the caller).

    Stored entries are the non-zeros of the inputs; reweighting (centring, TF-IDF, BM25) changes
    values, never which entries are stored.
    """
    Xd = np.asarray(Xd, dtype=np.float64)
    Yd = None if Yd is None else np.asarray(Yd, dtype=np.float64)
    Mx = Xd != 0
    My = Mx if Yd is None else Yd != 0
    if metric == "adjusted_cosine":
        Xd, Yd = centre_columns(Xd, Yd)
    elif metric in ("tfidf", "bm25"):
        Xd, Yd = weight_rows(Xd, Yd, metric)
    if Yd is None:
        Yd = Xd

    def base(a, b, ma, mb):
        co = ma & mb
        n = co.sum()
        if metric == "dot":
            return float(a @ b)
        if metric in ("cosine", "adjusted_cosine", "tfidf", "bm25"):
            return _cosine(a, b)
        if metric == "jaccard":
            return 0.0 if n == 0 else n / float((ma | mb).sum())
        if n == 0:
            return 0.0
        x, y = a[co], b[co]
        if metric == "pearson":
            num = n * (x * y).sum() - x.sum() * y.sum()
            den = np.sqrt((n * (x * x).sum() - x.sum() ** 2) * (n * (y * y).sum() - y.sum() ** 2))
            return 0.0 if den == 0 else num / den
        if metric == "msd":
            return 1.0 / (((x - y) ** 2).sum() / n + 1.0)
        raise ValueError(metric)

    S = np.zeros((Xd.shape[0], Yd.shape[0]))
    for i in range(Xd.shape[0]):
        for j in range(Yd.shape[0]):
            n = int((Mx[i] & My[j]).sum())
            if n < min_support or n == 0:
                continue
            s = base(Xd[i], Yd[j], Mx[i], My[j])
            S[i, j] = s * n / (n + shrink) if shrink > 0 else s
    return S


def check_topk_row(ret_idx, ret_val, ref_row, k, tol, forbidden=()):
    """Asserts that one returned row is the exact top-k of ref_row (ties within tol allowed).

    Reference candidates are the columns with non-zero reference similarity (not forbidden).
    Entries whose reference score is within tol of 0 may be present or absent.
    """
    ret_idx = np.asarray(ret_idx)
    ret_val = np.asarray(ret_val, dtype=np.float64)
    assert len(ret_idx) <= k
    assert len(set(ret_idx.tolist())) == len(ret_idx), "duplicate neighbours"
    assert not set(ret_idx.tolist()) & set(forbidden), "returned a forbidden column"
    # stored best first, equal scores by smaller index
    for a in range(len(ret_idx) - 1):
        assert ret_val[a] > ret_val[a + 1] or (ret_val[a] == ret_val[a + 1] and ret_idx[a] < ret_idx[a + 1])
    assert np.all(ret_val != 0), "a zero similarity was returned"
    for j, s in zip(ret_idx, ret_val):
        assert abs(s - ref_row[j]) <= tol * max(1.0, abs(ref_row[j])), (j, s, ref_row[j])
    allowed = [j for j in range(len(ref_row)) if j not in set(forbidden)]
    clear = [j for j in allowed if abs(ref_row[j]) > tol]
    near_zero_returned = [j for j in ret_idx if abs(ref_row[j]) <= tol]
    expected = sorted(clear + near_zero_returned, key=lambda j: (-ref_row[j], j))[:k]
    assert len(ret_idx) == len(expected), (len(ret_idx), len(expected))
    np.testing.assert_allclose(ret_val, ref_row[expected], atol=tol, rtol=tol)
