"""The searcher a space file's ``search:`` section names (a searcher plugin), given the ``SearchProblem``
the engine poses: the space, the budget, and its candidates and costs."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from ecgsearch.errors import UserError
from ecgsearch.plugins import get_registries
from ecgsearch.search.candidates import (
    InputShape,
    candidate_costs,
    feasible_candidate,
    trial_ids,
    violations,
)
from ecgsearch.search.problem import SearchProblem

if TYPE_CHECKING:
    from ecgsearch.search.warm_start import WarmPoint
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


def search_problem(spec: SearchSpec, shape: InputShape, metric: str, screen: Any = None,
                   warm_start: Sequence[WarmPoint] = ()) -> SearchProblem:
    """The ``SearchProblem`` of a space file: its space, budget and seed, and the engine's candidates."""
    return SearchProblem(space=spec.space, metric=metric, mode=spec.mode, seed=spec.seed, trials=spec.budget.trials,
                         candidate=functools.partial(feasible_candidate, spec, shape, screen=screen),
                         costs=EngineCosts(spec, shape, screen), annotate=EngineIds(spec.seed),
                         cost_inputs=COST_INPUTS, warm_start=tuple(warm_start))


def make_searcher(spec: SearchSpec, shape: InputShape, metric: str, screen: Any = None,
                  warm_start: Sequence[WarmPoint] = ()) -> Any:
    """The searcher plugin ``spec.search.algorithm`` names, created with the space file's options."""
    info = get_registries().searchers.get(spec.search.algorithm)
    problem = search_problem(spec, shape, metric, screen, warm_start)
    try:
        return info.create(problem, **dict(spec.search.params))
    except ValueError as error:  # an option the declaration could not judge (the grid of a range, ...)
        raise UserError(f"{spec.path}: search: {error}") from None
