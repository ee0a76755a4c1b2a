"""Configurations and their seeds (``budget.repeats``): which rows of a results table are one configuration.

A run with repeats keeps one row per seed; ``config_id`` names the configuration a row trained (shared by
its seeds; absent from tables written before repeats, where every row is its own configuration). What
reads single rows but means configurations uses these: the best trial to export or measure is the best
configuration by its mean over seeds, and of its seeds the one with the best value (``ranked``); a warm
start learns each configuration's mean (``ecgsearch.search.warm_start``). The per-configuration table of
the analyses, with spreads and intervals, is ``ecgsearch.analysis.repeats.per_config``.
"""

from __future__ import annotations

import pandas as pd

CONFIG = "config_id"


def config_keys(frame: pd.DataFrame) -> pd.Series:
    """Each row's configuration: its ``config_id``, or its own ``trial_id`` when it has none."""
    own = frame["trial_id"].astype(str)
    if CONFIG not in frame.columns:
        return own
    return frame[CONFIG].astype(object).where(frame[CONFIG].notna(), own).astype(str)


def has_repeats(frame: pd.DataFrame) -> bool:
    """Whether some configuration has more than one row (a run with ``budget.repeats`` above 1)."""
    return CONFIG in frame.columns and bool(config_keys(frame).duplicated().any())


def config_mean(frame: pd.DataFrame, column: str) -> pd.Series:
    """Per row, the mean of ``column`` over the rows of its configuration (the row's own value without repeats)."""
    values = pd.to_numeric(frame[column], errors="coerce")
    return values.groupby(config_keys(frame)).transform("mean")


def ranked(frame: pd.DataFrame, column: str, mode: str) -> pd.DataFrame:
    """``frame``'s rows best first: by their configuration's mean of ``column``, then by their own value."""
    ascending = mode == "min"
    order = pd.DataFrame({"mean": config_mean(frame, column), "own": pd.to_numeric(frame[column], errors="coerce")},
                         index=frame.index)
    return frame.loc[order.sort_values(["mean", "own"], ascending=ascending, kind="stable").index]
