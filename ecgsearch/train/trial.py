"""One trial: cached dataset -> model -> optimizer -> epochs, reporting after every epoch.

The trial runs inside a Ray Tune worker (``ecgsearch.engine.worker``) but knows nothing of Tune: it
reports through a callable, so tests and benchmarks can run it directly. Every report carries the running
best (validation metrics at the best epoch, test metrics of that epoch's model, costs), so the last report
always holds a complete results-table row, even for a trial that a scheduler stops early.

``run_trial`` only sequences the phases; each lives in its own module: building (``setup``), the epochs
(``loop``), scoring (``scoring``), pretraining (``transfer``), checkpoints (``checkpoints``), and the row
(``TrialRecord`` below).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ecgsearch.results.folder import checkpoint_path
from ecgsearch.train.accel import accelerate
from ecgsearch.train.checkpoints import EpochState, Resumed, report_epoch, resume_point
from ecgsearch.train.context import OBJECTIVE, Diverged, Report, TrialContext, hyperparameters
from ecgsearch.train.costs import TRAIN_FLOPS_PER_FORWARD
from ecgsearch.train.estimators import is_estimator, run_estimator_trial, trial_architecture
from ecgsearch.train.loop import Epoch, best_columns, train_epochs
from ecgsearch.train.ood import trial_ood_columns
from ecgsearch.train.scoring import Scorer
from ecgsearch.train.setup import TrialSetup, build_trial, setup_costs
from ecgsearch.train.tasks import task_state
from ecgsearch.train.transfer import Transferred, pretrains, start_transfer

log = logging.getLogger(__name__)


@dataclass
class TrialRecord:
    """The row a trial reports, kept up to date epoch by epoch: fixed columns, the best epoch so far,
    seconds trained; ``last`` is the latest report (what the results table gets if the trial stops now)."""

    context: TrialContext
    fixed: dict[str, Any]
    best: dict[str, Any]
    train_seconds: float = 0.0
    last: dict[str, Any] = field(default_factory=dict)
    pretrained: tuple[int, float] = (0, 0.0)  # the pretrainings' samples seen and training FLOPs

    def compute(self, epoch: Epoch) -> dict[str, Any]:
        """``cost.train_samples`` and ``cost.train_flops`` after ``epoch``: every epoch sees the same records,
        so the fine-tuning saw ``epoch x seen``; the pretrainings' compute is added (docs/getting-started.md)."""
        samples = epoch.epoch * epoch.seen
        flops = TRAIN_FLOPS_PER_FORWARD * float(self.fixed.get("cost.flops", math.nan)) * samples
        return {"cost.train_samples": samples + self.pretrained[0], "cost.train_flops": flops + self.pretrained[1]}

    @property
    def key(self) -> str:
        return f"val.{self.context.metric}"

    def epoch_done(self, epoch: Epoch) -> dict[str, Any]:
        """The report after ``epoch``: ``ok`` once the last epoch is done, ``running`` before."""
        self.train_seconds += epoch.seconds
        self.best = epoch.best
        status = "ok" if epoch.epoch == self.context.epochs else self.fixed["status"]
        self.last = {**self.fixed, "status": status, **best_columns(self.best, self.key), "epoch": epoch.epoch,
                     "epochs": epoch.epoch, "loss": epoch.loss, "train_seconds": self.train_seconds,
                     "samples_per_second": epoch.seen / epoch.seconds if epoch.seconds else 0.0, **self.compute(epoch),
                     **{f"current.{k}": v for k, v in epoch.current.items()},
                     OBJECTIVE: self.context.objective(epoch.current.get(self.key, math.nan))}
        return self.last

    def diverged(self, epoch: int, error: Diverged) -> dict[str, Any]:
        """The report of a trial whose loss became NaN in ``epoch``: its best epoch before that, if any."""
        self.last = {**self.fixed, "status": "diverged", "error": str(error), **best_columns(self.best, self.key),
                     "epochs": epoch, "train_seconds": self.train_seconds,
                     OBJECTIVE: self.context.objective(self.best[self.key])}
        return self.last


def run_trial(config: Mapping[str, Any], context: TrialContext, report: Report) -> dict[str, Any]:
    """Train one configuration for ``context.epochs`` epochs, reporting after each; returns the last report.

    With a transfer plan the trial first trains from scratch (when asked, for comparison), pretrains,
    re-heads and freezes (``ecgsearch.train.transfer``); every report then carries the ``scratch.*`` and
    ``pretrain.*`` columns next to the fine-tuned ``val.*``/``test.*``. An estimator architecture (features
    and a fitted model, ``ecgsearch.train.estimators``) is fitted once instead.
    """
    if is_estimator(trial_architecture(config, context)[0]):  # features + a fitted model: one fit, one row
        return run_estimator_trial(config, context, report)
    seed = int(config.get("_seed", context.seed))
    torch.set_num_threads(context.threads)  # more threads than the trial's CPUs thrash shared cores
    transferred = None
    if pretrains(config, context):
        try:
            transferred = start_transfer(config, context, seed)
        except Diverged as error:
            last = {"status": "diverged", "error": f"pretraining: {error}", "epochs": 0, "train_seconds": 0.0,
                    OBJECTIVE: context.objective(math.nan)}
            report(last)
            return last
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    setup = build_trial(config, context, model=transferred.model if transferred else None)
    accelerate(setup, context.runtime, context.gpu)  # data on the GPU, torch.compile (ecgsearch.train.accel)
    # a retried/resumed trial continues; a PBT-exploited one with its new optimizer settings (train.checkpoints)
    resumed = resume_point(report, setup, generator, hyperparameters(config))
    record = _start_record(config, context, setup, transferred, resumed)
    scorer = Scorer(context, setup.task.kind, setup.data.target_names)
    epoch = resumed.next_epoch if resumed else 1
    try:
        for done in train_epochs(setup, context, scorer, generator, start=resumed):
            if done.improved:
                save_best(context, config, setup.model, scorer.thresholds, done.epoch, setup.task,
                          setup.data.target_names)
            row = record.epoch_done(done)
            if context.evaluate is not None and done.epoch == context.epochs:  # the best weights, out of distribution
                row.update(trial_ood_columns(context, config, setup))
            report_epoch(report, row,
                         EpochState(setup, generator, done.epoch, record.best, record.train_seconds, record.last,
                                    hyperparameters(config), str(config.get("_trial_id", ""))))
            epoch = done.epoch + 1
    except Diverged as error:
        report(record.diverged(epoch, error))
    return record.last


def _start_record(config: Mapping[str, Any], context: TrialContext, setup: TrialSetup,
                  transferred: Transferred | None, resumed: Resumed | None) -> TrialRecord:
    """The record of a new trial, or of a resumed one where its checkpoint left off."""
    costs = config.get("_costs") or setup_costs(setup)
    fixed = {**costs, "paradigm": "sl", **(transferred.columns if transferred else {}),
             "architecture": setup.architecture, "optimizer": setup.optimizer_name, "schedule": setup.schedule_name,
             "status": "running", "error": None}
    pretrained = (transferred.samples, transferred.flops) if transferred else (0, 0.0)
    if resumed is None:
        return TrialRecord(context, fixed, best={f"val.{context.metric}": context.worst()}, pretrained=pretrained)
    if resumed.trial_id and resumed.trial_id != config.get("_trial_id"):  # population-based training's exploit
        fixed["cloned_from"] = resumed.trial_id
    elif resumed.last.get("cloned_from"):
        fixed["cloned_from"] = resumed.last["cloned_from"]
    return TrialRecord(context, fixed, best=dict(resumed.best), train_seconds=resumed.train_seconds,
                       last=dict(resumed.last), pretrained=pretrained)


def save_best(context: TrialContext, config: Mapping[str, Any], model: torch.nn.Module,
              thresholds: np.ndarray | None, epoch: int, task: Any = None,
              targets: Sequence[str] | None = None) -> None:
    """Keep the best epoch's weights and validation thresholds (``ecgsearch predict`` serves them), the
    names of the targets its outputs stand for (a model's classes travel with it: outputs are matched by
    code, never by position), and what the task learned from the training targets (a regression's
    per-target mean and spread).

    Only tensors, numbers and lists are stored, so the file loads with ``torch.load(weights_only=True)``.
    """
    if "_trial_id" not in config or not context.out_dir:
        return
    path = checkpoint_path(context.out_dir, config["_trial_id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    learned = task_state(task)  # only tasks that learn from the targets (regressions) have a state
    torch.save({"state_dict": model.state_dict(), "epoch": epoch, "config": hyperparameters(config),
                "thresholds": None if thresholds is None else [float(t) for t in thresholds],
                **({"targets": [str(t) for t in targets]} if targets is not None else {}),
                **({"task_state": learned} if learned is not None else {})}, tmp)
    tmp.replace(path)
