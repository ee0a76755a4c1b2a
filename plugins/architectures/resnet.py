"""ResNet-1D: the torchvision ResNet layout with 1D convolutions, for the depth/channels/kernel study.

Depth counts weight layers as torchvision does (stem conv + 2 per basic block + the classifier), so
``depth`` maps to basic blocks per stage as::

    depth  8 -> (1, 1, 1)        3 stages
    depth 10 -> (1, 1, 1, 1)     4 stages
    depth 18 -> (2, 2, 2, 2)     4 stages
    depth 34 -> (3, 4, 6, 3)     4 stages

The stem (conv stride 2 + max-pool stride 2) reduces the length 4x; each later stage halves it and
doubles the channels, so stage ``i`` has ``channels * 2**i`` channels.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from ecgsearch import ArchitectureInfo, hookimpl
from ecgsearch_plugins.architectures._blocks import PoolHead, check_int, check_io, check_kernel

BLOCKS_PER_STAGE: dict[int, tuple[int, ...]] = {
    8: (1, 1, 1),
    10: (1, 1, 1, 1),
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
}


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv1d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False),
            nn.BatchNorm1d(c_out)]


class BasicBlock(nn.Module):
    """Two ``kernel``-wide convs with BatchNorm, ReLU and an identity (or 1x1 projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(c_in, c_out, kernel, stride), nn.ReLU(inplace=True),
                                  *_conv_bn(c_out, c_out, kernel))
        # Zero-init the last BN scale: every block starts as identity, which steadies deep nets
        # trained for only a few epochs.
        nn.init.zeros_(self.body[-1].weight)
        self.shortcut: nn.Module = (nn.Sequential(*_conv_bn(c_in, c_out, 1, stride))
                                    if stride != 1 or c_in != c_out else nn.Identity())
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class ResNet1d(nn.Module):
    """Stem, stages of basic blocks, global-average-pool classifier."""

    def __init__(self, in_leads: int, num_outputs: int, blocks: tuple[int, ...], channels: int,
                 kernel: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(in_leads, channels, kernel, stride=2),
                                  nn.ReLU(inplace=True), nn.MaxPool1d(3, stride=2, padding=1))
        layers: list[nn.Module] = []
        c_in = channels
        for i, n in enumerate(blocks):
            c_out = channels * 2**i
            for j in range(n):
                layers.append(BasicBlock(c_in, c_out, kernel, stride=2 if i > 0 and j == 0 else 1))
                c_in = c_out
        self.stages = nn.Sequential(*layers)
        self.head = PoolHead(c_in, num_outputs)
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


def build_resnet(in_leads: int, num_samples: int, num_outputs: int, *, depth: int = 18,
                 channels: int = 64, kernel: int = 7) -> ResNet1d:
    """A ResNet-1D of ``depth`` weight layers (8, 10, 18 or 34), ``channels`` in the first stage and odd
    ``kernel`` in every conv. ``num_samples`` must be at least the total stride (16 or 32)."""
    depth = check_int("resnet", "depth", depth, allowed=BLOCKS_PER_STAGE)
    blocks = BLOCKS_PER_STAGE[depth]
    in_leads, num_samples, num_outputs = check_io("resnet", in_leads, num_samples, num_outputs,
                                                  min_samples=2 ** (len(blocks) + 1))
    channels = check_int("resnet", "channels", channels)
    kernel = check_kernel("resnet", kernel)
    return ResNet1d(in_leads, num_outputs, blocks, channels, kernel)


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
        ),
        ArchitectureInfo(
            name="resnet_tiny",
            description="ResNet-1D-8 with 16 channels: a seconds-fast variant for tests and smoke runs",
            factory=functools.partial(build_resnet, depth=8, channels=16, kernel=7),
            family="resnet",
            default_space={"channels": {"choice": [8, 16]}, "kernel": {"choice": [3, 7]}},
        ),
    ]
