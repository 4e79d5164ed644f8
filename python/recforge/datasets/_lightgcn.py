"""LightGCN/NGCF-style predefined splits: ``train.txt`` and ``test.txt`` of ``user item item ...``.

``lightgcn(name)`` returns the predefined ``(train, test)`` (a SplitResult with ``.report``),
both on one vocabulary (the ids in the files are already 0-based remapped ids and stay as
they are). Gowalla comes from gusye1234/LightGCN-PyTorch (original SNAP loc-gowalla data; cite
Cho, Myers & Leskovec, KDD 2011 and He et al., SIGIR 2020); research use with citation.
"""
from __future__ import annotations

from typing import Any

from recforge.data.readers import read_sequences
from recforge.data.split import SplitResult, predefined
from recforge.datasets._fetch import Remote, data_home, ensure_files

LIGHTGCN = "https://raw.githubusercontent.com/gusye1234/LightGCN-PyTorch/947ca2b3b1d2d3545b114145710cb06c4e57b3d2/data"
REMOTES = {
    "gowalla": {
        # the repository's own train.txt, identified by its git blob id
        "train.txt": Remote(f"{LIGHTGCN}/gowalla/train.txt", "git-blob:a27782bd7a1d4d0744148dc0460ea94da74763f2"),
        "test.txt": Remote(f"{LIGHTGCN}/gowalla/test.txt",
                           "sha256:099a2a73924e4b754dc6efd730d764f492321b53c38eb93298850c83acf57be3"),
    },
    "yelp2018": {f: Remote(f"{LIGHTGCN}/yelp2018/{f}") for f in ("train.txt", "test.txt")},
    "amazon-book": {f: Remote(f"{LIGHTGCN}/amazon-book/{f}") for f in ("train.txt", "test.txt")},
}


def lightgcn(name: str = "gowalla", *, data_dir: Any = None, download: bool = True,
             drop_unseen: bool = True) -> SplitResult:
    """The predefined LightGCN split ``name`` from ``data_home(data_dir)/lightgcn-<name>``."""
    key = str(name).lower()
    if key not in REMOTES:
        raise ValueError(f"name must be one of {sorted(REMOTES)}, got {name!r}")
    folder = ensure_files(f"LightGCN {key}", data_home(data_dir) / f"lightgcn-{key}",
                          ["train.txt", "test.txt"], REMOTES[key], download)
    train = read_sequences(folder / "train.txt", positions_as_timestamps=False)
    test = read_sequences(folder / "test.txt", positions_as_timestamps=False)
    return predefined(train, test, drop_unseen=drop_unseen)
