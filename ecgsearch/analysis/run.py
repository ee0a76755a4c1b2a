"""A finished (or interrupted) run, read for analysis: its space file and its trials with a value.

``report`` and ``scale`` start here (through ``ecgsearch.results.open_run``), so a wrong folder or a run
without a usable trial is one sentence that says what to pass instead. A run that trained each
configuration with several seeds (``budget.repeats``) is analysed one point per configuration: ``trials``
are the per-configuration means with their spread (``ecgsearch.analysis.repeats.per_config``) and
``seed_rows`` the analysed rows of each seed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ecgsearch.analysis.repeats import per_config
from ecgsearch.data.cache import open_dataset
from ecgsearch.data.prepare import prepare_data
from ecgsearch.errors import UserError
from ecgsearch.plugins import get_registries
from ecgsearch.results import RESULTS_FILE, open_run
from ecgsearch.results.configs import config_keys, has_repeats

if TYPE_CHECKING:
    from ecgsearch.space import SearchSpec

log = logging.getLogger(__name__)

ANALYSED = ("ok", "stopped")  # trained models with a measured value (stopped: by the scheduler, early)


@dataclass(frozen=True)
class RunData:
    """A run's spec and results; ``trials`` are the analysed rows (ok/stopped with a finite value), one per
    configuration: with repeats, the mean over its seeds (``per_config``), whose analysed rows are then
    ``seed_rows`` (None for a run without repeats)."""

    run_dir: Path
    spec: SearchSpec
    results: pd.DataFrame
    trials: pd.DataFrame
    metric: str
    mode: str
    seed_rows: pd.DataFrame | None = None

    @property
    def column(self) -> str:
        return f"val.{self.metric}"

    @property
    def repeated(self) -> bool:
        """Whether ``trials`` average several seeds per configuration."""
        return self.seed_rows is not None

    @property
    def analysed_rows(self) -> pd.DataFrame:
        """Every analysed row of the results table, one per seed with repeats (``trials`` without)."""
        return self.seed_rows if self.seed_rows is not None else self.trials

    def seed_trial(self, trial_id: str) -> str:
        """A trial of ``trial_id``'s configuration that has a folder: its first analysed seed with repeats,
        ``trial_id`` itself without."""
        if self.seed_rows is None:
            return trial_id
        rows = self.seed_rows[config_keys(self.seed_rows) == trial_id]
        return str(rows["trial_id"].iloc[0]) if len(rows) else trial_id


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
    rows = results[analysed(results, column)]
    repeated = has_repeats(rows)
    trials = per_config(rows, intervals=(column, f"test.{metric}")) if repeated else rows
    return RunData(run_dir=run.path, spec=spec, results=results, trials=trials, metric=metric, mode=mode,
                   seed_rows=rows if repeated else None)


def analysed(results: pd.DataFrame, column: str) -> pd.Series:
    """Mask of the rows analysed on ``column``: ok or stopped, with a finite value."""
    values = pd.to_numeric(results[column], errors="coerce")
    return results["status"].isin(ANALYSED) & values.map(lambda v: v is not None and math.isfinite(v))


def train_records(spec: SearchSpec) -> int | None:
    """Records in the run's training split (from the dataset cache), or None when it cannot be read."""
    try:
        data = open_dataset(prepare_data(spec.data, f"{spec.path}: data"))
    except (UserError, OSError) as error:
        log.warning("the training split's size is unknown (%s); the data axis is the fraction used", error)
        return None
    return int((data.split == "train").sum())
