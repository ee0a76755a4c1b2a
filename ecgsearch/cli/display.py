"""What a person sees during and after a run: progress bars and the table of best trials.

The trial progress is a plugin of its own: it implements the lifecycle hooks, like any logger would.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import pandas as pd
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ecgsearch.hookspecs import hookimpl


class RunDisplay:
    """Progress of data preparation and of the trials, on stderr."""

    def __init__(self, trials: int, metric: str, mode: str, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.metric, self.mode = metric, mode
        self.best = math.nan
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=self.console, transient=False)
        self._data_task: Any = None
        self._trial_task = self.progress.add_task("trials", total=trials, visible=False)

    def __enter__(self) -> "RunDisplay":
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def data_progress(self, done: int, total: int, what: str) -> None:
        if self._data_task is None:
            self._data_task = self.progress.add_task(what, total=total)
        self.progress.update(self._data_task, completed=done, total=total, description=what)

    @hookimpl
    def ecgsearch_trial_started(self, trial_id: str, config: Mapping[str, Any]) -> None:
        self.progress.update(self._trial_task, visible=True)

    @hookimpl
    def ecgsearch_trial_finished(self, trial_id: str, row: Mapping[str, Any]) -> None:
        value = row.get(f"val.{self.metric}")
        if value is not None and not math.isnan(value):
            if math.isnan(self.best) or (value > self.best if self.mode == "max" else value < self.best):
                self.best = value
        best = "-" if math.isnan(self.best) else f"{self.best:.4f}"
        self.progress.update(self._trial_task, advance=1, visible=True,
                             description=f"trials (best {self.metric} {best})")


def best_table(best: pd.DataFrame, results: pd.DataFrame, metric: str) -> Table:
    """A short table of the best trials, then the status counts. With repeats (``best`` holds configurations,
    each the mean over its seeds, ``repeats`` of them) a metric reads ``mean ± sd (n=3)``."""
    counts = ", ".join(f"{n} {s}" for s, n in results["status"].value_counts().items()) if len(results) else "none"
    seeds = " (configurations: mean ± sd over seeds)" if "repeats" in best.columns else ""
    table = Table(title=f"best trials by val.{metric}{seeds}", caption=f"{len(results)} trials: {counts}")
    columns = ["trial_id", "architecture", "optimizer", f"val.{metric}", f"test.{metric}", "cost.flops",
               "cost.params", "epochs"]
    columns = [c for c in columns if c in best.columns]
    for col in columns:
        table.add_column(col, justify="left" if col in ("trial_id", "architecture", "optimizer") else "right")
    for _, row in best.iterrows():
        table.add_row(*(_cell(row, c) for c in columns))
    return table


def _cell(row: pd.Series, column: str) -> str:
    """``_fmt`` of a value; a mean over seeds with its standard deviation and count."""
    sd = row.get(f"{column}.sd")
    if column == "epochs":  # a count; with repeats the mean over seeds
        return f"{row[column]:g}"
    if sd is None or "repeats" not in row:
        return _fmt(row[column])
    return f"{_fmt(row[column])} ± {_fmt(float(sd))} (n={int(row['repeats'])})"


def _fmt(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) >= 1e5:
        return f"{value:.3g}"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.4g}" if abs(value) >= 1e4 or abs(value) < 1e-3 else f"{value:.4f}"
    return str(value)
