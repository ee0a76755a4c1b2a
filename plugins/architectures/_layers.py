"""The torch layers shared by the built-in 1D architectures: stochastic depth, channel LayerNorm, the ConvNeXt
block, the pooled head and the ``EcgNet`` contract. Imported when a model is built (the families'
``_<family>_impl.py``), never when the plugins are listed or a space file is checked.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ecgsearch import Span, trace_span
from ecgsearch_plugins.architectures._blocks import check_pool, convnext_hidden, head_features


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    """A bias-free 'same'-padded conv and its BatchNorm."""
    return [nn.Conv1d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False), nn.BatchNorm1d(c_out)]


class DropPath(nn.Module):
    """Stochastic depth: drops a whole residual branch per sample while training.

    The kept branches are scaled by ``1 / (1 - p)`` so the expected output matches evaluation.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of a ``(batch, channels, samples)`` tensor (each time step alone)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.transpose(1, 2), self.normalized_shape, self.weight, self.bias,
                            self.eps).transpose(1, 2)


# --- ConvNeXt blocks (Liu et al., 2022), shared by `convnext` and `regnet` with `block: convnext` -----------


class ConvNeXtBlock(nn.Module):
    """Depthwise conv -> LayerNorm -> Linear(``expansion`` x) -> GELU -> Linear -> LayerScale -> DropPath,
    residual.

    The pointwise part runs on ``(batch, samples, channels)`` so ``nn.Linear`` and ``nn.LayerNorm``
    work on the last axis (channels-last LayerNorm over the channels) without extra transposes.
    ``layer_scale`` 0 turns LayerScale off.
    """

    def __init__(self, channels: int, kernel: int, drop_path: float, layer_scale: float,
                 expansion: float = 4) -> None:
        super().__init__()
        hidden = convnext_hidden(channels, expansion)
        self.dwconv = nn.Conv1d(channels, channels, kernel, padding=kernel // 2, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.pw1 = nn.Linear(channels, hidden)
        self.act = nn.GELU()
        self.pw2 = nn.Linear(hidden, channels)
        self.gamma = nn.Parameter(torch.full((channels,), layer_scale)) if layer_scale > 0 else None
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).transpose(1, 2)
        y = self.pw2(self.act(self.pw1(self.norm(y))))
        if self.gamma is not None:
            y = y * self.gamma
        return x + self.drop_path(y.transpose(1, 2))

    def receptive_span(self, span: Span) -> Span:
        return trace_span(self.dwconv, span)  # pointwise layers and the identity add see one step


def convnext_downsample(c_in: int, c_out: int) -> list[nn.Module]:
    """ConvNeXt's downsampling layer between stages: channels-last LayerNorm, then a conv of kernel 2,
    stride 2 (no padding: ``length // 2`` samples out)."""
    return [ChannelLayerNorm(c_in, eps=1e-6), nn.Conv1d(c_in, c_out, 2, stride=2)]


def convnext_init(m: nn.Module) -> None:
    """ConvNeXt's initialisation (``module.apply(convnext_init)``): truncated normal (std 0.02) weights
    and zero biases for convs and linear layers."""
    if isinstance(m, (nn.Conv1d, nn.Linear)):
        nn.init.trunc_normal_(m.weight, std=0.02)
        nn.init.zeros_(m.bias)


# --- the head: pooling over time and the output layer, shared by the CNN families ---------------------


class PoolHead(nn.Module):
    """Pooling over time (``pool``), optional LayerNorm over the channels, then a linear output layer ``fc``.

    ``gap`` averages over time and ``max`` takes the maximum; ``gap_max`` concatenates both (mean, then
    max: ``2 * channels`` features); ``attention`` scores every time step with a learned 1x1 conv (weight
    ``score``, initially zero), takes the softmax over time and sums the time steps with those weights (a
    matrix product); ``flatten`` feeds all ``channels x length`` values to ``fc``. Every pool but
    ``flatten`` makes the model accept any record length; a ``flatten`` head takes only the ``length``
    time steps it was built for (from ``samples`` input samples) and says so, in a ``ValueError``, for any
    other. The LayerNorm (ConvNeXt's) normalises the channels of each pooled vector (of every time step
    with ``flatten``). ``reset`` replaces only ``fc``: the LayerNorm and the attention scores stay.
    """

    def __init__(self, channels: int, num_outputs: int, *, norm: bool = False, pool: str = "gap",
                 length: int | None = None, samples: int | None = None) -> None:
        super().__init__()
        self.pool = check_pool("PoolHead", pool)
        if pool == "flatten" and not length:
            raise ValueError("PoolHead: pool='flatten' needs length, the time steps the head receives.")
        self.channels, self.length, self.samples = channels, length, samples
        self.norm: nn.Module = nn.LayerNorm(channels) if norm else nn.Identity()
        # attention: the weight of a 1x1 conv (channels -> 1 score per time step; no bias, which the softmax
        # would cancel), held as a parameter so that the families' conv initialisations leave it at zero:
        # every time step weighs the same at first, and an attention head starts as global average pooling
        self.score = nn.Parameter(torch.zeros(1, channels, 1)) if pool == "attention" else None
        self.fc = nn.Linear(head_features(channels, length or 0, pool), num_outputs)

    @property
    def in_features(self) -> int:
        return self.fc.in_features

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """``attention``: the weight of every time step, ``(batch, channels, samples)`` -> ``(batch, samples)``,
        summing to 1 over time."""
        if self.score is None:
            raise ValueError(f"PoolHead: pool={self.pool!r} has no attention weights; only pool='attention' has.")
        return torch.softmax(F.conv1d(x, self.score).squeeze(1), dim=-1)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, channels, samples)`` -> ``(batch, in_features)``."""
        if self.pool == "flatten":
            self._check_length(x)
            if isinstance(self.norm, nn.LayerNorm):
                x = self.norm(x.transpose(1, 2)).transpose(1, 2)
            return x.flatten(1)
        if self.pool == "attention":
            return self.norm(torch.bmm(x, self.weights(x).unsqueeze(-1)).squeeze(-1))
        if self.pool == "max":
            return self.norm(x.amax(dim=-1))
        if self.pool == "gap_max":
            return torch.cat([self.norm(x.mean(dim=-1)), self.norm(x.amax(dim=-1))], dim=1)
        return self.norm(x.mean(dim=-1))

    def _check_length(self, x: torch.Tensor) -> None:
        if torch.jit.is_tracing() or x.shape[-1] == self.length:  # an export traces the built length
            return
        built = f"num_samples={self.samples}, which gives" if self.samples else "an input that gives"
        raise ValueError(f"pool: flatten: this model was built for {built} the head {self.length} time steps, but "
                         f"it received {x.shape[-1]}; a flatten head takes only the input length the model was "
                         "built for (build the model for this length, or use pool gap, max, gap_max or attention, "
                         "which take any length).")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pooled(x))

    def receptive_span(self, span: Span) -> Span:
        """Every pool reads all time steps (``receptive_field`` leaves the head out by design)."""
        return span.whole()

    def reset(self, num_outputs: int) -> None:
        """A fresh output layer (PyTorch's default initialisation) on the old one's device and dtype."""
        old = self.fc.weight
        self.fc = nn.Linear(self.in_features, num_outputs, device=old.device, dtype=old.dtype)

    def extra_repr(self) -> str:
        return f"pool={self.pool!r}" + (f", length={self.length}" if self.pool == "flatten" else "")


class EcgNet(nn.Module):
    """The ``ecgsearch.train.models`` contract shared by the built-in families: ``stem``, ``stages`` (an
    ``nn.ModuleList``), a ``head`` with ``in_features`` and ``reset(num_outputs)``; subclasses only
    build those three."""

    stem: nn.Module
    stages: nn.ModuleList
    head: nn.Module

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def reset_head(self, num_outputs: int) -> None:
        self.head.reset(num_outputs)  # type: ignore[operator]
