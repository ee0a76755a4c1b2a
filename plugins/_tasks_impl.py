"""The tasks of ``tasks.py`` (losses, scores, standardisation), imported when a trial creates its task:
listing the plugin or checking a space file needs only ``tasks.py``, which imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch.nn import functional as F

LOG_VARIANCE_LIMIT = 10.0  # log-variance clamp (standardised units): keeps the NLL finite early on


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
