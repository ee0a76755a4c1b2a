"""Scoring a trial's model: predictions of a split, every metric of the task (per class, per label group, per
origin too)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from ecgsearch.data.augment import center_crop
from ecgsearch.data.source import EcgArrays
from ecgsearch.infos import LOSS_METRIC, MetricInfo
from ecgsearch.plugins import get_registries
from ecgsearch.results.names import metric_column, target_column
from ecgsearch.train.context import Diverged, TrialContext
from ecgsearch.train.setup import TrialSetup
from ecgsearch.train.tasks import Batch, batch_loss
from ecgsearch.train.thresholds import fit_thresholds

EVAL_BATCH = 256


@torch.no_grad()
def predict(setup: TrialSetup, split: str) -> tuple[np.ndarray, np.ndarray, float]:
    """``(y_true, y_score, loss)`` of one split, scored in batches by the task; ``loss`` is the task's own
    loss (what training minimises) averaged over the split's records (NaN for an empty split).

    Raises ``Diverged`` when a score is NaN or infinite: the weights went bad without the loss showing it
    (an overflow in evaluation), and the trial is recorded as diverged with its best epoch so far.
    """
    idx = setup.data.indices(split)
    setup.model.eval()
    if getattr(setup.task, "batch_loss", None) is not None:  # a task that sees the inputs: its loss only
        return _task_loss(setup, idx)
    scores, total, counted = [], 0.0, 0
    for start in range(0, len(idx), EVAL_BATCH):
        rows = idx[start:start + EVAL_BATCH]
        x = center_crop(torch.from_numpy(np.ascontiguousarray(setup.data.signals[rows])), setup.samples)
        targets = np.ascontiguousarray(setup.data.targets[rows])
        y = torch.from_numpy(targets)
        if setup.stepper is None:
            outputs = setup.model(x)
        else:
            x, y = x.to(setup.device, non_blocking=True), y.to(setup.device, non_blocking=True)
            with setup.stepper.autocast():
                outputs = setup.model(x)
        scores.append(setup.task.scores(outputs))
        # each batch mean weighted by its records with a target (a regression's unmeasured ones have none)
        weight = int(np.isfinite(targets.astype(float, copy=False)).any(axis=1).sum())
        loss = float(setup.task.loss(outputs, y)) if weight else 0.0
        if np.isfinite(loss):
            total, counted = total + loss * weight, counted + weight
    y_score = np.concatenate(scores) if scores else np.zeros((0, 0))
    if not np.isfinite(y_score).all():
        bad = int((~np.isfinite(y_score)).any(axis=1).sum())
        raise Diverged(f"the model's outputs became NaN or infinite on {bad} of {len(y_score)} {split} records")
    return np.asarray(setup.data.targets[idx]), y_score, total / counted if counted else math.nan


def _task_loss(setup: TrialSetup, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """``predict`` for a task with ``batch_loss`` (self-supervised): no scores, the loss per record averaged
    over the split; the task draws its masks and views from its own fixed seed (``Batch.generator`` None)."""
    if setup.extras is not None:
        setup.extras.eval()
    total = 0.0
    for start in range(0, len(idx), EVAL_BATCH):
        rows = idx[start:start + EVAL_BATCH]
        records = torch.from_numpy(np.ascontiguousarray(setup.data.signals[rows]))
        y = torch.from_numpy(np.ascontiguousarray(setup.data.targets[rows]))
        x = center_crop(records, setup.samples)
        if setup.stepper is None:
            loss = batch_loss(setup.task, setup.model,
                              Batch(x, records, y, setup.samples, setup.data.sampling_rate, rows=rows))
        else:
            x, records, y = (t.to(setup.device, non_blocking=True) for t in (x, records, y))
            with setup.stepper.autocast():
                loss = batch_loss(setup.task, setup.model,
                                  Batch(x, records, y, setup.samples, setup.data.sampling_rate, rows=rows))
        if not torch.isfinite(loss):
            raise Diverged(f"the task's loss became {loss.item()} on the {len(idx)} records being scored")
        total += float(loss) * len(rows)
    loss = total / len(idx) if len(idx) else math.nan
    return np.asarray(setup.data.targets[idx]), np.zeros((len(idx), 0), dtype=np.float32), loss


class Scorer:
    """Every metric of the task; binary-output metrics use thresholds fitted on validation only."""

    def __init__(self, context: TrialContext, task_kind: str, target_names: list[str]) -> None:
        metrics = get_registries().metrics
        names = context.metrics or tuple(m.name for m in metrics if task_kind in m.tasks)
        self.infos = [metrics.get(n) for n in dict.fromkeys((context.metric, *names)) if n != LOSS_METRIC]
        self.target_names = target_names
        self.thresholds: np.ndarray | None = None

    def fit(self, y_true_val: np.ndarray, y_score_val: np.ndarray) -> None:
        if any(info.thresholded for info in self.infos) and len(y_true_val):
            self.thresholds = fit_thresholds(y_true_val, y_score_val)

    def score(self, split: str, y_true: np.ndarray, y_score: np.ndarray,
              label_groups: Mapping[str, Sequence[str]] | None = None) -> dict[str, float]:
        """Every metric, prefixed with the split (``val.macro_auroc``), with the per-target columns of a
        regression (``val.mae.hr_bpm``), the per-class columns of a classification (``val.auroc.<class>``)
        and the macro averages on each of ``label_groups`` (``val.<group>.macro_auroc``, see
        ``EcgArrays.label_groups``); nothing for an empty split."""
        if len(y_true) == 0:
            return {}
        out = self.metrics(split, y_true, y_score)
        targets = y_true.shape[1] if y_true.ndim == 2 else 0
        # one score column per class (not class-index targets, not a self-supervised task's empty scores)
        index = {name: k for k, name in enumerate(self.target_names)}
        per_class = np.ndim(y_score) == 2 and np.shape(y_score) == np.shape(y_true) == (len(y_true), len(index))
        for info in self.infos:
            if info.per_target and targets:
                fn = self._function(info)
                blocks = y_score.shape[1] // targets  # score columns per target (2: mean and variance)
                for k, name in enumerate(self.target_names):
                    columns = [k + j * targets for j in range(blocks)]
                    value = fn(y_true[:, [k]], y_score[:, columns], [name])
                    out[target_column(split, info.name, name)] = float(value)
            if info.per_class and per_class:
                for k, name in enumerate(self.target_names):
                    value = self._function(info, [k])(y_true[:, [k]], y_score[:, [k]], [name])
                    out[target_column(split, info.per_class, name)] = float(value)
            if info.macro and per_class:
                for group, members in (label_groups or {}).items():
                    columns = [index[name] for name in members if name in index]
                    if columns:  # a group none of whose classes was chosen gets no column
                        names = [self.target_names[k] for k in columns]
                        value = self._function(info, columns)(y_true[:, columns], y_score[:, columns], names)
                        out[metric_column(split, info.name, label_group=group)] = float(value)
        return out

    def metrics(self, split: str, y_true: np.ndarray, y_score: np.ndarray,
                source: str | None = None) -> dict[str, float]:
        """The task's metrics alone (``val.macro_auroc``), or named as those of one source's records
        (``val.source.<source>.macro_auroc``); nothing for no record."""
        if len(y_true) == 0:
            return {}
        return {metric_column(split, info.name, source=source):
                float(self._function(info)(y_true, y_score, self.target_names)) for info in self.infos}

    def _function(self, info: MetricInfo, columns: Sequence[int] | None = None) -> Callable[..., float]:
        """The metric's function; a thresholded one with the fitted thresholds (of ``columns`` only)."""
        if not info.thresholded:
            return info.create()
        if self.thresholds is None or columns is None:
            return info.create(thresholds=self.thresholds)
        return info.create(thresholds=self.thresholds[list(columns)])


def score_test(setup: TrialSetup, scorer: Scorer) -> dict[str, float]:
    """Test metrics of the trial's model (``score_by_group``) and its test loss (``test.loss``)."""
    y_true, y_score, loss = predict(setup, "test")
    scores = score_by_group(scorer, setup.data, "test", y_true, y_score)
    return {**scores, "test.loss": loss} if len(y_true) else scores


def score_by_group(scorer: Scorer, data: EcgArrays, split: str, y_true: np.ndarray,
                   y_score: np.ndarray) -> dict[str, float]:
    """A split's scores (``Scorer.score``, with the dataset's label groups) and, for a dataset that names each
    record's origin, the task's metrics on each origin's records (``val.source.<source>.<metric>``, e.g.
    ``test.source.Georgia.challenge_score``), as the leave-one-source-out studies report. Per source only the
    metrics: its per-class and per-group values would be hundreds of columns of a few records each."""
    out = scorer.score(split, y_true, y_score, data.label_groups)
    if data.groups is None:
        return out
    sources = np.asarray(data.groups)[data.indices(split)]
    for source in sorted(set(sources.tolist())):
        mask = sources == source
        out.update(scorer.metrics(split, y_true[mask], y_score[mask], source=str(source)))
    return out
