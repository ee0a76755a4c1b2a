"""The receptive field of a 1D model: how many input samples one feature of its last stage can see.

Computed exactly from the layers, without running the model: a ``Span`` (size in input samples, jump
between neighbouring outputs in input samples) is pushed through the stem and the stages. Each
``Conv1d``/``MaxPool1d``/``AvgPool1d`` grows it by ``(kernel - 1) * dilation * jump`` and multiplies the
jump by its stride; layers that act on one time step (linear, norms, activations) leave it as it is.

Modules with parallel branches (a residual block with a strided shortcut, an Inception module) declare
their own rule with a ``receptive_span(span) -> Span`` method, usually ``widest`` of their branches;
a module that mixes all time steps (self-attention) returns ``span.whole()``. A container without such
a method is read as a sequence of its children in registration order.
"""

from __future__ import annotations

from torch import nn

from ecgsearch.train.analytic import Span

__all__ = ["Span", "receptive_field", "trace_span"]


def _int(value: int | tuple[int, ...]) -> int:
    return int(value[0] if isinstance(value, tuple) else value)


def trace_span(module: nn.Module, span: Span) -> Span:
    """The span after ``module`` for an input whose samples each see ``span``."""
    rule = getattr(module, "receptive_span", None)
    if callable(rule):
        return rule(span)
    if isinstance(module, nn.Conv1d):
        return span.conv(_int(module.kernel_size), _int(module.stride), _int(module.dilation))
    if isinstance(module, (nn.MaxPool1d, nn.AvgPool1d)):
        stride = module.stride if module.stride is not None else module.kernel_size
        dilation = getattr(module, "dilation", 1)
        return span.conv(_int(module.kernel_size), _int(stride), _int(dilation))
    if isinstance(module, (nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d, nn.MultiheadAttention, nn.RNNBase)):
        return span.whole()
    for child in module.children():
        span = trace_span(child, span)
    return span


def receptive_field(model: nn.Module, num_samples: int) -> int:
    """Input samples one last-stage feature sees, at most ``num_samples`` (the whole input).

    A model following ``ecgsearch.train.models`` is traced through ``stem`` and ``stages`` (the head pools
    over all time steps by design, so it is left out); any other model through all its children.
    """
    stages = getattr(model, "stages", None)
    stem = getattr(model, "stem", None)
    parts = [stem, *stages] if isinstance(stages, nn.ModuleList) and stem is not None else [model]
    span = Span()
    for part in parts:
        span = trace_span(part, span)
    return int(min(span.size, num_samples))
