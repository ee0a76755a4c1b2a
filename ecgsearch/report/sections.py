"""The report's sections: each reads the run, has its figures drawn and says why when it cannot.

The numbers of a section are computed here, once; ``figures`` (``ecgsearch.report.figures.Figures``)
draws them, as PNGs for the static report or as interactive figures for the page. A section that cannot
be made (too few trials to cross-validate, too few Pareto points for a law, a single data size) carries
a note with the reason instead of failing the whole report.
"""

from __future__ import annotations

import itertools
import re
import shlex
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd

from ecgsearch.analysis.explain import explain
from ecgsearch.analysis.loss_to_loss import LossToLossError, LossToLossFit, fit_loss_to_loss, loss_pairs
from ecgsearch.analysis.pareto import hypervolume, latency_columns, pareto_front
from ecgsearch.analysis.progress import trial_values
from ecgsearch.analysis.prune import MIN_TRIALS as PRUNE_MIN_TRIALS
from ecgsearch.analysis.repeats import HIGH, LEVEL, LOW, REPEATS, SD, describe
from ecgsearch.analysis.run import RunData
from ecgsearch.analysis.scaling import (
    AXES,
    ScalingError,
    ScalingFit,
    axis_label,
    fit_scaling,
    scaling_points,
)
from ecgsearch.analysis.studies import PARADIGM, efficiency_ratio, fit_scaling_by, group_keys
from ecgsearch.errors import UserError
from ecgsearch.plugins import get_registries
from ecgsearch.report.figures import slug
from ecgsearch.report.html import Section, Table, fmt
from ecgsearch.results.names import label_group_columns, source_columns

if TYPE_CHECKING:
    from ecgsearch.report.figures import Figures


COST_LABELS = {"cost.flops": "FLOPs per sample", "cost.params": "parameters"}
IDENTITY = ["trial_id", "architecture", "optimizer"]
TOP_TRIALS = 20  # the trials of the interactive page's parallel-coordinates view


def _present(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    return [c for c in columns if c in frame.columns]


def _cell(row: pd.Series, column: str) -> str:
    """A table cell: the value; a metric averaged over seeds as ``mean ± sd (n=3)``."""
    sd = row.get(column + SD)
    return fmt(row[column]) if sd is None else f"{_plus_minus(row[column], sd)} (n={int(row[REPEATS])})"


def trials_table(caption: str, frame: pd.DataFrame, columns: list[str]) -> Table:
    """A row per trial (per configuration with repeats) of ``columns``; each column with an interval of its
    mean over seeds (``<column>.ci_low``/``.ci_high``) has it in a column of its own, after the others."""
    intervals = [c for c in columns if c + LOW in frame.columns]
    header = [*columns, *(f"{c} {LEVEL:.0%} interval" for c in intervals)]
    rows = [[*(_cell(row, c) for c in columns), *(f"[{fmt(row[c + LOW], 3)}, {fmt(row[c + HIGH], 3)}]"
                                                  for c in intervals)] for _, row in frame.iterrows()]
    return Table(caption, header, rows)


def _averaged(run: RunData, what: str) -> str:
    """With repeats, the sentence that says ``what`` (dots, rows) are means over seeds; empty otherwise."""
    if not run.repeated:
        return ""
    return (f" With repeats, {what} a configuration: the mean over its seeds ± their standard deviation, and the "
            f"{LEVEL:.0%} Student-t interval of the mean.")


def best_section(run: RunData, figures: Figures, n: int = 5) -> Section:
    ordered = run.trials.sort_values(run.column, ascending=run.mode == "min")
    ranked = ordered.head(n)
    columns = _present(ranked, [*IDENTITY, run.column, f"test.{run.metric}", "cost.flops", "cost.params", "epochs"])
    section = Section("Best trials", "best", f"The {len(ranked)} best trials by {run.column} ({run.mode})."
                      + _averaged(run, "each row is"),
                      tables=[trials_table(f"best trials by {run.column}", ranked, columns)])
    top = ordered.head(TOP_TRIALS)
    section.show(figures.top_trials(top, run.column,
                                    f"the {len(top)} best trials by {run.column}, one line each (the best at the top "
                                    "of the trial axis); drag along an axis to keep a range, click the range to clear "
                                    "it"))
    return section


def progress_section(run: RunData, figures: Figures) -> Section:
    section = Section("Search progress", "progress",
                      "Each dot is a trial in the order trials finished; the line is the best value found so far. "
                      "A line that still climbs at the end says more trials would likely pay off.")
    section.show(figures.progress(trial_values(run), run.results["status"].reset_index(drop=True),
                                  run.results["trial_id"].astype(str).reset_index(drop=True), run.column, run.mode,
                                  f"best {run.column} so far after each finished trial"))
    return section


def _cost_columns(frame: pd.DataFrame) -> list[str]:
    usable = [c for c in COST_LABELS if c in frame.columns and pd.to_numeric(frame[c], errors="coerce").gt(0).any()]
    return usable + [c for c in latency_columns(frame) if c.endswith("p50_ms")]


def cost_label(cost: str) -> str:
    return COST_LABELS.get(cost) or f"{cost.removeprefix('latency.')} (ms)"


def pareto_section(run: RunData, figures: Figures) -> Section:
    trials = run.trials
    section = Section("Pareto fronts", "pareto",
                      f"A trial is on the front when no other trial reaches a better {run.column} at the same or "
                      "lower cost. Faint dots are all trials; lines join each group's front. Read the front from "
                      "left to right: each step up is what the extra cost buys." + _averaged(run, "each dot is"))
    costs = _cost_columns(trials)
    if not costs:
        section.notes.append("The results have no cost columns (cost.flops, cost.params, latency); there is no "
                             "front to draw.")
        return section
    groups = [g for g in ("optimizer", "architecture") if g in trials.columns and trials[g].notna().any()]
    for cost in costs:
        for figure in figures.pareto(trials, run.column, run.mode, cost, cost_label(cost), groups):
            section.show(figure)
    cost = costs[0]
    front = pareto_front(trials, run.column, run.mode, cost=cost)
    columns = _present(front, [*IDENTITY, run.column, *costs])
    section.tables.append(trials_table(f"the pooled front of {run.column} vs {cost_label(cost)} ({len(front)} trials)",
                                       front, columns))
    if groups:
        section.tables.append(hypervolume_table(trials, run.metric, run.mode, cost, groups[0]))
    return section


def hypervolume_table(trials: pd.DataFrame, metric: str, mode: str, cost: str, group: str) -> Table:
    """Hypervolume of each group's front of ``val.<metric>`` against one shared reference, so fronts can be
    compared (``trials`` must have unique index labels)."""
    column = f"val.{metric}"
    sign = 1.0 if mode == "max" else -1.0
    scores = sign * pd.to_numeric(trials[column], errors="coerce")
    costs = pd.to_numeric(trials[cost], errors="coerce")
    reference = (float(costs.max()) * 2.0, float(scores.min()))
    rows = []
    for name, rows_of in trials.groupby(group, sort=True):
        front = pareto_front(rows_of, column, mode, cost=cost)
        measured = rows_of.index[costs.loc[rows_of.index].gt(0).to_numpy()]  # decades need a positive cost
        volume = hypervolume(costs.loc[measured], scores.loc[measured], reference)
        rows.append([str(name), str(len(rows_of)), str(len(front)), fmt(volume)])
    return Table(f"hypervolume by {group} (decades of {cost_label(cost)} x {metric}; reference: 2 x the largest "
                 f"cost and the worst {metric}; larger is a better front)",
                 [group, "trials", "on front", "hypervolume"], rows)


def surrogate_sections(run: RunData, figures: Figures, surrogate: str, folds: int, seed: int) -> list[Section]:
    """Cross-validated predictions and feature importance (``ecgsearch.analysis.explain``)."""
    cv = Section("Surrogate: cross-validated predictions", "cv",
                 f"A {surrogate} surrogate predicts {run.column} from the hyperparameters and cost features. "
                 f"Each dot is a trial predicted by a model fitted on the other {folds - 1} folds; dots near the "
                 "dashed diagonal and a Pearson r near 1 mean the results are predictable from the configuration, "
                 "so the importances below can be trusted.")
    importance = Section("Feature importance", "importance",
                         "Left: impurity importance of each feature in the surrogate fitted on all trials of a "
                         "group (how much the trees rely on it). Right: Spearman rank correlation of the feature "
                         f"with {run.column} (sign: does more of it help). A feature high on the left with a "
                         "weak correlation acts through interactions or a non-monotone optimum.")
    group_by = "optimizer" if "optimizer" in run.trials and run.trials["optimizer"].nunique() > 1 else None
    try:
        explanation = explain(run.trials, run.metric, run.mode, surrogate=surrogate, folds=folds,
                              group_by=group_by, seed=seed, space=run.spec.space)
    except UserError as error:
        cv.notes.append(f"No cross-validation: {error}")
        importance.notes.append(f"No importances: {error}")
        return [cv, importance]
    stats = explanation.cv
    cv.tables.append(Table(f"{folds}-fold cross-validation of the {surrogate} surrogate",
                           ["group", "trials", "Pearson r", "Spearman rho", "MAE"],
                           [[str(r.group), str(r.n), fmt(r.pearson_r, 3), fmt(r.spearman_rho, 3), fmt(r.mae, 3)]
                            for r in stats.itertuples()]))
    skipped = [str(r.group) for r in stats.itertuples() if not np.isfinite(r.pearson_r)]
    if skipped:
        cv.notes.append(f"Not cross-validated (fewer than {2 * folds} trials, or constant values): "
                        f"{', '.join(skipped)}.")
    if len(explanation.predictions):
        cv.show(figures.cv(explanation.predictions, stats, run.column,
                           f"out-of-fold predicted vs true {run.column}, per group"))
    table = explanation.importance
    groups = [g for g in stats["group"] if (table["group"] == g).any()]
    if groups:
        importance.show(figures.importance(table, groups, "impurity importance and Spearman rho, per group"))
        pooled = table[table["group"] == groups[0]].head(12)
        importance.tables.append(Table(f"features of group {groups[0]}, by impurity importance",
                                       ["feature", "impurity", "Spearman rho"],
                                       [[r.feature, fmt(r.impurity, 3), fmt(r.spearman, 3)]
                                        for r in pooled.itertuples()]))
    return [cv, importance]


def _interval(fit: ScalingFit, name: str, value: float) -> str:
    low, high = fit.ci.get(name, (np.nan, np.nan))
    return f"{fmt(value, 3)} [{fmt(low, 3)}, {fmt(high, 3)}]"


def _extrapolation_text(fit: ScalingFit) -> str:
    check = fit.extrapolation
    if check is None:
        return f"no extrapolation check: {fit.extrapolation_note}"
    return (f"fitted on the {check.n_fit} points with x <= {fmt(check.split, 3)}, the law predicts the {check.n_test} "
            f"larger ones with a mean relative error of {check.mean_relative_error:.1%} "
            f"(max {check.max_relative_error:.1%})")


def scaling_section(run: RunData, figures: Figures, bootstrap: int, seed: int, train_records: int | None) -> Section:
    """The law on each axis with its intervals and the reasons not to trust it. ``bootstrap`` and ``seed``
    are unused: the intervals are profile likelihood (nothing is resampled)."""
    error = f"1 - {run.metric}" if run.mode == "max" else run.metric
    section = Section("Scaling laws", "scaling",
                      f"error = {error}, fitted as E_inf + A x^-alpha to the lower envelope of the trials (filled "
                      "blue: the lowest error in each cost bin of half a decade, when no cheaper bin does better; "
                      "hollow: Pareto-optimal trials left out, as a poorly trained trial that is only cheaper than "
                      "its bin's best). The band is the 95% profile-likelihood interval of the curve; the noise "
                      "model (additive, multiplicative, or both when the points cannot tell) sets the intervals. "
                      "Red crosses are the predictions of a law fitted only to the smaller x (left of the dotted "
                      "line) for the larger ones: the honest test of whether the law extrapolates. alpha is how "
                      "fast error falls with x; E_inf is the error no amount of x removes in this design space.")
    rows = []
    for axis in AXES:
        label = axis_label(axis, train_records)
        try:
            points = scaling_points(run.trials, run.metric, run.mode, axis, train_records)
        except UserError as reason:
            section.notes.append(f"{axis}: {reason}")
            continue
        if points.empty:
            section.notes.append(f"{axis}: no analysed trial has a positive {label} and a value; nothing to fit.")
            continue
        if points["x"].nunique() < 2:
            value = fmt(points["x"].iloc[0])
            section.notes.append(f"{axis}: every trial used the same {label} ({value}), so there is nothing to "
                                 f"fit; vary it in the space file (e.g. data_fraction: {{choice: [0.25, 0.5, 1.0]}} "
                                 "for the data axis) to study it.")
            continue
        fit: ScalingFit | None = None
        try:
            fit = fit_scaling(run.trials, run.metric, run.mode, axis, train_records=train_records)
        except ScalingError as reason:
            section.notes.append(str(reason))
        caption = f"{error} vs {label}" + (f"; {_extrapolation_text(fit)}" if fit else " (no law fitted)")
        section.show(figures.scaling(points, fit, axis, label, f"{error} vs {label}", caption))
        if fit is not None:
            if fit.warnings:
                section.notes.append(f"warning, {axis} law not to be trusted: {'; '.join(fit.warnings)}.")
            check = fit.extrapolation
            rows.append([axis, f"{fit.n} of {int(points['pareto'].sum())}", fit.noise,
                         _interval(fit, "e_inf", fit.law.e_inf), _interval(fit, "a", fit.law.a),
                         _interval(fit, "alpha", fit.law.alpha), fmt(fit.r2, 3), fmt(fit.rmse, 3),
                         f"{check.mean_relative_error:.1%} (max {check.max_relative_error:.1%}, "
                         f"{check.n_fit} -> {check.n_test} points)" if check else fit.extrapolation_note,
                         "yes" if fit.trusted else f"no ({len(fit.warnings)} warning{'s' * (len(fit.warnings) > 1)})"])
    if rows:
        section.tables.append(Table("fitted laws (95% profile-likelihood intervals in brackets)",
                                    ["axis", "points used (of Pareto-optimal)", "noise model", "E_inf", "A", "alpha",
                                     "R^2", "RMSE", "extrapolation error (fit on lower 2/3, predict the rest)",
                                     "trusted"], rows))
    return section


RATIO_BOOTSTRAP = 300  # resamples per efficiency ratio: a 95% interval in about a second, so the report stays fast
STUDY_AXES = ("parameters", "compute")  # and data, when the trials vary hp.data_fraction


def _varies(trials: pd.DataFrame, column: str) -> bool:
    """Whether the trials fall in two groups or more of ``column`` (a missing paradigm is ``sl``)."""
    return column in trials.columns and group_keys(trials, column).nunique() > 1


def study_grouping(trials: pd.DataFrame) -> str | list[str] | None:
    """What a scaling study compares laws across: the paradigm (sl, ssl, transfer) when the trials vary it,
    the architecture when they vary that, both when they vary both; None when every trial is alike."""
    varying = [c for c in ("architecture", PARADIGM) if _varies(trials, c)]
    return None if not varying else varying[0] if len(varying) == 1 else varying


def data_varies(trials: pd.DataFrame) -> bool:
    """Whether the trials searched the data fraction: only then is there a data axis to fit."""
    return "hp.data_fraction" in trials and trials["hp.data_fraction"].nunique() > 1


def _law_row(axis: str, group: str, fit: ScalingFit) -> list[str]:
    """A group's law as a row of the laws table."""
    return [axis, group, str(fit.n), _interval(fit, "alpha", fit.law.alpha), _interval(fit, "e_inf", fit.law.e_inf),
            str(len(fit.warnings))]


def _group_laws(run: RunData, axis: str, by: str | list[str], train_records: int | None,
                section: Section) -> dict[str, tuple[pd.DataFrame, ScalingFit | None]]:
    """Each group's points and law on ``axis`` (``fit_scaling_by``); a group without a law gets a note why,
    a law with warnings a note with them. Empty when the axis has no column."""
    try:
        fits = fit_scaling_by(run.trials, run.metric, run.mode, axis, by=by, train_records=train_records)
    except UserError as reason:
        section.notes.append(f"{axis}: {reason}")
        return {}
    keys = group_keys(run.trials, by)
    laws: dict[str, tuple[pd.DataFrame, ScalingFit | None]] = {}
    for group, fit in fits.items():
        points = scaling_points(run.trials[keys == group], run.metric, run.mode, axis, train_records)
        if isinstance(fit, str):
            section.notes.append(f"{axis}, {group}: no law: {fit}")
        elif fit.warnings:
            section.notes.append(f"warning, {axis} law of {group} not to be trusted: {'; '.join(fit.warnings)}.")
        laws[group] = (points, None if isinstance(fit, str) else fit)
    return laws


def _ratio_rows(run: RunData, axis: str, by: str | list[str], groups: list[str], seed: int,
                train_records: int | None, section: Section) -> list[list[str]]:
    """The efficiency ratio of every pair of ``groups`` (those with a law) on ``axis``: one row each, and
    the ratio's warnings, or why it could not be computed, as notes."""
    rows = []
    label = axis_label(axis, train_records)
    for denominator, numerator in itertools.combinations(groups, 2):
        try:
            ratio = efficiency_ratio(run.trials, run.metric, run.mode, axis, numerator, denominator, by=by,
                                     bootstrap=RATIO_BOOTSTRAP, seed=seed, train_records=train_records)
        except UserError as reason:
            section.notes.append(f"{axis}, {numerator} vs {denominator}: no efficiency ratio: {reason}")
            continue
        section.notes.extend(f"warning, {axis} ratio of {numerator} to {denominator}: {w}." for w in ratio.warnings)
        rows.append([axis, ratio.sentence(label), f"[{ratio.ci[0]:.3g}, {ratio.ci[1]:.3g}]",
                     str(len(ratio.warnings))])
    return rows


def scaling_groups_section(run: RunData, figures: Figures, seed: int, train_records: int | None) -> Section | None:
    """A law per paradigm (or architecture, or both) on each axis, and how many times the x one group needs
    compared with another to reach the same error (``ecgsearch.analysis.studies``). None when every trial
    is of one group. A group without a law shows its points and the reason. When no group has a law on any
    axis: None for a search across architectures (most searches; a section of reasons would only clutter
    their report), the points and reasons for a study of paradigms (SL vs SSL), which asked for these laws."""
    by = study_grouping(run.trials)
    if by is None:
        return None
    grouping = by if isinstance(by, str) else " and ".join(by)
    error = f"1 - {run.metric}" if run.mode == "max" else run.metric
    section = Section(f"Scaling laws per {grouping}", "scaling-groups",
                      f"error = {error}, fitted as E_inf + A x^-alpha to each {grouping}'s lower envelope, as the "
                      "scaling laws above are to all trials (filled: the trials a law uses; band: its 95% interval). "
                      "A larger alpha falls faster with x, a lower E_inf ends lower. The ratios invert two laws at "
                      "the same error (by default the worse of the two groups' best errors, a level both reached): "
                      "how many times the x one group needs compared with the other, with a 95% bootstrap interval "
                      f"over trials ({RATIO_BOOTSTRAP} resamples).")
    laws_rows, ratio_rows = [], []
    for axis in (*STUDY_AXES, *(("data",) if data_varies(run.trials) else ())):
        laws = _group_laws(run, axis, by, train_records, section)
        fitted = [group for group, (_, fit) in laws.items() if fit is not None]
        if not laws:  # no column for the axis; a group without a law still shows its points
            continue
        label = axis_label(axis, train_records)
        section.show(figures.scaling_groups(laws, axis, label, f"{error} vs {label}, per {grouping}",
                                            f"{error} vs {label}: one law per {grouping}"))
        laws_rows += [_law_row(axis, group, laws[group][1]) for group in fitted]
        ratio_rows += _ratio_rows(run, axis, by, fitted, seed, train_records, section)
    if not laws_rows:
        if PARADIGM not in ([by] if isinstance(by, str) else by):
            return None
        section.notes.insert(0, f"No {grouping} has a law on any axis yet; why, per {grouping} and axis:")
        return section
    section.tables.append(Table(f"laws per {grouping} (95% profile-likelihood intervals in brackets)",
                                ["axis", grouping, "points used", "alpha", "E_inf", "warnings"], laws_rows))
    if ratio_rows:
        section.tables.append(Table("efficiency ratios (x the first group needs / x the second needs, same error)",
                                    ["axis", "finding", "95% interval", "warnings"], ratio_rows))
    return section


MIN_LOSS_PAIRS = 5  # a loss-to-loss law has 4 parameters: one residual degree of freedom at least
OOD_LOSS = re.compile(r"ood\.[^.]+\.loss")  # ood.<name>.loss: ecgsearch.train.ood


def _loss_law(pairs: pd.DataFrame, x_name: str, y_name: str, where: str,
              section: Section) -> LossToLossFit | None:
    """The law through ``pairs``, or None with a note why; its warnings as notes."""
    if len(pairs) < MIN_LOSS_PAIRS:
        section.notes.append(f"{where}: {len(pairs)} trials with both losses; a law needs {MIN_LOSS_PAIRS}.")
        return None
    try:
        fit = fit_loss_to_loss(pairs["x"], pairs["y"], x_name=x_name, y_name=y_name)
    except LossToLossError as reason:
        section.notes.append(f"{where}: no law: {reason}")
        return None
    if fit.warnings:
        section.notes.append(f"warning, {where} not to be trusted: {'; '.join(fit.warnings)}.")
    return fit


def loss_to_loss_section(run: RunData, figures: Figures) -> Section | None:
    """Each OOD loss (``ood.<name>.loss``) against the in-distribution loss (``test.loss``, else
    ``val.loss``) as the law ``y = K (x - E_x)^kappa + E_y`` (``ecgsearch.analysis.loss_to_loss``), per
    paradigm when the trials vary it. None without an OOD loss that at least 5 trials have with the other."""
    trials = run.trials
    x_column = next((c for c in ("test.loss", "val.loss") if c in trials.columns
                     and pd.to_numeric(trials[c], errors="coerce").notna().any()), None)
    if x_column is None:
        return None
    ood = [c for c in trials.columns
           if OOD_LOSS.fullmatch(c) and len(loss_pairs(trials, x_column, c)) >= MIN_LOSS_PAIRS]
    if not ood:
        return None
    keys = group_keys(trials, PARADIGM) if _varies(trials, PARADIGM) else pd.Series("all trials", index=trials.index)
    section = Section("Loss-to-loss laws", "loss-to-loss",
                      f"Each trial's out-of-distribution loss against its in-distribution loss ({x_column}), fitted "
                      "as y = K (x - E_x)^kappa + E_y per paradigm (Brandfonbrener et al. 2024). kappa < 1: the OOD "
                      "loss falls faster than the in-distribution loss at first, then slower; E_y is the OOD loss "
                      "left when the in-distribution loss reaches its floor E_x. Two paradigms with different "
                      "laws transfer their in-distribution gains to the shifted data differently.")
    rows = []
    for column in ood:
        laws = {}
        for group in sorted(keys.unique()):
            pairs = loss_pairs(trials[keys == group], x_column, column)
            fit = _loss_law(pairs, x_column, column, f"{column} of {group}", section)
            laws[group] = (pairs, fit)
            if fit is not None:
                rows.append([column, group, str(fit.n), f"{fmt(fit.kappa, 3)} [{fmt(fit.kappa_ci[0], 3)}, "
                             f"{fmt(fit.kappa_ci[1], 3)}]", fmt(fit.e_x, 3), fmt(fit.e_y, 3), fmt(fit.k, 3),
                             str(len(fit.warnings))])
        section.show(figures.loss_to_loss(laws, x_column, column, f"{column} vs {x_column}",
                                          f"{column} vs {x_column}: each trial, and the law per group",
                                          name=f"loss-to-loss-{slug(column)}"))
    if rows:
        section.tables.append(Table("loss-to-loss laws (95% profile-likelihood interval of kappa in brackets)",
                                    ["OOD loss", "group", "trials", "kappa", "E_x", "E_y", "K", "warnings"], rows))
    return section


def latency_section(run: RunData, figures: Figures) -> Section | None:
    columns = latency_columns(run.trials)
    if not columns:
        return None
    rows = [[c.removeprefix("latency."), str(int(pd.to_numeric(run.trials[c], errors="coerce").notna().sum())),
             fmt(float(pd.to_numeric(run.trials[c], errors="coerce").median()), 3)] for c in columns]
    section = Section("Latency", "latency",
                      "Measured latency of every trial's model on each backend (box: quartiles, whiskers: 1.5 IQR). "
                      "Compare backends for the same models; the Pareto fronts above use the p50 columns as costs.",
                      tables=[Table("latency by backend", ["backend.percentile", "trials", "median (ms)"], rows)])
    section.show(figures.latency(run.trials, columns, "latency per backend and percentile"))
    return section


GROUP_TRIALS = 5  # the best trials drawn per source and per label group


def _filled(trials: pd.DataFrame, columns: dict[str, str]) -> dict[str, str]:
    """``columns`` ({label: column}) that hold a value for some trial."""
    return {label: c for label, c in columns.items() if pd.to_numeric(trials[c], errors="coerce").notna().any()}


def _across(run: RunData, figures: Figures, columns: dict[str, str], metric: str, what: str, title: str,
            anchor: str, note: str) -> Section:
    """The best trials' values across ``columns`` ({label: column}): a table and one line per trial."""
    ranked = run.trials.sort_values(run.column, ascending=run.mode == "min").head(GROUP_TRIALS)
    labels = list(columns)
    table = Table(f"test.{metric} per {what} of the {len(ranked)} best trials", ["trial_id", *labels],
                  [[str(row["trial_id"]), *(fmt(row[c]) for c in columns.values())] for _, row in ranked.iterrows()])
    section = Section(title, anchor, f"test.{metric} of the {len(ranked)} best trials (by {run.column}) {note}",
                      tables=[table])
    section.show(figures.groups(ranked, list(columns.values()), labels, f"test.{metric}",
                                f"test.{metric} per {what}, one line per trial", name=anchor))
    return section


def source_section(run: RunData, figures: Figures) -> Section | None:
    """The best trials' test metric on the records of each source the dataset names
    (``test.source.<source>.<metric>``: a PhysioNet 2021 record's hospital or database); None without sources."""
    columns = _filled(run.trials, source_columns(run.trials.columns, "test", run.metric))
    if not columns:
        return None
    return _across(run, figures, columns, run.metric, "source", "Per source", "sources",
                   "on the test records of each source the dataset names (a hospital, a database). A model good "
                   "on one source only is unlikely to transfer; small sources give noisy values.")


def _group_metric(run: RunData, split: str, columns_of: Callable[..., dict[str, str]]) -> tuple[str, dict[str, str]]:
    """The metric to show per label group or per source on ``split``, and its filled columns ({label: column},
    empty when there are none): the search metric when it is computed that way, else (``challenge_score``
    is not) the first macro-averaged metric, by name, that is."""
    macro = [info.name for info in get_registries().metrics if info.macro]
    for metric in dict.fromkeys((run.metric, *macro)):
        columns = _filled(run.trials, columns_of(run.trials.columns, split, metric))
        if columns:
            return metric, columns
    return run.metric, {}


def label_group_section(run: RunData, figures: Figures) -> Section | None:
    """The best trials' test metric on each label group the dataset declares (``test.<group>.<metric>``:
    PhysioNet 2021's arrhythmias, conduction disorders...; PTB-XL's superclasses), in the metric
    ``_group_metric`` picks; None for a dataset without label groups."""
    metric, columns = _group_metric(run, "test", label_group_columns)
    if not columns:
        return None
    return _across(run, figures, columns, metric, "label group", "Per label group", "label-groups",
                   "on each group of classes the dataset declares, the metric computed on that group's "
                   "classes alone. A group far below the others is a family of findings the design "
                   "misses, which the pooled average hides.")


SIZE_ENDINGS = (".depth", ".channels", ".width", ".kernel")  # the ResNet study's D, C and K hyperparameters


def size_columns(trials: pd.DataFrame) -> list[str]:
    """The ``hp.*`` columns of a depth, a width (channels) or a kernel size that take two values or more
    among ``trials``: the axes of a depth/channels/kernel study."""
    return [c for c in trials.columns if c.startswith("hp.") and c.endswith(SIZE_ENDINGS)
            and pd.to_numeric(trials[c], errors="coerce").nunique() >= 2]


def _trend(trials: pd.DataFrame, hp: str, columns: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean and standard error of each column ({label: column}) over the trials at each value of ``hp``
    (trials where it does not apply, another architecture's, left out); rows: the values, in order."""
    values = pd.DataFrame({label: pd.to_numeric(trials[c], errors="coerce") for label, c in columns.items()})
    grouped = values.groupby(pd.to_numeric(trials[hp], errors="coerce"), sort=True)
    return grouped.mean(), grouped.sem()


def _plus_minus(mean: float, error: float) -> str:
    """``0.812 ± 0.0034``: the error to two significant digits, however small (none for a single trial)."""
    return f"{fmt(mean, 3)} ± {error:.2g}" if np.isfinite(error) else fmt(mean, 3)


def size_section(run: RunData, figures: Figures) -> Section | None:
    """The validation metric per label group (and per source) against each depth, width and kernel size
    the trials vary (the ResNet D/C/K study): the mean over the trials at each value, with its standard
    error. None without label-group or source columns on the validation split, or without such a
    hyperparameter."""
    sizes = size_columns(run.trials)
    kinds = [(what, *_group_metric(run, "val", columns_of)) for what, columns_of in
             (("label group", label_group_columns), ("source", source_columns))]
    kinds = [(what, metric, columns) for what, metric, columns in kinds if columns]
    if not sizes or not kinds:
        return None
    section = Section("Per label group against depth, width and kernel", "label-groups-by-size",
                      "The validation metric of each label group (and each source) averaged over the trials at each "
                      "value of a depth, a width (channels) or a kernel size, with standard-error bars; trials of "
                      "other architectures, where the hyperparameter does not apply, are left out. Lines that "
                      "part as a hyperparameter grows show which findings need the larger model; a flat line, "
                      "one that does not.")
    for hp in sizes:
        for what, metric, columns in kinds:
            means, errors = _trend(run.trials, hp, columns)
            counts = pd.to_numeric(run.trials[hp], errors="coerce").value_counts()
            name = hp.removeprefix("hp.")
            section.show(figures.trend(means, errors, name, f"val.{metric}",
                                       f"val.{metric} per {what} against {name}, mean and standard error over trials",
                                       name=f"by-size-{slug(name)}-{'sources' if what == 'source' else 'groups'}"))
            section.tables.append(Table(f"val.{metric} per {what} against {name} (mean ± standard error)",
                                        [name, "trials", *means.columns],
                                        [[fmt(value), str(int(counts[value])),
                                          *(_plus_minus(means.at[value, c], errors.at[value, c])
                                            for c in means.columns)] for value in means.index]))
    return section


def next_steps_section(run: RunData) -> Section:
    """What to run next on this run, as commands with this run's own folder and values (each one exists
    and runs as printed: tests/test_doc_commands.py runs them)."""
    folder = shlex.quote(str(run.run_dir))
    flops = pd.to_numeric(run.trials.get("cost.flops", pd.Series(dtype=float)), errors="coerce").dropna()
    rows = []
    if len(flops):
        rows.append([f"ecgsearch scale {folder} --target-flops {float(flops.max()):.3g}",
                     "configurations near the largest trial's FLOPs, ranked by the surrogate; raise --target-flops "
                     "to scale up (with --space for a wider copy of the space file)"])
    if len(run.trials) >= PRUNE_MIN_TRIALS:
        rows.append([f"ecgsearch prune {folder}", "a narrower space file the results support, and the diff"])
    if not latency_columns(run.results):
        rows.append([f"ecgsearch bench {folder} --trials pareto --backend onnxruntime-cpu --backend openvino-cpu",
                     "measured latency of the Pareto-optimal trials on the deployment runtimes"])
    rows.append([f"ecgsearch export {folder} --format onnx --out {shlex.quote(str(run.run_dir / 'export'))}",
                 "the best trial as an ONNX model, checked against PyTorch"])
    return Section("What to run next", "next", "Commands for this run (copy them to a shell).",
                   tables=[Table("commands", ["command", "what it gives"], rows)])


def summary_rows(run: RunData) -> list[tuple[str, str]]:
    counts = ", ".join(f"{n} {s}" for s, n in run.results["status"].value_counts().items())
    spec = run.spec
    return [("run folder", str(run.run_dir)), ("space", f"{spec.name} (seed {spec.seed})"),
            ("data", f"{spec.data.dataset}, task {spec.task.name}"),
            ("metric", f"{run.column} ({run.mode})"),
            ("trials", f"{len(run.results)} ({counts}); {len(run.analysed_rows)} analysed (ok or stopped, with a "
                       "value)"),
            *([("repeats", describe(run.trials))] if run.repeated else []),
            ("budget", f"{spec.budget.trials} trials x {spec.budget.epochs} epochs"
                       f"{f' x {spec.budget.repeats} seeds' if spec.budget.repeats > 1 else ''}, "
                       f"scheduler {spec.budget.scheduler}")]


def all_sections(run: RunData, figures: Figures, surrogate: str, folds: int, bootstrap: int, seed: int,
                 train_records: int | None) -> list[Section]:
    sections = [best_section(run, figures), progress_section(run, figures), pareto_section(run, figures),
                *surrogate_sections(run, figures, surrogate, folds, seed),
                scaling_section(run, figures, bootstrap, seed, train_records)]
    optional = [scaling_groups_section(run, figures, seed, train_records), loss_to_loss_section(run, figures),
                source_section(run, figures), label_group_section(run, figures), size_section(run, figures),
                latency_section(run, figures)]  # None: nothing to show
    return sections + [section for section in optional if section is not None] + [next_steps_section(run)]

