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

from ecgsearch import ParamSpec, Span, Tally, float_param, int_param, str_param, trace_span

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


# --- ConvNeXt blocks (Liu et al., 2022), shared by `convnext` and `regnet` with `block: convnext` -----------


def convnext_hidden(channels: int, expansion: float) -> int:
    """Width of a ConvNeXt block's inverted bottleneck: ``round(channels * expansion)``, at least 1."""
    return max(1, round(channels * expansion))


def drop_path_rates(blocks: int, drop_path: float) -> list[float]:
    """Stochastic-depth rate per block, growing linearly from 0 to ``drop_path`` as in ConvNeXt (plain
    Python, so a model also builds on the meta device)."""
    return [drop_path * i / (blocks - 1) if blocks > 1 else 0.0 for i in range(blocks)]


class ConvNeXtBlock(nn.Module):
    """Depthwise conv -> LayerNorm -> Linear(``expansion`` x) -> GELU -> Linear -> LayerScale -> DropPath,
    residual.

    The pointwise part runs on ``(batch, samples, channels)`` so ``nn.Linear`` and ``nn.LayerNorm``
    work on the last axis (channels-last LayerNorm over the channels) without extra transposes.
    ``layer_scale`` 0 turns LayerScale off.
    """

    def __init__(self, channels: int, kernel: int, drop_path: float, layer_scale: float,
                 expansion: float = 4) -> None:
        super().__init__()
        hidden = convnext_hidden(channels, expansion)
        self.dwconv = nn.Conv1d(channels, channels, kernel, padding=kernel // 2, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.pw1 = nn.Linear(channels, hidden)
        self.act = nn.GELU()
        self.pw2 = nn.Linear(hidden, channels)
        self.gamma = nn.Parameter(torch.full((channels,), layer_scale)) if layer_scale > 0 else None
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).transpose(1, 2)
        y = self.pw2(self.act(self.pw1(self.norm(y))))
        if self.gamma is not None:
            y = y * self.gamma
        return x + self.drop_path(y.transpose(1, 2))

    def receptive_span(self, span: Span) -> Span:
        return trace_span(self.dwconv, span)  # pointwise layers and the identity add see one step


def convnext_downsample(c_in: int, c_out: int) -> list[nn.Module]:
    """ConvNeXt's downsampling layer between stages: channels-last LayerNorm, then a conv of kernel 2,
    stride 2 (no padding: ``length // 2`` samples out)."""
    return [ChannelLayerNorm(c_in, eps=1e-6), nn.Conv1d(c_in, c_out, 2, stride=2)]


def convnext_init(m: nn.Module) -> None:
    """ConvNeXt's initialisation (``module.apply(convnext_init)``): truncated normal (std 0.02) weights
    and zero biases for convs and linear layers."""
    if isinstance(m, (nn.Conv1d, nn.Linear)):
        nn.init.trunc_normal_(m.weight, std=0.02)
        nn.init.zeros_(m.bias)


def tally_convnext_block(t: Tally, channels: int, kernel: int, length: int, layer_scale: float,
                         expansion: float = 4) -> None:
    """Parameters and MACs of one ``ConvNeXtBlock`` over ``length`` samples (its span: ``span.conv(kernel)``)."""
    hidden = convnext_hidden(channels, expansion)
    t.conv(channels, channels, kernel, length, groups=channels, bias=True)
    t.norm(channels)
    t.linear(channels, hidden, length)
    t.linear(hidden, channels, length)
    t.params += channels if layer_scale > 0 else 0


def tally_convnext_downsample(t: Tally, c_in: int, c_out: int, length_out: int) -> None:
    """Parameters and MACs of ``convnext_downsample`` (its span: ``span.conv(2, 2)``)."""
    t.norm(c_in)
    t.conv(c_in, c_out, 2, length_out, bias=True)


# --- the head: pooling over time and the output layer, shared by the CNN families ---------------------

POOLS = ("gap", "max", "gap_max", "attention", "flatten")


def pool_param() -> ParamSpec:
    return str_param(*POOLS, doc="the head's pooling over time: `gap` (global average), `max`, `gap_max` (both, "
                                 "concatenated), `attention` (a learned softmax-weighted sum) or `flatten` (every "
                                 "time step into the linear layer; the built input length only)")


def check_pool(owner: str, pool: Any) -> str:
    """One of ``POOLS``."""
    if isinstance(pool, str) and pool in POOLS:
        return pool
    raise ValueError(f"{owner}: pool={pool!r} is not supported; allowed values: {', '.join(POOLS)}.")


def head_features(channels: int, length: int, pool: str) -> int:
    """Width of the pooled vector the output layer reads: ``channels`` (``gap``, ``max``, ``attention``),
    twice that (``gap_max``) or ``channels * length`` (``flatten``, over the ``length`` time steps)."""
    return {"gap_max": 2 * channels, "flatten": channels * length}.get(pool, channels)


def tally_head(t: Tally, channels: int, length: int, num_outputs: int, pool: str = "gap", *,
               norm: bool = False) -> int:
    """Parameters and MACs of ``PoolHead(channels, num_outputs, norm=norm, pool=pool, length=length)`` over
    ``length`` time steps; returns its ``in_features``. Averages and maxima are pooling, not MACs;
    attention pooling costs its scoring 1x1 conv and the weighted sum (a matrix product), ``channels``
    MACs per time step each."""
    if norm:
        t.norm(channels)
    if pool == "attention":
        t.conv(channels, 1, 1, length)
        t.macs += channels * length
    features = head_features(channels, length, pool)
    t.linear(features, num_outputs)
    return features


class PoolHead(nn.Module):
    """Pooling over time (``pool``), optional LayerNorm over the channels, then a linear output layer ``fc``.

    ``gap`` averages over time and ``max`` takes the maximum; ``gap_max`` concatenates both (mean, then
    max: ``2 * channels`` features); ``attention`` scores every time step with a learned 1x1 conv (weight
    ``score``, initially zero), takes the softmax over time and sums the time steps with those weights (a
    matrix product); ``flatten`` feeds all ``channels x length`` values to ``fc``. Every pool but
    ``flatten`` makes the model accept any record length; a ``flatten`` head takes only the ``length``
    time steps it was built for (from ``samples`` input samples) and says so, in a ``ValueError``, for any
    other. The LayerNorm (ConvNeXt's) normalises the channels of each pooled vector (of every time step
    with ``flatten``). ``reset`` replaces only ``fc``: the LayerNorm and the attention scores stay.
    """

    def __init__(self, channels: int, num_outputs: int, *, norm: bool = False, pool: str = "gap",
                 length: int | None = None, samples: int | None = None) -> None:
        super().__init__()
        self.pool = check_pool("PoolHead", pool)
        if pool == "flatten" and not length:
            raise ValueError("PoolHead: pool='flatten' needs length, the time steps the head receives.")
        self.channels, self.length, self.samples = channels, length, samples
        self.norm: nn.Module = nn.LayerNorm(channels) if norm else nn.Identity()
        # attention: the weight of a 1x1 conv (channels -> 1 score per time step; no bias, which the softmax
        # would cancel), held as a parameter so that the families' conv initialisations leave it at zero:
        # every time step weighs the same at first, and an attention head starts as global average pooling
        self.score = nn.Parameter(torch.zeros(1, channels, 1)) if pool == "attention" else None
        self.fc = nn.Linear(head_features(channels, length or 0, pool), num_outputs)

    @property
    def in_features(self) -> int:
        return self.fc.in_features

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """``attention``: the weight of every time step, ``(batch, channels, samples)`` -> ``(batch, samples)``,
        summing to 1 over time."""
        if self.score is None:
            raise ValueError(f"PoolHead: pool={self.pool!r} has no attention weights; only pool='attention' has.")
        return torch.softmax(F.conv1d(x, self.score).squeeze(1), dim=-1)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, channels, samples)`` -> ``(batch, in_features)``."""
        if self.pool == "flatten":
            self._check_length(x)
            if isinstance(self.norm, nn.LayerNorm):
                x = self.norm(x.transpose(1, 2)).transpose(1, 2)
            return x.flatten(1)
        if self.pool == "attention":
            return self.norm(torch.bmm(x, self.weights(x).unsqueeze(-1)).squeeze(-1))
        if self.pool == "max":
            return self.norm(x.amax(dim=-1))
        if self.pool == "gap_max":
            return torch.cat([self.norm(x.mean(dim=-1)), self.norm(x.amax(dim=-1))], dim=1)
        return self.norm(x.mean(dim=-1))

    def _check_length(self, x: torch.Tensor) -> None:
        if torch.jit.is_tracing() or x.shape[-1] == self.length:  # an export traces the built length
            return
        built = f"num_samples={self.samples}, which gives" if self.samples else "an input that gives"
        raise ValueError(f"pool: flatten: this model was built for {built} the head {self.length} time steps, but "
                         f"it received {x.shape[-1]}; a flatten head takes only the input length the model was "
                         "built for (build the model for this length, or use pool gap, max, gap_max or attention, "
                         "which take any length).")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pooled(x))

    def receptive_span(self, span: Span) -> Span:
        """Every pool reads all time steps (``receptive_field`` leaves the head out by design)."""
        return span.whole()

    def reset(self, num_outputs: int) -> None:
        """A fresh output layer (PyTorch's default initialisation) on the old one's device and dtype."""
        old = self.fc.weight
        self.fc = nn.Linear(self.in_features, num_outputs, device=old.device, dtype=old.dtype)

    def extra_repr(self) -> str:
        return f"pool={self.pool!r}" + (f", length={self.length}" if self.pool == "flatten" else "")


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
