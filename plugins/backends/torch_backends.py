"""PyTorch backends: eager or ``torch.compile``, on CPU, CUDA or Apple MPS, in inference mode.

One class, parameterised by device and compilation; the registered names are rows of ``VARIANTS``.
CUDA timings use CUDA events around the call, with the stream synchronised, so asynchronous kernel
launches are not mistaken for finished work; the input already lives on the device (transfers are
not timed). The class (``TorchBackend``) is in ``_torch_impl.py``, imported when a backend is created.
"""

from __future__ import annotations

import functools
from typing import Any

from ecgsearch import BackendInfo, hookimpl


def torch_backend(device: str, compile: bool = False, **options: Any) -> Any:
    """A ``TorchBackend`` on ``device``, eager or compiled."""
    from ecgsearch_plugins.backends._torch_impl import TorchBackend  # deferred: torch

    return TorchBackend(device, compile, **options)


# name, device, compile, description
VARIANTS: tuple[tuple[str, str, bool, str], ...] = (
    ("torch-cpu", "cpu", False, "PyTorch eager on the CPU (inference mode, thread count set)"),
    ("torch-compile-cpu", "cpu", True, "PyTorch with torch.compile (inductor) on the CPU"),
    ("torch-cuda", "cuda", False, "PyTorch eager on a CUDA GPU (timed with synchronised CUDA events)"),
    ("torch-mps", "mps", False, "PyTorch eager on Apple MPS"),
)


@hookimpl
def ecgsearch_register_backends() -> list[BackendInfo]:
    return [BackendInfo(name=name, description=description, device=device,
                        factory=functools.partial(torch_backend, device, compile))
            for name, device, compile, description in VARIANTS]
