"""The two places ecgsearch meets Ray Tune: the trainable that runs a trial in a worker, and the
driver-side callback that turns each ended trial into a results-table row."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Mapping

from ray import tune

from ecgsearch.plugins import get_registries
from ecgsearch.results import RESULTS_FILE, ResultsTable, read_results
from ecgsearch.space.params import OPTIONAL_CHOICES
from ecgsearch.trial import OBJECTIVE, TrialContext, hyperparameters, run_trial
from ecgsearch.faults import fault_reason
from ecgsearch.latency.plan import with_latency
from ecgsearch.tune_faults import run_in_worker

log = logging.getLogger(__name__)

CHOICE_COLUMNS = ("architecture", "optimizer", "schedule")
# report keys kept in the row: best-epoch validation/test metrics and a transfer's comparison columns
METRIC_PREFIXES = ("val.", "test.", "pretrain.", "scratch.")
_ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b.*")


def _already_recorded(context: TrialContext, trial_id: str) -> dict[str, Any] | None:
    """The recorded row of a trial that finished before a crash, so a resume never trains it twice."""
    path = Path(context.out_dir) / RESULTS_FILE
    if not path.exists():
        return None
    frame = read_results(path)
    rows = frame[frame["trial_id"] == trial_id]
    return None if rows.empty else rows.iloc[0].to_dict()


def tune_trainable(config: dict[str, Any], context: TrialContext) -> None:
    """Ray Tune function trainable: one trial, reporting each epoch through ``tune.report``."""
    recorded = _already_recorded(context, config["_trial_id"])
    if recorded is not None:
        value = recorded.get(f"val.{context.metric}")
        tune.report({"restored": True, OBJECTIVE: float(value) if value == value and value is not None else 0.0})
        return
    # latency measured first (ecgsearch.latency.plan); checkpoints, hang watchdog, OOM (ecgsearch.tune_faults)
    run_in_worker(config, context, with_latency(run_trial))


def make_trainable(context: TrialContext, resources: Any) -> Any:
    """The trainable with its context in Ray's object store and the per-trial resources attached."""
    trainable = tune.with_parameters(tune_trainable, context=context)
    return tune.with_resources(trainable, {"cpu": float(resources.cpu), "gpu": float(resources.gpu)})


def error_summary(text: str, limit: int = 500) -> str:
    """The ``ExceptionType: message`` line of a traceback (the last one), cut to ``limit`` characters."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    matches = [line for line in lines if _ERROR_LINE.match(line)]
    summary = matches[-1] if matches else (lines[-1] if lines else "unknown error")
    return summary[:limit]


def _trial_error(trial: Any) -> str:
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
        "status": status,
        "error": error if error is not None else result.get("error"),
        **{c: params.get(c, OPTIONAL_CHOICES.get(c)) for c in CHOICE_COLUMNS},
        **{f"hp.{k}": v for k, v in params.items() if k not in CHOICE_COLUMNS},
        **{k: v for k, v in result.items() if k.startswith(METRIC_PREFIXES)},
        "epochs": int(result.get("epochs", 0) or 0),
        "train_seconds": float(result.get("train_seconds", 0.0) or 0.0),
        **dict(config.get("_costs") or {}),
        **{k: v for k, v in result.items() if k.startswith("latency.")},  # measured before training
    }
    return row


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

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        if result.get("restored"):
            return
        self._record(result_row(trial.config, result))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._record(result_row(trial.config, trial.last_result or {}, status="failed",
                                error=fault_reason(self.out_dir, trial.config["_trial_id"], _trial_error(trial))))

    def _record(self, row: dict[str, Any]) -> None:
        if not self.table.append(row):
            return
        log.info("trial %s ended: %s", row["trial_id"], row["status"])
        get_registries().manager.hook.ecgsearch_trial_finished(trial_id=row["trial_id"], row=row)
