"""Transformer-1D: a ViT-style encoder over patches of the ECG, for the ResNet-vs-Transformer scaling study.

Stem: a convolutional patch embedding (conv with kernel = stride = ``patch``: one token per ``patch``
samples, all leads), fixed sinusoidal positions (no parameters, so any record length works) and, with
``pool: cls``, a learned class token in front. Stages: ``depth`` pre-norm encoder blocks (multi-head
self-attention through ``scaled_dot_product_attention``, then an MLP of ``mlp_ratio * width`` with GELU),
each with stochastic depth. Head: LayerNorm, the class token or the mean over tokens, a linear layer.

Parameters per block: ``12 * width**2 + 13 * width`` at ``mlp_ratio`` 4, so the family spans ~20K
parameters (width 24, depth 2) to 100M+ (width 1024, depth 8).

The network (``Transformer1d``) is in ``_transformer_impl.py``, imported when a model is built.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ecgsearch import (
    AnalyticFactory,
    ArchitectureInfo,
    Costs,
    Span,
    Tally,
    float_param,
    hookimpl,
    int_param,
    str_param,
)
from ecgsearch_plugins.architectures._blocks import (
    blocks_param,
    check_float,
    check_int,
    check_io,
    rate_param,
    width_param,
)

POOLS = ("cls", "mean")
PARAMS = {
    "width": width_param(2, doc="token width"),
    "depth": blocks_param("encoder blocks (each is one stage)"),
    "heads": int_param(1, 64, doc="attention heads; must divide `width`"),
    "patch": int_param(1, 4096, doc="samples per token (conv patch embedding, kernel = stride = `patch`)"),
    "mlp_ratio": float_param(0.1, 64, doc="MLP hidden width / width"),
    "pool": str_param(*POOLS, doc="`cls` (a learned class token) or `mean` (mean over tokens)"),
    "dropout": rate_param("dropout in attention and the MLP"),
    "drop_path": rate_param("stochastic depth, growing linearly over the blocks"),
}


@dataclass(frozen=True)
class TransformerSpec:
    in_leads: int
    num_samples: int
    num_outputs: int
    width: int
    depth: int
    heads: int
    patch: int
    mlp_ratio: float
    pool: str
    dropout: float
    drop_path: float


def _divisors(n: int) -> str:
    return ", ".join(str(d) for d in range(1, n + 1) if n % d == 0)


def transformer_spec(in_leads: int, num_samples: int, num_outputs: int, *, width: int = 128,
                     depth: int = 4, heads: int = 4, patch: int = 16, mlp_ratio: float = 4.0,
                     pool: str = "cls", dropout: float = 0.0, drop_path: float = 0.1) -> TransformerSpec:
    """A Transformer-1D of ``depth`` blocks of ``width`` channels and ``heads`` attention heads (which
    must divide the width) over patches of ``patch`` samples; ``pool`` is ``cls`` or ``mean``."""
    name = "transformer"
    width = check_int(name, "width", width, minimum=2)
    depth = check_int(name, "depth", depth)
    heads = check_int(name, "heads", heads)
    if width % heads:
        raise ValueError(f"{name}: heads={heads} does not divide width={width}; choose heads among "
                         f"{_divisors(width)} or change the width.")
    patch = check_int(name, "patch", patch)
    mlp_ratio = check_float(name, "mlp_ratio", mlp_ratio, 0.1, 64.0)
    if pool not in POOLS:
        raise ValueError(f"{name}: pool={pool!r} is not supported; allowed values: {', '.join(POOLS)}.")
    dropout = check_float(name, "dropout", dropout, 0.0, 1.0, high_open=True)
    drop_path = check_float(name, "drop_path", drop_path, 0.0, 1.0, high_open=True)
    in_leads, num_samples, num_outputs = check_io(name, in_leads, num_samples, num_outputs, min_samples=patch,
                                                  reason=f"one patch of patch={patch} samples; use a smaller patch")
    return TransformerSpec(in_leads, num_samples, num_outputs, width, depth, heads, patch, mlp_ratio, pool,
                           dropout, drop_path)


def mlp_width(width: int, mlp_ratio: float) -> int:
    return max(1, round(width * mlp_ratio))


def transformer_costs(spec: TransformerSpec) -> Costs:
    """Parameters, MACs and receptive field of ``Transformer1d(spec)`` without building it.

    Attention costs ``2 * tokens**2 * width`` MACs per block (``QK^T`` and ``AV`` over all heads)."""
    t, w = Tally(), spec.width
    tokens = spec.num_samples // spec.patch
    t.conv(spec.in_leads, w, spec.patch, tokens, bias=True)
    if spec.pool == "cls":
        t.params += w
        tokens += 1
    hidden = mlp_width(w, spec.mlp_ratio)
    for _ in range(spec.depth):
        t.norm(w)
        t.linear(w, 3 * w, tokens)
        t.macs += 2 * tokens * tokens * w
        t.linear(w, w, tokens)
        t.norm(w)
        t.linear(w, hidden, tokens)
        t.linear(hidden, w, tokens)
    t.norm(w)
    t.linear(w, spec.num_outputs)
    return t.costs(Span().whole(), spec.num_samples, spec.depth, w)


build_transformer = AnalyticFactory(transformer_spec, "ecgsearch_plugins.architectures._transformer_impl:Transformer1d",
                                    transformer_costs)


@hookimpl
def ecgsearch_register_architectures() -> list[ArchitectureInfo]:
    return [
        ArchitectureInfo(
            name="transformer",
            description="Transformer-1D (conv patch embedding, pre-norm encoder blocks, class token or mean)",
            factory=build_transformer,
            family="transformer",
            default_space={"width": {"choice": [64, 128, 256]}, "depth": {"choice": [2, 4, 6]},
                           "heads": {"choice": [2, 4, 8]}, "patch": {"choice": [10, 20, 50]},
                           "pool": {"choice": ["cls", "mean"]}},
            params=PARAMS,
        ),
        ArchitectureInfo(
            name="transformer_tiny",
            description="Transformer-1D of width 32, 2 blocks, 2 heads, patch 20: a fast variant for tests",
            factory=functools.partial(build_transformer, width=32, depth=2, heads=2, patch=20),
            family="transformer",
            default_space={"width": {"choice": [16, 32]}, "pool": {"choice": ["cls", "mean"]}},
            params=PARAMS,
        ),
    ]
