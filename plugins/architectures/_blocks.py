"""Hyperparameter checks, declarations and cost arithmetic shared by the built-in 1D architectures.

No torch here: a family's registration module checks and costs its arguments with these, and its network
(``_<family>_impl.py``, built from the layers of ``_layers.py``) is imported only when a model is built.

Checks raise one-sentence ``ValueError`` messages that name the family, the parameter, the bad value
and what is allowed, because a trial's error text is what a user sees in ``results.parquet``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Sequence

from ecgsearch import ParamSpec, Tally, float_param, int_param, str_param

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


# --- ConvNeXt blocks (Liu et al., 2022), shared by `convnext` and `regnet` with `block: convnext` -----------


def convnext_hidden(channels: int, expansion: float) -> int:
    """Width of a ConvNeXt block's inverted bottleneck: ``round(channels * expansion)``, at least 1."""
    return max(1, round(channels * expansion))


def drop_path_rates(blocks: int, drop_path: float) -> list[float]:
    """Stochastic-depth rate per block, growing linearly from 0 to ``drop_path`` as in ConvNeXt (plain
    Python, so a model also builds on the meta device)."""
    return [drop_path * i / (blocks - 1) if blocks > 1 else 0.0 for i in range(blocks)]


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
