"""recforge: recommender systems with a C++/OpenMP and CUDA core.

Kernels live in :mod:`recforge.kernels`; hardware detection in :mod:`recforge.backend`.
"""
from __future__ import annotations

__version__ = "0.1.0"

from recforge.backend import backends  # noqa: E402

__all__ = ["__version__", "backends", "evaluate", "load"]

# Public names loaded on first use, so that `import recforge` stays light: name -> module.
_LAZY = {"evaluate": "recforge.evaluation.protocols", "load": "recforge.models.artifacts"}
#: subpackages reachable as attributes after a bare `import recforge` (as numpy and scipy do)
_SUBMODULES = ("data", "datasets", "evaluation", "kernels", "models", "torch", "bench")


def __getattr__(name: str):
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"recforge.{name}")
    raise AttributeError(f"module 'recforge' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))
