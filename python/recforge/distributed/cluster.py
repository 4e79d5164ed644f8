"""Which Dask cluster a recforge.distributed call runs on.

``client=None``: the current default client if one exists (``Client(...)`` made earlier in this
process), else a ``LocalCluster`` sized to this machine (one worker process per two cores, keeping
the memory they free: :data:`RETAINED_MEMORY_ENVIRON`), started once per process with its
dashboard link printed. A ``distributed.Client`` runs on whatever it is connected to:

* a scheduler address — ``Client("tcp://10.0.0.5:8786")`` after ``dask scheduler`` and
  ``dask worker tcp://10.0.0.5:8786 --nthreads 8`` on each machine;
* Kubernetes — ``from dask_kubernetes.operator import KubeCluster;
  client = Client(KubeCluster(name="recforge", image="recforge:latest", n_workers=8))``
  (the image must hold the same recforge version as the client);
* YARN (``dask_yarn.YarnCluster``) or an HPC queue (``dask_jobqueue.SLURMCluster``) likewise.

Workers need recforge installed (the compiled kernels run there); threads per worker are the
kernels' ``num_threads`` unless the call sets it.

Memory that workers free: Dask starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, and a task
runs in an executor thread, whose glibc arena maps every large buffer (a transpose, a received
matrix) fresh and unmaps it when freed. Where fresh pages are costly — virtual machines that hand
freed memory back to the host, where the next touch faults twice — that costs a 20M-entry
similarity job over 10% (ml20m-like, 1 worker x 2 threads: medians of 1.12-1.15x the
single-process call, against 0.98-1.00x with the settings below). :data:`RETAINED_MEMORY_ENVIRON`
keeps freed memory in the worker for its next task instead (its resident memory stays at its peak,
which Dask's memory limits count): ``with retained_memory(): LocalCluster(...)``, or those
variables in the environment of ``dask worker``. Its one malloc arena is shared by the worker's threads: measured
with two threads per worker (the 20M kernel call alone, in processes of its own: 6.91-7.18 s
under these settings, 6.82-7.32 s under glibc's defaults); with many threads per worker, measure
before adopting it.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any

_AUTO: dict[str, Any] = {}

#: glibc settings that keep freed memory in a worker for its next task: one malloc arena (executor
#: threads allocate from the main heap), no mmap for large blocks, and no trimming of the heap
RETAINED_MEMORY_ENVIRON = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 40)}


@contextmanager
def retained_memory():
    """Workers that Nannies start inside this block run with :data:`RETAINED_MEMORY_ENVIRON`
    (on top of Dask's other pre-spawn variables; a Nanny keeps them for the workers it restarts).

    Dask gives variables already in this process's environment precedence over its
    ``distributed.nanny.pre-spawn-environ`` config, and a Nanny writes that config into the
    environment of the process it runs in (a LocalCluster's: this one): so the variables are set
    here for the block as well, and the environment is restored after it.
    """
    require_dask()
    import dask

    saved = {name: os.environ.get(name) for name in RETAINED_MEMORY_ENVIRON}
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **RETAINED_MEMORY_ENVIRON}
    os.environ.update(RETAINED_MEMORY_ENVIRON)
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def require_dask():
    """The ``distributed`` module, or an ImportError naming the extra."""
    try:
        import dask  # noqa: F401
        import distributed
    except ImportError as exc:
        raise ImportError('recforge.distributed needs Dask: pip install "recforge[dask]"') from exc
    return distributed


def resolve_client(client: Any = None) -> Any:
    """``client``, else the default client, else a LocalCluster started once for this process."""
    distributed = require_dask()
    if client is not None:
        if not isinstance(client, distributed.Client):
            raise TypeError(f"client must be a dask.distributed.Client, got {type(client).__name__}")
        return client
    try:
        return distributed.get_client()
    except ValueError:
        pass
    if "client" not in _AUTO:
        cores = os.cpu_count() or 1
        workers = max(1, cores // 2)
        with retained_memory():
            cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=max(1, cores // workers),
                                               processes=True, dashboard_address=":0")
        _AUTO["client"] = distributed.Client(cluster)
        print(f"recforge.distributed: started a LocalCluster with {workers} worker(s); "
              f"dashboard: {_AUTO['client'].dashboard_link}")
    return _AUTO["client"]


def worker_threads(client: Any) -> dict[str, int]:
    """Threads of each worker (its address -> nthreads)."""
    return dict(client.nthreads())
