"""similarity_topk (item-item cosine, k=50) against implicit, sparse_dot_topn and chunked scipy.

One group per input ("similarity_topk <size>"); the implementations are its parametrised cases
(recforge.bench.cases.similarity_case, the same cases ``recforge bench`` times). Each peer's
top-k scores are compared rank by rank with recforge's before it is timed (tolerance: 1e-4 plus
the float32 rounding of the longest dot product, relative to the largest score).

    pytest benchmarks/bench_similarity.py --benchmark-only -k small
"""
from __future__ import annotations

import pytest
from benchmarks.harness import time_case

from recforge.bench.cases import IMPL_KEYS

KERNEL = "similarity_topk"
SIZES = ("tiny", "small", "medium", "large", "ml100k", "gowalla", "ml20m-like")


@pytest.mark.parametrize("impl", IMPL_KEYS[KERNEL])
def test_similarity_topk(benchmark, size, impl, threads):
    time_case(benchmark, KERNEL, size, impl, threads)
