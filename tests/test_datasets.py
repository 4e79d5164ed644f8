"""Dataset loaders against the counts that ../shared/data/README.md states, plus download/verify paths.

The expected numbers are copied from that README (and the datasets' own READMEs), not computed
by recforge.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import data_dir, data_file, shared_data_root
from recforge.data import DatasetNotFoundError, split
from recforge.datasets import amazon, data_home, goodbooks, lightgcn, movielens, read_ml1m_ratings
from recforge.datasets import _movielens as ml  # the module behind movielens(): URL table, bundled copy


def root() -> Path:
    return shared_data_root()


def test_movielens_100k_counts_and_metadata():
    data_dir("ml-100k")
    inter = movielens("100k", data_dir=root(), download=False)
    assert (len(inter), inter.n_users, inter.n_items) == (100_000, 943, 1_682)
    # README: 1: 6,110, 2: 11,370, 3: 27,145, 4: 34,174, 5: 21,201
    assert np.bincount(inter.values.astype(int), minlength=6)[1:].tolist() == [6110, 11370, 27145, 34174, 21201]
    assert inter.user_ids.to_numpy().tolist() == list(range(1, 944))  # ids kept, never shifted
    meta = inter.item_metadata
    assert len(meta) == 1_682
    assert meta.loc[1, "title"] == "Toy Story (1995)"
    assert meta.loc[1, "genres"] == "Animation|Children's|Comedy"
    assert meta.loc[543, "title"] == "Misérables, Les (1995)"  # Latin-1 byte 0xE9


def test_movielens_latest_small_counts_and_text():
    folder = data_dir("ml-latest-small")
    inter = movielens("latest-small", data_dir=root())
    assert (len(inter), inter.n_users, inter.n_items) == (100_836, 610, 9_724)
    assert inter.values.min() == 0.5 and inter.values.max() == 5.0
    meta = inter.item_metadata
    assert meta.loc[1, "title"] == "Toy Story (1995)"
    assert meta.loc[1, "genres"] == "Adventure|Animation|Children|Comedy|Fantasy"
    with open(folder / "tags.csv", newline="", encoding="utf-8") as f:
        toy_story_tags = {row["tag"] for row in csv.DictReader(f) if row["movieId"] == "1"}
    assert set(meta.loc[1, "tags"].split("|")) == toy_story_tags


def test_bundled_latest_small_is_the_published_file_and_loads_offline(tmp_path):
    BUNDLED = ml.BUNDLED
    sums = {}
    with open(data_file("", "SHA256SUMS")) as f:
        for line in f:
            digest, name = line.split()
            sums[name.removeprefix("./")] = digest
    for name in ("ratings.csv", "movies.csv", "tags.csv", "links.csv", "README.txt"):
        assert hashlib.sha256((BUNDLED / name).read_bytes()).hexdigest() == sums[f"ml-latest-small/{name}"]
    inter = movielens("latest-small", data_dir=tmp_path / "empty", download=False)
    assert (len(inter), inter.n_users, inter.n_items) == (100_836, 610, 9_724)


def test_movielens_1m_missing_ratings_says_what_to_put_where():
    folder = data_dir("ml-1m")
    if (folder / "ratings.dat").is_file():
        pytest.skip("ratings.dat is present here")
    with pytest.raises(DatasetNotFoundError) as info:
        movielens("1m", data_dir=root(), download=False)
    message = str(info.value)
    assert "ratings.dat" in message and str(folder) in message and "ml-1m.zip" in message


def test_movielens_1m_parser_on_partial_file(tmp_path):
    """The partial prefix (users 1-2999) is only a parser test, never 'ML-1M'."""
    partial = data_file("ml-1m", "partial/ratings.first487650lines.dat.gz")
    inter = read_ml1m_ratings(partial)
    assert len(inter) == 487_650 and inter.n_users == 2_999
    assert inter.user_counts()[inter.user_ids.code(1)] == 53
    first = (inter.user_ids[inter.users[0]], inter.item_ids[inter.items[0]], inter.values[0], inter.timestamps[0])
    assert first == (1, 1193, 5.0, 978300760)
    # the full loader path on a folder holding the partial ratings (decompressed) and movies.dat
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_bytes(gzip.decompress(partial.read_bytes()))
    shutil.copy(data_file("ml-1m", "movies.dat"), folder / "movies.dat")
    loaded = movielens("1m", data_dir=tmp_path, download=False)
    assert len(loaded) == 487_650
    assert loaded.item_metadata.loc[1193, "title"] == "One Flew Over the Cuckoo's Nest (1975)"
    assert not loaded.item_metadata["title"].isna().any()  # every rated movie is in movies.dat


@pytest.mark.parametrize("name, users, items, rows", [
    ("Beauty", 22_363, 12_101, 198_502),
    ("Sports_and_Outdoors", 35_598, 18_357, 296_337),
    ("Toys_and_Games", 19_412, 11_924, 167_597),
])
def test_amazon_counts(name, users, items, rows):
    data_dir("amazon-s3rec")
    inter = amazon(name, data_dir=root(), download=False)
    assert (inter.n_users, inter.n_items, len(inter)) == (users, items, rows)
    assert inter.user_counts().min() >= 5  # every sequence has at least 5 items
    train, test = split.leave_last_out(inter, drop_unseen=False)
    assert len(test) == users  # one next-item target per user


def test_amazon_sequence_order_and_attributes():
    folder = data_dir("amazon-s3rec")
    inter = amazon("beauty", data_dir=root(), download=False)
    with open(folder / "Beauty.txt") as f:
        first = [int(x) for x in f.readline().split()]
    user, items = first[0], first[1:]
    seq = inter.to_sequences()[inter.user_ids.code(user)]
    assert inter.item_ids[seq].tolist() == items
    attrs = inter.item_metadata["attributes"]
    assert len({a for v in attrs for a in v}) == 637  # README: 637 attribute ids


def test_lightgcn_gowalla_counts():
    data_dir("lightgcn-gowalla")
    train, test = result = lightgcn("gowalla", data_dir=root(), download=False)
    assert (len(train), len(test)) == (810_128, 217_242)
    assert (train.n_users, train.n_items) == (29_858, 40_981)
    assert np.unique(train.users).size == 29_858 and np.unique(train.items).size == 40_981
    assert np.unique(test.users).size == 29_858
    assert result.report.dropped_test_rows == 0
    assert train.to_csr().shape == test.to_csr().shape == (29_858, 40_981)
    assert train.user_ids.to_numpy().tolist() == list(range(29_858))  # remapped ids kept as they are


def test_goodbooks_missing_ratings_is_explained():
    folder = data_dir("goodbooks-10k")
    if (folder / "ratings.csv").is_file():
        pytest.skip("ratings.csv is present here")
    with pytest.raises(DatasetNotFoundError, match="ratings.csv") as info:
        goodbooks(data_dir=root())
    assert str(folder) in str(info.value)


def test_goodbooks_on_the_sample_files(tmp_path):
    samples = data_dir("goodbooks-10k") / "samples"
    folder = tmp_path / "goodbooks-10k"
    folder.mkdir()
    shutil.copy(samples / "ratings.csv", folder / "ratings.csv")
    shutil.copy(samples / "books.csv", folder / "books.csv")
    inter = goodbooks(data_dir=tmp_path)
    assert len(inter) == 99
    with open(samples / "ratings.csv", newline="") as f:
        first = next(csv.DictReader(f))
    assert inter.user_ids[inter.users[0]] == int(first["user_id"])
    assert inter.item_ids[inter.items[0]] == int(first["book_id"])


def test_data_home_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("RECFORGE_DATA_DIR", str(tmp_path))
    assert data_home() == tmp_path
    assert data_home("/elsewhere") == Path("/elsewhere")
    monkeypatch.delenv("RECFORGE_DATA_DIR")
    assert data_home() == Path.home() / ".recforge" / "data"


# ------------------------------------------------------------------ download and verification
def tiny_ml100k_zip(path: Path) -> str:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("ml-100k/u.data", "1\t10\t4\t100\n2\t10\t3\t101\n2\t20\t5\t102\n")
        z.writestr("ml-100k/u.item", "10|A (1990)|01-Jan-1990||url" + "|0" * 19 + "\n"
                   "20|B (1991)|01-Jan-1991||url" + "|1" + "|0" * 18 + "\n")
    return "md5:" + hashlib.md5(path.read_bytes()).hexdigest()


def test_download_verifies_checksum_and_extracts(tmp_path, monkeypatch):
    archive = tmp_path / "ml-100k.zip"
    checksum = tiny_ml100k_zip(archive)
    monkeypatch.setitem(ml.REMOTES, "100k", ml.Remote(archive.as_uri(), checksum, archive=True))
    inter = movielens("100k", data_dir=tmp_path / "home")
    assert (len(inter), inter.n_users, inter.n_items) == (3, 2, 2)
    assert (tmp_path / "home" / "ml-100k" / "u.data").is_file()
    assert inter.item_metadata.loc[20, "genres"] == "unknown"


def test_download_with_wrong_checksum_is_refused(tmp_path, monkeypatch):
    archive = tmp_path / "ml-100k.zip"
    tiny_ml100k_zip(archive)
    monkeypatch.setitem(ml.REMOTES, "100k", ml.Remote(archive.as_uri(), "md5:" + "0" * 32, archive=True))
    with pytest.raises(ValueError, match="checksum mismatch"):
        movielens("100k", data_dir=tmp_path / "home")
    assert not (tmp_path / "home" / "ml-100k" / "u.data").exists()


def test_failed_download_says_what_to_put_where(tmp_path, monkeypatch):
    missing = (tmp_path / "absent.zip").as_uri()
    monkeypatch.setitem(ml.REMOTES, "100k", ml.Remote(missing, "md5:" + "0" * 32, archive=True))
    with pytest.raises(DatasetNotFoundError, match=r"could not be downloaded.*u\.data") as info:
        movielens("100k", data_dir=tmp_path / "home")
    assert str(tmp_path / "home" / "ml-100k") in str(info.value)


def test_git_blob_checksum(tmp_path):
    from recforge.datasets._fetch import file_digest
    path = tmp_path / "f.txt"
    path.write_bytes(b"hello\n")
    # `git hash-object` of "hello\n" is ce013625030ba8dba906f756967f9e9ca394464a
    assert file_digest(path, "git-blob:") == "git-blob:ce013625030ba8dba906f756967f9e9ca394464a"


def test_unknown_names():
    with pytest.raises(ValueError, match="version"):
        movielens("20m")
    with pytest.raises(ValueError, match="name"):
        amazon("Books")
    with pytest.raises(ValueError, match="name"):
        lightgcn("netflix")
