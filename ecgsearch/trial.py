"""One trial: cached dataset -> model -> optimizer -> epochs, reporting after every epoch.

The trial runs inside a Ray Tune worker (``tune_trainable``) but knows nothing of Tune: it reports
through a callable, so tests and benchmarks can run it directly. Every report carries the running best
(validation metrics at the best epoch, test metrics of that epoch's model, costs), so the last report
always holds a complete results-table row, even for a trial that a scheduler stops early.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch

from ecgsearch.accel import accelerate
from ecgsearch.augment import Augmentation, center_crop, random_crop
from ecgsearch.cache import open_dataset
from ecgsearch.checkpoints import EpochState, Resumed, report_epoch, resume_point
from ecgsearch.costs import model_costs
from ecgsearch.data import EcgArrays
from ecgsearch.plugins import get_registries
from ecgsearch.precision import Stepper, make_stepper, trial_device
from ecgsearch.schedules import Schedule, ScheduleRun, steps_per_epoch
from ecgsearch.space.model import AUGMENT_PREFIX
from ecgsearch.space.params import OPTIONAL_CHOICES
from ecgsearch.tasks import fit_task, task_state
from ecgsearch.thresholds import fit_thresholds

log = logging.getLogger(__name__)

OBJECTIVE = "objective"  # the key Tune schedulers and searchers optimise
EVAL_BATCH = 256
Report = Callable[[dict[str, Any]], None]


class Diverged(Exception):
    """The training loss became NaN or infinite."""


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
    space: Any  # ecgsearch.space.Space
    metrics: tuple[str, ...] = field(default=())
    threads: int = 1
    gpu: float = 0.0  # the trial's GPU reservation: > 0 trains on CUDA
    transfer: Any = None  # ecgsearch.transfer.TransferPlan: pretrain, re-head and freeze before training
    runtime: Any = None  # ecgsearch.tune_faults.TrialRuntime: checkpoints, hang watchdog, node data, GPU
    latency: Any = None  # ecgsearch.latency.plan.LatencyPlan: measured before training (ecgsearch.latency)

    def worst(self) -> float:
        return -math.inf if self.mode == "max" else math.inf

    def better(self, new: float, old: float) -> bool:
        if math.isnan(new):
            return False
        return new > old if self.mode == "max" else new < old


def private_keys(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k.startswith("_")}


def hyperparameters(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def input_samples(stored: int, params: Mapping[str, Any]) -> int:
    """The model's input length: the stored record length times the trial's ``crop_fraction``."""
    return max(1, round(stored * float(params.get("crop_fraction", 1.0))))


@dataclass
class TrialSetup:
    """The built pieces of a trial, shared by the trial loop and the overhead benchmark."""

    data: EcgArrays
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    task: Any
    batch_size: int
    train_x: torch.Tensor
    train_y: torch.Tensor
    architecture: str
    optimizer_name: str
    samples: int  # the model's input length: the stored length, or a crop of it
    augment: Augmentation = Augmentation()
    schedule: Schedule | None = None  # None: a constant learning rate
    schedule_name: str = OPTIONAL_CHOICES["schedule"]
    stepper: Stepper | None = None  # None: fp32 on the CPU, no clipping

    @property
    def device(self) -> torch.device:
        return self.stepper.device if self.stepper is not None else torch.device("cpu")


def build_trial(config: Mapping[str, Any], context: TrialContext, model: torch.nn.Module | None = None,
                use_fraction: bool = True) -> TrialSetup:
    """Open the cached data and build model, optimizer, schedule and task from a sampled config.

    model: a model to train instead of a new one (a pretrained one, already re-headed for this task);
    only its parameters that require gradients are optimised. use_fraction: apply ``data_fraction``
    (a transfer's pretraining uses all of its data).
    """
    regs = get_registries()
    resolved = context.space.resolve(context.space.active(hyperparameters(config)))
    arch_name, arch_params = resolved.choices["architecture"]
    opt_name, opt_params = resolved.choices["optimizer"]
    schedule_name, schedule_params = resolved.choices.get("schedule", (OPTIONAL_CHOICES["schedule"], {}))
    data = open_dataset(Path(context.cache_entry))
    task = regs.tasks.get(context.task).create(data.targets.shape[1], **dict(context.task_params))
    leads, samples = data.signals.shape[1], input_samples(data.signals.shape[2], resolved.params)
    if model is None:
        model = regs.architectures.get(arch_name).create(leads, samples, task.num_outputs, **arch_params)
    device = trial_device(context.gpu)
    model = model.to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = regs.optimizers.get(opt_name).create(trainable, **opt_params)

    train_idx = data.indices("train")
    fraction = float(resolved.params.get("data_fraction", 1.0)) if use_fraction else 1.0
    if fraction < 1.0:
        rng = np.random.default_rng([context.seed, 7])  # the same subset for every trial of a run
        train_idx = np.sort(rng.choice(train_idx, max(1, round(fraction * len(train_idx))), replace=False))
    train_x = torch.from_numpy(np.ascontiguousarray(data.signals[train_idx]))
    train_y = torch.from_numpy(np.ascontiguousarray(data.targets[train_idx]))
    fit_task(task, train_y.numpy(), data.target_names)
    augment = Augmentation.from_params({k[len(AUGMENT_PREFIX):]: v for k, v in resolved.params.items()
                                        if k.startswith(AUGMENT_PREFIX)})
    batch_size = int(resolved.params.get("batch_size", 64))
    run = ScheduleRun(context.epochs, steps_per_epoch(len(train_idx), batch_size), context.mode)
    schedule = regs.schedules.get(schedule_name).create(optimizer, run, **schedule_params)
    precision, clip = str(resolved.params.get("precision", "fp32")), float(resolved.params.get("grad_clip", 0.0))
    stepper = None if (precision, clip, device.type) == ("fp32", 0.0, "cpu") else \
        make_stepper(precision, clip, device, trainable)
    return TrialSetup(data, model, optimizer, task, batch_size, train_x, train_y, arch_name, opt_name, samples,
                      augment, schedule, schedule_name, stepper)


def train_epoch(setup: TrialSetup, generator: torch.Generator) -> tuple[float, int]:
    """One pass over the training set; returns (mean loss, samples seen). Raises Diverged."""
    setup.model.train()
    n = len(setup.train_x)
    order = torch.randperm(n, generator=generator)
    total, seen = 0.0, 0
    stepper, device = setup.stepper, setup.device
    per_step = setup.schedule if setup.schedule is not None and setup.schedule.per_step else None
    for start in range(0, n, setup.batch_size):
        idx = order[start:start + setup.batch_size]
        if len(idx) < 2 and seen:  # a batch of one breaks batch norm; drop the remainder
            break
        x = random_crop(setup.train_x[idx], setup.samples, generator)  # x itself when not cropping
        x = setup.augment(x, generator, setup.data.sampling_rate)  # x itself when off
        y = setup.train_y[idx]
        if stepper is None:
            loss = setup.task.loss(setup.model(x), y)
        else:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with stepper.autocast():
                loss = setup.task.loss(setup.model(x), y)
        if not torch.isfinite(loss):
            raise Diverged(f"training loss became {loss.item()} at sample {seen}")
        setup.optimizer.zero_grad(set_to_none=True)
        if stepper is None:
            loss.backward()
            setup.optimizer.step()
        else:
            stepper.step(loss, setup.optimizer)
        if per_step is not None:
            per_step.step()
        total += loss.item() * len(idx)
        seen += len(idx)
    return total / max(seen, 1), seen


@torch.no_grad()
def predict(setup: TrialSetup, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(y_true, y_score)`` of one split, scored in batches by the task."""
    idx = setup.data.indices(split)
    setup.model.eval()
    scores = []
    for start in range(0, len(idx), EVAL_BATCH):
        x = center_crop(torch.from_numpy(np.ascontiguousarray(setup.data.signals[idx[start:start + EVAL_BATCH]])),
                        setup.samples)
        if setup.stepper is None:
            scores.append(setup.task.scores(setup.model(x)))
        else:
            with setup.stepper.autocast():
                scores.append(setup.task.scores(setup.model(x.to(setup.device, non_blocking=True))))
    return np.asarray(setup.data.targets[idx]), np.concatenate(scores) if scores else np.zeros((0, 0))


class Scorer:
    """Every metric of the task; binary-output metrics use thresholds fitted on validation only."""

    def __init__(self, context: TrialContext, task_kind: str, target_names: list[str]) -> None:
        metrics = get_registries().metrics
        names = context.metrics or tuple(m.name for m in metrics if task_kind in m.tasks)
        self.infos = [metrics.get(n) for n in dict.fromkeys((context.metric, *names))]
        self.target_names = target_names
        self.thresholds: np.ndarray | None = None

    def fit(self, y_true_val: np.ndarray, y_score_val: np.ndarray) -> None:
        if any(info.thresholded for info in self.infos) and len(y_true_val):
            self.thresholds = fit_thresholds(y_true_val, y_score_val)

    def score(self, split: str, y_true: np.ndarray, y_score: np.ndarray) -> dict[str, float]:
        """Every metric, prefixed with the split (``val.macro_auroc``); nothing for an empty split."""
        if len(y_true) == 0:
            return {}
        out = {}
        targets = y_true.shape[1] if y_true.ndim == 2 else 0
        for info in self.infos:
            fn = info.create(thresholds=self.thresholds) if info.thresholded else info.create()
            out[f"{split}.{info.name}"] = float(fn(y_true, y_score, self.target_names))
            if info.per_target and targets:
                blocks = y_score.shape[1] // targets  # score columns per target (2: mean and variance)
                for k, name in enumerate(self.target_names):
                    columns = [k + j * targets for j in range(blocks)]
                    out[f"{split}.{info.name}.{name}"] = float(fn(y_true[:, [k]], y_score[:, columns], [name]))
        return out


def score_test(setup: TrialSetup, scorer: Scorer) -> dict[str, float]:
    """Test metrics (``test.<metric>``) and, for datasets that name each record's origin, the same
    metrics per origin (``test.<metric>@<group>``, e.g. ``test.challenge_score@Georgia``)."""
    y_true, y_score = predict(setup, "test")
    out = scorer.score("test", y_true, y_score)
    if setup.data.groups is None:
        return out
    groups = np.asarray(setup.data.groups)[setup.data.indices("test")]
    for group in sorted(set(groups.tolist())):
        mask = groups == group
        out.update({f"{key}@{group}": value
                    for key, value in scorer.score("test", y_true[mask], y_score[mask]).items()})
    return out


BEST_CHECKPOINT = "best.pt"


def checkpoint_path(out_dir: str | Path, trial_id: str) -> Path:
    """Where a trial's best weights are kept: ``OUT/trials/<trial_id>/best.pt``."""
    return Path(out_dir) / "trials" / trial_id / BEST_CHECKPOINT


def save_best(context: TrialContext, config: Mapping[str, Any], model: torch.nn.Module,
              thresholds: np.ndarray | None, epoch: int, task: Any = None) -> None:
    """Keep the best epoch's weights and validation thresholds (``ecgsearch predict`` serves them), and
    what the task learned from the training targets (a regression's per-target mean and spread).

    Only tensors, numbers and lists are stored, so the file loads with ``torch.load(weights_only=True)``.
    """
    if "_trial_id" not in config or not context.out_dir:
        return
    path = checkpoint_path(context.out_dir, config["_trial_id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    learned = task_state(task)  # only tasks that learn from the targets (regressions) have a state
    torch.save({"state_dict": model.state_dict(), "epoch": epoch, "config": hyperparameters(config),
                "thresholds": None if thresholds is None else [float(t) for t in thresholds],
                **({"task_state": learned} if learned is not None else {})}, tmp)
    tmp.replace(path)


@dataclass
class Epoch:
    """One finished epoch of ``train_epochs``: its loss and validation scores, and the best so far."""

    epoch: int
    loss: float
    seen: int
    seconds: float
    current: dict[str, float]
    best: dict[str, Any]
    improved: bool


def train_epochs(setup: TrialSetup, context: TrialContext, scorer: Scorer,
                 generator: torch.Generator, start: Resumed | None = None) -> Iterator[Epoch]:
    """Train ``context.epochs`` epochs, scoring validation after each and test whenever it improves.

    The schedule sees each epoch's validation metric. Raises Diverged from the epoch that diverged.
    start: a restored checkpoint to continue from (its next epoch, its best so far).
    """
    key = f"val.{context.metric}"
    best: dict[str, Any] = dict(start.best) if start else {key: context.worst()}
    for epoch in range(start.next_epoch if start else 1, context.epochs + 1):
        started = time.perf_counter()
        loss, seen = train_epoch(setup, generator)
        elapsed = time.perf_counter() - started
        y_val, s_val = predict(setup, "val")
        scorer.fit(y_val, s_val)
        current = scorer.score("val", y_val, s_val)
        improved = context.better(current.get(key, math.nan), best[key])
        if improved:
            best = {**current, **score_test(setup, scorer), "best_epoch": epoch}
        if setup.schedule is not None:
            setup.schedule.epoch_end(current.get(key))
        yield Epoch(epoch, loss, seen, elapsed, current, best, improved)


def run_trial(config: Mapping[str, Any], context: TrialContext, report: Report) -> dict[str, Any]:
    """Train one configuration for ``context.epochs`` epochs, reporting after each; returns the last report.

    With a transfer plan the trial first trains from scratch (when asked, for comparison), pretrains,
    re-heads and freezes (``ecgsearch.transfer``); every report then carries the ``scratch.*`` and
    ``pretrain.*`` columns next to the fine-tuned ``val.*``/``test.*``.
    """
    seed = int(config.get("_seed", context.seed))
    torch.set_num_threads(context.threads)  # more threads than the trial's CPUs thrash shared cores
    extra: dict[str, Any] = {}
    model = None
    if context.transfer is not None:
        from ecgsearch.transfer import start_transfer

        try:
            model, extra = start_transfer(config, context, seed)
        except Diverged as error:
            last = {"status": "diverged", "error": f"pretraining: {error}", "epochs": 0, "train_seconds": 0.0,
                    OBJECTIVE: _objective(math.nan, context)}
            report(last)
            return last
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    setup = build_trial(config, context, model=model)
    accelerate(setup, context.runtime, context.gpu)  # data on the GPU, torch.compile (ecgsearch.accel)
    resumed = resume_point(report, setup, generator)  # a retried/resumed trial continues (ecgsearch.checkpoints)
    costs = config.get("_costs") or trial_costs(setup)
    scorer = Scorer(context, setup.task.kind, setup.data.target_names)
    key = f"val.{context.metric}"

    best: dict[str, Any] = dict(resumed.best) if resumed else {key: context.worst()}
    state: dict[str, Any] = {**costs, **extra, "architecture": setup.architecture, "optimizer": setup.optimizer_name,
                             "schedule": setup.schedule_name, "status": "running", "error": None}
    train_seconds = resumed.train_seconds if resumed else 0.0
    last: dict[str, Any] = dict(resumed.last) if resumed else {}
    epochs = train_epochs(setup, context, scorer, generator, start=resumed)
    for epoch in range(resumed.next_epoch if resumed else 1, context.epochs + 1):
        try:
            result = next(epochs)
        except Diverged as error:
            state.update(status="diverged", error=str(error))
            last = {**state, **_best_columns(best, key), "epochs": epoch, "train_seconds": train_seconds,
                    OBJECTIVE: _objective(best[key], context)}
            report(last)
            return last
        train_seconds += result.seconds
        best = result.best
        if result.improved:
            save_best(context, config, setup.model, scorer.thresholds, epoch, setup.task)
        if epoch == context.epochs:
            state["status"] = "ok"
        last = {**state, **_best_columns(best, key), "epoch": epoch, "epochs": epoch, "loss": result.loss,
                "train_seconds": train_seconds,
                "samples_per_second": result.seen / result.seconds if result.seconds else 0.0,
                **{f"current.{k}": v for k, v in result.current.items()},
                OBJECTIVE: _objective(result.current.get(key, math.nan), context)}
        report_epoch(report, last, EpochState(setup, generator, epoch, best, train_seconds, last))
    return last


def trial_costs(setup: TrialSetup) -> dict[str, int]:
    """Cost columns counted here (the driver normally counts them when it samples the candidate)."""
    model = copy.deepcopy(setup.model).cpu() if setup.device.type != "cpu" else setup.model
    return model_costs(model, setup.data.signals.shape[1], setup.samples, setup.data.sampling_rate).columns()


def _best_columns(best: Mapping[str, Any], key: str) -> dict[str, Any]:
    cols = {k: v for k, v in best.items() if k.startswith(("val.", "test."))}
    if math.isinf(cols.get(key, 0.0)):
        cols[key] = math.nan  # no epoch finished: there is no best value
    return {**cols, "best_epoch": best.get("best_epoch")}


def _objective(value: float, context: TrialContext) -> float:
    """Schedulers need a finite number; a missing value counts as the worst one."""
    if value is None or math.isnan(value) or math.isinf(value):
        return -1e30 if context.mode == "max" else 1e30
    return float(value)
