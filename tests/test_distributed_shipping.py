"""Scattered operands land on every worker (the one scattered to, and those Dask replicated it to)
with each array aligned, so the kernels read them where they lie instead of copying them."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("distributed")

from recforge.distributed.blocks import scatter_everywhere  # noqa: E402
from recforge.distributed.shipping import Shipment, landed  # noqa: E402
from recforge.kernels import _validation as v  # noqa: E402

from test_distributed import _same_csr, client  # noqa: E402,F401  (client: the shared LocalCluster fixture)


def _arrays(obj):
    if sp.issparse(obj):
        return [obj.indptr, obj.indices, obj.data]
    if isinstance(obj, np.ndarray):
        return [obj]
    return [a for a in vars(obj).values() if isinstance(a, np.ndarray)]


def _on_each_worker(dask_worker, key):
    """Per array of the stored payload: (address mod 16, the kernels' aligned copy is itself)."""
    payload = landed(dask_worker.data[key])
    return type(payload).__name__, [(a.ctypes.data % 16, v.contiguous(a) is a) for a in _arrays(payload)]


class _Model:
    def __init__(self, rng):
        self.user_factors = rng.standard_normal((3001, 33)).astype(np.float32)
        self.item_factors = rng.standard_normal((2003, 33))
        self.name = "odd-sized arrays behind a pickle header"


@pytest.mark.parametrize("make", [
    lambda rng: sp.random(3001, 5003, density=0.05, format="csr", random_state=rng, dtype=np.float32),
    lambda rng: rng.standard_normal((4001, 37)).astype(np.float32),
    _Model,
], ids=["csr", "dense", "pickled object"])
def test_every_copy_lands_aligned_and_equal(client, make):
    data = make(np.random.default_rng(5))
    future = scatter_everywhere(client, data)
    held = client.who_has([future])[future.key]
    assert len(held) == len(client.nthreads()) == 2        # scattered to one, replicated to the other
    per_worker = client.run(_on_each_worker, key=future.key)
    for name, arrays in per_worker.values():
        assert name == type(data).__name__
        assert arrays and all(offset == 0 and uncopied for offset, uncopied in arrays), per_worker
    got = client.submit(landed, future).result()
    for want, have in zip(_arrays(data), _arrays(got)):
        np.testing.assert_array_equal(have, want)
    if sp.issparse(data):
        _same_csr(got, data)


def test_landed_passes_anything_else_through():
    X = sp.eye(3, format="csr")
    assert landed(Shipment(X)) is X
    assert landed(X) is X
    assert landed(None) is None


def _environ_and_kept_bytes():
    """The worker's malloc variables, and how much of a freed 64 MB block its heap kept (glibc's
    ``mallinfo2().fordblks``: free bytes held by malloc, not returned to the system)."""
    import ctypes
    import os

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                          "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.mallinfo2.restype = MallInfo2

    block = libc.malloc(64 << 20)
    ctypes.memset(block, 1, 64 << 20)
    before = libc.mallinfo2().fordblks
    libc.free(block)
    kept = libc.mallinfo2().fordblks - before
    names = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_")
    return {name: os.environ.get(name) for name in names}, kept


def test_workers_started_under_retained_memory_keep_what_they_free():
    import os

    import dask
    from distributed import Client, LocalCluster

    from recforge.distributed.cluster import RETAINED_MEMORY_ENVIRON, retained_memory

    environ_before = dict(os.environ)
    os.environ["MALLOC_TRIM_THRESHOLD_"] = "65536"   # as a Nanny started earlier in this process leaves it
    try:
        with retained_memory():
            assert dask.config.get("distributed.nanny.pre-spawn-environ")["OMP_NUM_THREADS"] == 1   # Dask's kept
            with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                    Client(cluster) as c:
                seen, kept = c.submit(_environ_and_kept_bytes, pure=False).result()   # in an executor thread
        assert seen == RETAINED_MEMORY_ENVIRON
        assert kept >= 64 << 20          # the block went back to the heap's free lists, not to the system
        assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536"                 # restored after the block
        assert "MALLOC_ARENA_MAX" not in os.environ or "MALLOC_ARENA_MAX" in environ_before
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as c:
            seen, kept = c.submit(_environ_and_kept_bytes, pure=False).result()
        assert seen["MALLOC_TRIM_THRESHOLD_"] == "65536" and kept < 1 << 20   # Dask's default: unmapped at once
    finally:
        os.environ.clear()
        os.environ.update(environ_before)


def test_the_cluster_started_for_client_none_keeps_freed_memory():
    """In a fresh process (no default client): resolve_client() starts a LocalCluster, prints its
    dashboard link, and its workers run with the retained-memory settings."""
    import json
    import subprocess
    import sys

    script = (
        "import json, os\n"
        "from recforge.distributed.cluster import resolve_client\n"
        "client = resolve_client()\n"
        "names = ('MALLOC_ARENA_MAX', 'MALLOC_MMAP_MAX_', 'MALLOC_TRIM_THRESHOLD_')\n"
        "seen = client.run(lambda: {n: os.environ.get(n) for n in names})\n"
        "print(json.dumps(list(seen.values())))\n"
        "client.close()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "started a LocalCluster" in done.stdout and "dashboard: http" in done.stdout
    from recforge.distributed.cluster import RETAINED_MEMORY_ENVIRON

    per_worker = json.loads(done.stdout.strip().splitlines()[-1])
    assert per_worker and all(seen == RETAINED_MEMORY_ENVIRON for seen in per_worker)


def test_what_cannot_be_shipped_fails_on_the_client(client):
    import threading

    with pytest.raises(TypeError, match="Could not serialize"):
        scatter_everywhere(client, {"unpicklable": threading.Lock()})
