"""Transfer learning inside a trial: pretrain on one task and dataset, re-head, freeze stages, fine-tune.

A space file's ``transfer`` section (``ecgsearch.space.transfer``) makes every trial:

1. build its model for the pretraining task and check, before any training, that the model follows
   the stem/stages/head contract (``ecgsearch.train.models``) and has at least ``freeze_stages`` stages;
2. when ``compare_scratch``, train the same configuration from scratch on the target data for the
   trial's epochs, exactly as a trial without transfer would (same seed), giving ``scratch.*``;
3. pretrain for ``transfer.pretrain.epochs`` on the pretraining data (all of its training split;
   same optimizer, schedule, batch size and precision as the trial), giving ``pretrain.val.*`` of the
   last pretraining epoch, whose weights are the ones transferred;
4. ``reset_head`` for the target task, freeze the stem and the first ``freeze_stages`` stages, and
   hand the model to the ordinary trial loop, which fine-tunes and reports ``val.*``/``test.*``.

The pretraining data must have the target data's leads, sampling rate and record length: the model
is built once, for that input.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import torch

from ecgsearch.data.cache import open_dataset
from ecgsearch.data.prepare import prepare_data
from ecgsearch.data.source import EcgArrays
from ecgsearch.errors import UserError
from ecgsearch.plugins import get_registries
from ecgsearch.space.transfer import FREEZE_PARAM
from ecgsearch.train.context import Diverged, TrialContext, hyperparameters
from ecgsearch.train.loop import best_columns, train_epochs
from ecgsearch.train.models import check_model, freeze_stages, stage_count
from ecgsearch.train.scoring import Scorer
from ecgsearch.train.setup import build_trial

if TYPE_CHECKING:
    from ecgsearch.space import SearchSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TransferPlan:
    """What every trial of a transfer search needs (picklable; sent to the workers with the context)."""

    cache_entry: str  # the pretraining data's cache entry
    task: str
    task_params: Mapping[str, Any]
    metric: str
    mode: str
    epochs: int
    compare_scratch: bool = False


def plan_transfer(spec: SearchSpec, target_entry: Path, progress: Callable[[int, int, str], None] | None = None
                  ) -> TransferPlan | None:
    """Prepare the pretraining data's cache entry and check it fits the target data (None: no transfer)."""
    if getattr(spec, "transfer", None) is None:
        return None
    pretrain = spec.transfer.pretrain
    entry = prepare_data(pretrain.data, f"{spec.path}: transfer.pretrain.data", progress)
    check_matching_data(open_dataset(entry), open_dataset(target_entry), str(spec.path))
    return TransferPlan(cache_entry=str(entry), task=pretrain.task.name, task_params=dict(pretrain.task.params),
                        metric=pretrain.metric, mode=pretrain.mode, epochs=pretrain.epochs,
                        compare_scratch=spec.transfer.compare_scratch)


def check_matching_data(source: EcgArrays, target: EcgArrays, where: str) -> None:
    """The pretrained model is built for the pretraining input: leads, rate and length must agree."""
    problems = []
    if list(source.leads) != list(target.leads):
        problems.append(f"leads {list(source.leads)} vs {list(target.leads)}")
    if float(source.sampling_rate) != float(target.sampling_rate):
        problems.append(f"sampling rate {source.sampling_rate:g} Hz vs {target.sampling_rate:g} Hz")
    if source.signals.shape[2] != target.signals.shape[2]:
        problems.append(f"{source.signals.shape[2]} vs {target.signals.shape[2]} samples per record")
    if problems:
        raise UserError(f"{where}: transfer.pretrain.data does not match data ({'; '.join(problems)}); a "
                        "pretrained model takes the same input as the target, so give both sections the same "
                        "leads, sampling rate and record length.")


def pretrain_context(context: TrialContext) -> TrialContext:
    """The trial context of the pretraining phase: other data, task, metric and epochs; no checkpoints."""
    plan: TransferPlan = context.transfer
    return replace(context, cache_entry=plan.cache_entry, task=plan.task, task_params=dict(plan.task_params),
                   metric=plan.metric, mode=plan.mode, epochs=plan.epochs, metrics=(), out_dir="", transfer=None)


def check_transferable(model: torch.nn.Module, architecture: str, frozen: int) -> None:
    """One sentence, before any training, for a model that cannot be re-headed or frozen as asked."""
    try:
        check_model(model, f"transfer: architecture '{architecture}'")
    except TypeError as error:
        raise UserError(str(error)) from None
    stages = stage_count(model)
    if frozen > stages:
        raise UserError(f"transfer.freeze_stages: {frozen} is more than the {stages} stages of architecture "
                        f"'{architecture}' in this trial; freeze at most {stages} (or narrow the architecture's "
                        "sub-space to models with more stages).")


def target_outputs(context: TrialContext) -> int:
    """How many outputs the target task needs on the target data."""
    data = open_dataset(Path(context.cache_entry))
    task = get_registries().tasks.get(context.task).create(data.targets.shape[1], **dict(context.task_params))
    return int(task.num_outputs)


def scratch_columns(config: Mapping[str, Any], context: TrialContext, seed: int) -> dict[str, Any]:
    """Train the configuration from scratch as a plain trial would; its best epoch as ``scratch.*``."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    setup = build_trial(config, context)
    scorer = Scorer(context, setup.task.kind, setup.data.target_names)
    key = f"val.{context.metric}"
    best: dict[str, Any] = {key: context.worst()}
    seconds, status = 0.0, "ok"
    try:
        for epoch in train_epochs(setup, context, scorer, generator):
            best, seconds = epoch.best, seconds + epoch.seconds
    except Diverged as error:
        log.warning("the from-scratch comparison diverged: %s", error)
        status = "diverged"
    return {"scratch.status": status, "scratch.train_seconds": seconds,
            **{f"scratch.{k}": v for k, v in best_columns(best, key).items()}}


def start_transfer(config: Mapping[str, Any], context: TrialContext,
                   seed: int) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Steps 1-4 of the module docstring: the model to fine-tune and the ``scratch.*``/``pretrain.*`` columns.

    Raises Diverged when pretraining diverges, UserError when the model cannot be transferred.
    """
    plan: TransferPlan = context.transfer
    resolved = context.space.resolve(context.space.active(hyperparameters(config)))
    frozen = int(resolved.params.get(FREEZE_PARAM, 0))
    source_context = pretrain_context(context)
    torch.manual_seed(seed)  # the same initial weights as the from-scratch model (but for the head)
    source = build_trial(config, source_context, use_fraction=False)
    check_transferable(source.model, source.architecture, frozen)
    outputs = target_outputs(context)
    columns = scratch_columns(config, context, seed) if plan.compare_scratch else {}

    generator = torch.Generator().manual_seed(seed + 1)
    scorer = Scorer(source_context, source.task.kind, source.data.target_names)
    seconds, current = 0.0, {}
    for epoch in train_epochs(source, source_context, scorer, generator):
        seconds, current = seconds + epoch.seconds, epoch.current
    columns.update({f"pretrain.{k}": v for k, v in current.items()})
    columns["pretrain.train_seconds"] = seconds
    log.info("pretrained %s for %d epochs: %s", source.architecture, plan.epochs, current)

    model = source.model
    model.reset_head(outputs)  # type: ignore[operator]
    freeze_stages(model, frozen)
    return model, columns
