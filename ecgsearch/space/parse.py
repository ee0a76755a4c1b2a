"""Entry points: read a space file (or string, or mapping), validate every section, build ``SearchSpec``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from ecgsearch.errors import SpaceError
from ecgsearch.plugins import Registries, get_registries
from ecgsearch.space.evaluate import parse_evaluate
from ecgsearch.space.fields import Number, RunName, check_keys
from ecgsearch.space.messages import Context, show
from ecgsearch.space.params import parse_space_section
from ecgsearch.space.sections import (
    check_budget_resources,
    check_data_task,
    check_downstream_task,
    check_scheduler_and_searcher,
    check_task_needs,
    parse_budget,
    parse_constraints,
    parse_data,
    parse_latency,
    parse_metric,
    parse_resources,
    parse_search,
    parse_task,
)
from ecgsearch.space.spec import ConstraintSpec, ResourceSpec, SearchAlgSpec, SearchSpec
from ecgsearch.space.tracking import parse_tracking
from ecgsearch.space.transfer import check_precision, parse_transfer, with_param
from ecgsearch.space.yamlio import load_yaml, read_text

log = logging.getLogger(__name__)

TOP_LEVEL_KEYS: tuple[str, ...] = (
    "name", "seed", "data", "task", "metric", "budget", "resources", "search", "constraints", "latency", "space",
    "transfer", "tracking", "evaluate",
)
REQUIRED_KEYS: tuple[str, ...] = ("data", "task", "budget", "space")


def load_space(path: str | Path, registries: Registries | None = None, check_trackers: bool = True) -> SearchSpec:
    """Read and validate the space file at ``path``; every problem is a one-line ``SpaceError``.

    check_trackers: False for a finished run's copy (``open_run``): its trackers' packages are needed to
    search, not to read the run.
    """
    source = str(path)
    document, lines = load_yaml(read_text(path), source)
    return _build(document, Context(source, lines), Path(path).stem, registries, check_trackers)


def file_error(path: str | Path, key: str, problem: str) -> SpaceError:
    """A ``FILE:LINE: key: problem`` error about the space file at ``path``, for a check made after parsing
    (the line of ``key``, or of its nearest ancestor; no line when the file cannot be read again)."""
    try:
        _, lines = load_yaml(read_text(path), str(path))
    except (OSError, SpaceError):
        lines = {}
    return Context(str(path), lines).error(key, problem)


def parse_space(
    text_or_mapping: str | Mapping[str, Any],
    source: str = "<string>",
    registries: Registries | None = None,
) -> SearchSpec:
    """Like ``load_space`` for YAML text (or an already-loaded mapping, which has no line numbers)."""
    if isinstance(text_or_mapping, Mapping):
        document, lines = _to_plain(text_or_mapping), {}
    else:
        document, lines = load_yaml(str(text_or_mapping), source)
    stem = "space" if source.startswith("<") else Path(source).stem
    return _build(document, Context(source, lines), stem, registries)


def _to_plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_to_plain(v) for v in value]
    return value


def _build(document: Any, ctx: Context, stem: str, registries: Registries | None,
           check_trackers: bool = True) -> SearchSpec:
    if not isinstance(document, dict):
        raise ctx.error("", f"the top level must be a mapping of sections, not {show(document)}",
                        TOP_LEVEL_KEYS)
    check_keys(ctx, "", document, TOP_LEVEL_KEYS, "a top-level section")
    for key in REQUIRED_KEYS:
        if document.get(key) is None:
            problem = "the section is empty" if key in document else "the required section is missing"
            raise ctx.error(key, problem)
    if registries is None:
        registries = get_registries()

    def optional(key: str, parse: Any, default: Any) -> Any:
        return default if document.get(key) is None else parse(ctx, document[key])

    name = optional("name", lambda c, v: RunName().check(c, "name", v), stem)
    seed = optional("seed", lambda c, v: Number(integer=True, low=0).check(c, "seed", v), 0)
    data = parse_data(ctx, document["data"], registries)
    task = parse_task(ctx, document["task"], registries)
    check_downstream_task(ctx, task, registries)
    check_data_task(ctx, data, task, registries)  # the task fits the chosen targets, before any data is read
    check_task_needs(ctx, data, task, registries)
    metric, mode = parse_metric(ctx, document.get("metric"), task, registries)
    budget = parse_budget(ctx, document["budget"], registries)
    resources = optional("resources", parse_resources, ResourceSpec())
    check_budget_resources(ctx, budget, resources)
    search = optional("search", lambda c, v: parse_search(c, v, registries), SearchAlgSpec())
    check_scheduler_and_searcher(ctx, budget, search, registries)
    constraints = optional("constraints", parse_constraints, ConstraintSpec())
    latency = optional("latency", lambda c, v: parse_latency(c, v, registries), None)
    space = parse_space_section(ctx, document["space"], registries)
    check_precision(ctx, space, resources)
    transfer = None
    if document.get("transfer") is not None:
        transfer, added = parse_transfer(ctx, document["transfer"], data, registries)
        space = with_param(space, *added)
    tracking = optional("tracking", lambda c, v: parse_tracking(c, v, registries, check_trackers), {})
    evaluate = optional("evaluate", lambda c, v: parse_evaluate(c, v, data, task.name, registries), None)
    spec = SearchSpec(
        path=ctx.source,
        name=name,
        seed=seed,
        data=data,
        task=task,
        metric=metric,
        mode=mode,
        budget=budget,
        resources=resources,
        search=search,
        constraints=constraints,
        latency=latency,
        space=space,
        lines=dict(ctx.lines),
        transfer=transfer,
        tracking=tracking,
        evaluate=evaluate,
    )
    log.debug("parsed space file %s: %d parameters", ctx.source, len(spec.space.parameters))
    return spec
