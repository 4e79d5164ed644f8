"""The one place recforge.torch imports optional dependencies, with errors naming the extra."""
from __future__ import annotations

from typing import Any

EXTRA_HINT = 'pip install "recforge[torch]"'


def require_torch() -> Any:
    """The torch module, or an ImportError naming the ``torch`` extra."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError(f"recforge.torch needs PyTorch: {EXTRA_HINT}") from exc
    return torch


def require_safetensors() -> Any:
    """safetensors.torch (checkpoints), or an ImportError naming the ``torch`` extra."""
    try:
        import safetensors.torch
    except ImportError as exc:
        raise ImportError(f"recforge.torch checkpoints need safetensors: {EXTRA_HINT}") from exc
    return safetensors.torch
