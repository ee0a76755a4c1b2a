"""Cost features of a model, known before any training: parameters, MACs, FLOPs, receptive field, shape.

Convention (the same for both counters): ``macs`` counts one multiply-accumulate per weight use in
convolutions, linear layers, matrix products, recurrent layers (the input and the recurrent matrix of
every gate, at every time step, in each direction) and attention (``QK^T`` and ``AV``, two matrix
products per head) of one forward pass on **one** ``(1, leads, samples)`` input; biases, norms,
activations, pooling and other element-wise work (a recurrent cell's gating included) are not counted,
as in most published figures. ``flops = 2 * macs``.

Three counters, one convention:

- **analytic** (the fast path for the built-in families, well under a millisecond): an
  ``AnalyticFactory`` derives a validated spec from the hyperparameters and adds up the layers'
  parameters and MACs (``Tally``) and the receptive field (``Span``) without building any module;
- **meta** (any other architecture, tens of milliseconds): the model is built on PyTorch's ``meta``
  device (no memory, no arithmetic) and counted with ``torch.utils.flop_counter.FlopCounterMode``;
- **fvcore** (the cross-check): a JIT trace counted by fvcore with only the matrix-product handles of the
  convention (fvcore also counts norms by default) and handles for ``scaled_dot_product_attention`` and
  the recurrent layers, which fvcore does not count by itself.

The torch-free parts (``Costs``, ``Tally``, ``AnalyticFactory``: what a plugin's registration module and the
space-file check use) live in ``ecgsearch.train.analytic`` and are re-exported here.

Tests hold all three together for every registered architecture; ``tests/benchmarks/bench_flop_counters.py``
prints fvcore vs the torch counter per architecture.
"""

from __future__ import annotations

import functools
import logging
import math
import warnings
from dataclasses import replace
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn

from ecgsearch.train.analytic import AnalyticFactory, Costs, Tally, analytic_costs, argument_check
from ecgsearch.train.fusion import make_model
from ecgsearch.train.models import feature_width, stage_count
from ecgsearch.train.receptive_field import receptive_field

__all__ = ["AnalyticFactory", "Costs", "Tally", "analytic_costs", "argument_check", "build_on_meta", "count_params",
           "TRAIN_FLOPS_PER_FORWARD", "estimate_costs", "fused_costs", "fvcore_macs", "model_costs", "torch_macs"]

log = logging.getLogger(__name__)

# training compute per sample = this x the forward FLOPs: the backward pass costs about twice the forward
# (gradients of activations and of weights), the convention of the scaling-law literature (6N per token)
TRAIN_FLOPS_PER_FORWARD = 3


def count_params(model: nn.Module) -> int:
    """Every parameter element (trainable or not), also for a model on the meta device."""
    return sum(p.numel() for p in model.parameters())


def _probe(model: nn.Module, leads: int, samples: int) -> torch.Tensor:
    tensor = next(model.parameters(), None)
    device = tensor.device if tensor is not None else torch.device("cpu")
    return torch.zeros(1, leads, samples, device=device)


def _evaluate(model: nn.Module, fn: Callable[[], int]) -> int:
    """Run ``fn`` with the model in eval mode and without autograd, restoring the mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return fn()
    finally:
        model.train(was_training)


def _cpu_sdpa_flops(query: Any, key: Any, value: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(query, key, value)


def _recurrent_macs(inputs: Sequence[int], weights: Iterable[Sequence[int] | None]) -> int:
    """A recurrent layer's MACs: every weight matrix (input and recurrent, all gates; the biases and
    states are not matrices) once per time step of every sequence of ``inputs`` (``(..., features)``)."""
    return math.prod(inputs[:-1]) * sum(math.prod(w) for w in weights if w is not None and len(w) == 2)


def _cpu_lstm_flops(inputs: Any, weight_ih: Any, weight_hh: Any, *args: Any, out_shape: Any = None,
                    **kwargs: Any) -> int:
    """``mkldnn_rnn_layer``: one direction of one LSTM layer as oneDNN runs it on the CPU."""
    return 2 * _recurrent_macs(inputs, (weight_ih, weight_hh))


def torch_macs(model: nn.Module, leads: int, samples: int) -> int:
    """MACs of one forward pass counted by ``torch.utils.flop_counter`` (FLOPs / 2).

    On the CPU, PyTorch runs attention as ``_scaled_dot_product_flash_attention_for_cpu`` and an LSTM as
    oneDNN's ``mkldnn_rnn_layer``, which the counter does not know; they are mapped to the counter's own
    attention formula and to the matrix products of the recurrent layer, so CPU and meta (where attention
    and the LSTM run as plain matrix products) agree.
    """
    from torch.utils.flop_counter import FlopCounterMode

    x = _probe(model, leads, samples)
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops,
               torch.ops.aten.mkldnn_rnn_layer: _cpu_lstm_flops}

    def count() -> int:
        with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
            model(x)
        return counter.get_total_flops() // 2

    return _evaluate(model, count)


def _fvcore_sdpa(inputs: list[Any], outputs: list[Any]) -> int:
    """fvcore handle for ``aten::scaled_dot_product_attention``: ``QK^T`` plus ``AV`` MACs."""
    from fvcore.nn.jit_handles import get_shape

    q, k, v = (get_shape(t) for t in inputs[:3])
    return math.prod(q[:-1]) * k[-2] * q[-1] + math.prod(q[:-1]) * k[-2] * v[-1]


def _fvcore_recurrent(inputs: list[Any], outputs: list[Any]) -> int:
    """fvcore handle for ``aten::rnn_tanh``, ``rnn_relu``, ``lstm`` and ``gru`` (all layers of an ``nn.RNN``,
    ``nn.LSTM`` or ``nn.GRU`` at once): the weights come as a list input, beside the states (3-D)."""
    from fvcore.nn.jit_handles import get_shape

    lists = [v for v in inputs if v.node().kind() == "prim::ListConstruct"]
    return _recurrent_macs(get_shape(inputs[0]), [get_shape(w) for v in lists for w in v.node().inputs()])


def _fvcore_handles() -> dict[str, Any]:
    """Only the matrix-product ops of the convention (fvcore also counts norms and pooling by default)."""
    from fvcore.nn import jit_handles as h

    return {"aten::addmm": h.addmm_flop_jit, "aten::bmm": h.bmm_flop_jit, "aten::_convolution": h.conv_flop_jit,
            "aten::einsum": h.einsum_flop_jit, "aten::matmul": h.matmul_flop_jit, "aten::mm": h.matmul_flop_jit,
            "aten::linear": h.linear_flop_jit, "aten::scaled_dot_product_attention": _fvcore_sdpa,
            **dict.fromkeys(("aten::rnn_tanh", "aten::rnn_relu", "aten::lstm", "aten::gru"), _fvcore_recurrent)}


def fvcore_macs(model: nn.Module, leads: int, samples: int) -> int:
    """MACs of one forward pass counted by fvcore under the convention above (the cross-check)."""
    with warnings.catch_warnings():  # fvcore's import uses the deprecated torch.jit.script
        warnings.simplefilter("ignore", DeprecationWarning)
        from fvcore.nn import FlopCountAnalysis

    x = _probe(model, leads, samples)

    def count() -> int:
        analysis = FlopCountAnalysis(model, x).clear_op_handles().set_op_handle(**_fvcore_handles())
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about Python values in forward
            return int(analysis.total())

    return _evaluate(model, count)


def _contract_value(fn: Callable[[nn.Module], int], model: nn.Module) -> int | None:
    try:
        return int(fn(model))
    except (AttributeError, TypeError):  # a third-party model without the stem/stages/head contract
        return None


def model_costs(model: nn.Module, leads: int, samples: int, sampling_rate: float | None = None) -> Costs:
    """Every cost feature of ``model`` (on any device, meta included) for ``(1, leads, samples)`` inputs."""
    macs = torch_macs(model, leads, samples)
    field = receptive_field(model, samples)
    return Costs(params=count_params(model), macs=macs, flops=2 * macs, receptive_field=field,
                 receptive_field_s=field / sampling_rate if sampling_rate else None,
                 stages=_contract_value(stage_count, model), feature_width=_contract_value(feature_width, model),
                 receptive_field_frac=field / samples)


def build_on_meta(factory: Callable[..., nn.Module], *args: Any, **kwargs: Any) -> nn.Module:
    """``factory(*args, **kwargs)`` with every tensor on the meta device: shapes only, no memory."""
    with torch.device("meta"):
        return factory(*args, **kwargs)


def fused_costs(single: Costs, encoders: int, outputs: int) -> Costs:
    """The costs of ``encoders`` models of ``single``'s costs fused into one (``ecgsearch.train.fusion``):
    everything but the output layer (``head.fc``, a linear layer with a bias from ``feature_width`` to
    ``outputs``) once per encoder, then one output layer on the concatenated features."""
    width = int(single.feature_width or 0)
    body_params, body_macs = single.params - (width * outputs + outputs), single.macs - width * outputs
    macs = encoders * body_macs + encoders * width * outputs
    return replace(single, params=encoders * body_params + encoders * width * outputs + outputs, macs=macs,
                   flops=2 * macs, feature_width=encoders * width)


def estimate_costs(factory: Callable[..., nn.Module], leads: int, samples: int, outputs: int,
                   hparams: dict[str, Any], sampling_rate: float | None = None, encoders: int = 1) -> Costs:
    """The costs of ``factory(leads, samples, outputs, **hparams)``: analytic when the factory offers it,
    otherwise built on the meta device and counted. encoders: more than 1 for the fused model of that many
    such models (a transfer with several pretrainings, ``ecgsearch.train.fusion``).

    A ``ValueError`` from the factory (an invalid combination) propagates. A model that cannot run on
    the meta device (a data-dependent operation, ``.item()``...) is built and costed on the CPU instead.
    """
    analytic = analytic_costs(factory)
    costs = analytic(leads, samples, outputs, **hparams) if analytic is not None else None
    if costs is not None and encoders > 1:  # fused analytically when the single model's feature width is known
        costs = fused_costs(costs, encoders, outputs) if costs.feature_width else None
    if costs is not None:
        seconds = costs.receptive_field / sampling_rate if sampling_rate and costs.receptive_field else None
        frac = costs.receptive_field / samples if costs.receptive_field else None  # a plugin's own Costs too
        return replace(costs, receptive_field_s=seconds, receptive_field_frac=frac)
    build = functools.partial(make_model, factory, encoders)
    try:
        return model_costs(build_on_meta(build, leads, samples, outputs, **hparams), leads, samples,
                           sampling_rate)
    except (NotImplementedError, RuntimeError) as error:
        log.debug("costing on the meta device failed (%s); costing on the CPU", error)
    model = build(leads, samples, outputs, **hparams)
    return model_costs(model, leads, samples, sampling_rate)
