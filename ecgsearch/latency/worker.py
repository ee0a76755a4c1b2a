"""The measuring process: ``python -m ecgsearch.latency.worker REQUEST.json EVENTS.jsonl``.

It rebuilds the model, then for each backend in turn: create, prepare, numerics check, measure, and
(when asked) the run metric of the backend's outputs. Every step's outcome is one JSON line, flushed at
once, so when a runtime takes the whole process down (a segfault in native code, an abort) the parent
still knows which backends finished and which one was running.

Events: ``{"event": "begin", "backend": B}``, ``{"event": "done", "backend": B, ...results}``,
``{"event": "error", "backend": B, "error": "one line"}``.
"""

from __future__ import annotations

import gc
import json
import logging
import sys
import time
from pathlib import Path
from typing import IO, Any, Mapping

import numpy as np
import torch

from ecgsearch.latency.backend import (
    BackendUnavailable,
    create_backend,
    reference_outputs,
)
from ecgsearch.latency.dataset_checks import calibration_batches, split_metric
from ecgsearch.latency.request import MeasureRequest, ModelRef
from ecgsearch.plugins import get_registries
from ecgsearch.results import load_weights
from ecgsearch.train.fusion import make_model

log = logging.getLogger(__name__)
INPUT_SEED = 1234


def build_model(ref: ModelRef, checkpoint: Mapping[str, Any] | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The model of ``ref`` in eval mode, with the weights of ``checkpoint`` (already loaded) or else of
    ``ref.checkpoint`` (loaded here), and the checkpoint's contents."""
    torch.manual_seed(ref.seed)
    model = make_model(get_registries().architectures.get(ref.architecture).create, ref.encoders, ref.leads,
                       ref.samples, ref.outputs, **dict(ref.params))
    loaded: dict[str, Any] = dict(checkpoint) if checkpoint is not None else {}
    if checkpoint is None and ref.checkpoint:
        loaded = load_weights(ref.checkpoint)  # data only: a checkpoint holding code is refused
    if loaded:
        model.load_state_dict(loaded["state_dict"])
    return model.eval(), loaded


def example_input(ref: ModelRef, batch_size: int) -> torch.Tensor:
    """A fixed pseudo-random batch: timings do not depend on the values, the numerics check compares them."""
    generator = torch.Generator().manual_seed(INPUT_SEED)
    return torch.randn(batch_size, ref.leads, ref.samples, generator=generator)


def _emit(out: IO[str], event: str, backend: str, **fields: Any) -> None:
    out.write(json.dumps({"event": event, "backend": backend, **fields}) + "\n")
    out.flush()


def measure_one(name: str, request: MeasureRequest, model: torch.nn.Module, example: torch.Tensor,
                calibration: list[np.ndarray] | None, thresholds: Any, reference_metric: float | None) -> dict[str, Any]:
    """Everything measured for one backend (raises when the backend cannot run or fails)."""
    backend = create_backend(get_registries().backends.get(name), request.options[name])
    started = time.perf_counter()
    backend.prepare(model, example, calibration)
    result: dict[str, Any] = {"prepare_s": time.perf_counter() - started}
    if request.numerics:
        result["max_abs_diff"] = backend.numerics_check(model, example.numpy())
    result["stats"] = backend.measure(request.settings).as_dict()
    result["precision"] = backend.effective_precision
    if request.data is not None and request.data.accuracy_split:
        result["metric"] = split_metric(backend.run, request.data, request.model, request.settings.batch_size,
                                        thresholds)
        result["reference_metric"] = reference_metric
    return result


def run_request(request: MeasureRequest, out: IO[str]) -> None:
    try:
        model, checkpoint = build_model(request.model)
        example = example_input(request.model, request.settings.batch_size)
        calibration = reference_metric = None
        if request.data is not None:
            if any(request.options[b].precision == "int8" for b in request.backends):
                calibration = calibration_batches(request.data, request.model, request.settings.batch_size)
            if request.data.accuracy_split:
                reference_metric = split_metric(lambda x: reference_outputs(model, x), request.data, request.model,
                                                request.settings.batch_size, checkpoint.get("thresholds"))
    except Exception as error:  # every backend shares the model: each gets the reason
        for name in request.backends:
            _emit(out, "error", name, error=f"the model could not be prepared: {type(error).__name__}: {error}")
        return
    for name in request.backends:
        _emit(out, "begin", name)
        try:
            result = measure_one(name, request, model, example, calibration, checkpoint.get("thresholds"),
                                 reference_metric)
        except BackendUnavailable as error:
            _emit(out, "error", name, error=str(error))
        except Exception as error:
            log.debug("backend %s failed", name, exc_info=True)
            _emit(out, "error", name, error=f"{type(error).__name__}: {error}".splitlines()[0][:500])
        else:
            _emit(out, "done", name, **result)
        gc.collect()


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    request = MeasureRequest.from_json(Path(argv[0]).read_text())
    with open(argv[1], "a", encoding="utf-8") as out:
        run_request(request, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
