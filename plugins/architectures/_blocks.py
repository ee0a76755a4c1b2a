"""Layers and hyperparameter checks shared by the built-in 1D architectures.

Checks raise one-sentence ``ValueError`` messages that name the family, the parameter, the bad value
and what is allowed, because a trial's error text is what a user sees in ``results.parquet``.
"""

from __future__ import annotations

import numbers
from typing import Any, Iterable

import torch
from torch import nn
from torch.nn import functional as F


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


def check_io(owner: str, in_leads: Any, num_samples: Any, num_outputs: Any,
             min_samples: int) -> tuple[int, int, int]:
    """The three positional sizes every architecture factory receives."""
    samples = check_int(owner, "num_samples", num_samples)
    if samples < min_samples:
        raise ValueError(f"{owner}: num_samples={num_samples!r} is below {min_samples}, the model's "
                         "total downsampling; use longer records or fewer stages.")
    return (check_int(owner, "in_leads", in_leads), samples,
            check_int(owner, "num_outputs", num_outputs))


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
    """Global average pooling over time, optional LayerNorm, then a linear classifier.

    Averaging over time makes every model accept any record length, not only the one it was built for.
    """

    def __init__(self, channels: int, num_outputs: int, *, norm: bool = False) -> None:
        super().__init__()
        self.norm: nn.Module = nn.LayerNorm(channels) if norm else nn.Identity()
        self.fc = nn.Linear(channels, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(x.mean(dim=-1)))
