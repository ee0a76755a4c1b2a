"""Any Ray Tune searcher as an ecgsearch searcher: feasible suggestions with the engine's private keys.

A third-party searcher (Optuna's TPE through Ray Tune's integration, a HyperOpt or Nevergrad searcher)
proposes plain configurations of the space. ``ConstrainedSearcher`` asks it for suggestions, drops the
parameters of options that were not chosen, skips a suggestion that breaks the space file's constraints
(it is told the worst value, so a model-based searcher learns to avoid the region, and asked again), and
adds the private keys every trial needs (trial id, training seed, costs) through the ``SearchProblem``.
"""

from __future__ import annotations

import logging
from typing import Any

from ray.tune.search import Searcher

from ecgsearch.search.problem import SearchProblem
from ecgsearch.search.state import StatefulSearcher, restore_bytes, saved_bytes

log = logging.getLogger(__name__)

MAX_DRAWS = 50  # suggestions tried per trial before falling back to a feasible random candidate
WORST = {"max": -1e30, "min": 1e30}


class ConstrainedSearcher(StatefulSearcher):
    """``inner``'s suggestions, made feasible and annotated; at most ``problem.trials`` of them."""

    def __init__(self, inner: Searcher, problem: SearchProblem, max_draws: int = MAX_DRAWS) -> None:
        super().__init__(metric=problem.metric, mode=problem.mode)
        self.inner, self.problem, self.max_draws = inner, problem, max_draws
        self._next = 0
        self._inner_ids: dict[str, str] = {}  # Tune's trial id -> the inner searcher's id of its suggestion

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return self.inner.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self._next >= self.problem.trials:
            return Searcher.FINISHED
        index = self._next
        for draw in range(self.max_draws):
            inner_id = f"{trial_id}~{draw}"
            config = self.inner.suggest(inner_id)
            if config is None or config == Searcher.FINISHED:
                return config
            config = self.problem.space.active(config)
            costs = self.problem.costs(config)
            if costs is None:  # a constraint is broken: the inner searcher learns the worst value here
                self.inner.on_trial_complete(inner_id, self._worst())
                continue
            self._next += 1
            self._inner_ids[trial_id] = inner_id
            return self.problem.annotate(index, config, costs)
        log.warning("none of %d suggestions for trial %d satisfied the constraints; using a random candidate",
                    self.max_draws, index)
        self._next += 1
        return self.problem.candidate(index)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self._inner_ids:
            self.inner.on_trial_result(self._inner_ids[trial_id], result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        inner_id = self._inner_ids.pop(trial_id, None)
        if inner_id is not None:  # a random fallback was never the inner searcher's
            self.inner.on_trial_complete(inner_id, result, error)

    def _worst(self) -> dict[str, float]:
        """The worst value of each of the inner searcher's metrics (several for a multi-objective one)."""
        metrics, modes = self.inner.metric or self.problem.metric, self.inner.mode or self.problem.mode
        if isinstance(metrics, str):
            metrics, modes = [metrics], [modes]
        return {metric: WORST[mode] for metric, mode in zip(metrics, modes)}

    def get_state(self) -> dict[str, Any]:
        """The next trial index, the id map, and the inner searcher's own saved state (as bytes)."""
        return {"next": self._next, "inner_ids": dict(self._inner_ids), "inner": saved_bytes(self.inner)}

    def set_state(self, state: dict[str, Any]) -> None:
        self._next, self._inner_ids = state["next"], dict(state["inner_ids"])
        restore_bytes(self.inner, state["inner"])
