"""The kernel-level latency predictor: a model cut into the kernels a runtime fuses, each kernel timed once
per backend in a cached table (real ONNX Runtime and OpenVINO, tiny models), the learned correction and
its measured error, and the screen that uses that error to decide what to measure."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from ecgsearch.errors import SpaceError, UserError
from ecgsearch.latency.kernel_predictor import KernelPredictor, KernelSum, fit_correction, kernel_sum
from ecgsearch.latency.kernel_table import KernelRunner, KernelTable, KernelTiming, boundary_reorders, kernel_runner
from ecgsearch.latency.kernels import fusion_groups, fusion_rules, model_graph, model_kernels
from ecgsearch.latency.options import KERNEL_PREDICTOR, BackendOptions, MeasureSettings
from ecgsearch.latency.plan import LatencyPlan, check_latency, latency_plan
from ecgsearch.latency.screen import LatencyScreen, cost_key, screen_decision
from ecgsearch.results import RESULTS_FILE, read_results
from ecgsearch.space import parse_space
from ecgsearch.train.costs import Costs

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

ORT = "onnxruntime-cpu"
FAST = MeasureSettings(time_budget_s=0.01, warmup_s=0.0, warmup_runs=1, min_repeats=3, rel_tolerance=0.5)
OPTIONS = BackendOptions(threads=1)


class Block(nn.Module):
    """conv -> BatchNorm -> ReLU with a residual add: one fused kernel in a graph runtime."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(width, width, 3, padding=1)
        self.norm = nn.BatchNorm1d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.conv(x))) + x


def tiny(width: int = 8, blocks: int = 2, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv1d(2, width, 5, padding=2), *[Block(width) for _ in range(blocks)],
                         nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(width, 3)).eval()


EXAMPLE = torch.randn(1, 2, 64, generator=torch.Generator().manual_seed(0))


def test_the_graph_is_cut_where_the_runtimes_fuse():
    groups = fusion_groups(model_graph(tiny(), EXAMPLE).graph)
    ops = [tuple(n.op_type for n in g) for g in groups]
    assert ops[0] == ("Conv",)  # the stem; BatchNorm was folded into the convolutions
    assert ops[1] == ops[2] == ("Conv", "Relu", "Add")  # conv + activation + residual: one kernel per block
    assert all("BatchNormalization" not in o for g in ops for o in g)
    assert sum(len(g) for g in groups) == len(model_graph(tiny(), EXAMPLE).graph.node)


def test_the_kernels_run_in_order_reproduce_the_model():
    import onnxruntime  # deferred: heavy dependency

    model = tiny()
    tensors = {"ecg": EXAMPLE.numpy()}
    for kernel in model_kernels(model, EXAMPLE):
        session = onnxruntime.InferenceSession(kernel.onnx, providers=["CPUExecutionProvider"])
        outputs = session.run(None, {i.name: tensors[i.name] for i in session.get_inputs()})
        tensors.update({o.name: v for o, v in zip(session.get_outputs(), outputs)})
    with torch.inference_mode():
        expected = model(EXAMPLE).numpy()
    np.testing.assert_allclose(tensors["outputs"], expected, atol=1e-5)


def test_identical_layers_share_a_signature_whatever_their_weights():
    first, second = model_kernels(tiny(seed=0), EXAMPLE), model_kernels(tiny(seed=1, blocks=3), EXAMPLE)
    assert first[1].signature == first[2].signature == second[3].signature  # same block, other weights
    wider = model_kernels(tiny(width=16), EXAMPLE)
    assert wider[1].signature != first[1].signature  # another shape is another kernel
    longer = model_kernels(tiny(), torch.randn(1, 2, 128))
    assert longer[1].signature != first[1].signature  # another input length too
    assert [k.kind for k in first][:3] == ["conv", "conv", "conv"] and first[1].label == "Conv+Relu+Add"


@pytest.mark.parametrize("backend", [ORT, "openvino-cpu"])
def test_the_kernel_table_measures_each_kernel_once_and_caches_it(tmp_path, backend):
    if backend == "openvino-cpu":
        pytest.importorskip("openvino")
    # wide and long enough that a convolution clearly outlasts the runtime's per-call overhead, which is
    # subtracted from each kernel (a width-8 conv on 64 samples can time under a one-Relu call on a busy machine)
    kernels = model_kernels(tiny(width=32), torch.randn(1, 2, 4096, generator=torch.Generator().manual_seed(0)))
    table = KernelTable(backend, OPTIONS, cache_dir=tmp_path, settings=FAST)
    timings = table.times(kernels)
    assert table.log.measured == len(kernels) - 1  # the two identical blocks are one kernel
    assert table.log.reused == 1 and all(t.p50_ms > 0 and t.repeats >= 3 for t in timings)
    assert table.overhead_ms > 0
    assert table.path.name.startswith(f"{backend}_") and table.path.name.endswith("_fp32_t1_latency_all_b1.json")
    again = KernelTable(backend, OPTIONS, cache_dir=tmp_path, settings=FAST)  # another process, later
    assert again.times(kernels) == timings and again.log.measured == 0 and again.log.reused == len(kernels)
    total = kernel_sum(kernels, timings, table.overhead_ms)
    assert total.kernels == len(kernels) and total.class_ms[0] > 0  # convolutions take time
    assert math.isclose(total.total_ms, table.overhead_ms + sum(total.class_ms))


class ScriptedRunner(KernelRunner):
    """A runner on which a kernel's calls take ``seconds[r]`` the r-th time it is loaded (one value per pass)."""

    backend = ORT

    def __init__(self, seconds: list[float]) -> None:
        super().__init__(OPTIONS)
        self.seconds, self.loads = seconds, Counter()

    def version(self) -> str:
        return "scripted"

    def load(self, model: bytes) -> Callable[[], float]:
        value = self.seconds[self.loads[model] % len(self.seconds)]
        self.loads[model] += 1
        return lambda: value


def test_each_kernel_is_measured_in_passes_spread_over_the_build_and_their_median_kept(tmp_path):
    kernels = model_kernels(tiny(), EXAMPLE)
    distinct = len({k.signature for k in kernels})
    runner = ScriptedRunner([1e-3, 5e-3, 2e-3])  # a machine slow in the second pass
    table = KernelTable(ORT, OPTIONS, cache_dir=tmp_path, settings=FAST, runner=runner, rounds=3)
    timings = table.times(kernels)
    assert sorted(runner.loads.values()) == [3] * distinct  # every missing kernel once per pass
    assert all(math.isclose(t.p50_ms, 2.0) and math.isclose(t.min_ms, 1.0) for t in timings)  # median pass
    assert KernelTable(ORT, OPTIONS, cache_dir=tmp_path, runner=ScriptedRunner([1.0])).times(kernels) == timings


def test_openvino_kernels_are_timed_without_their_boundary_layout_conversions():
    openvino = pytest.importorskip("openvino")
    kernel = model_kernels(tiny(width=32), torch.randn(1, 2, 4096, generator=torch.Generator().manual_seed(0)))[1]
    core = openvino.Core()
    compiled = core.compile_model(core.read_model(kernel.onnx, b""), "CPU", {"PERF_COUNT": True,
                                                                            "INFERENCE_NUM_THREADS": 1})
    boundary = boundary_reorders(compiled.get_runtime_model())
    assert boundary  # a convolution in a blocked layout: its input and output are converted
    request = compiled.create_infer_request()
    request.infer({k: np.zeros(tuple(p.get_shape()), np.float32) for k, p in enumerate(compiled.inputs)})
    executed = {node.node_name for node in request.profiling_info if node.node_type == "Reorder"}
    assert boundary <= executed  # the names match the profile's, so their time is subtracted
    time_once = kernel_runner("openvino-cpu", OPTIONS).load(kernel.onnx)
    assert all(time_once() > 0 for _ in range(5))


class Branches(nn.Module):
    """Two convolutions joined by a Concat (an Inception module in miniature)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv1d(2, 4, 3, padding=1), nn.Conv1d(2, 4, 5, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.a(x), self.b(x)], dim=1)


def test_the_sum_counts_the_concat_ops_the_correction_weighs():
    kernels = model_kernels(Branches().eval(), EXAMPLE)
    timings = [KernelTiming(0.5, 0.4, 10, k.label) for k in kernels]
    assert kernel_sum(kernels, timings, 0.01).concats == 1
    plain = model_kernels(tiny(), EXAMPLE)
    assert kernel_sum(plain, timings[:1] * len(plain), 0.01).concats == 0


def test_the_sum_counts_the_weights_the_kernels_read():
    """Each kernel's weights (its ONNX initializers, fp32) in megabytes: the two convolutions' weights and
    biases, (2 x 4 x 3 + 4) + (2 x 4 x 5 + 4) floats, and nothing for the Concat."""
    kernels = model_kernels(Branches().eval(), EXAMPLE)
    timings = [KernelTiming(0.5, 0.4, 10, k.label) for k in kernels]
    assert sum(k.weight_bytes for k in kernels) == (28 + 44) * 4
    assert kernel_sum(kernels, timings, 0.01).weight_mb == pytest.approx((28 + 44) * 4 / 1e6)


def test_a_backend_without_kernel_runner_is_refused_in_one_sentence(tmp_path):
    with pytest.raises(UserError, match="no kernel runner for backend 'torch-cpu'"):
        kernel_runner("torch-cpu", OPTIONS)
    with pytest.raises(UserError, match="cannot measure precision 'int8'"):
        kernel_runner(ORT, BackendOptions(precision="int8"))
    broken = tmp_path / KernelTable(ORT, OPTIONS, cache_dir=tmp_path).file_name()
    broken.write_text("{not json")
    with pytest.raises(UserError, match="the kernel table cannot be read"):
        KernelTable(ORT, OPTIONS, cache_dir=tmp_path)


def synthetic_sums(n: int, seed: int) -> tuple[list[KernelSum], np.ndarray]:
    """Sums whose true latency is a known correction of them (with 1% noise): each Concat saves 0.05 ms, each
    megabyte of weights costs 0.2 ms."""
    rng = np.random.default_rng(seed)
    sums = [KernelSum(int(k), 0.02, tuple(rng.uniform(0, 5, 4) * [1, 1, 0.1, 0.3]), float(rng.uniform(0, 2)),
                      int(rng.integers(0, 6)), float(rng.uniform(0, 5))) for k in rng.integers(3, 40, n)]
    truth = np.array([0.35 + 0.7 * s.class_ms[0] + 1.2 * s.class_ms[1] + s.class_ms[2] + 2 * s.class_ms[3]
                      + 0.01 * s.kernels - 0.05 * s.concats + 0.2 * s.weight_mb for s in sums])
    return sums, truth * np.exp(rng.normal(0, 0.01, n))


def test_the_correction_is_learned_and_its_error_measured():
    sums, measured = synthetic_sums(40, seed=0)
    predictor = KernelPredictor(ORT)
    assert np.allclose(predictor.predict(sums[:3]), [s.total_ms for s in sums[:3]])  # unfitted: the plain sum
    assert predictor.error_band == math.inf
    predictor.fit(sums, measured)
    assert np.all(predictor.coefficients[:5] >= 0) and predictor.within() >= 0.9  # constant, classes
    assert predictor.coefficients[-2] == pytest.approx(-0.05, abs=0.01)  # a signed term: learned below zero
    assert predictor.coefficients[-1] == pytest.approx(0.2, abs=0.02)  # the weights' megabytes
    assert 0 < predictor.error_band < 0.05  # the cross-validated error: 1% noise
    unseen, truth = synthetic_sums(20, seed=1)
    assert np.all(np.abs(predictor.predict(unseen) / truth - 1) < 0.1)
    assert fit_correction(sums, measured).shape == (len(sums[0].design_row()),)
    with pytest.raises(ValueError, match="needs >= 4 measured models"):
        predictor.fit(sums[:3], measured[:3])


def test_the_error_band_decides_what_is_measured():
    assert screen_decision(12.0, 10.0, 0.1) == "reject"  # over the limit by more than the band
    assert screen_decision(10.9, 10.0, 0.1) == "measure"  # within the band above the limit
    assert screen_decision(9.2, 10.0, 0.1) == "measure"  # within the band below it
    assert screen_decision(9.0, 10.0, 0.1) == "accept"
    assert screen_decision(9.9, 10.0, 0.0) == "accept" and screen_decision(9.0, 10.0, 0.5) == "measure"


def widths_model(config):
    return tiny(width=int(config["width"])), EXAMPLE


def test_the_kernel_screen_calibrates_on_measured_trials_then_screens(tmp_path):
    limit = 1.0
    plan = LatencyPlan(backends=(ORT,), options={ORT: OPTIONS}, settings=MeasureSettings(), max_latency_ms=limit,
                       predictor=KERNEL_PREDICTOR)
    predictor = KernelPredictor(ORT, table=KernelTable(ORT, OPTIONS, cache_dir=tmp_path / "k", settings=FAST))
    screen = LatencyScreen(plan, tmp_path, models=widths_model, kernel_predictor=predictor)
    rows = []
    for width in range(4, 14):  # ten candidates, each tried and then measured (here: twice its plain sum)
        config, costs = {"architecture": "tiny", "width": width}, Costs(params=width, macs=width, flops=width)
        assert screen(config, costs) == []  # nothing measured yet: nothing screened
        measured = 2 * screen.sums[cost_key("tiny", costs.columns())].total_ms
        rows.append({"trial_id": f"t{width}", "architecture": "tiny", **costs.columns(),
                     f"latency.{ORT}.p50_ms": measured})
    pd.DataFrame(rows).assign(status="ok").to_parquet(tmp_path / RESULTS_FILE, index=False)
    fitted = screen.fitted()
    # an exact correction exists (2x every term); the inputs are nearly collinear across ten widths, so the
    # cross-validated band is small but not zero (it depends on the kernels' timings)
    assert fitted is not None and fitted.models == 10 and fitted.band < 0.25
    plain = screen.sums[cost_key("tiny", Costs(params=13, macs=13, flops=13).columns())].total_ms
    plan = LatencyPlan(backends=(ORT,), options={ORT: OPTIONS}, settings=MeasureSettings(),
                       max_latency_ms=plain, predictor=KERNEL_PREDICTOR)  # width 13 runs in 2x the limit
    screen.plan = plan
    reasons = screen({"architecture": "tiny", "width": 13}, Costs(params=13, macs=13, flops=13))
    assert len(reasons) == 1 and "by more than the predictor's error band" in reasons[0]
    wide = {"architecture": "tiny", "width": 40}
    screen(wide, Costs(params=40, macs=40, flops=40))  # a new network: its kernels are measured first
    assert cost_key("tiny", Costs(params=40, macs=40, flops=40).columns()) in screen.sums
    assert screen.decisions["reject"] >= 1


def test_the_space_file_selects_the_kernel_predictor():
    base = {"data": {"dataset": "synthetic"}, "task": "multilabel", "budget": {"trials": 2, "epochs": 1},
            "space": {"architecture": {"resnet_tiny": {"default": True}}, "optimizer": "adamw"}}
    spec = parse_space({**base, "latency": {"backends": [ORT], "predictor": "kernel"}})
    assert spec.latency.predictor == KERNEL_PREDICTOR
    with pytest.raises(SpaceError, match="'kernels' is not a registered surrogate"):
        parse_space({**base, "latency": {"backends": [ORT], "predictor": "kernels"}})


def test_a_kernel_limit_on_a_backend_without_kernels_is_refused():
    base = {"data": {"dataset": "synthetic"}, "task": "multilabel", "budget": {"trials": 2, "epochs": 1},
            "space": {"architecture": {"resnet_tiny": {"default": True}}, "optimizer": "adamw"},
            "constraints": {"max_latency_ms": 5}}
    spec = parse_space({**base, "latency": {"backends": ["torch-cpu"], "predictor": "kernel"}})
    with pytest.raises(UserError, match="the kernel-level predictor measures kernels on onnxruntime-cpu"):
        check_latency(spec, latency_plan(spec))


def test_the_screen_reads_the_table_when_it_changes_and_sees_rows_in_the_row_log(tmp_path, monkeypatch):
    """A new candidate never measured changes nothing (no re-read, no refit: the kernel screen used to read
    results.parquet again for each one); a trial that ends goes to the row log beside the table, and the
    screen sees it there (the table file itself is unchanged until it is folded)."""
    import ecgsearch.latency.screen as screen_module
    from ecgsearch.results import RESULTS_LOG, ResultsTable

    reads = []
    monkeypatch.setattr(screen_module, "read_results", lambda path: reads.append(path) or read_results(path))
    plan = LatencyPlan(backends=(ORT,), options={ORT: OPTIONS}, settings=MeasureSettings(), max_latency_ms=1e3,
                       predictor=KERNEL_PREDICTOR)
    predictor = KernelPredictor(ORT, table=KernelTable(ORT, OPTIONS, cache_dir=tmp_path / "k", settings=FAST))
    screen = LatencyScreen(plan, tmp_path, models=widths_model, kernel_predictor=predictor)

    def row(width: int) -> dict:
        costs = Costs(params=width, macs=width, flops=width).columns()
        measured = 2 * screen.sums[cost_key("tiny", costs)].total_ms
        return {"trial_id": f"t{width:04d}", "status": "ok", "architecture": "tiny", **costs,
                f"latency.{ORT}.p50_ms": measured}

    for width in range(4, 12):  # MIN_MEASURED (8) measured trials, and some never measured, in the table
        screen({"architecture": "tiny", "width": width}, Costs(params=width, macs=width, flops=width))
    unmeasured = [{"trial_id": f"u{i:04d}", "status": "ok", "architecture": "tiny"} for i in range(15)]
    pd.DataFrame([row(w) for w in range(4, 12)] + unmeasured).to_parquet(tmp_path / RESULTS_FILE, index=False)
    fitted = screen.fitted()
    assert fitted is not None and fitted.models == 8 and len(reads) == 1
    for width in range(20, 25):  # new candidates, never measured
        screen({"architecture": "tiny", "width": width}, Costs(params=width, macs=width, flops=width))
    assert len(reads) == 1 and screen.fitted() is fitted  # neither read again nor refitted
    before = (tmp_path / RESULTS_FILE).read_bytes()
    ResultsTable(tmp_path).append(row(20))  # one of them ends and is measured: one line in the row log
    # the table's bytes are unchanged (append only touches its mtime, for watchers)
    assert (tmp_path / RESULTS_LOG).exists() and (tmp_path / RESULTS_FILE).read_bytes() == before
    assert screen.fitted().models == 9 and len(reads) == 2


class Attention(nn.Module):
    """Self-attention over the time steps of a convolution's output (a transformer block in miniature)."""

    def __init__(self, width: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, width, 4, stride=4)
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.conv(x).transpose(1, 2)
        return self.attention(tokens, tokens, tokens, need_weights=False)[0].mean(dim=1)


def test_openvino_runs_attention_as_one_kernel_and_the_cut_follows_it():
    model = Attention().eval()
    plain = [k.ops for k in model_kernels(model, EXAMPLE)]  # ONNX Runtime: the two products apart
    fused = model_kernels(model, EXAMPLE, fusion_rules("openvino-cpu"))
    assert any(ops[:2] == ("MatMul", "Softmax") and "MatMul" not in ops[2:] for ops in plain)
    joined = [k for k in fused if k.ops[:3] == ("MatMul", "Softmax", "MatMul")]
    assert len(joined) == 1 and len(fused) == len(plain) - 1
    assert KernelPredictor("openvino-cpu").rules.attention and not KernelPredictor(ORT).rules.attention
    tensors = {"ecg": EXAMPLE.numpy()}  # the joined kernels still compute the model, in order
    import onnxruntime  # deferred: heavy dependency

    for kernel in fused:
        session = onnxruntime.InferenceSession(kernel.onnx, providers=["CPUExecutionProvider"])
        outputs = session.run(None, {i.name: tensors[i.name] for i in session.get_inputs()})
        tensors.update({o.name: v for o, v in zip(session.get_outputs(), outputs)})
    with torch.inference_mode():
        np.testing.assert_allclose(tensors["outputs"], model(EXAMPLE).numpy(), atol=1e-5)
    openvino = pytest.importorskip("openvino")
    core = openvino.Core()
    compiled = core.compile_model(core.read_model(joined[0].onnx, b""), "CPU", {"INFERENCE_NUM_THREADS": 1})
    layers = [str(op.get_rt_info()["layerType"].astype(str)) for op in compiled.get_runtime_model().get_ordered_ops()]
    assert "Softmax" not in layers, layers  # OpenVINO fused the products and the Softmax into one node
