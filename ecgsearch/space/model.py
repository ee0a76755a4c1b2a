"""The parsed search space: flat dotted parameters, conditional choices, sampling and Tune compilation.

Configurations are flat dicts with dotted keys (``"architecture.resnet.depth"``) because that is what
Ray Tune and the results table (``hp.<dotted.name>``) use; ``resolve`` turns one back into the nested
keyword arguments that factories take.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple

import numpy as np

from ecgsearch.data.augment_params import AugmentationParams
from ecgsearch.space.distributions import Distribution, Grid
from ecgsearch.space.fields import Number


@dataclass(frozen=True)
class Among:
    """A trial parameter that is one of a few words (``precision``); same interface as ``Number``."""

    allowed: tuple[str, ...]

    def describe(self) -> str:
        return "one of " + ", ".join(self.allowed)

    def convert(self, value: Any) -> str | None:
        return value if isinstance(value, str) and value in self.allowed else None


class TrialParam(NamedTuple):
    """A parameter of the trial itself (not of a plugin): its default and the values it accepts."""

    default: Any
    check: Number | Among
    description: str


# the ``precision`` trial parameter: fp32, or autocast to bf16 / fp16 (``ecgsearch.train.precision``)
TRAIN_PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
AUGMENT_PREFIX = "augment_"

TRIAL_PARAMS: dict[str, TrialParam] = {
    "batch_size": TrialParam(64, Number(integer=True, low=1), "training batch size"),
    "data_fraction": TrialParam(1.0, Number(low=0, high=1, low_open=True),
                                "fraction of the training split a trial uses (data scaling studies)"),
    "crop_fraction": TrialParam(1.0, Number(low=0, high=1, low_open=True),
                                "train on random windows of this fraction of each record, evaluate on the "
                                "centre window"),
    "grad_clip": TrialParam(0.0, Number(low=0), "clip the gradients' global L2 norm to this value; 0 = off"),
    "precision": TrialParam("fp32", Among(TRAIN_PRECISIONS), "fp32, or bf16/fp16 autocast (fp16 needs a CUDA GPU)"),
    # train-time augmentations (ecgsearch.data.augment_params): a strength in [0, 1] each, 0 = off
    **{AUGMENT_PREFIX + f.name: TrialParam(f.default, Number(low=0, high=1), f"augmentation: {f.name}")
       for f in dataclasses.fields(AugmentationParams)},
}


@dataclass(frozen=True)
class Param:
    """One searched or fixed value; ``condition`` is ``(choice, option)`` when it belongs to an option."""

    name: str
    dist: Distribution
    condition: tuple[str, str] | None = None


@dataclass(frozen=True)
class Resolved:
    """A configuration as factories take it: ``choices[kind] = (option, nested kwargs)``."""

    choices: Mapping[str, tuple[str, dict[str, Any]]]
    params: Mapping[str, Any]


def _plain(value: Any) -> Any:
    """Numpy scalars (as some Tune searchers return) become Python values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def nest(flat: Mapping[str, Any], sep: str = ".") -> dict[str, Any]:
    """``{"stem.width": 32, "depth": 18}`` -> ``{"stem": {"width": 32}, "depth": 18}`` (groups split at ``sep``)."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *groups, last = key.split(sep)
        target = nested
        for group in groups:
            target = target.setdefault(group, {})
        target[last] = value
    return nested


@dataclass(frozen=True)
class Space:
    """The ``space:`` section: conditional choices (architecture, optimizer) and parameters."""

    parameters: tuple[Param, ...]
    choices: Mapping[str, tuple[str, ...]]

    def _grid(self) -> list[Param]:
        return [p for p in self.parameters if isinstance(p.dist, Grid)]

    def grid_size(self) -> int:
        """How many grid points there are (1 without grids); ``sample`` cycles through them."""
        return math.prod(len(p.dist.values) for p in self._grid())  # type: ignore[attr-defined]

    def grid_point(self, index: int) -> dict[str, Any]:
        """Grid values of point ``index % grid_size()``; the last grid parameter varies fastest."""
        point: dict[str, Any] = {}
        rest = index % self.grid_size()
        for param in reversed(self._grid()):
            values = param.dist.values  # type: ignore[attr-defined]
            rest, position = divmod(rest, len(values))
            point[param.name] = values[position]
        return point

    def _is_active(self, param: Param, config: Mapping[str, Any]) -> bool:
        return param.condition is None or config.get(param.condition[0]) == param.condition[1]

    def sample(self, seed: int, index: int) -> dict[str, Any]:
        """Candidate ``index`` of a search seeded with ``seed``: deterministic, active parameters only.

        Choices are drawn first (in order), then each active parameter in order; grid parameters take
        the values of grid point ``index % grid_size()`` and draw nothing.
        """
        rng = np.random.default_rng([seed, index])
        grid = self.grid_point(index)
        config: dict[str, Any] = {
            key: options[int(rng.integers(len(options)))] for key, options in self.choices.items()
        }
        for param in self.parameters:
            if not self._is_active(param, config):
                continue
            value = grid[param.name] if param.name in grid else param.dist.sample(rng)
            config[param.name] = _plain(value)
        return self._ordered(config)

    def _ordered(self, config: dict[str, Any]) -> dict[str, Any]:
        """Each choice followed by its option's parameters, then the trial parameters (for reading)."""
        ordered: dict[str, Any] = {}
        for key in self.choices:
            ordered[key] = config[key]
            ordered.update({k: v for k, v in config.items() if k.startswith(f"{key}.")})
        ordered.update({k: v for k, v in config.items() if k not in ordered})
        return ordered

    def active(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` without the parameters of options that were not chosen (Tune samples them all)."""
        inactive = {p.name for p in self.parameters if not self._is_active(p, config)}
        return {key: _plain(value) for key, value in config.items() if key not in inactive}

    def resolve(self, config: Mapping[str, Any]) -> Resolved:
        """Split a flat configuration into each choice's option and nested kwargs, plus trial params."""
        config = self.active(config)
        choices: dict[str, tuple[str, dict[str, Any]]] = {}
        for key, options in self.choices.items():
            option = config.get(key)
            if option not in options:
                raise ValueError(f"configuration has {key}={option!r}; expected one of {list(options)}")
            prefix = f"{key}.{option}."
            flat = {k[len(prefix):]: v for k, v in config.items() if k.startswith(prefix)}
            choices[key] = (option, nest(flat))
        params = {name: trial.default for name, trial in TRIAL_PARAMS.items()}
        params.update({p.name: config[p.name] for p in self.parameters
                       if p.condition is None and p.name in config})
        return Resolved(choices=choices, params=params)

    def to_tune(self) -> dict[str, Any]:
        """A Ray Tune ``param_space`` with flat dotted keys; ``active`` drops unchosen options' keys."""
        from ray import tune

        param_space: dict[str, Any] = {key: tune.choice(list(options)) for key, options in self.choices.items()}
        param_space.update({p.name: p.dist.to_tune() for p in self.parameters})
        return param_space
