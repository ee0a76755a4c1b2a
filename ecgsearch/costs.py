"""Cost features of a model: parameters, MACs and FLOPs per sample, forward pass.

Convention: fvcore counts one operation per multiply-accumulate for convolutions, linear layers and
matmuls, so ``macs`` is fvcore's total and ``flops = 2 * macs``. Element-wise ops (activations, norms)
are not counted, as in most published FLOP figures.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Costs:
    params: int
    macs: int
    flops: int

    def columns(self) -> dict[str, int]:
        """The results-table columns (``cost.params``, ``cost.macs``, ``cost.flops``)."""
        return {f"cost.{k}": v for k, v in asdict(self).items()}


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: torch.nn.Module, leads: int, samples: int) -> int:
    """MACs of one forward pass on one ``(1, leads, samples)`` input, counted by fvcore."""
    from fvcore.nn import FlopCountAnalysis

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            analysis = FlopCountAnalysis(model, torch.zeros(1, leads, samples))
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            return int(analysis.total())
    finally:
        model.train(was_training)


def model_costs(model: torch.nn.Module, leads: int, samples: int) -> Costs:
    macs = count_macs(model, leads, samples)
    return Costs(params=count_params(model), macs=macs, flops=2 * macs)
