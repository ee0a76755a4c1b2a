"""The network of ``recurrent.py`` (``rnn``, ``lstm``, ``gru``), imported when a model is built: listing the
plugin or checking a space file needs only ``recurrent.py``, which imports no torch.
"""

from __future__ import annotations

import torch
from torch import nn

from ecgsearch import Span
from ecgsearch_plugins.architectures._layers import EcgNet
from ecgsearch_plugins.architectures.recurrent import RecurrentSpec

LAYERS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}  # cell kind -> PyTorch layer


class FrontEnd(nn.Module):
    """``(batch, leads, samples)`` -> ``(batch, steps, channels)``: ``layers`` strided conv + BN + ReLU
    stages (none at 0), then time first for the recurrent layers."""

    def __init__(self, in_leads: int, width: int, kernel: int, stride: int, layers: int) -> None:
        super().__init__()
        convs: list[nn.Module] = []
        for i in range(layers):
            convs += [nn.Conv1d(in_leads if i == 0 else width, width, kernel, stride, padding=kernel // 2,
                                bias=False), nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convs(x).transpose(1, 2)


class RecurrentLayer(nn.Module):
    """One recurrent layer (both directions when bidirectional) over ``(batch, steps, channels)``, then dropout."""

    def __init__(self, cell: str, c_in: int, hidden: int, bidirectional: bool, dropout: float) -> None:
        super().__init__()
        self.rnn = LAYERS[cell](c_in, hidden, batch_first=True, bidirectional=bidirectional)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.rnn(x)[0])

    def receptive_span(self, span: Span) -> Span:
        return span.whole()  # every output step depends on every input step (on the past, or both ways)


class SequenceHead(nn.Module):
    """The sequence pooled to one vector (``last``, ``mean`` or ``max``), then the output layer ``fc``."""

    def __init__(self, hidden: int, bidirectional: bool, num_outputs: int, pool: str) -> None:
        super().__init__()
        self.hidden, self.bidirectional, self.pool = hidden, bidirectional, pool
        self.fc = nn.Linear(hidden * (2 if bidirectional else 1), num_outputs)

    @property
    def in_features(self) -> int:
        return self.fc.in_features

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, steps, features)`` -> ``(batch, features)``."""
        if self.pool == "mean":
            return x.mean(dim=1)
        if self.pool == "max":
            return x.amax(dim=1)
        if not self.bidirectional:
            return x[:, -1]
        # the forward direction ends at the last step, the backward direction at the first
        return torch.cat([x[:, -1, :self.hidden], x[:, 0, self.hidden:]], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pooled(x))

    def reset(self, num_outputs: int) -> None:
        old = self.fc.weight
        self.fc = nn.Linear(self.in_features, num_outputs, device=old.device, dtype=old.dtype)


class Recurrent1d(EcgNet):
    def __init__(self, spec: RecurrentSpec) -> None:
        super().__init__()
        self.stem = FrontEnd(spec.in_leads, spec.front_width, spec.front_kernel, spec.front_stride,
                             spec.front_layers)
        c_in = spec.front_width if spec.front_layers else spec.in_leads
        self.stages = nn.ModuleList(
            RecurrentLayer(spec.cell, c_in if i == 0 else spec.features, spec.hidden, spec.bidirectional,
                           spec.dropout) for i in range(spec.layers))
        self.head = SequenceHead(spec.hidden, spec.bidirectional, spec.num_outputs, spec.pool)
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
