"""Scaling laws: error = E_inf + A * x^(-alpha) of the best trials against compute, parameters or data.

Error is ``1 - value`` for a metric that is maximised (scores bounded by 1: AUROC, challenge score,
F1) and the metric itself for one that is minimised (a loss, an MAE). The law is fitted to the
Pareto-optimal trials (the lowest error reached at each x or below it), as neural scaling studies fit
the frontier rather than the cloud of all trials.

Fitting: for a fixed alpha the law is linear in (E_inf, A), so a grid over alpha with a bounded linear
least-squares solve gives a start that cannot be far off; ``scipy.optimize.least_squares`` then refines
all three (E_inf in [0, max error] for non-negative errors, A >= 0, alpha in [1e-3, 5]), on x divided
by its geometric mean for conditioning. Confidence intervals come from a residual bootstrap (the x
values stay fixed, residuals are resampled), which behaves at the handful of frontier points a search
gives, where resampling the points themselves would often leave too few distinct x values.

The extrapolation check is the honest test of a law: fit on the trials with the smaller x (the lower
two thirds), predict the larger ones and report the relative error of those predictions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy.optimize import least_squares, lsq_linear

from ecgsearch.analysis.pareto import pareto_front
from ecgsearch.errors import UserError
from ecgsearch.search.features import check_mode, metric_column

MIN_POINTS = 4  # three parameters and at least one residual degree of freedom
MIN_DISTINCT = 3  # a curve with an asymptote needs three distinct x values to be determined
ALPHA_BOUNDS = (1e-3, 5.0)
_ALPHA_GRID = np.geomspace(0.01, 4.0, 48)
PARAMS = ("e_inf", "a", "alpha")

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
    """A fitted law with bootstrap intervals, goodness of fit and the extrapolation check."""

    law: PowerLaw
    x: np.ndarray
    y: np.ndarray
    ci: Mapping[str, tuple[float, float]]  # e_inf, a, alpha -> (low, high) at ``level``
    level: float
    r2: float
    rmse: float
    boot: np.ndarray  # (resamples, 3) bootstrap parameters, columns as PARAMS
    extrapolation: Extrapolation | None = None
    extrapolation_note: str = ""  # why there is no extrapolation check, when there is none
    axis: str = "x"
    trial_ids: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n(self) -> int:
        return len(self.x)

    def predict(self, x: Any) -> np.ndarray:
        return self.law(x)

    def band(self, x: Any, level: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise ``level`` interval of the fitted curve at ``x`` over the bootstrap laws."""
        level = self.level if level is None else level
        x = np.atleast_1d(np.asarray(x, dtype=float))
        if not len(self.boot):
            value = self.predict(x)
            return value, value
        curves = self.boot[:, 0:1] + self.boot[:, 1:2] * x[None, :] ** -self.boot[:, 2:3]
        tail = 100 * (1 - level) / 2
        return np.percentile(curves, tail, axis=0), np.percentile(curves, 100 - tail, axis=0)


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


def _linear_step(z: np.ndarray, y: np.ndarray, e_bounds: tuple[float, float]) -> tuple[np.ndarray, float]:
    """Best (E_inf, A) for one basis ``z = u^-alpha`` under the bounds, and its sum of squares."""
    matrix = np.column_stack([np.ones_like(z), z])
    solved = lsq_linear(matrix, y, bounds=([e_bounds[0], 0.0], [e_bounds[1], np.inf]))
    return solved.x, float(np.sum((matrix @ solved.x - y) ** 2))


def _fit_normalised(u: np.ndarray, y: np.ndarray, e_bounds: tuple[float, float],
                    start: np.ndarray | None = None) -> np.ndarray:
    """(E_inf, A0, alpha) of ``y = E_inf + A0 * u^-alpha`` by least squares (u = x / x0)."""
    if start is None:
        trials = [(*_linear_step(u ** -alpha, y, e_bounds), alpha) for alpha in _ALPHA_GRID]
        (e0, a0), _, alpha0 = min(trials, key=lambda t: t[1])
        start = np.array([e0, a0, alpha0])
    log_u = np.log(u)

    def residuals(p: np.ndarray) -> np.ndarray:
        return p[0] + p[1] * np.exp(-p[2] * log_u) - y

    def jacobian(p: np.ndarray) -> np.ndarray:
        z = np.exp(-p[2] * log_u)
        return np.column_stack([np.ones_like(z), z, -p[1] * log_u * z])

    lower, upper = [e_bounds[0], 0.0, ALPHA_BOUNDS[0]], [e_bounds[1], np.inf, ALPHA_BOUNDS[1]]
    start = np.clip(start, np.array(lower) + 1e-12 * np.isfinite(lower),
                    np.where(np.isfinite(upper), np.array(upper) - 1e-12, np.inf))
    return least_squares(residuals, start, jac=jacobian, bounds=(lower, upper), method="trf").x


def _to_law(p: np.ndarray, x0: float) -> PowerLaw:
    e_inf = 0.0 if abs(p[0]) < 1e-12 else float(p[0])  # at its bound, not a tiny measured asymptote
    return PowerLaw(e_inf=e_inf, a=float(p[1] * x0 ** p[2]), alpha=float(p[2]))


def _e_bounds(y: np.ndarray) -> tuple[float, float]:
    return (0.0 if (y >= 0).all() else -np.inf, float(np.max(y)))


def fit_law(x: Any, y: Any, what: str = "x") -> PowerLaw:
    """The least-squares law through ``(x, y)`` (no intervals); ``ScalingError`` on degenerate input."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    check_points(x, y, what)
    x0 = float(np.exp(np.mean(np.log(x))))
    return _to_law(_fit_normalised(x / x0, y, _e_bounds(y)), x0)


def extrapolation_check(x: Any, y: Any, fraction: float = 2 / 3, what: str = "x") -> Extrapolation:
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
        law = fit_law(x[fit_part], y[fit_part], what=what)
    except ScalingError as error:
        raise ScalingError(f"extrapolation check (fit on the lower {fraction:.0%}): {error}") from None
    return Extrapolation(split=float(split), n_fit=int(fit_part.sum()), n_test=int(test_part.sum()),
                         x=x[test_part], actual=y[test_part], predicted=law(x[test_part]))


def fit_power_law(x: Any, y: Any, bootstrap: int = 500, level: float = 0.95, seed: int = 0,
                  extrapolate: float | None = 2 / 3, what: str = "x") -> ScalingFit:
    """Fit ``y = E_inf + A x^-alpha`` with ``level`` bootstrap intervals and the extrapolation check.

    x: positive values (FLOPs, parameters, records); y: errors (lower is better). Raises
    ``ScalingError`` with the reason when the points cannot determine the law.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    check_points(x, y, what)
    x0 = float(np.exp(np.mean(np.log(x))))
    u, e_bounds = x / x0, _e_bounds(y)
    best = _fit_normalised(u, y, e_bounds)
    fitted = best[0] + best[1] * u ** -best[2]
    residuals = y - fitted
    n = len(x)
    # residuals shrink by sqrt((n - p) / n) in a fit with p parameters: rescale before resampling
    pool = (residuals - residuals.mean()) * math.sqrt(n / max(n - len(PARAMS), 1))
    rng = np.random.default_rng(seed)
    boot = np.array([_fit_normalised(u, fitted + rng.choice(pool, size=n, replace=True), e_bounds, start=best)
                     for _ in range(bootstrap)]).reshape(-1, 3)
    boot[:, 1] = boot[:, 1] * x0 ** boot[:, 2]  # A in the units of x
    tail = 100 * (1 - level) / 2
    ci = {name: (float(np.percentile(boot[:, i], tail)), float(np.percentile(boot[:, i], 100 - tail)))
          for i, name in enumerate(PARAMS)} if len(boot) else {}
    total = float(np.sum((y - y.mean()) ** 2))
    sse = float(np.sum(residuals ** 2))
    extrapolation, note = None, ""
    if extrapolate is not None:
        try:
            extrapolation = extrapolation_check(x, y, extrapolate, what)
        except ScalingError as error:
            note = str(error)
    return ScalingFit(law=_to_law(best, x0), x=x, y=y, ci=ci, level=level,
                      r2=1 - sse / total if total > 0 else float("nan"), rmse=math.sqrt(sse / n), boot=boot,
                      extrapolation=extrapolation, extrapolation_note=note, axis=what)


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


def scaling_points(frame: pd.DataFrame, metric: str, mode: str, axis: str,
                   train_records: int | None = None) -> pd.DataFrame:
    """Every trial with a finite error and x > 0 on ``axis``: trial_id, x, error, pareto (bool)."""
    points = pd.DataFrame({
        "trial_id": frame["trial_id"].astype(str) if "trial_id" in frame else frame.index.astype(str),
        "x": axis_values(frame, axis, train_records), "error": error_values(frame, metric, mode)},
        index=frame.index)
    points = points[np.isfinite(points["x"]) & np.isfinite(points["error"]) & (points["x"] > 0)]
    front = pareto_front(points, "error", "min", cost="x")
    return points.assign(pareto=points.index.isin(front.index))


def fit_scaling(frame: pd.DataFrame, metric: str, mode: str, axis: str = "compute", pareto: bool = True,
                train_records: int | None = None, bootstrap: int = 500, level: float = 0.95,
                seed: int = 0) -> ScalingFit:
    """The law of a results table on one axis, fitted on its Pareto-optimal trials (or all of them)."""
    points = scaling_points(frame, metric, mode, axis, train_records)
    if pareto:
        points = points[points["pareto"]]
    try:
        fit = fit_power_law(points["x"], points["error"], bootstrap=bootstrap, level=level, seed=seed,
                            what=axis_label(axis, train_records))
    except ScalingError as error:
        used = "Pareto-optimal trials" if pareto else "trials"
        raise ScalingError(f"scaling law on the {axis} axis ({len(points)} {used}): {error}") from None
    return replace(fit, axis=axis, trial_ids=tuple(points["trial_id"]))
