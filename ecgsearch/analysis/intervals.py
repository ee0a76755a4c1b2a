"""A metric's confidence interval by the percentile bootstrap over records (the model card's intervals).

The records of a split are resampled with replacement ``resamples`` times, the metric recomputed on each
resample, and the interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of those values.
Resamples on which the metric is undefined (NaN: a class without positives for an AUROC) are skipped.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

BOOTSTRAP_RESAMPLES = 200  # the tails of a 95% interval from ~5 values each: rough, and seconds per metric
LEVEL = 0.95


def bootstrap_interval(metric: Callable[[np.ndarray, np.ndarray], float], y_true: Any, y_score: Any,
                       resamples: int = BOOTSTRAP_RESAMPLES, level: float = LEVEL,
                       seed: int = 0) -> tuple[float, float] | None:
    """``(low, high)`` of ``metric(y_true, y_score)`` over records (rows); None when no resample defines it."""
    y_true, y_score = np.asarray(y_true), np.asarray(y_score)
    rng = np.random.default_rng(seed)
    n = len(y_true)
    values = []
    for _ in range(resamples if n else 0):
        rows = rng.integers(0, n, n)
        with np.errstate(all="ignore"):
            value = float(metric(y_true[rows], y_score[rows]))
        if np.isfinite(value):
            values.append(value)
    if not values:
        return None
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)
