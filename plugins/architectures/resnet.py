"""ResNet-1D: the torchvision ResNet layout with 1D convolutions, for the depth/channels/kernel study.

Depth D, channels C and kernel size K are the three scaling axes. Depth counts weight layers as
torchvision does (stem conv + 2 per basic block + the classifier), so ``depth`` maps to basic blocks per
stage as::

    depth  8 -> (1, 1, 1)        3 stages
    depth 10 -> (1, 1, 1, 1)     4 stages
    depth 18 -> (2, 2, 2, 2)     4 stages
    depth 34 -> (3, 4, 6, 3)     4 stages

(``blocks: [n1, n2, ...]`` sets any other layout; depth is then ``2 + 2 * sum(blocks)``.) The stem (conv
stride 2 + max-pool stride 2) reduces the length 4x; each later stage halves it and doubles the channels,
so stage ``i`` has ``C * 2**i`` channels. The ResNet of the CODE studies is in ``resnet_code.py``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ecgsearch import (
    AnalyticFactory,
    ArchitectureInfo,
    Costs,
    Span,
    Tally,
    hookimpl,
    int_param,
    list_param,
    trace_span,
)
from ecgsearch_plugins.architectures._blocks import (
    MAX_BLOCKS,
    EcgNet,
    PoolHead,
    check_int,
    check_int_list,
    check_io,
    check_kernel,
    check_kernel_fits,
    check_pool,
    conv_length,
    kernel_param,
    pool_param,
    tally_head,
    width_param,
)
from ecgsearch_plugins.architectures.resnet_code import CODE_PARAMS, build_code_resnet

BLOCKS_PER_STAGE: dict[int, tuple[int, ...]] = {
    8: (1, 1, 1),
    10: (1, 1, 1, 1),
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
}
MAX_STAGES = 6
PARAMS = {
    "depth": int_param(choices=tuple(BLOCKS_PER_STAGE), doc="weight layers D: 8 (1,1,1), 10 (1,1,1,1), "
                       "18 (2,2,2,2), 34 (3,4,6,3) basic blocks per stage"),
    "channels": width_param(doc="channels of stage 0, C; stage `i` has `C * 2**i`"),
    "kernel": kernel_param("odd kernel of every conv, K"),
    "blocks": list_param("int", 1, MAX_BLOCKS, max_len=MAX_STAGES, nullable=True,
                         doc="basic blocks per stage (1-6 stages), overriding `depth` (= 2 + 2 x sum)"),
    "pool": pool_param(),
}


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    """A bias-free 'same'-padded conv and its BatchNorm."""
    return [nn.Conv1d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False), nn.BatchNorm1d(c_out)]


class BasicBlock(nn.Module):
    """Two ``kernel``-wide convs with BatchNorm, ReLU and an identity (or 1x1 projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*conv_bn(c_in, c_out, kernel, stride), nn.ReLU(inplace=True),
                                  *conv_bn(c_out, c_out, kernel))
        # Zero-init the last BN scale: every block starts as identity, which steadies deep nets
        # trained for only a few epochs.
        nn.init.zeros_(self.body[-1].weight)
        self.shortcut: nn.Module = (nn.Sequential(*conv_bn(c_in, c_out, 1, stride))
                                    if stride != 1 or c_in != c_out else nn.Identity())
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))

    def receptive_span(self, span: Span) -> Span:
        return Span.widest(trace_span(self.body, span), trace_span(self.shortcut, span))


@dataclass(frozen=True)
class ResNetSpec:
    in_leads: int
    num_samples: int
    num_outputs: int
    blocks: tuple[int, ...]  # basic blocks per stage
    channels: int
    kernel: int
    pool: str = "gap"

    def head_length(self) -> int:
        """Time steps the head receives."""
        return last_stage_length(self.num_samples, self.kernel, len(self.blocks))


class ResNet1d(EcgNet):
    """Stem, one ``nn.Sequential`` of basic blocks per stage, pooled head (global average by default)."""

    def __init__(self, spec: ResNetSpec) -> None:
        super().__init__()
        channels, kernel = spec.channels, spec.kernel
        self.stem = nn.Sequential(*conv_bn(spec.in_leads, channels, kernel, stride=2),
                                  nn.ReLU(inplace=True), nn.MaxPool1d(3, stride=2, padding=1))
        stages: list[nn.Module] = []
        c_in = channels
        for i, n in enumerate(spec.blocks):
            c_out = channels * 2**i
            layers = [BasicBlock(c_in if j == 0 else c_out, c_out, kernel, stride=2 if i > 0 and j == 0 else 1)
                      for j in range(n)]
            stages.append(nn.Sequential(*layers))
            c_in = c_out
        self.stages = nn.ModuleList(stages)
        self.head = PoolHead(c_in, spec.num_outputs, pool=spec.pool, length=spec.head_length(),
                             samples=spec.num_samples)
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


def last_stage_length(num_samples: int, kernel: int, stages: int) -> int:
    """Samples left in the last stage: stem conv and max-pool halve, every later stage halves."""
    length = conv_length(conv_length(num_samples, kernel, 2, kernel // 2), 3, 2, 1)
    for _ in range(stages - 1):
        length = conv_length(length, kernel, 2, kernel // 2)
    return length


def resnet_spec(in_leads: int, num_samples: int, num_outputs: int, *, depth: int = 18,
                channels: int = 64, kernel: int = 7, blocks: Sequence[int] | None = None,
                pool: str = "gap") -> ResNetSpec:
    """A ResNet-1D of ``depth`` weight layers (8, 10, 18 or 34) or of per-stage ``blocks`` (which
    override ``depth``), ``channels`` in the first stage and odd ``kernel`` in every conv, with the head's
    ``pool`` (``gap``, ``max``, ``gap_max``, ``attention``, ``flatten``). The kernel must fit in what is left
    of ``num_samples`` after the downsampling (4x, then 2x per later stage)."""
    name = "resnet"
    if blocks is None:
        layout = BLOCKS_PER_STAGE[check_int(name, "depth", depth, allowed=BLOCKS_PER_STAGE)]
    else:
        layout = check_int_list(name, "blocks", blocks, max_len=MAX_STAGES)
    in_leads, num_samples, num_outputs = check_io(name, in_leads, num_samples, num_outputs,
                                                  min_samples=2 ** (len(layout) + 1))
    channels = check_int(name, "channels", channels)
    kernel = check_kernel(name, kernel)
    pool = check_pool(name, pool)
    check_kernel_fits(name, kernel, last_stage_length(num_samples, kernel, len(layout)), num_samples)
    return ResNetSpec(in_leads, num_samples, num_outputs, layout, channels, kernel, pool)


def resnet_costs(spec: ResNetSpec) -> Costs:
    """Parameters, MACs and receptive field of ``ResNet1d(spec)``, layer by layer, without building it."""
    t, k, c_in = Tally(), spec.kernel, spec.channels
    length = conv_length(spec.num_samples, k, 2, k // 2)
    t.conv(spec.in_leads, c_in, k, length)
    t.norm(c_in)
    length, span = conv_length(length, 3, 2, 1), Span().conv(k, 2).conv(3, 2)
    for i, n in enumerate(spec.blocks):
        c_out = spec.channels * 2**i
        for j in range(n):
            stride = 2 if i > 0 and j == 0 else 1
            out = conv_length(length, k, stride, k // 2)
            t.conv(c_in, c_out, k, out)
            t.conv(c_out, c_out, k, out)
            t.norm(c_out)
            t.norm(c_out)
            if stride != 1 or c_in != c_out:
                t.conv(c_in, c_out, 1, out)
                t.norm(c_out)
            span = Span.widest(span.conv(k, stride).conv(k), span.conv(1, stride))
            length, c_in = out, c_out
    features = tally_head(t, c_in, length, spec.num_outputs, spec.pool)
    return t.costs(span, spec.num_samples, len(spec.blocks), features)


build_resnet = AnalyticFactory(resnet_spec, ResNet1d, resnet_costs)


@hookimpl
def ecgsearch_register_architectures() -> list[ArchitectureInfo]:
    return [
        ArchitectureInfo(
            name="resnet",
            description="ResNet-1D (basic blocks, BatchNorm, depth 8/10/18/34, channels x2 per stage)",
            factory=build_resnet,
            family="resnet",
            default_space={"depth": {"choice": [8, 18, 34]}, "channels": {"choice": [32, 64]},
                           "kernel": {"choice": [3, 7, 15]}},
            params=PARAMS,
        ),
        ArchitectureInfo(
            name="resnet_tiny",
            description="ResNet-1D-8 with 16 channels: a seconds-fast variant for tests and smoke runs",
            factory=functools.partial(build_resnet, depth=8, channels=16, kernel=7),
            family="resnet",
            default_space={"channels": {"choice": [8, 16]}, "kernel": {"choice": [3, 7]}},
            params=PARAMS,
        ),
        ArchitectureInfo(
            name="resnet_code",
            description="ResNet-1D of the CODE studies (4096 samples at 400 Hz, kernel 17, 4 blocks /4 each)",
            factory=build_code_resnet,
            family="resnet",
            default_space={"kernel": {"choice": [9, 17]}, "dropout": {"choice": [0.0, 0.2]}},
            params=CODE_PARAMS,
        ),
    ]
