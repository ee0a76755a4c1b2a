"""The report's figures, one function per plot, each writing one PNG.

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas directly: no pyplot state, no
display needed, safe on a headless cluster node.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ecgsearch.analysis.loss_to_loss import LossToLossFit
from ecgsearch.analysis.pareto import pareto_front
from ecgsearch.analysis.progress import best_so_far
from ecgsearch.analysis.repeats import spread
from ecgsearch.analysis.scaling import ScalingFit

DPI = 110
_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
_FAINT = "#7f7f7f"


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    return path


def progress_plot(values: pd.Series, statuses: pd.Series, metric: str, mode: str, path: Path) -> Path:
    """Each trial's metric in the order trials finished, and the best so far as a step line."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    index = np.arange(1, len(values) + 1)
    finite = np.isfinite(values.to_numpy(dtype=float))
    ax.scatter(index[finite], values[finite], s=18, color="#7f7f7f", alpha=0.7, label="trial")
    best = best_so_far(values, mode)
    ax.step(index, best, where="post", color=_COLORS[0], lw=2, label="best so far")
    failed = ~finite
    if failed.any():
        low = np.nanmin(values) if finite.any() else 0.0
        ax.scatter(index[failed], np.full(failed.sum(), low), marker="x", color=_COLORS[1],
                   label="no value (" + ", ".join(sorted(set(statuses[failed].astype(str)))) + ")")
    ax.set_xlabel("trials finished")
    ax.set_ylabel(metric)
    ax.set_title(f"search progress ({mode} {metric})")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def styles(names: Sequence[str]) -> dict[str, tuple[str, str]]:
    """A colour and a marker per name, in order, so that several figures draw each name alike."""
    return {name: (_COLORS[i % len(_COLORS)], _MARKERS[i % len(_MARKERS)]) for i, name in enumerate(names)}


def pareto_plot(frame: pd.DataFrame, metric: str, mode: str, cost: str, group_by: str, path: Path,
                cost_label: str, style: dict[str, tuple[str, str]] | None = None) -> Path:
    """Every trial (faint; with repeats a configuration's mean, with a bar of ± one standard deviation over
    its seeds) and each group's Pareto front (a step line) of ``metric`` against ``cost``; ``style`` gives a
    group's colour and marker (default: colours in order, round markers)."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    fronts = pareto_front(frame, metric, mode, cost=cost, group_by=group_by)
    for i, (name, rows) in enumerate(frame.groupby(group_by, sort=True)):
        color, marker = (style or {}).get(str(name), (_COLORS[i % len(_COLORS)], "o"))
        ax.scatter(rows[cost], rows[metric], s=16, color=color, marker=marker, alpha=0.35)
        sd = spread(rows, metric)
        if sd is not None:
            ax.errorbar(rows[cost], rows[metric], yerr=sd, fmt="none", ecolor=color, elinewidth=0.9, alpha=0.45,
                        label="± 1 sd over seeds" if i == 0 else None)
        front = fronts[fronts["group"] == str(name)]
        ax.step(front[cost], front[metric], where="post", color=color, lw=1.8, marker=marker, ms=5,
                label=f"{name} ({len(front)} on front / {len(rows)})")
    ax.set_xscale("log")
    ax.set_xlabel(cost_label)
    ax.set_ylabel(metric)
    ax.set_title(f"Pareto front of {metric} vs {cost_label}, by {group_by}")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def _time_unit(seconds: float) -> tuple[float, str]:
    return (3600.0, "h") if seconds >= 3 * 3600 else (60.0, "min") if seconds >= 180 else (1.0, "s")


def search_curves_plot(curves: Mapping[str, pd.DataFrame], metric: str, mode: str, path: Path,
                       style: dict[str, tuple[str, str]]) -> Path:
    """Each run's best ``metric`` so far (``progress.search_curve``), against the trials finished (left)
    and the training time spent (right)."""
    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
    scale, unit = _time_unit(max(float(c["seconds"].max()) for c in curves.values()))
    for label, curve in curves.items():
        color, marker = style[label]
        for ax, x in zip(axes, (curve["trial"], curve["seconds"] / scale)):
            ax.step(x, curve["best"], where="post", color=color, lw=1.8, marker=marker, ms=4, label=label)
    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax, x_label in zip(axes, ("trials finished", f"training time spent ({unit})")):
        ax.set_xlabel(x_label)
        ax.set_ylabel(f"best {metric} so far")
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(f"search progress ({mode} {metric})", fontsize=10)
    return _save(fig, path)


def epoch_curves_plot(curves: Mapping[str, tuple[str, pd.DataFrame]], metric: str, path: Path,
                      style: dict[str, tuple[str, str]]) -> Path:
    """Per run, ``metric`` after each epoch of one trial: ``curves`` maps a run to (trial id, history)."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for label, (trial_id, history) in curves.items():
        color, marker = style[label]
        ax.plot(history["epoch"], history["value"], color=color, marker=marker, ms=5, lw=1.8,
                label=f"{label}: {trial_id}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per epoch of each run's best trial")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def cv_plot(predictions: pd.DataFrame, cv: pd.DataFrame, metric: str, path: Path) -> Path:
    """Out-of-fold predicted vs true metric, one panel per group, with Pearson r and Spearman rho."""
    groups = [g for g in cv["group"] if (predictions["group"] == g).any()]
    fig = Figure(figsize=(4 * len(groups), 4))
    axes = np.atleast_1d(fig.subplots(1, len(groups)))
    for ax, group, color in zip(axes, groups, _COLORS):
        rows = predictions[predictions["group"] == group]
        stats = cv[cv["group"] == group].iloc[0]
        ax.scatter(rows["true"], rows["predicted"], s=18, color=color, alpha=0.8)
        low = float(min(rows["true"].min(), rows["predicted"].min()))
        high = float(max(rows["true"].max(), rows["predicted"].max()))
        ax.plot([low, high], [low, high], color="black", lw=1, ls="--")
        ax.set_title(f"{group}: r = {stats['pearson_r']:.2f}, rho = {stats['spearman_rho']:.2f} (n={int(stats['n'])})",
                     fontsize=9)
        ax.set_xlabel(f"true {metric}")
        ax.set_ylabel(f"predicted {metric}")
        ax.grid(alpha=0.3)
    return _save(fig, path)


def importance_plot(importance: pd.DataFrame, groups: Sequence[str], path: Path, top: int = 10) -> Path:
    """Per group: the ``top`` features by impurity importance, with their Spearman rho beside them."""
    fig = Figure(figsize=(11, 0.35 * top * len(groups) + 1.2 * len(groups)))
    axes = np.atleast_2d(fig.subplots(len(groups), 2))
    for row, group in zip(axes, groups):
        rows = importance[importance["group"] == group].sort_values("impurity", ascending=False).head(top)[::-1]
        positions = np.arange(len(rows))
        row[0].barh(positions, rows["impurity"], color=_COLORS[0])
        row[0].set_yticks(positions, rows["feature"], fontsize=8)
        row[0].set_title(f"{group}: impurity importance", fontsize=9)
        rho = rows["spearman"].fillna(0.0)
        row[1].barh(positions, rho, color=[_COLORS[2] if v >= 0 else _COLORS[1] for v in rho])
        for position in positions[rows["spearman"].isna().to_numpy()]:
            row[1].text(0.02, position, "n/a (constant)", va="center", fontsize=7, color="#7f7f7f")
        row[1].set_yticks(positions, rows["feature"], fontsize=8)
        row[1].set_xlim(-1, 1)
        row[1].axvline(0, color="black", lw=0.8)
        row[1].set_title(f"{group}: Spearman rho with the metric", fontsize=9)
    return _save(fig, path)


def _scaling_points(ax: Any, points: pd.DataFrame, fit: ScalingFit | None, color: str,
                    group: str | None = None) -> None:
    """Every trial (faint), the trials the law is fitted to (filled) and the other Pareto-optimal ones
    (hollow); with ``group``, in that group's ``color`` and named once in the legend."""
    used = points["trial_id"].isin(fit.trial_ids) if fit is not None else points["envelope"]
    left_out = points[points["pareto"] & ~used]
    ax.scatter(points["x"], points["error"], s=14, color=_FAINT if group is None else color, alpha=0.35,
               label="trials" if group is None else None)
    sd = spread(points, "error")
    if sd is not None:  # repeats: each point a configuration's mean over its seeds
        ax.errorbar(points["x"], points["error"], yerr=sd, fmt="none", ecolor=_FAINT if group is None else color,
                    elinewidth=0.8, alpha=0.45, label="± 1 sd over seeds" if group is None else None)
    ax.scatter(left_out["x"], left_out["error"], s=30, facecolors="none", edgecolors=color, zorder=3,
               label="Pareto-optimal, not used" if group is None else None)
    ax.scatter(points.loc[used, "x"], points.loc[used, "error"], s=30, color=color, zorder=3,
               label="used by the fit (lowest per cost bin)" if group is None else f"{group} ({int(used.sum())} used)")


def _scaling_law(ax: Any, points: pd.DataFrame, fit: ScalingFit, color: str, group: str | None = None) -> None:
    """The fitted law and its interval band over the points' x range; without ``group`` (the single-law
    figure), also the extrapolation check and the warning, which one group's law shows in the notes."""
    grid = np.geomspace(points["x"].min(), points["x"].max() * 2, 200)
    low, high = fit.band(grid)
    law = fit.law
    ax.fill_between(grid, low, high, color=color, alpha=0.18,
                    label=None if group else f"{fit.level:.0%} interval ({fit.noise} noise)")
    untrusted = f" (not trusted: {len(fit.warnings)} warning(s))" if group and fit.warnings else ""
    ax.plot(grid, fit.predict(grid), color=color, lw=1.8,
            label=f"{group + ': ' if group else 'fit: '}{law.e_inf:.3g} + {law.a:.3g} x^-{law.alpha:.3g}{untrusted}")
    if group is not None:
        return
    if fit.extrapolation is not None:
        check = fit.extrapolation
        ax.axvline(check.split, color=_FAINT, ls=":", lw=1)
        ax.scatter(check.x, check.predicted, marker="x", s=40, color=_COLORS[1], zorder=4,
                   label=f"predicted from x <= {check.split:.3g} (mean rel. error {check.mean_relative_error:.1%})")
    if fit.warnings:
        ax.text(0.01, 0.01, f"not to be trusted: {len(fit.warnings)} warning(s), see the notes",
                transform=ax.transAxes, fontsize=8, color=_COLORS[1], va="bottom")


def _scaling_axes(ax: Any, x_label: str, title: str) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel("error")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3, which="both")


def scaling_plot(points: pd.DataFrame, fit: ScalingFit | None, x_label: str, title: str, path: Path) -> Path:
    """Error of every trial (faint), the trials the law is fitted to (filled) and the other Pareto-optimal
    ones (hollow), the fitted law with its interval band, and the extrapolation check: the held-out points
    and the predictions of the law fitted without them. A law with warnings says so in the figure."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    _scaling_points(ax, points, fit, _COLORS[0])
    if fit is not None:
        _scaling_law(ax, points, fit, _COLORS[0])
    _scaling_axes(ax, x_label, title)
    return _save(fig, path)


def scaling_groups_plot(laws: Mapping[str, tuple[pd.DataFrame, ScalingFit | None]], x_label: str, title: str,
                        path: Path) -> Path:
    """One law per group (``laws``: group -> its points and its fit, or None), each in its colour: its
    trials, the ones its law uses, the law and its band, so that the groups' slopes and floors compare."""
    fig = Figure(figsize=(7.5, 5))
    ax = fig.subplots()
    style = styles(list(laws))
    for group, (points, fit) in laws.items():
        color = style[group][0]
        _scaling_points(ax, points, fit, color, group)
        if fit is not None:
            _scaling_law(ax, points, fit, color, group)
    _scaling_axes(ax, x_label, title)
    return _save(fig, path)


def latency_plot(frame: pd.DataFrame, columns: Sequence[str], path: Path) -> Path:
    """A box per latency column (p50/p90 per backend), in milliseconds on a log axis."""
    fig = Figure(figsize=(max(5, 1.4 * len(columns)), 4.5))
    ax = fig.subplots()
    data: list[Any] = [pd.to_numeric(frame[c], errors="coerce").dropna().to_numpy() for c in columns]
    ax.boxplot(data, showfliers=True)
    ax.set_xticks(np.arange(1, len(columns) + 1),
                  [c.removeprefix("latency.").replace("_ms", "") for c in columns], rotation=30, fontsize=8,
                  ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("latency per batch (ms)")
    ax.set_title("latency by backend")
    ax.grid(alpha=0.3, axis="y", which="both")
    return _save(fig, path)


def group_plot(trials: pd.DataFrame, columns: Sequence[str], labels: Sequence[str], metric: str, path: Path) -> Path:
    """One line per trial across the groups (a column per group): where each model is good and where not."""
    fig = Figure(figsize=(max(6, 0.9 * len(columns) + 3), 4.5))
    ax = fig.subplots()
    x = np.arange(len(columns))
    for i, (_, row) in enumerate(trials.iterrows()):
        values = pd.to_numeric(row[list(columns)], errors="coerce").to_numpy(dtype=float)
        ax.plot(x, values, marker="o", lw=1.5, color=_COLORS[i % len(_COLORS)], label=str(row["trial_id"]))
    ax.set_xticks(x, list(labels), rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per group")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, title="trial", title_fontsize=7)
    return _save(fig, path)


def loss_to_loss_plot(laws: Mapping[str, tuple[pd.DataFrame, LossToLossFit | None]], x_label: str, y_label: str,
                      title: str, path: Path) -> Path:
    """Per group (``laws``: group -> its trials' pairs ``x``, ``y`` and its ``LossToLossFit``, or None), the
    trials and the fitted law ``y = K (x - E_x)^kappa + E_y`` over their range of ``x``."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    style = styles(list(laws))
    for group, (pairs, fit) in laws.items():
        color, marker = style[group]
        ax.scatter(pairs["x"], pairs["y"], s=16, color=color, marker=marker, alpha=0.6, label=f"{group} ({len(pairs)})")
        if fit is not None:
            grid = np.linspace(float(pairs["x"].min()), float(pairs["x"].max()), 200)
            ax.plot(grid, fit.predict(grid), color=color, lw=1.8,
                    label=f"{group}: kappa {fit.kappa:.3g}" + (" (not trusted)" if fit.warnings else ""))
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def trend_plot(means: pd.DataFrame, errors: pd.DataFrame, x_label: str, y_label: str, path: Path) -> Path:
    """One line per column of ``means`` against its index (a hyperparameter's values), with error bars of
    ``errors`` (the same shape: standard errors; NaN draws none)."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    x = means.index.to_numpy(dtype=float)
    for (column, (color, marker)) in styles(list(means.columns)).items():
        ax.errorbar(x, means[column].to_numpy(dtype=float), yerr=errors[column].to_numpy(dtype=float), color=color,
                    marker=marker, ms=5, lw=1.5, capsize=3, label=str(column))
    ax.set_xticks(x, [f"{v:g}" for v in x])
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(f"{y_label} against {x_label} (mean and standard error over trials)", fontsize=10)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)
