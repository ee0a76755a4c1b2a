"""Built-in multi-label metrics: macro AUROC and macro AUPRC.

Both average per-class scores over the classes that have positives *and* negatives in ``y_true``;
a class without one of them has no defined ROC/PR curve (rare labels often miss from a small
validation split), so it is skipped instead of failing the trial. With no such class the result is NaN.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from ecgsearch import MetricInfo, hookimpl

MetricFn = Callable[[np.ndarray, np.ndarray, Sequence[str]], float]


def macro_average(score: Callable[[np.ndarray, np.ndarray], float], y_true: np.ndarray,
                  y_score: np.ndarray, label_names: Sequence[str] | None = None) -> float:
    """Mean of ``score(y_true[:, k], y_score[:, k])`` over the classes with both label values."""
    y_true = np.asarray(y_true) > 0.5
    y_score = np.asarray(y_score, dtype=float)
    if y_true.ndim != 2 or y_true.shape != y_score.shape:
        raise ValueError(f"y_true {y_true.shape} and y_score {y_score.shape} must be the same "
                         "(records, classes) shape.")
    if label_names is not None and len(label_names) != y_true.shape[1]:
        raise ValueError(f"got {len(label_names)} label names for {y_true.shape[1]} classes.")
    positives = y_true.sum(axis=0)
    valid = np.flatnonzero((positives > 0) & (positives < len(y_true)))
    if valid.size == 0:
        return float("nan")
    return float(np.mean([score(y_true[:, k], y_score[:, k]) for k in valid]))


macro_auroc: MetricFn = functools.partial(macro_average, roc_auc_score)
macro_auprc: MetricFn = functools.partial(macro_average, average_precision_score)


def make_macro_auroc() -> MetricFn:
    return macro_auroc


def make_macro_auprc() -> MetricFn:
    return macro_auprc


@hookimpl
def ecgsearch_register_metrics() -> list[MetricInfo]:
    return [
        MetricInfo(name="macro_auroc", description="area under the ROC curve, averaged over classes",
                   factory=make_macro_auroc, mode="max", tasks=("multilabel",)),
        MetricInfo(name="macro_auprc",
                   description="area under the precision-recall curve (average precision), "
                               "averaged over classes",
                   factory=make_macro_auprc, mode="max", tasks=("multilabel",)),
    ]
