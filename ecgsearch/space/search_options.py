"""The options of ``search: {algorithm: surrogate, ...}`` (``ecgsearch.search.SurrogateSearcher``).

Checked like every other section: a field table plus the one hand-written rule, ``objectives``
(a mapping of at least two result columns to ``max``/``min``; a bare metric name means ``val.<name>``).
"""

from __future__ import annotations

from typing import Any

from ecgsearch.plugins import Registries, get_registries
from ecgsearch.space.fields import (
    Number,
    OneOf,
    mapping,
    parse_fields,
    plain_params,
    registered,
)
from ecgsearch.space.messages import Context, show
from ecgsearch.space.yamlio import child_key

INITIAL_DESIGNS: tuple[str, ...] = ("sobol", "random")
ACQUISITIONS: tuple[str, ...] = ("ei", "ucb")
MODES: tuple[str, ...] = ("max", "min")
OBJECTIVE_PREFIXES: tuple[str, ...] = ("val.", "cost.")


class _Surrogate:
    def __init__(self, registries: Registries) -> None:
        self.registries = registries

    def check(self, ctx: Context, key: str, value: Any) -> str:
        return registered(ctx, key, value, self.registries.surrogates).name


class _Params:
    def check(self, ctx: Context, key: str, value: Any) -> dict[str, Any]:
        return plain_params(ctx, key, mapping(ctx, key, value))


class _Objectives:
    """``{macro_auroc: max, cost.flops: min}`` -> ``{"val.macro_auroc": "max", "cost.flops": "min"}``."""

    def __init__(self, registries: Registries) -> None:
        self.registries = registries

    def check(self, ctx: Context, key: str, value: Any) -> dict[str, str]:
        section = mapping(ctx, key, value, "a mapping of objectives to max or min")
        if len(section) < 2:
            raise ctx.error(key, f"{show(value)} names {len(section)} objective; multi-objective search needs "
                            "at least two, e.g. {macro_auroc: max, cost.flops: min}")
        metrics = self.registries.metrics.names()
        out = {}
        for name, mode in section.items():
            where = child_key(key, name)
            column = name if name.startswith(OBJECTIVE_PREFIXES) else f"val.{name}"
            if column.startswith("val.") and column[4:] not in metrics:
                raise ctx.error(where, f"{show(name)} is not a registered metric or a cost column (cost.params, "
                                "cost.flops, ...)", metrics, word=column[4:])
            out[column] = OneOf(MODES, "max or min").check(ctx, where, mode)
        return out


def surrogate_fields(registries: Registries) -> dict[str, Any]:
    return {
        "surrogate": _Surrogate(registries),
        "surrogate_params": _Params(),
        "initial_trials": Number(integer=True, low=1),
        "initial_design": OneOf(INITIAL_DESIGNS, "an initial design"),
        "acquisition": OneOf(ACQUISITIONS, "an acquisition function"),
        "candidates": Number(integer=True, low=1),
        "local_fraction": Number(low=0, high=1),
        "kappa": Number(low=0),
        "xi": Number(low=0),
        "max_new_costs": Number(integer=True, low=1),
        "objectives": _Objectives(registries),
    }


def parse_surrogate_options(ctx: Context, params: dict[str, Any], registries: Registries | None) -> dict[str, Any]:
    """The checked options of the surrogate search (keys as ``SurrogateSearcher`` takes them)."""
    if registries is None:
        registries = get_registries()
    return parse_fields(ctx, "search", params, surrogate_fields(registries), noun="an option of the surrogate search")
