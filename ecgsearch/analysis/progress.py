"""A search's progress: each trial's value in the order trials finished, and the best value so far.

The report's progress plot and ``ecgsearch compare``'s overlaid search curves both read it from here:
the best so far against the trials finished and against the training time spent.
"""

from __future__ import annotations

import pandas as pd

from ecgsearch.analysis.run import ANALYSED, RunData


def trial_values(run: RunData) -> pd.Series:
    """Every trial's value in finishing order (0, 1, ...); NaN for a trial that is not analysed."""
    values = pd.to_numeric(run.results[run.column], errors="coerce").astype(float)
    return values.where(run.results["status"].isin(ANALYSED)).reset_index(drop=True)


def best_so_far(values: pd.Series, mode: str) -> pd.Series:
    """The best value after each trial (``max``: the largest); a trial without a value keeps the best."""
    return (values.cummax() if mode == "max" else values.cummin()).ffill()


def search_curve(run: RunData) -> pd.DataFrame:
    """Per finished trial: ``trial`` (1, 2, ...), ``seconds`` (training time spent so far, every trial
    counted, failed ones too), ``value`` and ``best`` (the best so far)."""
    values = trial_values(run)
    spent = run.results.get("train_seconds", pd.Series(0.0, index=run.results.index))
    seconds = pd.to_numeric(spent, errors="coerce").fillna(0.0).cumsum().reset_index(drop=True)
    return pd.DataFrame({"trial": range(1, len(values) + 1), "seconds": seconds, "value": values,
                         "best": best_so_far(values, run.mode)})
