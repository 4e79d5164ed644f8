"""What a task needs to know about the worker it runs on."""
from __future__ import annotations


def kernel_threads(requested: int | None) -> int:
    """``requested`` when given, else the worker's thread count (so worker processes sharing a
    machine do not each take every core), else 0 (all cores) outside a worker."""
    if requested is not None:
        return int(requested)
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return 0
