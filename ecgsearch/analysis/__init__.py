"""Analysis of a run's results: the surrogate's features and model, explanations, pruning.

``feature_frame``/``config_frame`` + ``FeatureEncoder``/``encode`` turn trials and candidates into
model inputs in one place; ``target`` signs the metric so that larger is better; ``SurrogateModel``
pairs a surrogate plugin with that encoding; ``explain`` cross-validates it and ranks the features.
"""

from ecgsearch.analysis.explain import POOLED, Explanation, explain
from ecgsearch.analysis.features import (
    FeatureEncoder,
    config_frame,
    encode,
    feature_frame,
    metric_column,
    target,
)
from ecgsearch.analysis.model import SurrogateModel, surrogate_info

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
