"""Moving arrays between Python and the CUDA kernels of ``recforge._cuda``.

The kernels take device addresses. Arrays that already live on a GPU -- cupy arrays, CUDA
torch tensors, anything with ``__cuda_array_interface__`` or a CUDA ``__dlpack__`` -- are passed
without a copy when their dtype and layout already fit (otherwise converted on the device);
numpy / scipy inputs are copied to the device once and results copied back. Results take the
form of the inputs: numpy / scipy for host inputs, cupy (cupyx.scipy.sparse) for cupy inputs,
torch for torch inputs. cupy and torch are imported only when such an array is passed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from recforge.backend import on_gpu

def _module_of(x: Any) -> str:
    return type(x).__module__.split(".", 1)[0]


def is_torch(x: Any) -> bool:
    return _module_of(x) == "torch"


def is_cupy_sparse(x: Any) -> bool:
    return type(x).__module__.startswith("cupyx.scipy.sparse")


def is_device_array(x: Any) -> bool:
    """True for dense arrays in GPU memory (cupy, CUDA torch tensors, CUDA array interface / DLPack)."""
    return not (x is None or isinstance(x, np.ndarray) or sp.issparse(x) or is_cupy_sparse(x)) and on_gpu(x)


def on_device(x: Any) -> bool:
    """Dense or sparse, does ``x`` live on a GPU? (:func:`recforge.backend.on_gpu`)"""
    return on_gpu(x)


def _cupy():
    try:
        import cupy
    except ImportError:  # pragma: no cover - depends on the installation
        raise ImportError("this GPU array needs cupy to be converted: pip install recforge[gpu]") from None
    return cupy


def as_cupy(x: Any):
    """A cupy view of a device array (zero-copy through the CUDA array interface or DLPack)."""
    cupy = _cupy()
    if isinstance(x, cupy.ndarray):
        return x
    if hasattr(x, "__cuda_array_interface__"):
        return cupy.asarray(x)
    return cupy.from_dlpack(x)


@dataclass
class Staged:
    """A device array the kernels may use: its address and the object keeping the memory alive."""

    ptr: int
    owner: Any
    shape: tuple
    dtype: np.dtype


NULL = Staged(0, None, (), np.dtype(np.float32))


class Placement:
    """Where one kernel call runs and in which form its results come back.

    ``kind`` is "host" (numpy/scipy inputs: copy in, copy out), "cupy" or "torch"; ``device``
    the CUDA device index; ``stream`` the handle of the library's current stream (0 = default).
    """

    def __init__(self, *arrays: Any) -> None:
        devices, kinds = set(), []
        for a in arrays:
            if a is None or not on_device(a):
                continue
            if is_torch(a):
                kinds.append("torch")
                devices.add(int(a.device.index or 0))
            else:
                kinds.append("cupy")
                devices.add(int(_device_of_cupy_like(a)))
        if len(devices) > 1:
            raise ValueError(f"all GPU inputs must be on the same device, got devices {sorted(devices)}")
        self.kind = "torch" if "torch" in kinds and "cupy" not in kinds else ("cupy" if kinds else "host")
        self.device = devices.pop() if devices else 0
        self.stream = self._current_stream()

    def _current_stream(self) -> int:
        if self.kind == "cupy":
            cupy = _cupy()
            with cupy.cuda.Device(self.device):
                return int(cupy.cuda.get_current_stream().ptr)
        if self.kind == "torch":
            import torch

            return int(torch.cuda.current_stream(self.device).cuda_stream)
        return 0

    # -- inputs ---------------------------------------------------------------------------------
    def stage(self, x: Any, dtype: Any) -> Staged:
        """``x`` as a C-contiguous device array of ``dtype`` (zero-copy when it already is one)."""
        from recforge import _cuda

        dtype = np.dtype(dtype)
        if x is None:
            return NULL
        if isinstance(x, np.ndarray) or np.isscalar(x):
            a = np.ascontiguousarray(x, dtype=dtype)
            buf = _cuda.DeviceBuffer(max(a.nbytes, 1), self.device)
            buf.copy_from_host(a, 0)
            return Staged(buf.ptr, buf, a.shape, dtype)
        if is_torch(x):
            import torch

            t = x.detach().to(device=f"cuda:{self.device}", dtype=getattr(torch, dtype.name)).contiguous()
            if self.kind != "torch":  # torch worked on its own stream, the kernel runs on cupy's
                torch.cuda.current_stream(self.device).synchronize()
            return Staged(int(t.data_ptr()), t, tuple(t.shape), dtype)
        cupy = _cupy()
        with cupy.cuda.Device(self.device):
            a = cupy.ascontiguousarray(as_cupy(x), dtype=dtype)
        return Staged(int(a.data.ptr), a, tuple(a.shape), dtype)

    # -- outputs --------------------------------------------------------------------------------
    def empty(self, shape: tuple, dtype: Any) -> Staged:
        """An uninitialised device array for a kernel to write."""
        from recforge import _cuda

        dtype = np.dtype(dtype)
        if self.kind == "cupy":
            cupy = _cupy()
            with cupy.cuda.Device(self.device):
                a = cupy.empty(shape, dtype=dtype)
            return Staged(int(a.data.ptr), a, tuple(shape), dtype)
        if self.kind == "torch":
            import torch

            t = torch.empty(shape, dtype=getattr(torch, dtype.name), device=f"cuda:{self.device}")
            return Staged(int(t.data_ptr()), t, tuple(shape), dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        buf = _cuda.DeviceBuffer(max(nbytes, 1), self.device)
        return Staged(buf.ptr, buf, tuple(shape), dtype)

    def result(self, s: Staged) -> Any:
        """The output in the caller's form (numpy arrays are copied back from the device)."""
        if self.kind != "host":
            return s.owner
        out = np.empty(s.shape, dtype=s.dtype)
        if out.nbytes:
            s.owner.copy_to_host(out, 0)
        return out

    def namespace(self):
        """numpy, cupy or torch: the array library of this call's results."""
        if self.kind == "cupy":
            return _cupy()
        if self.kind == "torch":
            import torch

            return torch
        return np


def _device_of_cupy_like(a: Any) -> int:
    dev = getattr(a, "device", None)
    if dev is not None and hasattr(dev, "id"):
        return int(dev.id)
    if hasattr(a, "__dlpack_device__"):
        return int(a.__dlpack_device__()[1])
    return 0


def to_host_csr(X: Any) -> sp.csr_matrix:
    """A cupyx sparse matrix copied to a scipy CSR (other inputs are returned unchanged)."""
    return X.get().tocsr() if is_cupy_sparse(X) else X


def device_csr(indptr: Any, indices: Any, data: Any, shape: tuple):
    """A cupyx.scipy.sparse CSR from cupy arrays."""
    import cupyx.scipy.sparse as csp

    return csp.csr_matrix((data, indices, indptr), shape=shape)


def check_dense(x: Any, name: str):
    """A 2-D array of real, finite numbers on the host or a GPU; returns its float dtype.

    float64 stays float64 and every other real dtype computes in float32, as on the CPU.
    """
    if sp.issparse(x) or is_cupy_sparse(x):
        raise TypeError(f"{name} must be a dense 2-D array, got a sparse matrix; use {name}.toarray()")
    if is_torch(x):
        shape, kind = tuple(x.shape), ("f" if x.is_floating_point() else ("c" if x.is_complex() else "i"))
        is64 = str(x.dtype) == "torch.float64"
        finite = lambda: bool(__import__("torch").isfinite(x).all())  # noqa: E731
    elif is_device_array(x):
        a = as_cupy(x)
        shape, kind, is64 = a.shape, a.dtype.kind, a.dtype == np.float64
        finite = lambda: bool(_cupy().isfinite(a).all())  # noqa: E731
    else:
        try:
            a = np.asarray(x)
        except Exception as exc:
            raise TypeError(f"{name} must be a 2-D array of real numbers, got {type(x).__name__}: {exc}") from None
        shape, kind, is64 = a.shape, a.dtype.kind, a.dtype == np.float64
        finite = lambda: bool(np.isfinite(a).all()) if a.dtype.kind == "f" else True  # noqa: E731
    if kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype kind {kind!r}")
    if len(shape) != 2:
        raise ValueError(f"{name} must be 2-D, got shape {tuple(shape)}")
    if kind == "f" and not finite():
        raise ValueError(f"{name} contains NaN or infinite values")
    return np.dtype(np.float64 if is64 else np.float32)


def host_array(x: Any) -> Any:
    """numpy inputs as numpy arrays; device arrays unchanged."""
    return x if on_device(x) or is_torch(x) else np.asarray(x)


def max_abs(x: Any) -> float:
    """The largest absolute value of a host or device array (0 when it is empty)."""
    if is_torch(x):
        t = x.detach()
        t = t if t.is_floating_point() else t.double()
        return float(t.abs().max()) if t.numel() else 0.0
    a = as_cupy(x) if is_device_array(x) else np.asarray(x)
    if a.dtype.kind != "f":
        a = a.astype(np.float64)
    return max(float(a.max()), -float(a.min())) if a.size else 0.0
