"""The search distributions, one class each, registered by name in ``DISTRIBUTIONS``.

Each class validates its own arguments (``from_args``), samples with a numpy ``Generator`` (for the
surrogate search and ``Space.sample``), compiles to a Ray Tune domain through the explicit table
``tune_compilers()`` (never ``getattr(tune, name)``), and says whether a value belongs to it. Integer
ranges include BOTH ends; quantized ranges give multiples of ``q`` within ``[lo, hi]``.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np

from ecgsearch.space.fields import as_number, is_plain
from ecgsearch.space.messages import show


class BadArguments(ValueError):
    """A distribution's arguments are invalid; ``str(error)`` is the problem, without the key."""


def _clean(value: float) -> float:
    """Round away float noise such as ``0.30000000000000004`` from ``3 * 0.1``."""
    return float(f"{value:.12g}")


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


class Distribution:
    """Base class: what the parser, ``Space`` and the Tune compiler need from a distribution."""

    name: ClassVar[str] = ""
    integer: ClassVar[bool] = False  # whether every sample is an int

    def sample(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def to_tune(self) -> Any:
        """The Ray Tune domain (or ``{"grid_search": [...]}``) for this distribution."""
        return tune_compilers()[self.name](self)

    def contains(self, value: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def edges(self) -> tuple[Any, ...]:
        """Extreme values a sample can take, used to check a trial parameter's whole range."""
        raise NotImplementedError


@dataclass(frozen=True)
class Fixed(Distribution):
    """A constant: what a plain value (scalar or list) in the space means. Not a space-file keyword."""

    name: ClassVar[str] = "fixed"
    value: Any

    def sample(self, rng: np.random.Generator) -> Any:
        return copy.deepcopy(self.value)

    def to_tune(self) -> Any:
        return copy.deepcopy(self.value)

    def contains(self, value: Any) -> bool:
        return value == self.value

    def describe(self) -> str:
        return f"fixed {self.value!r}"

    def edges(self) -> tuple[Any, ...]:
        return (self.value,)


@dataclass(frozen=True)
class Choice(Distribution):
    """One of a list of values, uniformly; values may be scalars or lists (``[[2, 2], [3, 3]]``)."""

    name: ClassVar[str] = "choice"
    values: tuple[Any, ...]

    @classmethod
    def from_args(cls, args: Any) -> Choice:
        if not isinstance(args, list) or not args:
            raise BadArguments(f"{cls.name} needs a non-empty list of values, got {show(args)}")
        if not all(is_plain(v) for v in args):
            raise BadArguments(f"{cls.name} values must be scalars or lists of scalars, got {show(args)}")
        return cls(tuple(args))

    def sample(self, rng: np.random.Generator) -> Any:
        return copy.deepcopy(self.values[int(rng.integers(len(self.values)))])

    def contains(self, value: Any) -> bool:
        return any(value == v and isinstance(value, bool) == isinstance(v, bool) for v in self.values)

    def describe(self) -> str:
        return f"{self.name} {list(self.values)!r}"

    def edges(self) -> tuple[Any, ...]:
        return self.values


@dataclass(frozen=True)
class Grid(Choice):
    """Every value once: ``Space.sample`` enumerates the grid; Tune expands ``grid_search``."""

    name: ClassVar[str] = "grid"


@dataclass(frozen=True)
class Range(Distribution):
    """A numeric range ``[lo, hi]`` (optionally log-scaled, integer or quantized by ``q``)."""

    log: ClassVar[bool] = False
    quantized: ClassVar[bool] = False
    lo: float
    hi: float
    q: float | None = None

    @classmethod
    def from_args(cls, args: Any) -> Range:
        shape = "[lo, hi, q]" if cls.quantized else "[lo, hi]"
        size = 3 if cls.quantized else 2
        if not isinstance(args, list) or len(args) != size:
            raise BadArguments(f"{cls.name} needs a list {shape}, got {show(args)}")
        numbers = [as_number(a) for a in args]
        if any(n is None for n in numbers):
            raise BadArguments(f"{cls.name} needs numbers {shape}, got {show(args)}")
        if cls.integer and not all(isinstance(a, int) and not isinstance(a, bool) for a in args):
            raise BadArguments(f"{cls.name} needs integers {shape}, got {show(args)}")
        lo, hi = numbers[0], numbers[1]
        q = numbers[2] if cls.quantized else None
        if not lo < hi:
            raise BadArguments(f"{cls.name} needs lo < hi, got {show(args)}")
        if cls.log and not lo > 0:
            raise BadArguments(f"{cls.name} needs 0 < lo, got {show(args)}")
        if q is not None and not q > 0:
            raise BadArguments(f"{cls.name} needs q > 0, got {show(args)}")
        dist = cls(lo, hi, q)
        if q is not None and dist._steps()[0] > dist._steps()[1]:
            raise BadArguments(f"{cls.name} has no multiple of q={q!r} between {lo!r} and {hi!r}")
        return dist

    def _steps(self) -> tuple[int, int]:
        """The first and last multiples ``k`` of ``q`` with ``k * q`` in ``[lo, hi]``."""
        assert self.q is not None
        low, high = self.lo / self.q, self.hi / self.q
        # a bound within float noise of a multiple snaps to it, but never a nonzero bound to 0: 1e-13 / 0.1
        # is close to 0 in absolute terms, and 0 is not in [1e-13, ...] (nor has a logarithm)
        first = round(low) if _close(low, round(low)) and (round(low) != 0 or low == 0) else math.ceil(low)
        last = round(high) if _close(high, round(high)) and (round(high) != 0 or high == 0) else math.floor(high)
        return int(first), int(last)

    def _cast(self, value: float) -> int | float:
        return int(round(value)) if self.integer else _clean(value)

    def bounds(self) -> tuple[int | float, int | float]:
        """The smallest and largest values a sample can take (quantized ranges snap inwards)."""
        if self.q is None:
            return (int(self.lo), int(self.hi)) if self.integer else (float(self.lo), float(self.hi))
        first, last = self._steps()
        return self._cast(first * self.q), self._cast(last * self.q)

    def _continuous(self, rng: np.random.Generator, lo: float, hi: float) -> float:
        if self.log:
            return float(np.exp(rng.uniform(math.log(lo), math.log(hi))))
        return float(rng.uniform(lo, hi))

    def sample(self, rng: np.random.Generator) -> int | float:
        lo, hi = self.bounds()
        if self.integer and self.q is None and self.log:  # each k with probability log((k + 1) / k), as Tune's
            return int(min(math.floor(math.exp(rng.uniform(math.log(lo), math.log(hi + 1)))), hi))
        if self.integer and self.q is None:
            return int(rng.integers(lo, hi + 1))
        if self.q is None:
            return min(max(self._continuous(rng, lo, hi), lo), hi)
        first, last = self._steps()
        if self.integer:
            return self._cast(int(rng.integers(first, last + 1)) * self.q)
        step = round(self._continuous(rng, lo, hi) / self.q)
        return self._cast(min(max(step, first), last) * self.q)

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.integer and not isinstance(value, int):
            return False
        lo, hi = self.bounds()
        tolerance = 1e-9 * max(1.0, abs(lo), abs(hi))
        if not lo - tolerance <= value <= hi + tolerance:
            return False
        return self.q is None or _close(value / self.q, round(value / self.q))

    def describe(self) -> str:
        args = [self.lo, self.hi] + ([self.q] if self.quantized else [])
        return f"{self.name} {args!r}"

    def edges(self) -> tuple[Any, ...]:
        return self.bounds()


class Uniform(Range):
    name: ClassVar[str] = "uniform"


class LogUniform(Range):
    name: ClassVar[str] = "loguniform"
    log: ClassVar[bool] = True


class RandInt(Range):
    name: ClassVar[str] = "randint"
    integer: ClassVar[bool] = True


class LogRandInt(Range):
    """An integer in ``[lo, hi]`` (both included), log-uniformly: ``floor`` of a log-uniform draw in
    ``[lo, hi + 1)``, so small values are as likely per octave as large ones (widths, batch sizes)."""

    name: ClassVar[str] = "lograndint"
    integer: ClassVar[bool] = True
    log: ClassVar[bool] = True


class QUniform(Range):
    name: ClassVar[str] = "quniform"
    quantized: ClassVar[bool] = True


class QLogUniform(Range):
    name: ClassVar[str] = "qloguniform"
    log: ClassVar[bool] = True
    quantized: ClassVar[bool] = True


class QRandInt(Range):
    name: ClassVar[str] = "qrandint"
    integer: ClassVar[bool] = True
    quantized: ClassVar[bool] = True


# The space-file keywords, in the order error messages list them.
DISTRIBUTIONS: dict[str, type[Choice] | type[Range]] = {
    cls.name: cls for cls in (Choice, Uniform, LogUniform, RandInt, LogRandInt, QUniform, QLogUniform, QRandInt, Grid)
}


def make_distribution(name: str, args: Any) -> Distribution:
    """Build the distribution ``name`` from its space-file arguments; raises ``BadArguments``."""
    return DISTRIBUTIONS[name].from_args(args)


@functools.lru_cache(maxsize=None)
def tune_compilers() -> dict[str, Callable[[Any], Any]]:
    """Distribution name -> function building its Ray Tune domain (Ray is imported only when needed).

    Tune's ``randint`` and ``lograndint`` exclude their upper bound, hence ``hi + 1`` (Tune's
    ``lograndint`` floors a log-uniform draw in ``[lo, hi + 1)``, as ``LogRandInt.sample`` does). Tune
    insists that quantized float bounds are multiples of ``q``, so they are passed snapped inwards
    (``bounds()``). In the installed
    Ray, ``qrandint`` includes the upper multiple of ``q`` except when ``q == 1``, where it is exclusive
    like ``randint``; both are mapped so that our "both ends included" holds.
    """
    from ray import tune

    def qrandint(d: Range) -> Any:
        lo, hi = d.bounds()
        step = int(d.q)  # type: ignore[arg-type]
        return tune.qrandint(lo, hi + 1 if step == 1 else hi, step)

    return {
        "choice": lambda d: tune.choice(copy.deepcopy(list(d.values))),
        "grid": lambda d: tune.grid_search(copy.deepcopy(list(d.values))),
        "uniform": lambda d: tune.uniform(d.lo, d.hi),
        "loguniform": lambda d: tune.loguniform(d.lo, d.hi),
        "randint": lambda d: tune.randint(int(d.lo), int(d.hi) + 1),
        "lograndint": lambda d: tune.lograndint(int(d.lo), int(d.hi) + 1),
        "quniform": lambda d: tune.quniform(*d.bounds(), d.q),
        "qloguniform": lambda d: tune.qloguniform(*d.bounds(), d.q),
        "qrandint": qrandint,
    }
