"""Scattered operands that arrive on the workers with their arrays aligned, in memory of their own.

Dask's TCP comm reads a message's header and its *first* uncompressed buffer into one host
array when the bytes before that buffer are few (``distributed.comm.tcp._add_frames_header``),
so the first array of a scattered matrix lands at an odd address behind the header: for a
``scipy.sparse.csr_matrix`` its ``indices``. The kernels then copy that array to an aligned one
on every call (:func:`recforge.kernels._validation.contiguous`), and a 20M-entry matrix's copy,
with the fresh pages it touches, cost the one-worker job 0.3-0.8 s of its 7 s.

:class:`Shipment` puts a small leading buffer in front of the payload's frames: it takes the
place that shares the header's buffer, and every array of the payload is read into a host array
of its own (aligned). Workers keep the Shipment as received, so Dask's replication of a broadcast
(worker to worker) ships it the same way; tasks take the payload out with :func:`landed`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

#: bytes of the leading frame (one cache line)
LEAD_BYTES = 64


class Shipment:
    """``payload`` wrapped for :func:`recforge.distributed.blocks.scatter_everywhere`."""

    __slots__ = ("payload",)

    def __init__(self, payload: Any):
        self.payload = payload


def _register() -> None:
    from dask.sizeof import sizeof
    from distributed.protocol import dask_deserialize, dask_serialize, deserialize, serialize

    @dask_serialize.register(Shipment)
    def _serialize(shipment: Shipment) -> tuple[dict, list]:
        header, frames = serialize(shipment.payload, on_error="raise")
        return {"payload": header}, [memoryview(np.zeros(LEAD_BYTES, np.uint8)), *frames]

    @dask_deserialize.register(Shipment)
    def _deserialize(header: dict, frames: list) -> Shipment:
        return Shipment(deserialize(header["payload"], frames[1:]))

    @sizeof.register(Shipment)
    def _sizeof(shipment: Shipment) -> int:
        return sizeof(shipment.payload)


def landed(received: Any) -> Any:
    """What a task was given for a scattered argument: the payload of a Shipment, else itself."""
    return received.payload if isinstance(received, Shipment) else received


try:      # the worker that unpickles a Shipment's type imports this module: it registers there
    _register()
except ImportError:      # no Dask: nothing is shipped (recforge.distributed's calls name the extra)
    pass
