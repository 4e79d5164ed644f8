"""Evaluation: metrics, protocols (full ranking, sampled), cross-validation and tuning.

``recforge.evaluate`` is :func:`recforge.evaluation.protocols.evaluate`. pandas (for result
tables), tqdm (progress bars) and optuna (``bayes_search``) are imported only when used.
"""
from recforge.evaluation import metrics
from recforge.evaluation.names import parse_metric, parse_metrics, valid_names
from recforge.evaluation.protocols import PROTOCOLS, evaluate
from recforge.evaluation.selection import CrossValidationResult, SearchResult, bayes_search, cross_validate, grid_search

__all__ = ["metrics", "evaluate", "PROTOCOLS", "cross_validate", "grid_search", "bayes_search",
           "CrossValidationResult", "SearchResult", "parse_metric", "parse_metrics", "valid_names"]
