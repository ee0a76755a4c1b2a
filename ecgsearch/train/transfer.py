"""Transfer learning inside a trial: pretrain on one task and dataset, re-head, freeze stages, fine-tune.

A space file's ``transfer`` section (``ecgsearch.space.transfer``) makes every trial:

1. build its model for each pretraining task and check, before any training, that the model follows
   the stem/stages/head contract (``ecgsearch.train.models``) and has at least ``freeze_stages`` stages;
2. when ``compare_scratch``, train the same configuration from scratch on the target data for the
   trial's epochs, exactly as a trial without transfer would (same seed), giving ``scratch.*``;
3. pretrain for ``transfer.pretrain.epochs`` on the pretraining data (all of its training split;
   same optimizer, schedule, batch size and precision as the trial), giving ``pretrain.val.*`` of the
   last pretraining epoch, whose weights are the ones transferred; with a list of pretrainings, one
   model per entry (each from its own seed), giving ``pretrain.<name>.val.*``;
4. ``reset_head`` for the target task (several pretrained models: ``fuse`` them into one model with one
   encoder each and a fresh output layer, ``ecgsearch.train.fusion``), freeze the stem and the first
   ``freeze_stages`` stages (of every encoder), and hand the model to the ordinary trial loop, which
   fine-tunes and reports ``val.*``/``test.*``.

The pretraining data must have the target data's leads, sampling rate and record length: the model
is built once, for that input.
"""

from __future__ import annotations

import dataclasses
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
from ecgsearch.space.messages import Context
from ecgsearch.space.transfer import FREEZE_PARAM, MODE_PARAM, fraction_param
from ecgsearch.space.yamlio import item_key
from ecgsearch.train.context import Diverged, TrialContext, hyperparameters, repeat_seed
from ecgsearch.train.costs import TRAIN_FLOPS_PER_FORWARD
from ecgsearch.train.encoder_cache import encoder_key, encoder_lock, key_seed, load_encoder, save_encoder
from ecgsearch.train.fusion import check_fusable, fuse
from ecgsearch.train.loop import best_columns, train_epochs
from ecgsearch.train.models import check_model, freeze_stages, stage_count
from ecgsearch.train.scoring import Scorer
from ecgsearch.train.setup import TrialSetup, build_trial, setup_costs

if TYPE_CHECKING:
    from ecgsearch.space import SearchSpec
    from ecgsearch.space.spec import PretrainSpec

log = logging.getLogger(__name__)


SEED_STRIDE = 10_007  # seed offset between the pretrainings of one trial (the first keeps the trial's seed)
SAMPLES_KEY = "samples"  # a stored encoder's samples seen, beside its columns


@dataclass(frozen=True)
class PretrainPlan:
    """One pretraining of a transfer search (picklable). name: ``""`` for the single-mapping form (columns
    ``pretrain.*``), else the entry's name (columns ``pretrain.<name>.*``)."""

    cache_entry: str  # the pretraining data's cache entry
    task: str
    task_params: Mapping[str, Any]
    metric: str
    mode: str
    epochs: int
    name: str = ""

    @property
    def prefix(self) -> str:
        """The prefix of this pretraining's columns: ``pretrain.`` or ``pretrain.<name>.``."""
        return f"pretrain.{self.name}." if self.name else "pretrain."


@dataclass(frozen=True)
class TransferPlan:
    """What every trial of a transfer search needs (picklable; sent to the workers with the context)."""

    pretrain: tuple[PretrainPlan, ...]
    compare_scratch: bool = False
    cache: bool = True  # share pretrained encoders between trials (``ecgsearch.train.encoder_cache``)

    @property
    def encoders(self) -> int:
        """Encoders of the fine-tuned model: one per pretraining (more than one: fused)."""
        return len(self.pretrain)


def plan_transfer(spec: SearchSpec, target_entry: Path, progress: Callable[[int, int, str], None] | None = None
                  ) -> TransferPlan | None:
    """Prepare each pretraining's cache entry and check it fits the target data (None: no transfer)."""
    if getattr(spec, "transfer", None) is None:
        return None
    target = open_dataset(target_entry)
    single = len(spec.transfer.pretrain) == 1 and not spec.transfer.pretrain[0].name
    plans = tuple(_plan_pretrain(spec, "transfer.pretrain" if single else item_key("transfer.pretrain", index),
                                 pretrain, target, progress) for index, pretrain in enumerate(spec.transfer.pretrain))
    return TransferPlan(pretrain=plans, compare_scratch=spec.transfer.compare_scratch, cache=spec.transfer.cache)


def _plan_pretrain(spec: SearchSpec, key: str, pretrain: PretrainSpec, target: EcgArrays,
                   progress: Callable[[int, int, str], None] | None) -> PretrainPlan:
    data_key = f"{key}.data"
    entry = prepare_data(pretrain.data, f"{spec.path}: {data_key}", progress)
    line = Context(str(spec.path), spec.lines).line(data_key)
    check_matching_data(open_dataset(entry), target, f"{spec.path}:{line}" if line else str(spec.path), data_key)
    return PretrainPlan(cache_entry=str(entry), task=pretrain.task.name, task_params=dict(pretrain.task.params),
                        metric=pretrain.metric, mode=pretrain.mode, epochs=pretrain.epochs, name=pretrain.name)


def check_matching_data(source: EcgArrays, target: EcgArrays, where: str, key: str = "transfer.pretrain.data"
                        ) -> None:
    """The pretrained model is built for the pretraining input: leads, rate and length must agree."""
    problems = []
    if list(source.leads) != list(target.leads):
        problems.append(f"leads {list(source.leads)} vs {list(target.leads)}")
    if float(source.sampling_rate) != float(target.sampling_rate):
        problems.append(f"sampling rate {source.sampling_rate:g} Hz vs {target.sampling_rate:g} Hz")
    if source.signals.shape[2] != target.signals.shape[2]:
        problems.append(f"{source.signals.shape[2]} vs {target.signals.shape[2]} samples per record")
    if problems:
        raise UserError(f"{where}: {key} does not match data ({'; '.join(problems)}); a "
                        "pretrained model takes the same input as the target, so give both sections the same "
                        "leads, sampling rate and record length.")


def pretrain_context(context: TrialContext, plan: PretrainPlan) -> TrialContext:
    """The trial context of a pretraining phase: other data, task, metric and epochs; no checkpoints."""
    return replace(context, cache_entry=plan.cache_entry, task=plan.task, task_params=dict(plan.task_params),
                   metric=plan.metric, mode=plan.mode, epochs=plan.epochs, metrics=(), out_dir="", transfer=None)


def check_transferable(model: torch.nn.Module, architecture: str, frozen: int, encoders: int = 1) -> None:
    """One sentence, before any training, for a model that cannot be re-headed, fused or frozen as asked."""
    owner = f"transfer: architecture '{architecture}'"
    try:
        check_model(model, owner)
        if encoders > 1:
            check_fusable([model], owner)
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


@dataclass
class Transferred:
    """What the transfer phase hands the trial: the model to fine-tune, the ``scratch.*``/``pretrain.*``
    columns, and the training compute the pretrainings spent (samples seen, forward+backward FLOPs)."""

    model: torch.nn.Module
    columns: dict[str, Any]
    samples: int = 0
    flops: float = 0.0


def pretrains(config: Mapping[str, Any], context: TrialContext) -> bool:
    """Whether the trial pretrains: a transfer search, and not ``transfer.mode: scratch`` for this trial."""
    if context.transfer is None:
        return False
    return context.space.resolve(context.space.active(hyperparameters(config))).params.get(MODE_PARAM) != "scratch"


def paradigm(plan: TransferPlan) -> str:
    """The trial's training paradigm, the ``paradigm`` column: ``ssl`` when a pretraining is self-supervised,
    else ``transfer`` (supervised pretraining); a trial without transfer is ``sl``."""
    tasks = get_registries().tasks
    return "ssl" if any(tasks.get(p.task).self_supervised for p in plan.pretrain) else "transfer"


def start_transfer(config: Mapping[str, Any], context: TrialContext, seed: int) -> Transferred:
    """Steps 1-4 of the module docstring: the model to fine-tune and the ``scratch.*``/``pretrain.*`` columns.

    With ``transfer.mode: linear_probe`` the stem and every stage are frozen (only the output layer trains).
    Raises Diverged when a pretraining diverges, UserError when the model cannot be transferred.
    """
    plan: TransferPlan = context.transfer
    active = context.space.active(hyperparameters(config))
    resolved = context.space.resolve(active)
    probe = resolved.params.get(MODE_PARAM, "finetune") == "linear_probe"
    frozen = int(resolved.params.get(FREEZE_PARAM, 0))
    fractions = tuple(fraction_param(p.name) for p in plan.pretrain)
    sources = []
    for index, pretrain in enumerate(plan.pretrain):
        source_context = pretrain_context(context, pretrain)
        fraction = float(resolved.params.get(fractions[index], 1.0))
        key = encoder_key(active, {**dataclasses.asdict(pretrain), "data_fraction": fraction}, fractions,
                          repeat_seed(context.seed, config)) if plan.cache and context.out_dir else ""
        first_seed = key_seed(key) if key else seed + SEED_STRIDE * index
        torch.manual_seed(first_seed)  # without the cache, the first: the from-scratch model's initial weights
        sources.append((build_trial(config, source_context, fraction=fraction), source_context, pretrain, key,
                        first_seed + 1))
    # the model contract always; the stage count only where freeze_stages applies (a probe freezes every stage)
    check_transferable(sources[0][0].model, sources[0][0].architecture, 0 if probe else frozen, len(sources))
    outputs = target_outputs(context)
    scratch = scratch_columns(config, context, seed) if plan.compare_scratch else {}
    done = Transferred(sources[0][0].model, {"paradigm": paradigm(plan), **scratch})
    for source, source_context, pretrain, key, pretrain_seed in sources:
        columns, samples = pretrained(source, source_context, pretrain, key, pretrain_seed, context.out_dir)
        done.columns.update(columns)
        done.samples += samples
        done.flops += TRAIN_FLOPS_PER_FORWARD * samples * setup_costs(source)["cost.flops"]
    models = [source.model for source, *_ in sources]
    torch.manual_seed(seed)  # the new output layer: the same whether the encoder was pretrained or loaded
    if len(models) == 1:
        done.model = models[0]
        done.model.reset_head(outputs)  # type: ignore[operator]
    else:
        done.model = fuse(models, outputs)
    freeze_stages(done.model, stage_count(models[0]) if probe else frozen)
    return done


def pretrained(source: TrialSetup, source_context: TrialContext, pretrain: PretrainPlan, key: str, seed: int,
               out_dir: str) -> tuple[dict[str, Any], int]:
    """Pretrain ``source.model`` in place, or load the run's stored encoder of ``key`` (``""``: no cache);
    its ``pretrain.*`` columns and the samples it was trained on (a loaded encoder's too: they are part of
    the model's training compute)."""
    if not key:
        return pretrain_columns(source, source_context, pretrain, seed)
    with encoder_lock(out_dir, key):
        stored = load_encoder(out_dir, key, source.model)
        if stored is None:
            columns, samples = pretrain_columns(source, source_context, pretrain, seed)
            stored = {**columns, SAMPLES_KEY: samples}
            save_encoder(out_dir, key, source.model, stored)
            cached = False
        else:
            cached = True
    samples = int(stored.pop(SAMPLES_KEY))
    return {**stored, f"{pretrain.prefix}key": key, f"{pretrain.prefix}cached": cached}, samples


def pretrain_columns(source: TrialSetup, source_context: TrialContext, pretrain: PretrainPlan,
                     seed: int) -> tuple[dict[str, Any], int]:
    """Pretrain ``source.model`` in place; the last epoch's validation scores (``val.loss`` included), the
    seconds it took, and the samples it saw (records times the task's ``forward_passes``, 2 for contrastive)."""
    generator = torch.Generator().manual_seed(seed)
    scorer = Scorer(source_context, source.task.kind, source.data.target_names)
    seconds, current, samples = 0.0, {}, 0
    for epoch in train_epochs(source, source_context, scorer, generator):
        seconds, current, samples = seconds + epoch.seconds, epoch.current, samples + epoch.seen
    log.info("pretrained %s (%s) for %d epochs: %s", source.architecture, pretrain.name or pretrain.task,
             pretrain.epochs, current)
    samples *= int(getattr(source.task, "forward_passes", 1))
    return {**{f"{pretrain.prefix}{k}": v for k, v in current.items()},
            f"{pretrain.prefix}train_seconds": seconds}, samples
