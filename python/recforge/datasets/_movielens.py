"""MovieLens loaders (GroupLens): 100K, 1M and latest-small, with titles and genres.

``movielens(version)`` returns an Interactions with ratings (float32), Unix timestamps and
``item_metadata`` indexed by movie id: ``title``, ``genres`` ("|"-separated, as in the
latest-small files) and, where the release has them, ``release_date``/``imdb_url`` (100K),
``tags`` ("|"-separated distinct tags) and ``imdbId``/``tmdbId`` (latest-small).

MovieLens terms: research use only, cite Harper & Konstan (2015), TiiS 5(4):19; 100K and 1M may
not be redistributed. latest-small may be redistributed under the same terms, so a copy ships
inside recforge (``recforge/_bundled/ml-latest-small``, with its README) and is used when no
other copy is found.
"""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

from recforge.data._deps import require
from recforge.data.interactions import Interactions
from recforge.data.readers import read_csv
from recforge.datasets._fetch import Remote, data_home, ensure_files

GROUPLENS = "https://files.grouplens.org/datasets/movielens"
REMOTES = {
    "100k": Remote(f"{GROUPLENS}/ml-100k.zip", "md5:0e33842e24a9c977be4e0107933c0723", archive=True),
    "1m": Remote(f"{GROUPLENS}/ml-1m.zip", "md5:c4d9eecfca2ab87c1945afe126590906", archive=True),
}
FOLDERS = {"100k": "ml-100k", "1m": "ml-1m", "latest-small": "ml-latest-small"}
BUNDLED = Path(__file__).resolve().parent.parent / "_bundled" / "ml-latest-small"
GENRES_100K = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
               "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
               "Romance", "Sci-Fi", "Thriller", "War", "Western"]


def movielens(version: str = "100k", *, data_dir: Any = None, download: bool = True,
              metadata: bool = True) -> Interactions:
    """MovieLens ``version`` ("100k", "1m" or "latest-small") from ``data_home(data_dir)/ml-<version>``."""
    key = str(version).lower().removeprefix("ml-")
    if key not in FOLDERS:
        raise ValueError(f"version must be one of {sorted(FOLDERS)}, got {version!r}")
    folder = data_home(data_dir) / FOLDERS[key]
    if key == "100k":
        ensure_files("MovieLens 100K", folder, ["u.data", "u.item"], REMOTES["100k"], download)
        inter = read_csv(folder / "u.data", "user", "item", "rating", "timestamp", sep="\t", header=False,
                         names=["user", "item", "rating", "timestamp"])
        meta = _items_100k(folder) if metadata else None
    elif key == "1m":
        ensure_files("MovieLens 1M", folder, ["ratings.dat", "movies.dat"], REMOTES["1m"], download)
        inter = read_ml1m_ratings(folder / "ratings.dat")
        meta = _movies_1m(folder / "movies.dat") if metadata else None
    else:
        if not (folder / "ratings.csv").is_file():
            folder = BUNDLED
        ensure_files("MovieLens latest-small", folder, ["ratings.csv", "movies.csv"], None, download)
        inter = read_csv(folder / "ratings.csv", "userId", "movieId", "rating", "timestamp")
        meta = _movies_latest(folder) if metadata else None
    if meta is not None:
        from recforge.data.interactions import align_metadata
        inter.item_metadata = align_metadata(meta, inter.item_ids)
    return inter


def read_ml1m_ratings(path: Any) -> Interactions:
    """A MovieLens-1M style ``UserID::MovieID::Rating::Timestamp`` file (also .gz)."""
    return read_csv(path, "user", "item", "rating", "timestamp", sep="::", header=False,
                    names=["user", "item", "rating", "timestamp"])


def _items_100k(folder: Path) -> Any:
    pd = require("pandas", purpose="MovieLens item metadata")
    genres = GENRES_100K
    if (folder / "u.genre").is_file():
        table = pd.read_csv(folder / "u.genre", sep="|", header=None, names=["name", "id"], encoding="latin-1")
        genres = table.sort_values("id")["name"].tolist()
    names = ["movie_id", "title", "release_date", "video_release_date", "imdb_url", *genres]
    items = pd.read_csv(folder / "u.item", sep="|", header=None, names=names, encoding="latin-1")
    flags = items[genres].to_numpy().astype(bool)
    items["genres"] = ["|".join(g for g, on in zip(genres, row) if on) for row in flags]
    return items.set_index("movie_id")[["title", "genres", "release_date", "imdb_url"]]


def _movies_1m(path: Path) -> Any:
    pd = require("pandas", purpose="MovieLens item metadata")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="latin-1") as f:
        rows = [line.rstrip("\r\n").split("::") for line in f if line.strip()]
    movies = pd.DataFrame(rows, columns=["movie_id", "title", "genres"])
    movies["movie_id"] = movies["movie_id"].astype("int64")
    return movies.set_index("movie_id")


def _movies_latest(folder: Path) -> Any:
    pd = require("pandas", purpose="MovieLens item metadata")
    movies = pd.read_csv(folder / "movies.csv", encoding="utf-8").set_index("movieId")
    if (folder / "tags.csv").is_file():
        tags = pd.read_csv(folder / "tags.csv", encoding="utf-8", dtype={"tag": str})
        tags = tags.dropna(subset=["tag"]).drop_duplicates(["movieId", "tag"])
        movies["tags"] = tags.groupby("movieId", sort=False)["tag"].agg("|".join).reindex(movies.index).fillna("")
    if (folder / "links.csv").is_file():
        links = pd.read_csv(folder / "links.csv", dtype={"imdbId": str}).set_index("movieId")
        movies = movies.join(links[["imdbId", "tmdbId"]])
    return movies
