"""The backend of ``onnxruntime_backends.py`` (``OnnxRuntimeBackend``), imported when a backend is created:
listing the plugin or checking a space file needs only ``onnxruntime_backends.py``, which imports neither
torch nor ONNX Runtime (this module imports ONNX Runtime when a backend prepares a model).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from ecgsearch import LatencyBackend
from ecgsearch_plugins.backends._onnx import INPUT_NAME, export_onnx
from ecgsearch_plugins.backends.onnxruntime_backends import onnxruntime_backend

LEVELS = {"all": "ORT_ENABLE_ALL", "extended": "ORT_ENABLE_EXTENDED", "basic": "ORT_ENABLE_BASIC",
          "disabled": "ORT_DISABLE_ALL"}


MODEL_FILE = "model.onnx"


class OnnxRuntimeBackend(LatencyBackend):
    """An ``onnxruntime.InferenceSession`` on ``provider`` with the chosen graph optimisation level."""

    export_format = onnxruntime_backend.export_format  # named once, where the backend registers

    def __init__(self, provider: str, install_hint: str, **options: Any) -> None:
        super().__init__(**options)
        self.provider = provider
        self.install_hint = install_hint
        self.session: Any = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def available(self) -> tuple[bool, str]:
        usable, reason = super().available()
        if not usable:
            return usable, reason
        import onnxruntime

        providers = onnxruntime.get_available_providers()
        if self.provider not in providers:
            return False, (f"this ONNX Runtime has no {self.provider} (it has {', '.join(providers)}); "
                           f"{self.install_hint}")
        return True, ""

    def prepare(self, model: torch.nn.Module, example_input: torch.Tensor,
                calibration: Iterable[np.ndarray] | None = None) -> None:
        import onnxruntime

        self._dir = tempfile.TemporaryDirectory(prefix="ecgsearch-onnx-")
        path = export_onnx(model, example_input, Path(self._dir.name) / MODEL_FILE, self.dynamic_batch)
        session_options = onnxruntime.SessionOptions()
        session_options.graph_optimization_level = getattr(onnxruntime.GraphOptimizationLevel,
                                                           LEVELS[self.options.optimization])
        session_options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        session_options.log_severity_level = 3  # errors only: warnings about unused initialisers are noise
        if self.options.threads:
            session_options.intra_op_num_threads = self.options.threads
            session_options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), session_options, providers=[self.provider])
        self.example = example_input.cpu().float().numpy()

    def run(self, inputs: np.ndarray) -> np.ndarray:
        assert self.session is not None, "prepare() first"
        return self.session.run(None, {INPUT_NAME: np.ascontiguousarray(inputs, dtype=np.float32)})[0]

    def export(self, directory: Path) -> list[Path]:
        assert self._dir is not None, "prepare() first"
        directory.mkdir(parents=True, exist_ok=True)
        return [Path(shutil.copyfile(Path(self._dir.name) / MODEL_FILE, directory / MODEL_FILE))]
