"""Dataset names the CLI accepts, and how each is loaded (and split, where the data is pre-split)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from recforge.cli_commands.errors import UserError


@dataclass(frozen=True)
class DatasetEntry:
    description: str
    load: Callable[[Any, bool], Any]     # (data_dir, download) -> Interactions or SplitResult
    pre_split: bool = False              # the loader returns its own (train, test) split


def _movielens(version: str):
    def load(data_dir, download):
        from recforge.datasets import movielens
        return movielens(version, data_dir=data_dir, download=download)
    return load


def _amazon(name: str):
    def load(data_dir, download):
        from recforge.datasets import amazon
        return amazon(name, data_dir=data_dir, download=download, attributes=False)
    return load


def _lightgcn(name: str):
    def load(data_dir, download):
        from recforge.datasets import lightgcn
        return lightgcn(name, data_dir=data_dir, download=download)
    return load


def _goodbooks(data_dir, download):
    from recforge.datasets import goodbooks
    return goodbooks(data_dir=data_dir)


DATASETS: dict[str, DatasetEntry] = {
    "ml-latest-small": DatasetEntry("MovieLens latest-small (bundled, offline)", _movielens("latest-small")),
    "ml-100k": DatasetEntry("MovieLens 100K", _movielens("100k")),
    "ml-1m": DatasetEntry("MovieLens 1M", _movielens("1m")),
    "beauty": DatasetEntry("Amazon Beauty 5-core (S3-Rec)", _amazon("Beauty")),
    "sports": DatasetEntry("Amazon Sports_and_Outdoors 5-core (S3-Rec)", _amazon("Sports_and_Outdoors")),
    "toys": DatasetEntry("Amazon Toys_and_Games 5-core (S3-Rec)", _amazon("Toys_and_Games")),
    "gowalla": DatasetEntry("Gowalla (LightGCN's predefined split)", _lightgcn("gowalla"), pre_split=True),
    "yelp2018": DatasetEntry("Yelp2018 (LightGCN's predefined split)", _lightgcn("yelp2018"), pre_split=True),
    "amazon-book": DatasetEntry("Amazon-Book (LightGCN's predefined split)", _lightgcn("amazon-book"),
                                pre_split=True),
    "goodbooks": DatasetEntry("goodbooks-10k", _goodbooks),
}
ALIASES = {"movielens": "ml-latest-small", "latest-small": "ml-latest-small", "ml-small": "ml-latest-small",
           "100k": "ml-100k", "1m": "ml-1m", "amazon-beauty": "beauty", "goodbooks-10k": "goodbooks",
           "sports_and_outdoors": "sports", "toys_and_games": "toys"}


def dataset_entry(name: str) -> tuple[str, DatasetEntry]:
    """The canonical name and entry of ``name`` (case-insensitive, aliases allowed)."""
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    return key, DATASETS[key]


def load_dataset(name: str, data_dir: Any = None, download: bool = True) -> tuple[str, Any]:
    """(canonical name, Interactions or a pre-made SplitResult)."""
    key, entry = dataset_entry(name)
    return key, entry.load(data_dir, download)
