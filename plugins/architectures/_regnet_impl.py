"""The network of ``regnet.py`` (RegNet/AnyNet-1D), imported when a model is built: listing the plugin or
checking a space file needs only ``regnet.py``, which imports no torch.
"""

from __future__ import annotations

import torch
from torch import nn

from ecgsearch import Span, trace_span
from ecgsearch_plugins.architectures._blocks import drop_path_rates
from ecgsearch_plugins.architectures._layers import (
    ConvNeXtBlock,
    EcgNet,
    PoolHead,
    conv_bn,
    convnext_downsample,
    convnext_init,
)
from ecgsearch_plugins.architectures.regnet import RegNetSpec, Stage


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


class RegNet1d(EcgNet):
    def __init__(self, spec: RegNetSpec) -> None:
        super().__init__()
        self.stem = nn.Sequential(*conv_bn(spec.in_leads, spec.stem_width, spec.stem_kernel, 2),
                                  nn.ReLU(inplace=True))
        built, c_in = [], spec.stem_width
        if spec.block == "convnext":
            rates = drop_path_rates(sum(stage.blocks for stage in spec.stages), spec.drop_path)
            for stage in spec.stages:
                blocks = [ConvNeXtBlock(stage.width, spec.kernel, rates.pop(0), spec.layer_scale, spec.expansion)
                          for _ in range(stage.blocks)]
                built.append(nn.Sequential(*convnext_downsample(c_in, stage.width), *blocks))
                c_in = stage.width
        else:
            for stage in spec.stages:
                blocks = []
                for j in range(stage.blocks):
                    blocks.append(RegNetBlock(c_in, stage, spec.kernel, 2 if j == 0 else 1, spec.se))
                    c_in = stage.width
                built.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(built)
        self.head = PoolHead(c_in, spec.num_outputs, norm=spec.block == "convnext", pool=spec.pool,
                             length=spec.head_length(), samples=spec.num_samples)
        for m in self.modules():
            if isinstance(m, nn.Conv1d) and m.bias is None:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if spec.block == "convnext":
            self.stages.apply(convnext_init)
