"""Several runs read for one comparison: the same metric and cost in each, one label per run.

``ecgsearch compare`` (``ecgsearch.report.compare_runs``) starts here: ``load_runs`` checks the folders
(at least two, each once, each a run with the metric and the cost) and labels the runs; the rest are
the numbers the comparison shows, per run: a summary, the Pareto fronts of all runs pooled and grouped
by run, the costs every run measured, and each run's best trial.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from ecgsearch.analysis.pareto import latency_columns, pareto_front
from ecgsearch.analysis.run import RunData, load_run
from ecgsearch.errors import UserError
from ecgsearch.results import RESULTS_FILE, SPACE_COPY

COMMAND = "compare"
RUN = "run"  # the column of the pooled trials naming the run a trial belongs to
UNNAMED = Path(SPACE_COPY).stem  # the name a space file without `name:` gets from its copy in the run


@dataclass(frozen=True)
class Runs:
    """The compared runs in the order given, their labels, and the metric and cost they share."""

    runs: list[RunData]
    labels: list[str]
    metric: str
    mode: str
    cost: str
    notes: list[str]

    @property
    def column(self) -> str:
        return f"val.{self.metric}"


def check_folders(paths: Sequence[str | Path]) -> list[Path]:
    """At least two folders, no run twice (by its resolved path)."""
    paths = list(paths)
    if len(paths) < 2:
        given = f"1 run ({paths[0]})" if paths else "no run"
        raise UserError(f"{COMMAND}: {given} given; pass at least two run folders to compare.")
    seen: dict[Path, str | Path] = {}
    for path in paths:
        key = Path(path).resolve()
        if key in seen:
            raise UserError(f"{COMMAND}: {seen[key]} and {path} are the same run; pass each run folder once.")
        seen[key] = path
    return [Path(p) for p in paths]


def check_labels(labels: Sequence[str] | None, folders: Sequence[Path]) -> None:
    if labels and len(labels) != len(folders):
        raise UserError(f"{COMMAND}: {len(labels)} --label for {len(folders)} runs; pass one --label per run "
                        "folder, in the same order, or none.")


def default_label(run: RunData) -> str:
    """The space file's ``name``, or the run folder's name when the space file has none."""
    return run.spec.name if run.spec.name and run.spec.name != UNNAMED else run.run_dir.resolve().name


def unique_labels(labels: Sequence[str], folders: Sequence[Path]) -> tuple[list[str], list[str]]:
    """``labels`` with each repeated one followed by its folder's name (then a number), and a note per
    repeated label."""
    unique: list[str] = []
    for label, folder in zip(labels, folders):
        new, k = label, 2
        if labels.count(label) > 1:
            new = f"{label} ({folder.resolve().name})"
            while new in unique or new in labels:
                new, k = f"{label} ({folder.resolve().name} {k})", k + 1
        unique.append(new)
    notes = []
    for label in dict.fromkeys(label for label in labels if labels.count(label) > 1):
        shown = [new for old, new in zip(labels, unique) if old == label]
        notes.append(f"{len(shown)} runs are labelled {label}; they are shown as {', '.join(shown)} (pass --label "
                     "to name the runs).")
    return unique, notes


def _measured(frame: pd.DataFrame, column: str) -> bool:
    return column in frame.columns and pd.to_numeric(frame[column], errors="coerce").gt(0).any()


def check_cost(run: RunData, cost: str) -> None:
    """The run's trials have ``cost``, with a positive value (the fronts' cost axis is logarithmic)."""
    if not _measured(run.trials, cost):
        costs = [c for c in run.results.columns if c.startswith(("cost.", "latency.")) and _measured(run.trials, c)]
        what = f"no column {cost}" if cost not in run.results.columns else f"no positive value of {cost}"
        raise UserError(f"{COMMAND}: {run.run_dir / RESULTS_FILE} has {what} (measured costs: "
                        f"{', '.join(sorted(costs)) or 'none'}); pass --cost with one of those.")


def load_runs(paths: Sequence[str | Path], labels: Sequence[str] | None = None, metric: str | None = None,
              cost: str = "cost.flops") -> Runs:
    """The runs in ``paths`` with ``metric`` (default: the first run's) and ``cost``; ``UserError`` if unusable."""
    folders = check_folders(paths)
    check_labels(labels, folders)
    first = load_run(folders[0], metric, command=COMMAND)
    runs = [first, *(load_run(folder, first.metric, command=COMMAND) for folder in folders[1:])]
    for run in runs:
        check_cost(run, cost)
    unique, notes = unique_labels(list(labels) if labels else [default_label(run) for run in runs], folders)
    return Runs(runs=runs, labels=unique, metric=first.metric, mode=first.mode, cost=cost, notes=notes)


def pooled_trials(runs: Runs) -> pd.DataFrame:
    """Every run's analysed trials in one frame, with a ``run`` column holding its label."""
    return pd.concat([run.trials.assign(**{RUN: label}) for run, label in zip(runs.runs, runs.labels)],
                     ignore_index=True)


def fronts(runs: Runs, cost: str | None = None) -> pd.DataFrame:
    """Each run's Pareto front of the metric against ``cost`` (default: the runs' cost); ``group`` is the label."""
    return pareto_front(pooled_trials(runs), runs.column, runs.mode, cost=cost or runs.cost, group_by=RUN)


def p50_latencies(run: RunData) -> set[str]:
    """The run's ``latency.<backend>.p50_ms`` columns with a measurement."""
    return {c for c in latency_columns(run.trials) if c.endswith(".p50_ms")}


def shared_latencies(runs: Runs) -> list[str]:
    """The ``latency.<backend>.p50_ms`` columns measured in every run."""
    return sorted(set.intersection(*(p50_latencies(run) for run in runs.runs)))


def best_trial(run: RunData) -> pd.Series:
    """The analysed trial with the best value (the first of equals, in finishing order)."""
    values = pd.to_numeric(run.trials[run.column], errors="coerce")
    return run.trials.loc[values.idxmax() if run.mode == "max" else values.idxmin()]


def summary(run: RunData) -> dict[str, object]:
    """Trials by status, the best value with its trial and architecture, and the training time spent."""
    best = best_trial(run)
    seconds = pd.to_numeric(run.results.get("train_seconds", pd.Series(dtype=float)), errors="coerce").sum()
    return {"trials": len(run.results), "statuses": dict(run.results["status"].value_counts()),
            "best": float(best[run.column]), "trial_id": str(best["trial_id"]),
            "architecture": str(best.get("architecture", "-")), "train_seconds": float(seconds)}
