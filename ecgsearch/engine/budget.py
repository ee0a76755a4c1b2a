"""The whole search's budget: wall time (``budget.time``) and GPU hours (``budget.gpu_hours``), counted
over every resume of a run.

``SearchBudget`` keeps the account in ``OUT/budget.json`` (seconds the search ran in earlier sessions,
each trial's wall time so far) and answers two questions: is the budget spent (``exhausted``), and would
starting one more trial overrun it (``would_exceed``: the time or GPU hours spent plus one typical
trial, the median wall time of the trials finished so far). Three Tune pieces share one budget:

- ``BudgetCallback`` starts the session clock and records each trial's wall time as it reports;
- ``BudgetedSearcher`` stops proposing trials once one more would overrun the budget;
- ``TrialStopper`` stops running trials at their next epoch once the budget is spent when
  ``on_budget: stop`` (with ``finish`` they run to the end), and applies ``trial_time_limit_s``.

Every trial that ends, however it ends, writes its row as always (``ResultsCallback``).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import time
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.search import Searcher

log = logging.getLogger(__name__)

BUDGET_FILE = "budget.json"


class SearchBudget:
    """The account of one run's budget (see the module docstring); None limits are not checked."""

    def __init__(self, out_dir: str | Path, time_s: float | None, gpu_hours: float | None,
                 gpu_per_trial: float, on_budget: str = "finish") -> None:
        self.path = Path(out_dir) / BUDGET_FILE
        self.time_s, self.gpu_hours, self.gpu_per_trial, self.on_budget = time_s, gpu_hours, gpu_per_trial, on_budget
        self.before = 0.0  # seconds the search ran in earlier sessions
        self.trial_seconds: dict[str, float] = {}  # each trial's wall time so far (Tune's time_total_s)
        self.finished: dict[str, float] = {}  # the wall time of each trial that ended
        self._start: float | None = None
        self.reason: str | None = None  # why the search stopped starting trials, once it did

    @property
    def limited(self) -> bool:
        return self.time_s is not None or self.gpu_hours is not None

    def start(self) -> None:
        """Start this session's clock, continuing the account of earlier sessions."""
        if self.path.is_file():
            saved = json.loads(self.path.read_text())
            self.before = float(saved.get("seconds", 0.0))
            self.trial_seconds = {k: float(v) for k, v in saved.get("trial_seconds", {}).items()}
            self.finished = {k: float(v) for k, v in saved.get("finished", {}).items()}
        self._start = time.monotonic()

    def elapsed(self) -> float:
        """Seconds the search has run, in this session and all earlier ones."""
        return self.before + (time.monotonic() - self._start if self._start is not None else 0.0)

    def gpu_hours_spent(self) -> float:
        return sum(self.trial_seconds.values()) * self.gpu_per_trial / 3600

    def exhausted(self) -> str | None:
        """Which budget is spent (one sentence), or None."""
        if self.time_s is not None and self.elapsed() >= self.time_s:
            return f"budget.time of {self.time_s:g} s is spent ({self.elapsed():.0f} s)"
        if self.gpu_hours is not None and self.gpu_hours_spent() >= self.gpu_hours:
            return f"budget.gpu_hours of {self.gpu_hours:g} is spent ({self.gpu_hours_spent():.3g})"
        return None

    def would_exceed(self) -> str | None:
        """Why one more trial would overrun the budget (spent, or spent plus a typical trial), or None."""
        spent = self.exhausted()
        if spent or not self.finished:
            return spent
        typical = statistics.median(self.finished.values())
        if self.time_s is not None and self.elapsed() + typical > self.time_s:
            return (f"budget.time of {self.time_s:g} s would be exceeded by one more trial ({self.elapsed():.0f} s "
                    f"spent, a trial takes about {typical:.0f} s)")
        if self.gpu_hours is not None and self.gpu_hours_spent() + typical * self.gpu_per_trial / 3600 > self.gpu_hours:
            return (f"budget.gpu_hours of {self.gpu_hours:g} would be exceeded by one more trial "
                    f"({self.gpu_hours_spent():.3g} spent)")
        return None

    def record(self, trial_id: str, seconds: float, ended: bool = False) -> None:
        self.trial_seconds[trial_id] = max(seconds, self.trial_seconds.get(trial_id, 0.0))
        if ended:
            self.finished[trial_id] = self.trial_seconds[trial_id]
        self.save()

    def save(self) -> None:
        """Write the account atomically (a kill never leaves half a file)."""
        payload = {"seconds": self.elapsed(), "trial_seconds": self.trial_seconds, "finished": self.finished,
                   "time": self.time_s, "gpu_hours": self.gpu_hours, "stopped_because": self.reason}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(payload))
        tmp.replace(self.path)


def _trial_id(trial: Any) -> str:
    return str(trial.config.get("_trial_id", trial.trial_id))


class BudgetCallback(tune.Callback):
    """Starts the budget's clock when the search (or its resume) starts and records trials' wall time."""

    def __init__(self, budget: SearchBudget) -> None:
        self.budget = budget

    def setup(self, **info: Any) -> None:
        self.budget.start()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self.budget.record(_trial_id(trial), float(result.get("time_total_s", 0.0)))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(trial)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.budget.save()

    def _ended(self, trial: Any) -> None:
        seconds = float((trial.last_result or {}).get("time_total_s", 0.0))
        self.budget.record(_trial_id(trial), seconds, ended=True)


class BudgetedSearcher(Searcher):
    """``inner``'s suggestions until one more trial would overrun the budget; then the search ends."""

    def __init__(self, inner: Searcher, budget: SearchBudget) -> None:
        super().__init__(metric=inner.metric, mode=inner.mode)
        self.inner, self.budget = inner, budget

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return self.inner.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        reason = self.budget.would_exceed()
        if reason:
            if self.budget.reason is None:
                self.budget.reason = reason
                log.warning("no more trials are started: %s", reason)
                self.budget.save()
            return Searcher.FINISHED
        return self.inner.suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.inner.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.inner.on_trial_complete(trial_id, result, error)

    def save(self, checkpoint_path: str) -> None:
        self.inner.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.inner.restore(checkpoint_path)


class TrialStopper(tune.Stopper):
    """Stops a trial after the report that passes ``trial_time_limit_s``, and every running trial at its
    next report once the search's budget is spent, when ``on_budget: stop``."""

    def __init__(self, budget: SearchBudget, trial_time_limit_s: float | None) -> None:
        self.budget, self.trial_time_limit_s = budget, trial_time_limit_s

    def __call__(self, trial_id: str, result: dict) -> bool:
        if self.trial_time_limit_s and float(result.get("time_total_s", 0.0)) >= self.trial_time_limit_s:
            return True
        return self.budget.on_budget == "stop" and self.budget.exhausted() is not None

    def stop_all(self) -> bool:
        return False
