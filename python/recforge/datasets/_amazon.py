"""Amazon 5-core review sequences in the S3-Rec preprocessing (Beauty, Sports, Toys).

Each line of ``<Name>.txt`` is ``user item item ...`` in chronological order (ids from 1), so
``leave_last_out`` reproduces the usual next-item protocol. The item's position in its user's
sequence is stored as its timestamp. ``<Name>_item2attributes.json`` (brand/category ids) becomes
``item_metadata["attributes"]`` (a list of ints per item) when present.

Data: Amazon product data of J. McAuley (UCSD), via RUCAIBox/CIKM2020-S3Rec; research use, cite
He & McAuley (WWW 2016) and McAuley et al. (SIGIR 2015).
"""
from __future__ import annotations

import json
from typing import Any

from recforge.data._deps import require
from recforge.data.interactions import Interactions, align_metadata
from recforge.data.readers import read_sequences
from recforge.datasets._fetch import Remote, data_home, ensure_files

FOLDER = "amazon-s3rec"
S3REC = "https://raw.githubusercontent.com/RUCAIBox/CIKM2020-S3Rec/2a81540ae18615d88ef88227b0c066e5b74781e5/data"
NAMES = {"beauty": "Beauty", "sports": "Sports_and_Outdoors", "sports_and_outdoors": "Sports_and_Outdoors",
         "toys": "Toys_and_Games", "toys_and_games": "Toys_and_Games"}
SHA256 = {
    "Beauty.txt": "226cce9c3105299ca0db9615d7d3fb32b3175e90da43100ae352599f0f0107b8",
    "Beauty_item2attributes.json": "129e40f67486f6877eff0f5318cfa8530ee8ac23d8b0d1de04e1bb7a2ba0b2d4",
    "Sports_and_Outdoors.txt": "2a095e0648872beb9982408958290f5d655db5be2911c3756b5446de9f0b8de2",
    "Sports_and_Outdoors_item2attributes.json": "7fb10733ac4f1811384a52144cdefa7fcc7536fa80a7232c5da9bd789155c34b",
    "Toys_and_Games.txt": "176c680c688d497598c4a89a03b402c0fe78d795e5db335c2e78dd5f2d778a3f",
    "Toys_and_Games_item2attributes.json": "d371acd25101eedac04afc727626464b7acec770c4eda708705d51eb76eb1ad0",
}
REMOTES = {name: Remote(f"{S3REC}/{name}", f"sha256:{digest}") for name, digest in SHA256.items()}


def amazon(name: str = "Beauty", *, data_dir: Any = None, download: bool = True,
           attributes: bool = True) -> Interactions:
    """The S3-Rec Amazon sequences ``name`` ("Beauty", "Sports_and_Outdoors", "Toys_and_Games")."""
    key = str(name).lower()
    if key not in NAMES:
        raise ValueError(f"name must be one of {sorted(set(NAMES.values()))}, got {name!r}")
    stem = NAMES[key]
    folder = ensure_files(f"Amazon {stem} (S3-Rec)", data_home(data_dir) / FOLDER, [f"{stem}.txt"],
                          REMOTES, download)
    inter = read_sequences(folder / f"{stem}.txt")
    attr_file = folder / f"{stem}_item2attributes.json"
    if attributes and attr_file.is_file():
        pd = require("pandas", purpose="item attributes")
        with open(attr_file, encoding="utf-8") as f:
            mapping = json.load(f)
        table = pd.DataFrame({"attributes": list(mapping.values())},
                             index=pd.Index([int(k) for k in mapping], name="item_id"))
        inter.item_metadata = align_metadata(table, inter.item_ids)
    return inter
