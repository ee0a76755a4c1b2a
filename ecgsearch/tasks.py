"""The task contract: how outputs become a loss and the scores that metrics read."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch


class Task(Protocol):
    """What a task plugin's factory ``factory(num_targets, **params)`` returns.

    kind: the task kind metrics and datasets declare support for (``multilabel``, ``regression``...).
    num_outputs: how many outputs the model's head must produce.
    """

    kind: str
    num_outputs: int

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean loss of a batch; ``targets`` are rows of ``EcgArrays.targets``."""

    def scores(self, outputs: torch.Tensor) -> np.ndarray:
        """What metrics receive as ``y_score`` (probabilities, predicted values...)."""
