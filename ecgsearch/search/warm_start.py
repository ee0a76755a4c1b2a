"""Warm start (``search.warm_start``): earlier runs' finished trials as observations of the current space.

A row of an earlier run is used when its trial finished with a finite value of the metric and its
hyperparameters fall inside the current space: its choices are options of the current space, every
parameter the current space would ask for (the chosen options' parameters and the trial parameters)
has a value that the current distribution can draw, and a parameter the current space fixes has the
fixed value (or was not recorded). Such a row is re-encoded as a configuration of the current space,
so a searcher sees it exactly as one of its own trials. The rest are counted, by reason, for the log.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import pandas as pd

from ecgsearch.errors import UserError
from ecgsearch.results.configs import config_keys, config_mean, has_repeats
from ecgsearch.results.names import prior_costs
from ecgsearch.results.table import RESULTS_FILE, RESULTS_LOG, read_results
from ecgsearch.search.features import HP_PREFIX, VAL_PREFIX
from ecgsearch.space.distributions import Fixed

if TYPE_CHECKING:
    from ecgsearch.space import Space

@dataclass(frozen=True)
class WarmPoint:
    """One earlier trial: its configuration in the current space, its value of the metric, the epochs it
    trained, and its other recorded numbers (``cost.*`` columns; ``val.*`` metrics, for multi-objective
    searchers)."""

    config: dict[str, Any]
    value: float
    epochs: int | None = None
    costs: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class WarmStart:
    """The usable points of the earlier runs, and how many rows of each run were left out, and why."""

    points: tuple[WarmPoint, ...] = ()
    used: Mapping[str, int] = field(default_factory=dict)
    ignored: Mapping[str, Counter] = field(default_factory=dict)

    def summary(self) -> str:
        """``runs/a: 37 rows used, 12 outside the space, 3 without a value ignored; ...``"""
        parts = []
        for run, used in self.used.items():
            left = ", ".join(f"{n} {why}" for why, n in sorted(self.ignored.get(run, Counter()).items()))
            parts.append(f"{run}: {used} rows used" + (f", {left} ignored" if left else ""))
        return "; ".join(parts)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _member(dist: Any, value: Any) -> tuple[bool, Any]:
    """Whether ``dist`` can draw the recorded ``value``, and the value as the space writes it. Parquet
    gives numpy scalars, integers as floats in a column with gaps, and list values as their text."""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and value.is_integer() and getattr(dist, "integer", False):
        value = int(value)
    if dist.contains(value):
        return True, value
    match = [v for v in dist.edges() if isinstance(value, str) and not isinstance(v, str) and str(v) == value]
    return (True, copy.deepcopy(match[0])) if match else (False, value)


def as_config(space: Space, row: Mapping[str, Any]) -> dict[str, Any] | None:
    """A results-table row as a configuration of ``space``, or None when it falls outside it (see the
    module docstring)."""
    config: dict[str, Any] = {}
    for choice, options in space.choices.items():
        value = row.get(choice)
        if _missing(value) or value not in options:
            return None
        config[choice] = value
    for param in space.parameters:
        if param.condition is not None and config.get(param.condition[0]) != param.condition[1]:
            continue
        value = row.get(HP_PREFIX + param.name)
        if _missing(value) and isinstance(param.dist, Fixed):
            value = param.dist.value  # not recorded: the earlier run did not vary it
        elif _missing(value):
            return None
        ok, value = _member(param.dist, value)
        if not ok:
            return None
        config[param.name] = value
    return space.active(config)


def _numbers(row: Mapping[str, Any], columns: Sequence[str]) -> dict[str, float]:
    return {c: float(row[c]) for c in columns if isinstance(row[c], (int, float)) and not _missing(row[c])}


def warm_points(space: Space, frame: pd.DataFrame, metric: str) -> tuple[list[WarmPoint], Counter]:
    """The rows of one results table usable in ``space`` (``metric``: the ``val.*`` column); with repeats, one
    point per configuration, its metrics the means over the seeds with a value (as a search with repeats learns)."""
    ignored: Counter = Counter()
    if metric not in frame.columns:
        ignored[f"without {metric}"] += len(frame)
        return [], ignored
    values = pd.to_numeric(frame[metric], errors="coerce")
    finite = values.notna() & values.abs().lt(float("inf"))
    ignored["without a value"] += int((~finite).sum())
    costs = prior_costs(frame.columns)
    metrics = [c for c in frame.columns if c.startswith(VAL_PREFIX)]
    points = []
    usable = frame[finite]
    if has_repeats(usable):
        usable = usable.assign(**{c: config_mean(usable, c) for c in metrics})
        usable = usable[~config_keys(usable).duplicated()]
    for row in usable.to_dict("records"):
        config = as_config(space, row)
        if config is None:
            ignored["outside the space"] += 1
            continue
        epochs = row.get("epochs")
        points.append(WarmPoint(config=config, value=float(row[metric]),
                                epochs=int(epochs) if not _missing(epochs) and epochs else None,
                                costs=_numbers(row, costs), metrics=_numbers(row, metrics)))
    return points, +ignored


def load_warm_start(space: Space, runs: Sequence[str | Path], metric: str) -> WarmStart:
    """The usable rows of each earlier run's results table (``runs``: run folders); a folder without one is
    a ``UserError``."""
    points: list[WarmPoint] = []
    used: dict[str, int] = {}
    ignored: dict[str, Counter] = {}
    for run in runs:
        if not any((Path(run) / name).is_file() for name in (RESULTS_FILE, RESULTS_LOG)):
            raise UserError(f"search.warm_start: {str(run)!r} holds no results table ({RESULTS_FILE}); give the "
                            "output folder of an earlier `ecgsearch run` (relative to the current directory)")
        found, left = warm_points(space, read_results(Path(run), "search.warm_start"), metric)
        points.extend(found)
        used[str(run)], ignored[str(run)] = len(found), left
    return WarmStart(tuple(points), used, ignored)
