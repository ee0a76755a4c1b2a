"""Per-class decision thresholds, fitted on validation data only.

Metrics of binary outputs (Challenge score, F1, accuracy) depend on where probabilities are cut.
Choosing the cut on the data that is then scored would inflate the score, so thresholds are fitted
on the validation split and handed to the metric factories (``make_challenge_score(thresholds)``)
that score the test split.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

GRID: np.ndarray = np.round(np.arange(0.05, 0.951, 0.05), 2)
"""Candidate thresholds 0.05, 0.10, ..., 0.95: coarse enough not to overfit a small validation split."""
DEFAULT_THRESHOLD = 0.5
"""Used where nothing was fitted, and for classes without validation positives (no F1 to maximise)."""

ClassScore = Callable[[np.ndarray, np.ndarray], float]


def f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """F1 of one class: ``2TP / (2TP + FP + FN)``; 0 when the class is neither labelled nor predicted."""
    tp = np.sum(y_true & y_pred)
    denominator = 2 * tp + np.sum(~y_true & y_pred) + np.sum(y_true & ~y_pred)
    return float(2 * tp / denominator) if denominator else 0.0


CLASS_SCORES: dict[str, ClassScore] = {"f1": f1}


def fit_thresholds(y_true_val: np.ndarray, y_score_val: np.ndarray,
                   metric: str | ClassScore = "f1") -> np.ndarray:
    """One threshold per class maximising ``metric`` (per class, F1 by default) on validation data.

    metric: a name in ``CLASS_SCORES`` or a callable ``(y_true_col, y_pred_col) -> float`` on boolean
        columns. Ties go to the lowest threshold of the grid; classes without validation positives
        keep ``DEFAULT_THRESHOLD``. Returns a float array of shape ``(classes,)``.
    """
    score = CLASS_SCORES[metric] if isinstance(metric, str) else metric
    y_true = np.asarray(y_true_val) > 0.5
    y_score = np.asarray(y_score_val, dtype=float)
    if y_true.ndim != 2 or y_true.shape != y_score.shape:
        raise ValueError(f"y_true_val {y_true.shape} and y_score_val {y_score.shape} must be the same "
                         "(records, classes) shape.")
    thresholds = np.full(y_true.shape[1], DEFAULT_THRESHOLD)
    for k in np.flatnonzero(y_true.any(axis=0)):
        values = [score(y_true[:, k], y_score[:, k] >= t) for t in GRID]
        thresholds[k] = GRID[int(np.argmax(values))]
    return thresholds


def binarize(y_score: np.ndarray, thresholds: np.ndarray | None = None) -> np.ndarray:
    """``y_score >= threshold`` per class (column); 0.5 everywhere when no thresholds were fitted."""
    y_score = np.asarray(y_score, dtype=float)
    cut = DEFAULT_THRESHOLD if thresholds is None else np.asarray(thresholds, dtype=float)
    if np.ndim(cut) and np.shape(cut) != y_score.shape[-1:]:
        raise ValueError(f"got {np.size(cut)} thresholds for {y_score.shape[-1]} classes.")
    return y_score >= cut
