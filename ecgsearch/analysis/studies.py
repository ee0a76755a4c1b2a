"""The forms in which scaling studies state their findings: one law per group (model family, training
paradigm) on one axis, and efficiency ratios between groups ("SSL needs 1/k of the data of SL for the same
validation loss", "ResNets need k times fewer parameters than Transformers at the same OOD loss").

``fit_scaling_by`` fits ``ecgsearch.analysis.scaling.fit_scaling`` to each group's trials (a group whose
trials cannot determine a law gets the reason instead of a fit). ``efficiency_ratio`` inverts two groups'
laws at one error: ``x_g(L) = (A_g / (L - E_g))^(1 / alpha_g)``, the x (parameters, FLOPs, records) group
``g`` needs to reach error ``L``, and the ratio ``x_numerator(L) / x_denominator(L)``. Its interval is a
percentile bootstrap over trials: each group's trials are resampled with replacement, the lower envelope is
taken again and the law refitted (least squares, ``fit_law``), and the ratio recomputed; a replicate in
which a law never reaches ``L`` (its floor ``E`` lies above it) counts as an infinite or zero ratio, and the
share of such replicates is reported (a ratio whose interval is open on one side says so). Coverage is
checked by simulation in ``tests/test_studies.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ecgsearch.analysis.scaling import (
    BIN_DECADES,
    PowerLaw,
    ScalingError,
    ScalingFit,
    envelope,
    fit_law,
    fit_scaling,
    scaling_points,
)
from ecgsearch.errors import UserError

PARADIGM = "paradigm"  # results column: sl, ssl or transfer (ecgsearch.train.transfer.paradigm)
BOOTSTRAP = 1000


def group_keys(frame: pd.DataFrame, by: str | Sequence[str]) -> pd.Series:
    """Each row's group: the value of ``by`` (or the values of several columns joined by ``/``); a missing
    ``paradigm`` is ``sl`` (a run from before the column, or a trial without transfer)."""
    columns = [by] if isinstance(by, str) else list(by)
    missing = [c for c in columns if c not in frame.columns and c != PARADIGM]
    if missing:
        raise UserError(f"the results have no column {', '.join(repr(c) for c in missing)} to group the trials by; "
                        f"group by columns the table has (architecture, paradigm, optimizer, hp.*).")
    parts = [frame[c].astype(object).where(frame[c].notna(), "sl" if c == PARADIGM else "none").astype(str)
             if c in frame.columns else pd.Series("sl", index=frame.index) for c in columns]
    keys = parts[0]
    for part in parts[1:]:
        keys = keys + "/" + part
    return keys


def fit_scaling_by(frame: pd.DataFrame, metric: str, mode: str, axis: str = "parameters",
                   by: str | Sequence[str] = PARADIGM, **options: Any) -> dict[str, ScalingFit | str]:
    """One law per group of ``by`` (``architecture``, ``paradigm`` or both), as ``fit_scaling`` fits it
    (``options``: pareto, train_records, level, bin_decades); a group that cannot be fitted maps to the
    one-sentence reason."""
    keys = group_keys(frame, by)
    fits: dict[str, ScalingFit | str] = {}
    for key in sorted(keys.unique()):
        try:
            fits[key] = fit_scaling(frame[keys == key], metric, mode, axis, **options)
        except ScalingError as error:
            fits[key] = str(error)
    return fits


def needed(law: PowerLaw, error: float) -> float:
    """The x at which ``law`` reaches ``error``: ``inf`` when its floor ``e_inf`` is at or above it."""
    gap = error - law.e_inf
    if gap <= 0 or law.a <= 0:
        return math.inf
    return (law.a / gap) ** (1.0 / law.alpha)


@dataclass(frozen=True)
class EfficiencyRatio:
    """``x_numerator(at) / x_denominator(at)`` with its percentile-bootstrap interval.

    unreachable: share of bootstrap replicates in which one law never reaches ``at`` (an open-ended
    interval on that side); warnings: why not to trust it (empty when none applies).
    """

    numerator: str
    denominator: str
    at: float
    ratio: float
    ci: tuple[float, float]
    level: float
    needed: tuple[float, float]  # x each group needs at ``at``
    unreachable: float
    replicates: int
    warnings: tuple[str, ...] = ()

    def sentence(self, axis: str = "x") -> str:
        """The finding in words: ``ssl needs 0.31x (0.22-0.45) the parameters of sl at error 0.12``."""
        return (f"{self.numerator} needs {self.ratio:.3g}x ({self.ci[0]:.3g}-{self.ci[1]:.3g}, {self.level:.0%}) the "
                f"{axis} of {self.denominator} to reach error {self.at:.3g}")


def _envelope_points(points: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    kept = points[points["envelope"]]
    return kept["x"].to_numpy(float), kept["error"].to_numpy(float)


def _refit(points: pd.DataFrame, rng: np.random.Generator, bin_decades: float | None) -> PowerLaw | None:
    """The law of a resample of ``points`` (trials drawn with replacement, envelope taken again)."""
    sample = points.iloc[rng.integers(0, len(points), len(points))]
    keep = envelope(sample["x"], sample["error"], bin_decades)
    try:
        return fit_law(sample["x"].to_numpy(float)[keep], sample["error"].to_numpy(float)[keep])
    except ScalingError:
        return None


def efficiency_ratio(frame: pd.DataFrame, metric: str, mode: str, axis: str, numerator: str, denominator: str,
                     by: str | Sequence[str] = PARADIGM, at: float | None = None, level: float = 0.95,
                     bootstrap: int = BOOTSTRAP, seed: int = 0, train_records: int | None = None,
                     bin_decades: float | None = BIN_DECADES) -> EfficiencyRatio:
    """How many times the x (``axis``) group ``numerator`` needs compared with group ``denominator`` to reach
    the error ``at`` (default: the larger of the two groups' best errors, a level both reached)."""
    keys = group_keys(frame, by)
    points = {}
    for group in (numerator, denominator):
        if not (keys == group).any():
            raise UserError(f"no trial is in group {group!r} of {by}; the groups are "
                            f"{', '.join(sorted(keys.unique()))}.")
        points[group] = scaling_points(frame[keys == group], metric, mode, axis, train_records, bin_decades)
    laws = {}
    for group, table in points.items():
        try:
            laws[group] = fit_law(*_envelope_points(table))
        except ScalingError as error:
            raise ScalingError(f"group {group!r}: {error}") from None
    if at is None:
        at = max(float(table["error"].min()) for table in points.values())
    x_num, x_den = needed(laws[numerator], at), needed(laws[denominator], at)
    ratio = x_num / x_den if math.isfinite(x_num) and math.isfinite(x_den) else math.nan
    rng = np.random.default_rng(seed)
    ratios, unreachable = [], 0
    for _ in range(bootstrap):
        a, b = _refit(points[numerator], rng, bin_decades), _refit(points[denominator], rng, bin_decades)
        if a is None or b is None:
            continue
        num, den = needed(a, at), needed(b, at)
        if not (math.isfinite(num) and math.isfinite(den)):
            unreachable += 1
            ratios.append(math.inf if not math.isfinite(num) and math.isfinite(den) else
                          0.0 if math.isfinite(num) else math.nan)
            continue
        ratios.append(num / den)
    values = np.array([r for r in ratios if not math.isnan(r)])
    tail = (1 - level) / 2
    # order statistics, not interpolation: an unreachable replicate's ratio is infinite
    ci = (float(np.quantile(values, tail, method="lower")), float(np.quantile(values, 1 - tail, method="higher"))) \
        if len(values) else (math.nan, math.nan)
    notes = []
    if unreachable:
        notes.append(f"in {unreachable} of the {len(ratios)} bootstrap resamples one group's law never reaches "
                     f"error {at:.3g} (its floor lies above it): the interval is open on that side")
    if not math.isfinite(ratio):
        notes.append(f"a fitted law never reaches error {at:.3g}; choose a larger error (at=...)")
    if len(values) < 0.9 * bootstrap:
        notes.append(f"only {len(values)} of {bootstrap} resamples gave both laws")
    return EfficiencyRatio(numerator=numerator, denominator=denominator, at=float(at), ratio=ratio, ci=ci, level=level,
                           needed=(x_num, x_den), unreachable=unreachable / max(len(ratios), 1),
                           replicates=len(values), warnings=tuple(notes))
