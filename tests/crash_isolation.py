"""Running kernel calls that might crash the interpreter in a child process.

A segmentation fault, an abort or a stack overflow in compiled code kills the process that
runs it; run there, it would take pytest down with it. :func:`run_cases` runs a batch of
snippets in one fresh interpreter and reports, per snippet, what it returned or raised; a child
that dies fails the calling test with the name of the snippet it was running.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

_RUNNER = r"""
import json, sys, traceback
cases = json.loads(sys.stdin.read())
setup = cases.pop("__setup__", "")
namespace = {}
exec(setup, namespace)
results = {}
for name, source in cases.items():
    print("RUNNING " + name, file=sys.stderr, flush=True)
    scope = dict(namespace)
    try:
        exec(source, scope)
        results[name] = {"ok": True, "value": scope.get("result")}
    except Exception as exc:
        results[name] = {"ok": False, "error": type(exc).__name__, "message": str(exc)}
print("RESULTS " + json.dumps(results, default=repr))
"""

SETUP = """
import numpy as np
import scipy.sparse as sp
from recforge import kernels
from recforge.kernels import similarity_topk, dense_topk, spmm, propagate, normalize_adjacency
"""


def run_cases(cases: dict[str, str], setup: str = SETUP, timeout: float = 120.0) -> dict[str, dict]:
    """Runs each snippet (which may set ``result``) in one child interpreter.

    Returns ``{name: {"ok": True, "value": result}}`` or ``{"ok": False, "error": class name,
    "message": text}``. Fails the test when the child dies (naming the snippet that killed it).
    """
    payload = {"__setup__": textwrap.dedent(setup)}
    payload.update({name: textwrap.dedent(src) for name, src in cases.items()})
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    proc = subprocess.run([sys.executable, "-c", _RUNNER], input=json.dumps(payload), capture_output=True,
                          text=True, timeout=timeout, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULTS ")]
    if proc.returncode != 0 or not lines:
        running = [ln[8:] for ln in proc.stderr.splitlines() if ln.startswith("RUNNING ")]
        pytest.fail(f"the child process died (exit status {proc.returncode}) while running "
                    f"{running[-1] if running else 'the setup'!r}:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][8:])


def assert_rejected(outcome: dict, *names: str, errors: tuple[str, ...] = ("ValueError", "TypeError")) -> None:
    """The call raised one of ``errors`` whose message names every one of ``names``."""
    assert not outcome["ok"], f"expected an error, the call returned {outcome.get('value')!r}"
    assert outcome["error"] in errors, f"{outcome['error']}: {outcome['message']}"
    for name in names:
        assert name in outcome["message"], f"the message does not name {name!r}: {outcome['message']}"
