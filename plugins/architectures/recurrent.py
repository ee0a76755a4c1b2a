"""Recurrent networks (``rnn``, ``lstm``, ``gru``): one builder, three registrations that differ in the cell.

Stem: an optional convolutional front end of ``front_layers`` stages (conv of ``front_kernel``, stride
``front_stride``, ``front_width`` channels, BatchNorm, ReLU), each shortening the sequence by its stride
(none at ``front_layers: 0``: the recurrent layers read the samples). Stages: ``layers`` recurrent layers
(``nn.RNN`` with tanh, ``nn.LSTM`` or ``nn.GRU`` of ``hidden`` units per direction, both directions
concatenated when ``bidirectional``), one stage each, each followed by dropout. Head: the sequence pooled
(``last``: the final hidden state, for a bidirectional layer the forward direction's at the last step
and the backward direction's at the first; ``mean``; ``max``), then a linear layer.

Costs: a layer's direction holds an input matrix ``gates * hidden x inputs`` and a recurrent matrix
``gates * hidden x hidden``, each with a bias (``gates``: 1 RNN, 4 LSTM, 3 GRU), and applies both once
per time step. A recurrent layer carries information across the whole sequence, so the receptive field
is the whole input.

The network (``Recurrent1d``) is in ``_recurrent_impl.py``, imported when a model is built.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from ecgsearch import (
    AnalyticFactory,
    ArchitectureInfo,
    Costs,
    Span,
    Tally,
    bool_param,
    hookimpl,
    int_param,
    str_param,
)
from ecgsearch_plugins.architectures._blocks import (
    blocks_param,
    check_float,
    check_int,
    check_io,
    check_kernel,
    check_kernel_fits,
    conv_length,
    kernel_param,
    rate_param,
    width_param,
)

# cell kind -> gates: the blocks of `hidden` rows stacked in each weight matrix (its PyTorch layer: _recurrent_impl)
CELLS: dict[str, int] = {"rnn": 1, "lstm": 4, "gru": 3}
POOLS = ("last", "mean", "max")
MAX_FRONT_LAYERS = 8
MAX_FRONT_STRIDE = 64
PARAMS = {
    "layers": blocks_param("recurrent layers (each is one stage)"),
    "hidden": width_param(doc="hidden units per direction; a layer outputs `2 * hidden` when bidirectional"),
    "bidirectional": bool_param("run every layer forwards and backwards, concatenating the two"),
    "pool": str_param(*POOLS, doc="`last` (the final hidden state; both directions' when bidirectional), `mean` "
                                  "or `max` over the sequence"),
    "dropout": rate_param("dropout after every recurrent layer"),
    "front_layers": int_param(0, MAX_FRONT_LAYERS, doc="strided conv + BN + ReLU stages before the recurrent "
                                                       "layers (0 = none)"),
    "front_width": width_param(doc="channels of every front-end conv"),
    "front_kernel": kernel_param("odd kernel of every front-end conv"),
    "front_stride": int_param(1, MAX_FRONT_STRIDE, doc="stride of every front-end conv; the sequence is "
                                                       "`front_stride**front_layers` times shorter"),
}


@dataclass(frozen=True)
class RecurrentSpec:
    cell: str  # rnn, lstm or gru
    in_leads: int
    num_samples: int
    num_outputs: int
    layers: int
    hidden: int
    bidirectional: bool
    pool: str
    dropout: float
    front_layers: int
    front_width: int
    front_kernel: int
    front_stride: int

    @property
    def features(self) -> int:
        """A layer's output width: both directions side by side."""
        return self.hidden * (2 if self.bidirectional else 1)


def recurrent_spec(cell: str, in_leads: int, num_samples: int, num_outputs: int, *, layers: int = 2,
                   hidden: int = 64, bidirectional: bool = True, pool: str = "last", dropout: float = 0.0,
                   front_layers: int = 2, front_width: int = 32, front_kernel: int = 7,
                   front_stride: int = 4) -> RecurrentSpec:
    """A recurrent network of ``layers`` layers of ``hidden`` units per direction (both directions when
    ``bidirectional``) over the output of ``front_layers`` strided convs (0 = the raw samples), pooled by
    ``pool`` (``last``, ``mean`` or ``max``). The front end shortens the record ``front_stride**front_layers``
    times, and ``front_kernel`` must fit in what is left before the last conv."""
    name = cell
    layers = check_int(name, "layers", layers)
    hidden = check_int(name, "hidden", hidden)
    if not isinstance(bidirectional, bool):
        raise ValueError(f"{name}: bidirectional={bidirectional!r} must be true or false.")
    if pool not in POOLS:
        raise ValueError(f"{name}: pool={pool!r} is not supported; allowed values: {', '.join(POOLS)}.")
    dropout = check_float(name, "dropout", dropout, 0.0, 1.0, high_open=True)
    front_layers = check_int(name, "front_layers", front_layers, minimum=0)
    front_width = check_int(name, "front_width", front_width)
    front_kernel = check_kernel(name, front_kernel, "front_kernel")
    front_stride = check_int(name, "front_stride", front_stride)
    downsampling = front_stride ** front_layers
    in_leads, num_samples, num_outputs = check_io(
        name, in_leads, num_samples, num_outputs, min_samples=downsampling,
        reason=f"the front end's downsampling (front_stride={front_stride} over front_layers={front_layers}); "
               "use longer records, a smaller front_stride or fewer front_layers")
    if front_layers:
        left = num_samples
        for _ in range(front_layers - 1):
            left = conv_length(left, front_kernel, front_stride, front_kernel // 2)
        check_kernel_fits(name, front_kernel, left, num_samples, name="front_kernel")
    return RecurrentSpec(cell, in_leads, num_samples, num_outputs, layers, hidden, bidirectional, pool, dropout,
                         front_layers, front_width, front_kernel, front_stride)


def recurrent_costs(spec: RecurrentSpec) -> Costs:
    """Parameters, MACs and receptive field of ``Recurrent1d(spec)`` without building it.

    Per layer and direction: ``gates * hidden * (inputs + hidden)`` MACs per time step (the input and
    the recurrent matrix), ``gates`` being 1 (RNN), 4 (LSTM) or 3 (GRU)."""
    t, span, steps, c_in = Tally(), Span(), spec.num_samples, spec.in_leads
    k, stride, width = spec.front_kernel, spec.front_stride, spec.front_width
    for _ in range(spec.front_layers):
        steps = conv_length(steps, k, stride, k // 2)
        t.conv(c_in, width, k, steps)
        t.norm(width)
        span, c_in = span.conv(k, stride), width
    gates = CELLS[spec.cell] * spec.hidden
    for _ in range(spec.layers):
        for _ in range(2 if spec.bidirectional else 1):
            t.linear(c_in, gates, steps)  # the input matrix and its bias
            t.linear(spec.hidden, gates, steps)  # the recurrent matrix and its bias
        c_in = spec.features
    t.linear(c_in, spec.num_outputs)
    return t.costs(span.whole(), spec.num_samples, spec.layers, c_in)


def recurrent_factory(cell: str) -> AnalyticFactory:
    """The factory of one cell kind: ``recurrent_spec`` with the cell bound (its messages name the cell)."""
    spec = functools.partial(recurrent_spec, cell)
    spec.__name__, spec.__doc__ = f"{cell}_spec", recurrent_spec.__doc__  # type: ignore[attr-defined]
    return AnalyticFactory(spec, "ecgsearch_plugins.architectures._recurrent_impl:Recurrent1d", recurrent_costs)


build_rnn, build_lstm, build_gru = (recurrent_factory(cell) for cell in CELLS)


def default_space() -> dict[str, Any]:
    return {"hidden": {"choice": [32, 64, 128]}, "layers": {"choice": [1, 2, 3]},
            "bidirectional": {"choice": [False, True]}, "pool": {"choice": ["last", "mean", "max"]},
            "front_stride": {"choice": [4, 8]}}


DESCRIPTIONS = {"rnn": "Elman RNN (tanh)", "lstm": "LSTM", "gru": "GRU"}


@hookimpl
def ecgsearch_register_architectures() -> list[ArchitectureInfo]:
    return [ArchitectureInfo(name=cell, family=cell, factory=factory, default_space=default_space(), params=PARAMS,
                             description=f"{DESCRIPTIONS[cell]} over an optional strided-conv front end; last, "
                                         "mean or max pooling")
            for cell, factory in zip(CELLS, (build_rnn, build_lstm, build_gru))]
