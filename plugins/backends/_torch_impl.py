"""The backend of ``torch_backends.py`` (``TorchBackend``), imported when a backend is created: listing the
plugin or checking a space file needs only ``torch_backends.py``, which imports no torch.
"""

from __future__ import annotations

import copy
import os
import shutil
import time
from typing import Iterable

import numpy as np
import torch

from ecgsearch import LatencyBackend

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class TorchBackend(LatencyBackend):
    """PyTorch on ``device`` (``cpu``, ``cuda``, ``mps``), eager or compiled, fp32/bf16/fp16."""

    precisions = ("fp32", "bf16", "fp16")

    def __init__(self, device: str, compile: bool = False, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.device = device
        self.compile = compile
        self.model: torch.nn.Module | None = None
        self._input: torch.Tensor | None = None

    def available(self) -> tuple[bool, str]:
        usable, reason = super().available()
        if not usable:
            return usable, reason
        if self.device == "cuda" and not torch.cuda.is_available():
            return False, "PyTorch sees no CUDA GPU here (torch.cuda.is_available() is False)"
        if self.device == "mps" and not torch.backends.mps.is_available():
            return False, "PyTorch sees no Apple MPS device here (torch.backends.mps.is_available() is False)"
        if self.compile and self.device == "cpu" and not _cxx_compiler():
            return False, "torch.compile on the CPU needs a C++ compiler (install g++ or set CXX)"
        return True, ""

    def prepare(self, model: torch.nn.Module, example_input: torch.Tensor,
                calibration: Iterable[np.ndarray] | None = None) -> None:
        if self.options.threads:
            torch.set_num_threads(self.options.threads)
        dtype = DTYPES[self.options.precision]
        self.model = copy.deepcopy(model).to(self.device, dtype).eval()
        if self.compile:
            self.model = torch.compile(self.model)
        self._input = example_input.to(self.device, dtype)
        self.example = example_input.cpu().float().numpy()
        with torch.inference_mode():  # compiles now, not inside the first timed call
            self.model(self._input)
        self._sync()

    def run(self, inputs: np.ndarray) -> np.ndarray:
        assert self.model is not None, "prepare() first"
        x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32)).to(self.device, DTYPES[self.options.precision])
        with torch.inference_mode():
            out = self.model(x)
        return out.float().cpu().numpy()

    def time_once(self) -> float:
        assert self.model is not None and self._input is not None, "prepare() first"
        with torch.inference_mode():
            if self.device == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                self.model(self._input)
                end.record()
                torch.cuda.synchronize()
                return start.elapsed_time(end) / 1000.0
            started = time.perf_counter()
            self.model(self._input)
            self._sync()
            return time.perf_counter() - started

    def _sync(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()
        elif self.device == "mps":
            torch.mps.synchronize()


def _cxx_compiler() -> str | None:
    """The compiler inductor would use: $CXX, else g++ or clang++ on the PATH."""
    candidates = [os.environ["CXX"]] if os.environ.get("CXX") else ["g++", "clang++"]
    return next((c for c in candidates if shutil.which(c)), None)
