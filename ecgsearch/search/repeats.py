"""``budget.repeats``: every configuration a searcher proposes is trained with several seeds.

``RepeatedSearcher`` wraps the searcher plugin's searcher (any Ray Tune ``Searcher`` whose suggestions carry
the engine's private keys). Each suggestion becomes ``repeats`` Tune trials that differ only in their
training seed: repeat ``r`` of configuration ``t0003`` is trial ``t0003r<r>`` with seed ``seed + r *
REPEAT_SEED_STRIDE`` (repeat 0 keeps the configuration's own seed), and every one carries ``_config_id:
t0003``, which the results table keeps as ``config_id``, and ``_repeat: r`` (a pretraining's seed and
encoder-cache key follow the repeat: ``ecgsearch.train.transfer``). The wrapped searcher sees one trial
per configuration: the intermediate reports of repeat 0, and, once every repeat has ended, one result
whose numbers are the means over the repeats that finished (an error only when every repeat failed). So a
model-based searcher learns from the per-configuration mean, as the report and the analyses do
(``ecgsearch.analysis.repeats``).
"""

from __future__ import annotations

import math
from typing import Any

from ray.tune.search import Searcher

from ecgsearch.search.state import StatefulSearcher, restore_bytes, saved_bytes
from ecgsearch.train.context import repeat_seed


def repeat_config(config: dict[str, Any], repeat: int) -> dict[str, Any]:
    """Repeat ``repeat`` of an annotated suggestion: its own trial id and seed, and the configuration's id."""
    config_id = str(config["_trial_id"])
    repeated = {**config, "_trial_id": f"{config_id}r{repeat}", "_config_id": config_id, "_repeat": repeat}
    if "_seed" in config:
        repeated["_seed"] = repeat_seed(int(config["_seed"]), repeated)
    return repeated


def mean_result(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The last result with every number that all ``results`` report finite replaced by their mean."""
    merged = dict(results[-1])
    for key, value in merged.items():
        values = [r.get(key) for r in results]
        if all(_finite(v) for v in values) and not isinstance(value, bool):
            merged[key] = sum(float(v) for v in values) / len(values)
    return merged


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class RepeatedSearcher(StatefulSearcher):
    """``inner``'s suggestions, each trained ``repeats`` times (see the module docstring)."""

    def __init__(self, inner: Searcher, repeats: int) -> None:
        super().__init__(metric=inner.metric, mode=inner.mode)
        self.inner, self.repeats = inner, repeats
        self._queued: list[tuple[str, dict[str, Any]]] = []  # (inner id, config) of repeats not yet handed out
        self._inner_of: dict[str, str] = {}  # Tune's trial id -> the inner searcher's id of its configuration
        self._ended: dict[str, list[dict[str, Any] | None]] = {}  # inner id -> results of its ended repeats

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return self.inner.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if not self._queued:
            config = self.inner.suggest(trial_id)
            if config is None or config == Searcher.FINISHED:
                return config
            self._queued = [(trial_id, repeat_config(config, r)) for r in range(self.repeats)]
        inner_id, config = self._queued.pop(0)
        self._inner_of[trial_id] = inner_id
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if self._inner_of.get(trial_id) == trial_id:  # repeat 0 speaks for its configuration
            self.inner.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        inner_id = self._inner_of.pop(trial_id, None)
        if inner_id is None:
            return
        ended = self._ended.setdefault(inner_id, [])
        ended.append(None if error or not result else dict(result))
        if len(ended) < self.repeats:
            return
        finished = [r for r in self._ended.pop(inner_id) if r is not None]
        if finished:
            self.inner.on_trial_complete(inner_id, mean_result(finished))
        else:
            self.inner.on_trial_complete(inner_id, None, error=True)

    def get_state(self) -> dict[str, Any]:
        return {"queued": list(self._queued), "inner_of": dict(self._inner_of), "ended": dict(self._ended),
                "inner": saved_bytes(self.inner)}

    def set_state(self, state: dict[str, Any]) -> None:
        self._queued, self._inner_of = list(state["queued"]), dict(state["inner_of"])
        self._ended = {k: list(v) for k, v in state["ended"].items()}
        restore_bytes(self.inner, state["inner"])
