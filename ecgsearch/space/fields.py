"""Reusable field checks: one parameterised validator per kind of value, shared by every section.

A section is described as a table ``key -> field`` and checked by ``parse_fields``, so budget,
resources, constraints and latency need no hand-written, near-identical validation code.
"""

from __future__ import annotations

import inspect
import logging
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Protocol

from ecgsearch.infos import ParamSpec, PluginInfo
from ecgsearch.plugins import Registry
from ecgsearch.space.messages import Context, show
from ecgsearch.space.yamlio import child_key, item_key

log = logging.getLogger(__name__)

MISSING_PROBLEM = "the required key is missing"
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def as_number(value: Any) -> int | float | None:
    """``value`` as an int or float, or None; numeric strings (``'5e7'``) count, booleans do not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.replace("_", ""))
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def is_plain(value: Any) -> bool:
    """A scalar or a (nested) list of scalars: what may be passed to a factory as a fixed value."""
    if isinstance(value, list):
        return all(is_plain(item) for item in value)
    return is_scalar(value)


class Field(Protocol):
    def check(self, ctx: Context, key: str, value: Any) -> Any:
        """The converted value, or raise the ``SpaceError`` for ``key``."""


@dataclass(frozen=True)
class Number:
    """An int or float with optional bounds; ``low_open`` makes the lower bound exclusive.

    Numeric strings (``'5e7'``) count as numbers here (section settings); the bounds and their wording
    are the plugin contract's ``ParamSpec``, so both say the same thing the same way.
    """

    integer: bool = False
    low: float | None = None
    high: float | None = None
    low_open: bool = False

    @property
    def spec(self) -> ParamSpec:
        return ParamSpec("int" if self.integer else "float", self.low, self.high, self.low_open)

    def describe(self) -> str:
        return self.spec.describe()

    def convert(self, value: Any) -> int | float | None:
        """The number, or None when ``value`` is not one or is out of bounds."""
        if self.integer:
            number = value if isinstance(value, int) and not isinstance(value, bool) else None
        else:
            number = as_number(value)
            number = float(number) if number is not None else None
        return number if number is not None and self.spec.accepts(number) else None

    def check(self, ctx: Context, key: str, value: Any) -> int | float:
        number = self.convert(value)
        if number is None:
            raise ctx.error(key, f"{show(value)} is not {self.describe()}")
        return number


DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)d)?\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*"
                      r"(?:(\d+(?:\.\d+)?)s)?")
DURATION_UNITS = (86_400, 3_600, 60, 1)


@dataclass(frozen=True)
class Duration:
    """A length of time > 0, in seconds: a number of seconds or ``2h``, ``90m``, ``1h30m``, ``45s``, ``1.5d``."""

    def convert(self, value: Any) -> float | None:
        match = DURATION.fullmatch(value.strip()) if isinstance(value, str) else None
        if match is not None and any(match.groups()):
            value = sum(float(part) * unit for part, unit in zip(match.groups(), DURATION_UNITS) if part)
        number = as_number(value)
        return float(number) if number is not None and math.isfinite(number) and number > 0 else None

    def check(self, ctx: Context, key: str, value: Any) -> float:
        seconds = self.convert(value)
        if seconds is None:
            raise ctx.error(key, f"{show(value)} is not a duration > 0; write seconds (7200) or e.g. 2h, 90m, 1h30m")
        return seconds


@dataclass(frozen=True)
class OneOf:
    """A string out of a fixed tuple (schedulers, search algorithms)."""

    allowed: tuple[str, ...]
    noun: str

    def check(self, ctx: Context, key: str, value: Any) -> str:
        if value not in self.allowed:
            raise ctx.error(key, f"{show(value)} is not {self.noun}", self.allowed, word=value)
        return value


@dataclass(frozen=True)
class Text:
    """A non-empty string (names, directories)."""

    def check(self, ctx: Context, key: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ctx.error(key, f"{show(value)} is not a non-empty string")
        return value


@dataclass(frozen=True)
class RunName:
    """The run's ``name``: it names the folder ``runs/<name>`` when ``--out`` is omitted, so it must be a
    safe file name (no path separators, no ``..``, not too long for a file system)."""

    def check(self, ctx: Context, key: str, value: Any) -> str:
        if not isinstance(value, str) or not SAFE_NAME.fullmatch(value):
            raise ctx.error(key, f"{show(value)} is not a safe run name; use 1 to 100 letters, digits, '.', '_' "
                            "or '-', starting with a letter or digit (it names the folder runs/<name>)")
        return value


@dataclass(frozen=True)
class Names:
    """A non-empty list of names registered in ``registry`` (a single name is a one-item list)."""

    registry: Registry[Any]

    def check(self, ctx: Context, key: str, value: Any) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise ctx.error(key, f"{show(value)} is not a non-empty list of {self.registry.kind} names")
        for index, name in enumerate(items):
            registered(ctx, key, name, self.registry, at=item_key(key, index))
        return tuple(items)


def registered(ctx: Context, key: str, value: Any, registry: Registry[Any], at: str | None = None) -> PluginInfo:
    """The info called ``value`` in ``registry``; otherwise the error lists the registered names."""
    if not isinstance(value, str) or value not in registry:
        raise ctx.error(key, f"{show(value)} is not a registered {registry.kind}{registry.broken_note}", registry.names(),
                        word=value, at=at)
    return registry.get(value)


def mapping(ctx: Context, key: str, value: Any, what: str = "a mapping") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ctx.error(key, f"{show(value)} is not {what}")
    return value


def check_keys(ctx: Context, prefix: str, section: Mapping[str, Any], allowed: Iterable[str], noun: str) -> None:
    """Every key of ``section`` must be in ``allowed``; ``noun`` completes "'x' is not ..."."""
    allowed = list(allowed)
    for name in section:
        if name not in allowed:
            raise ctx.error(child_key(prefix, name), f"{show(name)} is not {noun}", allowed, word=name)


def parse_fields(
    ctx: Context,
    prefix: str,
    section: Mapping[str, Any],
    fields: Mapping[str, Field],
    required: Iterable[str] = (),
    noun: str = "a known key",
) -> dict[str, Any]:
    """Check a section against a field table; a null optional value means "use the default"."""
    check_keys(ctx, prefix, section, fields, noun)
    for name in required:
        if name not in section:
            raise ctx.error(child_key(prefix, name), MISSING_PROBLEM)
    required = set(required)
    return {
        name: fields[name].check(ctx, child_key(prefix, name), value)
        for name, value in section.items()
        if value is not None or name in required
    }


def factory_parameters(info: PluginInfo, skip: int) -> list[str] | None:
    """The keyword names the info's factory accepts after its first ``skip`` positional parameters.

    None means "do not check": the factory takes ``**kwargs``, cannot be imported here (its plugin
    reports that itself), or has no introspectable signature.
    """
    try:
        factory: Callable[..., Any] = info.load()
        parameters = list(inspect.signature(factory).parameters.values())
    except Exception as error:  # an unusable plugin is reported by the plugin host, not here
        log.debug("not checking the parameters of %s '%s': %s", info.kind, info.name, error)
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    skipped = {p.name for p in positional[:skip]}
    return [
        p.name for p in parameters
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in skipped
    ]


def factory_defaults(info: PluginInfo, skip: int) -> dict[str, Any]:
    """The defaults of the factory's keyword parameters (a variant's ``functools.partial`` included)."""
    try:
        parameters = list(inspect.signature(info.load()).parameters.values())[skip:]
    except Exception:  # an unusable plugin has no defaults to show
        return {}
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def declared_params(info: PluginInfo, skip: int) -> dict[str, ParamSpec]:
    """What each keyword parameter of the item's factory takes: its declaration (``info.params``), or,
    for one it does not declare, the type of the factory's default (an int default takes integers...)."""
    declared = dict(info.params)
    try:
        parameters = list(inspect.signature(info.load()).parameters.values())[skip:]
    except Exception:  # an unusable plugin is reported by the plugin host, not here
        return declared
    for p in parameters:
        if p.name not in declared and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            declared[p.name] = _inferred(p.default)
    return declared


def _inferred(default: Any) -> ParamSpec:
    if isinstance(default, bool):
        return ParamSpec("bool")
    if isinstance(default, int):
        return ParamSpec("int")
    if isinstance(default, float):
        return ParamSpec("float")
    if isinstance(default, str):
        return ParamSpec("str")
    return ParamSpec("any")


def check_parameter_names(
    ctx: Context, prefix: str, names: Iterable[str], info: PluginInfo, skip: int
) -> None:
    """Each of ``names`` must be a keyword of the info's factory (see ``factory_parameters``)."""
    accepted = factory_parameters(info, skip)
    if accepted is None:
        return
    for name in names:
        if name not in accepted:
            raise ctx.error(child_key(prefix, name), f"{show(name)} is not a parameter of {info.kind} "
                            f"'{info.name}'", accepted, word=name)


def plain_params(ctx: Context, prefix: str, params: Mapping[str, Any],
                 declared: Mapping[str, ParamSpec] | None = None) -> dict[str, Any]:
    """Parameters passed as they are (dataset, task): plain values, each one its plugin declares."""
    for name, value in params.items():
        key = child_key(prefix, name)
        if not is_plain(value):
            raise ctx.error(key, f"{show(value)} is not a scalar or a list of scalars")
        spec = (declared or {}).get(name)
        if spec is not None and not spec.accepts(value):
            raise ctx.error(key, f"{show(value)} is not {spec.describe()}")
    return dict(params)

AUTO = "auto"


@dataclass(frozen=True)
class Switch:
    """A space-file field: ``true``/``false``, and ``auto`` when ``allow_auto`` (read as None)."""

    allow_auto: bool = False

    def check(self, ctx: Any, key: str, value: Any) -> bool | None:
        if isinstance(value, bool):
            return value
        if self.allow_auto and value == AUTO:
            return None
        allowed = ("true", "false", AUTO) if self.allow_auto else ("true", "false")
        raise ctx.error(key, f"{show(value)} is not {' or '.join(allowed)}", allowed, word=value)
