"""A trial's trained model, rebuilt from a run folder: the one place predict, export and notebooks get it.

The checkpoint (``OUT/trials/<id>/best.pt``) holds the sampled configuration, the weights and the
validation thresholds; the run's space file resolves the configuration to the architecture's factory
arguments, and the run's dataset gives the input shape (leads, and the length after ``crop_fraction``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ecgsearch.data.cache import open_dataset
from ecgsearch.data.prepare import prepare_data
from ecgsearch.data.source import EcgArrays
from ecgsearch.latency.plan import model_ref_for
from ecgsearch.latency.request import ModelRef
from ecgsearch.latency.worker import build_model
from ecgsearch.plugins import get_registries
from ecgsearch.results import RunFolder
from ecgsearch.train.tasks import restore_task


@dataclass(frozen=True)
class TrainedModel:
    """A trial's model in eval mode with its weights; ``ref`` says what it takes and gives (leads, samples,
    outputs) and is the recipe the latency worker rebuilds it from; ``targets`` names what each output
    stands for (a class code, a regression target), in order."""

    trial_id: str
    model: torch.nn.Module
    task: Any  # the run's task for the model's targets (``scores`` turns outputs into scores)
    ref: ModelRef
    thresholds: list[float] | None
    targets: list[str]


def trained_model(run: RunFolder, trial_id: str, data: EcgArrays) -> TrainedModel:
    """Trial ``trial_id`` of ``run`` with its best weights; ``data`` gives the input shape (the run's dataset,
    or new records read the same way). The outputs are the targets the model was trained on, whatever
    ``data``'s targets are."""
    spec = run.spec
    checkpoint = run.load_checkpoint(trial_id)
    targets = checkpoint.get("targets") or _training_targets(run)
    ref = model_ref_for(checkpoint["config"], spec.space, data, spec.task.name, spec.task.params,
                        checkpoint=str(run.checkpoint_path(trial_id)), num_targets=len(targets),
                        encoders=spec.encoders)
    model, _ = build_model(ref, checkpoint)
    task = get_registries().tasks.get(spec.task.name).create(len(targets), **dict(spec.task.params))
    restore_task(task, checkpoint.get("task_state"))  # a regression's scores in bpm and ms again
    return TrainedModel(trial_id=trial_id, model=model, task=task, ref=ref, thresholds=checkpoint.get("thresholds"),
                        targets=list(targets))


def _training_targets(run: RunFolder) -> list[str]:
    """The target names of the run's own dataset (checkpoints written before they carried their targets)."""
    spec = run.spec
    return list(open_dataset(prepare_data(spec.data, f"{spec.path}: data")).target_names)
