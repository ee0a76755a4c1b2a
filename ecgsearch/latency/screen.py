"""Screening candidates against ``max_latency_ms`` with a latency predictor, before they train.

Every trial is measured before it trains anyway (``latency.plan``), so a too-slow candidate never
trains; screening saves the measurement too, and the trial slot. The predictor is refitted from the
measured rows of ``results.parquet`` whenever the table changed. Until ``MIN_MEASURED`` trials have a
measurement of the limit's backend, nothing is screened (the fallback: each candidate is measured).

The predictor's *measured* error decides (``screen_decision``): each fit also cross-validates it on the
measured trials, and its error band (the 90th percentile of the held-out relative errors) sets how far
from the limit a prediction must be to be trusted. A candidate predicted over ``limit * (1 + band)`` is
redrawn; one predicted within the band of the limit is measured for real (it is tried, and the
measurement before training decides); one predicted below the band is tried like any other.

``latency.predictor`` picks the predictor: a surrogate name (the whole-model predictor of
``latency.predictor``, cost features) or ``kernel`` (``latency.kernel_predictor``: the candidate's
kernels, measured once in the backend's kernel table, summed and corrected). The kernel predictor needs
the candidate's model: ``candidate_models`` builds it as a trial would, and the screen keeps each
candidate's kernel sum under its cost key (architecture, parameters, MACs, FLOPs), the same key the
trial's row has in ``results.parquet``, which is how measured trials become its calibration set.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np
import pandas as pd
import torch

from ecgsearch.data.cache import open_dataset
from ecgsearch.latency.kernel_predictor import KernelPredictor, KernelSum
from ecgsearch.latency.options import KERNEL_PREDICTOR
from ecgsearch.latency.plan import LatencyPlan, model_ref_for
from ecgsearch.latency.predictor import LatencyPredictor, cross_validate, latency_column, measured_rows
from ecgsearch.latency.worker import build_model, example_input
from ecgsearch.plugins import get_registries
from ecgsearch.results import RESULTS_FILE, RESULTS_LOG, read_results
from ecgsearch.train.estimators import is_estimator

if TYPE_CHECKING:
    from ecgsearch.space import SearchSpec

log = logging.getLogger(__name__)

MIN_MEASURED = 8
KEY_COLUMNS = ("cost.params", "cost.macs", "cost.flops")
ModelBuilder = Callable[[Mapping[str, Any]], tuple[torch.nn.Module, torch.Tensor]]


def screen_decision(predicted_ms: float, limit_ms: float, band: float) -> str:
    """``reject`` (predicted over the limit by more than the band), ``measure`` (within the band of the
    limit: only a measurement can tell) or ``accept`` (under the limit by more than the band)."""
    if predicted_ms > limit_ms * (1 + band):
        return "reject"
    if predicted_ms * (1 + band) >= limit_ms:
        return "measure"
    return "accept"


def cost_key(architecture: Any, costs: Mapping[str, Any]) -> tuple[Any, ...]:
    """What tells two networks apart in a results row: the architecture and its parameters, MACs, FLOPs."""
    return (str(architecture), *(float(f"{float(costs.get(c, np.nan)):.6g}") for c in KEY_COLUMNS))


@dataclass(frozen=True)
class FittedScreen:
    """A fitted predictor: ``predict(config, costs) -> ms`` and its measured error band."""

    predict: Callable[[Mapping[str, Any], Mapping[str, Any]], float]
    band: float
    models: int


class LatencyScreen:
    """``screen(config, costs) -> [reasons]``: empty when the candidate may be tried (``decisions`` counts)."""

    def __init__(self, plan: LatencyPlan, out_dir: Path, seed: int = 0, models: ModelBuilder | None = None,
                 kernel_predictor: KernelPredictor | None = None) -> None:
        assert plan.max_latency_ms is not None
        self.plan = plan
        self.path = Path(out_dir) / RESULTS_FILE
        self.seed = seed
        self.models = models
        self.kernel = plan.predictor == KERNEL_PREDICTOR
        if self.kernel and kernel_predictor is None:
            kernel_predictor = KernelPredictor(plan.target, plan.options[plan.target], plan.settings.batch_size,
                                               seed=seed)
        self.kernel_predictor = kernel_predictor
        self.sums: dict[tuple[Any, ...], KernelSum] = {}  # cost key -> kernel sum of every candidate seen
        self.decisions = {"accept": 0, "measure": 0, "reject": 0}
        self._read: tuple[tuple[float, int], ...] | None = None  # the table's stamp when last read
        self._rows: pd.DataFrame | None = None  # its measured rows
        self._keys: list[tuple[Any, ...]] = []  # their cost keys
        self._fit_for: tuple[Any, ...] | None = None  # (table stamp, calibration rows) of the current fit
        self._fitted: FittedScreen | None = None

    @staticmethod
    def estimator(config: Mapping[str, Any]) -> bool:
        """Whether the candidate is an estimator model (its ``architecture`` value names the family)."""
        name = config.get("architecture")
        return isinstance(name, str) and name in get_registries().architectures and is_estimator(name)

    def _table_stamp(self) -> tuple[tuple[float, int], ...]:
        """(modification time, size) of the results table and of its row log: rows of trials that ended
        since the table was last written are in the log, which changes without the table changing."""
        return tuple((p.stat().st_mtime, p.stat().st_size) for p in (self.path, self.path.with_name(RESULTS_LOG))
                     if p.exists())

    def fitted(self) -> FittedScreen | None:
        """The predictor fitted on the current table (None while too few trials are measured).

        The table is read again only when it (or its row log) changed, and the predictor refitted only when
        the calibration set changed: for the kernel predictor, a new candidate whose kernel sum matches a
        measured trial (a candidate never measured changes nothing)."""
        stamp = self._table_stamp()
        if not stamp:
            return None
        if stamp != self._read:
            self._read, self._rows = stamp, None
            try:
                self._rows = measured_rows(read_results(self.path), self.plan.target)
                self._keys = [cost_key(a, r) for a, r in zip(self._rows["architecture"],
                                                             self._rows.to_dict("records"))]
            except Exception as error:  # screening is an optimisation: without it every candidate is measured
                log.warning("latency results not read (%s: %s); candidates are measured unscreened",
                            type(error).__name__, error)
        if self._rows is None:
            return None
        calibration = sum(k in self.sums for k in self._keys) if self.kernel else len(self._rows)
        if (stamp, calibration) != self._fit_for:
            self._fit_for, self._fitted = (stamp, calibration), None
            try:
                self._fitted = self._fit_kernel(self._rows) if self.kernel else self._fit_whole_model(self._rows)
            except Exception as error:  # screening is an optimisation: without it every candidate is measured
                log.warning("latency predictor not fitted (%s: %s); candidates are measured unscreened",
                            type(error).__name__, error)
        return self._fitted

    def _fit_whole_model(self, rows: pd.DataFrame) -> FittedScreen | None:
        if len(rows) < MIN_MEASURED:
            return None
        predictor = LatencyPredictor(self.plan.target, self.plan.predictor, self.seed).fit(rows)
        score = cross_validate(rows, self.plan.target, self.plan.predictor, seed=self.seed)
        assert score is not None  # MIN_MEASURED rows are enough to cross-validate

        def predict(config: Mapping[str, Any], costs: Mapping[str, Any]) -> float:
            return float(predictor.predict(pd.DataFrame([{"architecture": config.get("architecture"), **costs}]))[0])

        return FittedScreen(predict, score.band, len(rows))

    def _fit_kernel(self, rows: pd.DataFrame) -> FittedScreen | None:
        keys = self._keys  # of ``rows``, computed when the table was read
        known = [k in self.sums for k in keys]
        if sum(known) < MIN_MEASURED:
            return None
        measured = rows[latency_column(self.plan.target)].to_numpy(dtype=float)[known]
        predictor = self.kernel_predictor
        assert predictor is not None
        predictor.fit([self.sums[k] for k, ok in zip(keys, known) if ok], measured)

        def predict(config: Mapping[str, Any], costs: Mapping[str, Any]) -> float:
            return float(predictor.predict([self.sums[cost_key(config.get("architecture"), costs)]])[0])

        return FittedScreen(predict, predictor.error_band, int(sum(known)))

    def _kernel_sum(self, config: Mapping[str, Any], key: tuple[Any, ...]) -> bool:
        """Measure (once per network) the candidate's kernel sum; False when it cannot be had."""
        if key in self.sums:
            return True
        if self.models is None or self.kernel_predictor is None:
            return False
        try:
            self.sums[key] = self.kernel_predictor.kernel_sum(*self.models(config))
        except Exception as error:  # a model the kernel cutter cannot handle is measured unscreened
            log.warning("no kernel sum for a candidate (%s: %s); it is measured unscreened",
                        type(error).__name__, error)
            return False
        return True

    def __call__(self, config: Mapping[str, Any], costs: Any) -> list[str]:
        if self.estimator(config):  # no network: nothing the latency predictors know how to predict
            return []
        columns = dict(costs.columns())
        if self.kernel and not self._kernel_sum(config, cost_key(config.get("architecture"), columns)):
            return []
        fitted = self.fitted()
        if fitted is None:
            return []
        predicted = fitted.predict(config, columns)
        limit = float(self.plan.max_latency_ms)  # type: ignore[arg-type]
        decision = screen_decision(predicted, limit, fitted.band)
        self.decisions[decision] += 1
        if decision == "reject":
            return [(f"predicted {self.plan.target_column} {predicted:.3g} > max_latency_ms {limit:.3g} "
                     f"by more than the predictor's error band ({fitted.band:.0%})")]
        return []


def candidate_models(spec: SearchSpec, cache_entry: Path) -> ModelBuilder:
    """``config -> (model, example input)`` built as the trial's measurement builds it (the run's data
    shape, task outputs and latency batch size); the dataset is opened on first use."""
    batch_size = spec.latency.batch_size if spec.latency is not None else 1
    data: list[Any] = []

    def build(config: Mapping[str, Any]) -> tuple[torch.nn.Module, torch.Tensor]:
        if not data:
            data.append(open_dataset(Path(cache_entry)))
        ref = model_ref_for(config, spec.space, data[0], spec.task.name, spec.task.params, seed=spec.seed,
                            encoders=spec.encoders)
        return build_model(ref)[0], example_input(ref, batch_size)

    return build


def latency_screen(plan: LatencyPlan | None, out_dir: Path, seed: int,
                   models: ModelBuilder | None = None) -> LatencyScreen | None:
    """The screen of a search with ``max_latency_ms`` (None without a limit).

    models: ``candidate_models(...)``, which the kernel predictor needs (without it the screen of
    ``predictor: kernel`` measures every candidate).
    """
    if plan is None or plan.max_latency_ms is None:
        return None
    return LatencyScreen(plan, out_dir, seed, models)
