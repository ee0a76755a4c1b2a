"""Built-in learning-rate schedules: constant, cosine with linear warmup, exponential, one-cycle, plateau.

Each factory takes the optimizer, the trial's ``ScheduleRun`` and keyword-only hyperparameters (so a
misspelled key in a space file fails naming it) and returns an ``ecgsearch.train.schedules.Schedule``. The
optimizer's learning rate (the searched ``lr``) is the peak: warmup climbs to it, decays start from it,
one-cycle uses it as ``max_lr``. The factories import torch when called (listing the plugin or checking
a space file does not).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ecgsearch import (
    ScheduleInfo,
    bool_param,
    float_param,
    hookimpl,
    int_param,
    str_param,
)

if TYPE_CHECKING:  # annotations only
    import torch

    from ecgsearch import ScheduleRun


class Constant:
    """The learning rate never changes (what a space without ``schedule`` gets)."""

    per_step = False

    def step(self) -> None:
        pass

    def epoch_end(self, value: float | None) -> None:
        pass


class TorchSchedule:
    """A ``torch.optim.lr_scheduler`` driven per optimizer step or per epoch.

    A per-step schedule gives the learning rate of each of the trial's ``total_steps`` optimizer steps,
    so it advances ``total_steps - 1`` times and then holds (one-cycle raises past its end, and a trial
    may take one step more than planned when a last batch is not dropped as expected).
    """

    def __init__(self, scheduler: Any, per_step: bool, total_steps: int = 0, reads_metric: bool = False) -> None:
        self.scheduler = scheduler
        self.per_step = per_step
        self.total_steps = total_steps
        self.reads_metric = reads_metric
        self.taken = 0

    def step(self) -> None:
        if self.taken < self.total_steps - 1:
            self.scheduler.step()
            self.taken += 1

    def epoch_end(self, value: float | None) -> None:
        if self.per_step:
            return
        if not self.reads_metric:
            self.scheduler.step()
        elif value is not None and math.isfinite(value):  # an epoch without a score changes nothing
            self.scheduler.step(value)

    def lr(self) -> list[float]:
        return [group["lr"] for group in self.scheduler.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """The steps taken and the scheduler's state, so a resumed trial continues the same curve."""
        return {"taken": self.taken, "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.taken = int(state["taken"])
        self.scheduler.load_state_dict(state["scheduler"])


def _check(name: str, key: str, value: Any, low: float, high: float, low_open: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
        low < value <= high if low_open else low <= value <= high)
    if not ok:
        bound = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise ValueError(f"schedule {name}: {key}={value!r} must be a number in {bound}.")
    return float(value)


def build_constant(optimizer: torch.optim.Optimizer, run: ScheduleRun) -> Constant:
    """No schedule: the optimizer's learning rate for every step."""
    return Constant()


def cosine_factor(step: int, warmup: int, total: int, min_lr_ratio: float) -> float:
    """Linear warmup over ``warmup`` steps to 1, then a half cosine from 1 to ``min_lr_ratio`` at ``total``."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_cosine(optimizer: torch.optim.Optimizer, run: ScheduleRun, *, warmup_epochs: float = 0.0,
                 min_lr_ratio: float = 0.0) -> TorchSchedule:
    """Cosine decay to ``min_lr_ratio`` x lr over the trial, after ``warmup_epochs`` of linear warmup.

    ``warmup_epochs`` may be fractional (0.5 = half an epoch of steps) and must leave at least one
    epoch's worth of steps to decay over.
    """
    from torch.optim import lr_scheduler  # deferred: the plugin is listed without torch

    _check("cosine", "warmup_epochs", warmup_epochs, 0.0, math.inf)
    _check("cosine", "min_lr_ratio", min_lr_ratio, 0.0, 1.0)
    if warmup_epochs > max(0, run.epochs - 1):
        raise ValueError(f"schedule cosine: warmup_epochs={warmup_epochs!r} leaves no epoch to decay over in a "
                         f"trial of {run.epochs} epochs; use at most {max(0, run.epochs - 1)} warmup epochs.")
    warmup, total = round(warmup_epochs * run.steps_per_epoch), run.total_steps
    scheduler = lr_scheduler.LambdaLR(optimizer, lambda step: cosine_factor(step, warmup, total, min_lr_ratio))
    return TorchSchedule(scheduler, per_step=True, total_steps=total)


def build_exponential(optimizer: torch.optim.Optimizer, run: ScheduleRun, *, gamma: float = 0.9) -> TorchSchedule:
    """Multiply the learning rate by ``gamma`` after every epoch."""
    from torch.optim import lr_scheduler  # deferred: the plugin is listed without torch

    gamma = _check("exponential", "gamma", gamma, 0.0, 1.0, low_open=True)
    return TorchSchedule(lr_scheduler.ExponentialLR(optimizer, gamma=gamma), per_step=False)


def build_onecycle(optimizer: torch.optim.Optimizer, run: ScheduleRun, *, pct_start: float = 0.3,
                   div_factor: float = 25.0, final_div_factor: float = 1e4, anneal: str = "cos",
                   cycle_momentum: bool = False) -> TorchSchedule:
    """Smith's one-cycle policy: from lr/``div_factor`` up to lr over ``pct_start`` of the steps, then down
    to lr/(``div_factor`` x ``final_div_factor``).

    ``cycle_momentum`` (off by default) also cycles momentum/beta1 inversely, which turns plain SGD
    (momentum 0) into SGD with momentum, so it is opt-in.
    """
    from torch.optim import lr_scheduler  # deferred: the plugin is listed without torch

    _check("onecycle", "pct_start", pct_start, 0.0, 1.0, low_open=True)
    _check("onecycle", "div_factor", div_factor, 1.0, math.inf)
    _check("onecycle", "final_div_factor", final_div_factor, 1.0, math.inf)
    if anneal not in ("cos", "linear"):
        raise ValueError(f"schedule onecycle: anneal={anneal!r} must be 'cos' or 'linear'.")
    total = run.total_steps
    scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                                        total_steps=total, pct_start=pct_start, anneal_strategy=anneal,
                                        div_factor=div_factor, final_div_factor=final_div_factor,
                                        cycle_momentum=bool(cycle_momentum))
    return TorchSchedule(scheduler, per_step=True, total_steps=total)


def build_plateau(optimizer: torch.optim.Optimizer, run: ScheduleRun, *, factor: float = 0.5, patience: int = 1,
                  threshold: float = 1e-4, min_lr: float = 0.0) -> TorchSchedule:
    """Multiply the learning rate by ``factor`` when the validation metric has not improved (in the search
    metric's direction) for ``patience`` epochs."""
    from torch.optim import lr_scheduler  # deferred: the plugin is listed without torch

    _check("plateau", "factor", factor, 0.0, 1.0, low_open=True)
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
        raise ValueError(f"schedule plateau: patience={patience!r} must be an integer >= 0.")
    _check("plateau", "threshold", threshold, 0.0, math.inf)
    _check("plateau", "min_lr", min_lr, 0.0, math.inf)
    scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, mode=run.mode, factor=factor, patience=patience,
                                               threshold=threshold, min_lr=min_lr)
    return TorchSchedule(scheduler, per_step=False, reads_metric=True)


@hookimpl
def ecgsearch_register_schedules() -> list[ScheduleInfo]:
    return [
        ScheduleInfo(name="constant", description="constant learning rate (the default)", factory=build_constant),
        ScheduleInfo(name="cosine", description="linear warmup, then cosine decay to min_lr_ratio x lr (per step)",
                     factory=build_cosine,
                     default_space={"warmup_epochs": {"choice": [0, 1]}, "min_lr_ratio": 0.0},
                     params={"warmup_epochs": float_param(0, 1e4, doc="epochs of linear warmup"),
                             "min_lr_ratio": float_param(0, 1, doc="final lr / peak lr")}),
        ScheduleInfo(name="exponential", description="lr x gamma after every epoch", factory=build_exponential,
                     default_space={"gamma": {"uniform": [0.8, 0.99]}},
                     params={"gamma": float_param(0, 1, low_open=True, doc="lr factor per epoch")}),
        ScheduleInfo(name="onecycle", description="one-cycle policy peaking at lr (per step)",
                     factory=build_onecycle, default_space={"pct_start": {"choice": [0.2, 0.3]}},
                     params={"pct_start": float_param(0, 1, low_open=True, doc="share of steps rising to the peak"),
                             "div_factor": float_param(1, 1e6, doc="peak lr / initial lr"),
                             "final_div_factor": float_param(1, 1e9, doc="initial lr / final lr"),
                             "anneal": str_param("cos", "linear", doc="annealing shape"),
                             "cycle_momentum": bool_param("cycle the momentum inversely to the lr")}),
        ScheduleInfo(name="plateau", description="lr x factor when the validation metric stops improving",
                     factory=build_plateau,
                     default_space={"factor": {"choice": [0.1, 0.5]}, "patience": {"choice": [1, 2]}},
                     params={"factor": float_param(0, 1, low_open=True, doc="lr factor on a plateau"),
                             "patience": int_param(0, 1e4, doc="epochs without improvement before lowering"),
                             "threshold": float_param(0, 1e6, doc="smallest change that counts as improvement"),
                             "min_lr": float_param(0, 10, doc="the lr never goes below this")}),
    ]
