"""The typed, validated form of a space file: what the engine, trials and reports read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ecgsearch.space.model import Space


@dataclass(frozen=True)
class DataSpec:
    """``data:``: the dataset and the keyword arguments of its factory."""

    dataset: str
    params: Mapping[str, Any]
    cache_dir: str | None = None


@dataclass(frozen=True)
class TaskSpec:
    """``task:``: the task and the keyword arguments of its factory."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BudgetSpec:
    """``budget:``: how many trials, how long each runs, and how early stopping schedules them."""

    trials: int
    epochs: int
    scheduler: str = "fifo"
    grace_period: int = 1
    reduction_factor: int = 2
    max_concurrent: int | None = None
    trial_time_limit_s: float | None = None


@dataclass(frozen=True)
class ResourceSpec:
    """``resources:``: what one trial reserves (fractions of a GPU allowed)."""

    cpu: float = 1.0
    gpu: float = 0.0


@dataclass(frozen=True)
class SearchAlgSpec:
    """``search:``: the search algorithm and its own options."""

    algorithm: str = "random"
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConstraintSpec:
    """``constraints:``: limits a candidate must satisfy (per-sample forward FLOPs, parameters, latency)."""

    max_flops: float | None = None
    max_params: float | None = None
    max_latency_ms: float | None = None


@dataclass(frozen=True)
class LatencySpec:
    """``latency:``: the backends that time each candidate, and how."""

    backends: tuple[str, ...]
    batch_size: int = 1
    threads: int | None = None


@dataclass(frozen=True)
class SearchSpec:
    """A whole, validated space file. ``lines`` maps each dotted key of the file to its line."""

    path: str
    name: str
    seed: int
    data: DataSpec
    task: TaskSpec
    metric: str
    mode: str
    budget: BudgetSpec
    resources: ResourceSpec
    search: SearchAlgSpec
    constraints: ConstraintSpec
    space: Space
    latency: LatencySpec | None
    lines: Mapping[str, int]
