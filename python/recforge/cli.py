"""The ``recforge`` command (also ``python -m recforge``): ``info``, ``demo``, ``bench``, ``evaluate``, ``serve``.

``recforge info`` needs numpy and scipy only. The other commands use typer, rich and tqdm
(``pip install "recforge[cli]"``); without them they print one line saying so and exit 2.
The commands themselves live in :mod:`recforge.cli_commands`.
"""
from __future__ import annotations

import importlib.util
import sys

from recforge.cli_commands.info import info_text, run_info

__all__ = ["main", "info_text"]

CLI_LIBRARIES = ("typer", "rich", "tqdm")
CLI_EXTRA_HINT = 'recforge: this command needs the CLI extra: pip install "recforge[cli]"'
USAGE = """usage: recforge COMMAND [OPTIONS]

commands:
  info      version, build, backends and optional libraries (needs numpy + scipy only)
  demo      train and compare every model on the bundled MovieLens sample
  bench     benchmark the kernels on every backend and against peer libraries
  evaluate  evaluate one model on one dataset
  serve     serve a saved model over HTTP (needs recforge[serve])

The commands other than info need: pip install "recforge[cli]"."""


def cli_libraries_present() -> bool:
    """typer, rich and tqdm can all be imported (checked without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in CLI_LIBRARIES)


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["info"]:        # always without typer/rich: fast, and works with numpy + scipy only
        return run_info(argv[1:])
    if not cli_libraries_present():
        if not argv or argv[0] in ("-h", "--help"):
            print(USAGE)
            return 0 if argv else 2
        print(CLI_EXTRA_HINT, file=sys.stderr)
        return 2
    from recforge.cli_commands.app import run

    return run(argv)
