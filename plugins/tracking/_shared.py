"""What the built-in trackers share: one run per trial opened on first use, a trial's parameters and final
metrics in the results table's naming, per-epoch series under ``epoch/``, and the best trial's ONNX model.

A tracker subclasses ``Tracker`` and says how to open, log to and close one trial's run
(``open_trial``, ``log_epoch``, ``close_trial``) and what to do when the search ends (``close_search``).
"""

from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

import ecgsearch

log = logging.getLogger(__name__)

CHOICES = ("architecture", "optimizer", "schedule")  # the results table's choice columns; the rest are hp.*
FINAL_PREFIXES = ("val.", "test.", "cost.", "latency.")  # the row's columns logged as the trial's final metrics
EPOCH_PREFIX = "epoch/"  # per-epoch series: epoch/loss, epoch/val.macro_auroc, ...


def trial_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's sampled hyperparameters named as in the results table (``architecture``, ``hp.batch_size``)."""
    return {(k if k in CHOICES else f"hp.{k}"): v for k, v in config.items()}


def row_params(row: Mapping[str, Any]) -> dict[str, Any]:
    """The hyperparameter columns of a results row (for a trial whose start was not seen)."""
    return {k: v for k, v in row.items() if k in CHOICES or k.startswith("hp.")}


def scalar(value: Any) -> int | float | str | bool:
    """A value every tracker takes as a parameter: numbers, strings and booleans as they are, others as text."""
    return value if isinstance(value, (int, float, str, bool)) else str(value)


def final_metrics(row: Mapping[str, Any]) -> dict[str, float]:
    """The row's finite ``val.*``, ``test.*``, ``cost.*`` and ``latency.*`` numbers."""
    return {k: float(v) for k, v in row.items() if k.startswith(FINAL_PREFIXES) and _finite(v)}


def epoch_series(metrics: Mapping[str, float]) -> dict[str, float]:
    """An epoch's numbers under ``epoch/`` (apart from the final metrics of the same names)."""
    return {f"{EPOCH_PREFIX}{k}": float(v) for k, v in metrics.items() if _finite(v)}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def output_dir(out_dir: Path, setting: str | None, default: str) -> Path:
    """A tracker's folder: ``setting`` (``~`` expanded; relative: inside the run folder), else ``OUT/<default>``."""
    path = Path(setting).expanduser() if setting else Path(default)
    return path if path.is_absolute() else Path(out_dir) / path


def with_best_model(out_dir: Path, use: Callable[[str, Path], None]) -> None:
    """Export the run's best trial as ONNX (``ecgsearch export``'s path) into a temporary folder and call
    ``use(trial_id, folder)``; a failed export is a warning (the search's results are safe)."""
    with tempfile.TemporaryDirectory(prefix="ecgsearch-best-") as tmp:
        try:
            exported = ecgsearch.export_trial(out_dir, None, "onnx", Path(tmp) / "model", bootstrap=0)
        except Exception as error:  # the trackers go on without the model
            log.warning("the best trial's ONNX model was not exported for the trackers (%s: %s)",
                        type(error).__name__, error)
            return
        use(exported.trial_id, Path(tmp) / "model")


class Tracker:
    """One search's tracker: one run per trial, opened when the trial first reports (or ends)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self.configs: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, Any] = {}

    # the lifecycle, as the tracking plugin passes it on

    def trial_started(self, trial_id: str, config: Mapping[str, Any]) -> None:
        self.configs[trial_id] = trial_params(config)

    def trial_result(self, trial_id: str, epoch: int, metrics: Mapping[str, float]) -> None:
        self.log_epoch(self._run(trial_id, {}), epoch, epoch_series(metrics))

    def trial_finished(self, trial_id: str, row: Mapping[str, Any]) -> None:
        run = self._run(trial_id, row)
        del self.runs[trial_id]
        self.close_trial(run, trial_id, row)

    def search_finished(self, results: Any) -> None:
        for trial_id in list(self.runs):  # trials that never ended (an interrupted search)
            self.close_trial(self.runs.pop(trial_id), trial_id, None)
        self.close_search(results)

    def _run(self, trial_id: str, row: Mapping[str, Any]) -> Any:
        if trial_id not in self.runs:
            params = self.configs.pop(trial_id, None) or row_params(row)
            self.runs[trial_id] = self.open_trial(trial_id, {k: scalar(v) for k, v in params.items()})
        return self.runs[trial_id]

    # what each tracker says

    def open_trial(self, trial_id: str, params: Mapping[str, Any]) -> Any:
        """Start the trial's run with its parameters; returns the run (whatever the tracker's handle is)."""
        raise NotImplementedError

    def log_epoch(self, run: Any, epoch: int, metrics: Mapping[str, float]) -> None:
        raise NotImplementedError

    def close_trial(self, run: Any, trial_id: str, row: Mapping[str, Any] | None) -> None:
        """End the trial's run with its final row (None: the trial did not end: the search stopped)."""
        raise NotImplementedError

    def close_search(self, results: Any) -> None:
        """The search ended (``results``: the results table's ``DataFrame``)."""
