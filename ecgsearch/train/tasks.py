"""The task contract: how outputs become a loss and the scores that metrics read.

A task plugin's factory is called as ``factory(num_targets, **params)`` with the number of target
columns of the dataset (``EcgArrays.targets.shape[1]``). Before training, the trial calls the task's
optional ``fit(train_targets)`` (a regression learns each target's mean and spread there, so the model
trains on standardised values while the scores come back in bpm and ms) and optional
``check_targets(targets, names)`` (a multiclass task refuses rows that are not exactly one class). A task
that learns from the targets gives what it learned as ``state()`` (kept next to the checkpoint) and takes
it back with ``load_state(state)``, so a trained model's scores come out in the training units.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

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


def fit_task(task: Any, train_targets: np.ndarray, target_names: Sequence[str]) -> None:
    """Run a task's optional ``check_targets`` and ``fit`` on the training targets (before any step)."""
    check = getattr(task, "check_targets", None)
    if check is not None:
        check(train_targets, list(target_names))
    fit = getattr(task, "fit", None)
    if fit is not None:
        fit(train_targets)


def task_state(task: Any) -> dict[str, Any] | None:
    """What a fitted task learned (``state()``: numbers and lists), kept next to a checkpoint's weights."""
    state = getattr(task, "state", None)
    return None if state is None else state()


def restore_task(task: Any, state: dict[str, Any] | None) -> None:
    """Give a task back what it learned in training (``task_state``; ``load_state``), when it learned any."""
    load = getattr(task, "load_state", None)
    if state is not None and load is not None:
        load(state)
