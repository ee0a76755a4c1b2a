"""Built-in optimizers: AdamW and SGD (with momentum / Nesterov), the pair the design-space study compares.

Factories take keyword-only hyperparameters, so a misspelled key in a space file fails with a
``TypeError`` naming it instead of being silently ignored.
"""

from __future__ import annotations

from typing import Iterable

import torch

from ecgsearch import OptimizerInfo, hookimpl

Params = Iterable[torch.nn.Parameter] | Iterable[dict]


def build_adamw(parameters: Params, *, lr: float = 1e-3, weight_decay: float = 1e-2,
                beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> torch.optim.AdamW:
    """AdamW: Adam with weight decay decoupled from the gradient step."""
    return torch.optim.AdamW(parameters, lr=lr, betas=(beta1, beta2), eps=eps,
                             weight_decay=weight_decay)


def build_sgd(parameters: Params, *, lr: float = 1e-2, momentum: float = 0.9,
              nesterov: bool = False, weight_decay: float = 0.0) -> torch.optim.SGD:
    """SGD with optional (Nesterov) momentum.

    ``nesterov`` only applies when ``momentum > 0``; it is ignored otherwise, so a space that samples
    both independently never yields an invalid combination.
    """
    return torch.optim.SGD(parameters, lr=lr, momentum=momentum,
                           nesterov=bool(nesterov) and momentum > 0, weight_decay=weight_decay)


@hookimpl
def ecgsearch_register_optimizers() -> list[OptimizerInfo]:
    return [
        OptimizerInfo(
            name="adamw",
            description="AdamW (Adam with decoupled weight decay)",
            factory=build_adamw,
            default_space={"lr": {"loguniform": [1e-4, 1e-2]},
                           "weight_decay": {"loguniform": [1e-5, 1e-1]}},
            decoupled_weight_decay=True,
        ),
        OptimizerInfo(
            name="sgd",
            description="SGD with optional momentum and Nesterov momentum",
            factory=build_sgd,
            default_space={"lr": {"loguniform": [1e-3, 1e-1]}, "momentum": {"choice": [0.0, 0.9]},
                           "nesterov": {"choice": [False, True]},
                           "weight_decay": {"loguniform": [1e-6, 1e-3]}},
            has_momentum=True,
        ),
    ]
