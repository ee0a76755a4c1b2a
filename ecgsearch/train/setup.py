"""A trial's built pieces: cached data, model, optimizer, schedule, task, augmentation and stepper."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ecgsearch.data.augment import Augmentation
from ecgsearch.data.cache import entry_dataset, open_dataset
from ecgsearch.data.source import EcgArrays
from ecgsearch.plugins import get_registries
from ecgsearch.space.model import AUGMENT_PREFIX
from ecgsearch.space.params import OPTIONAL_CHOICES
from ecgsearch.train.context import TrialContext, hyperparameters, input_samples
from ecgsearch.train.costs import model_costs
from ecgsearch.train.precision import Stepper, make_stepper, trial_device
from ecgsearch.train.schedules import Schedule, ScheduleRun, steps_per_epoch
from ecgsearch.train.tasks import attach_task, fit_task, use_task_data


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
    extras: torch.nn.Module | None = None  # the task's own modules (a decoder, a projection head), if any
    train_rows: np.ndarray | None = None  # the dataset rows of train_x (Batch.rows), when known

    @property
    def device(self) -> torch.device:
        return self.stepper.device if self.stepper is not None else torch.device("cpu")


def training_records(data: EcgArrays, fraction: float, seed: int) -> np.ndarray:
    """The training split's record indices, or the trial's ``data_fraction`` of them (the same subset for
    every trial of a run with that fraction)."""
    train_idx = data.indices("train")
    if fraction < 1.0:
        rng = np.random.default_rng([seed, 7])
        train_idx = np.sort(rng.choice(train_idx, max(1, round(fraction * len(train_idx))), replace=False))
    return train_idx


def build_trial(config: Mapping[str, Any], context: TrialContext, model: torch.nn.Module | None = None,
                fraction: float | None = None) -> TrialSetup:
    """Open the cached data and build model, optimizer, schedule and task from a sampled config.

    model: a model to train instead of a new one (a pretrained one, already re-headed for this task);
    only its parameters that require gradients are optimised. fraction: the share of the training split
    to train on (None: the trial's ``data_fraction``; a transfer's pretraining gives its own).
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
    # a self-supervised task's decoder or projection head
    extras = attach_task(task, model, leads, samples, data.signals.shape[2])
    if extras is not None:
        extras = extras.to(device)
    trainable = [p for p in model.parameters() if p.requires_grad] + \
        ([p for p in extras.parameters() if p.requires_grad] if extras is not None else [])
    optimizer = regs.optimizers.get(opt_name).create(trainable, **opt_params)

    fraction = float(resolved.params.get("data_fraction", 1.0)) if fraction is None else fraction
    train_idx = training_records(data, fraction, context.seed)
    use_task_data(task, data, train_idx, entry_dataset(Path(context.cache_entry)))  # before copying the records
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
                      augment, schedule, schedule_name, stepper, extras, train_idx)


def setup_costs(setup: TrialSetup) -> dict[str, int]:
    """The cost columns of the setup's model (the driver normally counts them when it samples the candidate)."""
    model = copy.deepcopy(setup.model).cpu() if setup.device.type != "cpu" else setup.model
    return model_costs(model, setup.data.signals.shape[1], setup.samples, setup.data.sampling_rate).columns()
