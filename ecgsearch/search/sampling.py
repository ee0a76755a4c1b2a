"""Candidates as frames: the space mapped to and from the unit cube, many rows at a time.

The surrogate search scores up to 100,000 candidates per step, so candidates are never built one dict
at a time: a matrix ``U`` of points in ``[0, 1)^d`` (random, Sobol or a perturbation of good trials)
becomes a frame in the results table's naming (``architecture``, ``hp.<name>``) with column-wise numpy
operations. One dimension per conditional choice and per searched parameter; a parameter of an option
that is not chosen is missing (NaN/None), exactly as in ``results.parquet``. Fixed parameters are not
dimensions; ``row_configs`` adds them back when a row becomes a trial's configuration.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from ecgsearch.search.features import HP_PREFIX
from ecgsearch.space.distributions import Choice, Distribution, Fixed, Range

if TYPE_CHECKING:
    from ecgsearch.space import Space


@dataclass(frozen=True)
class Dimension:
    """One axis of the unit cube: a conditional choice or a searched parameter."""

    name: str  # the configuration key
    column: str  # the results-table column
    dist: Distribution
    condition: tuple[str, str] | None = None


def dimensions(space: Space) -> list[Dimension]:
    """The choices (in order), then every parameter that is not fixed (in the space's order)."""
    dims = [Dimension(key, key, Choice(tuple(options))) for key, options in space.choices.items()]
    dims += [Dimension(p.name, HP_PREFIX + p.name, p.dist, p.condition)
             for p in space.parameters if not isinstance(p.dist, Fixed)]
    return dims


def _range_values(dist: Range, u: np.ndarray) -> np.ndarray:
    """Inverse CDF of a (log-)uniform, integer or quantized range, vectorised."""
    lo, hi = (float(b) for b in dist.bounds())
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
    lo, hi = (float(b) for b in dist.bounds())
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


def from_unit(space: Space, units: np.ndarray, rng: np.random.Generator | None = None) -> pd.DataFrame:
    """Rows of ``units`` (n x len(dimensions)) as candidates in the results naming, inactive entries missing."""
    dims = dimensions(space)
    rng = rng or np.random.default_rng(0)
    columns: dict[str, np.ndarray] = {}
    for j, dim in enumerate(dims):
        values = _values(dim, np.clip(units[:, j], 0.0, 1.0 - 1e-12), rng)
        if dim.condition is not None:
            inactive = columns[dim.condition[0]] != dim.condition[1]
            values = values.astype(object) if values.dtype == object else values.copy()
            values[inactive] = None if values.dtype == object else np.nan
        columns[dim.column] = values
    return pd.DataFrame(columns)


def to_unit(space: Space, frame: pd.DataFrame) -> np.ndarray:
    """The unit coordinates of candidates or trials (NaN where a value is missing or not in the space)."""
    dims = dimensions(space)
    units = np.full((len(frame), len(dims)), np.nan)
    for j, dim in enumerate(dims):
        if dim.column not in frame.columns:
            continue
        column = frame[dim.column]
        if isinstance(dim.dist, Choice):
            k = len(dim.dist.values)
            position = {_key(v): i for i, v in enumerate(dim.dist.values)}
            # a list value comes back from results.parquet as its str ("[3, 3]")
            position.update({_key(str(list(v))): i for i, v in enumerate(dim.dist.values)
                             if isinstance(v, (list, tuple))})
            index = column.map(lambda v: position.get(_key(v), np.nan)).to_numpy(dtype=float)
            units[:, j] = (index + 0.5) / k
        elif isinstance(dim.dist, Range):
            values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
            with np.errstate(invalid="ignore", divide="ignore"):
                units[:, j] = np.clip(_range_units(dim.dist, values), 0.0, 1.0 - 1e-12)
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


def perturb(units: np.ndarray, dims: Sequence[Dimension], rng: np.random.Generator, scale: float = 0.15,
            ) -> np.ndarray:
    """Neighbours of ``units``: one or two dimensions of each row moved (a choice redrawn, a range
    nudged by a Gaussian step of ``scale``); missing coordinates (inactive parameters) drawn afresh."""
    out = np.where(np.isnan(units), rng.random(units.shape), units)
    n, d = out.shape
    if d == 0:
        return out
    moves = 1 + (rng.random(n) < 0.3)
    for count in (1, 2):
        rows = np.flatnonzero(moves == count)
        for _ in range(count):
            cols = rng.integers(0, d, len(rows))
            for j in np.unique(cols):
                picked = rows[cols == j]
                if isinstance(dims[j].dist, Range):
                    out[picked, j] = np.clip(out[picked, j] + scale * rng.standard_normal(len(picked)),
                                             0.0, 1.0 - 1e-12)
                else:
                    out[picked, j] = rng.random(len(picked))
    return out

