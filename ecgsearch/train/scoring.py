"""Scoring a trial's model: predictions of a split, every metric of the task, per-origin test scores."""

from __future__ import annotations

import math

import numpy as np
import torch

from ecgsearch.data.augment import center_crop
from ecgsearch.data.source import EcgArrays
from ecgsearch.plugins import get_registries
from ecgsearch.train.context import Diverged, TrialContext
from ecgsearch.train.setup import TrialSetup
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


class Scorer:
    """Every metric of the task; binary-output metrics use thresholds fitted on validation only."""

    def __init__(self, context: TrialContext, task_kind: str, target_names: list[str]) -> None:
        metrics = get_registries().metrics
        names = context.metrics or tuple(m.name for m in metrics if task_kind in m.tasks)
        self.infos = [metrics.get(n) for n in dict.fromkeys((context.metric, *names))]
        self.target_names = target_names
        self.thresholds: np.ndarray | None = None

    def fit(self, y_true_val: np.ndarray, y_score_val: np.ndarray) -> None:
        if any(info.thresholded for info in self.infos) and len(y_true_val):
            self.thresholds = fit_thresholds(y_true_val, y_score_val)

    def score(self, split: str, y_true: np.ndarray, y_score: np.ndarray) -> dict[str, float]:
        """Every metric, prefixed with the split (``val.macro_auroc``); nothing for an empty split."""
        if len(y_true) == 0:
            return {}
        out = {}
        targets = y_true.shape[1] if y_true.ndim == 2 else 0
        for info in self.infos:
            fn = info.create(thresholds=self.thresholds) if info.thresholded else info.create()
            out[f"{split}.{info.name}"] = float(fn(y_true, y_score, self.target_names))
            if info.per_target and targets:
                blocks = y_score.shape[1] // targets  # score columns per target (2: mean and variance)
                for k, name in enumerate(self.target_names):
                    columns = [k + j * targets for j in range(blocks)]
                    out[f"{split}.{info.name}.{name}"] = float(fn(y_true[:, [k]], y_score[:, columns], [name]))
        return out


def score_test(setup: TrialSetup, scorer: Scorer) -> dict[str, float]:
    """Test metrics of the trial's model (``score_by_group``) and its test loss (``test.loss``)."""
    y_true, y_score, loss = predict(setup, "test")
    scores = score_by_group(scorer, setup.data, "test", y_true, y_score)
    return {**scores, "test.loss": loss} if scores else scores


def score_by_group(scorer: Scorer, data: EcgArrays, split: str, y_true: np.ndarray,
                   y_score: np.ndarray) -> dict[str, float]:
    """A split's metrics (``test.<metric>``) and, for datasets that name each record's origin, the same
    metrics per origin (``test.<metric>@<group>``, e.g. ``test.challenge_score@Georgia``)."""
    out = scorer.score(split, y_true, y_score)
    if data.groups is None:
        return out
    groups = np.asarray(data.groups)[data.indices(split)]
    for group in sorted(set(groups.tolist())):
        mask = groups == group
        out.update({f"{key}@{group}": value
                    for key, value in scorer.score(split, y_true[mask], y_score[mask]).items()})
    return out
