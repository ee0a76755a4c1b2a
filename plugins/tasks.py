"""Built-in task: multi-label classification (one sigmoid per label, as in PhysioNet 2021 and PTB-XL)."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from ecgsearch import TaskInfo, hookimpl


@dataclass(frozen=True)
class MultilabelTask:
    """Independent binary labels: BCE-with-logits loss, sigmoid probabilities as scores."""

    num_outputs: int
    kind: str = "multilabel"

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(outputs, targets.to(outputs.dtype))

    def scores(self, outputs: torch.Tensor) -> np.ndarray:
        return torch.sigmoid(outputs.detach().float()).cpu().numpy()


def build_multilabel(num_targets: int) -> MultilabelTask:
    """One model output per target column."""
    if (isinstance(num_targets, bool) or not isinstance(num_targets, numbers.Integral)
            or num_targets < 1):
        raise ValueError(f"multilabel: num_targets={num_targets!r} must be an integer >= 1.")
    return MultilabelTask(num_outputs=int(num_targets))


@hookimpl
def ecgsearch_register_tasks() -> list[TaskInfo]:
    return [TaskInfo(name="multilabel", description="multi-label classification (BCE with logits)",
                     factory=build_multilabel, default_metric="macro_auroc")]
