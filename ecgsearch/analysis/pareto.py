"""Pareto fronts of a metric against a cost: the trials no other trial beats on both at once.

A design-space study reads its result off this front (challenge score vs FLOPs in the ConvNeXt study):
a trial is on the front when no other trial is at least as good on the metric *and* at least as cheap,
and strictly better on one of the two. Exact ties (same cost, same metric) dominate neither each other,
so both stay on the front. Rows whose metric or cost is missing or not finite are left out.

Costs are any numeric column: ``cost.flops``, ``cost.params``, ``latency.<backend>.p50_ms``; always
minimised. The metric follows its mode (``max``: larger is better).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ecgsearch.errors import UserError
from ecgsearch.search.features import check_mode, metric_column

FRONT_GROUP = "group"  # the column ``pareto_front`` adds: the group a front row belongs to
POOLED = "all"


def cost_column(frame: pd.DataFrame, cost: str) -> str:
    """``cost`` if the frame has it; otherwise a ``UserError`` naming the cost columns it does have."""
    if cost not in frame.columns:
        costs = sorted(c for c in frame.columns if c.startswith(("cost.", "latency.")))
        raise UserError(f"the results have no column '{cost}' to use as a cost (cost columns: "
                        f"{', '.join(costs) or 'none'}); pick one of those.")
    return cost


def latency_columns(frame: pd.DataFrame) -> list[str]:
    """The ``latency.<backend>.p50_ms``/``.p90_ms`` columns holding at least one measurement."""
    return sorted(c for c in frame.columns if c.startswith("latency.") and c.endswith((".p50_ms", ".p90_ms"))
                  and pd.to_numeric(frame[c], errors="coerce").notna().any())


def non_dominated(costs: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Boolean mask of the points no other point dominates (cost minimised, score maximised).

    O(n log n): sorted by cost, then by score descending, a point is on the front when its score
    beats every score seen at a strictly lower cost, and equals the best at its own cost.
    """
    costs = np.asarray(costs, dtype=float)
    scores = np.asarray(scores, dtype=float)
    mask = np.zeros(len(costs), dtype=bool)
    order = np.lexsort((-scores, costs))
    best_cheaper = -np.inf  # best score among strictly cheaper points
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and costs[order[j]] == costs[order[i]]:
            j += 1
        same = order[i:j]  # one cost value; the first has the top score at this cost
        top = scores[same[0]]
        if top > best_cheaper:
            mask[same[scores[same] == top]] = True
            best_cheaper = top
        i = j
    return mask


def pareto_front(frame: pd.DataFrame, metric: str, mode: str, cost: str = "cost.flops",
                 group_by: str | None = None) -> pd.DataFrame:
    """The non-dominated rows of ``frame`` (per group of ``group_by``), sorted by group and cost.

    metric: ``macro_auroc`` or ``val.macro_auroc`` (any column name works too); mode: ``max``/``min``;
    cost: the column minimised alongside. The result keeps every input column and adds ``group``
    (``all`` without ``group_by``); rows keep their original index.
    """
    check_mode(mode)
    column = metric if metric in frame.columns else metric_column(frame, metric)
    cost = cost_column(frame, cost)
    if group_by is not None and group_by not in frame.columns:
        raise UserError(f"group_by={group_by!r} is not a column of the results (e.g. optimizer, "
                        "architecture); pass one of the results' columns or None.")
    values = pd.to_numeric(frame[column], errors="coerce").astype(float)
    costs = pd.to_numeric(frame[cost], errors="coerce").astype(float)
    usable = frame[np.isfinite(values) & np.isfinite(costs)]
    sign = 1.0 if mode == "max" else -1.0
    groups = [(POOLED, usable)] if group_by is None else \
        [(str(name), rows) for name, rows in usable.groupby(group_by, sort=True, dropna=True)]
    fronts = []
    for name, rows in groups:
        mask = non_dominated(costs.loc[rows.index].to_numpy(), sign * values.loc[rows.index].to_numpy())
        fronts.append(rows[mask].assign(**{FRONT_GROUP: name}).sort_values(cost, kind="stable"))
    if not fronts:
        return usable.assign(**{FRONT_GROUP: pd.Series(dtype=object)})
    return pd.concat(fronts)


def hypervolume(costs: Sequence[float], scores: Sequence[float], reference: tuple[float, float],
                log_cost: bool = True) -> float:
    """Area dominated by the points and bounded by ``reference = (worst cost, worst score)``.

    Cost is minimised and score maximised (negate a min-metric first). With ``log_cost`` the cost axis
    is measured in decades (log10), as costs span orders of magnitude; points beyond the reference add
    nothing. A larger hypervolume means a better front; it only compares fronts with one reference.
    """
    c = np.asarray(costs, dtype=float)
    s = np.asarray(scores, dtype=float)
    ref_cost, ref_score = float(reference[0]), float(reference[1])
    if log_cost:
        if (c <= 0).any() or ref_cost <= 0:
            raise ValueError("log_cost needs positive costs and a positive reference cost")
        c, ref_cost = np.log10(c), float(np.log10(ref_cost))
    keep = np.isfinite(c) & np.isfinite(s) & (c < ref_cost) & (s > ref_score)
    c, s = c[keep], s[keep]
    if not len(c):
        return 0.0
    front = non_dominated(c, s)
    c, s = c[front], s[front]
    order = np.argsort(c, kind="stable")
    c, s = c[order], s[order]
    # sweep from cheap to expensive: each front point adds the strip up to the next point's cost
    widths = np.diff(np.append(c, ref_cost))
    return float(np.sum(widths * (np.maximum.accumulate(s) - ref_score)))
