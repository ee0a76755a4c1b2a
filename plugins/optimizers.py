"""Built-in optimizers: AdamW, Adam, plain SGD and SGD with (Nesterov) momentum.

The RegNet design-space study compares AdamW, SGD and SGD with momentum, so the three are separate
options a space can offer side by side. Factories take keyword-only hyperparameters, so a misspelled
key in a space file fails with a ``TypeError`` naming it instead of being silently ignored. Each imports
torch when called (listing the plugin or checking a space file does not).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from ecgsearch import (
    OptimizerInfo,
    bool_param,
    float_param,
    hookimpl,
)

if TYPE_CHECKING:  # annotations only
    import torch

    Params = Iterable[torch.nn.Parameter] | Iterable[dict]


LR = float_param(0, 10, low_open=True, doc="learning rate")
WEIGHT_DECAY = float_param(0, 10, doc="weight decay")
ADAM_PARAMS = {"lr": LR, "weight_decay": WEIGHT_DECAY,
               "beta1": float_param(0, 1, high_open=True, doc="first-moment decay"),
               "beta2": float_param(0, 1, high_open=True, doc="second-moment decay"),
               "eps": float_param(0, 1, low_open=True, doc="denominator term")}
SGD_PARAMS = {"lr": LR, "momentum": float_param(0, 1, high_open=True, doc="heavy-ball momentum (0: plain SGD)"),
              "nesterov": bool_param("Nesterov momentum (with momentum > 0)"), "weight_decay": WEIGHT_DECAY}


def build_adamw(parameters: Params, *, lr: float = 1e-3, weight_decay: float = 1e-2,
                beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> torch.optim.AdamW:
    """AdamW: Adam with weight decay decoupled from the gradient step."""
    import torch  # deferred: the plugin is listed without torch

    return torch.optim.AdamW(parameters, lr=lr, betas=(beta1, beta2), eps=eps,
                             weight_decay=weight_decay)


def build_adam(parameters: Params, *, lr: float = 1e-3, weight_decay: float = 0.0,
               beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> torch.optim.Adam:
    """Adam; ``weight_decay`` is an L2 penalty added to the gradient (scaled by Adam's step)."""
    import torch  # deferred: the plugin is listed without torch

    return torch.optim.Adam(parameters, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)


def build_sgd(parameters: Params, *, lr: float = 1e-2, momentum: float = 0.0,
              nesterov: bool = False, weight_decay: float = 0.0) -> torch.optim.SGD:
    """SGD, plain by default; ``momentum`` and ``nesterov`` are accepted so one option can search both.

    ``nesterov`` only applies when ``momentum > 0``; it is ignored otherwise, so a space that samples
    both independently never yields an invalid combination.
    """
    import torch  # deferred: the plugin is listed without torch

    return torch.optim.SGD(parameters, lr=lr, momentum=momentum,
                           nesterov=bool(nesterov) and momentum > 0, weight_decay=weight_decay)


def build_sgd_momentum(parameters: Params, *, lr: float = 1e-2, momentum: float = 0.9,
                       nesterov: bool = False, weight_decay: float = 0.0) -> torch.optim.SGD:
    """SGD with heavy-ball momentum (or Nesterov momentum with ``nesterov: true``); momentum must be > 0."""
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 < momentum < 1:
        raise ValueError(f"sgd_momentum: momentum={momentum!r} must be a number in (0, 1); "
                         "use optimizer sgd for plain SGD.")
    return build_sgd(parameters, lr=lr, momentum=float(momentum), nesterov=nesterov, weight_decay=weight_decay)


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
            params=ADAM_PARAMS,
        ),
        OptimizerInfo(
            name="adam",
            description="Adam (weight decay as an L2 penalty)",
            factory=build_adam,
            default_space={"lr": {"loguniform": [1e-4, 1e-2]}},
            params=ADAM_PARAMS,
        ),
        OptimizerInfo(
            name="sgd",
            description="SGD (plain by default; momentum and nesterov optional)",
            factory=build_sgd,
            default_space={"lr": {"loguniform": [1e-3, 1e-1]},
                           "weight_decay": {"loguniform": [1e-6, 1e-3]}},
            has_momentum=True,
            params=SGD_PARAMS,
        ),
        OptimizerInfo(
            name="sgd_momentum",
            description="SGD with momentum 0.9 by default, Nesterov optional",
            factory=build_sgd_momentum,
            default_space={"lr": {"loguniform": [1e-3, 1e-1]}, "momentum": {"choice": [0.9, 0.95]},
                           "nesterov": {"choice": [False, True]},
                           "weight_decay": {"loguniform": [1e-6, 1e-3]}},
            has_momentum=True,
            params={**SGD_PARAMS, "momentum": float_param(0, 1, low_open=True, high_open=True,
                                                          doc="heavy-ball momentum, > 0")},
        ),
    ]
