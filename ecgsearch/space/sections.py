"""The sections around ``space:``: data, task, metric, budget, resources, search, constraints, latency.

Each section is a field table checked by ``fields.parse_fields``; only cross-field rules (grace period
within the epochs, a metric that fits the task) are written by hand.
"""

from __future__ import annotations

from typing import Any

from ecgsearch.infos import TaskInfo
from ecgsearch.plugins import Registries
from ecgsearch.space.fields import (
    MISSING_PROBLEM,
    Names,
    Number,
    OneOf,
    Switch,
    Text,
    check_parameter_names,
    declared_params,
    mapping,
    parse_fields,
    plain_params,
    registered,
)
from ecgsearch.space.messages import Context, show
from ecgsearch.space.paths import data_paths
from ecgsearch.space.search_options import parse_surrogate_options
from ecgsearch.space.spec import (
    HINTS,
    LATENCY_PRECISIONS,
    MEASURE_MODES,
    BudgetSpec,
    ConstraintSpec,
    DataSpec,
    LatencySpec,
    ResourceSpec,
    SearchAlgSpec,
    TaskSpec,
)

SCHEDULERS: tuple[str, ...] = ("fifo", "asha")
SEARCH_ALGORITHMS: tuple[str, ...] = ("random", "surrogate")  # ecgsearch.search: RandomSearcher, SurrogateSearcher

# Skipped leading positional parameters of factories: they are supplied by the engine, not the file.
TASK_FACTORY_SKIP = 1  # factory(num_outputs, **params)

_POSITIVE_INT = Number(integer=True, low=1)
_POSITIVE = Number(low=0, low_open=True)

BUDGET_FIELDS = {
    "trials": _POSITIVE_INT,
    "epochs": _POSITIVE_INT,
    "scheduler": OneOf(SCHEDULERS, "a scheduler"),
    "grace_period": _POSITIVE_INT,
    "reduction_factor": Number(integer=True, low=2),
    "max_concurrent": _POSITIVE_INT,
    "trial_time_limit_s": _POSITIVE,
    # fault tolerance (ecgsearch.engine.faults, ecgsearch.train.checkpoints; docs/fault-tolerance.md)
    "max_failures": Number(integer=True, low=0),
    "checkpoint_every": Number(integer=True, low=0),
    "hang_timeout_s": _POSITIVE,
}
RESOURCE_FIELDS = {"cpu": Number(low=0, high=4096, low_open=True), "gpu": Number(low=0, high=1024),
                   "data_on_gpu": Switch(allow_auto=True), "compile": Switch()}  # ecgsearch.train.accel
CONSTRAINT_FIELDS = {"max_flops": _POSITIVE, "max_params": _POSITIVE, "max_latency_ms": _POSITIVE}


def parse_data(ctx: Context, value: Any, registries: Registries, where: str = "data") -> DataSpec:
    """``dataset`` plus the dataset factory's keyword arguments (names checked against its signature).

    where: the section's dotted key (``transfer.pretrain.data`` reads a second data section).
    """
    section = mapping(ctx, where, value)
    if "dataset" not in section:
        raise ctx.error(f"{where}.dataset", MISSING_PROBLEM)
    info = registered(ctx, f"{where}.dataset", section["dataset"], registries.datasets)
    cache_dir = section.get("cache_dir")
    if cache_dir is not None:
        cache_dir = Text().check(ctx, f"{where}.cache_dir", cache_dir)
    params = {k: v for k, v in section.items() if k not in ("dataset", "cache_dir")}
    check_parameter_names(ctx, where, params, info, skip=0)
    params = plain_params(ctx, where, params, declared_params(info, skip=0))
    params, cache_dir = data_paths(ctx, where, params, cache_dir)  # space/paths.py
    return DataSpec(dataset=info.name, params=params, cache_dir=cache_dir)


def parse_task(ctx: Context, value: Any, registries: Registries, where: str = "task") -> TaskSpec:
    """``task: name`` or ``task: {name: ..., other factory params}``."""
    key = where if isinstance(value, str) else f"{where}.name"
    if isinstance(value, str):
        value = {"name": value}
    section = mapping(ctx, where, value, "a task name or a mapping with a name")
    if "name" not in section:
        raise ctx.error(f"{where}.name", MISSING_PROBLEM)
    info = registered(ctx, key, section["name"], registries.tasks)
    params = {k: v for k, v in section.items() if k != "name"}
    check_parameter_names(ctx, where, params, info, skip=TASK_FACTORY_SKIP)
    return TaskSpec(name=info.name, params=plain_params(ctx, where, params, declared_params(info, TASK_FACTORY_SKIP)))


def parse_metric(ctx: Context, value: Any, task: TaskSpec, registries: Registries,
                 where: str = "metric") -> tuple[str, str]:
    """The metric (default: the task's) and its mode; the metric must apply to the task."""
    task_info: TaskInfo = registries.tasks.get(task.name)
    if value is None:
        value = task_info.default_metric
        if not value:
            raise ctx.error(where, f"{MISSING_PROBLEM}; task '{task.name}' names no default metric",
                            registries.metrics.names())
    info = registered(ctx, where, value, registries.metrics)
    kind = task.name  # a task's name is its kind
    if kind not in info.tasks:
        fitting = [m.name for m in registries.metrics if kind in m.tasks]
        raise ctx.error(where, f"{show(value)} does not apply to task '{kind}'", fitting, word=value)
    return info.name, info.mode


def parse_budget(ctx: Context, value: Any) -> BudgetSpec:
    fields = parse_fields(ctx, "budget", mapping(ctx, "budget", value), BUDGET_FIELDS,
                          required=("trials", "epochs"), noun="a budget setting")
    grace = fields.get("grace_period", 1)
    if grace > fields["epochs"]:
        raise ctx.error("budget.grace_period", f"{show(grace)} is not an integer between 1 and "
                        f"budget.epochs = {fields['epochs']}")
    return BudgetSpec(**fields)


def parse_resources(ctx: Context, value: Any) -> ResourceSpec:
    fields = parse_fields(ctx, "resources", mapping(ctx, "resources", value), RESOURCE_FIELDS,
                          noun="a resource")
    return ResourceSpec(**fields)


def parse_search(ctx: Context, value: Any, registries: Registries | None = None) -> SearchAlgSpec:
    """``algorithm`` from ``SEARCH_ALGORITHMS``; every other key is an option of that algorithm
    (the surrogate search's options are checked: ``ecgsearch.space.search_options``)."""
    section = mapping(ctx, "search", value)
    params = {k: v for k, v in section.items() if k != "algorithm"}
    algorithm = SearchAlgSpec.algorithm if section.get("algorithm") is None else OneOf(
        SEARCH_ALGORITHMS, "a search algorithm").check(ctx, "search.algorithm", section["algorithm"])
    if algorithm == "surrogate":
        params = parse_surrogate_options(ctx, params, registries)
    elif params:  # most likely surrogate options with the algorithm line forgotten
        key = f"search.{next(iter(params))}"
        raise ctx.error(key, f"the {algorithm} search takes no options; set search.algorithm: surrogate to "
                             "use this one, or remove it")
    return SearchAlgSpec(algorithm=algorithm, params=params)


def parse_constraints(ctx: Context, value: Any) -> ConstraintSpec:
    fields = parse_fields(ctx, "constraints", mapping(ctx, "constraints", value), CONSTRAINT_FIELDS,
                          noun="a constraint")
    return ConstraintSpec(**fields)


class _Later:
    """A latency field accepted as it is by ``parse_fields`` and checked afterwards (it needs other keys)."""

    def check(self, ctx: Context, key: str, value: Any) -> Any:
        return value


class _RegisteredName:
    """The name of a registered item of ``registry`` (the latency predictor's surrogate)."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def check(self, ctx: Context, key: str, value: Any) -> str:
        return registered(ctx, key, value, self.registry).name


def _latency_precision(ctx: Context, value: Any, backends: tuple[str, ...]) -> str | dict[str, str]:
    """One precision for all backends, or ``{backend: precision}`` naming only listed backends."""

    one = OneOf(LATENCY_PRECISIONS, "a precision")
    if not isinstance(value, dict):
        return one.check(ctx, "latency.precision", value)
    for name, precision in value.items():
        if name not in backends:
            raise ctx.error(f"latency.precision.{name}", f"{show(name)} is not one of latency.backends",
                            backends, word=name)
        one.check(ctx, f"latency.precision.{name}", precision)
    return dict(value)


def parse_latency(ctx: Context, value: Any, registries: Registries) -> LatencySpec:
    """Backends, batch size, threads, when to measure, precision, hint, time budget, predictor surrogate."""

    fields = {"backends": Names(registries.backends), "batch_size": _POSITIVE_INT, "threads": _POSITIVE_INT,
              "measure": OneOf(MEASURE_MODES, "a latency measuring mode"), "precision": _Later(),
              "hint": OneOf(HINTS, "a performance hint"), "time_budget_s": _POSITIVE,
              "predictor": _RegisteredName(registries.surrogates)}
    checked = parse_fields(ctx, "latency", mapping(ctx, "latency", value), fields, required=("backends",),
                           noun="a latency setting")
    if "precision" in checked:
        checked["precision"] = _latency_precision(ctx, checked["precision"], checked["backends"])
    return LatencySpec(**checked)
