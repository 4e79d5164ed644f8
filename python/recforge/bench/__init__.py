"""The kernel benchmark behind ``recforge bench`` and the pytest-benchmark suites in benchmarks/
(importable without the CLI extra; no peer library is imported until a case needs it).

    from recforge.bench import synthetic, run_benchmark
    report = run_benchmark(synthetic("small"))          # JSON-ready dict

* :mod:`recforge.bench.inputs` — seeded inputs (power-law interaction matrices, embeddings,
  exclusions, evaluation and file-reading data) and the sizes tiny / small / medium / large;
* :mod:`recforge.bench.peers` — the peer libraries' versions of each kernel (implicit,
  sparse_dot_topn, faiss, torch, numpy/scipy); :mod:`recforge.bench.model_peers` — of the models
  (Surprise, implicit);
* :mod:`recforge.bench.cases` — one :class:`~recforge.bench.cases.Case` per kernel: recforge on
  each backend and thread count plus the peers, the agreement check and the work figures;
* :mod:`recforge.bench.runner` — what ``recforge bench`` does with the cases: every kernel
  present in :mod:`recforge.kernels` among similarity_topk, dense_topk and propagate, timed on
  the CPU at 1, 2, 4, ... cores threads, on CUDA when usable, and against the installed peers,
  all in this process on the same inputs; warm-up runs, then ``repeat`` timed runs; the median
  and the spread (max - min) / median; every result checked against the first recforge result;
* :mod:`recforge.bench.distributed` — ``recforge bench --backend dask``: recforge.distributed on
  LocalClusters of W workers x T threads against the single-process kernel (needs the dask extra).

benchmarks/ times the same cases under pytest-benchmark (one group per kernel and size, one
parametrised test per implementation). Work figures and their formulas: :mod:`recforge.bench.cases`.
"""
from recforge.bench.inputs import SIZES, BenchInputs, from_matrix, synthetic
from recforge.bench.runner import default_threads, run_benchmark

__all__ = ["SIZES", "BenchInputs", "synthetic", "from_matrix", "run_benchmark", "default_threads"]
