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

The network (``ResNet1d``) is in ``_resnet_impl.py``, imported when a model is built.
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
    hookimpl,
    int_param,
    list_param,
)
from ecgsearch_plugins.architectures._blocks import (
    MAX_BLOCKS,
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


build_resnet = AnalyticFactory(resnet_spec, "ecgsearch_plugins.architectures._resnet_impl:ResNet1d", resnet_costs)


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
