"""What runs in the driver when a trial ends: its row in the results table, its faults in the log.

``ResultsCallback`` passes each epoch's report to the lifecycle hooks, writes a row to ``results.parquet``
the moment a trial ends, then calls the lifecycle hooks; ``FaultLogCallback`` records every retried and every failed attempt with its reason;
``CheckpointCleanup`` deletes an ended trial's checkpoints.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any, Mapping

from ray import tune

from ecgsearch.engine.faults import fault_reason, record_fault
from ecgsearch.plugins import get_registries
from ecgsearch.results import ResultsTable
from ecgsearch.space.params import OPTIONAL_CHOICES
from ecgsearch.train.context import hyperparameters

log = logging.getLogger(__name__)

CHOICE_COLUMNS = ("architecture", "optimizer", "schedule")
# report keys kept in the row: best-epoch validation/test metrics and a transfer's comparison columns
METRIC_PREFIXES = ("val.", "test.", "pretrain.", "scratch.", "ood.")  # ood.: ecgsearch.train.ood
# report keys kept when present: the trial whose state population-based training continued last; an estimator
# trial's feature extraction time (ecgsearch.train.estimators); the training paradigm (ecgsearch.train.transfer)
OPTIONAL_KEYS = ("cloned_from", "features_seconds", "paradigm")
# an epoch's report keys passed to ecgsearch_trial_result (with the epoch's own scores, ``current.*``)
EPOCH_KEYS = ("loss", "samples_per_second")
_ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b.*")


def error_summary(text: str, limit: int = 500) -> str:
    """The ``ExceptionType: message`` line of a traceback (the last one), cut to ``limit`` characters."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    matches = [line for line in lines if _ERROR_LINE.match(line)]
    summary = matches[-1] if matches else (lines[-1] if lines else "unknown error")
    return summary[:limit]


def trial_error(trial: Any) -> str:
    """The failed trial's exception line, from the error file Tune writes next to the driver."""
    local = getattr(trial, "error_file", None)
    text = Path(local).read_text() if local and Path(local).is_file() else trial.get_error()
    return error_summary(str(text)) if text else "the trial's worker died without an error message"


def result_row(config: Mapping[str, Any], result: Mapping[str, Any], status: str | None = None,
               error: str | None = None) -> dict[str, Any]:
    """One results-table row from a trial's sampled config and last report."""
    params = hyperparameters(config)
    status = status or result.get("status", "stopped")
    if status == "running":  # the trial reported but did not reach its last epoch: a scheduler stopped it
        status = "stopped"
    row: dict[str, Any] = {
        "trial_id": config["_trial_id"],
        "config_id": config.get("_config_id", config["_trial_id"]),  # shared by the repeats of one configuration
        "status": status,
        "error": error if error is not None else result.get("error"),
        **{c: result.get(c, params.get(c, OPTIONAL_CHOICES.get(c))) for c in CHOICE_COLUMNS},
        **{f"hp.{k}": v for k, v in params.items() if k not in CHOICE_COLUMNS},
        **{k: v for k, v in result.items() if k.startswith(METRIC_PREFIXES)},
        **({"seed": int(config["_seed"])} if "_seed" in config else {}),  # the trial's training seed
        "epochs": int(result.get("epochs", 0) or 0),
        "train_seconds": float(result.get("train_seconds", 0.0) or 0.0),
        **dict(config.get("_costs") or {}),  # counted when the candidate was drawn
        **{k: v for k, v in result.items() if k.startswith("cost.")},  # counted on the trained model, if reported
        **{k: v for k, v in result.items() if k.startswith("latency.")},  # measured before training
        **{k: result[k] for k in OPTIONAL_KEYS if result.get(k)},
    }
    return row


def epoch_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """An epoch report's own numbers: its loss and throughput, and its validation scores as ``val.<metric>``
    (the report's ``val.*`` are the best epoch's so far)."""
    metrics = {k: result.get(k) for k in EPOCH_KEYS}
    metrics.update({k.removeprefix("current."): v for k, v in result.items() if k.startswith("current.")})
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


class ResultsCallback(tune.Callback):
    """Writes a row to ``results.parquet`` the moment a trial ends, then calls the lifecycle hooks."""

    def __init__(self, out_dir: str, metric: str) -> None:
        self.out_dir = out_dir
        self.metric = metric
        self._table: ResultsTable | None = None

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles callbacks with the experiment
        return {"out_dir": self.out_dir, "metric": self.metric, "_table": None}

    @property
    def table(self) -> ResultsTable:
        if self._table is None:
            self._table = ResultsTable(self.out_dir)
        return self._table

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        get_registries().manager.hook.ecgsearch_trial_started(
            trial_id=trial.config["_trial_id"], config=hyperparameters(trial.config))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if result.get("restored") or result.get("epoch") is None:  # a recorded trial, or no epoch (an estimator)
            return
        get_registries().manager.hook.ecgsearch_trial_result(
            trial_id=trial.config["_trial_id"], epoch=int(result["epoch"]), metrics=epoch_metrics(result))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        if result.get("restored"):
            return
        self._record(result_row(trial.config, result))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._record(result_row(trial.config, trial.last_result or {}, status="failed",
                                error=fault_reason(self.out_dir, trial.config["_trial_id"], trial_error(trial))))

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        """Fold the row log into ``results.parquet`` (before the mirror's last copy): a search that ended,
        stopped or was interrupted leaves a parquet file holding every row."""
        try:
            self.table.compact()
        except OSError as error:  # the rows are safe in the log, which every reader merges
            log.warning("results table not compacted (%s); its rows stay in %s", error, self.table.log_path)

    def _record(self, row: dict[str, Any]) -> None:
        if not self.table.append(row):
            return
        log.info("trial %s ended: %s", row["trial_id"], row["status"])
        get_registries().manager.hook.ecgsearch_trial_finished(trial_id=row["trial_id"], row=row)


class FaultLogCallback(tune.Callback):
    """Records each retried and each final failed attempt in ``OUT/faults/`` with its reason."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._record(trial, "retry")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._record(trial, "failed")

    def _record(self, trial: Any, kind: str) -> None:
        trial_id = str(trial.config.get("_trial_id", trial.trial_id))
        if ResultsTable(self.out_dir).status_of(trial_id) not in (None, "failed"):
            return  # it ended well before (a resumed run restoring it): the fault log agrees with the table
        reason = fault_reason(self.out_dir, trial_id, trial_error(trial))
        record_fault(self.out_dir, trial_id, kind, reason, attempt=int(trial.num_failures),
                     recorded_at=time.strftime("%Y-%m-%dT%H:%M:%S"))


class CheckpointCleanup(tune.Callback):
    """Deletes the trials' checkpoints when the experiment ends: they exist to continue a retried or
    resumed trial, and each trial's best weights are kept apart (``OUT/trials/<id>/best.pt``).

    Not when a trial ends: Tune saves its experiment state only every few seconds, so after the driver is
    killed the restored state may still call a trial running that had finished, and its checkpoint must
    be there for Tune to restore it (the trainable then sees the trial's row and reports it as done).
    """

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        for trial in trials:
            self._clean(trial)

    @staticmethod
    def _clean(trial: Any) -> None:
        import pyarrow.fs  # deferred: only when the experiment ends

        storage = trial.storage
        if storage is None or storage.trial_dir_name is None:  # the trial never started
            return
        try:
            entries = storage.storage_filesystem.get_file_info(pyarrow.fs.FileSelector(storage.trial_fs_path))
        except FileNotFoundError:  # the trial never wrote a checkpoint
            return
        except OSError as error:  # disk space only: the trial's row is already recorded
            log.warning("could not list the checkpoints of trial %s: %s", trial.trial_id, error)
            return
        for entry in entries:
            if entry.type == pyarrow.fs.FileType.Directory and entry.base_name.startswith("checkpoint_"):
                try:
                    storage.storage_filesystem.delete_dir(entry.path)
                except OSError as error:
                    log.warning("could not delete checkpoint %s: %s", entry.path, error)


def fault_callbacks(out_dir: str | Path) -> list[Any]:
    """The driver-side callbacks to append after the results callback."""
    return [FaultLogCallback(str(out_dir)), CheckpointCleanup()]
