"""Which Dask cluster a recforge.distributed call runs on.

``client=None``: the current default client if one exists (``Client(...)`` made earlier in this
process), else a ``LocalCluster`` sized to this machine (one worker process per two cores), started
once per process with its dashboard link printed. A ``distributed.Client`` runs on whatever it is
connected to:

* a scheduler address — ``Client("tcp://10.0.0.5:8786")`` after ``dask scheduler`` and
  ``dask worker tcp://10.0.0.5:8786 --nthreads 8`` on each machine;
* Kubernetes — ``from dask_kubernetes.operator import KubeCluster;
  client = Client(KubeCluster(name="recforge", image="recforge:latest", n_workers=8))``
  (the image must hold the same recforge version as the client);
* YARN (``dask_yarn.YarnCluster``) or an HPC queue (``dask_jobqueue.SLURMCluster``) likewise.

Workers need recforge installed (the compiled kernels run there); threads per worker are the
kernels' ``num_threads`` unless the call sets it.
"""
from __future__ import annotations

import os
from typing import Any

_AUTO: dict[str, Any] = {}


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
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=max(1, cores // workers),
                                           processes=True, dashboard_address=":0")
        _AUTO["client"] = distributed.Client(cluster)
        print(f"recforge.distributed: started a LocalCluster with {workers} worker(s); "
              f"dashboard: {_AUTO['client'].dashboard_link}")
    return _AUTO["client"]


def worker_threads(client: Any) -> dict[str, int]:
    """Threads of each worker (its address -> nthreads)."""
    return dict(client.nthreads())
