"""Optional dependencies of the data layer, imported only inside the functions that need them."""
from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str = "data", purpose: str = "") -> ModuleType:
    """Import ``module`` or raise an ImportError that names the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = f" for {purpose}" if purpose else ""
        raise ImportError(f"{module} is needed{what}: pip install recforge[{extra}]") from exc


def optional(module: str) -> ModuleType | None:
    """The module when it is installed, else None (for fast paths with a numpy fallback)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None
