"""GPU use beyond placing the model: the training set kept on the GPU, and ``torch.compile``.

ECG models are small: a trial often cannot keep a GPU busy, which is why ``resources.gpu`` takes
fractions (``gpu: 0.25`` packs four trials on one GPU; Ray assigns them, and each sees its GPU as
``cuda:0``). The trial loop already moves the model and each batch to the device and applies the
``precision`` trial parameter (autocast). Two more switches of the ``resources`` section:

- ``data_on_gpu``: copy the trial's training arrays to the GPU once, so batches are sliced there
  instead of copied from host memory every step. ``auto`` (the default) does it when the training set
  takes at most ``DATA_ON_GPU_SHARE`` of the trial's share of GPU memory; ``true`` always, ``false``
  never. Without a GPU it does nothing.
- ``compile``: ``torch.compile`` the model in place (``nn.Module.compile``: the state dict keeps its
  names, so checkpoints and ``predict`` are unaffected). Compilation costs tens of seconds per trial,
  worth it only for long trials.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

log = logging.getLogger(__name__)

DATA_ON_GPU_SHARE = 0.25  # auto: at most this fraction of the trial's share of GPU memory


def data_on_gpu(train_bytes: int, device: torch.device, setting: bool | None, gpu_share: float) -> bool:
    """Whether the training arrays go to the GPU: the setting, or (auto) when they fit comfortably."""
    if device.type != "cuda" or setting is False:
        return False
    if setting is True:
        return True
    total = torch.cuda.get_device_properties(device).total_memory
    share = min(max(gpu_share, 0.0), 1.0) or 1.0
    return train_bytes <= DATA_ON_GPU_SHARE * share * total


def accelerate(setup: Any, runtime: Any, gpu_share: float) -> None:
    """Apply ``data_on_gpu`` and ``compile`` to a built trial (model already on its device)."""
    if runtime is None:
        return
    device = getattr(setup, "device", torch.device("cpu"))
    train_bytes = setup.train_x.element_size() * setup.train_x.nelement()
    if data_on_gpu(train_bytes, device, runtime.data_on_gpu, gpu_share):
        setup.train_x = setup.train_x.to(device)
        setup.train_y = setup.train_y.to(device)
        log.info("training set on %s (%.1f MB)", device, train_bytes / 1e6)
    if runtime.compile:
        setup.model.compile()  # in place: parameter names (and so checkpoints) are unchanged
