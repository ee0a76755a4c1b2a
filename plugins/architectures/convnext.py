"""ConvNeXt-1D: the ConvNeXt design (Liu et al., 2022) with 1D convolutions, for the design-space study.

A patchify stem (conv with kernel = stride = ``patch``) then ``stages`` stages; every stage after the
first starts with a downsampling layer (LayerNorm + conv kernel 2, stride 2) and, by default, doubles the
width, so stage ``i`` has ``width * 2**i`` channels (``widths`` sets them one by one). Each block:
depthwise conv (``kernel``), LayerNorm, pointwise 4x inverted bottleneck with GELU, LayerScale,
stochastic depth (rate growing linearly to ``drop_path``), residual add.

The network (``ConvNeXt1d``) is in ``_convnext_impl.py``, imported when a model is built.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

from ecgsearch import (
    AnalyticFactory,
    ArchitectureInfo,
    Costs,
    Span,
    Tally,
    float_param,
    hookimpl,
    int_param,
    list_param,
)
from ecgsearch_plugins.architectures._blocks import (
    MAX_BLOCKS,
    MAX_WIDTH,
    blocks_param,
    check_float,
    check_int,
    check_int_list,
    check_io,
    check_kernel,
    check_kernel_fits,
    check_pool,
    kernel_param,
    pool_param,
    rate_param,
    tally_convnext_block,
    tally_convnext_downsample,
    tally_head,
    width_param,
)

MAX_STAGES = 4
PARAMS = {
    "stages": int_param(1, MAX_STAGES, doc="number of stages (each after the first halves the length)"),
    "width": width_param(doc="channels of stage 0; stage `i` has `width * 2**i`"),
    "depth": blocks_param("blocks per stage"),
    "depths": list_param("int", 1, MAX_BLOCKS, max_len=MAX_STAGES, nullable=True,
                         doc="blocks per stage as a list, e.g. `[3, 3, 9, 3]`; sets the stage count"),
    "widths": list_param("int", 1, MAX_WIDTH, max_len=MAX_STAGES, nullable=True,
                         doc="channels per stage as a list, e.g. `[96, 192, 384, 768]`; sets the stage count"),
    "kernel": kernel_param("odd depthwise kernel"),
    "patch": int_param(1, 4096, doc="the stem: a conv with kernel = stride = `patch`, then LayerNorm"),
    "drop_path": rate_param("stochastic depth rate, growing linearly over the blocks"),
    "layer_scale": float_param(0, 10, doc="LayerScale initial value (0 = off)"),
    "pool": pool_param(),
}


@dataclass(frozen=True)
class ConvNeXtSpec:
    in_leads: int
    num_samples: int
    num_outputs: int
    depths: tuple[int, ...]
    widths: tuple[int, ...]
    kernel: int
    patch: int
    drop_path: float
    layer_scale: float
    pool: str = "gap"

    def head_length(self) -> int:
        """Time steps the head receives: the patchify stem, then every later stage halves the length."""
        return self.num_samples // self.patch // 2 ** (len(self.depths) - 1)


def convnext_spec(in_leads: int, num_samples: int, num_outputs: int, *, stages: int = 3,
                  width: int = 32, depth: int = 2, depths: Sequence[int] | None = None,
                  widths: Sequence[int] | None = None, kernel: int = 7, patch: int = 4,
                  drop_path: float = 0.0, layer_scale: float = 1e-6, pool: str = "gap") -> ConvNeXtSpec:
    """A ConvNeXt-1D with ``stages`` (1-4) stages of ``depth`` blocks and ``width * 2**i`` channels, or
    per-stage ``depths`` (e.g. ``(3, 3, 9, 3)`` of ConvNeXt-T) and/or ``widths`` (e.g. ``(96, 192, 384,
    768)``), which then set the stage count. ``patch`` is the stem's patch size; ``layer_scale`` 0 turns
    LayerScale off; ``pool`` is the head's pooling. The depthwise ``kernel`` must fit in the samples left
    after ``patch * 2**(stages-1)``."""
    name = "convnext"
    if depths is not None:
        blocks = check_int_list(name, "depths", depths, max_len=MAX_STAGES)
    elif widths is not None:
        blocks = (check_int(name, "depth", depth),) * len(check_int_list(name, "widths", widths, max_len=MAX_STAGES))
    else:
        stages = check_int(name, "stages", stages, allowed=range(1, MAX_STAGES + 1))
        blocks = (check_int(name, "depth", depth),) * stages
    if widths is None:
        channels = tuple(check_int(name, "width", width) * 2**i for i in range(len(blocks)))
    else:
        channels = check_int_list(name, "widths", widths, max_len=MAX_STAGES)
        if len(channels) != len(blocks):
            raise ValueError(f"{name}: widths={list(widths)!r} has {len(channels)} entries but depths="
                             f"{list(blocks)!r} has {len(blocks)}; give one width per stage.")
    kernel = check_kernel(name, kernel)
    patch = check_int(name, "patch", patch)
    drop_path = check_float(name, "drop_path", drop_path, 0.0, 1.0, high_open=True)
    layer_scale = check_float(name, "layer_scale", layer_scale, 0.0, float("inf"))
    pool = check_pool(name, pool)
    in_leads, num_samples, num_outputs = check_io(name, in_leads, num_samples, num_outputs,
                                                  min_samples=patch * 2 ** (len(blocks) - 1))
    check_kernel_fits(name, kernel, num_samples // patch // 2 ** (len(blocks) - 1), num_samples)
    return ConvNeXtSpec(in_leads, num_samples, num_outputs, blocks, channels, kernel, patch, drop_path,
                        layer_scale, pool)


def convnext_costs(spec: ConvNeXtSpec) -> Costs:
    """Parameters, MACs and receptive field of ``ConvNeXt1d(spec)``, layer by layer, without building it."""
    t, widths = Tally(), spec.widths
    length = spec.num_samples // spec.patch
    t.conv(spec.in_leads, widths[0], spec.patch, length, bias=True)
    t.norm(widths[0])
    span = Span().conv(spec.patch, spec.patch)
    for i, (n, c) in enumerate(zip(spec.depths, widths)):
        if i:
            length //= 2
            tally_convnext_downsample(t, widths[i - 1], c, length)
            span = span.conv(2, 2)
        for _ in range(n):
            tally_convnext_block(t, c, spec.kernel, length, spec.layer_scale)
            span = span.conv(spec.kernel)
    features = tally_head(t, widths[-1], length, spec.num_outputs, spec.pool, norm=True)
    return t.costs(span, spec.num_samples, len(widths), features)


build_convnext = AnalyticFactory(convnext_spec, "ecgsearch_plugins.architectures._convnext_impl:ConvNeXt1d",
                                 convnext_costs)


@hookimpl
def ecgsearch_register_architectures() -> list[ArchitectureInfo]:
    return [
        ArchitectureInfo(
            name="convnext",
            description="ConvNeXt-1D (patchify stem, depthwise conv, LayerNorm, 4x MLP, LayerScale)",
            factory=build_convnext,
            family="convnext",
            default_space={"stages": {"randint": [2, 4]}, "width": {"choice": [16, 32, 64]},
                           "depth": {"choice": [1, 2, 3]}, "kernel": {"choice": [7, 15]},
                           "drop_path": {"choice": [0.0, 0.1]}},
            params=PARAMS,
        ),
        ArchitectureInfo(
            name="convnext_tiny",
            description="ConvNeXt-1D with 2 stages of 1 block, width 16: a fast variant for tests",
            factory=functools.partial(build_convnext, stages=2, width=16, depth=1),
            family="convnext",
            default_space={"width": {"choice": [8, 16]}, "kernel": {"choice": [3, 7]}},
            params=PARAMS,
        ),
    ]
