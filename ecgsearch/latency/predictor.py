"""Latency from cost features: a per-backend surrogate, and how often it is within +-10% on unseen models.

Measuring a candidate costs seconds; predicting it costs microseconds. The predictor is a registered
surrogate (``random_forest`` by default) fitted on measured rows: the features are the architecture
(one-hot) and every ``cost.*`` column the run recorded (parameters, MACs, FLOPs and whatever other cost
features exist), the target is ``log(latency.<backend>.p50_ms)``, so errors are relative, as latency
limits are. Accuracy is reported as the fraction of held-out models predicted within +-10%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ecgsearch.results.names import prior_costs
from ecgsearch.search.surrogate_model import SurrogateModel

TOLERANCE = 0.10
BAND_QUANTILE = 0.9  # a predictor's error band: this quantile of its held-out relative errors
FEATURE_COLUMNS = ("architecture",)
COST_PREFIX = "cost."


def latency_column(backend: str, stat: str = "p50_ms") -> str:
    return f"latency.{backend}.{stat}"


def latency_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The predictor's inputs: the architecture and every ``cost.*`` column present."""
    columns = [c for c in FEATURE_COLUMNS if c in frame.columns] + prior_costs(frame.columns)
    return frame[columns]


def measured_rows(frame: pd.DataFrame, backend: str) -> pd.DataFrame:
    """Rows with a finite, positive measured median for ``backend``."""
    column = latency_column(backend)
    if column not in frame.columns:
        return frame.iloc[:0]
    values = pd.to_numeric(frame[column], errors="coerce")
    return frame[np.isfinite(values) & (values > 0)]


class LatencyPredictor:
    """``fit(rows)`` on measured rows, then ``predict(rows) -> milliseconds`` for any rows with costs."""

    def __init__(self, backend: str, surrogate: str = "random_forest", seed: int = 0,
                 params: dict[str, Any] | None = None) -> None:
        self.backend = backend
        self.surrogate = surrogate
        self.seed = seed
        self.params = params or {}
        self.model: Any = None

    def fit(self, frame: pd.DataFrame) -> LatencyPredictor:
        rows = measured_rows(frame, self.backend)
        if len(rows) < 2:
            raise ValueError(f"the latency predictor of {self.backend} needs >= 2 measured rows, got {len(rows)}")
        target = np.log(pd.to_numeric(rows[latency_column(self.backend)]).to_numpy(dtype=float))
        self.model = SurrogateModel(self.surrogate, seed=self.seed, params=self.params).fit(
            latency_features(rows), target)
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("fit the latency predictor first")
        mean, _ = self.model.predict(latency_features(frame))
        return np.exp(mean)


@dataclass(frozen=True)
class PredictorScore:
    """Held-out accuracy of a latency predictor on one backend."""

    backend: str
    models: int  # held-out predictions scored
    within: float  # fraction within +-TOLERANCE of the measured median
    median_rel_error: float
    folds: int
    band: float = math.nan  # the error band: BAND_QUANTILE of the held-out relative errors

    def sentence(self) -> str:
        return (f"{self.backend}: {self.within:.0%} of {self.models} held-out models predicted within "
                f"+-{TOLERANCE:.0%} (median relative error {self.median_rel_error:.1%}, {self.folds}-fold CV)")


def relative_errors(predicted: np.ndarray, measured: np.ndarray) -> np.ndarray:
    return np.abs(np.asarray(predicted, dtype=float) / np.asarray(measured, dtype=float) - 1.0)


def error_band(errors: np.ndarray) -> float:
    """A predictor's measured error: the ``BAND_QUANTILE`` of its held-out relative errors (inf without any)."""
    errors = np.asarray(errors, dtype=float)
    return float(np.quantile(errors, BAND_QUANTILE)) if len(errors) else math.inf


def score_holdout(train: pd.DataFrame, test: pd.DataFrame, backend: str, surrogate: str = "random_forest",
                  seed: int = 0) -> PredictorScore:
    """Fit on ``train``, score on ``test`` (models the predictor never saw)."""
    test = measured_rows(test, backend)
    errors = relative_errors(LatencyPredictor(backend, surrogate, seed).fit(train).predict(test),
                             test[latency_column(backend)].to_numpy(dtype=float))
    return PredictorScore(backend, len(errors), float(np.mean(errors <= TOLERANCE)), float(np.median(errors)), 1,
                          error_band(errors))


def cross_validate(frame: pd.DataFrame, backend: str, surrogate: str = "random_forest", folds: int = 5,
                   seed: int = 0) -> PredictorScore | None:
    """k-fold cross-validated accuracy; None with fewer measured rows than ``2 * folds``."""
    rows = measured_rows(frame, backend).reset_index(drop=True)
    folds = min(folds, len(rows) // 2)
    if folds < 2:
        return None
    order = np.random.default_rng(seed).permutation(len(rows))
    errors = np.empty(len(rows))
    for k in range(folds):
        held = order[k::folds]
        kept = np.setdiff1d(order, held)
        predicted = LatencyPredictor(backend, surrogate, seed).fit(rows.iloc[kept]).predict(rows.iloc[held])
        errors[held] = relative_errors(predicted, rows[latency_column(backend)].to_numpy(dtype=float)[held])
    return PredictorScore(backend, len(rows), float(np.mean(errors <= TOLERANCE)),
                          float(np.median(errors)) if len(errors) else math.nan, folds, error_band(errors))
