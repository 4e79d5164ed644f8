"""The kernel benchmark behind ``recforge bench`` (importable without the CLI extra).

    from recforge.bench import synthetic, run_benchmark
    report = run_benchmark(synthetic("small"))          # JSON-ready dict

Every kernel present in :mod:`recforge.kernels` among similarity_topk, dense_topk and propagate
is timed on the CPU at 1, 2, 4, ... cores threads, on CUDA when usable, and against the peer
libraries that are installed (implicit, sparse_dot_topn, faiss, torch, numpy/scipy), all in this
process on the same inputs. Each measurement: warm-up runs, then ``repeat`` timed runs; the
median and the spread (max - min) / median are reported; every result is checked against the
first recforge result. Work figures and their formulas: :mod:`recforge.bench.cases`.
"""
from recforge.bench.inputs import SIZES, BenchInputs, from_matrix, synthetic
from recforge.bench.runner import default_threads, run_benchmark

__all__ = ["SIZES", "BenchInputs", "synthetic", "from_matrix", "run_benchmark", "default_threads"]
