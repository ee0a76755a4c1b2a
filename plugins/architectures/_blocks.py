"""Layers and hyperparameter checks shared by the built-in 1D architectures.

Checks raise one-sentence ``ValueError`` messages that name the family, the parameter, the bad value
and what is allowed, because a trial's error text is what a user sees in ``results.parquet``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ecgsearch import ParamSpec, float_param, int_param

# --- hyperparameter checks --------------------------------------------------------------------


def check_int(owner: str, name: str, value: Any, *, minimum: int = 1,
              allowed: Iterable[int] | None = None) -> int:
    """``value`` as an ``int``; integral floats (``32.0`` from a sampler) are accepted on purpose."""
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and float(value).is_integer())
    choices = sorted(allowed) if allowed is not None else None
    if ok and choices is not None and int(value) in choices:
        return int(value)
    if choices is not None:
        raise ValueError(f"{owner}: {name}={value!r} is not supported; "
                         f"allowed values: {', '.join(map(str, choices))}.")
    if not ok or int(value) < minimum:
        raise ValueError(f"{owner}: {name}={value!r} must be an integer >= {minimum}.")
    return int(value)


def check_kernel(owner: str, value: Any, name: str = "kernel") -> int:
    """An odd kernel size, so that 'same' padding (``k // 2``) keeps the length and stays centred."""
    kernel = check_int(owner, name, value, minimum=1)
    if kernel % 2 == 0:
        raise ValueError(f"{owner}: {name}={value!r} must be an odd integer >= 1 (e.g. 3, 7, 15) "
                         "so that 'same' padding keeps the signal centred.")
    return kernel


def check_float(owner: str, name: str, value: Any, low: float, high: float, *,
                high_open: bool = False) -> float:
    """A float in ``[low, high]`` (or ``[low, high)``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok and low <= float(value) and (float(value) < high if high_open else float(value) <= high):
        return float(value)
    bracket = ")" if high_open else "]"
    raise ValueError(f"{owner}: {name}={value!r} must be a number in [{low}, {high}{bracket}.")


DOWNSAMPLING = "the model's total downsampling; use longer records or fewer stages"

# --- the declared ranges of the hyperparameters the families share (ArchitectureInfo.params) ----------

MAX_WIDTH = 8192  # channels: far beyond the studies' 512, a typo's guard
MAX_KERNEL = 1023
MAX_BLOCKS = 256


def width_param(low: int = 1, doc: str = "channels") -> ParamSpec:
    return int_param(low, MAX_WIDTH, doc=doc)


def kernel_param(doc: str = "convolution kernel size, odd") -> ParamSpec:
    return int_param(1, MAX_KERNEL, odd=True, doc=doc)


def blocks_param(doc: str = "number of blocks") -> ParamSpec:
    return int_param(1, MAX_BLOCKS, doc=doc)


def rate_param(doc: str) -> ParamSpec:
    """A dropout-like rate in [0, 1)."""
    return float_param(0, 1, high_open=True, doc=doc)


def check_io(owner: str, in_leads: Any, num_samples: Any, num_outputs: Any, min_samples: int,
             reason: str = DOWNSAMPLING) -> tuple[int, int, int]:
    """The three positional sizes every architecture factory receives; ``reason`` says why
    ``min_samples`` is the minimum and how to fix a shorter input."""
    samples = check_int(owner, "num_samples", num_samples)
    if samples < min_samples:
        raise ValueError(f"{owner}: num_samples={num_samples!r} is below {min_samples}, {reason}.")
    return (check_int(owner, "in_leads", in_leads), samples,
            check_int(owner, "num_outputs", num_outputs))


def check_int_list(owner: str, name: str, value: Any, *, min_len: int = 1, max_len: int = 64,
                   minimum: int = 1) -> tuple[int, ...]:
    """A list of integers (per-stage block counts or widths) of ``min_len`` to ``max_len`` entries."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not min_len <= len(value) <= max_len:
        raise ValueError(f"{owner}: {name}={value!r} must be a list of {min_len} to {max_len} integers, "
                         "one per stage.")
    return tuple(check_int(owner, name, v, minimum=minimum) for v in value)


def conv_length(length: int, kernel: int, stride: int = 1, padding: int = 0, *, ceil: bool = False) -> int:
    """Output length of a convolution or pooling layer (PyTorch's formula)."""
    span = length + 2 * padding - kernel
    return (math.ceil(span / stride) if ceil else span // stride) + 1


def check_kernel_fits(owner: str, kernel: int, left: int, num_samples: int, name: str = "kernel") -> None:
    """Reject a kernel wider than the signal that is left where it is applied: it would mostly see padding."""
    if kernel > left:
        raise ValueError(f"{owner}: {name}={kernel} is longer than the {left} samples left after downsampling "
                         f"num_samples={num_samples}; use a smaller {name}, fewer stages or longer records.")


# --- layers -----------------------------------------------------------------------------------


class DropPath(nn.Module):
    """Stochastic depth: drops a whole residual branch per sample while training.

    The kept branches are scaled by ``1 / (1 - p)`` so the expected output matches evaluation.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of a ``(batch, channels, samples)`` tensor (each time step alone)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.transpose(1, 2), self.normalized_shape, self.weight, self.bias,
                            self.eps).transpose(1, 2)


class PoolHead(nn.Module):
    """Global average pooling over time, optional LayerNorm, then a linear output layer ``fc``.

    Averaging over time makes every model accept any record length, not only the one it was built for.
    """

    def __init__(self, channels: int, num_outputs: int, *, norm: bool = False) -> None:
        super().__init__()
        self.norm: nn.Module = nn.LayerNorm(channels) if norm else nn.Identity()
        self.fc = nn.Linear(channels, num_outputs)

    @property
    def in_features(self) -> int:
        return self.fc.in_features

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, channels, samples)`` -> ``(batch, channels)``."""
        return self.norm(x.mean(dim=-1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(x))

    def reset(self, num_outputs: int) -> None:
        """A fresh output layer (PyTorch's default initialisation) on the old one's device and dtype."""
        old = self.fc.weight
        self.fc = nn.Linear(self.in_features, num_outputs, device=old.device, dtype=old.dtype)


class EcgNet(nn.Module):
    """The ``ecgsearch.train.models`` contract shared by the built-in families: ``stem``, ``stages`` (an
    ``nn.ModuleList``), a ``head`` with ``in_features`` and ``reset(num_outputs)``; subclasses only
    build those three."""

    stem: nn.Module
    stages: nn.ModuleList
    head: nn.Module

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def reset_head(self, num_outputs: int) -> None:
        self.head.reset(num_outputs)  # type: ignore[operator]
