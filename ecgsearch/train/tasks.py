"""The task contract: how outputs become a loss and the scores that metrics read.

A task plugin's factory is called as ``factory(num_targets, **params)`` with the number of target
columns of the dataset (``EcgArrays.targets.shape[1]``). Before training, the trial calls the task's
optional ``fit(train_targets)`` (a regression learns each target's mean and spread there, so the model
trains on standardised values while the scores come back in bpm and ms) and optional
``check_targets(targets, names)`` (a multiclass task refuses rows that are not exactly one class). A task
that learns from the targets gives what it learned as ``state()`` (kept next to the checkpoint) and takes
it back with ``load_state(state)``, so a trained model's scores come out in the training units.

A task that must see the inputs (a self-supervised one: masked reconstruction, contrastive) defines
``batch_loss(model, batch)`` instead of working on the model's outputs: the trial then calls it with a
``Batch`` (the model input, the stored record before cropping, targets, the generator) wherever it would
call ``loss(model(x), targets)``. Such a task may own extra modules (a decoder, a projection head):
``attach(model, leads, samples, stored)`` builds them for the model and returns them (an ``nn.Module``),
the trial trains them with the model and drops them after pretraining. A task with ``batch_loss`` may
have no ``scores``: its only metric is its loss (``val.loss``). When it runs the model more than once per
record (two views), it says so in ``forward_passes`` (the training compute, ``cost.train_flops``, counts
each pass). A task that
draws other records than the batch's (the contrastive task's patient positives: another record of the same
patient) defines ``use_data(data, train_rows, dataset)``: the trial gives it the opened ``EcgArrays``, the
rows it trains on and the dataset's name before any step, and ``Batch.rows`` says which rows a batch holds.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass
class Batch:
    """What a task's ``batch_loss`` sees of one batch.

    x: the model input (cropped to the model's length, augmented), on the model's device.
    records: the same records as stored, before cropping and augmentation (for views of other segments).
    targets: their target rows (a self-supervised task ignores them).
    samples: the model's input length; sampling_rate: Hz.
    generator: the trial's generator (draws masks and views reproducibly); None in evaluation, where the
        task draws from its own fixed seed so every epoch is scored on the same masks and views.
    rows: the records' row indices in the dataset (``EcgArrays``), for a task that looks up other records of
        the same patient (``use_data``); None where the caller does not give them.
    """

    x: torch.Tensor
    records: torch.Tensor
    targets: torch.Tensor
    samples: int
    sampling_rate: float
    generator: torch.Generator | None = None
    rows: np.ndarray | None = None


def batch_loss(task: Any, model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """The mean loss of a batch: the task's own ``batch_loss`` when it has one, else ``loss(model(x), y)``."""
    own = getattr(task, "batch_loss", None)
    if own is not None:
        return own(model, batch)
    return task.loss(model(batch.x), batch.targets)


def attach_task(task: Any, model: torch.nn.Module, leads: int, samples: int, stored: int) -> torch.nn.Module | None:
    """The task's own modules for ``model`` (``attach(model, leads, samples, stored)``: the input's leads,
    the model's input length and the stored records' length), trained with it; None for a task without any."""
    attach = getattr(task, "attach", None)
    return None if attach is None else attach(model, leads, samples, stored)


def use_task_data(task: Any, data: Any, train_rows: np.ndarray, dataset: str) -> None:
    """Give a task its optional ``use_data(data, train_rows, dataset)``: the opened ``EcgArrays``, the training
    rows the trial trains on, and the dataset's name (for its messages), before any step."""
    use = getattr(task, "use_data", None)
    if use is not None:
        use(data, train_rows, dataset)


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
