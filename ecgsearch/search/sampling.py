"""Candidates as frames: the space mapped to and from the unit cube, many rows at a time.

The surrogate search scores up to 100,000 candidates per step, so candidates are never built one dict
at a time: a matrix ``U`` of points in ``[0, 1)^d`` (random, Sobol or a perturbation of good trials)
becomes a frame in the results table's naming (``architecture``, ``hp.<name>``) with column-wise numpy
operations. One dimension per conditional choice and per searched parameter; a parameter of an option
that is not chosen is missing (NaN/None), exactly as in ``results.parquet``. Fixed parameters are not
dimensions; ``row_configs`` adds them back when a row becomes a trial's configuration.

With ``shared=True`` (what the surrogate search uses), a parameter that several options of one choice
have alike (``optimizer.adamw.lr`` and ``optimizer.sgd.lr``, both log-uniform) is one dimension
(``optimizer.*.lr``): a perturbation that switches the option keeps the value's position, and the
surrogate learns one effect from both (``ecgsearch.search.features.shared_groups``).

``plain_space`` builds a ``Space`` from a plain mapping of hyperparameters (space-file distributions,
Ray Tune domains or constants), so the searchers work on any problem, not only the space file's.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ecgsearch.search.features import HP_PREFIX, shared_groups
from ecgsearch.space.distributions import (
    DISTRIBUTIONS,
    BadArguments,
    Choice,
    Distribution,
    Fixed,
    Range,
    make_distribution,
)
from ecgsearch.space.model import Param, Space


@dataclass(frozen=True)
class Dimension:
    """One axis of the unit cube: a conditional choice or a searched parameter (or, shared, several
    parameters of the options of one choice: ``members``, each active under its own option)."""

    name: str  # the configuration key
    column: str  # the results-table column
    dist: Distribution
    condition: tuple[str, str] | None = None
    members: tuple[Dimension, ...] = ()


def dimensions(space: Space, shared: bool = False) -> list[Dimension]:
    """The choices (in order), then every parameter that is not fixed (in the space's order); with
    ``shared``, the parameters of one shared group are one dimension, where the group's first was."""
    dims = [Dimension(key, key, Choice(tuple(options))) for key, options in space.choices.items()]
    searched = [p for p in space.parameters if not isinstance(p.dist, Fixed)]
    groups = shared_groups(space) if shared else {}
    member_of = {member: name for name, members in groups.items() for member in members}
    done: set[str] = set()
    for p in searched:
        group = member_of.get(p.name)
        if group is None:
            dims.append(Dimension(p.name, HP_PREFIX + p.name, p.dist, p.condition))
        elif group not in done:
            done.add(group)
            by_name = {q.name: q for q in searched}
            members = tuple(Dimension(m, HP_PREFIX + m, by_name[m].dist, by_name[m].condition) for m in groups[group])
            dims.append(Dimension(group, HP_PREFIX + group, p.dist, None, members))
    return dims


def _range_values(dist: Range, u: np.ndarray) -> np.ndarray:
    """Inverse CDF of a (log-)uniform, integer or quantized range, vectorised."""
    lo, hi = (float(b) for b in dist.bounds())
    if dist.integer and dist.q is None and dist.log:  # floor of a log-uniform draw in [lo, hi + 1)
        return np.minimum(np.floor(np.exp(math.log(lo) + u * (math.log(hi + 1) - math.log(lo)))), hi)
    if dist.integer and dist.q is None:
        return np.minimum(np.floor(lo + u * (hi - lo + 1)), hi)
    if dist.log:
        x = np.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
    else:
        x = lo + u * (hi - lo)
    if dist.q is not None:
        x = lo + np.round((x - lo) / dist.q) * dist.q
        x = np.round(x / dist.q) * dist.q  # exact multiples, as Range.sample gives
    return np.clip(x, lo, hi)


def _range_units(dist: Range, values: np.ndarray) -> np.ndarray:
    """The unit coordinate of each value: the middle of the interval that maps to it (integers)."""
    lo, hi = (float(b) for b in dist.bounds())
    if dist.integer and dist.q is None and dist.log:
        span = math.log(hi + 1) - math.log(lo)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (0.5 * (np.log(values) + np.log(values + 1)) - math.log(lo)) / span
    if dist.integer and dist.q is None:
        return (values - lo + 0.5) / (hi - lo + 1)
    if dist.log:
        return (np.log(values) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return (values - lo) / (hi - lo)


def _values(dim: Dimension, u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The dimension's values at unit coordinates ``u``."""
    if isinstance(dim.dist, Choice):
        k = len(dim.dist.values)
        index = np.minimum((u * k).astype(int), k - 1)
        table = np.empty(k, dtype=object)
        table[:] = [copy.deepcopy(v) for v in dim.dist.values]
        picked = table[index]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in dim.dist.values):
            return picked.astype(float)
        return picked
    if isinstance(dim.dist, Range):
        return _range_values(dim.dist, u)
    out = np.empty(len(u), dtype=object)  # a distribution this module does not know: draw it
    out[:] = [dim.dist.sample(rng) for _ in range(len(u))]
    return out


def _masked(values: np.ndarray, inactive: np.ndarray) -> np.ndarray:
    values = values.astype(object) if values.dtype == object else values.copy()
    values[inactive] = None if values.dtype == object else np.nan
    return values


def from_unit(space: Space, units: np.ndarray, rng: np.random.Generator | None = None,
              dims: Sequence[Dimension] | None = None) -> pd.DataFrame:
    """Rows of ``units`` (n x len(dims)) as candidates in the results naming, inactive entries missing.

    ``dims``: the dimensions the columns of ``units`` are (``dimensions(space)`` when not given); a
    shared dimension fills each member's column where the member's option is chosen.
    """
    dims = dimensions(space) if dims is None else dims
    rng = rng or np.random.default_rng(0)
    columns: dict[str, np.ndarray] = {}
    for j, dim in enumerate(dims):
        u = np.clip(units[:, j], 0.0, 1.0 - 1e-12)
        for member in dim.members or (dim,):
            values = _values(member, u, rng)
            if member.condition is not None:
                values = _masked(values, columns[member.condition[0]] != member.condition[1])
            columns[member.column] = values
    return pd.DataFrame(columns)


def _units(dim: Dimension, column: pd.Series) -> np.ndarray:
    if isinstance(dim.dist, Choice):
        k = len(dim.dist.values)
        position = {_key(v): i for i, v in enumerate(dim.dist.values)}
        # a list value comes back from results.parquet as its str ("[3, 3]")
        position.update({_key(str(list(v))): i for i, v in enumerate(dim.dist.values) if isinstance(v, (list, tuple))})
        index = column.map(lambda v: position.get(_key(v), np.nan)).to_numpy(dtype=float)
        return (index + 0.5) / k
    if isinstance(dim.dist, Range):
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.clip(_range_units(dim.dist, values), 0.0, 1.0 - 1e-12)
    return np.full(len(column), np.nan)


def to_unit(space: Space, frame: pd.DataFrame, dims: Sequence[Dimension] | None = None) -> np.ndarray:
    """The unit coordinates of candidates or trials (NaN where a value is missing or not in the space)."""
    dims = dimensions(space) if dims is None else dims
    units = np.full((len(frame), len(dims)), np.nan)
    for j, dim in enumerate(dims):
        for member in dim.members or (dim,):
            if member.column in frame.columns:
                values = _units(member, frame[member.column])
                units[:, j] = np.where(np.isnan(units[:, j]), values, units[:, j])
    return units


def _key(value: Any) -> str:
    """A comparable key for a choice value (lists and numpy scalars included; 16 and 16.0 alike)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(np.float64(value))  # as numpy writes a float column (see ``signatures``)
    if isinstance(value, (list, tuple)):
        return str([_key(v) for v in value])
    return repr(value)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def row_configs(space: Space, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The frame's rows as trial configurations (dotted keys), with the active fixed parameters added."""
    dims = dimensions(space)
    fixed = [p for p in space.parameters if isinstance(p.dist, Fixed)]
    configs = []
    for row in frame.to_dict("records"):
        config: dict[str, Any] = {}
        for dim in dims:
            value = row.get(dim.column)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            value = _plain(value)
            if isinstance(dim.dist, Range) and dim.dist.integer:
                value = int(round(value))
            elif isinstance(dim.dist, Choice):
                value = copy.deepcopy(next((v for v in dim.dist.values if _key(v) == _key(value)), value))
            config[dim.name] = value
        for param in fixed:
            if param.condition is None or config.get(param.condition[0]) == param.condition[1]:
                config[param.name] = copy.deepcopy(param.dist.value)  # type: ignore[attr-defined]
        configs.append(space.active(config))
    return configs


def signatures(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """One 64-bit hash per row over ``columns``, so the same configuration hashes alike whatever frame it
    is in: values become text (numbers as floats, 16 and 16.0 alike), missing values and missing
    columns the empty string."""
    normal = {}
    for name in columns:
        if name not in frame.columns:
            normal[name] = np.full(len(frame), "", dtype=object)
            continue
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            values = column.to_numpy(dtype=float)
            normal[name] = np.where(np.isnan(values), "", values.astype(str)).astype(object)
        else:
            normal[name] = column.map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v))
                                      else _key(v)).to_numpy(dtype=object)
    if not normal:
        return np.zeros(len(frame), dtype=np.uint64)
    return pd.util.hash_pandas_object(pd.DataFrame(normal, index=frame.index), index=False).to_numpy()


def neighbours(units: np.ndarray, dims: Sequence[Dimension], rng: np.random.Generator,
               scales: np.ndarray) -> np.ndarray:
    """Neighbours of ``units`` (rows) at per-row ``scales``: each coordinate moves with probability
    ``min(1, 2/d)`` (at least one per row), a range by a Gaussian step of the row's scale
    (reflected into the cube), a choice redrawn; missing (inactive) coordinates are drawn afresh.

    Moving a few coordinates at a time keeps a neighbour comparable to its parent in many dimensions,
    and the mix of scales covers both fine tuning around the best trials and larger jumps.
    """
    out = np.where(np.isnan(units), rng.random(units.shape), units)
    n, d = out.shape
    if d == 0 or n == 0:
        return out
    moved = rng.random((n, d)) < min(1.0, 2.0 / d)
    moved[np.arange(n), rng.integers(0, d, n)] = True  # at least one coordinate per row
    numeric = np.array([isinstance(dim.dist, Range) for dim in dims])
    step = out + scales[:, None] * rng.standard_normal((n, d))
    step = np.abs(step)  # reflect at 0 ...
    step = np.where(step >= 1.0, np.maximum(2.0 - step, 0.0), step)  # ... and at 1
    step = np.clip(step, 0.0, 1.0 - 1e-12)
    redraw = rng.random((n, d))
    # a choice is redrawn only at the larger scales (a neighbour at a fine scale keeps the choices)
    coarse = (scales[:, None] >= 0.1) | (rng.random((n, d)) < 0.5)
    new = np.where(numeric[None, :], step, np.where(coarse, redraw, out))
    return np.where(moved, new, out)


# --- plain spaces ---------------------------------------------------------------------------------


class PlainSpaceError(ValueError):
    """A plain space definition that cannot be searched; the message is one sentence."""


def _is_distribution(value: Any) -> bool:
    return isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in DISTRIBUTIONS


def _tune_distribution(key: str, domain: Any) -> Distribution:
    """A Ray Tune domain (``tune.loguniform(...)``, ``tune.choice(...)``, ...) as a space distribution."""
    from ray.tune.search import sample  # deferred: Ray is heavy and only needed for Tune domains

    sampler = domain.get_sampler()
    q = None
    if isinstance(sampler, sample.Quantized):
        q, sampler = sampler.q, sampler.get_sampler()
    log = isinstance(sampler, sample.LogUniform)
    if isinstance(domain, sample.Categorical):
        return Choice(tuple(domain.categories))
    if isinstance(domain, sample.Integer) and isinstance(sampler, (sample.Uniform, sample.LogUniform)):
        lo, hi = int(domain.lower), int(domain.upper)
        if q is None or q == 1:  # Tune's upper bound is exclusive here
            return make_distribution("lograndint" if log else "randint", [lo, hi - 1])
        return make_distribution("qrandint", [lo, hi, int(q)]) if not log else \
            make_distribution("qloguniform", [lo, hi, q])
    if isinstance(domain, sample.Float) and isinstance(sampler, (sample.Uniform, sample.LogUniform)):
        args = [float(domain.lower), float(domain.upper)] + ([q] if q is not None else [])
        name = ("q" if q is not None else "") + ("loguniform" if log else "uniform")
        return make_distribution(name, args)
    raise PlainSpaceError(f"space: {key}: the Ray Tune domain {domain!r} ({type(sampler).__name__} sampling) "
                          "cannot be searched; use a uniform, log-uniform, integer or categorical domain.")


def _distribution(key: str, value: Any) -> Distribution:
    try:
        if _is_distribution(value):
            name, args = next(iter(value.items()))
            return make_distribution(name, args)
        if isinstance(value, Mapping) and "grid_search" in value:
            return make_distribution("choice", list(value["grid_search"]))
        if type(value).__module__.startswith("ray.tune"):
            return _tune_distribution(key, value)
    except BadArguments as error:
        raise PlainSpaceError(f"space: {key}: {error}.") from None
    if callable(value) or isinstance(value, Mapping):
        raise PlainSpaceError(f"space: {key}: {value!r} is neither a distribution ({', '.join(DISTRIBUTIONS)}, "
                              "or a Ray Tune domain) nor a plain value.")
    return Fixed(copy.deepcopy(value))


def _is_choice(value: Any) -> bool:
    """A conditional choice: a non-empty mapping ``option -> {parameter: value}`` (no distribution)."""
    return (isinstance(value, Mapping) and bool(value) and not _is_distribution(value)
            and all(isinstance(v, Mapping) and not _is_distribution(v) for v in value.values()))


def flatten(definition: Mapping[str, Any], prefix: str = "", choices: bool = True, sep: str = "/") -> dict[str, Any]:
    """Nested groups (as in Tune's nested ``param_space``, or a configuration Tune made of it) flattened
    to ``group/name`` keys (``sep``); conditional choices (when ``choices``), distributions, plain values
    and private entries (``_costs``) are leaves."""
    out: dict[str, Any] = {}
    for key, value in definition.items():
        name = f"{prefix}{key}"
        leaf = (not isinstance(value, Mapping) or str(key).startswith("_") or _is_distribution(value)
                or "grid_search" in value or not value or (choices and _is_choice(value)))
        if leaf:
            out[name] = value
        else:
            out.update(flatten(value, name + sep, choices, sep))
    return out


def plain_space(definition: Mapping[str, Any], choices: bool = True) -> Space:
    """A ``Space`` from a plain mapping ``name -> value``; each value is one of:

    - a distribution as in a space file (``{"loguniform": [1e-4, 1e-1]}``, ``{"lograndint": [16, 512]}``,
      ``{"choice": ["a", "b"]}``, ...) or a Ray Tune domain (``tune.loguniform(1e-4, 1e-1)``);
    - a constant (passed through to every configuration);
    - a conditional choice: a mapping ``option -> {parameter: value}`` (each option's parameters are active
      only when it is chosen, keyed ``name.option.parameter`` as in the space file; a parameter that
      several options have alike is shared by the search);
    - a nested group of the above (as in a Ray Tune ``param_space``), keyed ``group/name`` (inside an
      option: ``name.option.group.parameter``, as in a space file).

    ``choices=False`` reads every nested mapping as a group (a Ray Tune ``param_space`` has no
    conditional choices). Unlike a space file, nothing is checked against plugins: any hyperparameters
    of any problem. A definition that cannot be searched raises ``PlainSpaceError`` (one sentence).
    """
    if not isinstance(definition, Mapping) or not definition:
        raise PlainSpaceError(f"space: a search space is a non-empty mapping of hyperparameters, got {definition!r}.")
    params: list[Param] = []
    options_of: dict[str, tuple[str, ...]] = {}
    for key, value in flatten(definition, choices=choices).items():
        if not isinstance(key, str) or not key:
            raise PlainSpaceError(f"space: {key!r} is not a hyperparameter name (a non-empty string).")
        if not (choices and _is_choice(value)):
            params.append(Param(key, _distribution(key, value)))
            continue
        options_of[key] = tuple(str(option) for option in value)
        for option, body in value.items():
            for name, sub in flatten(body, choices=False, sep=".").items():  # groups as in a space file
                params.append(Param(f"{key}.{option}.{name}", _distribution(f"{key}.{option}.{name}", sub),
                                    (key, str(option))))
    return Space(parameters=tuple(params), choices=options_of)


def is_space(value: Any) -> bool:
    """Whether ``value`` is already a parsed ``Space`` (or a ``SearchSpec`` holding one)."""
    return isinstance(getattr(value, "space", value), Space)
