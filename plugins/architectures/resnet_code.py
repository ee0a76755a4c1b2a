"""The ResNet-1D of the CODE studies (Ribeiro et al., 2020; reused for electrolyte and age prediction).

Designed for 12-lead records of 4096 samples at 400 Hz: a conv stem (64 channels, kernel 17), then four
residual blocks that each downsample by 4 (4096 -> 1024 -> 256 -> 64 -> 16 samples) while widening to
128, 196, 256 and 320 channels. Each block: conv (kernel 17), BN, ReLU, dropout, strided conv; the skip
path is a max-pool and, where the width changes, a 1x1 conv; BN, ReLU and dropout follow the sum.

Differences from the original, both so any record length works: the classifier averages over time
instead of flattening the 16 x 320 map (one linear layer of 320 inputs; ``pool: flatten`` gives the
original's classifier back, for the built length only); the strided conv pads
``kernel // 2`` and the skip max-pool rounds up, so both paths give ``ceil(length / 4)`` samples for any
length (identical lengths to the original on 4096 samples). The post-sum BN-ReLU-dropout of a block is
applied at the start of the next block (mathematically the same network), which keeps each block a
single-input stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ecgsearch import (
    AnalyticFactory,
    Costs,
    Span,
    Tally,
    int_param,
    list_param,
    trace_span,
)
from ecgsearch_plugins.architectures._blocks import (
    MAX_WIDTH,
    EcgNet,
    PoolHead,
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
    tally_head,
)

CODE_WIDTHS = (64, 128, 196, 256, 320)


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


@dataclass(frozen=True)
class CodeResNetSpec:
    in_leads: int
    num_samples: int
    num_outputs: int
    widths: tuple[int, ...]  # the stem's, then one per block
    kernel: int
    downsample: int
    dropout: float
    pool: str = "gap"

    def head_length(self) -> int:
        """Time steps the head receives: every block keeps ``ceil(length / downsample)``."""
        length = self.num_samples
        for _ in self.widths[1:]:
            length = -(-length // self.downsample)
        return length


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


CODE_PARAMS = {
    "widths": list_param("int", 1, MAX_WIDTH, max_len=8, doc="stem width, then one width per residual block"),
    "kernel": kernel_param("odd kernel of every conv"),
    "downsample": int_param(1, 64, doc="stride of each block"),
    "dropout": rate_param("dropout rate"),
    "pool": pool_param(),
}


def code_resnet_spec(in_leads: int, num_samples: int, num_outputs: int, *,
                     widths: Sequence[int] = CODE_WIDTHS, kernel: int = 17, downsample: int = 4,
                     dropout: float = 0.2, pool: str = "gap") -> CodeResNetSpec:
    """The CODE ResNet: ``widths`` = stem width then one width per residual block (each downsampling by
    ``downsample``); odd ``kernel`` everywhere; the head's ``pool``. The kernel must fit in the samples the
    last block gets."""
    name = "resnet_code"
    widths = check_int_list(name, "widths", widths, min_len=2, max_len=8)
    kernel = check_kernel(name, kernel)
    downsample = check_int(name, "downsample", downsample)
    dropout = check_float(name, "dropout", dropout, 0.0, 1.0, high_open=True)
    pool = check_pool(name, pool)
    blocks = len(widths) - 1
    in_leads, num_samples, num_outputs = check_io(name, in_leads, num_samples, num_outputs,
                                                  min_samples=downsample ** blocks)
    left = -(-num_samples // downsample ** (blocks - 1))  # ceil: what the last block's convs see
    check_kernel_fits(name, kernel, left, num_samples)
    return CodeResNetSpec(in_leads, num_samples, num_outputs, widths, kernel, downsample, dropout, pool)


def code_resnet_costs(spec: CodeResNetSpec) -> Costs:
    """Parameters, MACs and receptive field of ``CodeResNet1d(spec)`` without building it."""
    t, k, ds, widths = Tally(), spec.kernel, spec.downsample, spec.widths
    length = spec.num_samples
    t.conv(spec.in_leads, widths[0], k, length)
    t.norm(widths[0])
    span = Span().conv(k)
    for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:])):
        out = -(-length // ds)
        if i:
            t.norm(c_in)  # the previous block's post-sum BN
        t.conv(c_in, c_out, k, length)
        t.norm(c_out)
        t.conv(c_out, c_out, k, out)
        if c_in != c_out:
            t.conv(c_in, c_out, 1, out)
        span = Span.widest(span.conv(k).conv(k, ds), span.conv(ds, ds) if ds > 1 else span)
        length = out
    t.norm(widths[-1])
    features = tally_head(t, widths[-1], length, spec.num_outputs, spec.pool)
    return t.costs(span, spec.num_samples, len(widths) - 1, features)


build_code_resnet = AnalyticFactory(code_resnet_spec, CodeResNet1d, code_resnet_costs)
