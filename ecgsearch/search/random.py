"""Random search as a Ray Tune ``Searcher`` over configurations drawn from the parsed space."""

from __future__ import annotations

from typing import Any, Callable

from ray.tune.search import Searcher

from ecgsearch.search.state import StatefulSearcher


class RandomSearcher(StatefulSearcher):
    """Suggests ``candidate(0)``, ``candidate(1)``, ... up to ``trials``.

    Candidates are pure functions of their index, so the only state is the next index; Tune saves it
    with the experiment and a resumed run continues where the last checkpoint left off.
    """

    def __init__(self, candidate: Callable[[int], dict[str, Any]], trials: int, metric: str, mode: str) -> None:
        super().__init__(metric=metric, mode=mode)
        self._candidate = candidate
        self._trials = trials
        self._next = 0

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self._next >= self._trials:
            return Searcher.FINISHED
        config = self._candidate(self._next)
        self._next += 1
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        """Random search learns nothing from results."""

    def get_state(self) -> dict[str, Any]:
        return {"next": self._next, "trials": self._trials}

    def set_state(self, state: dict[str, Any]) -> None:
        self._next = state["next"]

