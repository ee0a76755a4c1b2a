"""The schedule contract: how the trial loop drives a learning-rate schedule plugin.

A schedule plugin's factory is called as ``factory(optimizer, run, **hparams)``: ``run`` carries what
only the trial knows (how many epochs and optimizer steps it will take, whether the search metric is
maximised), the space file gives ``hparams``. The trial calls ``step()`` after every optimizer step
when ``per_step`` is true (warmup, cosine, one-cycle) and ``epoch_end(value)`` after every epoch's
validation with the search metric's value (exponential decay, reduce-on-plateau). A schedule that
needs neither costs the training loop nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ScheduleRun:
    """What a schedule is planned over: ``epochs`` x ``steps_per_epoch`` optimizer steps.

    mode: ``"max"`` or ``"min"``, the direction of the metric passed to ``epoch_end``.
    """

    epochs: int
    steps_per_epoch: int
    mode: str = "max"

    @property
    def total_steps(self) -> int:
        return max(1, self.epochs * self.steps_per_epoch)


class Schedule(Protocol):
    """What a schedule plugin's factory returns."""

    per_step: bool  # whether ``step`` must be called after every optimizer step

    def step(self) -> None:
        """Advance by one optimizer step (called only when ``per_step``)."""

    def epoch_end(self, value: float | None) -> None:
        """Called after each epoch's validation with the search metric (None or NaN when unknown)."""


def steps_per_epoch(records: int, batch_size: int) -> int:
    """Optimizer steps in one epoch of ``records`` training records, as the trial loop takes them.

    The loop drops a final batch of one record (it breaks batch norm) unless it is the only batch.
    """
    steps = 0
    for start in range(0, records, batch_size):
        if min(batch_size, records - start) < 2 and steps:
            break
        steps += 1
    return max(1, steps)
