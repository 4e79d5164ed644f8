"""Readers: CSV/Parquet/sequence files and data frames, and every documented bad input."""
from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from recforge.data import DataFormatError, Interactions, read_csv, read_parquet, read_sequences


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


CSV = "userId,movieId,rating,timestamp\n10,100,4.5,7\n20,100,3,8\n10,300,1,9\n"


def test_read_csv_with_header_keeps_ids(tmp_path):
    inter = read_csv(write(tmp_path, "r.csv", CSV), "userId", "movieId", "rating", "timestamp")
    assert inter.user_ids[inter.users].tolist() == [10, 20, 10]
    assert inter.item_ids[inter.items].tolist() == [100, 100, 300]
    assert inter.values.tolist() == [4.5, 3.0, 1.0] and inter.timestamps.tolist() == [7, 8, 9]


def test_read_csv_without_header_multichar_sep_and_gzip(tmp_path):
    path = tmp_path / "ratings.dat.gz"
    with gzip.open(path, "wt") as f:
        f.write("1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    inter = read_csv(path, "u", "i", "r", "t", sep="::", header=False, names=["u", "i", "r", "t"])
    assert inter.user_ids[inter.users].tolist() == [1, 1, 2]
    assert inter.item_ids[inter.items].tolist() == [1193, 661, 1193]
    assert inter.timestamps.tolist() == [978300760, 978302109, 978298413]


def test_read_csv_crlf_and_string_ids(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(b"user,item\r\nA1,b-9\r\nA2,b-9\r\n")
    inter = read_csv(path, "user", "item")
    assert inter.user_ids.to_numpy().tolist() == ["A1", "A2"] and inter.values is None
    assert inter.item_ids.to_numpy().tolist() == ["b-9"]


def test_read_parquet_matches_csv(tmp_path):
    df = pd.DataFrame({"u": [3, 1, 3], "i": ["a", "b", "c"], "r": [1.0, 2.0, 3.5]})
    df.to_parquet(tmp_path / "x.parquet")
    inter = read_parquet(tmp_path / "x.parquet", "u", "i", "r")
    assert inter.user_ids[inter.users].tolist() == [3, 1, 3] and inter.values.tolist() == [1.0, 2.0, 3.5]
    with pytest.raises(ValueError, match="column 'rating' not found"):
        read_parquet(tmp_path / "x.parquet", "u", "i", "rating")


# ------------------------------------------------------------------ bad input
def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_csv(tmp_path / "nope.csv", "u", "i")
    with pytest.raises(FileNotFoundError, match="nope.parquet"):
        read_parquet(tmp_path / "nope.parquet", "u", "i")
    with pytest.raises(FileNotFoundError, match="seq.txt"):
        read_sequences(tmp_path / "seq.txt")


def test_missing_column_named(tmp_path):
    with pytest.raises(ValueError, match="column 'stars' not found.*userId"):
        read_csv(write(tmp_path, "r.csv", CSV), "userId", "movieId", "stars")
    with pytest.raises(ValueError, match="column 'item' not found"):
        Interactions.from_pandas(pd.DataFrame({"user": [1]}), "user", "item")


def test_wrong_field_count_names_file_and_line(tmp_path):
    path = write(tmp_path, "r.csv", CSV + "30,400\n")
    with pytest.raises(DataFormatError, match=r"r\.csv, line 5: expected 4 fields, got 2") as info:
        read_csv(path, "userId", "movieId", "rating")
    assert info.value.line == 5 and str(info.value.path).endswith("r.csv")


def test_non_numeric_rating_names_line_and_column(tmp_path):
    path = write(tmp_path, "r.csv", CSV.replace("3,8", "three,8"))
    with pytest.raises(DataFormatError, match=r"line 3, column 'rating'.*'three'") as info:
        read_csv(path, "userId", "movieId", "rating", "timestamp")
    assert info.value.column == "rating"


def test_empty_id_in_file(tmp_path):
    path = write(tmp_path, "r.csv", "user,item\na,x\n,y\n")
    with pytest.raises(DataFormatError, match="line 3, column 'user'.*empty id"):
        read_csv(path, "user", "item")


def test_empty_files(tmp_path):
    with pytest.raises(DataFormatError, match="empty"):
        read_csv(write(tmp_path, "e.csv", ""), "u", "i")
    with pytest.raises(ValueError, match="empty"):
        read_csv(write(tmp_path, "h.csv", "u,i\n"), "u", "i")
    with pytest.raises(ValueError, match="empty"):
        Interactions.from_pandas(pd.DataFrame({"u": [], "i": []}), "u", "i")


def test_lenient_reports_bad_rows(tmp_path):
    path = write(tmp_path, "r.csv", CSV + "30,400\n40,500,x,1\n50,600,2,3\n")
    inter, report = read_csv(path, "userId", "movieId", "rating", "timestamp", lenient=True)
    assert len(inter) == 4 and report.n_read == 4
    assert [b.line for b in report.bad_rows] == [5, 6]
    assert "expected 4 fields" in report.bad_rows[0].reason and "'x'" in report.bad_rows[1].reason
    assert inter.user_ids[inter.users].tolist() == [10, 20, 10, 50]  # ids never shifted


def test_nan_ids_in_frame():
    df = pd.DataFrame({"u": [1.0, np.nan, 3.0], "i": [1, 2, 3]})
    with pytest.raises(ValueError, match="column 'u' has 1 missing.*row 1"):
        Interactions.from_pandas(df, "u", "i")
    with pytest.raises(ValueError, match="column 'user' has 1 missing"):
        Interactions.from_arrays(np.array([1.0, np.nan]), [1, 2])


def test_mixed_id_types():
    df = pd.DataFrame({"u": [1, "a", 2], "i": [1, 2, 3]})
    with pytest.raises(TypeError, match="column 'u' mixes"):
        Interactions.from_pandas(df, "u", "i")
    with pytest.raises(TypeError, match="mixes id types"):
        Interactions.from_arrays(np.array([1, "a"], dtype=object), [1, 2])


def test_wrong_dtypes():
    with pytest.raises(TypeError, match="column 'u' must hold integer or string ids"):
        Interactions.from_pandas(pd.DataFrame({"u": [1.5, 2.0], "i": [1, 2]}), "u", "i")
    with pytest.raises(TypeError, match="column 'r'.*numeric"):
        Interactions.from_pandas(pd.DataFrame({"u": [1, 2], "i": [1, 2], "r": ["a", "b"]}), "u", "i", "r")
    with pytest.raises(TypeError, match="column 't'.*timestamps"):
        Interactions.from_pandas(pd.DataFrame({"u": [1], "i": [1], "t": ["noon"]}), "u", "i", timestamp="t")
    with pytest.raises(TypeError, match="must be a pandas.DataFrame"):
        Interactions.from_pandas({"u": [1]}, "u", "i")


def test_unknown_ids_against_vocabulary():
    base = Interactions.from_arrays([1, 2], ["a", "b"])
    with pytest.raises(KeyError, match="column 'item'.*'c'"):
        Interactions.from_arrays([1, 2], ["a", "c"], user_ids=base.user_ids, item_ids=base.item_ids)
    dropped = Interactions.from_arrays([1, 2, 2], ["a", "c", "b"], user_ids=base.user_ids,
                                       item_ids=base.item_ids, unknown="drop")
    assert len(dropped) == 2 and dropped.items.tolist() == [0, 1]


# ------------------------------------------------------------------ sequence files
def test_read_sequences_positions_and_empty_users(tmp_path):
    path = write(tmp_path, "s.txt", "1 5 3 5\n2 4\n\n3\n")
    inter = read_sequences(path)
    assert inter.user_ids.to_numpy().tolist() == [1, 2, 3]  # user 3 listed without items
    assert inter.user_ids[inter.users].tolist() == [1, 1, 1, 2]
    assert inter.item_ids[inter.items].tolist() == [5, 3, 5, 4]
    assert inter.timestamps.tolist() == [0, 1, 2, 0]


def test_read_sequences_bad_token(tmp_path):
    path = write(tmp_path, "s.txt", "1 5 3\n2 4 x7\n3 1\n")
    with pytest.raises(DataFormatError, match=r"line 2, column 'item'.*'x7'"):
        read_sequences(path)
    inter, report = read_sequences(path, lenient=True)
    assert [b.line for b in report.bad_rows] == [2] and len(inter) == 3


def test_text_ids_appearing_after_the_first_block(tmp_path):
    # the reader infers types from its first 4 MiB block: ids that turn textual later must not fail
    path = tmp_path / "late.csv"
    n = 400_000
    with open(path, "w") as f:
        f.write("user,item\n")
        f.write("".join(f"{1_000_000 + k % 5000},{k % 77}\n" for k in range(n)))
        f.write("u-late,5\n")
    inter = read_csv(path, "user", "item")
    assert len(inter) == n + 1 and inter.n_users == 5001
    assert "u-late" in inter.user_ids and "1000000" in inter.user_ids  # the column is text throughout
    assert inter.item_ids.to_numpy().dtype == object


def test_lists_with_mixed_types_are_rejected():
    with pytest.raises(TypeError, match="column 'user' mixes"):
        Interactions.from_arrays([1, "a"], [1, 2])


def test_missing_optional_dependency_names_the_extra(monkeypatch):
    import sys
    inter = Interactions.from_arrays([1], [2])
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pip install recforge\[data\]"):
        inter.to_pandas()
    monkeypatch.setitem(sys.modules, "polars", None)
    with pytest.raises(ImportError, match="pip install polars"):
        Interactions.from_polars(object(), "u", "i")


def test_parquet_streaming_matches_pandas(tmp_path):
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"u": rng.integers(0, 10**9, 300_000), "i": rng.integers(5, 900, 300_000).astype(np.int32),
                       "r": rng.random(300_000), "t": rng.integers(0, 10**9, 300_000)})
    df.to_parquet(tmp_path / "big.parquet", row_group_size=70_000)
    inter = read_parquet(tmp_path / "big.parquet", "u", "i", "r", "t")
    u_codes, u_ids = pd.factorize(df["u"], sort=True)
    i_codes, i_ids = pd.factorize(df["i"], sort=True)
    assert np.array_equal(inter.users, u_codes) and np.array_equal(inter.items, i_codes)
    assert np.array_equal(inter.user_ids.to_numpy(), u_ids) and np.array_equal(inter.item_ids.to_numpy(), i_ids)
    assert np.array_equal(inter.values, df["r"].to_numpy(np.float32))
    assert np.array_equal(inter.timestamps, df["t"].to_numpy())


def test_huge_unsigned_ids_are_kept_exactly(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    ids = np.array([2**64 - 1, 5, 2**63 + 7, 5], dtype=np.uint64)
    pq.write_table(pa.table({"u": ids, "i": np.array([1, 2, 3, 4])}), tmp_path / "u.parquet")
    inter = read_parquet(tmp_path / "u.parquet", "u", "i")
    assert [int(x) for x in inter.user_ids[inter.users]] == [int(x) for x in ids]
    assert inter.n_users == 3


def test_pandas_extension_dtypes():
    df = pd.DataFrame({"u": pd.Categorical(["b", "a", "b"]), "i": pd.array([1, 2, None], dtype="Int64"),
                       "r": pd.array([1.5, None, 3.0], dtype="Float64")})
    ok = Interactions.from_pandas(df.iloc[:2], "u", "i", "r")
    assert ok.user_ids[ok.users].tolist() == ["b", "a"] and np.isnan(ok.values[1])
    with pytest.raises(ValueError, match="column 'i' has 1 missing ids, first at row 2"):
        Interactions.from_pandas(df, "u", "i", "r")
