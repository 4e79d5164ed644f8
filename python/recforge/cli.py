"""Command-line interface: `recforge info` (more commands arrive with the CLI issue)."""
from __future__ import annotations

import sys

from recforge import __version__
from recforge.backend import backends


def info_text() -> str:
    """Version, compiled backends, OpenMP threads, CPU features, CUDA devices or why none."""
    lines = [f"recforge {__version__}"]
    for b in backends():
        status = "usable" if b.usable else f"not usable: {b.reason}"
        lines.append(f"backend {b.name}: {status}")
        for key, value in b.details.items():
            if isinstance(value, (list, tuple)):
                value = ", ".join(str(x) for x in value) or "-"
            lines.append(f"  {key}: {value}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: recforge info")
        return 0 if argv else 2
    if argv[0] == "info":
        print(info_text())
        return 0
    print(f"recforge: unknown command {argv[0]!r}; try 'recforge info'", file=sys.stderr)
    return 2
