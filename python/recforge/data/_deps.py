"""Optional dependencies of the data layer, imported only inside the functions that need them."""
from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str | None = "data", purpose: str = "") -> ModuleType:
    """Import ``module`` or raise an ImportError that names the extra (or, with extra=None, the package)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = f" for {purpose}" if purpose else ""
        target = f"recforge[{extra}]" if extra else module
        raise ImportError(f"{module} is needed{what}: pip install {target}") from exc


def optional(module: str) -> ModuleType | None:
    """The module when it is installed, else None (for fast paths with a numpy fallback)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None
