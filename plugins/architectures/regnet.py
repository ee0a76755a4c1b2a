"""RegNet/AnyNet-1D: the RegNet design space (Radosavovic et al., 2020) with 1D convolutions.

Widths follow RegNet's quantised linear rule: block ``j`` of ``depth`` gets ``u_j = w0 + wa * j``, the
exponent ``s_j = round(log(u_j / w0) / log(wm))`` and the width ``w0 * wm**s_j`` rounded to a multiple
of 8; consecutive blocks of one width form a stage, and every stage downsamples by 2 (its first
bottleneck block has stride 2; with ConvNeXt blocks, a downsampling layer comes first). The bottleneck
(inner) width of a stage is ``width * bottleneck`` rounded to a multiple of its group width (the group
width is capped at the inner width), so the grouped conv always divides evenly.

Stem: conv (``stem_kernel``, stride 2) + BN + ReLU. Two kinds of block (``block``):

- ``resnet_bottleneck`` (the default; RegNet's X block, Y block with ``se``): 1x1 conv -> BN -> ReLU ->
  grouped ``kernel`` conv (stride) -> BN -> ReLU -> [squeeze-excitation] -> 1x1 conv -> BN, plus an
  identity or 1x1-projection shortcut, then ReLU;
- ``convnext`` (the ConvNeXt scaling study): ConvNeXt blocks (``ConvNeXtBlock`` of ``_layers``: depthwise
  ``kernel`` conv -> channels-last LayerNorm -> Linear(``expansion`` x) -> GELU -> Linear -> LayerScale ->
  stochastic depth, identity residual). Blocks keep width and length, so every stage starts with
  ConvNeXt's downsampling layer (LayerNorm + conv kernel 2, stride 2) from the previous width to the
  stage's, and the head has ConvNeXt's LayerNorm before the linear layer. ``group_width``, ``bottleneck``
  and ``se`` describe the bottleneck block only, ``expansion``, ``layer_scale`` and ``drop_path`` the
  ConvNeXt block only: setting one to a non-default value with the other block is refused.

The network (``RegNet1d``) is in ``_regnet_impl.py``, imported when a model is built.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
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
    MAX_WIDTH,
    blocks_param,
    check_float,
    check_int,
    check_io,
    check_kernel,
    check_pool,
    conv_length,
    kernel_param,
    pool_param,
    rate_param,
    tally_convnext_block,
    tally_convnext_downsample,
    tally_head,
    width_param,
)

QUANTUM = 8
BLOCKS = ("resnet_bottleneck", "convnext")
# block -> the parameters that describe only it, and why each means nothing to the other block
BLOCK_ONLY: dict[str, dict[str, str]] = {
    "resnet_bottleneck": {
        "group_width": "a ConvNeXt block's depthwise conv has one channel per group",
        "bottleneck": "`expansion` sets a ConvNeXt block's inverted bottleneck",
        "se": "ConvNeXt blocks have no squeeze-excitation",
    },
    "convnext": {
        "expansion": "`bottleneck` sets a bottleneck block's inner width",
        "layer_scale": "bottleneck blocks have no LayerScale",
        "drop_path": "bottleneck blocks have no stochastic depth",
    },
}


@dataclass(frozen=True)
class Stage:
    width: int  # output channels
    inner: int  # bottleneck width (channels of the grouped conv)
    groups: int
    blocks: int


def quantized_widths(w0: int, wa: float, wm: float, depth: int) -> list[int]:
    """Per-block widths from RegNet's quantised linear rule (multiples of 8)."""
    widths = []
    for j in range(depth):
        exponent = round(math.log((w0 + wa * j) / w0) / math.log(wm))
        widths.append(max(QUANTUM, round(w0 * wm**exponent / QUANTUM) * QUANTUM))
    return widths


def regnet_stages(w0: int, wa: float, wm: float, depth: int, group_width: int, bottleneck: float) -> list[Stage]:
    """Stages (runs of equal width) with group-compatible bottleneck widths."""
    runs: list[list[int]] = []
    for width in quantized_widths(w0, wa, wm, depth):
        if runs and runs[-1][0] == width:
            runs[-1][1] += 1
        else:
            runs.append([width, 1])
    stages = []
    for width, blocks in runs:
        inner = max(1, round(width * bottleneck))
        group = min(group_width, inner)
        inner = max(group, round(inner / group) * group)
        stages.append(Stage(width, inner, inner // group, blocks))
    return stages


@dataclass(frozen=True)
class RegNetSpec:
    in_leads: int
    num_samples: int
    num_outputs: int
    stem_width: int
    stem_kernel: int
    stages: tuple[Stage, ...]
    kernel: int
    se: float
    block: str = "resnet_bottleneck"
    expansion: float = 4.0
    layer_scale: float = 1e-6
    drop_path: float = 0.0
    pool: str = "gap"

    def head_length(self) -> int:
        """Time steps the head receives."""
        return regnet_length(self.num_samples, self.stem_kernel, self.kernel, len(self.stages), self.block)


def regnet_length(num_samples: int, stem_kernel: int, kernel: int, stages: int, block: str) -> int:
    """Samples left after the stem and ``stages`` stages: each stage's first block's strided conv, or
    ConvNeXt's downsampling layer (kernel 2, stride 2)."""
    length = conv_length(num_samples, stem_kernel, 2, stem_kernel // 2)
    for _ in range(stages):
        length = conv_length(length, kernel, 2, kernel // 2) if block == "resnet_bottleneck" else length // 2
    return length


PARAMS = {
    "stem_width": width_param(doc="stem channels w_init (design space A: 16-64, step 8)"),
    "stem_kernel": kernel_param("odd stem kernel (A: 3, 9, 15); the stem conv has stride 2"),
    "w0": int_param(QUANTUM, MAX_WIDTH, doc=f"initial width, a multiple of {QUANTUM} (A: 32-128, step 8)"),
    "wa": float_param(0, 1024, doc="width slope (A: 10-50)"),
    "wm": float_param(1, 16, low_open=True, doc="width multiplier between stages (A: 1.1-3.0)"),
    "depth": blocks_param("blocks over all stages (A: 4-20)"),
    "group_width": width_param(doc="`resnet_bottleneck` only: channels per group of the grouped conv"),
    "bottleneck": float_param(1e-3, 64, doc="`resnet_bottleneck` only: bottleneck multiplier, inner width = width x "
                                            "bottleneck"),
    "se": float_param(0, 1, doc="`resnet_bottleneck` only: squeeze-excitation ratio of the block's input width "
                                "(0 = none)"),
    "kernel": kernel_param("odd kernel of the grouped conv (`resnet_bottleneck`) or of the depthwise conv "
                           "(`convnext`; A: 3, 7, 11)"),
    "block": str_param(*BLOCKS, doc="`resnet_bottleneck` (RegNet's X/Y block) or `convnext` (A: depthwise conv, "
                                    "inverted bottleneck, LayerNorm, GELU, LayerScale, stochastic depth)"),
    "expansion": float_param(0.25, 16, doc="`convnext` only: inverted-bottleneck ratio, hidden width = width x "
                                           "expansion (A: 1, 2, 4)"),
    "layer_scale": float_param(0, 10, doc="`convnext` only: LayerScale initial value (0 = off)"),
    "drop_path": rate_param("`convnext` only: stochastic depth rate, growing linearly from 0 over all blocks "
                            "(A: 0-0.2)"),
    "pool": pool_param(),
}


def regnet_spec(in_leads: int, num_samples: int, num_outputs: int, *, stem_width: int = 32,
                stem_kernel: int = 9, w0: int = 32, wa: float = 16.0, wm: float = 2.0, depth: int = 8,
                group_width: int = 8, bottleneck: float = 1.0, se: float = 0.25, kernel: int = 3,
                block: str = "resnet_bottleneck", expansion: float = 4.0, layer_scale: float = 1e-6,
                drop_path: float = 0.0, pool: str = "gap") -> RegNetSpec:
    """A RegNet-1D from the design-space parameters: stem width/kernel, ``w0`` (a multiple of 8), slope
    ``wa`` >= 0, multiplier ``wm`` > 1, ``depth`` blocks and the odd ``kernel``, with ``block``
    ``resnet_bottleneck`` (``group_width``, ``bottleneck`` multiplier, squeeze-excitation ratio ``se``, 0 =
    none) or ``convnext`` (inverted-bottleneck ``expansion``, LayerScale init ``layer_scale``, 0 = off, and
    stochastic depth ``drop_path``, growing linearly over the blocks), and the head's ``pool``."""
    name = "regnet"
    raw = {"group_width": group_width, "bottleneck": bottleneck, "se": se, "expansion": expansion,
           "layer_scale": layer_scale, "drop_path": drop_path}
    stem_width = check_int(name, "stem_width", stem_width)
    stem_kernel = check_kernel(name, stem_kernel, "stem_kernel")
    w0 = check_int(name, "w0", w0, minimum=QUANTUM)
    if w0 % QUANTUM:
        raise ValueError(f"{name}: w0={w0} must be a multiple of {QUANTUM} (e.g. {w0 - w0 % QUANTUM} or "
                         f"{w0 - w0 % QUANTUM + QUANTUM}), as widths are quantised to multiples of {QUANTUM}.")
    wa = check_float(name, "wa", wa, 0.0, float("inf"))
    if not (isinstance(wm, numbers.Real) and not isinstance(wm, bool) and 1.0 < wm < float("inf")):
        raise ValueError(f"{name}: wm={wm!r} must be a number > 1 (the width multiplier between stages).")
    depth = check_int(name, "depth", depth)
    group_width = check_int(name, "group_width", group_width)
    bottleneck = check_float(name, "bottleneck", bottleneck, 1e-3, 64.0)
    se = check_float(name, "se", se, 0.0, 1.0)
    kernel = check_kernel(name, kernel)
    if block not in BLOCKS:
        raise ValueError(f"{name}: block={block!r} is not supported; allowed values: {', '.join(BLOCKS)}.")
    expansion = check_float(name, "expansion", expansion, 0.25, 16.0)
    layer_scale = check_float(name, "layer_scale", layer_scale, 0.0, 10.0)
    drop_path = check_float(name, "drop_path", drop_path, 0.0, 1.0, high_open=True)
    pool = check_pool(name, pool)
    checked = {"group_width": group_width, "bottleneck": bottleneck, "se": se, "expansion": expansion,
               "layer_scale": layer_scale, "drop_path": drop_path}
    for owner, only in BLOCK_ONLY.items():
        for param, why in only.items():
            if owner != block and checked[param] != DEFAULTS[param]:
                raise ValueError(f"{name}: {param}={raw[param]!r} applies to block: {owner} only ({why}); leave "
                                 f"it out, or at its default {DEFAULTS[param]!r}, with block: {block}.")
    stages = regnet_stages(w0, wa, float(wm), depth, group_width, bottleneck)
    in_leads, num_samples, num_outputs = check_io(
        name, in_leads, num_samples, num_outputs, min_samples=stem_kernel,
        reason=f"the stem kernel (stem_kernel={stem_kernel}); use a smaller stem_kernel or longer records")
    left = regnet_length(num_samples, stem_kernel, kernel, len(stages), block)
    if kernel > left:
        raise ValueError(f"{name}: kernel={kernel} is longer than the {left} samples left after the "
                         f"{len(stages)} stages that w0={w0}, wa={wa:g}, wm={wm:g}, depth={depth} give "
                         f"(num_samples={num_samples}); use fewer stages (a larger wm, a smaller wa or "
                         "depth), a smaller kernel or longer records.")
    return RegNetSpec(in_leads, num_samples, num_outputs, stem_width, stem_kernel, tuple(stages), kernel, se,
                      block, expansion, layer_scale, drop_path, pool)


DEFAULTS = {p.name: p.default for p in inspect.signature(regnet_spec).parameters.values()
            if p.default is not inspect.Parameter.empty}


def regnet_costs(spec: RegNetSpec) -> Costs:
    """Parameters, MACs and receptive field of ``RegNet1d(spec)``, layer by layer, without building it."""
    t, k = Tally(), spec.kernel
    length = conv_length(spec.num_samples, spec.stem_kernel, 2, spec.stem_kernel // 2)
    t.conv(spec.in_leads, spec.stem_width, spec.stem_kernel, length)
    t.norm(spec.stem_width)
    span, c_in = Span().conv(spec.stem_kernel, 2), spec.stem_width
    if spec.block == "convnext":
        for stage in spec.stages:
            length //= 2
            tally_convnext_downsample(t, c_in, stage.width, length)
            span = span.conv(2, 2)
            for _ in range(stage.blocks):
                tally_convnext_block(t, stage.width, k, length, spec.layer_scale, spec.expansion)
                span = span.conv(k)
            c_in = stage.width
        features = tally_head(t, c_in, length, spec.num_outputs, spec.pool, norm=True)  # ConvNeXt's LayerNorm
        return t.costs(span, spec.num_samples, len(spec.stages), features)
    for stage in spec.stages:
        for j in range(stage.blocks):
            stride = 2 if j == 0 else 1
            out = conv_length(length, k, stride, k // 2)
            t.conv(c_in, stage.inner, 1, length)
            t.conv(stage.inner, stage.inner, k, out, groups=stage.groups)
            t.conv(stage.inner, stage.width, 1, out)
            t.norm(stage.inner)
            t.norm(stage.inner)
            t.norm(stage.width)
            if spec.se > 0:  # on the time-averaged features: one position
                squeezed = max(1, round(spec.se * c_in))
                t.conv(stage.inner, squeezed, 1, 1, bias=True)
                t.conv(squeezed, stage.inner, 1, 1, bias=True)
            if stride != 1 or c_in != stage.width:
                t.conv(c_in, stage.width, 1, out)
                t.norm(stage.width)
            span = Span.widest(span.conv(k, stride), span.conv(1, stride))
            length, c_in = out, stage.width
    features = tally_head(t, c_in, length, spec.num_outputs, spec.pool)
    return t.costs(span, spec.num_samples, len(spec.stages), features)


build_regnet = AnalyticFactory(regnet_spec, "ecgsearch_plugins.architectures._regnet_impl:RegNet1d", regnet_costs)


@hookimpl
def ecgsearch_register_architectures() -> list[ArchitectureInfo]:
    return [
        ArchitectureInfo(
            name="regnet",
            description="RegNet/AnyNet-1D (quantised linear widths; grouped bottleneck blocks with optional SE, "
                        "or ConvNeXt blocks)",
            factory=build_regnet,
            family="regnet",
            default_space={"stem_width": {"choice": [16, 32]}, "stem_kernel": {"choice": [3, 9, 15]},
                           "w0": {"qrandint": [16, 64, 8]}, "wa": {"uniform": [8.0, 32.0]},
                           "wm": {"uniform": [1.5, 3.0]}, "depth": {"randint": [4, 12]},
                           "group_width": {"choice": [4, 8, 16]}, "bottleneck": {"choice": [1.0, 2.0]},
                           "se": {"choice": [0.0, 0.25]}},
            params=PARAMS,
        ),
        ArchitectureInfo(
            name="regnet_tiny",
            description="RegNet-1D with 3 blocks of widths 16-32: a seconds-fast variant for tests",
            factory=functools.partial(build_regnet, stem_width=8, w0=16, wa=8.0, wm=2.0, depth=3,
                                      group_width=4),
            family="regnet",
            default_space={"w0": {"choice": [8, 16]}, "se": {"choice": [0.0, 0.25]}},
            params=PARAMS,
        ),
    ]
