"""recforge.distributed on a real Dask LocalCluster (2 worker processes, 1 thread each).

References are the single-process kernels, ``model.recommend`` and ``recforge.evaluate``:
the distributed results must equal them bit for bit, also when a worker process is killed
mid-job, and Parquet output read back must equal the in-memory result.
"""
from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")

import recforge  # noqa: E402
import recforge.distributed as rd  # noqa: E402
from recforge.kernels import dense_topk, similarity_topk  # noqa: E402
from recforge.models import ItemKNN, UserKNN  # noqa: E402

from test_models_foundation import PureSVD  # noqa: E402


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                           worker_class="distributed.Nanny")
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


def _matrix(m=300, n=90, density=0.08, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    X = sp.random(m, n, density=density, format="csr", random_state=rng, dtype=np.float64)
    X.data = rng.integers(1, 6, X.nnz).astype(np.float64)
    return X.astype(dtype)


def _same_csr(A, B):
    A, B = sp.csr_matrix(A), sp.csr_matrix(B)
    assert A.shape == B.shape
    np.testing.assert_array_equal(A.indptr, B.indptr)
    np.testing.assert_array_equal(A.indices, B.indices)
    np.testing.assert_array_equal(A.data, B.data)


@pytest.mark.parametrize("metric", ["cosine", "dot", "jaccard", "pearson", "msd", "bm25", "tfidf"])
def test_similarity_equals_the_kernel_bit_for_bit(client, metric):
    X = _matrix()
    for Y in (None, _matrix(120, 90, seed=1)):
        want = similarity_topk(X, 7, Y, metric=metric, shrink=2.0, num_threads=2)
        got = rd.similarity_topk(X, 7, Y, metric=metric, shrink=2.0, client=client, block_rows=41)
        _same_csr(got, want)


def test_similarity_with_exclusion_and_float64(client):
    X = _matrix(dtype=np.float64)
    E = _matrix(300, 300, density=0.05, seed=3)
    _same_csr(rd.similarity_topk(X, 5, exclude=E, client=client, block_rows=64),
              similarity_topk(X, 5, exclude=E))


def test_similarity_arguments_are_checked_before_any_task(client):
    with pytest.raises(ValueError, match="metric"):
        rd.similarity_topk(_matrix(), 3, metric="nope", client=client)
    with pytest.raises(ValueError, match="k must be >= 1"):
        rd.similarity_topk(_matrix(), 0, client=client)
    with pytest.raises(ValueError, match="adjusted_cosine"):
        rd.similarity_topk(_matrix(), 3, metric="adjusted_cosine", client=client)
    with pytest.raises(ValueError, match="parquet://"):
        rd.similarity_topk(_matrix(), 3, client=client, output="/tmp/x")


def test_similarity_parquet_partitions_read_back(client, tmp_path):
    X = _matrix()
    out = rd.similarity_topk(X, 6, client=client, block_rows=50, output=f"parquet://{tmp_path / 'nb'}")
    assert len(out.files) == 6 and all(f.is_file() for f in out.files)
    assert not list((tmp_path / "nb").glob(".*.tmp")), "no temporary file left behind"
    table = out.read().to_pandas()
    want = similarity_topk(X, 6)
    rows = table["row"].to_numpy()
    assert np.all(np.diff(rows) >= 0), "partitions in row order, each row's neighbours best first"
    indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=X.shape[0]))]
    got = sp.csr_matrix((table["score"].to_numpy(), table["neighbour"].to_numpy(), indptr), shape=want.shape)
    _same_csr(got, want)


def test_dense_topk_equals_the_kernel(client):
    rng = np.random.default_rng(4)
    Q, V = rng.random((230, 16), dtype=np.float32), rng.random((140, 16), dtype=np.float32)
    E = _matrix(230, 140, density=0.1, seed=5)
    for metric in ("dot", "cosine"):
        a = rd.dense_topk(Q, V, 9, exclude=E, metric=metric, client=client, block_rows=31)
        b = dense_topk(Q, V, 9, exclude=E, metric=metric)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_dense_topk_from_a_dask_array(client):
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(6)
    Q, V = rng.random((200, 8), dtype=np.float32), rng.random((90, 8), dtype=np.float32)
    a = rd.dense_topk(da.from_array(Q, chunks=(45, 8)), V, 4, client=client)
    b = dense_topk(Q, V, 4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("make", [lambda: ItemKNN(k=10, progress=False), lambda: UserKNN(k=8, progress=False),
                                  lambda: PureSVD(dim=5)])
def test_recommend_all_equals_model_recommend(client, make, tmp_path):
    R = _matrix(250, 70, seed=7)
    model = make().fit(R)
    users = np.arange(R.shape[0])
    want = model.recommend(users, 8, filter_items=[1, 2])
    got = rd.recommend_all(model, n=8, client=client, block_users=33, filter_items=[1, 2])
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    out = rd.recommend_all(model, n=8, client=client, block_users=100, filter_items=[1, 2],
                           output=f"parquet://{tmp_path / 'recs'}")
    table = out.read().to_pandas()
    np.testing.assert_array_equal(table["item"].to_numpy().reshape(-1, 8), want[0])
    np.testing.assert_array_equal(table["user"].to_numpy().reshape(-1, 8)[:, 0], users)


def test_evaluate_equals_recforge_evaluate(client):
    R = _matrix(260, 80, density=0.12, seed=8)
    coo = R.tocoo()
    held = np.random.default_rng(9).random(coo.nnz) < 0.25
    train = sp.csr_matrix((coo.data[~held], (coo.row[~held], coo.col[~held])), shape=R.shape)
    test = sp.csr_matrix((coo.data[held], (coo.row[held], coo.col[held])), shape=R.shape)
    model = ItemKNN(k=12, progress=False).fit(train)
    metrics = ["ndcg@10", "recall@20", "precision@5", "coverage@10", "auc"]
    want = recforge.evaluate(model, train, test, metrics)
    got = rd.evaluate(model, train, test, metrics, client=client, block_users=40)
    pd.testing.assert_frame_equal(got, want)
    dd = pytest.importorskip("dask.dataframe")
    tc = test.tocoo()
    frame = dd.from_pandas(pd.DataFrame({"user": tc.row, "item": tc.col, "value": tc.data}), npartitions=3)
    pd.testing.assert_frame_equal(rd.evaluate(model, train, frame, metrics, client=client), want)


def test_a_worker_killed_mid_job_changes_nothing(client):
    """Kill one worker process while the blocks run: its tasks are recomputed elsewhere (the
    nanny restarts the process) and the gathered result is still identical."""
    X = _matrix(3000, 400, density=0.05, seed=10)
    want = similarity_topk(X, 20, metric="cosine")
    pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]

    def kill_soon():
        time.sleep(0.3)
        os.kill(victim, signal.SIGKILL)

    killer = threading.Thread(target=kill_soon)
    killer.start()
    got = rd.similarity_topk(X, 20, metric="cosine", client=client, block_rows=25, num_threads=1)
    killer.join()
    _same_csr(got, want)
    # the scheduler may still list the killed worker for a moment (a fast job ends before the
    # kill): wait until two live workers answer, and the victim is not among them
    deadline = time.monotonic() + 60
    while True:
        alive = set(client.run(os.getpid, on_error="ignore").values())
        if len(alive) == 2 and victim not in alive or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert victim not in alive and len(alive) == 2, "the killed worker was replaced"


def test_missing_dask_is_named(monkeypatch):
    import builtins

    from recforge.distributed import cluster

    real = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name in ("dask", "distributed") or name.startswith(("dask.", "distributed.")):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    with pytest.raises(ImportError, match=r'recforge\[dask\]'):
        cluster.require_dask()
