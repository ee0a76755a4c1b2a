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

The network (``CodeResNet1d``) is in ``_resnet_code_impl.py``, imported when a model is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ecgsearch import (
    AnalyticFactory,
    Costs,
    Span,
    Tally,
    int_param,
    list_param,
)
from ecgsearch_plugins.architectures._blocks import (
    MAX_WIDTH,
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


build_code_resnet = AnalyticFactory(code_resnet_spec, "ecgsearch_plugins.architectures._resnet_code_impl:CodeResNet1d",
                                    code_resnet_costs)
