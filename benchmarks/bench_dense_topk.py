"""dense_topk (inner-product top-10, 64 dims) against faiss IndexFlatIP, torch and numpy.

Two groups per size: "dense_topk <size>" and "dense_topk <size> exclude~100", where each query
excludes about 100 random items (recforge's ``exclude=``; faiss asked for k + the most excluded
in a row, then filtered in numpy; torch and numpy set the excluded scores to -inf before their
top-k). Every result is checked against recforge's before it is timed: scores within 1e-4 of the
largest, >= 99.9 % of indices equal (near-ties may swap), no excluded item returned.

    pytest benchmarks/bench_dense_topk.py --benchmark-only -k small
"""
from __future__ import annotations

import pytest
from benchmarks.harness import kernel_inputs, time_case

from recforge.bench.cases import IMPL_KEYS
from recforge.bench.inputs import random_exclusion

KERNEL = "dense_topk"
SIZES = ("tiny", "small", "medium", "large")
EXCLUDED_PER_QUERY = 100


@pytest.mark.parametrize("impl", IMPL_KEYS[KERNEL])
@pytest.mark.parametrize("excluded", [0, EXCLUDED_PER_QUERY], ids=["all-items", "exclude100"])
def test_dense_topk(benchmark, size, excluded, impl, threads):
    if not excluded:
        time_case(benchmark, KERNEL, size, impl, threads)
        return
    inputs = kernel_inputs(size)
    per_row = min(excluded, inputs.V.shape[0] // 10)
    exclude = random_exclusion(inputs.Q.shape[0], inputs.V.shape[0], per_row)
    time_case(benchmark, KERNEL, size, impl, threads, variant=f"exclude~{per_row}", exclude=exclude)
