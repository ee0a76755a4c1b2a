"""The network of ``resnet_code.py`` (the CODE studies' ResNet-1D), imported when a model is built: listing
the plugin or checking a space file needs only ``resnet_code.py``, which imports no torch.
"""

from __future__ import annotations

import torch
from torch import nn

from ecgsearch import Span, trace_span
from ecgsearch_plugins.architectures._layers import EcgNet, PoolHead
from ecgsearch_plugins.architectures.resnet_code import CodeResNetSpec


def _post(channels: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm1d(channels), nn.ReLU(inplace=True), nn.Dropout(dropout))


class CodeBlock(nn.Module):
    """[BN-ReLU-dropout of the previous sum] -> conv -> BN -> ReLU -> dropout -> strided conv, + skip."""

    def __init__(self, c_in: int, c_out: int, kernel: int, downsample: int, dropout: float, *,
                 first: bool, last: bool) -> None:
        super().__init__()
        self.pre: nn.Module = nn.Identity() if first else _post(c_in, dropout)
        self.body = nn.Sequential(
            nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2, bias=False), nn.BatchNorm1d(c_out),
            nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Conv1d(c_out, c_out, kernel, stride=downsample, padding=kernel // 2, bias=False))
        skip: list[nn.Module] = [nn.MaxPool1d(downsample, downsample, ceil_mode=True)] if downsample > 1 else []
        if c_in != c_out:
            skip.append(nn.Conv1d(c_in, c_out, 1, bias=False))
        self.skip = nn.Sequential(*skip)
        self.post: nn.Module = _post(c_out, dropout) if last else nn.Identity()

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.post(self.body(self.pre(y)) + self.skip(y))

    def receptive_span(self, span: Span) -> Span:
        return Span.widest(trace_span(self.body, span), trace_span(self.skip, span))


class CodeResNet1d(EcgNet):
    def __init__(self, spec: CodeResNetSpec) -> None:
        super().__init__()
        widths, kernel = spec.widths, spec.kernel
        self.stem = nn.Sequential(nn.Conv1d(spec.in_leads, widths[0], kernel, padding=kernel // 2, bias=False),
                                  nn.BatchNorm1d(widths[0]), nn.ReLU(inplace=True))
        pairs = list(zip(widths[:-1], widths[1:]))
        self.stages = nn.ModuleList(
            CodeBlock(c_in, c_out, kernel, spec.downsample, spec.dropout, first=i == 0, last=i == len(pairs) - 1)
            for i, (c_in, c_out) in enumerate(pairs))
        self.head = PoolHead(widths[-1], spec.num_outputs, pool=spec.pool, length=spec.head_length(),
                             samples=spec.num_samples)
