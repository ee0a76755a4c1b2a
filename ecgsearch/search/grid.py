"""Grid search over a space of finite choices: every combination once, in order, infeasible ones skipped.

The grid is the product of every choice (architecture, optimizer, ...) with the values of each chosen
option's parameters and of the trial parameters, in the space's order, the last varying fastest. Each
parameter must take finitely many values (a fixed value, ``choice`` or ``grid``); a range has no grid
(``GridError`` says which). A combination that breaks a constraint is skipped, not trained.
"""

from __future__ import annotations

import itertools
from typing import Any, Iterator

from ray.tune.search import Searcher

from ecgsearch.search.problem import SearchProblem
from ecgsearch.search.state import StatefulSearcher
from ecgsearch.space.distributions import Choice, Fixed


class GridError(ValueError):
    """The space has a parameter with infinitely many values."""


def grid_points(space: Any) -> Iterator[dict[str, Any]]:
    """Every configuration of the grid, choices expanded with their own options' parameters."""
    for options in itertools.product(*space.choices.values()):
        chosen = dict(zip(space.choices, options))
        params = [p for p in space.parameters if p.condition is None or chosen.get(p.condition[0]) == p.condition[1]]
        values = []
        for param in params:
            if isinstance(param.dist, Fixed):
                values.append([param.dist.value])
            elif isinstance(param.dist, Choice):
                values.append(list(param.dist.values))
            else:
                raise GridError(f"'{param.name}' is {param.dist.describe()}, which has no grid; use choice")
        for combination in itertools.product(*values):
            yield {**chosen, **{p.name: v for p, v in zip(params, combination)}}


class GridSearcher(StatefulSearcher):
    """Suggests the grid's points in order, skipping infeasible ones, up to ``problem.trials`` trials."""

    def __init__(self, problem: SearchProblem) -> None:
        super().__init__(metric=problem.metric, mode=problem.mode)
        self.problem = problem
        self._points = list(grid_points(problem.space))
        self._position = 0  # the next point to look at
        self._next = 0  # the next trial index

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        while self._position < len(self._points) and self._next < self.problem.trials:
            config = self._points[self._position]
            self._position += 1
            costs = self.problem.costs(config)
            if costs is None:
                continue
            index, self._next = self._next, self._next + 1
            return self.problem.annotate(index, config, costs)
        return Searcher.FINISHED

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        """A grid learns nothing from results."""

    def get_state(self) -> dict[str, Any]:
        return {"position": self._position, "next": self._next}

    def set_state(self, state: dict[str, Any]) -> None:
        self._position, self._next = state["position"], state["next"]
