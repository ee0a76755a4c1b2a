"""The network of ``resnet.py`` (ResNet-1D), imported when a model is built: listing the plugin or checking
a space file needs only ``resnet.py``, which imports no torch.
"""

from __future__ import annotations

import torch
from torch import nn

from ecgsearch import Span, trace_span
from ecgsearch_plugins.architectures._layers import EcgNet, PoolHead, conv_bn
from ecgsearch_plugins.architectures.resnet import ResNetSpec


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
