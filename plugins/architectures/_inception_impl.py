"""The network of ``inception.py`` (InceptionTime-1D), imported when a model is built: listing the plugin or
checking a space file needs only ``inception.py``, which imports no torch.
"""

from __future__ import annotations

import torch
from torch import nn

from ecgsearch import Span, trace_span
from ecgsearch_plugins.architectures._layers import EcgNet, PoolHead
from ecgsearch_plugins.architectures.inception import InceptionSpec, branch_kernels


class InceptionModule(nn.Module):
    def __init__(self, c_in: int, filters: int, kernel: int, bottleneck: int) -> None:
        super().__init__()
        self.bottleneck: nn.Module = (nn.Conv1d(c_in, bottleneck, 1, bias=False) if c_in > 1 and bottleneck
                                      else nn.Identity())
        width = bottleneck if c_in > 1 and bottleneck else c_in
        self.convs = nn.ModuleList(nn.Conv1d(width, filters, k, padding=k // 2, bias=False)
                                   for k in branch_kernels(kernel))
        self.pool = nn.Sequential(nn.MaxPool1d(3, stride=1, padding=1), nn.Conv1d(c_in, filters, 1, bias=False))
        self.out = nn.Sequential(nn.BatchNorm1d(4 * filters), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.bottleneck(x)
        return self.out(torch.cat([conv(z) for conv in self.convs] + [self.pool(x)], dim=1))

    def receptive_span(self, span: Span) -> Span:
        inner = trace_span(self.bottleneck, span)
        return Span.widest(*(trace_span(conv, inner) for conv in self.convs), trace_span(self.pool, span))


class InceptionBlock(nn.Module):
    """Up to three Inception modules with a 1x1-conv + BN shortcut around them (when ``residual``)."""

    def __init__(self, c_in: int, modules: int, filters: int, kernel: int, bottleneck: int,
                 residual: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(*(InceptionModule(c_in if i == 0 else 4 * filters, filters, kernel,
                                                        bottleneck) for i in range(modules)))
        self.shortcut: nn.Module | None = (nn.Sequential(nn.Conv1d(c_in, 4 * filters, 1, bias=False),
                                                         nn.BatchNorm1d(4 * filters)) if residual else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return torch.relu(y + self.shortcut(x)) if self.shortcut is not None else y

    def receptive_span(self, span: Span) -> Span:
        return trace_span(self.body, span)  # the 1x1 shortcut sees less


class InceptionTime1d(EcgNet):
    def __init__(self, spec: InceptionSpec) -> None:
        super().__init__()
        self.stem = nn.Identity()  # the first module reads the leads directly
        f = spec.filters
        self.stages = nn.ModuleList(
            InceptionBlock(spec.in_leads if i == 0 else 4 * f, n, f, spec.kernel, spec.bottleneck, spec.residual)
            for i, n in enumerate(spec.block_sizes()))
        self.head = PoolHead(4 * f, spec.num_outputs, pool=spec.pool, length=spec.num_samples,
                             samples=spec.num_samples)  # no downsampling
