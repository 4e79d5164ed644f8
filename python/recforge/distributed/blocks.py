"""Blocks of rows, each one pure task with a deterministic key, gathered in order."""
from __future__ import annotations

import uuid
from typing import Any, Callable, Iterable

from recforge.kernels import _validation as v

#: rows per block when the caller does not say (bounded so a lost block costs little to redo)
DEFAULT_BLOCK_ROWS = 4096


def row_blocks(m: int, block_rows: int | None, workers: int) -> list[slice]:
    """Consecutive row slices: ``block_rows`` each, or by default about four blocks per worker."""
    if block_rows is None:
        block_rows = min(DEFAULT_BLOCK_ROWS, max(1, -(-m // max(4 * workers, 1))))
    block_rows = v.check_positive_int(block_rows, "block_rows")
    return [slice(s, min(m, s + block_rows)) for s in range(0, m, block_rows)]


def job_token(*parts: Any) -> str:
    """A short digest of a job's inputs: the key prefix of its tasks (readable on the dashboard).

    Dask's own tokenizer (xxhash over numpy and scipy.sparse buffers: ~30 ms for a 20M-entry
    matrix, where sha256 took ten times that). Keys stay unique per call whatever it returns
    (:func:`run_blocks` adds a call id), so it only has to name the job.
    """
    from dask.base import tokenize

    return tokenize(*parts)[:16]


def run_blocks(client: Any, name: str, token: str, fn: Callable, blocks: Iterable[slice],
               args_of: Callable[[slice], tuple], **shared: Any) -> list[Any]:
    """Submit ``fn(*args_of(block), **shared)`` per block with key ``name-token-call-start`` and
    gather the results in block order. Tasks are pure: a block lost with its worker is rerun
    under the same key. Each call gets its own keys, so a job repeated while the scheduler still
    forgets the previous one's results never meets them half-released."""
    call = uuid.uuid4().hex[:8]
    futures = [client.submit(fn, *args_of(b), **shared, key=f"recforge-{name}-{token}-{call}-{b.start}",
                             pure=True, retries=2)
               for b in blocks]
    return client.gather(futures)


def scatter_everywhere(client: Any, data: Any, attempts: int = 3) -> Any:
    """``data`` sent to every worker under a fresh key (a future).

    A worker that dies during the broadcast makes Dask's scatter fail (KeyError for the removed
    worker, or a closed comm): the scatter is then repeated on the workers left, up to
    ``attempts`` times. Fresh keys (``hash=False``): with hash=True, a later scatter of equal data
    in the same cluster intermittently lost it (test_distributed, 2 of 3 runs).
    """
    for attempt in range(attempts):
        try:
            return client.scatter(data, broadcast=True, hash=False)
        except (KeyError, OSError):
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def run_job(attempt: Callable[[], Any], attempts: int = 3) -> Any:
    """``attempt()`` (scatter the operands, run the blocks, gather), repeated from the scatter when
    the cluster lost scattered data it needed: a worker killed before Dask replicated a scatter
    takes the only copy with it, and Dask then cancels the tasks that needed it (scattered data is
    not recomputable). The tasks are pure, so a repeated attempt gathers the same result."""
    from distributed.utils import CancelledError

    for left in range(attempts - 1, -1, -1):
        try:
            return attempt()
        except CancelledError:
            if not left:
                raise
    raise AssertionError("unreachable")
