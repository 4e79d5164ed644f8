"""The ``recforge`` command, run as users run it: ``python -m recforge ...`` in a subprocess.

Asserts on exit codes, what is printed (table headers, every model in the leaderboard), the
files ``--out`` writes (CSV/JSON parse, PNG signature) and the error paths (one line on stderr,
no traceback). One leaderboard value is recomputed here by brute force (MostPopular's NDCG@10).
"""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import data_dir

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def recforge(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    full_env.pop("RECFORGE_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "recforge", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout)


def python_code(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(error_lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in error_lines[0], error_lines[0]


def registered_models() -> list[str]:
    """The built-in models (not classes other test modules register in this process)."""
    from recforge.models import registry

    return [name for name in registry.available()
            if registry.path_of(name) is not None and getattr(registry.get(name), "in_demo", True)]


# --------------------------------------------------------------------------------------------- info
def test_info_reports_build_backends_and_extras():
    result = recforge("info")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    from recforge import __version__

    assert f"version   {__version__}" in out or __version__ in out
    for expected in ("build", "compiled_isa", "backend cpu", "openmp_threads", "cpu_features", "backend cuda",
                     "optional libraries", "torch", "cupy", "sentence_transformers", "fastapi", "dask", "optuna"):
        assert expected in out, expected
    # CUDA is either usable or the reason is printed
    cuda_section = out.split("backend cuda", 1)[1]
    assert "usable" in cuda_section.splitlines()[1]


def test_info_does_not_import_heavy_libraries():
    code = ("import sys\nfrom recforge.cli import main\nimport io, contextlib\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    main(['info'])\n"
            "print(sorted(m for m in ('torch', 'pandas', 'typer', 'rich', 'matplotlib') if m in sys.modules))")
    result = python_code(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


BLOCK_CLI = "import sys\nfor m in ('typer', 'rich', 'tqdm'):\n    sys.modules[m] = None\n"


def test_info_works_without_the_cli_extra():
    result = python_code(BLOCK_CLI + "from recforge.cli import main\nraise SystemExit(main(sys.argv[1:]))", "info")
    assert result.returncode == 0, result.stderr
    assert "backend cpu" in result.stdout and "typer" in result.stdout


def test_other_commands_without_the_cli_extra_name_it():
    result = python_code(BLOCK_CLI + "from recforge.cli import main\nraise SystemExit(main(sys.argv[1:]))", "demo")
    assert result.returncode == 2
    assert result.stderr.strip() == 'recforge: this command needs the CLI extra: pip install "recforge[cli]"'


def test_help_lists_the_commands():
    result = recforge("--help")
    assert result.returncode == 0
    for command in ("info", "demo", "bench", "evaluate"):
        assert command in result.stdout


# --------------------------------------------------------------------------------------------- demo
@pytest.fixture(scope="module")
def demo_cache(tmp_path_factory):
    """An empty embedding cache for the demo runs of this module (the first run fills it)."""
    return tmp_path_factory.mktemp("demo-cache")


@pytest.fixture(scope="module")
def default_demo(tmp_path_factory, demo_cache):
    out = tmp_path_factory.mktemp("demo")
    # the first run encodes the catalogue with Sentence-BERT (slow on a busy machine)
    result = recforge("demo", "--out", str(out), "--no-progress", env={"RECFORGE_CACHE_DIR": str(demo_cache)},
                      timeout=1800)
    return result, out


def test_default_demo_prints_leaderboard_with_every_registered_model(default_demo):
    result, _ = default_demo
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for header in ("NDCG@10", "Recall@20", "Coverage@10", "fit", "recommend"):
        assert header in out
    board = out.split("Leaderboard", 1)[1].split("Example recommendations", 1)[0]
    for name in registered_models():
        assert f" {name} " in board, name
    assert "per-user random holdout" in out and "seed 0" in out
    assert "Traceback" not in result.stderr


def test_default_demo_explains_one_recommendation(default_demo):
    result, _ = default_demo
    line = " ".join(result.stdout.split("Why ", 1)[1].split("demo finished", 1)[0].split())
    model = line.split(" recommends ", 1)[0]
    assert model in registered_models(), line
    score = float(re.search(r"\(score (-?[0-9.]+),", line).group(1))
    if "components' terms" in line:           # a hybrid: its components' terms add up to the score
        terms = re.findall(r"(?:: |\]; |\d; )([A-Za-z]+) ([+-][0-9.]+)", line)
        assert len(terms) >= 2, line
        assert sum(float(t) for _, t in terms) == pytest.approx(score, abs=5e-4 * len(terms))
    assert "liked" in line and "words" in line, line


def test_demo_caches_the_bert_encoding_of_the_catalogue(default_demo, demo_cache, tmp_path):
    """The first run wrote one embedding file (one 384-d row per item); a second run reads it
    (no new file, the file untouched) and gives ContentKNN the same scores."""
    _, out = default_demo
    files = sorted((demo_cache / "embeddings").glob("*.npy"))
    assert len(files) == 1
    vectors = np.load(files[0], allow_pickle=False)
    board = {r["model"]: r for r in json.loads((out / "leaderboard.json").read_text())["leaderboard"]}
    assert board["ContentKNN"]["params"]["encoder"] == "bert"
    assert vectors.shape[1] == 384 and vectors.shape[0] > 1000
    stamp = files[0].stat().st_mtime_ns
    result = recforge("demo", "--models", "ContentKNN", "--out", str(tmp_path), "--no-progress",
                      env={"RECFORGE_CACHE_DIR": str(demo_cache)})
    assert result.returncode == 0, result.stderr
    assert sorted((demo_cache / "embeddings").glob("*.npy")) == files and files[0].stat().st_mtime_ns == stamp
    again = json.loads((tmp_path / "leaderboard.json").read_text())["leaderboard"][0]
    assert again["ndcg@10"] == board["ContentKNN"]["ndcg@10"]


def test_default_demo_shows_three_users_with_titles(default_demo):
    result, out_dir = default_demo
    examples = result.stdout.split("Example recommendations", 1)[1]
    assert examples.count("train items)") == 3
    assert "(19" in examples or "(20" in examples  # MovieLens titles carry the year, e.g. "(1995)"


def test_demo_out_files_parse(default_demo):
    result, out = default_demo
    with open(out / "leaderboard.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["model"] for r in rows) == registered_models()
    ndcg = [float(r["ndcg@10"]) for r in rows]
    assert ndcg == sorted(ndcg, reverse=True)
    assert all(0 <= float(r["recall@20"]) <= 1 and 0 < float(r["coverage@10"]) <= 1 for r in rows)
    payload = json.loads((out / "leaderboard.json").read_text())
    assert payload["dataset"] == "ml-latest-small"
    assert [r["model"] for r in payload["leaderboard"]] == [r["model"] for r in rows]
    assert (out / "leaderboard.png").read_bytes()[:8] == PNG_SIGNATURE


def test_demo_most_popular_ndcg_matches_brute_force(default_demo):
    """Recompute MostPopular's NDCG@10 from the stated protocol with plain numpy."""
    from recforge.data import clean, split
    from recforge.datasets import movielens

    _, out = default_demo
    board = {r["model"]: r for r in json.loads((out / "leaderboard.json").read_text())["leaderboard"]}
    inter, _ = clean(movielens("latest-small"), min_user_count=5, min_item_count=5)
    train, test = split.random(inter, 0.2, by_user=True, seed=0)
    n_items = inter.n_items
    popularity = np.bincount(train.items, minlength=n_items)      # one row per (user, item) after clean
    ranking = np.lexsort((np.arange(n_items), -popularity))     # most popular first, ties by code
    seen: dict[int, set] = {}
    for u, i in zip(train.users, train.items):
        seen.setdefault(int(u), set()).add(int(i))
    held: dict[int, set] = {}
    for u, i in zip(test.users, test.items):
        held.setdefault(int(u), set()).add(int(i))
    ndcgs = []
    for u, relevant in held.items():
        top = [i for i in ranking if i not in seen.get(u, set())][:10]
        dcg = sum(1 / np.log2(r + 2) for r, i in enumerate(top) if i in relevant)
        idcg = sum(1 / np.log2(r + 2) for r in range(min(10, len(relevant))))
        ndcgs.append(dcg / idcg)
    assert board["MostPopular"]["ndcg@10"] == pytest.approx(np.mean(ndcgs), abs=1e-9)


def test_demo_model_subset(tmp_path):
    result = recforge("demo", "--models", "mostpopular,ItemKNN", "--out", str(tmp_path), "--no-progress")
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "leaderboard.csv", newline="") as f:
        assert sorted(r["model"] for r in csv.DictReader(f)) == ["ItemKNN", "MostPopular"]
    board = result.stdout.split("Leaderboard", 1)[1].split("Example", 1)[0]
    assert "UserKNN" not in board and "Random" not in board


def test_demo_without_matplotlib_still_writes_tables(tmp_path):
    code = ("import sys\nsys.modules['matplotlib'] = None\nfrom recforge.cli import main\n"
            "raise SystemExit(main(sys.argv[1:]))")
    result = python_code(code, "demo", "--models", "MostPopular", "--out", str(tmp_path), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert 'pip install "recforge[plot]"' in result.stderr
    assert (tmp_path / "leaderboard.csv").is_file() and (tmp_path / "leaderboard.json").is_file()
    assert not (tmp_path / "leaderboard.png").exists()


def test_demo_unknown_model():
    assert_one_line_error(recforge("demo", "--models", "NoSuchModel"), "unknown model 'NoSuchModel'", "ItemKNN")


def test_demo_unknown_dataset():
    assert_one_line_error(recforge("demo", "--dataset", "no-such-data"), "unknown dataset 'no-such-data'", "ml-100k")


def test_demo_missing_data_file(tmp_path):
    result = recforge("demo", "--dataset", "ml-100k", "--no-download", env={"RECFORGE_DATA_DIR": str(tmp_path)})
    assert_one_line_error(result, "u.data", str(tmp_path))


def test_demo_on_ml100k_real_data():
    root = data_dir("ml-100k").parent
    result = recforge("demo", "--dataset", "ml-100k", "--models", "MostPopular,UserKNN", "--no-progress",
                      "--split", "leave-last-out", env={"RECFORGE_DATA_DIR": str(root)})
    assert result.returncode == 0, result.stderr
    assert "MovieLens 100K" in result.stdout and "leave-last-out" in result.stdout
    assert "UserKNN" in result.stdout and "MostPopular" in result.stdout


# ----------------------------------------------------------------------------------------- evaluate
def test_evaluate_full_protocol_table():
    result = recforge("evaluate", "--dataset", "ml-latest-small", "--model", "ItemKNN", "--k", "5,10",
                      "--no-progress")
    assert result.returncode == 0, result.stderr
    for metric in ("ndcg@5", "ndcg@10", "recall@10", "precision@5", "coverage@10", "fit time"):
        assert metric in result.stdout
    assert "full ranking" in result.stdout


def test_evaluate_sampled_protocol_reports_auc():
    result = recforge("evaluate", "-d", "ml-latest-small", "-m", "MostPopular", "-p", "sampled", "--negatives",
                      "50", "--k", "10", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "auc" in result.stdout and "50 negatives per user" in result.stdout


def test_evaluate_errors():
    assert_one_line_error(recforge("evaluate", "-d", "ml-latest-small", "-m", "Nope"), "unknown model 'Nope'")
    assert_one_line_error(recforge("evaluate", "-d", "ml-latest-small", "-m", "ItemKNN", "-p", "bogus"),
                          "unknown protocol 'bogus'")
    assert_one_line_error(recforge("evaluate", "-d", "ml-latest-small", "-m", "ItemKNN", "--k", "0"), "--k")


# -------------------------------------------------------------------------------------------- bench
@pytest.fixture(scope="module")
def small_bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    result = recforge("bench", "--size", "small", "--repeat", "3", "--out", str(out), "--no-progress")
    return result, out


def test_bench_small_table(small_bench):
    result, _ = small_bench
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for header in ("implementation", "median", "spread", "vs fastest peer", "GFLOP/s", "GB/s", "agrees",
                   "copy bandwidth", "GEMM"):
        assert header in out, header
    import recforge.kernels as K

    for kernel in ("similarity_topk", "dense_topk", "propagate"):
        if hasattr(K, kernel):
            assert f"{kernel}:" in out
        else:
            assert "not benchmarked" in out and kernel in out
    assert " NO " not in out


def test_bench_json_rows_agree_and_rates_follow_the_stated_work(small_bench):
    _, out = small_bench
    report = json.loads((out / "bench.json").read_text())
    assert report["machine"]["copy"]["gb_per_s"] > 0 and report["machine"]["gemm"]["gflop_per_s"] > 0
    timed = [r for r in report["rows"] if r["median_s"] is not None]
    assert timed and all(r["agrees"] in ("reference", "yes", "yes (identical)") for r in timed)
    for r in timed:
        assert len(r["times_s"]) == 3
        assert r["min_s"] <= r["median_s"] <= r["max_s"]
        assert r["median_s"] == pytest.approx(float(np.median(r["times_s"])))
    threads = report["settings"]["threads"]
    assert threads[0] == 1 and threads[-1] == report["machine"]["cores"]
    dense = [r for r in timed if r["kernel"] == "dense_topk" and r["implementation"] == "recforge"]
    if dense:  # 2,000 queries x 20,000 items x 64 dims: 2 m n d flops
        r = dense[0]
        assert r["gflop_per_s"] * 1e9 * r["median_s"] == pytest.approx(2 * 2000 * 20000 * 64)
        assert sorted(x["threads"] for x in dense if x["backend"] == "cpu") == threads
    peers = [r for r in timed if r["implementation"] != "recforge"]
    for kernel in {r["kernel"] for r in peers}:
        fastest = min(r["median_s"] for r in peers if r["kernel"] == kernel)
        for r in timed:
            if r["kernel"] == kernel:
                assert r["ratio_to_fastest_peer"] == pytest.approx(r["median_s"] / fastest)
    assert (out / "bench.png").read_bytes()[:8] == PNG_SIGNATURE


def test_bench_errors():
    assert_one_line_error(recforge("bench", "--kernels", "nope"), "unknown kernel 'nope'")
    assert_one_line_error(recforge("bench", "--size", "huge"), "unknown size 'huge'")
    assert_one_line_error(recforge("bench", "--threads", "0"), "--threads")


def test_bench_single_kernel_without_peers_on_a_dataset():
    result = recforge("bench", "--dataset", "ml-latest-small", "--kernels", "dense_topk", "--threads", "1",
                      "--no-peers", "--repeat", "2", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "ml-latest-small" in result.stdout and "dense_topk" in result.stdout
    assert "faiss" not in result.stdout and "similarity_topk:" not in result.stdout


def test_bench_dask_backend_reports_each_layout(tmp_path):
    pytest.importorskip("distributed")
    import scipy.sparse as sp

    from recforge.bench import synthetic

    result = recforge("bench", "--backend", "dask", "--size", "tiny", "--layouts", "1x1,2x1", "--threads", "1",
                      "--repeat", "2", "--out", str(tmp_path), "--no-progress")
    assert result.returncode == 0, result.stderr
    for header in ("layout", "path", "MB per worker", "single", "distributed", "ratio", "CPU ratio", "agrees"):
        assert header in result.stdout, header
    report = json.loads((tmp_path / "bench-dask.json").read_text())
    X = sp.csr_matrix(synthetic("tiny").R).T.tocsr()       # items x users, as benchmarked
    assert report["matrix"] == {"rows": X.shape[0], "cols": X.shape[1], "nnz": X.nnz}
    assert [row["layout"] for row in report["layouts"]] == ["1x1", "2x1"]
    for row in report["layouts"]:
        assert row["agrees"] == "identical" and len(row["rounds"]) == 2
        for r in row["rounds"]:
            assert r["ratio"] == pytest.approx(r["distributed_s"] / r["single_s"])
        assert row["median_ratio"] == pytest.approx(float(np.median([r["ratio"] for r in row["rounds"]])))
    one = report["layouts"][0]
    assert one["path"] == "one call on the worker" and one["tasks"] == 1
    assert one["scattered_bytes_per_worker"] == X.data.nbytes + X.indices.nbytes + X.indptr.nbytes


def test_bench_dask_backend_errors():
    assert_one_line_error(recforge("bench", "--backend", "dask", "--layouts", "2y1"), "--layouts")
    assert_one_line_error(recforge("bench", "--backend", "dask", "--layouts", "0x2"), "at least 1 worker")
    assert_one_line_error(recforge("bench", "--backend", "dask", "--kernels", "dense_topk"), "--kernels")
    assert_one_line_error(recforge("bench", "--backend", "dask", "--threads", "1,2"), "one count")
    assert_one_line_error(recforge("bench", "--backend", "nope"), "unknown --backend 'nope'")
    assert_one_line_error(recforge("bench", "--layouts", "1x2"), "--backend dask")


# ---------------------------------------------------------------------------------- bench helpers
def test_topk_rows_drops_the_diagonal_and_orders_scores():
    import scipy.sparse as sp

    from recforge.bench.agreement import topk_rows

    S = sp.csr_matrix(np.array([[1.0, 0.2, 0.5, 0.0],
                                [0.3, 1.0, 0.0, 0.0],
                                [0.0, 0.0, 0.0, 0.0]]))
    got = topk_rows(S, 2)
    expected = np.array([[0.5, 0.2], [0.3, np.nan], [np.nan, np.nan]])  # row 0 without S[0,0]; row 1 one entry
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got[~np.isnan(got)], expected[~np.isnan(expected)])


def test_topk_score_agreement_tolerance_scales_with_the_sum_length():
    from recforge.bench.agreement import same_topk_scores

    eps = float(np.finfo(np.float32).eps)
    reference = np.array([[0.5, 0.25, np.nan]])
    # tolerance = (1e-4 + terms * eps) * 0.5: 5.0e-5 for a 1-term sum, 1.1e-4 for a 1000-term sum
    assert same_topk_scores(reference, reference + [[4e-5, 0, np.nan]])[0]
    assert not same_topk_scores(reference, reference + [[6e-5, 0, np.nan]])[0]
    assert same_topk_scores(reference, reference + [[6e-5, 0, np.nan]], terms=1000)[0]
    assert (1e-4 + 1000 * eps) * 0.5 < 1.1e-4
    assert not same_topk_scores(reference, np.array([[0.5, 0.25, 0.1]]))[0]   # a neighbour only one side has


def test_cuda_device_line_names_the_facts_users_compare():
    from recforge.cli_commands.info import describe_device

    line = describe_device({"index": 0, "name": "NVIDIA H200", "compute_capability": "9.0", "total_memory": 150 << 30,
                            "total_memory_gib": 150.0, "multiprocessors": 132, "pci_bus_id": "0000:19:00.0",
                            "supported_by_build": False, "l2_cache_bytes": 52428800})
    assert line.startswith("NVIDIA H200 (compute capability 9.0, 150.0 GiB, 132 SMs, PCI 0000:19:00.0")
    assert "NOT supported" in line and "l2_cache_bytes=52428800" in line


def test_bench_reports_a_failing_backend_per_row_instead_of_crashing(monkeypatch):
    """With CUDA claimed usable but not built, the CUDA rows say why they failed; CPU rows still run."""
    import scipy.sparse as sp

    from recforge.bench import from_matrix, runner

    monkeypatch.setattr(runner, "cuda_status", lambda: (True, ""))
    rng = np.random.default_rng(0)
    R = sp.random(60, 40, density=0.2, format="csr", random_state=rng, dtype=np.float32)
    report = runner.run_benchmark(from_matrix(R, "tiny"), ["dense_topk"], threads=[1], repeat=1, warmup=0,
                                  peers=False)
    rows = report["rows"]
    assert [r["backend"] for r in rows] == ["cpu", "cuda"]
    assert rows[0]["agrees"] == "reference" and rows[0]["median_s"] > 0
    from recforge.backend import cuda_info

    if not cuda_info().usable:
        assert rows[1]["median_s"] is None and rows[1]["note"].startswith("failed: ")
