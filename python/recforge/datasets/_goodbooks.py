"""goodbooks-10k (zygmuntz/goodbooks-10k, CC BY-SA 4.0): book ratings 1-5 with book metadata.

``ratings.csv`` (user_id,book_id,rating) is read from ``data_home()/goodbooks-10k``; no checksum
is published for it, so it is never downloaded automatically — the error says where to put it.
``books.csv`` (title, authors, year, ...) becomes ``item_metadata`` when present.
"""
from __future__ import annotations

from typing import Any

from recforge.data._deps import require
from recforge.data.interactions import Interactions, align_metadata
from recforge.data.readers import read_csv
from recforge.datasets._fetch import Remote, data_home, ensure_files

REPO = "https://raw.githubusercontent.com/zygmuntz/goodbooks-10k/master"
BOOK_COLUMNS = ["title", "authors", "original_title", "original_publication_year", "language_code",
                "average_rating", "isbn", "goodreads_book_id"]


def goodbooks(*, data_dir: Any = None, metadata: bool = True) -> Interactions:
    """goodbooks-10k ratings (5,976,479 ratings of 10,000 books by 53,424 users)."""
    folder = ensure_files("goodbooks-10k", data_home(data_dir) / "goodbooks-10k", ["ratings.csv"],
                          {"ratings.csv": Remote(f"{REPO}/ratings.csv")}, download=True)
    inter = read_csv(folder / "ratings.csv", "user_id", "book_id", "rating")
    if metadata and (folder / "books.csv").is_file():
        pd = require("pandas", purpose="book metadata")
        books = pd.read_csv(folder / "books.csv").set_index("book_id")
        inter.item_metadata = align_metadata(books[[c for c in BOOK_COLUMNS if c in books]], inter.item_ids)
    return inter
