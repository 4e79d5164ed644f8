"""recforge: recommender systems with a C++/OpenMP and CUDA core.

Kernels live in :mod:`recforge.kernels`; hardware detection in :mod:`recforge.backend`.
"""
from __future__ import annotations

__version__ = "0.1.0"

from recforge.backend import backends  # noqa: E402

__all__ = ["__version__", "backends", "evaluate", "load"]

# Public names loaded on first use, so that `import recforge` stays light: name -> module.
_LAZY = {"evaluate": "recforge.evaluation.protocols", "load": "recforge.models.artifacts"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'recforge' has no attribute {name!r}")
