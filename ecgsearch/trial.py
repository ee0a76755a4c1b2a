"""One trial: cached dataset -> model -> optimizer -> epochs, reporting after every epoch.

The trial runs inside a Ray Tune worker (``tune_trainable``) but knows nothing of Tune: it reports
through a callable, so tests and benchmarks can run it directly. Every report carries the running best
(validation metrics at the best epoch, test metrics of that epoch's model, costs), so the last report
always holds a complete results-table row, even for a trial that a scheduler stops early.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from ecgsearch.augment import Augmentation, center_crop, random_crop
from ecgsearch.cache import open_dataset
from ecgsearch.costs import model_costs
from ecgsearch.data import EcgArrays
from ecgsearch.plugins import get_registries
from ecgsearch.space.model import AUGMENT_PREFIX
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


def build_trial(config: Mapping[str, Any], context: TrialContext) -> TrialSetup:
    """Open the cached data and build model, optimizer and task from a sampled config."""
    regs = get_registries()
    resolved = context.space.resolve(context.space.active(hyperparameters(config)))
    arch_name, arch_params = resolved.choices["architecture"]
    opt_name, opt_params = resolved.choices["optimizer"]
    data = open_dataset(Path(context.cache_entry))
    task = regs.tasks.get(context.task).create(data.targets.shape[1], **dict(context.task_params))
    leads, samples = data.signals.shape[1], input_samples(data.signals.shape[2], resolved.params)
    model = regs.architectures.get(arch_name).create(leads, samples, task.num_outputs, **arch_params)
    optimizer = regs.optimizers.get(opt_name).create(model.parameters(), **opt_params)

    train_idx = data.indices("train")
    fraction = float(resolved.params.get("data_fraction", 1.0))
    if fraction < 1.0:
        rng = np.random.default_rng([context.seed, 7])  # the same subset for every trial of a run
        train_idx = np.sort(rng.choice(train_idx, max(1, round(fraction * len(train_idx))), replace=False))
    train_x = torch.from_numpy(np.ascontiguousarray(data.signals[train_idx]))
    train_y = torch.from_numpy(np.ascontiguousarray(data.targets[train_idx]))
    augment = Augmentation.from_params({k[len(AUGMENT_PREFIX):]: v for k, v in resolved.params.items()
                                        if k.startswith(AUGMENT_PREFIX)})
    return TrialSetup(data, model, optimizer, task, int(resolved.params.get("batch_size", 64)),
                      train_x, train_y, arch_name, opt_name, samples, augment)


def train_epoch(setup: TrialSetup, generator: torch.Generator) -> tuple[float, int]:
    """One pass over the training set; returns (mean loss, samples seen). Raises Diverged."""
    setup.model.train()
    n = len(setup.train_x)
    order = torch.randperm(n, generator=generator)
    total, seen = 0.0, 0
    for start in range(0, n, setup.batch_size):
        idx = order[start:start + setup.batch_size]
        if len(idx) < 2 and seen:  # a batch of one breaks batch norm; drop the remainder
            break
        x = random_crop(setup.train_x[idx], setup.samples, generator)  # x itself when not cropping
        x = setup.augment(x, generator, setup.data.sampling_rate)  # x itself when off
        loss = setup.task.loss(setup.model(x), setup.train_y[idx])
        if not torch.isfinite(loss):
            raise Diverged(f"training loss became {loss.item()} at sample {seen}")
        setup.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        setup.optimizer.step()
        total += loss.item() * len(idx)
        seen += len(idx)
    return total / max(seen, 1), seen


@torch.no_grad()
def predict(setup: TrialSetup, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(y_true, y_score)`` of one split, scored in batches by the task."""
    idx = setup.data.indices(split)
    setup.model.eval()
    scores = [setup.task.scores(setup.model(center_crop(torch.from_numpy(np.ascontiguousarray(
        setup.data.signals[idx[start:start + EVAL_BATCH]])), setup.samples)))
        for start in range(0, len(idx), EVAL_BATCH)]
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
        for info in self.infos:
            fn = info.create(thresholds=self.thresholds) if info.thresholded else info.create()
            out[f"{split}.{info.name}"] = float(fn(y_true, y_score, self.target_names))
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
              thresholds: np.ndarray | None, epoch: int) -> None:
    """Keep the best epoch's weights and validation thresholds (``ecgsearch predict`` serves them).

    Only tensors, numbers and lists are stored, so the file loads with ``torch.load(weights_only=True)``.
    """
    if "_trial_id" not in config or not context.out_dir:
        return
    path = checkpoint_path(context.out_dir, config["_trial_id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"state_dict": model.state_dict(), "epoch": epoch, "config": hyperparameters(config),
                "thresholds": None if thresholds is None else [float(t) for t in thresholds]}, tmp)
    tmp.replace(path)


def run_trial(config: Mapping[str, Any], context: TrialContext, report: Report) -> dict[str, Any]:
    """Train one configuration for ``context.epochs`` epochs, reporting after each; returns the last report."""
    seed = int(config.get("_seed", context.seed))
    torch.set_num_threads(context.threads)  # more threads than the trial's CPUs thrash shared cores
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    setup = build_trial(config, context)
    costs = config.get("_costs") or model_costs(setup.model, setup.data.signals.shape[1], setup.samples).columns()
    scorer = Scorer(context, setup.task.kind, setup.data.target_names)
    key = f"val.{context.metric}"

    best: dict[str, Any] = {key: context.worst()}
    state: dict[str, Any] = {**costs, "architecture": setup.architecture, "optimizer": setup.optimizer_name,
                             "status": "running", "error": None}
    train_seconds = 0.0
    last: dict[str, Any] = {}
    for epoch in range(1, context.epochs + 1):
        started = time.perf_counter()
        try:
            loss, seen = train_epoch(setup, generator)
        except Diverged as error:
            state.update(status="diverged", error=str(error))
            last = {**state, **_best_columns(best, key), "epochs": epoch, "train_seconds": train_seconds,
                    OBJECTIVE: _objective(best[key], context)}
            report(last)
            return last
        elapsed = time.perf_counter() - started
        train_seconds += elapsed
        y_val, s_val = predict(setup, "val")
        scorer.fit(y_val, s_val)
        current = scorer.score("val", y_val, s_val)
        if context.better(current.get(key, math.nan), best[key]):
            best = {**current, **score_test(setup, scorer), "best_epoch": epoch}
            save_best(context, config, setup.model, scorer.thresholds, epoch)
        if epoch == context.epochs:
            state["status"] = "ok"
        last = {**state, **_best_columns(best, key), "epoch": epoch, "epochs": epoch, "loss": loss,
                "train_seconds": train_seconds, "samples_per_second": seen / elapsed if elapsed else 0.0,
                **{f"current.{k}": v for k, v in current.items()},
                OBJECTIVE: _objective(current.get(key, math.nan), context)}
        report(last)
    return last


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
