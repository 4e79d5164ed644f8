"""CI smoke test of an installed recforge (a repaired wheel, or a build from the sdist).

usage: python .ci/smoke.py INSTALL_PATTERN [--vendored LIBRARY]

Run from outside the source tree, so the installed package is the one imported. Checks that
`recforge info`'s install line matches INSTALL_PATTERN (a regular expression: the wheel's platform
tag, or "built from source"), that auditwheel vendored LIBRARY when asked, and that a kernel runs
and agrees with a brute-force product.
"""
import argparse
import re
import subprocess
import sys

import numpy as np
import scipy.sparse as sp

parser = argparse.ArgumentParser()
parser.add_argument("install_pattern")
parser.add_argument("--vendored", default=None)
args = parser.parse_args()

info = subprocess.run([sys.executable, "-m", "recforge", "info"], capture_output=True, text=True, check=True).stdout
print(info)
rows = dict(line.strip().split(None, 1) for line in info.splitlines() if line.startswith("  ") and len(line.split()) > 1)
if not re.search(args.install_pattern, rows.get("install", "")):
    sys.exit(f"smoke: install line {rows.get('install')!r} does not match {args.install_pattern!r}")
if args.vendored and args.vendored not in rows.get("vendored", ""):
    sys.exit(f"smoke: {args.vendored} is not vendored (vendored: {rows.get('vendored')!r})")

import recforge  # noqa: E402
from recforge.kernels import similarity_topk  # noqa: E402

X = sp.random(200, 50, density=0.1, format="csr", random_state=0, dtype=np.float32)
S = similarity_topk(X, 5, metric="dot", num_threads=2)
assert S.shape == (200, 200) and S.getnnz(axis=1).max() <= 5
dense = (X @ X.T).toarray()
np.fill_diagonal(dense, -np.inf)
best = np.sort(dense, axis=1)[:, ::-1][:, :5]
got = np.full((200, 5), -np.inf)
for row in range(200):
    values = np.sort(S[row].data)[::-1]
    got[row, : len(values)] = values
positive = best > 0  # similarity_topk stores positive dot products only
np.testing.assert_allclose(got[positive], best[positive], rtol=1e-5)
print("smoke test passed:", recforge.__version__, S.nnz, "neighbours from", recforge.__file__)
