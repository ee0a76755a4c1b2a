"""A finished (or interrupted) run, read for analysis: its space file and its trials with a value.

``report`` and ``scale`` start here (through ``ecgsearch.results.open_run``), so a wrong folder or a run
without a usable trial is one sentence that says what to pass instead.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ecgsearch.data.cache import open_dataset
from ecgsearch.data.prepare import prepare_data
from ecgsearch.errors import UserError
from ecgsearch.plugins import get_registries
from ecgsearch.results import RESULTS_FILE, open_run

if TYPE_CHECKING:
    from ecgsearch.space import SearchSpec

log = logging.getLogger(__name__)

ANALYSED = ("ok", "stopped")  # trained models with a measured value (stopped: by the scheduler, early)


@dataclass(frozen=True)
class RunData:
    """A run's spec and results; ``trials`` are the analysed rows (ok/stopped with a finite value)."""

    run_dir: Path
    spec: SearchSpec
    results: pd.DataFrame
    trials: pd.DataFrame
    metric: str
    mode: str

    @property
    def column(self) -> str:
        return f"val.{self.metric}"


def load_run(run_dir: str | Path, metric: str | None = None, command: str = "report") -> RunData:
    """The run in ``run_dir`` with ``metric`` (default: the space file's); ``UserError`` if unusable."""
    data = analysed_trials(run_dir, metric, command)
    if data.trials.empty:
        results = data.results
        statuses = ", ".join(f"{n} {s}" for s, n in results["status"].value_counts().items()) or "no trials"
        raise UserError(f"{command}: no trial in {data.run_dir} finished with a value of {data.column} ({statuses}); "
                        "there is nothing to analyse until at least one trial trains (see the error column).")
    return data


def analysed_trials(run_dir: str | Path, metric: str | None = None, command: str = "report") -> RunData:
    """Like ``load_run``, but a run with no analysable trial yet has empty ``trials`` instead of an error."""
    run = open_run(run_dir, command)
    spec, results = run.spec, run.results()
    mode = spec.mode
    metric = (metric or spec.metric).removeprefix("val.")
    column = f"val.{metric}"
    if column not in results.columns:
        recorded = sorted(c[4:] for c in results.columns if c.startswith("val."))
        raise UserError(f"{command}: {run.path / RESULTS_FILE} has no column {column} (metrics recorded: "
                        f"{', '.join(recorded) or 'none'}); pass --metric with one of those.")
    if metric != spec.metric:
        metrics = get_registries().metrics
        mode = "min" if metric == "loss" else metrics.get(metric).mode if metric in metrics.names() else mode
    values = pd.to_numeric(results[column], errors="coerce")
    usable = results["status"].isin(ANALYSED) & values.map(lambda v: v is not None and math.isfinite(v))
    return RunData(run_dir=run.path, spec=spec, results=results, trials=results[usable], metric=metric, mode=mode)


def train_records(spec: SearchSpec) -> int | None:
    """Records in the run's training split (from the dataset cache), or None when it cannot be read."""
    try:
        data = open_dataset(prepare_data(spec.data, f"{spec.path}: data"))
    except (UserError, OSError) as error:
        log.warning("the training split's size is unknown (%s); the data axis is the fraction used", error)
        return None
    return int((data.split == "train").sum())
