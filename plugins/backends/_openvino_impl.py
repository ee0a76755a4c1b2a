"""The backend of ``openvino_backends.py`` (``OpenVinoBackend``), imported when a backend is created: listing
the plugin or checking a space file needs only ``openvino_backends.py``, which imports neither torch nor
OpenVINO (this module imports OpenVINO when a backend checks its device or prepares a model).
"""

from __future__ import annotations

import importlib.util
import logging
import tempfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from ecgsearch import LatencyBackend
from ecgsearch_plugins.backends._onnx import export_onnx
from ecgsearch_plugins.backends.openvino_backends import openvino_backend

PRECISION_HINTS = {"fp32": "f32", "fp16": "f16", "bf16": "bf16", "int8": "f32"}  # int8: the rest stays f32


MODEL_XML = "model.xml"


class OpenVinoBackend(LatencyBackend):
    """An OpenVINO compiled model on ``device`` (``CPU``, ``GPU``, ``NPU``, ``AUTO``), one infer request."""

    precisions = ("fp32", "fp16", "bf16", "int8")
    export_format = openvino_backend.export_format  # named once, where the backend registers

    def __init__(self, device: str, **options: Any) -> None:
        super().__init__(**options)
        self.device = device
        self.ov_model: Any = None
        self.compiled: Any = None
        self.request: Any = None

    def available(self) -> tuple[bool, str]:
        usable, reason = super().available()
        if not usable:
            return usable, reason
        if self.options.precision == "int8" and importlib.util.find_spec("nncf") is None:
            return False, "int8 needs NNCF for post-training quantisation (pip install nncf)"
        if self.device == "AUTO":
            return True, ""
        import openvino

        devices = openvino.Core().available_devices
        if not any(d.split(".")[0] == self.device for d in devices):
            return False, f"OpenVINO finds no {self.device} device here (it finds {', '.join(devices) or 'none'})"
        return True, ""

    def prepare(self, model: torch.nn.Module, example_input: torch.Tensor,
                calibration: Iterable[np.ndarray] | None = None) -> None:
        import openvino

        core = openvino.Core()
        with tempfile.TemporaryDirectory(prefix="ecgsearch-openvino-") as tmp:
            self.ov_model = openvino.convert_model(
                str(export_onnx(model, example_input, Path(tmp) / "model.onnx", self.dynamic_batch)))
            if self.options.precision == "int8":
                self.ov_model = quantize_int8(self.ov_model, calibration)
            # What is timed is what ``export`` writes, read back as a deployment reads it: compiling the
            # converted model in memory instead ran recurrent layers 3-17 times slower (docs/benchmarks.md).
            config: dict[str, Any] = {"PERFORMANCE_HINT": self.options.hint.upper(),
                                      "INFERENCE_PRECISION_HINT": PRECISION_HINTS[self.options.precision]}
            if self.options.threads and self.device == "CPU":
                config["INFERENCE_NUM_THREADS"] = self.options.threads
            self.compiled = core.compile_model(core.read_model(str(self.export(Path(tmp) / "ir")[0])),
                                               self.device, config)
        self.effective_precision = self._effective_precision()
        self.request = self.compiled.create_infer_request()
        self.example = example_input.cpu().float().numpy()

    def _effective_precision(self) -> str:
        if self.options.precision == "int8":
            return "int8"
        try:
            used = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        except Exception:  # AUTO and some devices do not report it
            return self.options.precision
        name = used.get_type_name() if hasattr(used, "get_type_name") else str(used).lower()
        return {"f32": "fp32", "f16": "fp16", "bf16": "bf16"}.get(name, name)

    def run(self, inputs: np.ndarray) -> np.ndarray:
        assert self.request is not None, "prepare() first"
        result = self.request.infer({0: np.ascontiguousarray(inputs, dtype=np.float32)})
        return np.array(result[0], copy=True)  # the request reuses its output buffer

    def export(self, directory: Path) -> list[Path]:
        import openvino

        assert self.ov_model is not None, "prepare() first"
        directory.mkdir(parents=True, exist_ok=True)
        xml = directory / MODEL_XML
        openvino.save_model(self.ov_model, str(xml), compress_to_fp16=False)
        return [xml, xml.with_suffix(".bin")]


def quantize_int8(ov_model: Any, calibration: Iterable[np.ndarray] | None) -> Any:
    """NNCF post-training quantisation on the calibration batches (fp32 arrays shaped like the input)."""
    batches = [np.ascontiguousarray(b, dtype=np.float32) for b in calibration or ()]
    if not batches:
        raise ValueError("int8 needs calibration batches from the dataset; none were given")
    import nncf

    logging.getLogger("nncf").setLevel(logging.WARNING)
    return nncf.quantize(ov_model, nncf.Dataset(batches), subset_size=len(batches))
