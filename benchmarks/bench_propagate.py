"""LightGCN propagation (3 layers, d=64, mean) against scipy's and torch's sparse products.

One group per input ("propagate <size>": the normalised bipartite adjacency of the size's
users x items matrix); the implementations are its parametrised cases
(recforge.bench.cases.propagate_case, as in ``recforge bench``), each checked against recforge's
result (max |difference| <= 1e-4 x the largest value) before it is timed.

    pytest benchmarks/bench_propagate.py --benchmark-only -k "small or gowalla"
"""
from __future__ import annotations

import pytest
from benchmarks.harness import time_case

from recforge.bench.cases import IMPL_KEYS

KERNEL = "propagate"
SIZES = ("tiny", "small", "medium", "large", "ml100k", "gowalla")


@pytest.mark.parametrize("impl", IMPL_KEYS[KERNEL])
def test_propagate(benchmark, size, impl, threads):
    time_case(benchmark, KERNEL, size, impl, threads)
