"""A shared change counter that tells a worker, without asking the store, that events arrived.

Every worker of a server (and every server on the same host using the same event store) maps
one 8-byte file, ``<temp dir>/recforge-events-<uid>-<hash of the store URL>.notice``. A worker
that stored events *commits first*, then increments the counter, then answers; a worker about
to answer a request reads the counter (one aligned 8-byte load from shared memory, well under a
microsecond) and reads the store only when it changed. So an event acknowledged by any worker
is in the history of every request that starts after the acknowledgement, and a request with
nothing new costs no query. Writers outside this host (another server on the same PostgreSQL,
a script inserting rows) are not counted: they are picked up by the periodic read
(``ServeConfig.events_poll_seconds``). If the file cannot be created or mapped, ``changed()``
always says yes (every request reads the store, as without a notice).

The counter is a generation number, not an event id, so a store that was recreated (ids
starting again at 1) never confuses it.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import mmap
import os
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger("recforge.serve")

SIZE = 8


def notice_path(events_url: str) -> Path:
    """The notice file of an event store: one per (user, store URL) on this host."""
    digest = hashlib.sha256(events_url.encode()).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"recforge-events-{os.getuid()}-{digest}.notice"


class EventNotice:
    """The counter of one event store (see the module docstring)."""

    def __init__(self, events_url: str):
        self.path = notice_path(events_url)
        self._fd: int | None = None
        self._map: mmap.mmap | None = None
        self._counter: np.ndarray | None = None
        self._seen = -1
        try:
            self._open()
        except OSError as exc:
            self.close()
            log.warning("no shared event notice at %s (%s): every request reads the event store", self.path, exc)

    def _open(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        self._fd = fd
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.fstat(fd).st_size < SIZE:
                os.ftruncate(fd, SIZE)            # a new file: zeros
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
        self._map = mmap.mmap(fd, SIZE)
        self._counter = np.frombuffer(self._map, dtype=np.int64, count=1)   # page-aligned: one atomic load

    @property
    def shared(self) -> bool:
        return self._counter is not None

    def value(self) -> int:
        return int(self._counter[0]) if self._counter is not None else -1

    def changed(self) -> bool:
        """True when a worker announced events since the last call that returned True (always
        True without a shared counter). Call it *before* reading the store."""
        counter = self._counter
        if counter is None:
            return True
        now = int(counter[0])
        if now == self._seen:
            return False
        self._seen = now
        return True

    def announce(self) -> None:
        """Events were committed: tell every worker (call after the commit, before answering)."""
        if self._counter is None:
            return
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            self._counter[0] = self._counter[0] + 1
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self._counter = None
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:       # a view is still alive somewhere: the mapping goes with the process
                pass
            self._map = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
