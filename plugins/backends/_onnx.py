"""The one ONNX export both ONNX Runtime and OpenVINO start from (and ``ecgsearch export`` writes)."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch

OPSET = 17  # LayerNormalization is a single op from opset 17 on
INPUT_NAME = "ecg"
OUTPUT_NAME = "outputs"


def export_onnx(model: torch.nn.Module, example_input: torch.Tensor, path: Path, dynamic_batch: bool = False) -> Path:
    """Write ``model`` as ONNX (TorchScript exporter), fp32, batch fixed unless ``dynamic_batch``.

    A fixed batch lets the runtimes plan memory and pick kernels for the measured shape; the deployable
    export (``ecgsearch export``) keeps the batch dimension free.
    """
    model = copy.deepcopy(model).to("cpu", torch.float32).eval()
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes are not the user's concern
        torch.onnx.export(model, (example_input.to("cpu", torch.float32),), str(path), dynamo=False,
                          opset_version=OPSET, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes=axes)
    return path
