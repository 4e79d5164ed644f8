"""recforge: recommender systems with a C++/OpenMP and CUDA core.

Kernels live in :mod:`recforge.kernels`; hardware detection in :mod:`recforge.backend`.
"""
from __future__ import annotations

__version__ = "0.1.0"

from recforge.backend import backends  # noqa: E402

__all__ = ["__version__", "backends"]
