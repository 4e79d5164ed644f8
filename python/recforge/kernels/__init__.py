"""The public kernel API: validates input once, then calls the compiled core.

Every kernel takes ``num_threads`` (0 = all cores; counts above 4 per processor are capped),
``backend="auto"|"cpu"|"cuda"`` and ``check_input`` (default True: every sparse operand is checked
for structure -- ``indptr`` of rows + 1 entries, starting at 0, never decreasing, ending within the
stored entries; indices within the columns -- in one vectorised O(nnz) pass without copies, so a
malformed matrix raises ValueError naming the array instead of crashing the process; False skips
that pass for matrices the caller built or checked). The same checks run before the CPU and the
CUDA core; the compiled core re-checks in O(1) the layout, dtypes and lengths of what it reads.
Stored zeros: the kernels treat a stored 0 in X, Y, A or R as missing (it is dropped), while
``exclude`` patterns count every stored entry, whatever its value.
"""
from recforge.kernels.dense import METRICS as DENSE_METRICS
from recforge.kernels.dense import dense_topk
from recforge.kernels.graph import COMBINE_MODES, normalize_adjacency, propagate, spmm
from recforge.kernels.similarity import METRICS as SIMILARITY_METRICS
from recforge.kernels.similarity import similarity_topk
from recforge.kernels.prepared import PreparedCandidates, prepare_candidates
from recforge.kernels.prepared_dense import PreparedDenseItems, prepare_dense_items

__all__ = ["similarity_topk", "prepare_candidates", "PreparedCandidates", "SIMILARITY_METRICS",
           "dense_topk", "prepare_dense_items", "PreparedDenseItems", "DENSE_METRICS",
           "normalize_adjacency", "spmm", "propagate", "COMBINE_MODES"]
