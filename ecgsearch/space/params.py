"""The ``space:`` section: conditional choices with per-option sub-spaces, and trial parameters.

``architecture``, ``optimizer`` and the optional ``schedule`` are conditional choices: each option is a
registered plugin item
whose sub-space lists the keyword arguments of its factory. A value is a fixed value (a scalar or a
plain list), a distribution (a one-key mapping such as ``{loguniform: [1e-4, 1e-2]}``), or a parameter
group (any other mapping, passed to the factory as a nested dict).
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

from ecgsearch.infos import ParamSpec, PluginInfo
from ecgsearch.plugins import Registries
from ecgsearch.space.distributions import (
    DISTRIBUTIONS,
    BadArguments,
    Distribution,
    Fixed,
    Grid,
    Range,
    make_distribution,
)
from ecgsearch.space.fields import (
    MISSING_PROBLEM,
    check_keys,
    check_parameter_names,
    declared_params,
    factory_defaults,
    is_plain,
    mapping,
    registered,
)
from ecgsearch.space.messages import Context, close_match, show
from ecgsearch.space.model import TRIAL_PARAMS, Param, Space, TrialParam
from ecgsearch.space.yamlio import child_key, item_key

# choice key -> (registry attribute, leading positional factory parameters the engine supplies)
CONDITIONAL_CHOICES: dict[str, tuple[str, int]] = {
    "architecture": ("architectures", 3),  # factory(in_leads, num_samples, num_outputs, **hparams)
    "optimizer": ("optimizers", 1),  # factory(parameters, **hparams)
    "schedule": ("schedules", 2),  # factory(optimizer, run, **hparams)
}
# Choices a file may leave out, and the option a trial then uses. A left-out choice is not sampled at
# all (no ``schedule`` key in the configuration), so older files sample exactly as before.
OPTIONAL_CHOICES: dict[str, str] = {"schedule": "constant"}
DEFAULT_KEY = "default"  # `default: true` in an option starts from the item's default_space
TYPO_CUTOFF = 0.75  # how close a one-key mapping's key must be to a distribution name to be a typo


def parse_space_section(ctx: Context, value: Any, registries: Registries) -> Space:
    """Validate the ``space:`` section and build the ``Space``; missing trial params get defaults."""
    section = mapping(ctx, "space", value)
    allowed = [*CONDITIONAL_CHOICES, *TRIAL_PARAMS]
    check_keys(ctx, "space", section, allowed, "a conditional choice or a trial parameter")
    params: list[Param] = []
    choices: dict[str, tuple[str, ...]] = {}
    for kind, (attr, skip) in CONDITIONAL_CHOICES.items():
        key = f"space.{kind}"
        if kind not in section and kind in OPTIONAL_CHOICES:
            continue
        if kind not in section:
            raise ctx.error(key, MISSING_PROBLEM)
        options = _options(ctx, key, section[kind])
        registry = getattr(registries, attr)
        for option, (sub, option_key, at) in options.items():
            info = registered(ctx, option_key, option, registry, at=at)
            raw = _option_params(ctx, option_key, sub, info)
            check_parameter_names(ctx, option_key, raw, info, skip)
            declared = declared_params(info, skip)
            for name, param_value in raw.items():
                parsed = _parse_param(ctx, child_key(option_key, name), f"{kind}.{option}.{name}",
                                      param_value, (kind, option), len(options))
                check_declared(ctx, child_key(option_key, name), param_value, parsed, declared.get(name))
                params += parsed
        choices[kind] = tuple(options)
    for name, trial in TRIAL_PARAMS.items():
        given = section.get(name)
        dist = Fixed(trial.default) if given is None else trial_param(ctx, f"space.{name}", given, trial)
        params.append(Param(name, dist))
    return Space(parameters=tuple(params), choices=choices)


def _options(ctx: Context, key: str, value: Any) -> dict[str, tuple[Any, str, str]]:
    """option -> (sub-space, key for messages, key whose line to report)."""
    if isinstance(value, str):
        return {value: (None, key, key)}
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return {v: (None, key, item_key(key, i)) for i, v in enumerate(value)}
    if isinstance(value, dict) and value:
        return {name: (sub, child_key(key, name), child_key(key, name)) for name, sub in value.items()}
    raise ctx.error(key, f"{show(value)} is not an option name or a non-empty mapping of options to sub-spaces")


def _option_params(ctx: Context, key: str, sub: Any, info: PluginInfo) -> dict[str, Any]:
    """The option's raw parameters, with ``default: true`` merged over the item's default space."""
    if sub is None:
        return {}
    if not isinstance(sub, dict):
        raise ctx.error(key, f"{show(sub)} is not a mapping of parameters; use null for the factory defaults")
    use_default = sub.get(DEFAULT_KEY, False)
    if not isinstance(use_default, bool):
        raise ctx.error(child_key(key, DEFAULT_KEY), f"{show(use_default)} is not true or false")
    own = {name: value for name, value in sub.items() if name != DEFAULT_KEY}
    if not use_default:
        return own
    if not isinstance(info.default_space, Mapping):
        raise ctx.error(child_key(key, DEFAULT_KEY), f"{info.kind} '{info.name}' of plugin '{info.plugin}' "
                        "has a default space that is not a mapping")
    return _merge(_to_plain(info.default_space), own)


def _to_plain(value: Any) -> Any:
    """A plugin's default space (any Mapping/tuple) as the dicts and lists a file would give."""
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return copy.deepcopy(value)


def _is_group(value: Any) -> bool:
    return isinstance(value, dict) and not any(k in DISTRIBUTIONS for k in value)


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` wins; parameter groups present in both are merged key by key."""
    merged = dict(base)
    for name, value in override.items():
        if _is_group(merged.get(name)) and _is_group(value):
            merged[name] = _merge(merged[name], value)
        else:
            merged[name] = value
    return merged


def _parse_param(
    ctx: Context, key: str, name: str, value: Any, condition: tuple[str, str], option_count: int
) -> list[Param]:
    """One option parameter: a fixed value, a distribution, or a group of parameters (recursively)."""
    if not isinstance(value, dict):
        return [Param(name, _fixed(ctx, key, value), condition)]
    dist_name = _distribution_name(ctx, key, value, group_ok=True)
    if dist_name is None:
        params: list[Param] = []
        for sub, sub_value in value.items():
            params += _parse_param(ctx, child_key(key, sub), f"{name}.{sub}", sub_value, condition, option_count)
        return params
    dist = _build(ctx, key, dist_name, value[dist_name])
    if isinstance(dist, Grid) and option_count > 1:
        raise ctx.error(key, f"grid is only allowed outside conditional options or when the choice has a "
                        f"single option, and {condition[0]} has {option_count} options; use choice here",
                        at=child_key(key, dist_name))
    return [Param(name, dist, condition)]


def check_declared(ctx: Context, key: str, value: Any, parsed: list[Param], spec: ParamSpec | None) -> None:
    """Every value the parameter can take (a fixed value, each choice, a range's ends) is one its
    plugin declares; a range must also give the declared kind of number."""
    if spec is None or spec.type == "any":
        return
    if _is_group(value):
        raise ctx.error(key, f"a group of parameters is not {spec.describe()}")
    dist = parsed[0].dist
    if isinstance(dist, Range) and (spec.type not in ("int", "float") or spec.choices or spec.odd
                                    or (spec.type == "int" and not _integral(dist))):
        hint = "use randint, qrandint or choice" if spec.type == "int" and not spec.odd else "use choice"
        raise ctx.error(key, f"{dist.describe()} gives values that are not {spec.describe()}; {hint}")
    for edge in dist.edges():
        if spec.accepts(edge):
            continue
        if isinstance(dist, Fixed):
            raise ctx.error(key, f"{show(edge)} is not {spec.describe()}")
        raise ctx.error(key, f"{dist.describe()} can give {show(edge)}, which is not {spec.describe()}")


def _integral(dist: Range) -> bool:
    """Whether a range gives only integers (integral floats included, as factories take them)."""
    return dist.integer or (dist.q is not None and float(dist.q).is_integer()
                            and all(float(b).is_integer() for b in dist.bounds()))


def _distribution_name(ctx: Context, key: str, value: dict[str, Any], group_ok: bool) -> str | None:
    """The distribution keyword of a mapping, or None for a parameter group (when ``group_ok``)."""
    names = list(DISTRIBUTIONS)
    found = [k for k in value if k in DISTRIBUTIONS]
    if found:
        if len(value) > 1:
            others = ", ".join(repr(k) for k in value if k != found[0])
            raise ctx.error(key, f"'{found[0]}' is mixed with {others}; a distribution is a mapping with "
                            "exactly one key")
        return found[0]
    if len(value) == 1:
        word, args = next(iter(value.items()))
        typo = close_match(word, names, TYPO_CUTOFF) is not None and isinstance(args, list)
        if typo or not group_ok:
            raise ctx.error(key, f"{show(word)} is not a distribution", names, word=word, at=child_key(key, word))
    if not group_ok:
        raise ctx.error(key, f"a mapping with {len(value)} keys is not a distribution; a distribution is a "
                        "mapping with exactly one key", names)
    return None


def _build(ctx: Context, key: str, dist_name: str, args: Any) -> Distribution:
    try:
        return make_distribution(dist_name, args)
    except BadArguments as error:
        raise ctx.error(key, str(error), at=child_key(key, dist_name)) from None


def _fixed(ctx: Context, key: str, value: Any) -> Fixed:
    if not is_plain(value):
        raise ctx.error(key, f"{show(value)} is not a value, a list of values or a distribution")
    return Fixed(value)


def trial_param(ctx: Context, key: str, value: Any, trial: TrialParam) -> Distribution:
    """A trial parameter: fixed or a distribution, every possible value accepted by its check."""
    if isinstance(value, dict):
        dist_name = _distribution_name(ctx, key, value, group_ok=False)
        assert dist_name is not None
        dist: Distribution = _build(ctx, key, dist_name, value[dist_name])
    else:
        converted = trial.check.convert(value)
        if converted is None:
            raise ctx.error(key, f"{show(value)} is not {trial.check.describe()}")
        return Fixed(converted)
    for edge in dist.edges():
        if trial.check.convert(edge) is None:
            raise ctx.error(key, f"{dist.describe()} can give {show(edge)}, which is not "
                            f"{trial.check.describe()}")
    return dist


# registry attribute -> leading positional factory parameters the engine supplies (not settable)
SETTABLE_KINDS: dict[str, int] = {**{attr: skip for attr, skip in CONDITIONAL_CHOICES.values()},
                                  "datasets": 0, "tasks": 1, "schedulers": 1, "searchers": 1, "trackers": 2,
                                  "surrogates": 1}


def parameter_rows(registries: Registries, kinds: tuple[str, ...] = tuple(SETTABLE_KINDS)) -> list[dict[str, Any]]:
    """Every settable parameter of every item of ``kinds``: what ``ecgsearch plugins --params`` lists and
    the docs' parameter tables are generated from (the declarations in the info records)."""
    rows = []
    for attr in kinds:
        skip = SETTABLE_KINDS[attr]
        for info in getattr(registries, attr):
            defaults = factory_defaults(info, skip)
            for name, spec in declared_params(info, skip).items():
                rows.append({"kind": info.kind, "item": info.name, "parameter": name, "takes": spec.describe(),
                             "default": defaults.get(name, "required"), "doc": spec.doc})
    return rows
