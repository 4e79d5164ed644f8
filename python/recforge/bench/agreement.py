"""Checks that two implementations of a kernel computed the same answer (within float32 rounding)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

SCORE_TOL = 1e-4        # relative to the largest |score|
FLOAT32_EPS = float(np.finfo(np.float32).eps)
INDEX_AGREEMENT = 0.999  # share of top-k indices that must match (near-ties may swap)


def topk_rows(S: sp.spmatrix, k: int) -> np.ndarray:
    """Each row's k best stored scores without the diagonal, best first; NaN where a row has fewer."""
    S = sp.csr_matrix(S, dtype=np.float64, copy=True)
    rows = np.repeat(np.arange(S.shape[0]), np.diff(S.indptr))
    keep = (S.indices != rows) & (S.data != 0)
    rows, data = rows[keep], S.data[keep]
    order = np.lexsort((-data, rows))
    rows, data = rows[order], data[order]
    starts = np.searchsorted(rows, np.arange(S.shape[0]))
    rank = np.arange(rows.size) - starts[rows]
    out = np.full((S.shape[0], k), np.nan)
    top = rank < k
    out[rows[top], rank[top]] = data[top]
    return out


def same_topk_scores(reference: np.ndarray, other: np.ndarray, terms: int = 1) -> tuple[bool, str]:
    """Equal NaN patterns, and scores equal within (SCORE_TOL + terms x float32 eps) x the largest score.

    ``terms`` is the longest sum behind a score: a float32 sum of n terms may be off by about
    n eps of its magnitude (the worst-case bound), e.g. 1e-3 for a 17,000-term cosine.
    """
    if reference.shape != other.shape:
        return False, f"shapes differ: {reference.shape} vs {other.shape}"
    if not np.array_equal(np.isnan(reference), np.isnan(other)):
        differ = int(np.count_nonzero(np.isnan(reference) != np.isnan(other)))
        return False, f"{differ} neighbour slots present in one result only"
    scale = max(float(np.nanmax(np.abs(reference))) if np.isfinite(reference).any() else 1.0, 1e-30)
    diff = float(np.nanmax(np.abs(reference - other))) if np.isfinite(reference).any() else 0.0
    tol = (SCORE_TOL + terms * FLOAT32_EPS) * scale
    return diff <= tol, f"max |score difference| {diff:.2e} (tolerance {tol:.1e})"


def same_dense_topk(ref: tuple[np.ndarray, np.ndarray], other: tuple[np.ndarray, np.ndarray]) -> tuple[bool, str]:
    """(indices, scores) pairs: scores within tolerance, almost all indices equal."""
    (ri, rs), (oi, os_) = ref, other
    ri, rs, oi, os_ = map(np.asarray, (ri, rs, oi, os_))
    if rs.shape != os_.shape:
        return False, f"shapes differ: {rs.shape} vs {os_.shape}"
    scale = max(float(np.max(np.abs(rs[np.isfinite(rs)]))) if np.isfinite(rs).any() else 1.0, 1e-30)
    diff = float(np.max(np.abs(rs.astype(np.float64) - os_.astype(np.float64)))) if rs.size else 0.0
    same = float(np.mean(ri == oi)) if ri.size else 1.0
    ok = diff <= SCORE_TOL * scale and same >= INDEX_AGREEMENT
    return ok, f"max |score difference| {diff:.2e}, {same:.2%} indices equal"


def same_dense(ref: np.ndarray, other: np.ndarray) -> tuple[bool, str]:
    ref, other = np.asarray(ref, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if ref.shape != other.shape:
        return False, f"shapes differ: {ref.shape} vs {other.shape}"
    scale = max(float(np.max(np.abs(ref))) if ref.size else 1.0, 1e-30)
    diff = float(np.max(np.abs(ref - other))) if ref.size else 0.0
    return diff <= SCORE_TOL * scale, f"max |difference| {diff:.2e} (largest |value| {scale:.2e})"
