"""ONNX Runtime backends: the model exported with ``torch.onnx``, run by one execution provider.

One class, parameterised by the execution provider; the registered names are rows of ``VARIANTS``.
``onnxruntime`` is imported only when a backend is created, so listing plugins never imports it (nor torch:
the class, ``OnnxRuntimeBackend``, is in ``_onnxruntime_impl.py``). A
CUDA session is timed end to end (``session.run`` with host arrays: transfers included).
"""

from __future__ import annotations

import functools
from typing import Any

from ecgsearch import BackendInfo, hookimpl


def onnxruntime_backend(provider: str, install_hint: str, **options: Any) -> Any:
    """An ``OnnxRuntimeBackend`` on the execution ``provider``."""
    from ecgsearch_plugins.backends._onnxruntime_impl import OnnxRuntimeBackend  # deferred: torch

    return OnnxRuntimeBackend(provider, install_hint, **options)


# the format `ecgsearch export` writes with this backend, read without importing its class
onnxruntime_backend.export_format = "onnx"  # type: ignore[attr-defined]


# name, provider, device, install hint, description
VARIANTS: tuple[tuple[str, str, str, str, str], ...] = (
    ("onnxruntime-cpu", "CPUExecutionProvider", "cpu", "pip install onnxruntime",
     "ONNX Runtime, CPU execution provider (ONNX export via torch.onnx)"),
    ("onnxruntime-cuda", "CUDAExecutionProvider", "cuda", "pip install onnxruntime-gpu (in place of onnxruntime)",
     "ONNX Runtime, CUDA execution provider (ONNX export via torch.onnx)"),
)


@hookimpl
def ecgsearch_register_backends() -> list[BackendInfo]:
    return [BackendInfo(name=name, description=description, device=device,
                        factory=functools.partial(onnxruntime_backend, provider, hint),
                        requires=("onnxruntime", "onnx"), install_hint=hint.split(" (")[0] + " onnx")
            for name, provider, device, hint, description in VARIANTS]
