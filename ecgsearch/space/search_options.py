"""The options of a searcher (``search: {algorithm: NAME, ...}``) and of a scheduler (``budget: {scheduler:
{name: NAME, ...}}``), checked against what the plugin declares, like every other plugin's parameters.

A declared ``str`` with a ``registry`` must name an item of that registry (``surrogate: random_forest``);
an ``objectives`` option maps result columns to ``max``/``min`` (a bare metric name means
``val.<name>``). The surrogate search's vocabulary lives here too, so its declaration and the searcher
say the same words.
"""

from __future__ import annotations

from typing import Any

from ecgsearch.infos import ParamSpec, PluginInfo
from ecgsearch.plugins import Registries
from ecgsearch.space.fields import check_parameter_names, declared_params, factory_defaults, registered
from ecgsearch.space.messages import Context, show
from ecgsearch.space.params import SETTABLE_KINDS
from ecgsearch.space.yamlio import child_key

INITIAL_DESIGNS: tuple[str, ...] = ("sobol", "random")
ACQUISITIONS: tuple[str, ...] = ("ei", "ucb")
OBJECTIVE_PREFIXES: tuple[str, ...] = ("val.", "cost.")


def parse_plugin_options(ctx: Context, prefix: str, options: dict[str, Any], info: PluginInfo, skip: int,
                         registries: Registries) -> dict[str, Any]:
    """``options`` checked against the factory's keywords (after its ``skip`` leading positional
    parameters) and the plugin's declarations; errors name ``prefix.<option>``."""
    check_parameter_names(ctx, prefix, options, info, skip)
    declared = declared_params(info, skip)
    checked = {name: _checked(ctx, child_key(prefix, name), value, declared.get(name), registries)
               for name, value in options.items()}
    nested = {name: (declared[name], value) for name, value in checked.items()
              if name in declared and declared[name].options_of and value}
    for name, (spec, value) in nested.items():
        attr, item = _options_owner(spec, checked, declared, info, skip)
        checked[name] = parse_plugin_options(ctx, child_key(prefix, name), dict(value),
                                             getattr(registries, attr).get(item), SETTABLE_KINDS[attr], registries)
    return checked


def _options_owner(spec: ParamSpec, options: dict[str, Any], declared: dict[str, ParamSpec], info: PluginInfo,
                   skip: int) -> tuple[str, str]:
    """The registry and item whose options a mapping option holds: ``registry:item``, or the item a sibling
    option names (its value here, else the factory's default)."""
    if spec.options_item is not None:
        return spec.options_item
    sibling = spec.options_of
    return declared[sibling].registry, options.get(sibling, factory_defaults(info, skip).get(sibling))


def _checked(ctx: Context, key: str, value: Any, spec: ParamSpec | None, registries: Registries) -> Any:
    if spec is None:
        return value
    if spec.type == "objectives":
        return _objectives(ctx, key, value, registries)
    if not spec.accepts(value):
        raise ctx.error(key, f"{show(value)} is not {spec.describe()}")
    if spec.registry and value is not None:
        return registered(ctx, key, value, getattr(registries, spec.registry)).name
    return value


def _objectives(ctx: Context, key: str, value: Any, registries: Registries) -> dict[str, str]:
    """``{macro_auroc: max, cost.flops: min}`` -> ``{"val.macro_auroc": "max", "cost.flops": "min"}``."""
    if not isinstance(value, dict) or len(value) < 2:
        raise ctx.error(key, f"{show(value)} is not a mapping of at least two objectives to max or min; "
                        "multi-objective search needs e.g. {macro_auroc: max, cost.flops: min}")
    metrics = registries.metrics.names()
    out = {}
    for name, mode in value.items():
        where = child_key(key, name)
        column = name if name.startswith(OBJECTIVE_PREFIXES) else f"val.{name}"
        if column.startswith("val.") and column[4:] not in metrics:
            raise ctx.error(where, f"{show(name)} is not a registered metric or a cost column (cost.params, "
                            "cost.flops, ...)", metrics, word=column[4:])
        if mode not in ("max", "min"):
            raise ctx.error(where, f"{show(mode)} is not max or min", ("max", "min"), word=mode)
        out[column] = mode
    return out
