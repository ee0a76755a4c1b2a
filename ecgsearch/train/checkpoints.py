"""Trial checkpoints, and the one safe way ecgsearch reads any weights file.

A trial that is retried (``budget.max_failures``) or resumed after the driver died must continue from
where it stopped, not from epoch 1: every ``budget.checkpoint_every`` epochs the trial's whole resumable
state (model, optimizer and every other stateful part of the trial, the batch-order generator, the
running best, the last report) is saved as data only and handed to Ray Tune, which stores it with the
experiment. A checkpoint is only ever read with ``torch.load(weights_only=True)``: a file holding any
pickled object other than tensors and plain data is refused with one sentence, never executed.

The trial loop (``ecgsearch.train.trial``) knows nothing of Tune: it calls ``resume_point`` once and
``report_epoch`` after each epoch; both fall back to a plain ``report(metrics)`` when the reporter does
not checkpoint (tests, benchmarks).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from ecgsearch.errors import UserError
from ecgsearch.results.folder import load_weights

log = logging.getLogger(__name__)

STATE_FILE = "trial_state.pt"
STATE_FORMAT = 1


def plain(value: Any) -> Any:
    """``value`` with numpy scalars/arrays turned into Python numbers/lists, so weights_only can read it."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


_PLAIN = (torch.Tensor, np.ndarray, str, bytes, int, float, bool, list, tuple, dict, type(None))


def stateful_parts(setup: Any, prefix: str = "", depth: int = 2) -> dict[str, Any]:
    """The parts of a trial setup that carry training state, by dotted attribute name.

    Anything with ``state_dict``/``load_state_dict`` counts (model, optimizer, a torch LR scheduler, a
    grad scaler), found up to ``depth`` attributes deep (``schedule.scheduler``, ``stepper.scaler``), so
    a new stateful part of the trial loop is checkpointed without changing this module.
    """
    parts: dict[str, Any] = {}
    for name, part in getattr(setup, "__dict__", {}).items():
        if isinstance(part, _PLAIN) or isinstance(part, type):
            continue
        if callable(getattr(part, "state_dict", None)) and callable(getattr(part, "load_state_dict", None)):
            parts[prefix + name] = part
        elif depth > 1:
            parts.update(stateful_parts(part, f"{prefix}{name}.", depth - 1))
    return parts


@dataclass
class EpochState:
    """What the trial loop hands over after an epoch: everything needed to continue after it."""

    setup: Any
    generator: torch.Generator
    epoch: int
    best: Mapping[str, Any]
    train_seconds: float
    last: Mapping[str, Any]
    config: Mapping[str, Any] = field(default_factory=dict)  # the hyperparameters the state was trained with
    trial_id: str = ""  # the trial that trained it


@dataclass(frozen=True)
class Resumed:
    """Where a restored trial continues: its next epoch and the running values of the trial loop."""

    epoch: int  # the last finished epoch
    best: dict[str, Any]
    train_seconds: float
    last: dict[str, Any]
    trial_id: str = ""  # the trial whose state this is (another one's, when population-based training cloned it)

    @property
    def next_epoch(self) -> int:
        return self.epoch + 1


def save_state(state: EpochState, directory: str | Path) -> Path:
    """Write ``directory/trial_state.pt`` (tensors and plain data only) and return its path."""
    path = Path(directory) / STATE_FILE
    payload = {
        "format": STATE_FORMAT,
        "epoch": int(state.epoch),
        "parts": {name: sd for name, part in stateful_parts(state.setup).items() if (sd := part.state_dict())},
        "generator": state.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "best": plain(state.best),
        "train_seconds": float(state.train_seconds),
        "last": plain(state.last),
        "config": plain(state.config),
        "trial_id": state.trial_id,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def restore_state(path: str | Path, setup: Any, generator: torch.Generator,
                  config: Mapping[str, Any] | None = None) -> Resumed:
    """Load a ``save_state`` file into ``setup`` and ``generator`` (refusing anything but data).

    With ``config`` (the trial's hyperparameters now), optimizer settings that differ from those the
    state was trained with are applied on top of it (``retune``): population-based training continues a
    better trial's state with perturbed learning rates and weight decays."""
    payload = load_weights(path)
    if not isinstance(payload, dict) or payload.get("format") != STATE_FORMAT:
        raise UserError(f"{path}: not an ecgsearch trial checkpoint (format {STATE_FORMAT}); "
                        "delete it to start the trial afresh.")
    parts = stateful_parts(setup)
    missing = sorted(set(payload["parts"]) - set(parts))
    if missing:
        raise UserError(f"{path}: the checkpoint holds {', '.join(missing)}, which this trial does not have; "
                        "it was written by another version of the trial loop; delete it to start afresh.")
    for name, state_dict in payload["parts"].items():
        parts[name].load_state_dict(state_dict)
    generator.set_state(payload["generator"])
    torch.set_rng_state(payload["torch_rng"])
    if config is not None and payload.get("config"):
        retune(setup, payload["config"], plain(config))
    best = {k: (math.nan if v is None else v) if k.startswith(("val.", "test.")) else v
            for k, v in payload["best"].items()}
    return Resumed(epoch=int(payload["epoch"]), best=best, train_seconds=float(payload["train_seconds"]),
                   last=dict(payload["last"]), trial_id=str(payload.get("trial_id", "")))


LR_KEYS = ("lr", "initial_lr", "max_lr", "min_lr")  # a param group's learning rates, as torch schedules keep them


def retune(setup: Any, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Apply the optimizer settings of ``new`` that differ from ``old`` to a restored trial; returns them.

    A new learning rate scales the restored one (and the schedule's base rates) by ``new / old``, so a
    schedule part-way through keeps its shape; any other optimizer setting (``weight_decay``,
    ``momentum``) is set in every parameter group. Settings outside the optimizer (augmentation
    strengths) were built from ``new`` already and hold no state.
    """
    optimizer = getattr(setup, "optimizer", None)
    prefix = f"optimizer.{new.get('optimizer')}."
    changed = [key for key, value in new.items() if key.startswith(prefix) and old.get(key) != value]
    for key in changed:
        name, value, before = key[len(prefix):], new[key], old.get(key)
        if name == "lr" and before:
            ratio = float(value) / float(before)
            for group in optimizer.param_groups:
                for lr in LR_KEYS:
                    if isinstance(group.get(lr), (int, float)):
                        group[lr] *= ratio
            for part in stateful_parts(setup).values():
                for holder in (part, getattr(part, "scheduler", None)):
                    if isinstance(getattr(holder, "base_lrs", None), list):
                        holder.base_lrs = [base * ratio for base in holder.base_lrs]
        else:
            for group in optimizer.param_groups:
                if name in group:
                    group[name] = value
    if changed:
        log.info("continuing a trained state with changed optimizer settings: %s", ", ".join(changed))
    return changed


def resume_point(report: Callable[..., Any], setup: Any, generator: torch.Generator,
                 config: Mapping[str, Any] | None = None) -> Resumed | None:
    """The state a retried or resumed trial continues from, if its reporter holds a checkpoint."""
    restore = getattr(report, "restore", None)
    return restore(setup, generator, config) if callable(restore) else None


def report_epoch(report: Callable[..., Any], metrics: dict[str, Any], state: EpochState) -> None:
    """Report an epoch; a checkpointing reporter also receives the state to save with it."""
    epoch_end = getattr(report, "epoch_end", None)
    if callable(epoch_end):
        epoch_end(metrics, state)
    else:
        report(metrics)
