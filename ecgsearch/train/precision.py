"""Where and how a trial takes its optimizer steps: the device, mixed precision and gradient clipping.

``fp32`` with clipping off is the plain ``backward(); step()``: the training loop pays nothing for
these options unless a trial asks for them. ``bf16`` autocasts on CUDA and on the CPU; ``fp16`` is
CUDA-only and scales the loss (``GradScaler``) so small gradients do not underflow. Losses are
computed in float32 by the tasks either way.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterable

import torch

from ecgsearch.errors import UserError
from ecgsearch.space.model import TRAIN_PRECISIONS as PRECISIONS

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def trial_device(gpu: float) -> torch.device:
    """CUDA when the trial reserved a GPU (``resources.gpu > 0``), else the CPU."""
    if gpu <= 0:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UserError(f"resources.gpu is {gpu:g} but this trial's worker sees no CUDA GPU; set resources.gpu "
                        "to 0 to train on the CPU, or run on a machine whose PyTorch has CUDA.")
    return torch.device("cuda")


@dataclass
class Stepper:
    """Autocast context and optimizer step for one trial."""

    device: torch.device
    precision: str
    grad_clip: float
    parameters: list[torch.nn.Parameter]
    scaler: Any = None  # torch.amp.GradScaler for fp16

    def autocast(self) -> Any:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=_DTYPES[self.precision])

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backward, optional clipping of the global gradient norm, optimizer step."""
        if self.scaler is None:
            loss.backward()
            if self.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.parameters, self.grad_clip)
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        if self.grad_clip > 0:
            self.scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            torch.nn.utils.clip_grad_norm_(self.parameters, self.grad_clip)
        self.scaler.step(optimizer)  # skipped when the scaled gradients overflowed
        self.scaler.update()


def make_stepper(precision: str, grad_clip: float, device: torch.device,
                 parameters: Iterable[torch.nn.Parameter]) -> Stepper:
    """A ``Stepper``; fp16 without CUDA is refused in one sentence (bf16 works on the CPU)."""
    if precision not in PRECISIONS:
        raise UserError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}; pick one of them.")
    if precision == "fp16" and device.type != "cuda":
        raise UserError("precision fp16 needs a CUDA GPU but this trial trains on the CPU; use bf16 or fp32 on "
                        "the CPU, or reserve a GPU with resources.gpu.")
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    return Stepper(device, precision, float(grad_clip), list(parameters), scaler)
