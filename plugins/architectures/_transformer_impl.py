"""The network of ``transformer.py`` (Transformer-1D), imported when a model is built: listing the plugin or
checking a space file needs only ``transformer.py``, which imports no torch.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ecgsearch import Span
from ecgsearch_plugins.architectures._layers import DropPath, EcgNet
from ecgsearch_plugins.architectures.transformer import TransformerSpec, mlp_width


def sinusoid(tokens: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """The fixed sine/cosine position code of "Attention is all you need", ``(tokens, width)``."""
    position = torch.arange(tokens, device=like.device, dtype=like.dtype)[:, None]
    rate = torch.exp(torch.arange(0, width, 2, device=like.device, dtype=like.dtype) * (-math.log(1e4) / width))
    code = torch.zeros(tokens, width, device=like.device, dtype=like.dtype)
    code[:, 0::2] = torch.sin(position * rate)
    code[:, 1::2] = torch.cos(position * rate[: width // 2])
    return code


class PatchEmbedding(nn.Module):
    """``(batch, leads, samples)`` -> ``(batch, [1 +] samples // patch, width)`` tokens with positions."""

    def __init__(self, in_leads: int, width: int, patch: int, cls_token: bool) -> None:
        super().__init__()
        self.proj = nn.Conv1d(in_leads, width, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, width)) if cls_token else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.proj(x).transpose(1, 2)
        tokens = tokens + sinusoid(tokens.shape[1], tokens.shape[2], tokens)
        if self.cls is not None:
            tokens = torch.cat([self.cls.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        return tokens


class EncoderBlock(nn.Module):
    """Pre-norm: ``x + attention(LN(x))``, then ``x + MLP(LN(x))``; attention sees every token."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, dropout: float, drop_path: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        hidden = mlp_width(width, mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, width), nn.Dropout(dropout))
        self.drop_path = DropPath(drop_path)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        q, k, v = self.qkv(x).view(batch, tokens, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(batch, tokens, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attention(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def receptive_span(self, span: Span) -> Span:
        return span.whole()


class TokenHead(nn.Module):
    """LayerNorm, then the class token (``cls``) or the mean over tokens, then the output layer ``fc``."""

    def __init__(self, width: int, num_outputs: int, pool: str) -> None:
        super().__init__()
        self.pool = pool
        self.norm = nn.LayerNorm(width)
        self.fc = nn.Linear(width, num_outputs)

    @property
    def in_features(self) -> int:
        return self.fc.in_features

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = self.norm(tokens)
        return self.fc(tokens[:, 0] if self.pool == "cls" else tokens.mean(dim=1))

    def reset(self, num_outputs: int) -> None:
        old = self.fc.weight
        self.fc = nn.Linear(self.in_features, num_outputs, device=old.device, dtype=old.dtype)


class Transformer1d(EcgNet):
    def __init__(self, spec: TransformerSpec) -> None:
        super().__init__()
        self.stem = PatchEmbedding(spec.in_leads, spec.width, spec.patch, cls_token=spec.pool == "cls")
        depth, drop_path = spec.depth, spec.drop_path
        rates = [drop_path * i / (depth - 1) if depth > 1 else 0.0 for i in range(depth)]
        self.stages = nn.ModuleList(EncoderBlock(spec.width, spec.heads, spec.mlp_ratio, spec.dropout, r)
                                    for r in rates)
        self.head = TokenHead(spec.width, spec.num_outputs, spec.pool)
        self.apply(_init)


def _init(m: nn.Module) -> None:
    if isinstance(m, (nn.Linear, nn.Conv1d)):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, PatchEmbedding) and m.cls is not None:
        nn.init.trunc_normal_(m.cls, std=0.02)
