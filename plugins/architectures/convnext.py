"""ConvNeXt-1D: the ConvNeXt design (Liu et al., 2022) with 1D convolutions, for the design-space study.

A patchify stem (conv with kernel = stride = ``patch``) then ``stages`` stages; every stage after the
first starts with a downsampling layer (LayerNorm + conv kernel 2, stride 2) and doubles the width, so
stage ``i`` has ``width * 2**i`` channels. Each block: depthwise conv (``kernel``), LayerNorm, pointwise
4x inverted bottleneck with GELU, LayerScale, stochastic depth, residual add.
"""

from __future__ import annotations

import functools
from typing import Sequence

import torch
from torch import nn

from ecgsearch import ArchitectureInfo, hookimpl
from ecgsearch_plugins.architectures._blocks import (
    ChannelLayerNorm,
    DropPath,
    PoolHead,
    check_float,
    check_int,
    check_io,
    check_kernel,
)

MAX_STAGES = 4


class ConvNeXtBlock(nn.Module):
    """Depthwise conv -> LayerNorm -> Linear(4x) -> GELU -> Linear -> LayerScale -> DropPath, residual.

    The pointwise part runs on ``(batch, samples, channels)`` so ``nn.Linear`` and ``nn.LayerNorm``
    work on the last axis without extra transposes.
    """

    def __init__(self, channels: int, kernel: int, drop_path: float, layer_scale: float) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(channels, channels, kernel, padding=kernel // 2, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.pw1 = nn.Linear(channels, 4 * channels)
        self.act = nn.GELU()
        self.pw2 = nn.Linear(4 * channels, channels)
        self.gamma = nn.Parameter(torch.full((channels,), layer_scale)) if layer_scale > 0 else None
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).transpose(1, 2)
        y = self.pw2(self.act(self.pw1(self.norm(y))))
        if self.gamma is not None:
            y = y * self.gamma
        return x + self.drop_path(y.transpose(1, 2))


class ConvNeXt1d(nn.Module):
    """Patchify stem, stages of ConvNeXt blocks with downsampling between them, pooled classifier."""

    def __init__(self, in_leads: int, num_outputs: int, depths: tuple[int, ...], width: int,
                 kernel: int, patch: int, drop_path: float, layer_scale: float) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(in_leads, width, patch, stride=patch),
                                  ChannelLayerNorm(width, eps=1e-6))
        # Stochastic depth grows linearly from 0 to ``drop_path`` over all blocks, as in ConvNeXt.
        rates = torch.linspace(0, drop_path, sum(depths)).tolist()
        stages: list[nn.Module] = []
        for i, n in enumerate(depths):
            c = width * 2**i
            down = ([ChannelLayerNorm(c // 2, eps=1e-6), nn.Conv1d(c // 2, c, 2, stride=2)]
                    if i > 0 else [])
            blocks = [ConvNeXtBlock(c, kernel, rates.pop(0), layer_scale) for _ in range(n)]
            stages.append(nn.Sequential(*down, *blocks))
        self.stages = nn.Sequential(*stages)
        self.head = PoolHead(width * 2 ** (len(depths) - 1), num_outputs, norm=True)
        self.apply(_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


def _init(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv1d, nn.Linear)):
        nn.init.trunc_normal_(m.weight, std=0.02)
        nn.init.zeros_(m.bias)


def build_convnext(in_leads: int, num_samples: int, num_outputs: int, *, stages: int = 3,
                   width: int = 32, depth: int = 2, depths: Sequence[int] | None = None,
                   kernel: int = 7, patch: int = 4, drop_path: float = 0.0,
                   layer_scale: float = 1e-6) -> ConvNeXt1d:
    """A ConvNeXt-1D with ``stages`` (1-4) stages of ``depth`` blocks each, or per-stage ``depths``
    (e.g. ``(3, 3, 9, 3)`` of ConvNeXt-T, which then sets the stage count). ``layer_scale`` 0 turns
    LayerScale off. ``num_samples`` must be at least the total stride ``patch * 2**(stages - 1)``."""
    name = "convnext"
    if depths is None:
        stages = check_int(name, "stages", stages, allowed=range(1, MAX_STAGES + 1))
        depth = check_int(name, "depth", depth)
        blocks = (depth,) * stages
    else:
        if isinstance(depths, (str, bytes)) or not 1 <= len(depths) <= MAX_STAGES:
            raise ValueError(f"{name}: depths={depths!r} must be a list of 1 to {MAX_STAGES} "
                             "block counts, one per stage.")
        blocks = tuple(check_int(name, "depths", d) for d in depths)
    width = check_int(name, "width", width)
    kernel = check_kernel(name, kernel)
    patch = check_int(name, "patch", patch)
    drop_path = check_float(name, "drop_path", drop_path, 0.0, 1.0, high_open=True)
    layer_scale = check_float(name, "layer_scale", layer_scale, 0.0, float("inf"))
    in_leads, _, num_outputs = check_io(name, in_leads, num_samples, num_outputs,
                                        min_samples=patch * 2 ** (len(blocks) - 1))
    return ConvNeXt1d(in_leads, num_outputs, blocks, width, kernel, patch, drop_path, layer_scale)


@hookimpl
def ecgsearch_register_architectures() -> list[ArchitectureInfo]:
    return [
        ArchitectureInfo(
            name="convnext",
            description="ConvNeXt-1D (patchify stem, depthwise conv, LayerNorm, 4x MLP, LayerScale)",
            factory=build_convnext,
            family="convnext",
            default_space={"stages": {"randint": [2, 4]}, "width": {"choice": [16, 32, 64]},
                           "depth": {"choice": [1, 2, 3]}, "kernel": {"choice": [7, 15]},
                           "drop_path": {"choice": [0.0, 0.1]}},
        ),
        ArchitectureInfo(
            name="convnext_tiny",
            description="ConvNeXt-1D with 2 stages of 1 block, width 16: a fast variant for tests",
            factory=functools.partial(build_convnext, stages=2, width=16, depth=1),
            family="convnext",
            default_space={"width": {"choice": [8, 16]}, "kernel": {"choice": [3, 7]}},
        ),
    ]
