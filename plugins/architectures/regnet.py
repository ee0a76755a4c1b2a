"""RegNet/AnyNet-1D: the RegNet design space (Radosavovic et al., 2020) with 1D convolutions.

Widths follow RegNet's quantised linear rule: block ``j`` of ``depth`` gets ``u_j = w0 + wa * j``, the
exponent ``s_j = round(log(u_j / w0) / log(wm))`` and the width ``w0 * wm**s_j`` rounded to a multiple
of 8; consecutive blocks of one width form a stage, and every stage's first block downsamples by 2.
The bottleneck (inner) width of a stage is ``width * bottleneck`` rounded to a multiple of its group
width (the group width is capped at the inner width), so the grouped conv always divides evenly.

Stem: conv (``stem_kernel``, stride 2) + BN + ReLU. Block (RegNet's X block, Y block with ``se``):
1x1 conv -> BN -> ReLU -> grouped ``kernel`` conv (stride) -> BN -> ReLU -> [squeeze-excitation] ->
1x1 conv -> BN, plus an identity or 1x1-projection shortcut, then ReLU.
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass

import torch
from torch import nn

from ecgsearch import (
    AnalyticFactory,
    ArchitectureInfo,
    Costs,
    Span,
    Tally,
    float_param,
    hookimpl,
    int_param,
    trace_span,
)
from ecgsearch_plugins.architectures._blocks import (
    MAX_WIDTH,
    EcgNet,
    PoolHead,
    blocks_param,
    check_float,
    check_int,
    check_io,
    check_kernel,
    conv_length,
    kernel_param,
    width_param,
)
from ecgsearch_plugins.architectures.resnet import conv_bn

QUANTUM = 8


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


class SqueezeExcite(nn.Module):
    """Channel gates from the time-averaged features: mean -> 1x1 conv -> ReLU -> 1x1 conv -> sigmoid."""

    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(nn.Conv1d(channels, squeezed, 1), nn.ReLU(inplace=True),
                                  nn.Conv1d(squeezed, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x.mean(dim=-1, keepdim=True))


class RegNetBlock(nn.Module):
    def __init__(self, c_in: int, stage: Stage, kernel: int, stride: int, se: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [*conv_bn(c_in, stage.inner, 1), nn.ReLU(inplace=True)]
        grouped = nn.Conv1d(stage.inner, stage.inner, kernel, stride, padding=kernel // 2,
                            groups=stage.groups, bias=False)
        layers += [grouped, nn.BatchNorm1d(stage.inner), nn.ReLU(inplace=True)]
        if se > 0:
            layers.append(SqueezeExcite(stage.inner, max(1, round(se * c_in))))
        layers += conv_bn(stage.inner, stage.width, 1)
        nn.init.zeros_(layers[-1].weight)  # each block starts as (nearly) the identity
        self.body = nn.Sequential(*layers)
        self.shortcut: nn.Module = (nn.Sequential(*conv_bn(c_in, stage.width, 1, stride))
                                    if stride != 1 or c_in != stage.width else nn.Identity())
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))

    def receptive_span(self, span: Span) -> Span:
        """The conv path; squeeze-excitation only rescales channels by a global summary."""
        main = span
        for layer in self.body:
            main = main if isinstance(layer, SqueezeExcite) else trace_span(layer, main)
        return Span.widest(main, trace_span(self.shortcut, span))


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


class RegNet1d(EcgNet):
    def __init__(self, spec: RegNetSpec) -> None:
        super().__init__()
        self.stem = nn.Sequential(*conv_bn(spec.in_leads, spec.stem_width, spec.stem_kernel, 2),
                                  nn.ReLU(inplace=True))
        built, c_in = [], spec.stem_width
        for stage in spec.stages:
            blocks = []
            for j in range(stage.blocks):
                blocks.append(RegNetBlock(c_in, stage, spec.kernel, 2 if j == 0 else 1, spec.se))
                c_in = stage.width
            built.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(built)
        self.head = PoolHead(c_in, spec.num_outputs)
        for m in self.modules():
            if isinstance(m, nn.Conv1d) and m.bias is None:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


PARAMS = {
    "stem_width": width_param(doc="stem channels w_init (design space A: 16-64, step 8)"),
    "stem_kernel": kernel_param("odd stem kernel (A: 3, 9, 15); the stem conv has stride 2"),
    "w0": int_param(QUANTUM, MAX_WIDTH, doc=f"initial width, a multiple of {QUANTUM} (A: 32-128, step 8)"),
    "wa": float_param(0, 1024, doc="width slope (A: 10-50)"),
    "wm": float_param(1, 16, low_open=True, doc="width multiplier between stages (A: 1.1-3.0)"),
    "depth": blocks_param("blocks over all stages (A: 4-20)"),
    "group_width": width_param(doc="channels per group of the grouped conv (A: 1-32)"),
    "bottleneck": float_param(1e-3, 64, doc="bottleneck multiplier: inner width = width x bottleneck (A: 0.5-4)"),
    "se": float_param(0, 1, doc="squeeze-excitation ratio of the block's input width (0 = none)"),
    "kernel": kernel_param("odd kernel of the grouped conv"),
}


def regnet_spec(in_leads: int, num_samples: int, num_outputs: int, *, stem_width: int = 32,
                stem_kernel: int = 9, w0: int = 32, wa: float = 16.0, wm: float = 2.0, depth: int = 8,
                group_width: int = 8, bottleneck: float = 1.0, se: float = 0.25, kernel: int = 3) -> RegNetSpec:
    """A RegNet-1D from the design-space parameters: stem width/kernel, ``w0`` (a multiple of 8), slope
    ``wa`` >= 0, multiplier ``wm`` > 1, ``depth`` blocks, ``group_width``, ``bottleneck`` multiplier,
    squeeze-excitation ratio ``se`` (0 = none) and the grouped conv's odd ``kernel``."""
    name = "regnet"
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
    stages = regnet_stages(w0, wa, float(wm), depth, group_width, bottleneck)
    in_leads, num_samples, num_outputs = check_io(
        name, in_leads, num_samples, num_outputs, min_samples=stem_kernel,
        reason=f"the stem kernel (stem_kernel={stem_kernel}); use a smaller stem_kernel or longer records")
    left = conv_length(num_samples, stem_kernel, 2, stem_kernel // 2)
    for _ in stages:
        left = conv_length(left, kernel, 2, kernel // 2)
    if kernel > left:
        raise ValueError(f"{name}: kernel={kernel} is longer than the {left} samples left after the "
                         f"{len(stages)} stages that w0={w0}, wa={wa:g}, wm={wm:g}, depth={depth} give "
                         f"(num_samples={num_samples}); use fewer stages (a larger wm, a smaller wa or "
                         "depth), a smaller kernel or longer records.")
    return RegNetSpec(in_leads, num_samples, num_outputs, stem_width, stem_kernel, tuple(stages), kernel, se)


def regnet_costs(spec: RegNetSpec) -> Costs:
    """Parameters, MACs and receptive field of ``RegNet1d(spec)``, layer by layer, without building it."""
    t, k = Tally(), spec.kernel
    length = conv_length(spec.num_samples, spec.stem_kernel, 2, spec.stem_kernel // 2)
    t.conv(spec.in_leads, spec.stem_width, spec.stem_kernel, length)
    t.norm(spec.stem_width)
    span, c_in = Span().conv(spec.stem_kernel, 2), spec.stem_width
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
    t.linear(c_in, spec.num_outputs)
    return t.costs(span, spec.num_samples, len(spec.stages), c_in)


build_regnet = AnalyticFactory(regnet_spec, RegNet1d, regnet_costs)


@hookimpl
def ecgsearch_register_architectures() -> list[ArchitectureInfo]:
    return [
        ArchitectureInfo(
            name="regnet",
            description="RegNet/AnyNet-1D (quantised linear widths, grouped bottleneck blocks, optional SE)",
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
