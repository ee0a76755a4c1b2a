"""A finished (or interrupted) run folder, read for analysis: its space file and its trials with a value.

``report`` and ``scale`` start here, so a wrong folder or a run without a usable trial is one sentence
that says what to pass instead.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ecgsearch.engine import SPACE_COPY
from ecgsearch.errors import UserError
from ecgsearch.results import RESULTS_FILE, read_results

log = logging.getLogger(__name__)

ANALYSED = ("ok", "stopped")  # trained models with a measured value (stopped: by the scheduler, early)


@dataclass(frozen=True)
class RunData:
    """A run's spec and results; ``trials`` are the analysed rows (ok/stopped with a finite value)."""

    run_dir: Path
    spec: Any
    results: pd.DataFrame
    trials: pd.DataFrame
    metric: str
    mode: str

    @property
    def column(self) -> str:
        return f"val.{self.metric}"


def load_run(run_dir: str | Path, metric: str | None = None, command: str = "report") -> RunData:
    """The run in ``run_dir`` with ``metric`` (default: the space file's); ``UserError`` if unusable."""
    from ecgsearch.space import load_space

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{command}: {run_dir} is not a folder; pass the --out folder of an `ecgsearch run`.")
    for needed in (RESULTS_FILE, SPACE_COPY):
        if not (run_dir / needed).is_file():
            raise UserError(f"{command}: {run_dir} has no {needed}, so it is not a run folder; pass the --out "
                            "folder of an `ecgsearch run`.")
    spec = load_space(run_dir / SPACE_COPY)
    try:
        results = read_results(run_dir)
    except Exception as error:  # a truncated or foreign file: pyarrow's own message says which
        raise UserError(f"{command}: {run_dir / RESULTS_FILE} cannot be read ({error}); it is not a results "
                        "table written by `ecgsearch run`.") from None
    mode = spec.mode
    metric = (metric or spec.metric).removeprefix("val.")
    column = f"val.{metric}"
    if column not in results.columns:
        recorded = sorted(c[4:] for c in results.columns if c.startswith("val."))
        raise UserError(f"{command}: {run_dir / RESULTS_FILE} has no column {column} (metrics recorded: "
                        f"{', '.join(recorded) or 'none'}); pass --metric with one of those.")
    if metric != spec.metric:
        from ecgsearch.plugins import get_registries

        metrics = get_registries().metrics
        mode = metrics.get(metric).mode if metric in metrics.names() else mode
    values = pd.to_numeric(results[column], errors="coerce")
    usable = results["status"].isin(ANALYSED) & values.map(lambda v: v is not None and math.isfinite(v))
    if not usable.any():
        statuses = ", ".join(f"{n} {s}" for s, n in results["status"].value_counts().items()) or "no trials"
        raise UserError(f"{command}: no trial in {run_dir} finished with a value of {column} ({statuses}); "
                        "there is nothing to analyse until at least one trial trains (see the error column).")
    return RunData(run_dir=run_dir, spec=spec, results=results, trials=results[usable], metric=metric, mode=mode)


def train_records(spec: Any) -> int | None:
    """Records in the run's training split (from the dataset cache), or None when it cannot be read."""
    from ecgsearch.cache import open_dataset
    from ecgsearch.engine import prepare_data

    try:
        data = open_dataset(prepare_data(spec))
    except (UserError, OSError) as error:
        log.warning("the training split's size is unknown (%s); the data axis is the fraction used", error)
        return None
    return int((data.split == "train").sum())
