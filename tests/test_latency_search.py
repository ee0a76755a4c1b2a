"""Latency in the search: the space file's section, the limit's checks, measuring each trial in a
separate process (a crashing backend is recorded, never a failed search), pruning, Pareto measuring."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from ecgsearch.engine import check_supported, prepare_data, run_search
from ecgsearch.engine.callbacks import result_row
from ecgsearch.errors import SpaceError, UserError
from ecgsearch.latency import plan as plan_module
from ecgsearch.latency.bench import BENCH_FILE, measure_after_search, merge_into_results
from ecgsearch.latency.options import BackendOptions
from ecgsearch.latency.plan import LatencyColumns, latency_plan, with_latency
from ecgsearch.results import read_results
from ecgsearch.space import LatencySpec, load_space, parse_space

DATA = "data: {dataset: synthetic, records: 120, sampling_rate: 50, seconds: 4, leads: [I, II, V1, V5]}"
SPACE = """space:
  architecture: {resnet_tiny: {channels: {choice: [8, 16]}, kernel: 3}}
  optimizer: {adamw: {lr: 1.0e-3}}
  batch_size: 16
"""


def space_text(latency: str, constraints: str = "", budget: str = "{trials: 2, epochs: 1, max_concurrent: 1}") -> str:
    return (f"name: latrun\nseed: 3\n{DATA}\ntask: multilabel\nresources: {{cpu: 1, gpu: 0}}\nbudget: {budget}\n"
            f"{constraints}\n{latency}\n{SPACE}")


def write(tmp_path: Path, text: str, name: str = "latrun") -> object:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return load_space(path)


_RUNS: dict[str, tuple] = {}  # one run per session, shared with test_bench_cli (which imports the fixture)


@pytest.fixture(scope="session")
def latency_run(tmp_path_factory, ray_session):
    """A real two-trial search measuring torch-cpu and a backend that segfaults, before each trial trains."""
    if "run" not in _RUNS:
        tmp = tmp_path_factory.mktemp("latency_run")
        spec = write(tmp, space_text("latency: {backends: [torch-cpu, fault-crash], time_budget_s: 0.05, "
                                     "threads: 1}"))
        run_search(spec, tmp / "run")
        _RUNS["run"] = (spec, tmp / "run")
    return _RUNS["run"]


def test_the_latency_section_parses_every_option():
    spec = parse_space(space_text("latency: {backends: [torch-cpu, openvino-cpu], batch_size: 4, threads: 2, "
                                  "measure: pareto, precision: {openvino-cpu: int8}, hint: throughput, "
                                  "time_budget_s: 0.5, predictor: xgboost}"))
    assert spec.latency == LatencySpec(("torch-cpu", "openvino-cpu"), 4, 2, "pareto", {"openvino-cpu": "int8"},
                                       "throughput", 0.5, "xgboost")
    plan = latency_plan(spec)
    assert plan.options["openvino-cpu"] == BackendOptions(threads=2, precision="int8", hint="throughput")
    assert plan.options["torch-cpu"].precision == "fp32" and plan.settings.batch_size == 4


@pytest.mark.parametrize("latency, message", [
    ("latency: {backends: [torch-cpu, torch-gpu]}",
     "latency.backends: 'torch-gpu' is not a registered backend"),
    ("latency: {backends: [torch-cpu], measure: sometimes}",
     "latency.measure: 'sometimes' is not a latency measuring mode (allowed: all, pareto, best)"),
    ("latency: {backends: [torch-cpu], precision: fp8}",
     "latency.precision: 'fp8' is not a precision (allowed: fp32, fp16, bf16, int8)"),
    ("latency: {backends: [torch-cpu], precision: {openvino-cpu: int8}}",
     "latency.precision.openvino-cpu: 'openvino-cpu' is not one of latency.backends (allowed: torch-cpu)"),
    ("latency: {backends: [torch-cpu], hint: fast}",
     "latency.hint: 'fast' is not a performance hint (allowed: latency, throughput)"),
    ("latency: {backends: [torch-cpu], time_budget_s: 0}", "latency.time_budget_s: 0 is not a number > 0"),
    ("latency: {backends: [torch-cpu], predictor: forest}",
     "latency.predictor: 'forest' is not a registered surrogate"),
])
def test_bad_latency_sections_name_the_key(latency: str, message: str):
    with pytest.raises(SpaceError) as info:
        parse_space(space_text(latency), source="x.yaml")
    assert message in str(info.value)


@pytest.mark.parametrize("latency, constraints, message", [
    ("", "constraints: {max_latency_ms: 5}",
     "constraints.max_latency_ms: a latency limit needs a latency section naming the backend to measure "
     "(e.g. latency: {backends: [onnxruntime-cpu]}); add one or remove max_latency_ms."),
    ("latency: {backends: [torch-cpu], measure: best}", "constraints: {max_latency_ms: 5}",
     "constraints.max_latency_ms: a latency limit needs every candidate measured, but latency.measure is 'best'; "
     "set latency.measure: all or remove max_latency_ms."),
    ("latency: {backends: [fault-unavailable, torch-cpu]}", "constraints: {max_latency_ms: 5}",
     "latency.backends: max_latency_ms is checked on the first backend, 'fault-unavailable', which is not usable "
     "here (injected fault: this backend is never available); list a usable backend first."),
])
def test_a_limit_that_cannot_be_enforced_is_refused(tmp_path, latency: str, constraints: str, message: str):
    spec = write(tmp_path, space_text(latency, constraints))
    with pytest.raises(UserError) as info:
        check_supported(spec)
    assert str(info.value) == f"{tmp_path / 'latrun.yaml'}: {message}"


def test_an_unusable_backend_without_a_limit_only_warns(tmp_path, caplog):
    spec = write(tmp_path, space_text("latency: {backends: [torch-cpu, fault-unavailable]}"))
    check_supported(spec)
    assert "backend 'fault-unavailable' is not usable here: injected fault" in caplog.text


@pytest.mark.ray
def test_every_trial_is_measured_and_a_crashing_backend_is_recorded(latency_run):
    _, run = latency_run
    frame = read_results(run)
    assert len(frame) == 2 and set(frame["status"]) == {"ok"}
    assert (frame["latency.torch-cpu.p50_ms"] > 0).all() and frame["latency.torch-cpu.error"].isna().all()
    assert (frame["latency.torch-cpu.p90_ms"] >= frame["latency.torch-cpu.p50_ms"]).all()
    assert (frame["latency.torch-cpu.max_abs_diff"] == 0).all()
    assert frame["latency.fault-crash.error"].str.startswith(
        "the measuring process was killed by SIGSEGV while measuring it").all()
    latency_columns = [c for c in frame.columns if c.startswith("latency.")]
    assert latency_columns == sorted(latency_columns)  # the contract's order
    assert list(frame.columns).index(latency_columns[0]) > list(frame.columns).index("cost.flops")


def test_a_candidate_over_the_limit_is_pruned_before_training(tmp_path, monkeypatch):
    spec = write(tmp_path, space_text("latency: {backends: [torch-cpu]}", "constraints: {max_latency_ms: 2}"))
    context = type("Context", (), {"latency": latency_plan(spec), "mode": "max", "space": spec.space})()
    measured = {"latency.torch-cpu.p50_ms": 3.5, "latency.torch-cpu.error": None}
    config = spec.space.sample(0, 0)  # the trial's architecture decides whether there is a network to measure
    monkeypatch.setattr(plan_module, "trial_latency", lambda config, context: measured)
    reports: list[dict] = []
    trained: list[str] = []

    def run(config, context, report):
        trained.append(config["_trial_id"])
        report({"status": "ok", "val.macro_auroc": 0.7})

    with_latency(run)({**config, "_trial_id": "t0000"}, context, reports.append)
    assert trained == [] and len(reports) == 1
    assert reports[0]["status"] == "pruned" and reports[0]["error"] == "latency.torch-cpu.p50_ms 3.5 > max_latency_ms 2"
    row = result_row({"_trial_id": "t0000", "architecture": "resnet_tiny", "optimizer": "adamw"}, reports[0])
    assert row["status"] == "pruned" and row["latency.torch-cpu.p50_ms"] == 3.5 and row["epochs"] == 0

    measured["latency.torch-cpu.p50_ms"] = 1.5  # within the limit: trained, and every report has the columns
    with_latency(run)({**config, "_trial_id": "t0001"}, context, reports.append)
    assert trained == ["t0001"] and reports[-1]["latency.torch-cpu.p50_ms"] == 1.5


def test_latency_columns_pass_the_checkpointing_reporters_calls_through():
    calls = []

    class Reporter:
        watchdog = "pet me"

        def __call__(self, metrics):
            calls.append(("report", metrics))

        def epoch_end(self, metrics, state):
            calls.append(("epoch_end", metrics, state))

    wrapped = LatencyColumns(Reporter(), {"latency.x.p50_ms": 1.0})
    wrapped.epoch_end({"loss": 1}, "state")
    wrapped({"loss": 2})
    assert calls == [("epoch_end", {"loss": 1, "latency.x.p50_ms": 1.0}, "state"),
                     ("report", {"loss": 2, "latency.x.p50_ms": 1.0})]
    assert wrapped.watchdog == "pet me"


def test_measured_columns_merge_into_the_results(tmp_path):
    pd.DataFrame({"trial_id": ["t0000", "t0001"], "status": ["ok", "ok"], "cost.flops": [1.0, 2.0]}).to_parquet(
        tmp_path / "results.parquet", index=False)
    merged = merge_into_results(tmp_path, pd.DataFrame({"trial_id": ["t0001"], "latency.a.p50_ms": [0.5],
                                                        "latency.a.error": [None]}))
    again = read_results(tmp_path)
    assert list(again["trial_id"]) == ["t0000", "t0001"] and list(again.columns) == list(merged.columns)
    assert pd.isna(again.loc[0, "latency.a.p50_ms"]) and again.loc[1, "latency.a.p50_ms"] == 0.5


@pytest.mark.ray
def test_measure_pareto_measures_the_front_after_the_search(latency_run, tmp_path):
    spec, run = latency_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    frame = read_results(copy)
    frame = frame[[c for c in frame.columns if not c.startswith("latency.")]]
    frame.to_parquet(copy / "results.parquet", index=False)
    pareto = replace(spec, latency=replace(spec.latency, measure="pareto", backends=("onnxruntime-cpu",)))
    measured = measure_after_search(pareto, copy, prepare_data(pareto))
    from ecgsearch.analysis.pareto import pareto_front

    front = set(pareto_front(frame[frame["status"] == "ok"], spec.metric, spec.mode)["trial_id"])
    assert set(measured["trial_id"]) == front
    results = read_results(copy)
    on_front = results["trial_id"].isin(front)
    assert (results.loc[on_front, "latency.onnxruntime-cpu.p50_ms"] > 0).all()
    assert results.loc[~on_front, "latency.onnxruntime-cpu.p50_ms"].isna().all()
    assert (copy / BENCH_FILE).is_file()
