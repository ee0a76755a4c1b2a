"""Latency in a search: what the space file asks for, measured for each trial, checked against the limit.

With ``latency.measure: all`` every trial is measured *before* it trains, in a separate process: timings
do not depend on the weights, and a candidate over ``constraints.max_latency_ms`` is then recorded as
``pruned`` without spending its training time. The columns ride along in every report of the trial, so
they are in its results row however it ends. ``pareto`` and ``best`` measure the trained checkpoints
after the search (``ecgsearch.latency.bench``) and add the columns to ``results.parquet``.

The limit applies to the median (``p50_ms``) of the first backend listed: the deployment target. A
trial whose first backend fails to measure keeps training (its latency is unknown, not too high); the
error is in its row.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ecgsearch.data.cache import open_dataset
from ecgsearch.data.source import EcgArrays
from ecgsearch.errors import UserError
from ecgsearch.latency.backend import backend_status
from ecgsearch.latency.kernel_table import KERNEL_RUNNERS
from ecgsearch.latency.options import KERNEL_PREDICTOR, BackendOptions, MeasureSettings, precision_for
from ecgsearch.latency.request import DataRef, MeasureRequest, ModelRef
from ecgsearch.latency.runner import measure_isolated
from ecgsearch.plugins import get_registries
from ecgsearch.train.checkpoints import plain
from ecgsearch.train.context import (
    OBJECTIVE,
    WORST,
    Report,
    TrialContext,
    hyperparameters,
    input_samples,
)
from ecgsearch.train.estimators import is_estimator, not_applicable_latency, trial_architecture

if TYPE_CHECKING:
    from ecgsearch.space import SearchSpec, Space

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LatencyPlan:
    """The ``latency`` section and ``max_latency_ms`` in the form trials and the driver use (picklable)."""

    backends: tuple[str, ...]
    options: Mapping[str, BackendOptions]
    settings: MeasureSettings
    measure: str = "all"
    max_latency_ms: float | None = None
    predictor: str = "random_forest"
    backend_timeout_s: float = 300.0

    @property
    def target(self) -> str:
        """The backend ``max_latency_ms`` applies to: the first one listed."""
        return self.backends[0]

    @property
    def target_column(self) -> str:
        return f"latency.{self.target}.p50_ms"

    def violation(self, columns: Mapping[str, Any]) -> str | None:
        """Why measured ``columns`` break ``max_latency_ms``, or None (also when it was not measured)."""
        value = columns.get(self.target_column)
        if self.max_latency_ms is None or value is None or not math.isfinite(float(value)):
            return None
        if float(value) > self.max_latency_ms:
            return f"{self.target_column} {float(value):.3g} > max_latency_ms {self.max_latency_ms:.3g}"
        return None


def latency_plan(spec: SearchSpec) -> LatencyPlan | None:
    """The plan of a parsed space file (None without a ``latency`` section); the engine builds it once."""
    section = spec.latency
    if section is None:
        return None
    threads = section.threads or max(1, int(spec.resources.cpu))
    options = {b: BackendOptions(threads=threads, precision=precision_for(section.precision, b), hint=section.hint)
               for b in section.backends}
    settings = MeasureSettings(batch_size=section.batch_size, time_budget_s=section.time_budget_s)
    return LatencyPlan(backends=tuple(section.backends), options=options, settings=settings,
                       measure=section.measure, max_latency_ms=spec.constraints.max_latency_ms,
                       predictor=section.predictor)


def check_latency(spec: SearchSpec, plan: LatencyPlan | None) -> None:
    """Refuse a latency limit that cannot be enforced; warn about backends that cannot run here."""
    limit = spec.constraints.max_latency_ms
    section = spec.latency
    if limit is not None and section is None:
        raise UserError(f"{spec.path}: constraints.max_latency_ms: a latency limit needs a latency section naming "
                        "the backend to measure (e.g. latency: {backends: [onnxruntime-cpu]}); add one or remove "
                        "max_latency_ms.")
    if section is None:
        return
    if limit is not None and section.measure != "all":
        raise UserError(f"{spec.path}: constraints.max_latency_ms: a latency limit needs every candidate measured, "
                        f"but latency.measure is '{section.measure}'; set latency.measure: all or remove "
                        "max_latency_ms.")
    assert plan is not None
    if limit is not None and plan.predictor == KERNEL_PREDICTOR and plan.target not in KERNEL_RUNNERS:
        raise UserError(f"{spec.path}: latency.predictor: the kernel-level predictor measures kernels on "
                        f"{', '.join(KERNEL_RUNNERS)}, not on the first backend '{plan.target}'; list one of those "
                        "first or use a surrogate (e.g. predictor: random_forest).")
    for name in plan.backends:
        usable, reason = backend_status(get_registries().backends.get(name), plan.options[name])
        if usable:
            continue
        if limit is not None and name == plan.target:
            raise UserError(f"{spec.path}: latency.backends: max_latency_ms is checked on the first backend, "
                            f"'{name}', which is not usable here ({reason}); list a usable backend first.")
        log.warning("backend '%s' is not usable here: %s; its latency columns will say so and the search goes on",
                    name, reason)


def model_ref_for(config: Mapping[str, Any], space: Space, data: EcgArrays, task: str,
                  task_params: Mapping[str, Any], checkpoint: str | None = None, seed: int = 0,
                  num_targets: int | None = None, encoders: int = 1) -> ModelRef:
    """The ``ModelRef`` of a sampled configuration, shaped by the run's data (leads, length) and task.

    num_targets: the targets the model was trained for, when they differ from ``data``'s (new records).
    encoders: the encoders of a transfer that fuses several pretrainings (``SearchSpec.encoders``).
    """
    resolved = space.resolve(space.active(hyperparameters(config)))
    arch, params = resolved.choices["architecture"]
    targets = data.targets.shape[1] if num_targets is None else num_targets
    outputs = get_registries().tasks.get(task).create(targets, **dict(task_params)).num_outputs
    return ModelRef(architecture=arch, params=plain(params), leads=int(data.signals.shape[1]),
                    samples=input_samples(int(data.signals.shape[2]), resolved.params), outputs=int(outputs),
                    checkpoint=checkpoint, seed=seed, encoders=encoders)


def trial_latency(config: Mapping[str, Any], context: TrialContext) -> dict[str, Any]:
    """Measure a trial's model on every planned backend in a separate process: its ``latency.*`` columns."""
    plan: LatencyPlan = context.latency
    model = model_ref_for(config, context.space, open_dataset(Path(context.cache_entry)), context.task,
                          context.task_params, seed=int(config.get("_seed", context.seed)),
                          encoders=context.transfer.encoders if context.transfer is not None else 1)
    data = DataRef(cache_entry=str(context.cache_entry), task=context.task, task_params=dict(context.task_params),
                   metric=context.metric)
    request = MeasureRequest(model=model, backends=plan.backends, options=plan.options, settings=plan.settings,
                             data=data)
    columns: dict[str, Any] = {}
    for result in measure_isolated(request, backend_timeout_s=plan.backend_timeout_s).values():
        columns.update(result.columns())
    return columns


class LatencyColumns:
    """The trial's reporter with the latency columns added to every report (other attributes pass through)."""

    def __init__(self, report: Report, columns: Mapping[str, Any]) -> None:
        self.report = report
        self.columns = dict(columns)

    def __call__(self, metrics: dict[str, Any]) -> None:
        self.report({**metrics, **self.columns})

    def epoch_end(self, metrics: dict[str, Any], state: Any) -> None:
        """A checkpointing reporter's per-epoch report (``ecgsearch.train.checkpoints.report_epoch``)."""
        epoch_end = getattr(self.report, "epoch_end", None)
        if callable(epoch_end):
            epoch_end({**metrics, **self.columns}, state)
        else:
            self(metrics)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["report"], name)


def with_latency(run: Callable[..., Any]) -> Callable[..., Any]:
    """The trial loop ``run(config, context, report=...)``, preceded by the latency measurement.

    With ``measure: all`` the trial's model is measured before training; a candidate over
    ``max_latency_ms`` is reported once as ``pruned`` (the reason is its error) and not trained.
    """
    def measured(config: Mapping[str, Any], context: TrialContext, report: Report) -> Any:
        plan: LatencyPlan | None = getattr(context, "latency", None)
        if plan is None or plan.measure != "all":
            return run(config, context, report=report)
        architecture = trial_architecture(config, context)[0]
        if is_estimator(architecture):  # no network to measure: the backends say so in their error columns
            return run(config, context, report=LatencyColumns(report, not_applicable_latency(architecture,
                                                                                            plan.backends)))
        columns = trial_latency(config, context)
        watchdog = getattr(report, "watchdog", None)
        if watchdog is not None:  # measuring is a sign of life, not a hang
            watchdog.pet()
        reason = plan.violation(columns)
        if reason is not None:
            report({**columns, "status": "pruned", "error": reason, "epochs": 0, OBJECTIVE: WORST[context.mode]})
            return None
        return run(config, context, report=LatencyColumns(report, columns))

    return measured
