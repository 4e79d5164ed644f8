"""PyTorch side of recforge (the optional ``recforge[torch]`` extra).

Submodules, each imported on first use (``import recforge.torch`` itself imports no torch):

- :mod:`recforge.torch.autograd` -- differentiable kernels (:func:`propagate`);
- :mod:`recforge.torch.nn` -- shared layers (LightGCN propagation, transformer blocks);
- :mod:`recforge.torch.train` -- the one training loop (seeding, early stopping, checkpoints, AMP);
- :mod:`recforge.torch.losses` -- BPR, sampled BCE, sampled softmax (logQ), full cross-entropy;
- :mod:`recforge.torch.samplers` -- negative samplers (numpy + compiled core; no torch needed).

``recforge.torch.propagate`` stays importable here, as before the package existed.
"""
from __future__ import annotations

import importlib

from recforge.torch.autograd import propagate

__all__ = ["propagate", "autograd", "nn", "train", "losses", "samplers"]

_SUBMODULES = frozenset({"autograd", "nn", "train", "losses", "samplers"})


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
