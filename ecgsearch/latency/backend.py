"""The contract of a latency backend plugin, and the checks around creating one.

A backend plugin registers ``BackendInfo(name, factory=..., device=..., requires=(...))``; the factory
takes the ``BackendOptions`` fields as keyword arguments and returns a ``LatencyBackend``:

``available() -> (bool, reason)``
    whether it can run here (a device, a compiler, a supported precision); the package check of
    ``BackendInfo.requires`` happens before the factory is even imported.
``prepare(model, example_input, calibration=None)``
    export / convert / compile the model once for inputs shaped like ``example_input``.
``run(inputs) -> outputs``
    one inference on a NumPy batch (what the numerics check and the accuracy check call).
``time_once() -> seconds``
    one timed inference on the prepared example (CUDA backends override it with synchronised events).
``measure(settings) -> LatencyStats``
    the shared adaptive loop (``latency.stats.measure_latency``) around ``time_once``.
``numerics_check(model, inputs) -> float``
    the largest absolute difference between ``run(inputs)`` and PyTorch's fp32 output.
"""

from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Iterable

import numpy as np
import torch

from ecgsearch.infos import BackendInfo
from ecgsearch.latency.options import BackendOptions, MeasureSettings
from ecgsearch.latency.stats import LatencyStats, measure_latency


class BackendUnavailable(Exception):
    """The backend cannot run here; ``str(error)`` names it and says why, ``reason`` only says why."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"backend '{name}' is not usable here: {reason}")
        self.reason = reason


class LatencyBackend(ABC):
    """Base class of backend plugins: options, the shared measuring loop and the numerics check.

    precisions: the precisions this runtime can run (``available`` refuses the others).
    export_format: the deployable format ``export`` writes (``onnx``, ``openvino``) or None.
    dynamic_batch: set before ``prepare`` to keep the batch dimension free (``ecgsearch export`` does);
        measuring uses the fixed batch of the example, which lets runtimes plan for that shape.
    """

    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    export_format: ClassVar[str | None] = None

    def __init__(self, threads: int | None = None, precision: str = "fp32", hint: str = "latency",
                 optimization: str = "all") -> None:
        self.options = BackendOptions(threads=threads, precision=precision, hint=hint, optimization=optimization)
        self.effective_precision = precision  # what the runtime really used (some fall back)
        self.example: np.ndarray | None = None
        self.dynamic_batch = False

    def available(self) -> tuple[bool, str]:
        if self.options.precision not in self.precisions:
            return False, (f"precision '{self.options.precision}' is not supported "
                           f"(supported: {', '.join(self.precisions)})")
        return True, ""

    @abstractmethod
    def prepare(self, model: torch.nn.Module, example_input: torch.Tensor,
                calibration: Iterable[np.ndarray] | None = None) -> None:
        """Export/convert/compile ``model`` for inputs shaped like ``example_input``; keep the example."""

    @abstractmethod
    def run(self, inputs: np.ndarray) -> np.ndarray:
        """The model's outputs for one float32 batch shaped like the prepared example."""

    def time_once(self) -> float:
        """Seconds of one inference on the prepared example."""
        assert self.example is not None, "prepare() first"
        started = time.perf_counter()
        self.run(self.example)
        return time.perf_counter() - started

    def measure(self, settings: MeasureSettings) -> LatencyStats:
        """The shared adaptive loop around ``time_once``; throughput counts the prepared batch."""
        assert self.example is not None, "prepare() first"
        return measure_latency(self.time_once, dataclasses.replace(settings, batch_size=len(self.example)))

    def numerics_check(self, model: torch.nn.Module, inputs: np.ndarray) -> float:
        """Max absolute difference of this backend's outputs from PyTorch eager fp32 on the CPU."""
        reference = reference_outputs(model, inputs)
        outputs = np.asarray(self.run(inputs), dtype=np.float64)
        if outputs.shape != reference.shape:
            raise ValueError(f"output shape {outputs.shape} differs from PyTorch's {reference.shape}")
        return float(np.max(np.abs(outputs - reference))) if outputs.size else 0.0

    def export(self, directory: Path) -> list[Path]:
        """Write the prepared model as a deployable file set into ``directory``; returns the files."""
        raise NotImplementedError(f"{type(self).__name__} does not export a deployable model")


def reference_outputs(model: torch.nn.Module, inputs: np.ndarray) -> np.ndarray:
    """PyTorch's fp32 eager outputs on the CPU: the reference every backend is compared with."""
    model = model.to("cpu", torch.float32).eval()
    with torch.inference_mode():
        return model(torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))).double().numpy()


def create_backend(info: BackendInfo, options: BackendOptions) -> LatencyBackend:
    """The backend instance; ``BackendUnavailable`` says why it cannot run here (package, device...)."""
    usable, reason = info.available()  # the packages of ``requires``, before importing the factory
    if usable:
        backend = info.create(**options.as_kwargs())
        usable, reason = backend.available()
    if not usable:
        raise BackendUnavailable(info.name, reason)
    return backend


def backend_status(info: BackendInfo, options: BackendOptions | None = None) -> tuple[bool, str]:
    """``(usable, reason)`` without preparing anything (``ecgsearch plugins`` and the CLI use it)."""
    try:
        create_backend(info, options or BackendOptions())
    except BackendUnavailable as error:
        return False, error.reason
    except Exception as error:  # a broken plugin factory is reported, never raised
        return False, f"it failed to start: {type(error).__name__}: {error}"
    return True, ""


def as_numpy(values: Any) -> np.ndarray:
    """Outputs of any runtime as a float32 NumPy array."""
    if isinstance(values, torch.Tensor):
        return values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=np.float32)
