"""Sequential recommenders (Transformers over ordered histories): SASRec, BERT4Rec.

Importing this package imports no torch: the networks (:mod:`.networks`, :mod:`.core`) are
imported inside ``fit`` and the scoring methods.
"""
from recforge.models.sequential.bert4rec import BERT4Rec
from recforge.models.sequential.sasrec import SASRec

__all__ = ["SASRec", "BERT4Rec"]
