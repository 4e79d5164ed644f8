"""The public kernel API: validates input once, then calls the compiled core.

Every kernel takes ``num_threads`` (0 = all cores) and ``backend="auto"|"cpu"|"cuda"``.
"""
from recforge.kernels.similarity import METRICS as SIMILARITY_METRICS
from recforge.kernels.similarity import similarity_topk

__all__ = ["similarity_topk", "SIMILARITY_METRICS"]
