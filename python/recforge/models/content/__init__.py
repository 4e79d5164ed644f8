"""Content-based recommenders: ContentKNN over item texts and attributes (issue 13).

Nothing here imports scikit-learn, gensim or sentence-transformers until an encoder is used.
"""
from recforge.models.content.contentknn import ContentKNN

__all__ = ["ContentKNN"]
