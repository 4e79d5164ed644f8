"""The kernel fuzz suite (hypothesis): every public kernel entry point on random valid inputs
against brute-force references, and on hostile inputs that must raise ValueError/TypeError or
give a well-formed result. Each property runs in its own child process
(tests/fuzz_kernels_child.py) so that a crash fails the test, naming the case, instead of
killing pytest. Example counts are fixed and the examples derandomised (reproducible in CI);
RECFORGE_FUZZ_EXAMPLES scales them (e.g. 2000 for a long local run)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = Path(__file__).resolve().parent / "fuzz_kernels_child.py"
EXAMPLES = {  # 990 examples in all
    ("similarity_topk", "valid"): 100, ("similarity_topk", "hostile"): 250,
    ("dense_topk", "valid"): 100, ("dense_topk", "hostile"): 250,
    ("graph", "valid"): 40, ("graph", "hostile"): 250,
}


@pytest.mark.parametrize("entry,mode", sorted(EXAMPLES))
def test_fuzz(entry, mode):
    examples = int(os.environ.get("RECFORGE_FUZZ_EXAMPLES", 0)) or EXAMPLES[(entry, mode)]
    env = dict(os.environ, OMP_NUM_THREADS="2")
    proc = subprocess.run([sys.executable, str(CHILD), entry, mode, str(examples)], capture_output=True,
                          text=True, timeout=600, env=env)
    if proc.returncode != 0 or f"FUZZ-OK {entry} {mode}" not in proc.stdout:
        cases = [ln for ln in proc.stderr.splitlines() if ln.startswith("CASE ")]
        pytest.fail(f"{entry} ({mode}) exit status {proc.returncode}; last case: "
                    f"{cases[-1] if cases else 'none'}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
