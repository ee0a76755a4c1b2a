"""Built-in tasks: multi-label and multiclass classification, regression and probabilistic regression.

- ``multilabel``: one sigmoid per label (PhysioNet 2021, PTB-XL), BCE or the asymmetric loss (ASL,
  Ridnik et al. 2021) that the ConvNeXt scaling study trained with.
- ``multiclass``: one softmax over classes, cross-entropy; targets are one-hot rows or one column of
  class indices (then ``classes`` says how many).
- ``regression``: several continuous targets (HR, PR, QRS, QT), L1 or MSE, each target standardised with
  the training split's mean and spread so bpm and ms train together; scores in the original units.
- ``probabilistic``: a Gaussian per target (mean and log-variance outputs), trained by negative
  log-likelihood; scores are the means, then the variances, in the original units.

Every loss is computed in float32 (under bf16/fp16 autocast too) and, for regressions, skips NaN
targets (a quantity that could not be measured on a record).

The factories check their arguments here; the tasks themselves (losses and scores, torch) are in
``_tasks_impl.py``, imported when a factory is called.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any

from ecgsearch import (
    TaskInfo,
    bool_param,
    float_param,
    hookimpl,
    int_param,
    str_param,
)

if TYPE_CHECKING:  # annotations only
    from ecgsearch_plugins._tasks_impl import MulticlassTask, MultilabelTask, ProbabilisticTask, RegressionTask

MULTILABEL_LOSSES = ("bce", "asymmetric")
REGRESSION_LOSSES = ("l1", "mse")


def _count(task: str, num_targets: Any) -> int:
    if isinstance(num_targets, bool) or not isinstance(num_targets, numbers.Integral) or num_targets < 1:
        raise ValueError(f"{task}: num_targets={num_targets!r} must be an integer >= 1.")
    return int(num_targets)


def _number(task: str, key: str, value: Any, low: float, high: float = math.inf, high_open: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value and (
        value < high if high_open else value <= high)
    if not ok:
        closing = ")" if high_open else "]"
        raise ValueError(f"task {task}: {key}={value!r} must be a number in [{low:g}, {high:g}{closing}.")
    return float(value)


def _one_of(task: str, key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"task {task}: {key}={value!r} must be one of {', '.join(allowed)}.")
    return str(value)


# --- multilabel ----------------------------------------------------------------------------------


def build_multilabel(num_targets: int, *, loss: str = "bce", gamma_neg: float = 4.0, gamma_pos: float = 0.0,
                     clip: float = 0.05) -> MultilabelTask:
    """One model output per target column; ``gamma_neg``, ``gamma_pos`` and ``clip`` apply to ``asymmetric``."""
    from ecgsearch_plugins._tasks_impl import MultilabelTask  # deferred: torch

    return MultilabelTask(num_outputs=_count("multilabel", num_targets),
                          loss_name=_one_of("multilabel", "loss", loss, MULTILABEL_LOSSES),
                          gamma_neg=_number("multilabel", "gamma_neg", gamma_neg, 0.0),
                          gamma_pos=_number("multilabel", "gamma_pos", gamma_pos, 0.0),
                          clip=_number("multilabel", "clip", clip, 0.0, 1.0, high_open=True))


# --- multiclass ----------------------------------------------------------------------------------


def build_multiclass(num_targets: int, *, classes: int | None = None, label_smoothing: float = 0.0) -> MulticlassTask:
    """One-hot targets (``num_targets`` columns = classes) or one index column with ``classes`` classes."""
    from ecgsearch_plugins._tasks_impl import MulticlassTask  # deferred: torch

    num_targets = _count("multiclass", num_targets)
    smoothing = _number("multiclass", "label_smoothing", label_smoothing, 0.0, 1.0, high_open=True)
    if classes is not None and (isinstance(classes, bool) or not isinstance(classes, int) or classes < 2):
        raise ValueError(f"task multiclass: classes={classes!r} must be an integer >= 2.")
    if num_targets == 1:
        if classes is None:
            raise ValueError("task multiclass: the dataset has one target column (class indices), so the task "
                             "needs classes: the number of classes, e.g. task: {name: multiclass, classes: 5}.")
        return MulticlassTask(num_outputs=classes, index_targets=True, label_smoothing=smoothing)
    if classes is not None and classes != num_targets:
        raise ValueError(f"task multiclass: classes={classes} but the dataset has {num_targets} one-hot target "
                         "columns; drop classes or make them agree.")
    return MulticlassTask(num_outputs=num_targets, index_targets=False, label_smoothing=smoothing)


# --- regression ----------------------------------------------------------------------------------


def build_regression(num_targets: int, *, loss: str = "l1", standardize: bool = True) -> RegressionTask:
    """One output per target; ``standardize: false`` trains on the raw values."""
    from ecgsearch_plugins._tasks_impl import RegressionTask  # deferred: torch

    return RegressionTask(_count("regression", num_targets), _one_of("regression", "loss", loss, REGRESSION_LOSSES),
                          _flag("regression", "standardize", standardize))


def build_probabilistic(num_targets: int, *, standardize: bool = True) -> ProbabilisticTask:
    """Two outputs per target (mean, log-variance), Gaussian negative log-likelihood."""
    from ecgsearch_plugins._tasks_impl import ProbabilisticTask  # deferred: torch

    return ProbabilisticTask(_count("probabilistic", num_targets), "nll",
                             _flag("probabilistic", "standardize", standardize))


def _flag(task: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"task {task}: {key}={value!r} must be true or false.")
    return value


@hookimpl
def ecgsearch_register_tasks() -> list[TaskInfo]:
    return [
        TaskInfo(name="multilabel", description="multi-label classification (BCE with logits or asymmetric loss)",
                 factory=build_multilabel, default_metric="macro_auroc",
                 params={"loss": str_param(*MULTILABEL_LOSSES, doc="bce, or the asymmetric loss"),
                         "gamma_neg": float_param(0, 100, doc="asymmetric loss: focusing of negatives"),
                         "gamma_pos": float_param(0, 100, doc="asymmetric loss: focusing of positives"),
                         "clip": float_param(0, 1, high_open=True, doc="asymmetric loss: probability margin")}),
        TaskInfo(name="multiclass", description="one class per record (softmax cross-entropy)",
                 factory=build_multiclass, default_metric="top1_accuracy",
                 params={"classes": int_param(2, 1e5, nullable=True, doc="classes, for index targets"),
                         "label_smoothing": float_param(0, 1, high_open=True, doc="label smoothing")}),
        TaskInfo(name="regression", description="several continuous targets (L1 or MSE, standardised per target)",
                 factory=build_regression, default_metric="mae",
                 params={"loss": str_param(*REGRESSION_LOSSES, doc="l1 or mse"),
                         "standardize": bool_param("train on standardised targets")}),
        TaskInfo(name="probabilistic", description="Gaussian regression: mean and log-variance per target, NLL loss",
                 factory=build_probabilistic, default_metric="gaussian_nll",
                 params={"standardize": bool_param("train on standardised targets")}),
    ]
