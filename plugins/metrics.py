"""Built-in metrics: ranking (macro AUROC/AUPRC), binary-output (Challenge score, F1, accuracy),
calibration (ECE), multiclass (top-1 accuracy) and regression (MAE, Gaussian NLL, regression ECE).

Macro AUROC and AUPRC average per-class scores over the classes that have positives *and* negatives in
``y_true``; a class without one of them has no defined ROC/PR curve (rare labels often miss from a
small validation split), so it is skipped instead of failing the trial. With no such class the result
is NaN. Each class's own value is a column too (``val.auroc.<class>``, ``val.auprc.<class>``: the same
function on that column alone, so NaN by the same rule); the macro averages (and macro F1) are also
computed on each label group the dataset declares (``val.<group>.macro_auroc``), being means over classes
that mean the same on a subset. The Challenge score, accuracy and ECE are not: each is defined on the
whole label set (the Challenge weights every pair of its classes).

Binary-output metrics cut the probabilities at per-class thresholds (``y_score >= threshold``): 0.5
unless thresholds fitted on the validation split (``ecgsearch_plugins._thresholds.fit_thresholds``)
are passed to their factory, e.g. ``metrics.get("challenge_score").create(thresholds=t)``.
"""

from __future__ import annotations

import functools
from statistics import NormalDist
from typing import Callable, Sequence

import numpy as np

from ecgsearch import MetricInfo, binarize, hookimpl
from ecgsearch_plugins import _challenge2021 as challenge

MetricFn = Callable[[np.ndarray, np.ndarray, Sequence[str]], float]
ECE_BINS = 10
COVERAGE_LEVELS = tuple(round(0.1 * k, 1) for k in range(1, 10))  # central intervals of regression ECE


def checked(y_true: np.ndarray, y_score: np.ndarray, label_names: Sequence[str] | None,
            score_columns: int = 1, probabilities: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(y_true, y_score)`` as float arrays after checking that their shapes and names agree and that the
    scores are finite (and, with ``probabilities``, in [0, 1]); each problem is one ``ValueError`` sentence.

    score_columns: how many score columns each target has (2 for a mean and a variance).
    """
    y_true = np.asarray(y_true, dtype=float)
    y_score = np.asarray(y_score, dtype=float)
    if not np.isfinite(y_score).all():
        raise ValueError("y_score holds NaN or infinite values; metrics need finite scores (a trial whose outputs "
                         "diverge is recorded as diverged before any metric is computed).")
    if probabilities and y_score.size and (y_score.min() < 0 or y_score.max() > 1):
        raise ValueError(f"y_score must be probabilities in [0, 1], got values from {y_score.min():.4g} to "
                         f"{y_score.max():.4g}; pass the task's scores, not the model's raw outputs.")
    if y_true.ndim != 2 or y_score.shape != (y_true.shape[0], y_true.shape[1] * score_columns):
        shape = "same (records, classes)" if score_columns == 1 else f"(records, {score_columns} x targets)"
        raise ValueError(f"y_true {y_true.shape} and y_score {y_score.shape} must be the {shape} shape.")
    if label_names is not None and len(label_names) != y_true.shape[1]:
        raise ValueError(f"got {len(label_names)} label names for {y_true.shape[1]} classes.")
    return y_true, y_score


def one_hot(y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    """Class-index targets (one column, multiclass) as one-hot rows matching ``y_score``; others unchanged."""
    y_true = np.asarray(y_true)
    if y_true.ndim == 2 and y_true.shape[1] == 1 and np.ndim(y_score) == 2 and np.shape(y_score)[1] > 1:
        return (y_true.astype(int) == np.arange(np.shape(y_score)[1])).astype(float)
    return y_true


def macro_average(score: Callable[[np.ndarray, np.ndarray], float], y_true: np.ndarray,
                  y_score: np.ndarray, label_names: Sequence[str] | None = None, needs_negatives: bool = True) -> float:
    """Mean of ``score(y_true[:, k], y_score[:, k])`` over the classes it is defined for: those with a
    positive, and (``needs_negatives``, as ROC AUC) a negative too. NaN when there is no such class.

    Average precision is defined for every class with a positive (1.0 when every record is positive),
    which is how docs/metrics.md and the official Challenge scorer count it. Multiclass class-index
    targets are compared one-vs-rest (their names are not per class).
    """
    if np.shape(y_true)[-1:] == (1,) and np.ndim(y_score) == 2 and np.shape(y_score)[1] > 1:
        y_true, label_names = one_hot(y_true, y_score), None
    y_true, y_score = checked(y_true, y_score, label_names)
    y_true = y_true > 0.5
    positives = y_true.sum(axis=0)
    defined = (positives > 0) & (positives < len(y_true)) if needs_negatives else positives > 0
    valid = np.flatnonzero(defined)
    if valid.size == 0:
        return float("nan")
    return float(np.mean([score(y_true[:, k], y_score[:, k]) for k in valid]))


def roc_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """scikit-learn's ROC AUC of one class."""
    from sklearn.metrics import roc_auc_score  # deferred: scikit-learn; the plugin is listed without it

    return roc_auc_score(y_true, y_score)


def average_precision(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """scikit-learn's average precision of one class."""
    from sklearn.metrics import average_precision_score  # deferred: scikit-learn; the plugin is listed without it

    return average_precision_score(y_true, y_score)


macro_auroc: MetricFn = functools.partial(macro_average, roc_auc)
macro_auprc: MetricFn = functools.partial(macro_average, average_precision, needs_negatives=False)


def challenge_score(y_true: np.ndarray, y_score: np.ndarray, label_names: Sequence[str],
                    thresholds: np.ndarray | None = None) -> float:
    """The PhysioNet/CinC Challenge 2021 score (``_challenge2021.challenge_metric``).

    Columns are mapped to the 26 scored classes by their SNOMED-CT names (equivalent codes merged,
    unscored codes ignored). NaN when no column is a scored class (e.g. PTB-XL superclasses), so that
    computing every metric of a task never fails a trial.
    """
    y_true, y_score = checked(y_true, y_score, label_names)
    if not any(challenge.class_index(name) is not None for name in label_names):
        return float("nan")
    labels = challenge.to_scored(y_true > 0.5, label_names)
    outputs = challenge.to_scored(binarize(y_score, thresholds), label_names)
    return challenge.challenge_metric(labels, outputs)


def f_measures(labels: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Per-class F1 ``2TP / (2TP + FP + FN)`` of boolean arrays; NaN for a class neither labelled nor output."""
    tp = np.sum(labels & outputs, axis=0)
    denominator = 2 * tp + np.sum(labels ^ outputs, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * tp / denominator, np.nan)


def macro_f1(y_true: np.ndarray, y_score: np.ndarray, label_names: Sequence[str] | None = None,
             thresholds: np.ndarray | None = None) -> float:
    """Mean per-class F1 over the classes with a label or an output (the Challenge's F-measure)."""
    y_true, y_score = checked(y_true, y_score, label_names)
    per_class = f_measures(y_true > 0.5, binarize(y_score, thresholds))
    return float(np.nanmean(per_class)) if np.isfinite(per_class).any() else float("nan")


def accuracy(y_true: np.ndarray, y_score: np.ndarray, label_names: Sequence[str] | None = None,
             thresholds: np.ndarray | None = None) -> float:
    """The Challenge's accuracy: the fraction of records whose whole label set is exactly right."""
    y_true, y_score = checked(y_true, y_score, label_names)
    return float(np.mean(np.all((y_true > 0.5) == binarize(y_score, thresholds), axis=1)))


def expected_calibration_error(y_true: np.ndarray, y_score: np.ndarray,
                               label_names: Sequence[str] | None = None) -> float:
    """ECE with 10 equal-width probability bins, pooled over all (record, class) pairs.

    ``sum_b n_b / N * |mean(y_true in b) - mean(y_score in b)|``; the last bin includes 1.0. Pooling
    (rather than averaging per-class ECEs) keeps rare classes from adding bins of one or two records.
    ``y_score`` must be probabilities in [0, 1] (a ``ValueError`` sentence says so otherwise).
    """
    y_true, y_score = checked(y_true, y_score, label_names, probabilities=True)
    p, y = y_score.ravel(), (y_true > 0.5).ravel()
    bins = np.minimum((p * ECE_BINS).astype(int), ECE_BINS - 1)
    counts = np.bincount(bins, minlength=ECE_BINS)
    gaps = np.abs(np.bincount(bins, y, ECE_BINS) - np.bincount(bins, p, ECE_BINS))
    return float(gaps.sum() / max(counts.sum(), 1))


def top1_accuracy(y_true: np.ndarray, y_score: np.ndarray, label_names: Sequence[str] | None = None) -> float:
    """Fraction of records whose most probable class is the true one (one-hot or class-index targets)."""
    y_true = one_hot(y_true, y_score)
    y_true, y_score = checked(y_true, y_score, None)
    return float(np.mean(y_true.argmax(axis=1) == y_score.argmax(axis=1))) if len(y_true) else float("nan")


def predicted_means(y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    """The predicted values: all of ``y_score``, or its first half when it also holds variances."""
    y_score = np.asarray(y_score, dtype=float)
    targets = np.shape(y_true)[1] if np.ndim(y_true) == 2 else 0
    return y_score[:, :targets] if y_score.ndim == 2 and y_score.shape[1] == 2 * targets else y_score


def mean_absolute_error(y_true: np.ndarray, y_score: np.ndarray,
                        label_names: Sequence[str] | None = None) -> float:
    """Mean ``|target - prediction|`` over all targets; NaN targets (not measurable) are skipped.

    For a probabilistic task the prediction is the predicted mean (its variances must be finite too: a
    model whose variances diverged has not produced a prediction to score).
    """
    if not np.isfinite(np.asarray(y_score, dtype=float)).all():
        checked(y_true, y_score, None, score_columns=np.shape(y_score)[1] // max(np.shape(y_true)[1], 1))
    y_true, y_score = checked(y_true, predicted_means(y_true, y_score), label_names)
    known = np.isfinite(y_true)
    return float(np.mean(np.abs(y_true - y_score)[known])) if known.any() else float("nan")


def gaussian_nll(y_true: np.ndarray, y_score: np.ndarray, label_names: Sequence[str] | None = None,
                 min_variance: float = 1e-6) -> float:
    """Mean negative log-likelihood of the targets under per-target Gaussians (full, with log 2pi).

    ``y_score`` is ``(records, 2 * targets)``: the predicted means, then the predicted variances
    (floored at ``min_variance`` so one overconfident output cannot make the mean infinite). NaN targets
    are skipped.
    """
    y_true, y_score = checked(y_true, y_score, label_names, score_columns=2)
    mean, variance = np.split(y_score, 2, axis=1)
    variance = np.maximum(variance, min_variance)
    nll = 0.5 * (np.log(2 * np.pi * variance) + (y_true - mean) ** 2 / variance)
    known = np.isfinite(y_true)
    return float(np.mean(nll[known])) if known.any() else float("nan")


def regression_ece(y_true: np.ndarray, y_score: np.ndarray, label_names: Sequence[str] | None = None,
                   levels: Sequence[float] = COVERAGE_LEVELS) -> float:
    """Calibration of predicted Gaussians: mean over levels p of |observed coverage - p| of the central p intervals.

    ``y_score`` is means then variances (the probabilistic task's scores). The central p interval is
    ``mean +- z_((1+p)/2) * sd``; a calibrated model covers 10% of the targets with its 10% intervals,
    ..., 90% with its 90% intervals, giving 0; 0.5 is the worst possible at these levels (every
    interval covering all targets, or none: the mean of ``|1 - p|`` or of ``p`` over p = 0.1..0.9). NaN
    targets are skipped; ``val.regression_ece.<target>`` gives each target's own value (the pooled one
    can hide a single badly calibrated target).
    """
    y_true, y_score = checked(y_true, y_score, label_names, score_columns=2)
    mean, variance = np.split(y_score, 2, axis=1)
    known = np.isfinite(y_true)
    if not known.any():
        return float("nan")
    standard = np.abs(y_true - mean)[known] / np.sqrt(np.maximum(variance[known], 1e-12))
    normal = NormalDist()
    gaps = [abs(float(np.mean(standard <= normal.inv_cdf(0.5 + p / 2))) - p) for p in levels]
    return float(np.mean(gaps))


def with_thresholds(metric: Callable[..., float], thresholds: np.ndarray | None = None) -> MetricFn:
    """Factory of a binary-output metric: thresholds fitted on validation data, or 0.5 when None."""
    return functools.partial(metric, thresholds=None if thresholds is None else np.asarray(thresholds))


def constant(metric: MetricFn) -> Callable[[], MetricFn]:
    """Factory of a metric without parameters."""
    return lambda: metric


def make_macro_auroc() -> MetricFn:
    return macro_auroc


def make_macro_auprc() -> MetricFn:
    return macro_auprc


@hookimpl
def ecgsearch_register_metrics() -> list[MetricInfo]:
    return [
        MetricInfo(name="macro_auroc", description="area under the ROC curve, averaged over classes",
                   factory=make_macro_auroc, mode="max", tasks=("multilabel", "multiclass"), per_class="auroc",
                   macro=True),
        MetricInfo(name="macro_auprc",
                   description="area under the precision-recall curve (average precision), "
                               "averaged over classes",
                   factory=make_macro_auprc, mode="max", tasks=("multilabel", "multiclass"), per_class="auprc",
                   macro=True),
        MetricInfo(name="challenge_score",
                   description="PhysioNet/CinC Challenge 2021 score (weighted partial credit; "
                               "sinus rhythm only = 0, true labels = 1)",
                   factory=functools.partial(with_thresholds, challenge_score), mode="max", thresholded=True,
                   tasks=("multilabel",)),
        MetricInfo(name="macro_f1", description="F1 at the class thresholds, averaged over classes",
                   factory=functools.partial(with_thresholds, macro_f1), mode="max", thresholded=True,
                   tasks=("multilabel",), macro=True),
        MetricInfo(name="accuracy", description="fraction of records whose whole label set is exactly right",
                   factory=functools.partial(with_thresholds, accuracy), mode="max", thresholded=True, tasks=("multilabel",)),
        MetricInfo(name="ece", description="expected calibration error (10 equal-width bins, pooled "
                                           "over classes)",
                   factory=constant(expected_calibration_error), mode="min", tasks=("multilabel",)),
        MetricInfo(name="top1_accuracy", description="fraction of records whose most probable class is right",
                   factory=constant(top1_accuracy), mode="max", tasks=("multiclass",)),
        MetricInfo(name="mae", description="mean absolute error of the predicted values (also per target, in "
                                           "the target's units)",
                   factory=constant(mean_absolute_error), mode="min", tasks=("regression", "probabilistic"),
                   per_target=True),
        MetricInfo(name="gaussian_nll", description="Gaussian negative log-likelihood of predicted "
                                                    "means and variances",
                   factory=constant(gaussian_nll), mode="min", tasks=("probabilistic",)),
        MetricInfo(name="regression_ece", description="mean gap between nominal and observed coverage of the "
                                                      "central 10%..90% predictive intervals",
                   factory=constant(regression_ece), mode="min", tasks=("probabilistic",), per_target=True),
    ]
