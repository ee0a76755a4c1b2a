"""What a trial is given besides its sampled configuration, and the small vocabulary around it.

``TrialContext`` is built once by the engine and sent to every worker (picklable); ``TrialRuntime`` is
the part that only matters around the trial loop (checkpoints, hang watchdog, node-local data, GPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:
    from ecgsearch.space import Space
    from ecgsearch.train.ood import EvaluatePlan
    from ecgsearch.train.transfer import TransferPlan

OBJECTIVE = "objective"  # the key Tune schedulers and searchers optimise
WORST = {"max": -1e30, "min": 1e30}  # the objective of a trial without a usable result (finite for Tune)
Report = Callable[[dict[str, Any]], None]


class Diverged(Exception):
    """The training loss, or the model's outputs, became NaN or infinite."""


def objective_value(value: float | None, mode: str) -> float:
    """A finite objective for schedulers and searchers: a missing or non-finite value is the worst one."""
    if value is None or math.isnan(value) or math.isinf(value):
        return WORST[mode]
    return float(value)


@dataclass(frozen=True)
class TrialRuntime:
    """Settings a worker needs around the trial loop (picklable; part of the trial context)."""

    checkpoint_every: int = 0
    hang_timeout_s: float | None = None
    hang_key: str = "budget.hang_timeout_s"
    dataset: str | None = None  # how to rebuild the cache entry on a node that does not have it
    dataset_params: Mapping[str, Any] = field(default_factory=dict)
    cache_dir: str | None = None
    data_on_gpu: bool | None = None  # None: automatic (see ecgsearch.train.accel)
    compile: bool = False
    storage_uri: str | None = None  # a URI run: workers copy each trial's best weights there


@dataclass(frozen=True)
class TrialContext:
    """Everything a trial needs besides its sampled config (picklable, sent to every worker)."""

    cache_entry: str
    out_dir: str
    epochs: int
    metric: str
    mode: str
    task: str
    task_params: Mapping[str, Any]
    seed: int
    space: Space
    metrics: tuple[str, ...] = field(default=())
    threads: int = 1
    gpu: float = 0.0  # the trial's GPU reservation: > 0 trains on CUDA
    transfer: TransferPlan | None = None  # pretrain, re-head and freeze before training (train.transfer)
    runtime: TrialRuntime | None = None  # checkpoints, hang watchdog, node data, GPU (engine.worker)
    latency: Any = None  # ecgsearch.latency.plan.LatencyPlan: measured before training (ecgsearch.latency)
    evaluate: EvaluatePlan | None = None  # scored out of distribution after the last epoch (train.ood)

    def worst(self) -> float:
        return -math.inf if self.mode == "max" else math.inf

    def objective(self, value: float | None) -> float:
        """The value Tune schedulers read: finite; a missing or non-finite value counts as the worst."""
        return objective_value(value, self.mode)

    def better(self, new: float, old: float) -> bool:
        if math.isnan(new):
            return False
        return new > old if self.mode == "max" else new < old


REPEAT_SEED_STRIDE = 1_000_003  # larger than any trial index, so no repeat's seed is another trial's


def repeat_seed(seed: int, config: Mapping[str, Any]) -> int:
    """``seed`` for the configuration's repeat (``budget.repeats``; the private key ``_repeat``, 0 without
    repeats): repeat 0 keeps it, repeat r adds r x ``REPEAT_SEED_STRIDE``."""
    return seed + int(config.get("_repeat", 0)) * REPEAT_SEED_STRIDE


def private_keys(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k.startswith("_")}


def hyperparameters(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def input_samples(stored: int, params: Mapping[str, Any]) -> int:
    """The model's input length: the stored record length times the trial's ``crop_fraction``."""
    return max(1, round(stored * float(params.get("crop_fraction", 1.0))))
