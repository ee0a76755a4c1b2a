"""Several seeds per configuration (``budget.repeats``): one row per configuration, the mean with its spread.

A run with repeats trains each configuration with several seeds; its results table keeps one row per seed
(``trial_id`` unique, ``config_id`` shared by the repeats of one configuration, ``seed``). Everything
downstream of the table (report, Pareto fronts, surrogate, scaling fits) reads one point per
configuration, made here by ``per_config``:

- every numeric result column (``val.*``, ``test.*``, ``ood.*``, ``pretrain.*``, ``scratch.*``,
  ``train_seconds``, ``epochs``, latency...) is the mean over the configuration's analysed seeds;
- each metric column (``val.*``, ``test.*``, ``ood.*``, ``pretrain.*``, ``scratch.*``) also gets
  ``<column>.sd``, the sample standard deviation over the seeds (ddof 1; NaN with a single seed);
- the columns named in ``intervals`` (the run's metric) get ``<column>.ci_low`` and ``<column>.ci_high``,
  the ``level`` interval of the mean (``mean_interval``);
- ``repeats`` is the number of seeds averaged; ``trial_id`` becomes the ``config_id``; hyperparameters
  (``hp.*``), costs (``cost.*``) and text columns (architecture, optimizer, status, paradigm...) are the
  first seed's, which the repeats share; ``seed`` is dropped (no one seed describes the mean).

The interval is Student's t: ``mean +- t_{(1+level)/2, n-1} * sd / sqrt(n)``. With the 2 to 5 seeds a
run affords, a percentile bootstrap of the mean covers far less than its nominal level (resampled, a few
values never reach beyond their range: about 50%, 75% and 85% for a nominal 95% with n = 2, 3, 5), while
the t interval is exact for normal seed-to-seed noise and robust to mild departures from it;
tests/test_repeats_analysis.py checks its coverage by simulation. A configuration with one seed has no interval (NaN).

Rows without a ``config_id`` are configurations of their own; a table where no ``config_id`` repeats (an
old run, or ``repeats: 1``) passes through unchanged, so such runs are analysed exactly as before.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ecgsearch.results.configs import config_keys, has_repeats

SEED = "seed"
REPEATS = "repeats"  # the column per_config adds: how many seeds a configuration's row averages
METRIC_PREFIXES = ("val.", "test.", "ood.", "pretrain.", "scratch.")  # metric columns: mean and sd
FIRST_PREFIXES = ("hp.", "cost.")  # shared by a configuration's repeats: the first seed's value
SD, LOW, HIGH = ".sd", ".ci_low", ".ci_high"
LEVEL = 0.95


def _averaged(trials: pd.DataFrame) -> list[str]:
    """The columns averaged over a configuration's seeds: the metrics, and every other numeric column but
    the hyperparameters, the costs and the seed."""
    return [c for c in trials.columns if c.startswith(METRIC_PREFIXES) or (
        c not in (SEED, REPEATS) and not c.startswith(FIRST_PREFIXES) and not pd.api.types.is_bool_dtype(trials[c])
        and pd.api.types.is_numeric_dtype(trials[c]))]


def mean_interval(mean: pd.Series | np.ndarray | float, sd: pd.Series | np.ndarray | float,
                  n: pd.Series | np.ndarray | int, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """The Student-t ``level`` interval of a mean of ``n`` values with sample standard deviation ``sd``
    (element-wise; NaN where ``n < 2``)."""
    n = np.asarray(n, dtype=float)
    several = n >= 2
    safe = np.where(several, n, 2.0)  # any n >= 2: the NaN below replaces what a single value gives
    half = stats.t.ppf((1 + level) / 2, safe - 1) * np.asarray(sd, dtype=float) / np.sqrt(safe)
    half = np.where(several, half, np.nan)
    mean = np.asarray(mean, dtype=float)
    return mean - half, mean + half


def per_config(trials: pd.DataFrame, intervals: Sequence[str] = (), level: float = LEVEL) -> pd.DataFrame:
    """One row per configuration of the analysed rows ``trials`` (see the module's docstring): the means,
    ``<metric>.sd``, ``repeats``, and the ``level`` interval of the mean of each column in ``intervals``
    that ``trials`` has. Returns ``trials`` itself when no configuration repeats. Rows keep the first
    seed's index label, in the order the configurations' first seeds appear."""
    if not has_repeats(trials):
        return trials
    keys = config_keys(trials)
    averaged = _averaged(trials)
    values = trials[averaged].apply(pd.to_numeric, errors="coerce").astype(float).groupby(keys, sort=False)
    dropped = [c for c in (SEED, REPEATS) if c in trials.columns]
    first = trials.loc[~keys.duplicated()].drop(columns=[*dropped, *averaged])
    index = first.index
    first = first.assign(trial_id=keys.loc[index].to_numpy())

    def aligned(by_config: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
        return by_config.loc[first["trial_id"]].set_axis(index)  # a configuration's row: its first seed's label

    metrics = [c for c in averaged if c.startswith(METRIC_PREFIXES)]
    frame = pd.concat([first, aligned(values.mean()), aligned(values[metrics].std(ddof=1)).add_suffix(SD),
                       aligned(keys.value_counts(sort=False)).rename(REPEATS)], axis=1)
    for column in (c for c in intervals if c in metrics):
        n = aligned(values[column].count())  # the seeds with a value of this column
        frame[column + LOW], frame[column + HIGH] = mean_interval(frame[column], frame[column + SD], n, level)
    kept = [c for c in trials.columns if c not in dropped]
    return frame[[*kept, *(c for c in frame.columns if c not in kept)]]


def spread(frame: pd.DataFrame, column: str) -> np.ndarray | None:
    """The standard deviations over seeds of ``column`` per row (NaN: one seed), or None without repeats."""
    sd = column + SD
    return pd.to_numeric(frame[sd], errors="coerce").to_numpy(dtype=float) if sd in frame.columns else None


def describe(trials: pd.DataFrame, level: float = LEVEL) -> str:
    """``12 configurations x 3 seeds (36 seed runs) averaged: ...``: what the per-configuration rows of
    ``per_config`` stand for, in a sentence."""
    counts = pd.to_numeric(trials[REPEATS], errors="coerce").astype(int)
    seeds = f"{counts.min()}" if counts.min() == counts.max() else f"{counts.min()}-{counts.max()}"
    return (f"{len(trials)} configurations x {seeds} seeds ({int(counts.sum())} seed runs) averaged: each "
            f"configuration's metrics are the mean over its seeds, shown ± their standard deviation (sd), with "
            f"the {level:.0%} Student-t interval of the mean")
