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
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from ecgsearch import (
    TaskInfo,
    bool_param,
    float_param,
    hookimpl,
    int_param,
    str_param,
)

MULTILABEL_LOSSES = ("bce", "asymmetric")
REGRESSION_LOSSES = ("l1", "mse")
LOG_VARIANCE_LIMIT = 10.0  # log-variance clamp (standardised units): keeps the NLL finite early on


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


def asymmetric_loss(logits: torch.Tensor, targets: torch.Tensor, gamma_neg: float, gamma_pos: float,
                    clip: float, eps: float = 1e-8) -> torch.Tensor:
    """Mean asymmetric loss over all (record, label) pairs.

    Positives: ``(1 - p)^gamma_pos * log(p)``; negatives: ``p_m^gamma_neg * log(1 - p_m)`` with the shifted
    probability ``p_m = max(p - clip, 0)``, so easy negatives (p < clip) contribute nothing and the many
    negatives of a rare label are down-weighted. With ``gamma_neg = gamma_pos = clip = 0`` it is BCE.
    """
    p = torch.sigmoid(logits)
    log_p = F.logsigmoid(logits)
    if clip > 0:
        p_neg = (p - clip).clamp(min=0)
        log_not = torch.log((1 - p_neg).clamp(min=eps))
    else:
        p_neg, log_not = p, F.logsigmoid(-logits)
    positive = log_p * (1 - p).pow(gamma_pos) if gamma_pos else log_p
    negative = log_not * p_neg.pow(gamma_neg) if gamma_neg else log_not
    return -(targets * positive + (1 - targets) * negative).mean()


@dataclass(frozen=True)
class MultilabelTask:
    """Independent binary labels: BCE-with-logits or asymmetric loss, sigmoid probabilities as scores."""

    num_outputs: int
    loss_name: str = "bce"
    gamma_neg: float = 4.0
    gamma_pos: float = 0.0
    clip: float = 0.05
    kind: str = "multilabel"

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        outputs = outputs.float()
        targets = targets.to(outputs.dtype)
        if self.loss_name == "bce":
            return F.binary_cross_entropy_with_logits(outputs, targets)
        return asymmetric_loss(outputs, targets, self.gamma_neg, self.gamma_pos, self.clip)

    def scores(self, outputs: torch.Tensor) -> np.ndarray:
        return torch.sigmoid(outputs.detach().float()).cpu().numpy()


def build_multilabel(num_targets: int, *, loss: str = "bce", gamma_neg: float = 4.0, gamma_pos: float = 0.0,
                     clip: float = 0.05) -> MultilabelTask:
    """One model output per target column; ``gamma_neg``, ``gamma_pos`` and ``clip`` apply to ``asymmetric``."""
    return MultilabelTask(num_outputs=_count("multilabel", num_targets),
                          loss_name=_one_of("multilabel", "loss", loss, MULTILABEL_LOSSES),
                          gamma_neg=_number("multilabel", "gamma_neg", gamma_neg, 0.0),
                          gamma_pos=_number("multilabel", "gamma_pos", gamma_pos, 0.0),
                          clip=_number("multilabel", "clip", clip, 0.0, 1.0, high_open=True))


# --- multiclass ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MulticlassTask:
    """Exactly one class per record: softmax cross-entropy, class probabilities as scores."""

    num_outputs: int
    index_targets: bool  # targets are one column of class indices (else one-hot rows)
    label_smoothing: float = 0.0
    kind: str = "multiclass"

    def classes_of(self, targets: torch.Tensor) -> torch.Tensor:
        return targets[:, 0].long() if self.index_targets else targets.argmax(dim=1)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs.float(), self.classes_of(targets), label_smoothing=self.label_smoothing)

    def scores(self, outputs: torch.Tensor) -> np.ndarray:
        return torch.softmax(outputs.detach().float(), dim=1).cpu().numpy()

    def check_targets(self, targets: np.ndarray, names: Sequence[str]) -> None:
        """Refuse targets that are not one class per record, before any training."""
        targets = np.asarray(targets, dtype=float)
        if self.index_targets:
            bad = ~(np.isfinite(targets[:, 0]) & (targets[:, 0] == np.round(targets[:, 0]))
                    & (targets[:, 0] >= 0) & (targets[:, 0] < self.num_outputs))
            what = f"a class index in 0..{self.num_outputs - 1}"
        else:
            bad = ~(np.isin(targets, (0.0, 1.0)).all(axis=1) & (targets.sum(axis=1) == 1))
            what = "exactly one positive column"
        if bad.any():
            raise ValueError(
                f"task multiclass: {int(bad.sum())} of {len(targets)} training records do not have {what} "
                f"(first: row {int(np.flatnonzero(bad)[0])}); use task multilabel for records with several "
                "labels, or a dataset with one class per record.")


def build_multiclass(num_targets: int, *, classes: int | None = None, label_smoothing: float = 0.0) -> MulticlassTask:
    """One-hot targets (``num_targets`` columns = classes) or one index column with ``classes`` classes."""
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


@dataclass(eq=False)
class RegressionTask:
    """Continuous targets, each standardised with the training split's mean and standard deviation."""

    num_targets: int
    loss_name: str = "l1"
    standardize: bool = True
    kind: str = "regression"
    mean: torch.Tensor = field(init=False)
    std: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.mean = torch.zeros(self.num_targets)
        self.std = torch.ones(self.num_targets)

    @property
    def num_outputs(self) -> int:
        return self.num_targets

    def fit(self, train_targets: np.ndarray) -> None:
        """Learn each target's mean and standard deviation (NaN-aware) from the training split."""
        if not self.standardize:
            return
        values = np.asarray(train_targets, dtype=np.float64)
        known = np.isfinite(values)
        counts = known.sum(axis=0)
        filled = np.where(known, values, 0.0)
        mean = np.divide(filled.sum(axis=0), counts, out=np.zeros(values.shape[1]), where=counts > 0)
        var = np.divide((np.where(known, values - mean, 0.0) ** 2).sum(axis=0), counts,
                        out=np.ones(values.shape[1]), where=counts > 0)
        std = np.sqrt(var)
        self.mean = torch.tensor(mean, dtype=torch.float32)
        self.std = torch.tensor(np.where(std > 1e-8, std, 1.0), dtype=torch.float32)

    def state(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    def load_state(self, state: dict[str, Any]) -> None:
        """What ``state`` returned, back (a trained model's scores come out in the training units again)."""
        mean, std = (torch.tensor(state[key], dtype=torch.float32) for key in ("mean", "std"))
        if mean.shape != (self.num_targets,) or std.shape != (self.num_targets,):
            raise ValueError(f"task {self.kind}: a state of {len(mean)} targets does not fit {self.num_targets}.")
        self.mean, self.std = mean, std

    def _standardised(self, targets: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(standardised targets with NaN as 0, mask of known targets)."""
        mean, std = self.mean.to(like.device), self.std.to(like.device)
        z = (targets.to(like.device, torch.float32) - mean) / std
        known = torch.isfinite(z)
        return torch.where(known, z, torch.zeros_like(z)), known

    @staticmethod
    def _masked_mean(values: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        return torch.where(known, values, torch.zeros_like(values)).sum() / known.sum().clamp(min=1)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        z, known = self._standardised(targets, outputs)
        diff = outputs.float() - z
        return self._masked_mean(diff.abs() if self.loss_name == "l1" else diff * diff, known)

    def _original(self, standardised: torch.Tensor) -> torch.Tensor:
        return standardised * self.std.to(standardised.device) + self.mean.to(standardised.device)

    def scores(self, outputs: torch.Tensor) -> np.ndarray:
        return self._original(outputs.detach().float()).cpu().numpy()


@dataclass(eq=False)
class ProbabilisticTask(RegressionTask):
    """A Gaussian per target: outputs are the means, then the log-variances (standardised units)."""

    kind: str = "probabilistic"

    @property
    def num_outputs(self) -> int:
        return 2 * self.num_targets

    def _split(self, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = outputs.float()
        mean, log_var = outputs[:, :self.num_targets], outputs[:, self.num_targets:]
        return mean, log_var.clamp(-LOG_VARIANCE_LIMIT, LOG_VARIANCE_LIMIT)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Gaussian negative log-likelihood without the constant ``log(2 pi) / 2``."""
        z, known = self._standardised(targets, outputs)
        mean, log_var = self._split(outputs)
        nll = 0.5 * (log_var + (z - mean) ** 2 * torch.exp(-log_var))
        return self._masked_mean(nll, known)

    def scores(self, outputs: torch.Tensor) -> np.ndarray:
        mean, log_var = self._split(outputs.detach())
        variance = torch.exp(log_var) * self.std.to(log_var.device) ** 2
        return torch.cat([self._original(mean), variance], dim=1).cpu().numpy()


def build_regression(num_targets: int, *, loss: str = "l1", standardize: bool = True) -> RegressionTask:
    """One output per target; ``standardize: false`` trains on the raw values."""
    return RegressionTask(_count("regression", num_targets), _one_of("regression", "loss", loss, REGRESSION_LOSSES),
                          _flag("regression", "standardize", standardize))


def build_probabilistic(num_targets: int, *, standardize: bool = True) -> ProbabilisticTask:
    """Two outputs per target (mean, log-variance), Gaussian negative log-likelihood."""
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
