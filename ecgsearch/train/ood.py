"""Out-of-distribution scores of a trained model: corrupted test splits and other datasets (``evaluate:``).

The driver plans once (``plan_evaluate``: each OOD dataset's cache entry, checked to fit the model's input, and
the classes it shares with the model); a trial, after its last epoch, scores its best epoch's weights on every
evaluation (``trial_ood_columns``), and ``ecgsearch evaluate-run`` scores a finished run's checkpoints the same
way (``ood_columns``), so both give the same numbers. Each evaluation gives ``ood.<name>.loss`` (the task's
loss) and ``ood.<name>.<metric>`` for every metric of the task, with the validation thresholds of the best
epoch. Scoring reuses ``ecgsearch.train.scoring.predict`` on a view of the data, so an OOD score is computed
exactly as a test score is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch

from ecgsearch.data.cache import open_dataset
from ecgsearch.data.corrupt import Corruption, corrupt
from ecgsearch.data.harmonise import ClassMismatch, match_task_classes
from ecgsearch.data.prepare import prepare_data
from ecgsearch.data.source import EcgArrays
from ecgsearch.results.folder import checkpoint_path, load_weights
from ecgsearch.space.messages import Context
from ecgsearch.space.yamlio import item_key
from ecgsearch.train.scoring import Scorer, predict
from ecgsearch.train.transfer import check_matching_data

if TYPE_CHECKING:
    from ecgsearch.space.spec import EvaluateSpec
    from ecgsearch.train.context import TrialContext
    from ecgsearch.train.setup import TrialSetup

log = logging.getLogger(__name__)

OOD_PREFIX = "ood."


@dataclass(frozen=True)
class OodDataPlan:
    """One OOD dataset (picklable): its cache entry and the classes it shares with the model, as pairs
    ``(model class, the dataset's targets standing for it)``, in the model's order (``ecgsearch.data.harmonise``)."""

    name: str
    cache_entry: str
    pairs: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class EvaluatePlan:
    """What every trial scores after training (picklable; part of the trial context)."""

    corruptions: tuple[Corruption, ...] = ()
    datasets: tuple[OodDataPlan, ...] = ()
    seed: int = 0  # the run's seed: every trial sees the same corrupted records


def plan_evaluate(evaluate: EvaluateSpec | None, seed: int, task: str, target_entry: Path, ctx: Context,
                  progress: Any = None) -> EvaluatePlan | None:
    """Prepare each OOD dataset and check it against the run's data (None: no ``evaluate`` section).

    ctx: the file the section came from (the space file, or ``evaluate-run --evaluate``'s), for the messages.
    """
    if evaluate is None:
        return None
    target = open_dataset(target_entry)
    for index, corruption in enumerate(evaluate.corruptions):
        dropped = corruption.params.get("leads") if corruption.kind == "lead_dropout" else None
        if dropped is not None and dropped >= len(target.leads):
            raise ctx.error(f"{item_key('evaluate.corruptions', index)}.leads",
                         f"{int(dropped)} is not fewer than the data's {len(target.leads)} leads; drop at most "
                         f"{len(target.leads) - 1}")
    datasets = []
    for index, spec in enumerate(evaluate.datasets):
        key = f"{item_key('evaluate.datasets', index)}.data"
        line = ctx.line(key)
        where = f"{ctx.source}:{line}" if line else ctx.source
        entry = prepare_data(spec.data, f"{where}: {key}", progress)
        ood = open_dataset(entry)
        check_matching_data(ood, target, where, key)
        try:  # the rule ecgsearch validate applies too, where both datasets declare their targets
            matched = match_task_classes(list(target.target_names), ood.target_names, task, spec.data.dataset)
        except ClassMismatch as problem:
            raise ctx.error(key, str(problem)) from None
        if matched.missing:
            log.warning("evaluate %s: %d of the model's classes have no counterpart in dataset '%s' and are "
                        "skipped there: %s", spec.name, len(matched.missing), spec.data.dataset,
                        ", ".join(matched.missing))
        datasets.append(OodDataPlan(spec.name, str(entry), tuple(matched.pairs)))
    return EvaluatePlan(corruptions=evaluate.corruptions, datasets=tuple(datasets), seed=seed)


@dataclass
class ModelOnData:
    """What ``predict`` reads of a trial setup: a model, its task and input length, and the data to score."""

    data: EcgArrays
    model: torch.nn.Module
    task: Any
    samples: int
    stepper: Any = None  # the trial's precision and device (None: fp32 on the CPU)
    extras: Any = None

    @property
    def device(self) -> torch.device:
        return self.stepper.device if self.stepper is not None else torch.device("cpu")


@dataclass(frozen=True)
class _Columns:
    """The task restricted to some of the model's outputs: a multilabel loss is a mean over classes, so on a
    subset of them it is the same loss, on the classes the OOD dataset has."""

    task: Any
    columns: tuple[int, ...]

    @property
    def kind(self) -> str:
        return self.task.kind

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.task.loss(outputs[:, list(self.columns)], targets)

    def scores(self, outputs: torch.Tensor) -> np.ndarray:
        return self.task.scores(outputs)[:, list(self.columns)]


def corrupted_test(data: EcgArrays, corruption: Corruption, seed: int) -> EcgArrays:
    """The test split of ``data``, corrupted (every record of the view is in its ``test`` split)."""
    idx = data.indices("test")
    return EcgArrays(signals=corrupt(np.asarray(data.signals[idx]), corruption, data.sampling_rate, seed),
                     targets=np.asarray(data.targets[idx]), target_names=list(data.target_names),
                     split=np.full(len(idx), "test"), sampling_rate=data.sampling_rate, leads=list(data.leads),
                     record_ids=np.asarray(data.record_ids)[idx])


def shared_view(ood: EcgArrays, pairs: Sequence[tuple[str, Sequence[str]]]) -> EcgArrays:
    """Every record of an OOD dataset (whatever its split), its targets the shared classes in the model's order:
    a class several of the dataset's targets stand for is positive when any of them is."""
    index = {str(name): k for k, name in enumerate(ood.target_names)}
    stored = np.asarray(ood.targets)
    targets = np.stack([stored[:, [index[t] for t in theirs]].max(axis=1) for _, theirs in pairs], axis=1)
    return EcgArrays(signals=ood.signals, targets=targets.astype(stored.dtype),
                     target_names=[ours for ours, _ in pairs], split=np.full(len(ood.signals), "test"),
                     sampling_rate=ood.sampling_rate, leads=list(ood.leads), record_ids=np.asarray(ood.record_ids))


def ood_columns(plan: EvaluatePlan, scored: ModelOnData, targets: Sequence[str], thresholds: Sequence[float] | None,
                scorer_context: Any) -> dict[str, float]:
    """``ood.<name>.loss`` and ``ood.<name>.<metric>`` of every evaluation of ``plan``.

    scored: the model on the run's data (its test split is corrupted); targets: the model's class names, in
    output order; thresholds: the best epoch's validation thresholds; scorer_context: the trial context (its
    metric and metrics), or anything with those two attributes.
    """
    out: dict[str, float] = {}
    fitted = None if thresholds is None else np.asarray(thresholds, dtype=float)
    for corruption in plan.corruptions:
        view = ModelOnData(corrupted_test(scored.data, corruption, plan.seed), scored.model, scored.task,
                           scored.samples, scored.stepper)
        out.update(_score(corruption.name, view, list(targets), fitted, scorer_context))
    position = {str(name): k for k, name in enumerate(targets)}
    for dataset in plan.datasets:
        columns = tuple(position[ours] for ours, _ in dataset.pairs)
        task = scored.task if columns == tuple(range(len(targets))) else _Columns(scored.task, columns)
        view = ModelOnData(shared_view(open_dataset(Path(dataset.cache_entry)), dataset.pairs), scored.model,
                           task, scored.samples, scored.stepper)
        out.update(_score(dataset.name, view, [ours for ours, _ in dataset.pairs],
                          None if fitted is None else fitted[list(columns)], scorer_context))
    return out


def _score(name: str, view: ModelOnData, targets: list[str], thresholds: np.ndarray | None,
           scorer_context: Any) -> dict[str, float]:
    """One evaluation's columns: the task's metrics and loss on the view's records."""
    y_true, y_score, loss = predict(view, "test")  # type: ignore[arg-type]  # predict reads these attributes only
    scorer = Scorer(scorer_context, view.task.kind, targets)
    scorer.thresholds = thresholds
    split = f"{OOD_PREFIX}{name}"
    return {**scorer.metrics(split, y_true, y_score), f"{split}.loss": float(loss)}


def trial_ood_columns(context: TrialContext, config: Mapping[str, Any], setup: TrialSetup) -> dict[str, float]:
    """The OOD columns of a trial that has trained: its best epoch's weights and thresholds (``best.pt``), put
    into the model for the scoring and taken out again; without a checkpoint (a trial run outside a run
    folder), the model as it is."""
    plan: EvaluatePlan = context.evaluate
    path = checkpoint_path(context.out_dir, str(config["_trial_id"])) if context.out_dir and "_trial_id" in config \
        else None
    if path is None or not path.is_file():
        log.info("no best checkpoint to score out of distribution; scoring the last epoch's weights")
        scored = ModelOnData(setup.data, setup.model, setup.task, setup.samples, setup.stepper)
        return ood_columns(plan, scored, setup.data.target_names, None, context)
    best = load_weights(path, map_location=setup.device)
    current = {k: v.detach().clone() for k, v in setup.model.state_dict().items()}
    setup.model.load_state_dict(best["state_dict"])
    try:
        scored = ModelOnData(setup.data, setup.model, setup.task, setup.samples, setup.stepper)
        return ood_columns(plan, scored, best.get("targets") or setup.data.target_names, best.get("thresholds"),
                           context)
    finally:
        setup.model.load_state_dict(current)
