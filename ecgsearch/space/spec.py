"""The typed, validated form of a space file: what the engine, trials and reports read."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from ecgsearch.data.corrupt import Corruption
from ecgsearch.errors import UserError
from ecgsearch.space.model import Space

# The words of the ``latency`` section (and of ``ecgsearch bench``): execution precisions of a backend,
# OpenVINO's performance hints, and when trials are measured.
LATENCY_PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16", "int8")
HINTS: tuple[str, ...] = ("latency", "throughput")
MEASURE_MODES: tuple[str, ...] = ("all", "pareto", "best")


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


ON_BUDGET: tuple[str, ...] = ("finish", "stop")


@dataclass(frozen=True)
class BudgetSpec:
    """``budget:``: how many trials, how long each runs, and how early stopping schedules them."""

    trials: int
    epochs: int
    scheduler: str = "fifo"  # a registered scheduler, with its options
    scheduler_params: Mapping[str, Any] = field(default_factory=dict)
    max_concurrent: int | None = None
    trial_time_limit_s: float | None = None
    max_failures: int = 0  # retries of a failed trial, each from its last checkpoint
    checkpoint_every: int = 1  # epochs between trial checkpoints; 0: none
    hang_timeout_s: float | None = None  # a trial silent this long is stopped (default: trial_time_limit_s)
    time: float | None = None  # the whole search's wall time in seconds, over all its resumes
    gpu_hours: float | None = None  # GPU hours the trials may reserve in all (resources.gpu x trial wall time)
    on_budget: str = "finish"  # when time or GPU hours run out: running trials finish, or stop at their next epoch
    repeats: int = 1  # seeds each configuration is trained with (ecgsearch.search.repeats)

    @property
    def trainings(self) -> int:
        """Trials Tune runs: every configuration once per repeat."""
        return self.trials * self.repeats


@dataclass(frozen=True)
class ResourceSpec:
    """``resources:``: what one trial reserves (fractions of a GPU allowed)."""

    cpu: float = 1.0
    gpu: float = 0.0
    data_on_gpu: bool | None = None  # None: automatic (ecgsearch.train.accel)
    compile: bool = False  # torch.compile the model


@dataclass(frozen=True)
class SearchAlgSpec:
    """``search:``: the search algorithm and its own options."""

    algorithm: str = "random"
    params: Mapping[str, Any] = field(default_factory=dict)
    warm_start: tuple[str, ...] = ()  # earlier run folders whose trials seed a model-based search


@dataclass(frozen=True)
class ConstraintSpec:
    """``constraints:``: limits a candidate must satisfy (per-sample forward FLOPs, parameters, latency)."""

    max_flops: float | None = None
    max_params: float | None = None
    max_latency_ms: float | None = None


@dataclass(frozen=True)
class LatencySpec:
    """``latency:``: the backends that time each candidate, and how (docs/latency.md).

    measure: ``all`` (every trial, before it trains), ``pareto`` or ``best`` (after the search).
    precision: one precision for every backend, or a mapping backend -> precision (others: fp32).
    """

    backends: tuple[str, ...]
    batch_size: int = 1
    threads: int | None = None
    measure: str = "all"
    precision: str | Mapping[str, str] = "fp32"
    hint: str = "latency"
    time_budget_s: float = 1.0
    predictor: str = "random_forest"


@dataclass(frozen=True)
class PretrainSpec:
    """One pretraining of ``transfer.pretrain:``: the data, task and epochs each trial's model is pretrained on.

    name: the pretraining's name in the list form (its columns are ``pretrain.<name>.*``); ``""`` for the
    single-mapping form (columns ``pretrain.*``).
    """

    data: DataSpec
    task: TaskSpec
    metric: str
    mode: str
    epochs: int
    name: str = ""


@dataclass(frozen=True)
class TransferSpec:
    """``transfer:``: pretrain, re-head, freeze the first ``freeze_stages`` stages, fine-tune.

    pretrain: one pretraining (the single-mapping form) or several (the list form); with several, each
    trial's model fuses one encoder per pretraining (``ecgsearch.train.fusion``).
    The searched ``freeze_stages`` is a parameter of ``SearchSpec.space`` (``hp.freeze_stages``).
    compare_scratch: also train each configuration from scratch, for ``scratch.*`` columns.
    cache: trials that agree on everything a pretraining depends on share its encoder (one pretraining).
    The searched ``transfer_mode`` and pretraining data fractions are parameters of the space too.
    """

    pretrain: tuple[PretrainSpec, ...]
    compare_scratch: bool = False
    cache: bool = True

    @property
    def encoders(self) -> int:
        """Encoders of each trial's model: one per pretraining (more than one: a fused model)."""
        return len(self.pretrain)


@dataclass(frozen=True)
class OodDataSpec:
    """One dataset of ``evaluate.datasets``: its name (columns ``ood.<name>.*``) and its data section."""

    name: str
    data: DataSpec


@dataclass(frozen=True)
class EvaluateSpec:
    """``evaluate:``: what each trained model is also scored on, out of distribution (``ecgsearch.space.evaluate``)."""

    corruptions: tuple[Corruption, ...] = ()
    datasets: tuple[OodDataSpec, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """Every evaluation's name, in order: the ``<name>`` of its ``ood.<name>.*`` columns."""
        return tuple(c.name for c in self.corruptions) + tuple(d.name for d in self.datasets)


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
    transfer: TransferSpec | None = None
    tracking: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # tracker -> settings, those on
    evaluate: EvaluateSpec | None = None  # out-of-distribution evaluations of each trained model

    @property
    def encoders(self) -> int:
        """Encoders of each trial's model: 1, or one per pretraining of a fusing transfer section."""
        return self.transfer.encoders if self.transfer is not None else 1


def with_trials(spec: SearchSpec, trials: int | None) -> SearchSpec:
    """``spec`` with ``budget.trials`` overridden (the CLI's ``--trials``; None keeps it)."""
    if trials is None:
        return spec
    if trials < 1:
        raise UserError(f"--trials: {trials} is not an integer >= 1; pass a positive number of trials.")
    return replace(spec, budget=replace(spec.budget, trials=trials))
