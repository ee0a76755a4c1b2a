"""The searcher a space file's ``search:`` section asks for, wired to the engine's candidates and costs."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ecgsearch.search.candidates import (
    InputShape,
    candidate_costs,
    feasible_candidate,
    trial_ids,
    violations,
)
from ecgsearch.search.random import RandomSearcher
from ecgsearch.search.surrogate import SurrogateSearcher

if TYPE_CHECKING:
    from ecgsearch.space import SearchSpec

log = logging.getLogger(__name__)

# What a candidate's costs depend on: the architecture and its options, and the input length and
# numeric precision it runs at. Each distinct combination is built and costed once per search.
COST_INPUTS = ("architecture", "crop_fraction", "precision")


@dataclass(frozen=True)
class EngineCosts:
    """``config -> cost columns``, or None when the candidate breaks a constraint (or the screen)."""

    spec: SearchSpec
    shape: InputShape
    screen: Callable[[Mapping[str, Any], Any], list[str]] | None = None

    def __call__(self, config: dict[str, Any]) -> dict[str, float] | None:
        try:
            costs = candidate_costs(config, self.spec.space, self.shape)
        except Exception as error:  # the trial raises the same error in its worker and is recorded failed
            log.warning("a candidate cannot be built (%s); if proposed it will be recorded as failed", error)
            return {}
        if violations(costs, self.spec.constraints) or (self.screen is not None and self.screen(config, costs)):
            return None
        return dict(costs.columns())


@dataclass(frozen=True)
class EngineIds:
    """Adds the engine's private keys to a suggestion: trial id, seed and the costs already measured."""

    seed: int

    def __call__(self, index: int, config: dict[str, Any], costs: Mapping[str, float]) -> dict[str, Any]:
        return {**config, **trial_ids(self.seed, index), **({"_costs": dict(costs)} if costs else {})}


def make_searcher(spec: SearchSpec, shape: InputShape, metric: str, screen: Any = None) -> Any:
    """``RandomSearcher`` or ``SurrogateSearcher`` as ``spec.search.algorithm`` says, over ``spec.space``."""
    if spec.search.algorithm != "surrogate":  # the random search has no options (the space file says so)
        return RandomSearcher(functools.partial(feasible_candidate, spec, shape, screen=screen), spec.budget.trials,
                              metric=metric, mode=spec.mode)
    return SurrogateSearcher(spec.space, metric=metric, mode=spec.mode, trials=spec.budget.trials, seed=spec.seed,
                             costs=EngineCosts(spec, shape, screen), cost_inputs=COST_INPUTS,
                             annotate=EngineIds(spec.seed), **dict(spec.search.params))
