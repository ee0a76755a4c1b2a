"""Every architecture of the registry on the CPU backends, and every backend's availability contract.

Generated from the registries: a new architecture is measured on torch-cpu, onnxruntime-cpu and
openvino-cpu, and its ONNX Runtime and OpenVINO fp32 outputs must match PyTorch within 1e-3, as soon as
it is registered. GPU backends run where a GPU is usable and skip with their reason elsewhere.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_architectures import ARCHS, space_corners

from ecgsearch.infos import BackendInfo
from ecgsearch.latency.backend import BackendUnavailable, LatencyBackend, backend_status, create_backend
from ecgsearch.latency.options import BackendOptions, MeasureSettings
from ecgsearch.plugins import get_registries

pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py

REGS = get_registries()
BY_NAME = {a.name: a for a in ARCHS}  # the registered architectures and the configured ones (test_architectures)
CPU_BACKENDS = ("torch-cpu", "onnxruntime-cpu", "openvino-cpu")
GPU_BACKENDS = ("torch-cuda", "onnxruntime-cuda")
LEADS, SAMPLES, OUTPUTS = 12, 1100, 5  # resnet_code's default kernel needs >= 1089 samples
TOLERANCE = 1e-3
QUICK = MeasureSettings(time_budget_s=0.03, warmup_s=0.0, warmup_runs=1, min_repeats=3)


def small_model(name: str) -> torch.nn.Module:
    info = BY_NAME[name]
    torch.manual_seed(0)
    return info.create(LEADS, SAMPLES, OUTPUTS, **space_corners(dict(info.default_space))[0]).eval()


def example(batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, LEADS, SAMPLES, generator=torch.Generator().manual_seed(5))


def check_measured(backend: LatencyBackend, model: torch.nn.Module, x: torch.Tensor) -> float:
    backend.prepare(model, x)
    diff = backend.numerics_check(model, x.numpy())
    stats = backend.measure(QUICK)
    assert stats.repeats >= 3 and 0 < stats.p50_ms <= stats.p90_ms <= stats.p99_ms
    assert stats.throughput == pytest.approx(x.shape[0] / (stats.p50_ms / 1000))
    return diff


def test_the_built_in_backends_are_registered():
    expected = {"torch-cpu", "torch-compile-cpu", "torch-cuda", "torch-mps", "onnxruntime-cpu", "onnxruntime-cuda",
                "openvino-cpu", "openvino-gpu", "openvino-npu", "openvino-auto"}
    assert expected <= set(REGS.backends.names())
    for name in ("onnxruntime-cpu", "onnxruntime-cuda"):
        assert "onnxruntime" in REGS.backends.get(name).requires
    assert "openvino" in REGS.backends.get("openvino-cpu").requires


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("arch", [a.name for a in ARCHS])
def test_every_architecture_runs_on_the_cpu_backends(arch: str, backend: str):
    model = small_model(arch)
    diff = check_measured(create_backend(REGS.backends.get(backend), BackendOptions(threads=1)), model, example())
    assert diff <= TOLERANCE, f"{arch} on {backend}: outputs differ from PyTorch by {diff:.2e}"


@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_gpu_backends_measure_where_a_gpu_is_usable(backend: str):
    info = REGS.backends.get(backend)
    usable, reason = backend_status(info)
    if not usable:
        pytest.skip(f"{backend}: {reason}")
    diff = check_measured(create_backend(info, BackendOptions()), small_model("resnet_tiny"), example())
    assert diff <= TOLERANCE


def test_a_missing_package_is_reported_with_its_install_hint():
    info = BackendInfo(name="fancy-npu", description="x", factory=lambda **o: None,
                       requires=("no_such_runtime_pkg",), install_hint="pip install no-such-runtime")
    assert info.available() == (False, "needs the Python package 'no_such_runtime_pkg' (pip install no-such-runtime)")
    with pytest.raises(BackendUnavailable, match=r"^backend 'fancy-npu' is not usable here: needs the Python "
                                                 r"package 'no_such_runtime_pkg' \(pip install no-such-runtime\)$"):
        create_backend(info, BackendOptions())


def test_unsupported_precisions_and_devices_give_reasons():
    assert backend_status(REGS.backends.get("onnxruntime-cpu"), BackendOptions(precision="int8")) == (
        False, "precision 'int8' is not supported (supported: fp32)")
    usable, reason = backend_status(REGS.backends.get("openvino-npu"))
    if not usable:
        assert reason.startswith("OpenVINO finds no NPU device here")
    usable, reason = backend_status(REGS.backends.get("fault-unavailable"))
    assert (usable, reason) == (False, "injected fault: this backend is never available")


def test_openvino_reports_the_precision_it_really_ran():
    backend = create_backend(REGS.backends.get("openvino-cpu"), BackendOptions(threads=1, precision="bf16"))
    model = small_model("resnet_tiny")
    backend.prepare(model, example(1))
    assert backend.effective_precision in ("bf16", "fp32")  # fp32 where the CPU has no bf16 support
    assert backend.numerics_check(model, example(1).numpy()) < 0.5


def test_openvino_times_a_recurrent_model_as_its_export_runs():
    """Compiled straight from ``convert_model`` an LSTM ran as a step-by-step TensorIterator (3-17 times
    slower, docs/benchmarks.md); the exported IR, read back as a deployment reads it, runs one RNN sequence op."""
    pytest.importorskip("openvino")
    backend = create_backend(REGS.backends.get("openvino-cpu"), BackendOptions(threads=1))
    model = small_model("lstm")
    backend.prepare(model, example(1))
    graph = backend.compiled.get_runtime_model()
    layers = {op.get_rt_info()["layerType"].astype(str) for op in graph.get_ordered_ops()}
    assert "RNNSeq" in layers and "TensorIterator" not in layers, sorted(layers)
    assert backend.numerics_check(model, example(1).numpy()) < TOLERANCE


def test_openvino_int8_quantises_with_calibration_batches():
    backend = create_backend(REGS.backends.get("openvino-cpu"), BackendOptions(threads=1, precision="int8"))
    model = small_model("resnet_tiny")
    x = example(1)
    with pytest.raises(ValueError, match="int8 needs calibration batches"):
        backend.prepare(model, x)
    calibration = [np.random.default_rng(i).normal(size=x.shape).astype(np.float32) for i in range(8)]
    backend.prepare(model, x, calibration)
    assert backend.effective_precision == "int8"
    reference = np.abs(model(x).detach().numpy()).max()
    assert backend.numerics_check(model, x.numpy()) < max(0.2 * reference, 1e-2)  # close, not exact


def test_the_documented_backend_plugin_registers_and_measures(monkeypatch):
    import re
    import sys
    import types

    from conftest import ROOT

    from ecgsearch.plugins import build_registries, get_plugin_manager

    doc = (ROOT / "docs" / "latency.md").read_text()
    code = re.search(r"`ecgsearch_jit.py`:\n\n```python\n(.*?)```", doc, re.S).group(1)
    module = types.ModuleType("doc_jit_backend")
    exec(compile(code, "docs/latency.md", "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, "doc_jit_backend", module)
    monkeypatch.setenv("ECGSEARCH_PLUGINS", "doc_jit_backend")
    info = build_registries(get_plugin_manager()).backends.get("torchscript-cpu")
    model = small_model("resnet_tiny")
    assert check_measured(create_backend(info, BackendOptions(threads=1)), model, example()) <= TOLERANCE
