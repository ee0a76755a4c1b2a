"""OpenVINO backends: ``openvino.convert_model`` on the ONNX export, compiled for CPU, GPU, NPU or AUTO.

One class, parameterised by the OpenVINO device; the registered names are rows of ``VARIANTS``.
Options: the performance hint (``latency`` or ``throughput``), the inference precision (``fp32``,
``fp16``, ``bf16``: ``INFERENCE_PRECISION_HINT``; a device without native fp16 may run bf16 instead and
the backend reports what it really used), and ``int8``: post-training quantisation with NNCF on
calibration batches from the dataset. The model is converted from the ONNX export shared with ONNX
Runtime (one export path; converting ONNX is several times faster than converting from PyTorch). The class
(``OpenVinoBackend``) is in ``_openvino_impl.py``, imported when a backend is created.
"""

from __future__ import annotations

import functools
from typing import Any

from ecgsearch import BackendInfo, hookimpl


def openvino_backend(device: str, **options: Any) -> Any:
    """An ``OpenVinoBackend`` on the OpenVINO ``device``."""
    from ecgsearch_plugins.backends._openvino_impl import OpenVinoBackend  # deferred: torch

    return OpenVinoBackend(device, **options)


# the format `ecgsearch export` writes with this backend, read without importing its class
openvino_backend.export_format = "openvino"  # type: ignore[attr-defined]


# name, OpenVINO device, ecgsearch device, description
VARIANTS: tuple[tuple[str, str, str, str], ...] = (
    ("openvino-cpu", "CPU", "cpu", "OpenVINO on the CPU (convert_model; latency/throughput hint; fp32/bf16/int8)"),
    ("openvino-gpu", "GPU", "gpu", "OpenVINO on an Intel GPU"),
    ("openvino-npu", "NPU", "npu", "OpenVINO on an Intel NPU"),
    ("openvino-auto", "AUTO", "auto", "OpenVINO AUTO device selection"),
)


@hookimpl
def ecgsearch_register_backends() -> list[BackendInfo]:
    return [BackendInfo(name=name, description=description, device=device,
                        factory=functools.partial(openvino_backend, ov_device),
                        requires=("openvino", "onnx"), install_hint="pip install openvino onnx")
            for name, ov_device, device, description in VARIANTS]
