"""The interactive page's figures: ``PlotlyFigures``, the renderer of ``ecgsearch report``.

The numbers come from the sections (``ecgsearch.report.sections``), the same as the static report's
PNGs; this module only draws them with plotly. Every trial marker's hover names the trial and its
configuration (``hover_texts``: architecture, optimizer, the hp.* values, the metric, costs, latency);
each Pareto figure has a menu that shows the fronts per optimizer or per architecture, or one optimizer
or one architecture alone; the best trials get a parallel-coordinates view (``parcoords_dimension``
encodes each column). Run-provided text is escaped before plotly sees it (plotly reads a few HTML tags
in hover texts, titles and menus). plotly is imported when a figure is drawn, so importing the report
stays light; ``plotly_js`` is the library the page inlines once.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ecgsearch.analysis.loss_to_loss import LossToLossFit
from ecgsearch.analysis.pareto import FRONT_GROUP, POOLED, latency_columns, pareto_front
from ecgsearch.analysis.progress import best_so_far
from ecgsearch.analysis.repeats import REPEATS, SD, spread
from ecgsearch.analysis.run import ANALYSED
from ecgsearch.analysis.scaling import ScalingFit
from ecgsearch.report.figures import slug
from ecgsearch.report.html import Plot, fmt

if TYPE_CHECKING:
    from ecgsearch.analysis.run import RunData

HOVER = "%{text}<extra></extra>"  # the hover box shows the point's text and nothing else
CONFIG = {"displaylogo": False, "responsive": True}
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf"]
FIT = "#1f77b4"
FAINT = "#7f7f7f"
ERROR_CHARS = 160  # a failed trial's error, cut to this length in its hover
HOVER_WIDTH = 90  # characters per hover line: a configuration reads as a short, wide box that fits a figure


def esc(value: Any) -> str:
    """Run-provided text as plotly shows it literally (plotly turns a few HTML tags into markup)."""
    return html.escape(str(value), quote=False)


def _go() -> Any:
    import plotly.graph_objects as go  # deferred: plotly is only needed when the page is drawn

    return go


def plotly_js() -> str:
    """The plotly.js library, inlined once in the page (no network needed to open it)."""
    from plotly.offline import get_plotlyjs  # deferred: plotly is only needed when the page is drawn

    return get_plotlyjs()


def _given(value: Any) -> bool:
    """A value to show: not None, NaN or NA (a hyperparameter that does not apply to the trial)."""
    return not (pd.api.types.is_scalar(value) and pd.isna(value))


def _wrapped(entries: Sequence[str], width: int = HOVER_WIDTH) -> list[str]:
    """``name: value`` entries joined by commas into lines of about ``width`` characters."""
    lines: list[str] = []
    for entry in entries:
        if lines and len(lines[-1]) + len(entry) + 2 <= width:
            lines[-1] += f", {entry}"
        else:
            lines.append(entry)
    return lines


def hover_texts(results: pd.DataFrame, metric: str) -> dict[str, str]:
    """Trial id -> its hover text: the trial, its architecture, optimizer and schedule, its hp.* values
    (those that apply), ``metric``, costs and p50 latencies; its status and error when it has no value."""
    groups = [[c for c in ("architecture", "optimizer", "schedule") if c in results.columns],
              sorted(c for c in results.columns if c.startswith("hp.")),
              [c for c in (metric, metric + SD, REPEATS, "cost.flops", "cost.params", "epochs") if c in results.columns]
              + [c for c in latency_columns(results) if c.endswith(".p50_ms")]]
    texts = {}
    for row in results.to_dict("records"):
        lines = [f"<b>trial {esc(row['trial_id'])}</b>"]
        for columns in groups:
            lines += _wrapped([f"{esc(c)}: {esc(fmt(row[c]))}" for c in columns if _given(row[c])])
        if row.get("status") not in ANALYSED:
            lines.append(f"status: {esc(row.get('status'))}")
            if _given(row.get("error")) and str(row["error"]):
                lines.append(f"error: {esc(str(row['error'])[:ERROR_CHARS])}")
        texts[str(row["trial_id"])] = "<br>".join(lines)
    return texts


def parcoords_dimension(values: pd.Series, label: str) -> dict[str, Any] | None:
    """One axis of the parallel-coordinates view, or None for a column that is the same in every row.

    Categories (architecture, optimizer, a choice of strings) are coded 0, 1, ... with their names as
    tick labels; a positive number spanning two decades or more is drawn as its log10; a value that does
    not apply (a hyperparameter of another architecture) sits below the others, ticked ``n/a``."""
    present = values.dropna()
    missing = bool(values.isna().any())
    if present.empty or (present.nunique() == 1 and not missing):
        return None
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        names = sorted(present.astype(str).unique()) + (["n/a"] if missing else [])
        codes = [names.index(str(v)) if _given(v) else len(names) - 1 for v in values]
        return {"label": esc(label), "values": codes, "tickvals": list(range(len(names))),
                "ticktext": [esc(n) for n in names]}
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    positive = numbers.dropna()
    if (positive > 0).all() and positive.max() / positive.min() >= 100:
        numbers, label = np.log10(numbers), f"log10 {label}"
    if not missing:
        return {"label": esc(label), "values": numbers.tolist()}
    low, high = float(numbers.min()), float(numbers.max())
    fill = low - 0.25 * ((high - low) or 1.0)
    ticks = list(np.linspace(low, high, 4)) if high > low else [low]
    return {"label": esc(label), "values": numbers.fillna(fill).tolist(), "range": [fill, high],
            "tickvals": [fill, *ticks], "ticktext": ["n/a", *[fmt(t, 3) for t in ticks]]}


def _layout(fig: Any, title: str, x_title: str | None = None, y_title: str | None = None, log_x: bool = False,
            log_y: bool = False, height: int = 460) -> None:
    """The page's look, the title and (for every subplot) the axes' titles and log scales."""
    fig.update_layout(template="plotly_white", title={"text": esc(title), "font": {"size": 14}}, height=height,
                      margin={"l": 60, "r": 20, "t": 70, "b": 50}, hovermode="closest", legend={"font": {"size": 11}})
    for update, text, log in ((fig.update_xaxes, x_title, log_x), (fig.update_yaxes, y_title, log_y)):
        if text is not None:
            update(title_text=esc(text))
        if log:
            update(type="log")


def _rgba(color: str, alpha: float) -> str:
    """``#1f77b4`` as the translucent ``rgba(...)`` of a band."""
    red, green, blue = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, {alpha})"


def error_bars(rows: pd.DataFrame, metric: str, color: str) -> dict[str, Any] | None:
    """The bars of ± one standard deviation over seeds of ``metric`` (None without repeats)."""
    sd = spread(rows, metric)
    if sd is None:
        return None
    return {"type": "data", "array": np.nan_to_num(sd).tolist(), "visible": True, "color": _rgba(color, 0.45),
            "thickness": 1, "width": 2}


def _button(label: str, visible: list[bool]) -> dict[str, Any]:
    return {"label": esc(label), "method": "restyle", "args": [{"visible": visible}]}


class PlotlyFigures:
    """The interactive page's renderer (see ``ecgsearch.report.figures.Figures``); ``run`` gives the
    configurations shown on hover."""

    def __init__(self, run: RunData) -> None:
        self.hover = hover_texts(run.results, run.column)
        if run.repeated:  # a configuration's point: its mean, sd and seeds (trial_id is the config_id)
            self.hover.update(hover_texts(run.trials, run.column))

    def _texts(self, trial_ids: Any, extra: Sequence[str] | None = None) -> list[str]:
        texts = [self.hover.get(str(t), f"<b>trial {esc(t)}</b>") for t in trial_ids]
        return texts if extra is None else [f"{t}<br>{e}" for t, e in zip(texts, extra)]

    def _plot(self, fig: Any, name: str, caption: str) -> Plot:
        div = f"plot-{name}"
        return Plot(fig.to_html(full_html=False, include_plotlyjs=False, div_id=div, config=CONFIG), caption, div,
                    figure=fig)

    def progress(self, values: pd.Series, statuses: pd.Series, trial_ids: pd.Series, metric: str, mode: str,
                 caption: str) -> Plot:
        go = _go()
        index = np.arange(1, len(values) + 1)
        finite = np.isfinite(values.to_numpy(dtype=float))
        fig = go.Figure()
        fig.add_trace(go.Scatter(x=index[finite], y=values[finite], mode="markers", name="trial",
                                 marker={"color": FAINT, "size": 7, "opacity": 0.7},
                                 text=self._texts(trial_ids[finite]), hovertemplate=HOVER))
        fig.add_trace(go.Scatter(x=index, y=best_so_far(values, mode), mode="lines", line_shape="hv",
                                 name="best so far", line={"color": FIT, "width": 2},
                                 hovertemplate="best after %{x} trials: %{y:.4g}<extra></extra>"))
        if (~finite).any():
            low = float(np.nanmin(values)) if finite.any() else 0.0
            failed = ", ".join(sorted(set(statuses[~finite].astype(str))))
            fig.add_trace(go.Scatter(x=index[~finite], y=np.full(int((~finite).sum()), low), mode="markers",
                                     name=esc(f"no value ({failed})"), marker={"color": COLORS[1], "symbol": "x"},
                                     text=self._texts(trial_ids[~finite]), hovertemplate=HOVER))
        _layout(fig, f"search progress ({mode} {metric})", "trials finished", metric)
        return self._plot(fig, "progress", caption)

    def pareto(self, trials: pd.DataFrame, metric: str, mode: str, cost: str, cost_label: str,
               groups: Sequence[str]) -> list[Plot]:
        """One figure of every trial and the fronts per group; its menu shows the fronts per optimizer or
        per architecture, or one of them alone (the front drawn is that group's own)."""
        go = _go()
        fig = go.Figure()
        members: list[tuple[str, str]] = []  # (group column, group) of each trace, in order
        first = groups[0] if groups else None  # the fronts the page opens with
        for group in list(groups) or [None]:
            fronts = pareto_front(trials, metric, mode, cost=cost, group_by=group)
            names = sorted(trials[group].dropna().astype(str).unique()) if group else [POOLED]
            for i, name in enumerate(names):
                rows = trials[trials[group].astype(str) == name] if group else trials
                front = fronts[fronts[FRONT_GROUP] == name]
                color, shown, key = COLORS[i % len(COLORS)], group == first, f"{group}={name}"
                fig.add_trace(go.Scatter(x=rows[cost], y=rows[metric], mode="markers", name=esc(name), legendgroup=key,
                                         showlegend=False, visible=shown, text=self._texts(rows["trial_id"]),
                                         marker={"color": color, "size": 7, "opacity": 0.35}, hovertemplate=HOVER,
                                         error_y=error_bars(rows, metric, color)))
                fig.add_trace(go.Scatter(x=front[cost], y=front[metric], mode="lines+markers", line_shape="hv",
                                         name=esc(f"{name} ({len(front)} on front / {len(rows)})"), legendgroup=key,
                                         visible=shown, text=self._texts(front["trial_id"]),
                                         line={"color": color, "width": 2}, marker={"color": color, "size": 8},
                                         hovertemplate=HOVER))
                members += [(str(group), name)] * 2
        if groups:
            buttons = [_button(f"fronts per {group}", [g == group for g, _ in members]) for group in groups]
            buttons += [_button(f"{group}: {name}", [m == (group, name) for m in members])
                        for group, name in dict.fromkeys(members) if group in groups]
            fig.update_layout(updatemenus=[{"buttons": buttons, "direction": "down", "showactive": True, "x": 1.0,
                                            "xanchor": "right", "y": 1.02, "yanchor": "bottom"}])
        _layout(fig, f"{metric} vs {cost_label}", cost_label, metric, log_x=True, height=500)
        by = " or ".join(groups) or "the pooled trials"
        caption = (f"{metric} vs {cost_label}: every trial (faint; hover for its configuration) and the front per "
                   f"group; the menu (top right) shows the fronts per {by}, or one group alone; click a legend "
                   "entry to hide that group")
        if spread(trials, metric) is not None:
            caption += "; each dot is a configuration's mean over its seeds, its bar ± 1 sd over the seeds"
        return [self._plot(fig, f"pareto-{slug(cost)}", caption)]

    def top_trials(self, ranked: pd.DataFrame, metric: str, caption: str) -> Plot:
        go = _go()
        ids = ranked["trial_id"].astype(str).tolist()
        trial = {"label": "trial (best on top)", "values": list(range(len(ids) - 1, -1, -1)),
                 "tickvals": list(range(len(ids))), "ticktext": [esc(t) for t in reversed(ids)]}
        columns = [c for c in ("architecture", "optimizer") if c in ranked.columns]
        columns += sorted(c for c in ranked.columns if c.startswith("hp."))
        dimensions = {c: parcoords_dimension(ranked[c], c.removeprefix("hp.")) for c in columns}
        same = [c for c, d in dimensions.items() if d is None and ranked[c].notna().any()]
        value = parcoords_dimension(ranked[metric], metric) or {"label": esc(metric), "values": ranked[metric].tolist()}
        fig = go.Figure(go.Parcoords(
            dimensions=[trial, *[d for d in dimensions.values() if d is not None], value], labelangle=-20,
            line={"color": pd.to_numeric(ranked[metric]).tolist(), "colorscale": "Viridis", "showscale": True,
                  "colorbar": {"title": {"text": esc(metric)}}}))
        _layout(fig, f"the {len(ids)} best trials by {metric}", height=560)
        fig.update_layout(margin={"l": 90, "r": 40, "t": 150, "b": 40})
        if same:
            caption += f"; the same in all of them, so not drawn: {', '.join(same)}"
        return self._plot(fig, "top-trials", caption)

    def cv(self, predictions: pd.DataFrame, stats: pd.DataFrame, metric: str, caption: str) -> Plot:
        go = _go()
        from plotly.subplots import make_subplots  # deferred: plotly is only needed when the page is drawn

        groups = [g for g in stats["group"] if (predictions["group"] == g).any()]
        titles = [f"{g}: r = {s['pearson_r']:.2f}, rho = {s['spearman_rho']:.2f} (n={int(s['n'])})"
                  for g in groups for _, s in stats[stats["group"] == g].head(1).iterrows()]
        fig = make_subplots(rows=1, cols=len(groups), subplot_titles=[esc(t) for t in titles])
        for k, (group, color) in enumerate(zip(groups, COLORS), start=1):
            rows = predictions[predictions["group"] == group]
            low = float(min(rows["true"].min(), rows["predicted"].min()))
            high = float(max(rows["true"].max(), rows["predicted"].max()))
            fig.add_trace(go.Scatter(x=rows["true"], y=rows["predicted"], mode="markers", name=esc(group),
                                     marker={"color": color, "size": 7},
                                     text=self._texts(rows["trial_id"], [f"out-of-fold prediction: {fmt(p)}"
                                                                         for p in rows["predicted"]]),
                                     hovertemplate=HOVER), row=1, col=k)
            fig.add_trace(go.Scatter(x=[low, high], y=[low, high], mode="lines", showlegend=False, hoverinfo="skip",
                                     line={"color": "black", "width": 1, "dash": "dash"}), row=1, col=k)
        _layout(fig, f"out-of-fold predictions of {metric}", f"true {metric}", f"predicted {metric}", height=460)
        return self._plot(fig, "cv", caption)

    def importance(self, table: pd.DataFrame, groups: Sequence[str], caption: str, top: int = 10) -> Plot:
        go = _go()
        from plotly.subplots import make_subplots  # deferred: plotly is only needed when the page is drawn

        titles = [esc(t) for g in groups for t in (f"{g}: impurity importance", f"{g}: Spearman rho with the metric")]
        fig = make_subplots(rows=len(groups), cols=2, subplot_titles=titles, horizontal_spacing=0.25,
                            vertical_spacing=0.3 / max(len(groups), 1))
        for k, group in enumerate(groups, start=1):
            rows = table[table["group"] == group].sort_values("impurity", ascending=False).head(top)[::-1]
            features = [esc(f) for f in rows["feature"]]
            rho = rows["spearman"]
            fig.add_trace(go.Bar(x=rows["impurity"], y=features, orientation="h", marker_color=COLORS[0],
                                 showlegend=False, hovertemplate="%{y}: impurity %{x:.3f}<extra></extra>"),
                          row=k, col=1)
            fig.add_trace(go.Bar(x=rho.fillna(0.0), y=features, orientation="h", showlegend=False,
                                 marker_color=[COLORS[2] if v >= 0 else COLORS[1] for v in rho.fillna(0.0)],
                                 text=["n/a (constant)" if np.isnan(v) else "" for v in rho], textposition="outside",
                                 hovertemplate="%{y}: Spearman rho %{x:.3f}<extra></extra>"), row=k, col=2)
            fig.update_xaxes(range=[-1, 1], row=k, col=2)
        _layout(fig, "feature importance", height=int(120 + (22 * top + 60) * len(groups)))
        return self._plot(fig, "importance", caption)

    def scaling(self, points: pd.DataFrame, fit: ScalingFit | None, axis: str, x_label: str, title: str,
                caption: str) -> Plot:
        """Every trial (faint), the trials the law is fitted to (filled) and the other Pareto-optimal ones
        (hollow), the law with its interval band, and the extrapolation check's predictions."""
        go = _go()
        fig = go.Figure()
        self._scaling_points(fig, points, fit, x_label, FIT)
        if fit is not None:
            self._law(fig, points, fit, FIT)
        _layout(fig, title, x_label, "error", log_x=True, log_y=True, height=500)
        return self._plot(fig, f"scaling-{axis}", caption)

    def scaling_groups(self, laws: Mapping[str, tuple[pd.DataFrame, ScalingFit | None]], axis: str, x_label: str,
                       title: str, caption: str) -> Plot:
        """One law per group, each in its colour: its trials, the ones its law uses and the law with its
        band (a legend entry hides or shows a group's traces together)."""
        go = _go()
        fig = go.Figure()
        for i, (group, (points, fit)) in enumerate(laws.items()):
            color = COLORS[i % len(COLORS)]
            self._scaling_points(fig, points, fit, x_label, color, group)
            if fit is not None:
                self._law(fig, points, fit, color, group)
        _layout(fig, title, x_label, "error", log_x=True, log_y=True, height=520)
        return self._plot(fig, f"scaling-groups-{axis}", caption)

    def _scaling_points(self, fig: Any, points: pd.DataFrame, fit: ScalingFit | None, x_label: str, color: str,
                        group: str | None = None) -> None:
        """Every trial (faint), the trials the law uses (filled) and the other Pareto-optimal ones (hollow);
        with ``group``, in that group's ``color``, its traces one legend group named after it."""
        go = _go()
        where = [f"{esc(x_label)}: {fmt(x)}<br>error: {fmt(e)}" for x, e in zip(points["x"], points["error"])]
        if group is not None:
            where = [f"{esc(group)}<br>{w}" for w in where]
        texts = pd.Series(self._texts(points["trial_id"], where), index=points.index)
        used = points["trial_id"].isin(fit.trial_ids) if fit is not None else points["envelope"]
        left_out = points["pareto"] & ~used
        faint = FAINT if group is None else color
        for mask, name, marker, listed in (
                (pd.Series(True, index=points.index), "trials", {"color": faint, "size": 6, "opacity": 0.35},
                 group is None),
                (left_out, "Pareto-optimal, not used",
                 {"color": color, "size": 9, "symbol": "circle-open", "line": {"width": 1.5}}, group is None),
                (used, "used by the fit (lowest per cost bin)", {"color": color, "size": 9}, True)):
            fig.add_trace(go.Scatter(x=points.loc[mask, "x"], y=points.loc[mask, "error"], mode="markers",
                                     name=name if group is None else esc(f"{group}: {name}"), marker=marker,
                                     text=texts[mask].tolist(), hovertemplate=HOVER, legendgroup=group,
                                     showlegend=listed, error_y=error_bars(points[mask], "error", faint)
                                     if name == "trials" else None))

    def _law(self, fig: Any, points: pd.DataFrame, fit: ScalingFit, color: str, group: str | None = None) -> None:
        """The fitted law and its band onto a scaling figure; for the single law (no ``group``) also the
        extrapolation check and the warning, which a group's law leaves to the section's notes."""
        go = _go()
        grid = np.geomspace(points["x"].min(), points["x"].max() * 2, 200)
        low, high = fit.band(grid)
        law = fit.law
        band = group or "band"
        fig.add_trace(go.Scatter(x=grid, y=high, mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip",
                                 legendgroup=band))
        fig.add_trace(go.Scatter(x=grid, y=low, mode="lines", line={"width": 0}, fill="tonexty",
                                 fillcolor=_rgba(color, 0.18), legendgroup=band, showlegend=group is None,
                                 name=esc(f"{fit.level:.0%} interval ({fit.noise} noise)"),
                                 customdata=high, hovertemplate="x = %{x:.3g}: error in [%{y:.3g}, %{customdata:.3g}]"
                                                                "<extra></extra>"))
        untrusted = f" (not trusted: {len(fit.warnings)} warning(s))" if group and fit.warnings else ""
        name = f"{esc(group) + ': ' if group else 'fit: '}{law.e_inf:.3g} + {law.a:.3g} x^-{law.alpha:.3g}{untrusted}"
        fig.add_trace(go.Scatter(x=grid, y=fit.predict(grid), mode="lines", line={"color": color, "width": 2},
                                 name=name, legendgroup=group,
                                 hovertemplate="x = %{x:.3g}: law %{y:.4g}<extra></extra>"))
        if group is not None:
            return
        check = fit.extrapolation
        if check is not None:
            values = np.concatenate([points["error"].to_numpy(), low, high, check.predicted])
            values = values[np.isfinite(values) & (values > 0)]
            fig.add_trace(go.Scatter(x=[check.split, check.split], y=[values.min(), values.max()], mode="lines",
                                     line={"color": FAINT, "width": 1, "dash": "dot"}, hoverinfo="skip",
                                     name=f"split of the check (x <= {check.split:.3g})"))
            used = points[points["trial_id"].isin(fit.trial_ids)]
            held = [", ".join(esc(t) for t in used.loc[np.isclose(used["x"], x) & np.isclose(used["error"], a),
                                                     "trial_id"]) for x, a in zip(check.x, check.actual)]
            fig.add_trace(go.Scatter(
                x=check.x, y=check.predicted, mode="markers", marker={"color": COLORS[1], "symbol": "x", "size": 9},
                name=f"predicted from x <= {check.split:.3g} (mean rel. error {check.mean_relative_error:.1%})",
                text=[f"<b>trial {t}</b><br>error: {fmt(a)}<br>predicted: {fmt(p)}"
                      for t, a, p in zip(held, check.actual, check.predicted)], hovertemplate=HOVER))
        if fit.warnings:
            fig.add_annotation(text=f"not to be trusted: {len(fit.warnings)} warning(s), see the notes", xref="paper",
                               yref="paper", x=0.01, y=0.01, showarrow=False, font={"color": COLORS[1], "size": 11},
                               xanchor="left", yanchor="bottom")

    def loss_to_loss(self, laws: Mapping[str, tuple[pd.DataFrame, LossToLossFit | None]], x_label: str, y_label: str,
                     title: str, caption: str, name: str) -> Plot:
        """Per group, its trials (hover: the trial and both losses) and its fitted law over their range."""
        go = _go()
        fig = go.Figure()
        for i, (group, (pairs, fit)) in enumerate(laws.items()):
            color = COLORS[i % len(COLORS)]
            where = [f"{esc(group)}<br>{esc(x_label)}: {fmt(x)}<br>{esc(y_label)}: {fmt(y)}"
                     for x, y in zip(pairs["x"], pairs["y"])]
            fig.add_trace(go.Scatter(x=pairs["x"], y=pairs["y"], mode="markers", name=esc(f"{group} ({len(pairs)})"),
                                     legendgroup=group, marker={"color": color, "size": 7, "opacity": 0.6},
                                     text=self._texts(pairs["trial_id"], where), hovertemplate=HOVER))
            if fit is not None:
                grid = np.linspace(float(pairs["x"].min()), float(pairs["x"].max()), 200)
                untrusted = " (not trusted)" if fit.warnings else ""
                fig.add_trace(go.Scatter(x=grid, y=fit.predict(grid), mode="lines", legendgroup=group,
                                         name=esc(f"{group}: kappa {fit.kappa:.3g}{untrusted}"),
                                         line={"color": color, "width": 2},
                                         hovertemplate="x = %{x:.4g}: law %{y:.4g}<extra></extra>"))
        _layout(fig, title, x_label, y_label)
        return self._plot(fig, name, caption)

    def trend(self, means: pd.DataFrame, errors: pd.DataFrame, x_label: str, y_label: str, caption: str,
              name: str) -> Plot:
        """One line per column of ``means`` against its index, with standard-error bars from ``errors``."""
        go = _go()
        fig = go.Figure()
        x = means.index.to_numpy(dtype=float)
        for i, column in enumerate(means.columns):
            fig.add_trace(go.Scatter(x=x, y=means[column].to_numpy(dtype=float), mode="lines+markers",
                                     name=esc(column), marker={"color": COLORS[i % len(COLORS)]},
                                     error_y={"type": "data", "array": errors[column].to_numpy(dtype=float),
                                              "visible": True},
                                     hovertemplate=f"{esc(x_label)} %{{x:g}}: {esc(column)} %{{y:.4g}}<extra></extra>"))
        fig.update_xaxes(tickvals=x.tolist())
        _layout(fig, f"{y_label} against {x_label} (mean and standard error over trials)", x_label, y_label)
        return self._plot(fig, name, caption)

    def latency(self, trials: pd.DataFrame, columns: Sequence[str], caption: str) -> Plot:
        go = _go()
        fig = go.Figure()
        for column in columns:
            values = pd.to_numeric(trials[column], errors="coerce")
            kept = trials[values.notna()]
            fig.add_trace(go.Box(y=values[values.notna()], name=esc(column.removeprefix("latency.").replace("_ms", "")),
                                 boxpoints="all", jitter=0.4, pointpos=0, hoveron="points", marker={"size": 4},
                                 text=self._texts(kept["trial_id"], [f"{esc(column)}: {fmt(v, 3)}"
                                                                     for v in values.dropna()]),
                                 hovertemplate=HOVER, showlegend=False))
        _layout(fig, "latency by backend", y_title="latency per batch (ms)", log_y=True)
        return self._plot(fig, "latency", caption)

    def groups(self, trials: pd.DataFrame, columns: Sequence[str], labels: Sequence[str], metric: str,
               caption: str, name: str) -> Plot:
        go = _go()
        fig = go.Figure()
        for i, (_, row) in enumerate(trials.iterrows()):
            values = pd.to_numeric(row[list(columns)], errors="coerce").to_numpy(dtype=float)
            extra = [f"{esc(label)}: {esc(metric)} {fmt(value, 3)}" for label, value in zip(labels, values)]
            fig.add_trace(go.Scatter(x=[esc(label) for label in labels], y=values, mode="lines+markers",
                                     name=esc(row["trial_id"]), marker={"color": COLORS[i % len(COLORS)]},
                                     text=self._texts([row["trial_id"]] * len(columns), extra), hovertemplate=HOVER))
        _layout(fig, f"{metric} per group", y_title=metric)
        return self._plot(fig, name, caption)
