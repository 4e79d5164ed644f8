"""The pytest-benchmark suites in benchmarks/ must keep running: their tiny cases, untimed.

``pytest benchmarks/ -k tiny --benchmark-disable`` runs every suite once on tiny inputs in a
subprocess: each case still checks its result against recforge's (a peer that disagrees, or a
suite that no longer imports, fails here). Also: ``import recforge.bench`` pulls in no peer.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PEERS = ("torch", "faiss", "implicit", "sparse_dot_topn", "surprise", "pandas", "pyarrow")


def test_recforge_bench_imports_no_peer_library():
    code = ("import sys, recforge.bench, recforge.bench.cases, recforge.bench.peers, recforge.bench.model_peers; "
            f"print([m for m in {PEERS!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


SUITES = ("test_similarity_topk", "test_dense_topk", "test_propagate", "test_itemknn_fit", "test_itemknn_recommend",
          "test_itemknn_partial_fit", "test_evaluate_full_ranking", "test_read_interactions",
          "test_distributed_similarity_topk")


def test_benchmark_suites_run_their_tiny_cases():
    pytest.importorskip("pytest_benchmark")
    from conftest import shared_data_root

    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.setdefault("RECFORGE_DATA_DIR", str(shared_data_root()))
    out = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/", "-k", "tiny", "--benchmark-disable",
                          "--bench-threads", "1", "-v", "-p", "no:cacheprovider", "-rs"],
                         cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    tail = out.stdout[-3000:] + out.stderr[-2000:]
    assert out.returncode == 0, tail
    passed = set(re.findall(r"::(test_\w+)\[\S*\] PASSED", out.stdout))
    expected = set(SUITES)
    if (Path(env["RECFORGE_DATA_DIR"]) / "ml-100k").is_dir():
        expected.add("test_userknn_rating_prediction")     # Surprise's folds come from ML-100K
    assert expected <= passed, f"suites without a passing tiny case: {sorted(expected - passed)}\n{tail}"
