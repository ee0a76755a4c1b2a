"""Screening candidates against ``max_latency_ms`` with the latency predictor, before they train.

Every trial is measured before it trains anyway (``latency.plan``), so a too-slow candidate never
trains; screening saves the measurement too, and the trial slot. The predictor is refitted from the
measured rows of ``results.parquet`` whenever the table changed. Until ``MIN_MEASURED`` trials have a
measurement of the limit's backend, nothing is screened (the fallback: each candidate is measured
directly). A candidate is screened out only when its prediction exceeds the limit by more than the
predictor's tolerance (10%), so borderline candidates are measured rather than discarded.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from ecgsearch.latency.plan import LatencyPlan
from ecgsearch.latency.predictor import TOLERANCE, LatencyPredictor, measured_rows
from ecgsearch.results import RESULTS_FILE, read_results

log = logging.getLogger(__name__)

MIN_MEASURED = 8


class LatencyScreen:
    """``screen(config, costs) -> [reasons]``: empty when the candidate may be tried."""

    def __init__(self, plan: LatencyPlan, out_dir: Path, seed: int = 0) -> None:
        assert plan.max_latency_ms is not None
        self.plan = plan
        self.path = Path(out_dir) / RESULTS_FILE
        self.seed = seed
        self._stamp: float | None = None
        self._predictor: LatencyPredictor | None = None

    def predictor(self) -> LatencyPredictor | None:
        """The predictor fitted on the current table (None while too few trials are measured)."""
        if not self.path.exists():
            return None
        stamp = self.path.stat().st_mtime
        if stamp != self._stamp:
            self._stamp = stamp
            self._predictor = None
            try:
                rows = measured_rows(read_results(self.path), self.plan.target)
                if len(rows) >= MIN_MEASURED:
                    self._predictor = LatencyPredictor(self.plan.target, self.plan.predictor, self.seed).fit(rows)
            except Exception as error:  # screening is an optimisation: without it every candidate is measured
                log.warning("latency predictor not fitted (%s: %s); candidates are measured unscreened",
                            type(error).__name__, error)
        return self._predictor

    def __call__(self, config: Mapping[str, Any], costs: Any) -> list[str]:
        predictor = self.predictor()
        if predictor is None:
            return []
        row = pd.DataFrame([{"architecture": config.get("architecture"), **costs.columns()}])
        predicted = float(predictor.predict(row)[0])
        limit = float(self.plan.max_latency_ms)  # type: ignore[arg-type]
        if predicted > limit * (1 + TOLERANCE):
            return [f"predicted {self.plan.target_column} {predicted:.3g} > max_latency_ms {limit:.3g}"]
        return []


def latency_screen(plan: LatencyPlan | None, out_dir: Path, seed: int) -> LatencyScreen | None:
    """The screen of a search with ``max_latency_ms`` (None without a limit)."""
    if plan is None or plan.max_latency_ms is None:
        return None
    return LatencyScreen(plan, out_dir, seed)
