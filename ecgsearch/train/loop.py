"""The epochs of a trial: one training pass, then validation (and test when it improves), as a generator.

``train_epochs`` yields an ``Epoch`` after each epoch; the trial (``ecgsearch.train.trial``) and a
transfer's pretraining and from-scratch comparison (``ecgsearch.train.transfer``) all drive this one loop.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Iterator

import torch

from ecgsearch.data.augment import random_crop
from ecgsearch.train.checkpoints import Resumed
from ecgsearch.train.context import Diverged, TrialContext
from ecgsearch.train.scoring import Scorer, predict, score_by_group, score_test
from ecgsearch.train.setup import TrialSetup
from ecgsearch.train.tasks import Batch, batch_loss


def train_epoch(setup: TrialSetup, generator: torch.Generator) -> tuple[float, int]:
    """One pass over the training set; returns (mean loss, samples seen). Raises Diverged."""
    setup.model.train()
    if setup.extras is not None:
        setup.extras.train()
    n = len(setup.train_x)
    order = torch.randperm(n, generator=generator)
    total, seen = 0.0, 0
    stepper, device, rate = setup.stepper, setup.device, setup.data.sampling_rate
    per_step = setup.schedule if setup.schedule is not None and setup.schedule.per_step else None
    for start in range(0, n, setup.batch_size):
        idx = order[start:start + setup.batch_size]
        if len(idx) < 2 and seen:  # a batch of one breaks batch norm; drop the remainder
            break
        records = setup.train_x[idx]
        x = random_crop(records, setup.samples, generator)  # x itself when not cropping
        x = setup.augment(x, generator, setup.data.sampling_rate)  # x itself when off
        y = setup.train_y[idx]
        rows = None if setup.train_rows is None else setup.train_rows[idx.numpy()]
        if stepper is None:
            loss = batch_loss(setup.task, setup.model, Batch(x, records, y, setup.samples, rate, generator, rows))
        else:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with stepper.autocast():
                loss = batch_loss(setup.task, setup.model, Batch(x, records.to(device, non_blocking=True), y,
                                                                 setup.samples, rate, generator, rows))
        if not torch.isfinite(loss):
            raise Diverged(f"training loss became {loss.item()} at sample {seen}")
        setup.optimizer.zero_grad(set_to_none=True)
        if stepper is None:
            loss.backward()
            setup.optimizer.step()
        else:
            stepper.step(loss, setup.optimizer)
        if per_step is not None:
            per_step.step()
        total += loss.item() * len(idx)
        seen += len(idx)
    return total / max(seen, 1), seen


@dataclass
class Epoch:
    """One finished epoch of ``train_epochs``: its loss and validation scores, and the best so far."""

    epoch: int
    loss: float
    seen: int
    seconds: float
    current: dict[str, float]
    best: dict[str, Any]
    improved: bool


def train_epochs(setup: TrialSetup, context: TrialContext, scorer: Scorer,
                 generator: torch.Generator, start: Resumed | None = None) -> Iterator[Epoch]:
    """Train ``context.epochs`` epochs, scoring validation after each and test whenever it improves.

    The schedule sees each epoch's validation metric. Raises Diverged from the epoch that diverged.
    start: a restored checkpoint to continue from (its next epoch, its best so far).
    """
    key = f"val.{context.metric}"
    best: dict[str, Any] = dict(start.best) if start else {key: context.worst()}
    for epoch in range(start.next_epoch if start else 1, context.epochs + 1):
        started = time.perf_counter()
        loss, seen = train_epoch(setup, generator)
        elapsed = time.perf_counter() - started
        y_val, s_val, val_loss = predict(setup, "val")
        scorer.fit(y_val, s_val)
        current = score_by_group(scorer, setup.data, "val", y_val, s_val)
        current = {**current, "val.loss": val_loss} if len(y_val) else current
        improved = context.better(current.get(key, math.nan), best[key])
        if improved:
            best = {**current, **score_test(setup, scorer), "best_epoch": epoch}
        if setup.schedule is not None:
            setup.schedule.epoch_end(current.get(key))
        yield Epoch(epoch, loss, seen, elapsed, current, best, improved)


def best_columns(best: dict[str, Any], key: str) -> dict[str, Any]:
    """The ``val.*``/``test.*`` columns of the best epoch so far, and which epoch that was."""
    cols = {k: v for k, v in best.items() if k.startswith(("val.", "test."))}
    if math.isinf(cols.get(key, 0.0)):
        cols[key] = math.nan  # no epoch finished: there is no best value
    return {**cols, "best_epoch": best.get("best_epoch")}
