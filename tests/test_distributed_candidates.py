"""Candidates kept on the workers (rd.prepare_candidates) and the half-product shards, on a real
Dask LocalCluster. References are the single-process kernels: results must equal them bit for
bit, also after the workers holding the operand died, and with one worker as with two.
"""
from __future__ import annotations

import os
import pickle
import signal
import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("distributed")

import recforge.distributed as rd  # noqa: E402
from recforge.distributed.similarity import lean, needs_source  # noqa: E402
from recforge.kernels import prepare_candidates, similarity_topk  # noqa: E402
from similarity_reference import random_int_csr as _matrix  # noqa: E402
from test_distributed import _same_csr, client  # noqa: E402,F401  (client: the shared LocalCluster fixture)


@pytest.mark.parametrize("metric", ["cosine", "bm25", "jaccard", "pearson"])
def test_a_scattered_operand_serves_many_calls_bit_for_bit(client, metric):
    Y = _matrix(150, 60, 0.1, 1)
    with rd.prepare_candidates(Y, metric=metric, client=client) as items:
        key = items.key
        assert client.who_has(items.future())[key], "held by the cluster"
        for seed in (2, 3):
            X = _matrix(120, 60, 0.1, seed)
            got = rd.similarity_topk(X, 6, items, metric=metric, shrink=1.0, client=client, block_rows=25)
            _same_csr(got, similarity_topk(X, 6, Y, metric=metric, shrink=1.0))
        assert items.key == key, "the calls scattered nothing new"
    assert items.key is None, "released on leaving the with block"


def test_rows_the_prepared_operand_cannot_serve_still_match(client):
    """float64 rows against float32 candidates take the kernel's plain path: Y itself is shipped."""
    Y = _matrix(100, 40, 0.15, 4)
    X = _matrix(90, 40, 0.15, 5, np.float64)
    P = prepare_candidates(Y, metric="cosine")
    assert needs_source(P, X, {}) and not needs_source(P, X.astype(np.float32), {})
    assert needs_source(P, X.astype(np.float32), {"backend": "cuda"}), "the GPU path reads the source"
    with rd.prepare_candidates(Y, client=client) as items:
        _same_csr(rd.similarity_topk(X, 5, items, client=client, block_rows=30), similarity_topk(X, 5, Y))
    _same_csr(rd.similarity_topk(X, 5, P, client=client, block_rows=30), similarity_topk(X, 5, Y))


def test_the_shipped_operand_leaves_its_source_behind():
    Y = _matrix(400, 300, 0.2, 6)
    P = prepare_candidates(Y, metric="cosine")
    whole, shipped = len(pickle.dumps(P, protocol=5)), len(pickle.dumps(lean(P), protocol=5))
    source = Y.data.nbytes + Y.indices.nbytes + Y.indptr.nbytes
    assert shipped <= whole - source + 1024
    from recforge.distributed.candidates import prepared_nbytes

    assert prepared_nbytes(lean(P)) == prepared_nbytes(P) - source       # the array bytes a worker receives
    assert shipped - 1024 <= prepared_nbytes(lean(P)) <= shipped             # pickle: those bytes + a header
    X = _matrix(50, 300, 0.2, 7)
    _same_csr(similarity_topk(X, 4, lean(P)), similarity_topk(X, 4, Y))
    with pytest.raises(TypeError, match="Y"):       # the plain path can never run on the stand-in
        similarity_topk(X.astype(np.float64), 4, lean(P))


def test_handle_checks(client):
    Y = _matrix(50, 20, 0.2, 8)
    with rd.prepare_candidates(Y, metric="cosine", client=client) as items:
        with pytest.raises(ValueError, match="metric='dot'"):
            rd.similarity_topk(_matrix(10, 20, 0.2, 9), 3, items, metric="dot", client=client)
        with pytest.raises(ValueError, match="same number of columns"):
            rd.similarity_topk(_matrix(10, 21, 0.2, 9), 3, items, client=client)
    with pytest.raises(ValueError, match="adjusted_cosine"):
        rd.prepare_candidates(Y, metric="adjusted_cosine", client=client)


def test_the_operand_is_scattered_again_after_every_holder_died(client):
    Y = _matrix(120, 50, 0.1, 10)
    X = _matrix(80, 50, 0.1, 11)
    with rd.prepare_candidates(Y, client=client) as items:
        _same_csr(rd.similarity_topk(X, 5, items, client=client), similarity_topk(X, 5, Y))
        pids = set(client.run(os.getpid).values())
        client.restart()                      # every worker process replaced: scattered data is gone
        assert not pids & set(client.run(os.getpid).values())
        _same_csr(rd.similarity_topk(X, 5, items, client=client), similarity_topk(X, 5, Y))


def _pays_half(seed=12, m=600, d=30):
    """Dense enough that the kernel forms each pair once (checked by the caller)."""
    return _matrix(m, d, 0.5, seed)


def test_half_product_shards_survive_a_killed_worker(client):
    from recforge.distributed.half_product import half_product_pays

    X = _pays_half(m=3000, d=60)
    assert half_product_pays(X)
    want = similarity_topk(X, 20, num_threads=2)
    victim = sorted(client.run(os.getpid).values())[0]
    killer = threading.Thread(target=lambda: (time.sleep(0.2), os.kill(victim, signal.SIGKILL)))
    killer.start()
    got = rd.similarity_topk(X, 20, client=client)
    killer.join()
    _same_csr(got, want)
    client.wait_for_workers(2, timeout=60)


def test_one_worker_runs_the_single_process_call():
    """One worker: one task, the kernel's own call, whether or not the half product pays (the
    client does not even ask); X crosses to the worker straight from the client."""
    from distributed import Client, LocalCluster, get_task_stream

    from recforge.distributed.blocks import sends_direct
    from recforge.distributed.half_product import half_product_pays

    sparse = _matrix(400, 300, 0.02, 14)
    assert not half_product_pays(sparse)
    E = _matrix(600, 600, 0.02, 13)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as one:
        assert sends_direct(one) is True, "a LocalCluster's workers are on this machine's loopback"
        for X, exclude in ((_pays_half(), None), (_pays_half(), E), (sparse, None)):
            with get_task_stream(client=one) as stream:
                got = rd.similarity_topk(X, 9, exclude=exclude, client=one)
            _same_csr(got, similarity_topk(X, 9, exclude=exclude, num_threads=2))
            assert len(stream.data) == 1, "one task: the single-process call on the worker"


def test_a_client_that_says_how_to_scatter_is_obeyed(client):
    from distributed import Client

    from recforge.distributed.blocks import sends_direct

    assert sends_direct(client) is True
    with Client(client.scheduler.address, direct_to_workers=False) as relayed:
        assert sends_direct(relayed) is False
        X = _pays_half(seed=15)
        _same_csr(rd.similarity_topk(X, 5, client=relayed), similarity_topk(X, 5))


def test_the_client_validates_what_the_workers_then_trust(client):
    """Workers skip the kernel's structural check, so a malformed X must stop on the client,
    before any task or scatter."""
    from distributed import get_task_stream

    X = _pays_half(seed=16)
    bad = sp.csr_matrix((X.data, X.indices.copy(), X.indptr), shape=X.shape)
    bad.indices[3] = X.shape[1] + 5                   # out of range: scipy's constructor lets it pass
    keys = set(client.who_has())
    with get_task_stream(client=client) as stream:
        for Y in (None, _matrix(50, X.shape[1], 0.2, 17)):
            with pytest.raises(ValueError, match="X"):
                rd.similarity_topk(bad, 5, Y, client=client)
    assert not stream.data and set(client.who_has()) == keys, "nothing ran, nothing was scattered"
