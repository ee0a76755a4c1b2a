"""Measuring in a separate process: a backend that crashes, raises, hangs or is unavailable gives a
recorded reason, and the backends around it are still measured.

The fault-injection backends come from tests/fixtures/ecg_test_backends.py (registered by
ecg_test_plugins, which reaches the measuring process through ECGSEARCH_PLUGINS).
"""

from __future__ import annotations

import io
import json

from ecgsearch.latency.options import BackendOptions, MeasureSettings
from ecgsearch.latency.request import MeasureRequest, ModelRef
from ecgsearch.latency.runner import measure_isolated
from ecgsearch.latency.worker import run_request

MODEL = ModelRef("resnet_tiny", {"channels": 8, "kernel": 3}, leads=4, samples=200, outputs=3)
QUICK = MeasureSettings(time_budget_s=0.05, warmup_s=0.0, min_repeats=3)


def request(*backends: str, model: ModelRef = MODEL) -> MeasureRequest:
    return MeasureRequest(model, backends, {b: BackendOptions(threads=1) for b in backends}, QUICK)


def test_faults_are_recorded_and_the_other_backends_still_measured():
    backends = ("torch-cpu", "fault-raise", "fault-unavailable", "fault-crash", "onnxruntime-cpu", "fault-hang")
    results = measure_isolated(request(*backends), backend_timeout_s=3)
    assert list(results) == list(backends)
    for name in ("torch-cpu", "onnxruntime-cpu"):  # before the crash, and in the new process after it
        assert results[name].ok and results[name].stats.p50_ms > 0, results[name].error
        assert results[name].max_abs_diff <= 1e-3
    assert results["fault-raise"].error == "RuntimeError: injected fault: prepare raises"
    assert results["fault-unavailable"].error == (
        "backend 'fault-unavailable' is not usable here: injected fault: this backend is never available")
    assert results["fault-crash"].error.startswith("the measuring process was killed by SIGSEGV while measuring it")
    assert results["fault-hang"].error == "timed out after 3 s while measuring it"

    columns = {}
    for result in results.values():
        columns.update(result.columns())
    assert columns["latency.fault-crash.error"] == results["fault-crash"].error
    assert columns["latency.torch-cpu.error"] is None and columns["latency.torch-cpu.p50_ms"] > 0
    assert "latency.fault-crash.p50_ms" not in columns


def test_a_model_that_cannot_be_built_is_every_backends_reason():
    broken = ModelRef("resnet_tiny", {"channels": 0}, leads=4, samples=200, outputs=3)
    out = io.StringIO()
    run_request(request("torch-cpu", "onnxruntime-cpu", model=broken), out)  # the worker's loop, in-process
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(e["event"], e["backend"]) for e in events] == [("error", "torch-cpu"), ("error", "onnxruntime-cpu")]
    for event in events:
        assert event["error"].startswith("the model could not be prepared: ValueError:"), event["error"]
        assert "channels=0" in event["error"]


def test_requests_travel_as_json():
    original = request("torch-cpu", "openvino-cpu")
    assert MeasureRequest.from_json(original.to_json()) == original
