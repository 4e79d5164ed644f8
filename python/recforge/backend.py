"""Hardware detection, backend choice and thread counts.

``backend="auto"`` picks CUDA when the input already lives on a GPU (a cupy array or a CUDA
torch tensor) or when ``RECFORGE_BACKEND=cuda`` is set, else the CPU. An explicit
``backend="cuda"`` without a usable GPU raises :class:`BackendUnavailableError` saying why;
recforge never falls back silently from a backend that was asked for by name.
"""
from __future__ import annotations

import operator
import os
import platform
from dataclasses import dataclass, field
from typing import Any

from recforge import _core

BACKEND_NAMES = ("auto", "cpu", "cuda")


class BackendUnavailableError(RuntimeError):
    """The backend asked for by name cannot run here; the message says why."""


@dataclass
class BackendInfo:
    """What :func:`backends` reports for one backend."""

    name: str
    usable: bool
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def cpu_info() -> dict[str, Any]:
    """Facts about the CPU core: ISA it was compiled for, features found at run time, threads."""
    build = dict(_core.build_info())
    return {
        "processor": platform.processor() or platform.machine(),
        "compiled_isa": build["compiled_isa"],
        "cpu_features": list(_core.cpu_features()),
        "openmp_threads": int(_core.max_threads()),
        "processors": int(_core.num_procs()),
        "compiler": build["compiler"],
        "build_type": build["build_type"],
        "openmp_version": build["openmp"],
    }


def _load_cuda_module():
    """The compiled CUDA module, or None with the reason it cannot be imported."""
    try:
        from recforge import _cuda  # type: ignore[attr-defined]
    except ImportError as exc:
        return None, f"recforge._cuda is not built into this installation ({exc})"
    return _cuda, ""


_CUDA_INFO: BackendInfo | None = None


def cuda_info(refresh: bool = False) -> BackendInfo:
    """Whether CUDA is usable, with device name, compute capability, memory and versions.

    The answer is probed once per process (the driver and devices do not change while it
    runs); ``refresh=True`` probes again.
    """
    global _CUDA_INFO
    if _CUDA_INFO is None or refresh:
        _CUDA_INFO = _probe_cuda()
    return _CUDA_INFO


def _probe_cuda() -> BackendInfo:
    module, reason = _load_cuda_module()
    if module is None:
        return BackendInfo("cuda", False, reason)
    try:
        details = dict(module.device_info())
    except Exception as exc:  # the driver reports no device, no driver, or a version mismatch
        return BackendInfo("cuda", False, str(exc))
    usable = details.get("usable_devices", [d.get("index", 0) for d in details.get("devices", [])])
    if not details.get("devices") or not usable:
        return BackendInfo("cuda", False, details.get("reason") or "no CUDA device found", details)
    return BackendInfo("cuda", True, "", details)


def backends() -> list[BackendInfo]:
    """Every backend with whether it is usable here and, when not, why."""
    return [BackendInfo("cpu", True, "", cpu_info()), cuda_info()]


# More threads than this many per processor only cost memory (each thread keeps O(n) buffers)
# and, in the hundreds of thousands, overflow libgomp's stack; counts above it are capped.
THREADS_PER_PROCESSOR_CAP = 4


def check_int(value: Any, name: str, minimum: int) -> int:
    """An integer >= minimum (bools and floats are rejected); the one integer check of the kernels."""
    if isinstance(value, (bool,)) or type(value).__name__ == "bool_":
        raise TypeError(f"{name} must be an integer, got bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def resolve_num_threads(num_threads: int) -> int:
    """``0`` means every core OpenMP may use; a negative count is an error.

    Counts above ``THREADS_PER_PROCESSOR_CAP`` x the processors are capped there (results never
    depend on the thread count; absurd counts would only exhaust memory or libgomp's stack).
    """
    num_threads = check_int(num_threads, "num_threads", 0)
    cap = THREADS_PER_PROCESSOR_CAP * max(1, int(_core.num_procs()))
    return min(num_threads, cap) if num_threads else min(int(_core.max_threads()), cap)


def on_gpu(array: Any) -> bool:
    """True for arrays that live in GPU memory: cupy arrays and cupyx sparse matrices, CUDA torch
    tensors, and anything exposing ``__cuda_array_interface__`` or a CUDA ``__dlpack_device__``."""
    if array is None:
        return False
    if hasattr(array, "__cuda_array_interface__") or type(array).__module__.startswith("cupyx.scipy.sparse"):
        return True
    device = getattr(array, "device", None)
    if getattr(device, "type", None) == "cuda":
        return True
    dlpack_device = getattr(array, "__dlpack_device__", None)
    if dlpack_device is not None and not type(array).__module__.startswith("numpy"):
        try:
            return int(dlpack_device()[0]) == 2  # kDLCUDA
        except Exception:
            return False
    return False


def resolve_backend(backend: str, *arrays: Any, supported: tuple[str, ...] = ("cpu", "cuda")) -> str:
    """Pick ``"cpu"`` or ``"cuda"`` for a kernel call, or raise saying why the choice is impossible."""
    if backend not in BACKEND_NAMES:
        raise ValueError(f"backend must be one of {BACKEND_NAMES}, got {backend!r}")
    asked = "backend='cuda'"
    if backend == "auto":
        wanted = os.environ.get("RECFORGE_BACKEND", "").strip().lower()
        if wanted and wanted not in ("auto", "cpu", "cuda"):
            raise ValueError(f"RECFORGE_BACKEND must be 'auto', 'cpu' or 'cuda', got {wanted!r}")
        if wanted == "cuda":
            backend, asked = "cuda", "RECFORGE_BACKEND=cuda"
        elif any(on_gpu(a) for a in arrays):
            backend, asked = "cuda", "an input that lives on the GPU (backend='auto')"
        else:
            backend = "cpu"
    if backend == "cuda":
        if "cuda" not in supported:
            raise BackendUnavailableError(f"{asked} asks for CUDA, but this kernel has no CUDA implementation; "
                                          f"use backend='cpu' with host arrays")
        info = cuda_info()
        if not info.usable:
            raise BackendUnavailableError(f"{asked} asks for CUDA, but CUDA is not usable here: {info.reason}")
    return backend
