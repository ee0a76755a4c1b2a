"""The sections around ``space:``: data, task, metric, budget, resources, search, constraints, latency.

Each section is a field table checked by ``fields.parse_fields``; only cross-field rules (grace period
within the epochs, a metric that fits the task) are written by hand.
"""

from __future__ import annotations

import logging
from typing import Any

from ecgsearch.infos import LOSS_METRIC, RECORD_FIELDS, TaskInfo, declared_fields
from ecgsearch.plugins import Registries
from ecgsearch.space.fields import (
    MISSING_PROBLEM,
    Duration,
    Names,
    Number,
    OneOf,
    Switch,
    Text,
    check_keys,
    check_parameter_names,
    declared_params,
    factory_parameters,
    mapping,
    parse_fields,
    plain_params,
    registered,
)
from ecgsearch.space.messages import Context, show
from ecgsearch.space.paths import data_paths
from ecgsearch.space.search_options import parse_plugin_options
from ecgsearch.space.spec import (
    HINTS,
    LATENCY_PRECISIONS,
    MEASURE_MODES,
    ON_BUDGET,
    BudgetSpec,
    ConstraintSpec,
    DataSpec,
    LatencySpec,
    ResourceSpec,
    SearchAlgSpec,
    TaskSpec,
)

log = logging.getLogger(__name__)

# scheduler options a file may also write in budget itself (the layout before schedulers were plugins)
LEGACY_SCHEDULER_KEYS: tuple[str, ...] = ("grace_period", "reduction_factor")
SCHEDULER_FACTORY_SKIP = 1  # factory(run, **options)
SEARCHER_FACTORY_SKIP = 1  # factory(problem, **options)

# Skipped leading positional parameters of factories: they are supplied by the engine, not the file.
TASK_FACTORY_SKIP = 1  # factory(num_outputs, **params)

_POSITIVE_INT = Number(integer=True, low=1)
_POSITIVE = Number(low=0, low_open=True)

BUDGET_FIELDS = {
    "trials": _POSITIVE_INT,
    "epochs": _POSITIVE_INT,
    "grace_period": _POSITIVE_INT,
    "reduction_factor": Number(integer=True, low=2),
    "max_concurrent": _POSITIVE_INT,
    "trial_time_limit_s": _POSITIVE,
    # fault tolerance (ecgsearch.engine.faults, ecgsearch.train.checkpoints; docs/fault-tolerance.md)
    "max_failures": Number(integer=True, low=0),
    "checkpoint_every": Number(integer=True, low=0),
    "hang_timeout_s": _POSITIVE,
    # the whole search's budget (ecgsearch.engine.budget; docs/space-file.md#budget)
    "time": Duration(),
    "gpu_hours": _POSITIVE,
    "on_budget": OneOf(ON_BUDGET, "finish or stop"),
    # seeds per configuration (ecgsearch.search.repeats; docs/space-file.md#budget)
    "repeats": _POSITIVE_INT,
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


def parse_data_over(ctx: Context, own: dict[str, Any], data: DataSpec, registries: Registries, where: str
                    ) -> DataSpec:
    """A second data section (``transfer.pretrain.data``, ``evaluate.datasets[i].data``): without ``dataset``, or
    naming the run's, its keys change the run's ``data`` section; naming another dataset, it stands alone."""
    if "dataset" not in own or own["dataset"] == data.dataset:
        own = {"dataset": data.dataset, **({"cache_dir": data.cache_dir} if data.cache_dir else {}),
               **dict(data.params), **own}
    return parse_data(ctx, own, registries, where=where)


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


def check_downstream_task(ctx: Context, task: TaskSpec, registries: Registries, where: str = "task") -> None:
    """The top-level task is the one trials are scored on: a self-supervised task learns no labels, so it
    may only pretrain (``transfer.pretrain.task``)."""
    if registries.tasks.get(task.name).self_supervised:
        supervised = [t.name for t in registries.tasks if not t.self_supervised]
        raise ctx.error(where, f"{show(task.name)} is self-supervised (it learns no labels), so it cannot be the "
                        "task trials are scored on; put it under transfer.pretrain.task and give task a supervised "
                        f"task ({', '.join(supervised)})")


def check_data_task(ctx: Context, data: DataSpec, task: TaskSpec, registries: Registries, data_key: str = "data",
                    task_key: str = "task") -> None:
    """The task must fit the targets the data section chooses (``DatasetInfo.label_sets``), before any data
    is read: a regression needs continuous targets, a multiclass task one label per record. A dataset
    that declares neither label sets nor tasks is not checked."""
    info = registries.datasets.get(data.dataset)
    kind = task.name  # a task's name is its kind
    if registries.tasks.get(kind).self_supervised:  # reads no targets: any dataset, labelled or not
        return
    if not info.tasks or kind in info.tasks and not info.label_sets:
        return
    if kind not in info.tasks:
        fix = f"use task: {info.tasks[0]}" if len(info.tasks) == 1 else "use one of those tasks"
        raise ctx.error(task_key, f"{show(kind)} does not fit dataset '{info.name}', whose targets fit only "
                        f"{_either(info.tasks, 'and')}; {fix}, or a dataset with {kind} targets")
    chosen = info.label_set(data.params)
    if chosen is None:  # a value the parameter's declaration let through but no set names: not checked
        return
    name, label_set = chosen
    param = f"{data_key}.{info.label_param}"
    if label_set.deprecated:
        log.warning("%s: %s: %s is an old name, read for now; write %s", ctx.source, param, show(name),
                    label_set.deprecated)
    for needed in label_set.requires:
        if data.params.get(needed) is None:
            raise ctx.error(param, f"{show(name)} of dataset '{info.name}' needs {data_key}.{needed}; set "
                            f"{data_key}.{needed} or choose another value of {info.label_param}")
    switch = f"{data_key}.{label_set.single_label}"
    if kind in label_set.fits(data.params.get(label_set.single_label) is True):
        return
    what = f"{param}: {show(name)} of dataset '{info.name}'" if info.label_param else \
        f"the labels of dataset '{info.name}'"
    if kind == "multiclass" and label_set.single_label:
        raise ctx.error(task_key, f"'multiclass' needs exactly one label per record and {what} can give several; "
                        f"set {switch}: true to keep only the records with exactly one label, or use task: "
                        "multilabel")
    fits = _either(label_set.tasks) + (f", or multiclass with {switch}: true" if label_set.single_label else "")
    others = {other: one for other, one in info.label_sets.items() if kind in one.fits(True) and not one.deprecated}
    if not others:  # only a deprecated name would fit (a plugin's odd declaration): the task is refused plainly
        raise ctx.error(task_key, f"{show(kind)} does not fit {what} (it fits {fits})")
    needs = [f"{data_key}.{n}" for n in dict.fromkeys(n for one in others.values() for n in one.requires)
             if data.params.get(n) is None]
    needs += [f"{data_key}.{s}: true" for s in dict.fromkeys(one.single_label for one in others.values()
                                                                if kind not in one.tasks)]
    also = f" with {' and '.join(needs)}" if needs else ""
    raise ctx.error(task_key, f"{show(kind)} does not fit {what} (it fits {fits}); set {param}: "
                    f"{_either(tuple(others))}{also} for {kind}")


def check_task_needs(ctx: Context, data: DataSpec, task: TaskSpec, registries: Registries, data_key: str = "data",
                     task_key: str = "task") -> None:
    """What the task needs of each record (``TaskInfo.needs``: patient ids) the chosen data must provide
    (``DatasetInfo.provides``), before any data is read; a dataset that cannot tell is checked at the trial."""
    needs = declared_fields(registries.tasks.get(task.name).needs, task.params) or frozenset()
    provided = declared_fields(registries.datasets.get(data.dataset).provides, data.params)
    if provided is None or needs <= provided:
        return
    missing = sorted(needs - provided)
    givers = [info.name for info in registries.datasets
              if set(missing) <= (declared_fields(info.provides, {}) or frozenset())]
    also = f" (the defaults of {_either(tuple(givers))} do)" if givers else ""
    raise ctx.error(task_key, f"{show(task.name)} as set here needs {' and '.join(RECORD_FIELDS[m] for m in missing)}"
                    f", which dataset '{data.dataset}' does not give with these {data_key} settings; change "
                    f"{task_key}'s settings, or use data that gives them{also}")


def _either(names: tuple[str, ...], word: str = "or") -> str:
    """``a``, ``a or b``, ``a, b or c`` (or ``and``)."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {word} {names[-1]}"


def parse_metric(ctx: Context, value: Any, task: TaskSpec, registries: Registries,
                 where: str = "metric") -> tuple[str, str]:
    """The metric (default: the task's) and its mode; the metric must apply to the task."""
    task_info: TaskInfo = registries.tasks.get(task.name)
    if value is None:
        value = task_info.default_metric
        if not value:
            raise ctx.error(where, f"{MISSING_PROBLEM}; task '{task.name}' names no default metric",
                            registries.metrics.names())
    if value == LOSS_METRIC:  # the task's own loss: every task reports it (val.loss), lower is better
        return LOSS_METRIC, "min"
    info = registered(ctx, where, value, registries.metrics)
    kind = task.name  # a task's name is its kind
    if kind not in info.tasks:
        fitting = [m.name for m in registries.metrics if kind in m.tasks]
        raise ctx.error(where, f"{show(value)} does not apply to task '{kind}'", fitting, word=value)
    return info.name, info.mode

def parse_budget(ctx: Context, value: Any, registries: Registries) -> BudgetSpec:
    """Trials, epochs, fault tolerance, and the trial scheduler (``parse_scheduler``)."""
    section = mapping(ctx, "budget", value)
    check_keys(ctx, "budget", section, ["trials", "epochs", "scheduler", *list(BUDGET_FIELDS)[2:]],
               "a budget setting")
    fields = parse_fields(ctx, "budget", {k: v for k, v in section.items() if k != "scheduler"}, BUDGET_FIELDS,
                          required=("trials", "epochs"), noun="a budget setting")
    legacy = {key: fields.pop(key) for key in LEGACY_SCHEDULER_KEYS if key in fields}
    name, params = parse_scheduler(ctx, section.get("scheduler"), legacy, registries)
    grace = params.get("grace_period", 1)
    if isinstance(grace, int) and grace > fields["epochs"]:
        key = "budget.grace_period" if "grace_period" in legacy else "budget.scheduler.grace_period"
        raise ctx.error(key, f"{show(grace)} is not an integer between 1 and budget.epochs = {fields['epochs']}")
    check_paused_together(ctx, registries.schedulers.get(name), fields, params)
    return BudgetSpec(**fields, scheduler=name, scheduler_params=params)


def check_paused_together(ctx: Context, scheduler: Any, fields: dict[str, Any], params: dict[str, Any]) -> None:
    """A scheduler that pauses a group of trials until all have reported needs ``max_concurrent`` (which
    counts paused trials) to let the whole group in (``SchedulerInfo.paused_together``)."""
    limit, together = fields.get("max_concurrent"), getattr(scheduler, "paused_together", None)
    if not limit or together is None:
        return
    group = together(fields["epochs"], **params)
    if limit < group:
        raise ctx.error("budget.max_concurrent", f"{limit} is fewer than the {group} trials scheduler "
                        f"'{scheduler.name}' pauses together at {fields['epochs']} epochs, and paused trials count "
                        "against it, so they would be judged only among the trials let in at once; remove "
                        "max_concurrent (the trials' resources then limit how many run, and paused ones free "
                        f"theirs), set it to {group} or more, or use scheduler asha")


def parse_scheduler(ctx: Context, value: Any, legacy: dict[str, Any], registries: Registries
                    ) -> tuple[str, dict[str, Any]]:
    """``scheduler: NAME`` or ``scheduler: {name: NAME, option: value}``: a registered scheduler and its
    options, checked against its declarations. ``legacy`` holds options written in ``budget`` itself
    (``grace_period``, ``reduction_factor``: the layout before schedulers were plugins)."""
    key, options = "budget.scheduler", {}
    if isinstance(value, dict):
        if "name" not in value:
            raise ctx.error("budget.scheduler.name", MISSING_PROBLEM)
        key, options = "budget.scheduler.name", {k: v for k, v in value.items() if k != "name"}
        value = value["name"]
    info = usable(ctx, key, registered(ctx, key, value or BudgetSpec.scheduler, registries.schedulers))
    for name, option in legacy.items():
        if name not in declared_params(info, SCHEDULER_FACTORY_SKIP):
            raise ctx.error(f"budget.{name}", f"scheduler '{info.name}' has no option {name}; remove it or "
                            "choose a scheduler that takes it (asha)")
        options.setdefault(name, option)
    return info.name, parse_plugin_options(ctx, "budget.scheduler", options, info, SCHEDULER_FACTORY_SKIP,
                                           registries)


def check_scheduler_and_searcher(ctx: Context, budget: BudgetSpec, search: SearchAlgSpec,
                                 registries: Registries) -> None:
    """A scheduler that changes trials' hyperparameters as they train (PBT) goes with a searcher that only
    proposes the first population (random, grid): a model-based one would learn from rows whose
    hyperparameters changed under it."""
    scheduler, searcher = registries.schedulers.get(budget.scheduler), registries.searchers.get(search.algorithm)
    if getattr(scheduler, "mutates_config", False) and getattr(searcher, "model_based", False):
        raise ctx.error("search.algorithm", f"the {searcher.name} search learns from finished trials, and scheduler "
                        f"'{scheduler.name}' changes their hyperparameters while they train; use search.algorithm: "
                        "random or grid with it, or another scheduler")


def check_budget_resources(ctx: Context, budget: BudgetSpec, resources: ResourceSpec) -> None:
    """A GPU-hour budget counts the GPUs the trials reserve: it needs trials that reserve some."""
    if budget.gpu_hours is not None and not resources.gpu:
        raise ctx.error("budget.gpu_hours", f"{show(budget.gpu_hours)} GPU hours cannot be spent by trials that "
                        "reserve no GPU (resources.gpu is 0); set resources.gpu or budget a time instead")


def parse_resources(ctx: Context, value: Any) -> ResourceSpec:
    fields = parse_fields(ctx, "resources", mapping(ctx, "resources", value), RESOURCE_FIELDS,
                          noun="a resource")
    return ResourceSpec(**fields)


def usable(ctx: Context, key: str, info: Any) -> Any:
    """``info`` when the packages it needs are installed; otherwise the error says which and how."""
    ok, reason = info.available()
    if not ok:
        raise ctx.error(key, f"{info.kind} '{info.name}' {reason}")
    return info


def parse_search(ctx: Context, value: Any, registries: Registries) -> SearchAlgSpec:
    """``algorithm``: a registered searcher (default ``random``); every other key is one of its options,
    checked against what the searcher plugin declares."""
    section = mapping(ctx, "search", value)
    name = section.get("algorithm") or SearchAlgSpec.algorithm
    info = usable(ctx, "search.algorithm", registered(ctx, "search.algorithm", name, registries.searchers))
    options = {k: v for k, v in section.items() if k not in ("algorithm", "warm_start")}
    warm = parse_warm_start(ctx, section["warm_start"], info) if "warm_start" in section else ()
    if options and factory_parameters(info, SEARCHER_FACTORY_SKIP) == []:  # another searcher's options, likely
        name = next(iter(options))
        takers = [other.name for other in registries.searchers if name in declared_params(other, SEARCHER_FACTORY_SKIP)]
        hint = f"set search.algorithm: {' or '.join(takers)} to use this one" if takers else "see `ecgsearch " \
            "plugins --params --kind searchers`"
        raise ctx.error(f"search.{name}", f"the {info.name} search takes no options; {hint}, or remove it")
    params = parse_plugin_options(ctx, "search", options, info, SEARCHER_FACTORY_SKIP, registries)
    return SearchAlgSpec(algorithm=info.name, params=params, warm_start=warm)


def parse_warm_start(ctx: Context, value: Any, info: Any) -> tuple[str, ...]:
    """``warm_start: [runs/a, runs/b]`` (or one folder): earlier runs holding a results table, for a searcher
    that learns from finished trials. Relative folders are taken from the current directory when the search
    starts; they are not checked here, so a run's copy of its space file parses anywhere (report, prune)."""
    key = "search.warm_start"
    if not getattr(info, "model_based", False):
        raise ctx.error(key, f"the {info.name} search does not learn from earlier trials; use a model-based "
                        "search (search.algorithm: surrogate or optuna) or remove warm_start")
    runs = [value] if isinstance(value, str) else value
    if not isinstance(runs, list) or not runs or not all(isinstance(r, str) and r for r in runs):
        raise ctx.error(key, f"{show(value)} is not a run folder or a list of run folders (warm_start: [runs/a])")
    return tuple(runs)  # the folders are read (and checked) when a search starts: engine.run.warm_start


def parse_constraints(ctx: Context, value: Any) -> ConstraintSpec:
    fields = parse_fields(ctx, "constraints", mapping(ctx, "constraints", value), CONSTRAINT_FIELDS,
                          noun="a constraint")
    return ConstraintSpec(**fields)


class _Later:
    """A latency field accepted as it is by ``parse_fields`` and checked afterwards (it needs other keys)."""

    def check(self, ctx: Context, key: str, value: Any) -> Any:
        return value


class _RegisteredName:
    """The name of a registered item of ``registry``, or one of ``also`` (the latency predictor: a surrogate,
    or ``kernel``, the kernel-level predictor of ``ecgsearch.latency.kernel_predictor``)."""

    def __init__(self, registry: Any, also: tuple[str, ...] = ()) -> None:
        self.registry = registry
        self.also = also

    def check(self, ctx: Context, key: str, value: Any) -> str:
        if isinstance(value, str) and value in self.also:
            return value
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
              "predictor": _RegisteredName(registries.surrogates, also=("kernel",))}
    checked = parse_fields(ctx, "latency", mapping(ctx, "latency", value), fields, required=("backends",),
                           noun="a latency setting")
    if "precision" in checked:
        checked["precision"] = _latency_precision(ctx, checked["precision"], checked["backends"])
    return LatencySpec(**checked)
