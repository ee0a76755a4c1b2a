"""Scaling laws: error = E_inf + A * x^(-alpha) of the best trials against compute, parameters or data.

Error is ``1 - value`` for a metric that is maximised (scores bounded by 1: AUROC, challenge score,
F1) and the metric itself for one that is minimised (a loss, an MAE).

Which trials: the law describes the best error reachable at each x, so it is fitted to the lower
envelope of the trials. A plain Pareto front is biased: a cheap, poorly trained trial joins it whenever
no well-trained trial is as cheap (it fitted alpha 0.38-0.56 for a true 0.3), and noise knocks
well-trained trials off it. The envelope used here is the lowest-error trial of each cost bin (half a
decade of x wide, narrower when x spans less than three decades, so that at least six bins remain),
kept when it is also Pareto-optimal among those: a poorly trained trial whose cost is within a bin of a
well-trained one loses to it, and one that beats no cheaper bin is left out.

Fitting and intervals (``scaling_ci``): weighted least squares under additive or multiplicative noise,
profile-likelihood intervals for E_inf, A, alpha and the curve, and the union of both noise models'
intervals when the points cannot tell which holds. A fit lists in ``warnings`` why it should not be
trusted: too few points, too few decades of x, no bend (E_inf not determined), a parameter at its bound,
noise that changes with x in a way neither model describes.

The extrapolation check is the honest test of a law: fit on the trials with the smaller x (the lower
two thirds), predict the larger ones and report the relative error of those predictions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ecgsearch.analysis.pareto import non_dominated, pareto_front
from ecgsearch.analysis.repeats import SD, spread
from ecgsearch.analysis.scaling_ci import (
    ALPHA_BOUNDS,
    Intervals,
    e_bounds_of,
    fit_noise,
    preferred,
    profile_intervals,
    spread_trend,
)
from ecgsearch.errors import UserError
from ecgsearch.search.features import check_mode, metric_column

MIN_POINTS = 4  # three parameters and at least one residual degree of freedom
MIN_DISTINCT = 3  # a curve with an asymptote needs three distinct x values to be determined
TRUSTED_POINTS = 6  # intervals checked by simulation from here up (conservative below 10 points)
TRUSTED_DECADES = 2.0  # below, E_inf and alpha trade off and the law should not be extrapolated
BIN_DECADES = 0.5  # width of the cost bins of the envelope, in decades of x
MIN_BINS = 6  # bins are narrowed on a short x range so that at least this many remain
TREND_P = 0.01  # a rank correlation of residual size with log x this significant earns a warning
TREND_POINTS = 10  # fewer points cannot show a trend in the spread
PARAMS = ("e_inf", "a", "alpha")
NOISE_MODELS = ("additive", "multiplicative")

# axis name -> (results column, label); "data" is hp.data_fraction times the training records
AXES: dict[str, tuple[str, str]] = {
    "compute": ("cost.flops", "FLOPs per sample"),
    "parameters": ("cost.params", "parameters"),
    "data": ("hp.data_fraction", "training records"),
}


class ScalingError(UserError):
    """The points cannot determine a law (too few, one x value, non-positive x)."""


@dataclass(frozen=True)
class PowerLaw:
    """``e_inf + a * x ** -alpha`` in the units of x (a is large or small when x is)."""

    e_inf: float
    a: float
    alpha: float

    def __call__(self, x: Any) -> np.ndarray:
        return self.e_inf + self.a * np.asarray(x, dtype=float) ** -self.alpha


@dataclass(frozen=True)
class Extrapolation:
    """Fit on ``x <= split`` (``n_fit`` points), predict the ``n_test`` points above it."""

    split: float
    n_fit: int
    n_test: int
    x: np.ndarray  # the held-out x values
    actual: np.ndarray
    predicted: np.ndarray

    @property
    def relative_errors(self) -> np.ndarray:
        return np.abs(self.predicted - self.actual) / np.maximum(np.abs(self.actual), 1e-12)

    @property
    def mean_relative_error(self) -> float:
        return float(np.mean(self.relative_errors))

    @property
    def max_relative_error(self) -> float:
        return float(np.max(self.relative_errors))


@dataclass(frozen=True)
class ScalingFit:
    """A fitted law with profile-likelihood intervals, goodness of fit, the extrapolation check and the
    reasons not to trust it (``warnings``; empty when none applies)."""

    law: PowerLaw
    x: np.ndarray
    y: np.ndarray
    ci: Mapping[str, tuple[float, float]]  # e_inf, a, alpha -> (low, high) at ``level``
    level: float
    r2: float
    rmse: float
    extrapolation: Extrapolation | None = None
    extrapolation_note: str = ""  # why there is no extrapolation check, when there is none
    axis: str = "x"
    trial_ids: tuple[str, ...] = field(default_factory=tuple)
    noise: str = "additive"  # the noise model(s) behind the intervals: "additive or multiplicative" = union
    warnings: tuple[str, ...] = ()
    decades: float = 0.0  # log10 of the largest over the smallest x
    intervals: Intervals | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return len(self.x)

    @property
    def trusted(self) -> bool:
        return not self.warnings

    def predict(self, x: Any) -> np.ndarray:
        return self.law(x)

    def band(self, x: Any, level: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise ``level`` interval of the curve at ``x`` (profile likelihood of the curve's value)."""
        x = np.atleast_1d(np.asarray(x, dtype=float))
        if self.intervals is None:
            value = self.predict(x)
            return value, value
        low, high = self.intervals.band(x, self.level if level is None else level)
        return np.minimum(low, self.predict(x)), np.maximum(high, self.predict(x))


def check_points(x: np.ndarray, y: np.ndarray, what: str = "x") -> None:
    """A ``ScalingError`` sentence when ``(x, y)`` cannot determine the law."""
    if len(x) != len(y) or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ScalingError(f"x ({what}) and the errors must be finite numbers in pairs, and {len(x)} x values came "
                           f"with {len(y)} errors, {int((~np.isfinite(x)).sum()) + int((~np.isfinite(y)).sum())} "
                           "of them missing or infinite; leave those trials out.")
    distinct = len(np.unique(x))
    if len(x) < MIN_POINTS or distinct < MIN_DISTINCT:
        raise ScalingError(f"fitting error = E_inf + A * x^-alpha needs at least {MIN_POINTS} points at "
                           f"{MIN_DISTINCT} or more distinct values of x ({what}), and there are {len(x)} points "
                           f"at {distinct} distinct value{'s' if distinct != 1 else ''}; run more trials that "
                           f"differ in {what}.")
    if (x <= 0).any():
        raise ScalingError(f"{what} must be positive to fit a power law, and {int((x <= 0).sum())} of the points "
                           "are zero or negative; leave those trials out.")


def _to_law(p: np.ndarray, x0: float) -> PowerLaw:
    e_inf = 0.0 if abs(p[0]) < 1e-12 else float(p[0])  # at its bound, not a tiny measured asymptote
    return PowerLaw(e_inf=e_inf, a=float(p[1] * x0 ** p[2]), alpha=float(p[2]))


def fit_law(x: Any, y: Any, what: str = "x", noise: str = "additive") -> PowerLaw:
    """The least-squares law through ``(x, y)`` under ``noise`` (no intervals); ``ScalingError`` on
    degenerate input. Multiplicative noise needs positive errors (else the additive fit is returned)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    check_points(x, y, what)
    x0 = float(np.exp(np.mean(np.log(x))))
    noise = noise if (y > 0).all() else "additive"
    return _to_law(fit_noise(np.log(x / x0), y, noise, e_bounds_of(y)).params, x0)


def extrapolation_check(x: Any, y: Any, fraction: float = 2 / 3, what: str = "x",
                        noise: str = "additive") -> Extrapolation:
    """Fit on the points with the smallest x (``fraction`` of them, never splitting equal x values)
    and predict the rest; ``ScalingError`` when either part is too small."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    split = x[max(0, math.ceil(fraction * len(x)) - 1)] if len(x) else 0.0
    fit_part, test_part = x <= split, x > split
    if test_part.sum() < 1:
        raise ScalingError(f"the extrapolation check predicts the points above the lower {fraction:.0%} of x "
                           f"({what}), and none of the {len(x)} points lies above x = {split:.3g}; run trials "
                           f"at larger {what}.")
    try:
        law = fit_law(x[fit_part], y[fit_part], what=what, noise=noise)
    except ScalingError as error:
        raise ScalingError(f"extrapolation check (fit on the lower {fraction:.0%}): {error}") from None
    return Extrapolation(split=float(split), n_fit=int(fit_part.sum()), n_test=int(test_part.sum()),
                         x=x[test_part], actual=y[test_part], predicted=law(x[test_part]))


def trust_warnings(x: np.ndarray, y: np.ndarray, result: Intervals, ci: Mapping[str, tuple[float, float]],
                   what: str = "x") -> tuple[str, ...]:
    """Why the law should not be trusted, one sentence each (none: the intervals hold as simulated)."""
    notes, decades = [], float(np.log10(x.max() / x.min()))
    if len(x) < TRUSTED_POINTS:
        notes.append(f"only {len(x)} points: the intervals are checked by simulation from {TRUSTED_POINTS} points up, "
                     "and so few cannot show whether the law's shape fits")
    if decades < TRUSTED_DECADES:
        notes.append(f"x ({what}) spans only {decades:.1f} decades: too short a range to tell E_inf from alpha, so "
                     "the law should not be extrapolated")
    low_e, high_e = e_bounds_of(y)
    if ci["e_inf"][0] <= low_e + 1e-12 * max(abs(high_e), 1.0):
        notes.append("no bend: E_inf = 0 (a straight line on log-log axes) is inside its interval, so the floor "
                     "is not determined and alpha and A depend on assuming one")
    elif ci["e_inf"][1] >= high_e * (1 - 1e-9):
        notes.append("no decrease to speak of: E_inf's interval reaches the largest error, so the points do not "
                     "show how error falls with x")
    at_bound = [f"{bound:g}" for bound, end in zip(ALPHA_BOUNDS, ci["alpha"]) if abs(end - bound) <= 1e-9 * bound]
    if at_bound:
        notes.append(f"alpha's interval reaches its bound{'s' if len(at_bound) > 1 else ''} {' and '.join(at_bound)}: "
                     "alpha is not determined")
    if len(x) >= TREND_POINTS and spread_trend(x, y, result) < TREND_P:
        notes.append(f"the spread of the residuals changes with x in a way the {result.noise} noise model does "
                     "not describe, so the intervals may be too narrow")
    return tuple(notes)


def fit_power_law(x: Any, y: Any, bootstrap: int = 500, level: float = 0.95, seed: int = 0,
                  extrapolate: float | None = 2 / 3, what: str = "x", noise: str | None = None) -> ScalingFit:
    """Fit ``y = E_inf + A x^-alpha`` with ``level`` profile-likelihood intervals and the extrapolation check.

    x: positive values (FLOPs, parameters, records); y: errors (lower is better); noise: force
    ``additive`` or ``multiplicative`` (default: chosen from the points, or both when they cannot tell).
    ``bootstrap`` and ``seed`` are accepted for existing callers and unused (nothing is resampled).
    Raises ``ScalingError`` with the reason when the points cannot determine the law.
    """
    del bootstrap, seed  # the intervals are profile likelihood: deterministic, nothing to resample
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    check_points(x, y, what)
    if noise is not None and noise not in NOISE_MODELS:
        raise ScalingError(f"noise={noise!r} is not a noise model; pass one of {', '.join(NOISE_MODELS)} or None.")
    if noise == "multiplicative" and (y <= 0).any():
        raise ScalingError(f"multiplicative noise needs positive errors, and {int((y <= 0).sum())} are zero or "
                           "negative; use noise='additive'.")
    result = profile_intervals(x, y, noise)
    law = _to_law(result.params, result.x0)
    ci = {name: result.interval(name, level) for name in PARAMS}
    residuals = y - law(x)
    total, sse = float(np.sum((y - y.mean()) ** 2)), float(np.sum(residuals ** 2))
    extrapolation, note = None, ""
    if extrapolate is not None:
        try:
            extrapolation = extrapolation_check(x, y, extrapolate, what, noise=preferred(result.chosen).noise)
        except ScalingError as error:
            note = str(error)
    return ScalingFit(law=law, x=x, y=y, ci=ci, level=level, r2=1 - sse / total if total > 0 else float("nan"),
                      rmse=math.sqrt(sse / len(x)), extrapolation=extrapolation, extrapolation_note=note,
                      axis=what, noise=result.noise, warnings=trust_warnings(x, y, result, ci, what),
                      decades=float(np.log10(x.max() / x.min())), intervals=result)


def error_values(frame: pd.DataFrame, metric: str, mode: str) -> pd.Series:
    """The error of every row: ``1 - value`` for a max-metric, the value for a min-metric (NaN kept)."""
    values = pd.to_numeric(frame[metric_column(frame, metric)], errors="coerce").astype(float)
    return 1.0 - values if check_mode(mode) == "max" else values


def axis_values(frame: pd.DataFrame, axis: str, train_records: int | None = None) -> pd.Series:
    """x of every row on ``axis`` (compute, parameters or data; data = data_fraction x train_records,
    or the fraction alone when ``train_records`` is None; trials without the column used all data)."""
    if axis not in AXES:
        raise UserError(f"scaling axis {axis!r} is not one of {', '.join(AXES)}; pick one of those.")
    column = AXES[axis][0]
    if axis == "data":
        fraction = pd.to_numeric(frame[column], errors="coerce") if column in frame else \
            pd.Series(1.0, index=frame.index)
        return fraction.astype(float) * (train_records or 1)
    if column not in frame.columns:
        raise UserError(f"the results have no column '{column}' for the {axis} axis; the run recorded no "
                        f"{AXES[axis][1]} (rerun with a version of ecgsearch that records costs).")
    return pd.to_numeric(frame[column], errors="coerce").astype(float)


def axis_label(axis: str, train_records: int | None = None) -> str:
    if axis == "data" and not train_records:
        return "fraction of the training split"
    return AXES[axis][1]


def envelope(x: Any, error: Any, bin_decades: float | None = BIN_DECADES) -> np.ndarray:
    """Mask of the trials the law is fitted to: the lowest error of each cost bin (``bin_decades`` wide,
    narrowed to leave ``MIN_BINS`` bins on a short range), kept when Pareto-optimal among those; with
    ``bin_decades=None``, every Pareto-optimal trial."""
    x, error = np.asarray(x, dtype=float), np.asarray(error, dtype=float)
    if not len(x) or bin_decades is None:
        return non_dominated(x, -error)
    log_x = np.log10(x)
    width = min(bin_decades, max(float(np.ptp(log_x)), 1e-12) / MIN_BINS)
    bins = np.floor((log_x - log_x.min()) / width + 1e-9).astype(int)
    lowest = np.full(int(bins.max()) + 1, np.inf)
    np.minimum.at(lowest, bins, error)  # each bin's lowest error (a pandas groupby costs 30x more here)
    lowest = lowest[bins]
    best = error == lowest
    keep = np.zeros(len(x), dtype=bool)
    keep[np.flatnonzero(best)[non_dominated(x[best], -error[best])]] = True
    return keep


def scaling_points(frame: pd.DataFrame, metric: str, mode: str, axis: str, train_records: int | None = None,
                   bin_decades: float | None = BIN_DECADES) -> pd.DataFrame:
    """Every trial with a finite error and x > 0 on ``axis``: trial_id, x, error, pareto (bool: on the
    Pareto front) and envelope (bool: what the law is fitted to, see ``envelope``); with repeats (a
    configuration per row, ``repeats.per_config``) also ``error.sd``, the standard deviation over seeds."""
    sd = spread(frame, metric_column(frame, metric))
    points = pd.DataFrame({
        "trial_id": frame["trial_id"].astype(str) if "trial_id" in frame else frame.index.astype(str),
        "x": axis_values(frame, axis, train_records), "error": error_values(frame, metric, mode),
        **({"error" + SD: sd} if sd is not None else {})}, index=frame.index)
    points = points[np.isfinite(points["x"]) & np.isfinite(points["error"]) & (points["x"] > 0)]
    front = pareto_front(points, "error", "min", cost="x")
    return points.assign(pareto=points.index.isin(front.index),
                         envelope=envelope(points["x"], points["error"], bin_decades))


def fit_scaling(frame: pd.DataFrame, metric: str, mode: str, axis: str = "compute", pareto: bool = True,
                train_records: int | None = None, bootstrap: int = 500, level: float = 0.95,
                seed: int = 0, bin_decades: float | None = BIN_DECADES) -> ScalingFit:
    """The law of a results table on one axis, fitted on its lower envelope (``pareto=False``: on every
    trial; ``bin_decades=None``: on every Pareto-optimal trial). ``bootstrap`` and ``seed`` are unused."""
    points = scaling_points(frame, metric, mode, axis, train_records, bin_decades)
    if pareto:
        points = points[points["envelope"]]
    try:
        fit = fit_power_law(points["x"], points["error"], bootstrap=bootstrap, level=level, seed=seed,
                            what=axis_label(axis, train_records))
    except ScalingError as error:
        used = "trials on the lower envelope" if pareto else "trials"
        raise ScalingError(f"scaling law on the {axis} axis ({len(points)} {used}): {error}") from None
    return replace(fit, axis=axis, trial_ids=tuple(points["trial_id"]))
