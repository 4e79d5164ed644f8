"""The public kernel API: validates input once, then calls the compiled core.

Every kernel takes ``num_threads`` (0 = all cores) and ``backend="auto"|"cpu"|"cuda"``.
"""
from recforge.kernels.dense import METRICS as DENSE_METRICS
from recforge.kernels.dense import dense_topk
from recforge.kernels.graph import COMBINE_MODES, normalize_adjacency, propagate, spmm
from recforge.kernels.similarity import METRICS as SIMILARITY_METRICS
from recforge.kernels.similarity import similarity_topk

__all__ = ["similarity_topk", "SIMILARITY_METRICS", "dense_topk", "DENSE_METRICS",
           "normalize_adjacency", "spmm", "propagate", "COMBINE_MODES"]
