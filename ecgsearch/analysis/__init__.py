"""Analysis of a run's results table: explanations, Pareto fronts, scaling laws, pruning, scaling up.

``run`` opens a run for analysis (``load_run``: the trials with a value); ``explain`` cross-validates the
surrogate and ranks the features; ``pareto`` finds the fronts; ``scaling`` fits laws; ``prune`` narrows
the space; ``scale_up`` proposes larger models; ``progress`` is the best value so far, ``history`` a
trial's per-epoch reports (Tune's trial folder) and ``compare`` several runs read together. The
surrogate's features and model live with the search (``ecgsearch.search.features``,
``ecgsearch.search.surrogate_model``) and are re-exported here. Reads the results table, never the
engine: may import search, train, the run folder, space, data and the contracts. Read ``run.py`` first.
"""

from ecgsearch.analysis.explain import POOLED, Explanation, explain
from ecgsearch.search.features import (
    FeatureEncoder,
    config_frame,
    encode,
    feature_frame,
    metric_column,
    target,
)
from ecgsearch.search.surrogate_model import SurrogateModel, surrogate_info

__all__ = [
    "Explanation",
    "FeatureEncoder",
    "POOLED",
    "SurrogateModel",
    "config_frame",
    "encode",
    "explain",
    "feature_frame",
    "metric_column",
    "surrogate_info",
    "target",
]
