"""Sampled configurations that satisfy the space file's cost constraints.

Every candidate is built once (weights on the CPU, no training) to measure its cost features; a
candidate over ``max_flops`` or ``max_params`` is replaced by another draw for the same trial index.
The result is a pure function of (space, seed, index), so a resumed run sees the same candidates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping

from ecgsearch.costs import Costs, model_costs
from ecgsearch.errors import UserError
from ecgsearch.plugins import get_registries
from ecgsearch.trial import input_samples

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 50
ATTEMPT_STRIDE = 1_000_003  # seed offset between redraws of one index


@dataclass(frozen=True)
class InputShape:
    leads: int
    samples: int
    outputs: int


def candidate_costs(config: Mapping[str, Any], space: Any, shape: InputShape) -> Costs:
    """Build the candidate's model and count its parameters, MACs and FLOPs."""
    resolved = space.resolve(space.active(config))
    arch_name, arch_params = resolved.choices["architecture"]
    samples = input_samples(shape.samples, resolved.params)
    model = get_registries().architectures.get(arch_name).create(shape.leads, samples, shape.outputs, **arch_params)
    return model_costs(model, shape.leads, samples)


def violations(costs: Costs, constraints: Any) -> list[str]:
    out = []
    if constraints.max_flops is not None and costs.flops > constraints.max_flops:
        out.append(f"cost.flops {costs.flops:.3g} > max_flops {constraints.max_flops:.3g}")
    if constraints.max_params is not None and costs.params > constraints.max_params:
        out.append(f"cost.params {costs.params:.3g} > max_params {constraints.max_params:.3g}")
    return out


def feasible_candidate(spec: Any, shape: InputShape, index: int) -> dict[str, Any]:
    """The config of trial ``index``: hyperparameters plus ``_trial_id``, ``_seed`` and ``_costs``."""
    last: list[str] = []
    for attempt in range(MAX_ATTEMPTS):
        config = spec.space.sample(spec.seed + ATTEMPT_STRIDE * attempt, index)
        ids = {"_trial_id": f"t{index:04d}", "_seed": spec.seed * 100_003 + index}
        try:
            costs = candidate_costs(config, spec.space, shape)
        except Exception as error:  # the trial will raise the same error in its worker and be recorded
            log.warning("candidate %d cannot be built (%s); it will be recorded as failed", index, error)
            return {**config, **ids}
        last = violations(costs, spec.constraints)
        if not last:
            return {**config, **ids, "_costs": costs.columns()}
    raise UserError(
        f"{spec.path}: constraints: no configuration satisfied the constraints in {MAX_ATTEMPTS} draws for "
        f"trial {index} (last: {'; '.join(last)}); raise the limits or narrow the space to smaller models."
    )
