"""Learning-curve extrapolation: the final value of a partly trained trial, from its partial curve, and the
stopping rule that uses it (the ``learning_curve`` scheduler plugin wraps ``LearningCurveRule``).

``predict_final`` fits three parametric families to the values reported so far (signed: larger better),
each linear in its two coefficients once its shape is fixed, over a grid of shapes:

- ``pow``: ``c - a * t^-alpha`` (pow3, the usual best single model of learning curves), alpha on a grid;
- ``exp``: ``c - a * exp(-t / tau)``, the time constant tau on a grid up to twice the horizon;
- ``log``: ``c + a * log(t)`` (keeps growing: the optimistic member).

Every (family, shape) is a least-squares line in its transformed time, so the fit is closed form and
vectorised (no optimiser, no starting points, no failures); the prediction at the horizon of each is a
Student-t with the residuals' scale and the line's extrapolation variance (n - 2 degrees of freedom), and
the models are averaged with weights proportional to their likelihood (equal prior mass per family), so
shapes the data cannot tell apart all count and their disagreement widens the prediction. A residual
scale floor (1% of the observed range) keeps a smooth curve from making the fit overconfident.

``LearningCurveRule`` decides, at each reported epoch of a trial, whether it should stop: after
``grace_period`` epochs (and at least 3 points, so the fit has a residual), a trial stops when its best
value so far and the upper ``confidence`` bound of its predicted best value still to come both fall below
the threshold: with ``compare="all"`` (the default), the ``top_k``-th best value any trial has reported so
far (once ``top_k`` trials reported), so stopping starts before any trial has run all epochs; with
``compare="completed"``, the ``top_k``-th best value of the trials that ran all epochs (once
``max(top_k, min_curves)`` did).
The bound is calibrated on the completed trials' curves: each is cut at the same epoch and predicted, and
the bound is widened (never narrowed) until it covers the ``confidence`` share of their actual later best
values (uncalibrated while fewer than ``min_curves`` completed). The rule is pure (no Ray): the scheduler
plugin feeds it Tune's reports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq
from scipy.stats import t as student_t

MIN_POINTS = 3  # a two-coefficient fit needs a third point for a residual
FAILED_VALUE = 1e29  # reports at or beyond this magnitude are failure sentinels (the engine's worst objective)
ALPHAS = np.geomspace(0.05, 4.0, 24)  # pow shapes
TAU_FACTORS = np.geomspace(0.02, 2.0, 24)  # exp time constants, as fractions of the horizon
FAMILIES = ("pow", "exp", "log")
NOISE_FLOOR = 0.01  # the residual scale's floor, as a fraction of the observed range
COMPARE = ("completed", "all")  # what the top k is taken from: trials that ran all epochs, or every report


@dataclass(frozen=True)
class CurvePrediction:
    """The predicted value at the horizon (signed: larger better): the ensemble's mean and standard
    deviation, its upper bound at ``confidence``, and each family's share of the weight."""

    mean: float
    std: float
    upper: float
    confidence: float
    weights: Mapping[str, float] = field(default_factory=dict)


def _shapes(horizon: float) -> tuple[np.ndarray, np.ndarray]:
    """Each model's time transform as (family index per model, function parameters)."""
    family = np.concatenate([np.zeros(len(ALPHAS)), np.ones(len(TAU_FACTORS)), [2]]).astype(int)
    shape = np.concatenate([ALPHAS, TAU_FACTORS * horizon, [0.0]])
    return family, shape


def _transform(t: np.ndarray, family: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """g(t) per model (rows) and time (columns): the regressor each family is linear in."""
    t = np.asarray(t, dtype=float)[None, :]
    fam, sh = family[:, None], shape[:, None]
    with np.errstate(over="ignore", under="ignore"):
        power = -np.power(t, -np.where(fam == 0, sh, 1.0))
        decay = -np.exp(-t / np.where(fam == 1, sh, 1.0))
    return np.where(fam == 0, power, np.where(fam == 1, decay, np.log(t)))


def _clean(values: Sequence[float], epochs: Sequence[float] | None) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(values, dtype=float)
    t = np.arange(1, len(y) + 1, dtype=float) if epochs is None else np.asarray(epochs, dtype=float)
    if t.shape != y.shape:
        raise ValueError(f"epochs ({t.shape[0]}) and values ({y.shape[0]}) differ in length")
    keep = np.isfinite(y) & (np.abs(y) < FAILED_VALUE) & np.isfinite(t) & (t > 0)
    return t[keep], y[keep]


def predict_final(values: Sequence[float], horizon: float, *, confidence: float = 0.9,
                  epochs: Sequence[float] | None = None) -> CurvePrediction | None:
    """The value a curve reaches at epoch ``horizon``, from ``values`` at ``epochs`` (1, 2, ... unless
    given), larger better; None with fewer than 3 usable points. Failure sentinels and non-finite values
    are left out."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    t, y = _clean(values, epochs)
    n = len(y)
    if n < MIN_POINTS:
        return None
    family, shape = _shapes(float(horizon))
    g = _transform(t, family, shape)  # (models, n)
    g_final = _transform(np.array([float(horizon)]), family, shape)[:, 0]
    g_mean = g.mean(axis=1)
    centred = g - g_mean[:, None]
    sxx = np.einsum("ij,ij->i", centred, centred)
    y_mean = y.mean()
    sxy = centred @ (y - y_mean)
    usable = sxx > 1e-12 * max(1.0, float(np.abs(g).max()))  # a shape flat over the observed epochs says nothing
    slope = np.where(usable, sxy / np.where(usable, sxx, 1.0), 0.0)
    sse = np.maximum(float(((y - y_mean) ** 2).sum()) - slope * sxy, 0.0)
    spread = float(y.max() - y.min())
    floor = max(NOISE_FLOOR * spread, 1e-9 * max(1.0, abs(y_mean)))
    dof = n - 2
    s2 = np.maximum(sse / dof, floor ** 2)
    mean = y_mean + slope * (g_final - g_mean)
    leverage = 1.0 + 1.0 / n + np.where(usable, (g_final - g_mean) ** 2 / np.where(usable, sxx, 1.0), 0.0)
    scale = np.sqrt(s2 * leverage)
    # likelihood weights (the residual scale profiled out), equal prior mass per family
    prior = np.array([1.0 / np.sum(family == f) for f in family]) * usable
    log_likelihood = -0.5 * n * np.log(np.maximum(sse, n * floor ** 2))
    log_w = np.where(prior > 0, np.log(np.where(prior > 0, prior, 1.0)) + log_likelihood, -np.inf)
    weights = np.exp(log_w - log_w.max())
    weights /= weights.sum()
    student_var = scale ** 2 * (dof / (dof - 2)) if dof > 2 else np.full_like(scale, np.inf)
    ens_mean = float(weights @ mean)
    ens_var = float(weights @ (student_var + mean ** 2) - ens_mean ** 2) if dof > 2 else math.inf
    upper = _mixture_quantile(confidence, mean, scale, weights, dof)
    shares = {name: float(weights[family == i].sum()) for i, name in enumerate(FAMILIES)}
    return CurvePrediction(ens_mean, math.sqrt(max(ens_var, 0.0)), upper, confidence, shares)


def _mixture_quantile(q: float, mean: np.ndarray, scale: np.ndarray, weights: np.ndarray, dof: int) -> float:
    """The ``q`` quantile of the weighted mixture of Student-t's (``dof`` degrees of freedom)."""
    live = weights > 1e-12
    mean, scale, weights = mean[live], scale[live], weights[live] / weights[live].sum()

    def cdf(x: float) -> float:
        return float(weights @ student_t.cdf((x - mean) / scale, dof)) - q

    reach = float(student_t.ppf(1 - (1 - q) * 1e-3, dof))  # far enough out for every member
    low, high = float((mean - reach * scale).min()), float((mean + reach * scale).max())
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return float(mean @ weights)
    return float(brentq(cdf, low, high, xtol=1e-9 * max(1.0, abs(high)), rtol=1e-10))


@dataclass
class LearningCurveRule:
    """Stops trials whose predicted best value cannot reach the current top ``top_k``; see the module
    docstring. ``horizon``: the epochs a trial runs in all (budget.epochs); ``mode``: ``max`` or ``min``
    (values are signed internally, larger better)."""

    horizon: int
    mode: str = "max"
    grace_period: int = 3
    top_k: int = 3
    confidence: float = 0.7
    min_curves: int = 3
    compare: str = "all"
    curves: dict[str, dict[int, float]] = field(default_factory=dict, repr=False)  # running trials
    completed: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # signed, epochs 1..horizon
    stopped: set[str] = field(default_factory=set, repr=False)
    bests: dict[str, float] = field(default_factory=dict, repr=False)  # every trial's best report (signed)
    _cache: dict[tuple[str, int], float] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {self.mode!r}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")
        if self.compare not in COMPARE:
            raise ValueError(f"compare must be one of {COMPARE}, got {self.compare!r}")
        if self.top_k < 1 or self.min_curves < 1 or self.grace_period < 1 or self.horizon < 1:
            raise ValueError("horizon, grace_period, top_k and min_curves must be at least 1")

    @property
    def sign(self) -> float:
        return 1.0 if self.mode == "max" else -1.0

    def threshold(self) -> float | None:
        """The ``top_k``-th best value (signed) among the trials that ran all epochs (``compare="completed"``;
        None while fewer than ``max(top_k, min_curves)`` did), or among every trial's best report so far
        (``compare="all"``; None while fewer than ``top_k`` trials reported)."""
        if self.compare == "all":
            values = list(self.bests.values())
        elif len(self.completed) >= max(self.top_k, self.min_curves):
            values = [float(np.nanmax(c)) for c in self.completed.values()]
        else:
            return None
        return sorted(values, reverse=True)[self.top_k - 1] if len(values) >= self.top_k else None

    def report(self, trial_id: str, iteration: int, value: float) -> bool:
        """Record ``value`` at epoch ``iteration`` (as reported: the rule signs it); True when the trial
        should stop now."""
        curve = self.curves.setdefault(trial_id, {})
        number = float(value)
        if math.isfinite(number) and abs(number) < FAILED_VALUE:
            curve[int(iteration)] = self.sign * number
            self.bests[trial_id] = max(self.bests.get(trial_id, -math.inf), self.sign * number)
        if iteration >= self.horizon or iteration < max(self.grace_period, MIN_POINTS):
            return False
        threshold = self.threshold()
        if threshold is None or len(curve) < MIN_POINTS:
            return False
        best = max(curve.values())
        if best >= threshold:
            return False
        stop = self.optimistic(trial_id, int(iteration)) < threshold
        if stop:
            self.stopped.add(trial_id)
        return stop

    def optimistic(self, trial_id: str, iteration: int) -> float:
        """The calibrated upper bound of the trial's best value after ``iteration`` (signed)."""
        epochs = sorted(k for k in self.curves[trial_id] if k <= iteration)
        values = [self.curves[trial_id][k] for k in epochs]
        prediction = predict_final(values, self.horizon, confidence=self.confidence, epochs=epochs)
        if prediction is None:
            return math.inf
        return prediction.mean + self.inflation(len(epochs)) * (prediction.upper - prediction.mean)

    def inflation(self, points: int) -> float:
        """How much the bound must widen to cover the ``confidence`` share of the completed curves' later
        best values when they are cut after ``points`` epochs (at least 1: the bound is never narrowed)."""
        ratios = []
        for trial_id, curve in self.completed.items():
            key = (trial_id, points)
            if key not in self._cache:
                self._cache[key] = _coverage_ratio(curve, points, self.horizon, self.confidence)
            if math.isfinite(self._cache[key]):
                ratios.append(self._cache[key])
        if len(ratios) < self.min_curves:
            return 1.0
        return max(1.0, float(np.quantile(ratios, self.confidence)))

    def complete(self, trial_id: str) -> None:
        """The trial ended: a curve that reached the horizon joins the completed ones."""
        curve = self.curves.pop(trial_id, None)
        if not curve or max(curve) < self.horizon or trial_id in self.stopped:
            return
        full = np.full(self.horizon, np.nan)
        for epoch, value in curve.items():
            if 1 <= epoch <= self.horizon:
                full[epoch - 1] = value
        if np.isfinite(full).any():
            self.completed[trial_id] = full

    def remove(self, trial_id: str) -> None:
        """The trial is gone (an error, removed by Tune) without a usable curve."""
        self.curves.pop(trial_id, None)


def _coverage_ratio(curve: np.ndarray, points: int, horizon: int, confidence: float) -> float:
    """For a completed curve cut after ``points`` epochs: (its best value after the cut - predicted mean) /
    (predicted upper bound - predicted mean); NaN when it cannot be predicted."""
    head, tail = curve[:points], curve[points:]
    if not np.isfinite(tail).any():
        return math.nan
    epochs = np.arange(1, points + 1)
    prediction = predict_final(head, horizon, confidence=confidence, epochs=epochs)
    if prediction is None or not prediction.upper > prediction.mean:
        return math.nan
    return (float(np.nanmax(tail)) - prediction.mean) / (prediction.upper - prediction.mean)
