"""Running a model on records: the rebuilt PyTorch model, or an exported file with the runtime its format
needs (ONNX Runtime for ``.onnx``, OpenVINO for IR ``.xml``/``.bin``), and the task's scores in batches.

``predict`` (from a run or from an export folder) and the model card's test intervals all score records
through ``batch_scores``, so every path crops and scores the same way.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from ecgsearch.data.augment import center_crop
from ecgsearch.errors import UserError
from ecgsearch.train.scoring import EVAL_BATCH

Forward = Callable[[np.ndarray], Any]  # a float32 batch (records, leads, samples) -> the model's raw outputs
RUNTIMES = {"onnx": ("onnxruntime", "pip install onnxruntime"), "openvino": ("openvino", "pip install openvino")}


def torch_forward(model: torch.nn.Module) -> Forward:
    """The PyTorch model's outputs, without gradients."""
    def forward(batch: np.ndarray) -> torch.Tensor:
        with torch.inference_mode():
            return model(torch.from_numpy(batch))
    return forward


def exported_forward(model_file: Path, fmt: str) -> Forward:
    """The outputs of an exported model file, run on the CPU by the runtime of ``fmt``."""
    module, install = RUNTIMES[fmt]
    try:
        runtime = importlib.import_module(module)  # only the format's own runtime is needed
    except ImportError:
        raise UserError(f"{model_file}: this {fmt} model needs {module} to run, and it is not installed; "
                        f"{install} (a dependency of ecgsearch: reinstall it).") from None
    if fmt == "onnx":
        session = runtime.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda batch: session.run(None, {name: batch})[0]
    # full precision: on CPUs with bf16 units (AMX, AVX512-BF16) OpenVINO would otherwise run in bf16 and the
    # scores would differ from the trained model's (by 2e-4 in the predict test on an AMX CPU)
    compiled = runtime.Core().compile_model(str(model_file), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return lambda batch: np.array(compiled(batch)[0], copy=True)


def batch_scores(forward: Forward, task: Any, signals: np.ndarray, samples: int,
                 rows: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(rows, scores)`` per batch of ``signals[rows]`` (all records by default), center-cropped to
    ``samples`` and turned into scores by ``task.scores`` (sigmoid probabilities for a multilabel task)."""
    rows = np.arange(len(signals)) if rows is None else np.asarray(rows)
    for start in range(0, len(rows), EVAL_BATCH):
        chosen = rows[start:start + EVAL_BATCH]
        batch = center_crop(torch.from_numpy(np.ascontiguousarray(signals[chosen], dtype=np.float32)), samples)
        outputs = forward(np.ascontiguousarray(batch.numpy()))
        yield chosen, task.scores(torch.as_tensor(outputs))
