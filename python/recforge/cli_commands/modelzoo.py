"""The models the CLI trains, discovered through :mod:`recforge.models.registry`.

A registered class may define ``demo_params`` (a dict of constructor arguments) to be trained
with quicker settings in ``recforge demo``; otherwise its defaults are used.
"""
from __future__ import annotations

from typing import Any

from recforge.cli_commands.errors import UserError


def registered() -> list[str]:
    from recforge.models import registry

    return registry.available()


def demo_models() -> list[str]:
    """The registered models a default ``recforge demo`` trains: all but those whose class sets
    ``in_demo = False`` (variants of a model already shown, e.g. the hybrids but the best)."""
    from recforge.models import registry

    return [n for n in registry.available() if getattr(registry.get(n), "in_demo", True)]


def resolve_models(requested: str | None) -> list[str]:
    """Registry names for a comma-separated, case-insensitive list (None: the demo's models)."""
    names = registered()
    if requested is None or not requested.strip():
        return demo_models()
    by_lower = {n.lower(): n for n in names}
    chosen = []
    for part in requested.split(","):
        key = part.strip().lower()
        if not key:
            continue
        if key not in by_lower:
            raise UserError(f"unknown model {part.strip()!r}; available: {', '.join(names)}")
        if by_lower[key] not in chosen:
            chosen.append(by_lower[key])
    if not chosen:
        raise UserError(f"no model named in {requested!r}; available: {', '.join(names)}")
    return chosen


def build_model(name: str, progress: bool, demo: bool = False) -> Any:
    """An unfitted instance of the model registered as ``name``."""
    from recforge.models import registry

    cls = registry.get(name)
    params = dict(getattr(cls, "demo_params", {}) or {}) if demo else {}
    accepted = cls._param_names() if hasattr(cls, "_param_names") else []
    if "progress" in accepted:
        params.setdefault("progress", progress)
    return cls(**params)
