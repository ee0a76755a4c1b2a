"""Trials of estimator models: per-lead features extracted from the signals, then a model fitted in one go.

An architecture plugin with ``model_kind="estimator"`` (the built-in ``features_gbm``: intervals and
amplitudes delineated by neurokit2, fed to XGBoost) returns an ``Estimator`` from its factory instead of
an ``nn.Module``. Its trial:

1. extracts the features of every record, lead by lead (``extract``), once per cache entry, in as many
   processes as the trial has CPUs (``ecgsearch.data.features``: later trials and runs on that data load
   them);
2. fits on the training split (``data_fraction`` applies), with the validation split for early stopping;
3. scores validation and test with the task's metrics, exactly as a network's best epoch is scored
   (thresholds of binary metrics fitted on validation), and reports one row: ``epochs`` is 1, ``loss``
   is empty, the ``cost.*`` columns describe the fitted model (``Estimator.costs``);
4. keeps the fitted model under ``OUT/trials/<id>/estimator/`` (``save``).

The optimizer, schedule, batch size, precision, augmentation and crop settings of the space do not
apply to these rows (their ``hp.*`` columns show what was drawn). Transfer learning and latency
measurement need a network: a transfer search refuses an estimator, and each planned latency backend
reports ``not applicable`` for it.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np

from ecgsearch.data.cache import open_dataset
from ecgsearch.data.features import lead_features
from ecgsearch.data.source import EcgArrays
from ecgsearch.errors import UserError
from ecgsearch.plugins import get_registries
from ecgsearch.results.folder import estimator_folder
from ecgsearch.train.analytic import ESTIMATOR, Costs
from ecgsearch.train.context import OBJECTIVE, Report, TrialContext, hyperparameters
from ecgsearch.train.loop import best_columns
from ecgsearch.train.scoring import Scorer, score_by_group
from ecgsearch.train.setup import training_records
from ecgsearch.train.tasks import fit_task

NOT_APPLICABLE = "not applicable: {name} is an estimator model (features + fitted model), not a network"


class Estimator(Protocol):
    """What the factory of an architecture with ``model_kind="estimator"`` returns.

    extractor: the name of the per-lead feature extractor, with a version (``ecg-intervals-v1``): the
        features are cached under it, so it must change whenever ``extract`` computes something else.
    feature_names: the names of ``extract``'s outputs, in order.
    """

    extractor: str
    feature_names: Sequence[str]

    def leads(self, available: Sequence[str]) -> list[str]:
        """The leads to read features from, out of the data's (a ``ValueError`` names a missing one)."""

    def extract(self, signal: np.ndarray, sampling_rate: float) -> np.ndarray:
        """The features of one lead of one record (float64 samples) as a ``(len(feature_names),)`` array;
        NaN where a feature cannot be measured."""

    def fit(self, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, task_kind: str,
            threads: int) -> None:
        """Fit on ``(records, features)`` rows and the dataset's target rows (validation: early stopping)."""

    def scores(self, x: np.ndarray) -> np.ndarray:
        """What the task's metrics read as ``y_score``: probabilities (multilabel, multiclass), values
        in the targets' units (regression)."""

    def costs(self) -> Costs:
        """Cost features: before ``fit`` the largest the hyperparameters allow, after it the fitted model's."""

    def save(self, folder: Path) -> None:
        """Write the fitted model into ``folder`` (plain files, no pickles)."""


def is_estimator(architecture: str) -> bool:
    return get_registries().architectures.get(architecture).model_kind == ESTIMATOR


def estimator_costs(estimator: Estimator, sampling_rate: float | None) -> Costs:
    """``estimator.costs()`` with the receptive field also in seconds."""
    costs = estimator.costs()
    if costs.receptive_field and sampling_rate:
        costs = replace(costs, receptive_field_s=costs.receptive_field / sampling_rate)
    return costs


def trial_architecture(config: Mapping[str, Any], context: TrialContext) -> tuple[str, dict[str, Any], Any]:
    """The trial's architecture name, its factory arguments and its resolved space values."""
    resolved = context.space.resolve(context.space.active(hyperparameters(config)))
    name, params = resolved.choices["architecture"]
    return name, dict(params), resolved


def record_features(estimator: Estimator, entry: Path, data: EcgArrays,
                    heartbeat: Callable[[], None] | None = None, workers: int = 1) -> np.ndarray:
    """``(records, leads x features)``: the estimator's features of every record, lead after lead, each lead
    extracted by ``workers`` processes on first use (``ecgsearch.data.features``)."""
    try:
        leads = estimator.leads(list(data.leads))
    except ValueError as error:
        raise UserError(str(error)) from None
    blocks = [lead_features(entry, estimator.extractor, lead, estimator.extract, heartbeat, workers)
              for lead in leads]
    return np.hstack(blocks).astype(np.float32)


def run_estimator_trial(config: Mapping[str, Any], context: TrialContext, report: Report) -> dict[str, Any]:
    """Steps 1-4 of the module docstring; returns (and reports) the trial's row."""
    name, params, resolved = trial_architecture(config, context)
    if context.transfer is not None:
        raise UserError(f"architecture '{name}' is an estimator model: it has no layers to pretrain or freeze; "
                        "remove it from a space with a transfer section, or remove the transfer section.")
    entry = Path(context.cache_entry)
    data = open_dataset(entry)
    task = get_registries().tasks.get(context.task).create(data.targets.shape[1], **dict(context.task_params))
    train = training_records(data, float(resolved.params.get("data_fraction", 1.0)), context.seed)
    val, test = data.indices("val"), data.indices("test")
    targets = np.asarray(data.targets)
    fit_task(task, targets[train], data.target_names)  # the task's checks of the targets (one class per row...)
    estimator: Estimator = get_registries().architectures.get(name).create(
        data.signals.shape[1], data.signals.shape[2], task.num_outputs, **params)
    watchdog = getattr(report, "watchdog", None)
    started = time.perf_counter()
    x = record_features(estimator, entry, data, watchdog.pet if watchdog is not None else None, context.threads)
    extracted = time.perf_counter()
    estimator.fit(x[train], targets[train], x[val], targets[val], task.kind, context.threads)
    fitted = time.perf_counter()

    scorer = Scorer(context, task.kind, data.target_names)
    s_val = estimator.scores(x[val])
    scorer.fit(targets[val], s_val)
    best = {**score_by_group(scorer, data, "val", targets[val], s_val),
            **score_by_group(scorer, data, "test", targets[test], estimator.scores(x[test])), "best_epoch": 1}
    key = f"val.{context.metric}"
    row = {**estimator_costs(estimator, data.sampling_rate).columns(), "architecture": name,
           "optimizer": None, "schedule": None, "status": "ok", "error": None, **best_columns(best, key),
           "epoch": 1, "epochs": 1, "loss": math.nan, "train_seconds": fitted - extracted,
           "features_seconds": extracted - started,
           "samples_per_second": len(train) / (fitted - extracted) if fitted > extracted else 0.0,
           OBJECTIVE: context.objective(best.get(key, math.nan))}
    _save(estimator, context, config)
    report(row)
    return row


def _save(estimator: Estimator, context: TrialContext, config: Mapping[str, Any]) -> None:
    if "_trial_id" not in config or not context.out_dir:
        return
    folder = estimator_folder(context.out_dir, config["_trial_id"])
    folder.mkdir(parents=True, exist_ok=True)
    estimator.save(folder)


def not_applicable_latency(architecture: str, backends: Sequence[str]) -> dict[str, str]:
    """The ``latency.<backend>.error`` columns of an estimator trial: nothing to measure on a network backend."""
    return {f"latency.{backend}.error": NOT_APPLICABLE.format(name=architecture) for backend in backends}

