"""The contracts between the engine and searcher / scheduler plugins: what a search proposes trials for
(``SearchProblem``) and what a scheduler schedules on (``SchedulerRun``).

A searcher plugin (``SearcherInfo.factory(problem, **options)``) gets the space to search, the metric
and mode, the seed and the number of trials, plus the engine's candidate machinery, so that every
searcher proposes only configurations that can be built and satisfy the space file's constraints, and
every suggestion carries the private keys the engine needs (trial id, training seed, costs):

- ``candidate(index)``: a feasible random configuration for trial ``index``, private keys included (a
  pure function of the space, the seed and the index: what random search and initial designs use);
- ``costs(config)``: the configuration's cost columns, ``{}`` when it cannot be costed here, or None when
  it breaks a constraint (a model-based searcher filters its candidates with it);
- ``annotate(index, config, costs)``: the configuration with the private keys added.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

if TYPE_CHECKING:
    from ecgsearch.search.warm_start import WarmPoint
    from ecgsearch.space import Space

Candidate = Callable[[int], dict[str, Any]]
Costs = Callable[[dict[str, Any]], "dict[str, float] | None"]
Annotate = Callable[[int, dict[str, Any], Mapping[str, float]], dict[str, Any]]


@dataclass(frozen=True)
class SearchProblem:
    """What a searcher plugin searches; see the module docstring for ``candidate``/``costs``/``annotate``.

    metric: the reported key to optimise (the engine's ``objective``); mode: ``max`` or ``min``.
    cost_inputs: the configuration keys (prefixes) a candidate's costs depend on (cache costs by them).
    warm_start: earlier trials to learn from before the first suggestion (``search.warm_start``): the
        rows of earlier runs whose hyperparameters lie inside this space, each a ``WarmPoint`` (its
        configuration in this space, its value of ``metric``, its cost columns and metrics).
    """

    space: Space
    metric: str
    mode: str
    seed: int
    trials: int
    candidate: Candidate
    costs: Costs
    annotate: Annotate
    cost_inputs: Sequence[str] = ()
    warm_start: tuple[WarmPoint, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class SchedulerRun:
    """What a scheduler plugin schedules on (``SchedulerInfo.factory(run, **options)``).

    metric/mode: the reported key and its direction; max_t: the epochs a trial may run; time_attr: the
    iteration counter of each report (one per epoch); space: the trials' space (for a scheduler that
    mutates hyperparameters, as population-based training does); seed: for its random choices.
    """

    metric: str
    mode: str
    max_t: int
    space: Space
    seed: int = 0
    time_attr: str = "training_iteration"
