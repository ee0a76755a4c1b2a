"""How the report's sections draw: ``Figures``, the one interface of both renderers.

A section computes its numbers once (``ecgsearch.report.sections``) and hands them to a renderer:
``PngFigures`` writes the PNGs of the static report (``ecgsearch report --static``, for papers) with
``ecgsearch.report.plots``; ``ecgsearch.report.interactive.PlotlyFigures`` makes the interactive page's
figures. Each method returns what the section shows (an ``Image`` or a ``Plot``), or None for a view the
renderer does not draw.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Protocol, Sequence

import pandas as pd

from ecgsearch.analysis.loss_to_loss import LossToLossFit
from ecgsearch.analysis.repeats import spread
from ecgsearch.analysis.scaling import ScalingFit
from ecgsearch.report import plots
from ecgsearch.report.html import Image, Plot

Figure = Image | Plot


class Figures(Protocol):
    """A renderer of the report's figures (``groups``: the columns to draw fronts per, first first)."""

    def progress(self, values: pd.Series, statuses: pd.Series, trial_ids: pd.Series, metric: str, mode: str,
                 caption: str) -> Figure | None: ...

    def pareto(self, trials: pd.DataFrame, metric: str, mode: str, cost: str, cost_label: str,
               groups: Sequence[str]) -> list[Figure]: ...

    def top_trials(self, ranked: pd.DataFrame, metric: str, caption: str) -> Figure | None: ...

    def cv(self, predictions: pd.DataFrame, stats: pd.DataFrame, metric: str, caption: str) -> Figure | None: ...

    def importance(self, table: pd.DataFrame, groups: Sequence[str], caption: str) -> Figure | None: ...

    def scaling(self, points: pd.DataFrame, fit: ScalingFit | None, axis: str, x_label: str, title: str,
                caption: str) -> Figure | None: ...

    def scaling_groups(self, laws: Mapping[str, tuple[pd.DataFrame, ScalingFit | None]], axis: str, x_label: str,
                       title: str, caption: str) -> Figure | None:
        """One law per group on one axis (``laws``: group -> its ``scaling_points`` and its fit, or None)."""

    def loss_to_loss(self, laws: Mapping[str, tuple[pd.DataFrame, LossToLossFit | None]], x_label: str, y_label: str,
                     title: str, caption: str, name: str) -> Figure | None:
        """Per group, its trials' loss pairs (``loss_pairs``: trial_id, x, y) and its fitted law, or None."""

    def trend(self, means: pd.DataFrame, errors: pd.DataFrame, x_label: str, y_label: str, caption: str,
              name: str) -> Figure | None:
        """One line per column of ``means`` against its index (a hyperparameter's values) with error bars
        ``errors`` (the same shape)."""

    def latency(self, trials: pd.DataFrame, columns: Sequence[str], caption: str) -> Figure | None: ...

    def groups(self, trials: pd.DataFrame, columns: Sequence[str], labels: Sequence[str], metric: str,
               caption: str, name: str) -> Figure | None:
        """One line per trial across ``columns`` (per source, per label group); ``name``: the figure's file
        or element name."""


def slug(text: str) -> str:
    """``latency.torch-cpu.p50_ms`` -> ``torch-cpu_p50_ms``: a cost column as a file or element name."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text.removeprefix("cost.").removeprefix("latency.").replace(".", "_"))


class PngFigures:
    """The static report's renderer: one PNG per figure in ``out``, named as the guide lists them."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def progress(self, values: pd.Series, statuses: pd.Series, trial_ids: pd.Series, metric: str, mode: str,
                 caption: str) -> Image:
        path = plots.progress_plot(values, statuses, metric, mode, self.out / "progress.png")
        return Image(path.name, caption)

    def pareto(self, trials: pd.DataFrame, metric: str, mode: str, cost: str, cost_label: str,
               groups: Sequence[str]) -> list[Image]:
        """A figure per group for FLOPs, one for the first group for the other costs."""
        images = []
        bars = "; each dot a configuration's mean over its seeds, ± 1 sd" if spread(trials, metric) is not None else ""
        for group in groups if cost == "cost.flops" else groups[:1]:
            path = plots.pareto_plot(trials, metric, mode, cost, group,
                                     self.out / f"pareto_{slug(cost)}_by_{group}.png", cost_label)
            images.append(Image(path.name, f"{metric} vs {cost_label}, front per {group}{bars}"))
        return images

    def top_trials(self, ranked: pd.DataFrame, metric: str, caption: str) -> None:
        return None  # the best trials' table says it on paper

    def cv(self, predictions: pd.DataFrame, stats: pd.DataFrame, metric: str, caption: str) -> Image:
        return Image(plots.cv_plot(predictions, stats, metric, self.out / "cv.png").name, caption)

    def importance(self, table: pd.DataFrame, groups: Sequence[str], caption: str) -> Image:
        return Image(plots.importance_plot(table, groups, self.out / "importance.png").name, caption)

    def scaling(self, points: pd.DataFrame, fit: ScalingFit | None, axis: str, x_label: str, title: str,
                caption: str) -> Image:
        return Image(plots.scaling_plot(points, fit, x_label, title, self.out / f"scaling_{axis}.png").name, caption)

    def scaling_groups(self, laws: Mapping[str, tuple[pd.DataFrame, ScalingFit | None]], axis: str, x_label: str,
                       title: str, caption: str) -> Image:
        path = plots.scaling_groups_plot(laws, x_label, title, self.out / f"scaling_groups_{axis}.png")
        return Image(path.name, caption)

    def loss_to_loss(self, laws: Mapping[str, tuple[pd.DataFrame, LossToLossFit | None]], x_label: str, y_label: str,
                     title: str, caption: str, name: str) -> Image:
        path = plots.loss_to_loss_plot(laws, x_label, y_label, title, self.out / f"{slug(name)}.png")
        return Image(path.name, caption)

    def trend(self, means: pd.DataFrame, errors: pd.DataFrame, x_label: str, y_label: str, caption: str,
              name: str) -> Image:
        return Image(plots.trend_plot(means, errors, x_label, y_label, self.out / f"{slug(name)}.png").name, caption)

    def latency(self, trials: pd.DataFrame, columns: Sequence[str], caption: str) -> Image:
        return Image(plots.latency_plot(trials, columns, self.out / "latency.png").name, caption)

    def groups(self, trials: pd.DataFrame, columns: Sequence[str], labels: Sequence[str], metric: str,
               caption: str, name: str) -> Image:
        return Image(plots.group_plot(trials, columns, labels, metric, self.out / f"{slug(name)}.png").name, caption)
