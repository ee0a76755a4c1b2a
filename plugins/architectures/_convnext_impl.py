"""The network of ``convnext.py`` (ConvNeXt-1D), imported when a model is built: listing the plugin or
checking a space file needs only ``convnext.py``, which imports no torch.
"""

from __future__ import annotations

from torch import nn

from ecgsearch_plugins.architectures._blocks import drop_path_rates
from ecgsearch_plugins.architectures._layers import (
    ChannelLayerNorm,
    ConvNeXtBlock,
    EcgNet,
    PoolHead,
    convnext_downsample,
    convnext_init,
)
from ecgsearch_plugins.architectures.convnext import ConvNeXtSpec


class ConvNeXt1d(EcgNet):
    """Patchify stem, stages of ConvNeXt blocks with downsampling between them, pooled head."""

    def __init__(self, spec: ConvNeXtSpec) -> None:
        super().__init__()
        in_leads, depths, widths, patch = spec.in_leads, spec.depths, spec.widths, spec.patch
        kernel, drop_path, layer_scale = spec.kernel, spec.drop_path, spec.layer_scale
        self.stem = nn.Sequential(nn.Conv1d(in_leads, widths[0], patch, stride=patch),
                                  ChannelLayerNorm(widths[0], eps=1e-6))
        rates = drop_path_rates(sum(depths), drop_path)  # 0 to ``drop_path``, linearly over all blocks
        stages: list[nn.Module] = []
        for i, (n, c) in enumerate(zip(depths, widths)):
            down = convnext_downsample(widths[i - 1], c) if i else []
            blocks = [ConvNeXtBlock(c, kernel, rates.pop(0), layer_scale) for _ in range(n)]
            stages.append(nn.Sequential(*down, *blocks))
        self.stages = nn.ModuleList(stages)
        self.head = PoolHead(widths[-1], spec.num_outputs, norm=True, pool=spec.pool, length=spec.head_length(),
                             samples=spec.num_samples)
        self.apply(convnext_init)
