"""recforge.datasets: loaders for public recommender datasets, returning Interactions.

* ``movielens("100k" | "1m" | "latest-small")`` — ratings, timestamps, titles and genres
  (latest-small also ships inside the package and works offline);
* ``amazon("Beauty" | "Sports_and_Outdoors" | "Toys_and_Games")`` — S3-Rec 5-core sequences;
* ``lightgcn("gowalla")`` — the predefined LightGCN ``(train, test)`` split;
* ``goodbooks()`` — goodbooks-10k ratings with book metadata;
* ``data_home()`` — where they are read from: ``data_dir=``, else ``$RECFORGE_DATA_DIR``, else
  ``~/.recforge/data`` (one sub-folder per dataset: ml-100k, ml-1m, ml-latest-small,
  amazon-s3rec, lightgcn-gowalla, goodbooks-10k).

Missing files are downloaded (with a progress bar, and verified) only where a checksum is known;
otherwise :class:`recforge.data.DatasetNotFoundError` names the file and the folder to put it in.
Each dataset has its own terms (see each loader's module docstring); MovieLens is research-use only.
"""
from recforge.data.errors import DatasetNotFoundError
from recforge.datasets._fetch import data_home
from recforge.datasets._amazon import amazon
from recforge.datasets._goodbooks import goodbooks
from recforge.datasets._lightgcn import lightgcn
from recforge.datasets._movielens import movielens, read_ml1m_ratings

__all__ = ["movielens", "amazon", "lightgcn", "goodbooks", "data_home", "read_ml1m_ratings",
           "DatasetNotFoundError"]
