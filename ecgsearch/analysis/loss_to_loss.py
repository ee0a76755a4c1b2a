"""Loss-to-loss laws: how one loss follows another across models (out-of-distribution loss against the
in-distribution loss, a downstream loss against the pretraining loss).

The law is the shifted power law of loss-to-loss prediction (Brandfonbrener et al. 2024):

    y = K * (x - E_x)^kappa + E_y

with ``x`` the loss a model reaches on one distribution, ``y`` its loss on the other, ``E_x`` and ``E_y``
the irreducible parts of each (where the curve would start if models could reach ``E_x``) and ``kappa`` the
exponent the study reads (kappa < 1: the second loss improves faster than the first at first, then slower).

Fitting: least squares on ``y`` (``x`` taken as exact, the same as treating a model's measured loss on a
large validation split as known). For a fixed ``kappa`` and ``E_x`` the law is linear in ``K`` and
``E_y``, so those come in closed form; ``E_x`` is a bounded one-dimensional search below ``min(x)``
(and at or above 0 when every loss is positive); ``kappa`` is profiled on a grid refined around its
optimum. Interval for ``kappa``: the profile-likelihood (F) interval, the exponents whose best residual
sum of squares stays below ``SSE_min * (1 + F(level; 1, n - 4) / (n - 4))``. It is conservative: E_x and
kappa trade off along the curve, so the statistic is smaller than its F approximation and the interval
held the planted exponent in 98-100% of simulated data sets for a nominal 95% (12-20 points, additive
noise; ``tests/test_loss_to_loss.py`` checks it holds at least the nominal level). A parametric-bootstrap
calibration of the threshold was tried and still covered 97-100% at four times the cost. The other
parameters are point estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ecgsearch.errors import UserError

PARAMS = 4  # K, kappa, E_x, E_y
MIN_POINTS = PARAMS + 1  # one residual degree of freedom
TRUSTED_POINTS = 8  # below, the interval's coverage was not checked by simulation
KAPPA_BOUNDS = (0.02, 50.0)
K_GRID = 120  # profile points for kappa, log-spaced over KAPPA_BOUNDS
E_GRID = 64  # points of the E_x search for each kappa


class LossToLossError(UserError):
    """The points cannot determine a loss-to-loss law (the message says why and what to do)."""


@dataclass(frozen=True)
class LossToLossFit:
    """``y = K (x - E_x)^kappa + E_y`` fitted to ``(x, y)``, with the ``level`` interval of ``kappa`` and the
    reasons not to trust it (``warnings``; empty when none applies)."""

    k: float
    kappa: float
    e_x: float
    e_y: float
    kappa_ci: tuple[float, float]
    level: float
    x: np.ndarray
    y: np.ndarray
    rmse: float
    warnings: tuple[str, ...] = ()
    x_name: str = "x"
    y_name: str = "y"

    @property
    def n(self) -> int:
        return len(self.x)

    @property
    def trusted(self) -> bool:
        return not self.warnings

    def predict(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return self.k * np.clip(x - self.e_x, 0.0, None) ** self.kappa + self.e_y


def _linear(u: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(K, E_y, SSE) of the least-squares line ``y = K u + E_y``."""
    design = np.column_stack([u, np.ones_like(u)])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coef
    return float(coef[0]), float(coef[1]), float(residual @ residual)


class _Profile:
    """The best fit for a fixed ``kappa``: ``E_x`` searched in its bounds, ``K`` and ``E_y`` in closed form.

    The search over ``E_x`` is a grid (dense near ``min(x)``, where the curve bends most) evaluated for many
    exponents at once, then a bounded one-dimensional refinement around the grid's best."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y
        span = float(np.ptp(x)) or abs(float(x.min())) or 1.0
        self.low = 0.0 if x.min() > 0 else float(x.min()) - 10 * span
        self.high = float(x.min()) - 1e-6 * span  # E_x stays below the smallest loss
        self.e_grid = self.high - (self.high - self.low) * np.geomspace(1e-6, 1.0, E_GRID)
        self.yc = y - y.mean()
        self.syy = float(self.yc @ self.yc)

    def sse(self, kappas: np.ndarray, e_x: np.ndarray) -> np.ndarray:
        """SSE of the best line ``y = K u + E_y``, ``u = (x - e_x)^kappa``, for arrays broadcast together."""
        u = (self.x - np.asarray(e_x)[..., None]) ** np.asarray(kappas)[..., None]
        uc = u - u.mean(axis=-1, keepdims=True)
        suu = np.einsum("...i,...i->...", uc, uc)
        suy = uc @ self.yc
        with np.errstate(divide="ignore", invalid="ignore"):
            sse = self.syy - np.where(suu > 0, suy * suy / suu, 0.0)
        return np.where(np.isfinite(sse), np.maximum(sse, 0.0), self.syy)

    def coarse(self, kappas: np.ndarray) -> np.ndarray:
        """The grid's best SSE for each exponent (vectorised)."""
        return self.sse(np.asarray(kappas)[:, None], self.e_grid[None, :]).min(axis=1)

    def best(self, kappa: float) -> tuple[float, float]:
        """(SSE, E_x) of the best fit at ``kappa``: the grid, then a bounded search beside its best point."""
        values = self.sse(np.array(kappa), self.e_grid)
        i = int(np.argmin(values))
        lo, hi = self.e_grid[min(i + 1, E_GRID - 1)], self.e_grid[max(i - 1, 0)]
        found = optimize.minimize_scalar(lambda e: float(self.sse(np.array(kappa), np.array(e))), bounds=(lo, hi),
                                         method="bounded", options={"xatol": 1e-12 * max(1.0, abs(hi))})
        if found.fun < values[i]:
            return float(found.fun), float(found.x)
        return float(values[i]), float(self.e_grid[i])


def _check(x: np.ndarray, y: np.ndarray, x_name: str, y_name: str) -> None:
    if len(x) != len(y) or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise LossToLossError(f"{x_name} and {y_name} must be finite numbers in pairs; {len(x)} and {len(y)} came, "
                              f"{int((~np.isfinite(x)).sum()) + int((~np.isfinite(y)).sum())} missing or "
                              "infinite; leave those trials out.")
    if len(x) < MIN_POINTS or len(np.unique(x)) < MIN_POINTS - 1:
        raise LossToLossError(f"a loss-to-loss law ({PARAMS} parameters) needs at least {MIN_POINTS} trials at "
                              f"{MIN_POINTS - 1} or more distinct values of {x_name}, and there are {len(x)} at "
                              f"{len(np.unique(x))}; run more trials of different sizes.")


def _optimum(profile: _Profile) -> tuple[float, np.ndarray, np.ndarray]:
    """(kappa, grid, the grid's profile SSE): the best exponent, refined between the grid's neighbours."""
    grid = np.geomspace(*KAPPA_BOUNDS, K_GRID)
    sse = profile.coarse(grid)
    i = int(np.argmin(sse))
    lo, hi = np.log(grid[max(i - 1, 0)]), np.log(grid[min(i + 1, K_GRID - 1)])
    found = optimize.minimize_scalar(lambda t: profile.best(math.exp(t))[0], bounds=(lo, hi), method="bounded",
                                     options={"xatol": 1e-7})
    return (math.exp(found.x) if found.fun <= sse[i] else float(grid[i])), grid, sse


def fit_loss_to_loss(x: Any, y: Any, level: float = 0.95, x_name: str = "x", y_name: str = "y") -> LossToLossFit:
    """Fit ``y = K (x - E_x)^kappa + E_y`` (module docstring); ``LossToLossError`` when it cannot be fitted."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    _check(x, y, x_name, y_name)
    profile = _Profile(x, y)
    kappa, grid, sse = _optimum(profile)
    sse_min, e_x = profile.best(kappa)
    k, e_y, _ = _linear((x - e_x) ** kappa, y)
    dof = len(x) - PARAMS
    threshold = sse_min * (1 + stats.f.ppf(level, 1, dof) / dof)
    ci = (_crossing(profile, threshold, grid, sse, kappa, side=-1), _crossing(profile, threshold, grid, sse, kappa, +1))
    fit = LossToLossFit(k=k, kappa=kappa, e_x=e_x, e_y=e_y, kappa_ci=ci, level=level, x=x, y=y,
                        rmse=math.sqrt(sse_min / len(x)), x_name=x_name, y_name=y_name)
    return LossToLossFit(**{**fit.__dict__, "warnings": _warnings(fit, profile)})


def _crossing(profile: _Profile, threshold: float, grid: np.ndarray, sse: np.ndarray, kappa: float,
              side: int) -> float:
    """Where the profile SSE crosses ``threshold`` below (side -1) or above (+1) ``kappa``; the grid's end
    when it never does (the interval is open there: a warning says so)."""
    outside = np.flatnonzero((sse > threshold) & ((grid < kappa) if side < 0 else (grid > kappa)))
    if not len(outside):
        return float(grid[0] if side < 0 else grid[-1])
    edge = grid[outside[-1]] if side < 0 else grid[outside[0]]
    excess = lambda t: profile.best(math.exp(t))[0] - threshold  # noqa: E731
    try:
        return math.exp(optimize.brentq(excess, math.log(edge), math.log(kappa), xtol=1e-8))
    except ValueError:  # the refined optimum sits beside the edge: the grid's point is the best bound known
        return float(edge)


def _warnings(fit: LossToLossFit, profile: _Profile) -> tuple[str, ...]:
    notes = []
    if fit.n < TRUSTED_POINTS:
        notes.append(f"only {fit.n} points: the interval of kappa is checked by simulation from {TRUSTED_POINTS} up")
    if fit.kappa_ci[0] <= KAPPA_BOUNDS[0] * 1.0001 or fit.kappa_ci[1] >= KAPPA_BOUNDS[1] * 0.9999:
        notes.append(f"kappa's interval reaches its bound ({KAPPA_BOUNDS[0]:g} or {KAPPA_BOUNDS[1]:g}): the points "
                     "do not determine the exponent")
    if fit.k <= 0:
        notes.append(f"K = {fit.k:.3g} is not positive: {fit.y_name} does not fall as {fit.x_name} falls")
    if profile.low == 0.0 and fit.e_x <= 1e-9:
        notes.append(f"E_x is at its bound 0: the {fit.x_name} floor is not determined")
    return tuple(notes)


def loss_pairs(frame: pd.DataFrame, x_column: str, y_column: str) -> pd.DataFrame:
    """The rows with both losses finite: trial_id, x, y (what ``fit_loss_to_loss`` takes from a results table)."""
    for column in (x_column, y_column):
        if column not in frame.columns:
            raise LossToLossError(f"the results have no column '{column}'; a loss-to-loss law needs both losses "
                                  "in every row (val.loss, ood.<name>.loss: add an evaluate: section, or run "
                                  "ecgsearch evaluate-run on the run).")
    pairs = pd.DataFrame({"trial_id": frame.get("trial_id", pd.Series(frame.index, index=frame.index)).astype(str),
                          "x": pd.to_numeric(frame[x_column], errors="coerce"),
                          "y": pd.to_numeric(frame[y_column], errors="coerce")})
    return pairs[np.isfinite(pairs["x"]) & np.isfinite(pairs["y"])]
