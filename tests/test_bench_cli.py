"""``ecgsearch bench`` and ``ecgsearch export`` on a real run: tables, files, numerics, bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_latency_search import latency_run  # noqa: F401  (the session's measured run)

from ecgsearch.cli import main
from ecgsearch.results import read_results

pytestmark = pytest.mark.ray
QUICK = ["--time-budget", "0.05", "--threads", "1"]


def test_bench_measures_the_best_trial_and_reports_int8_accuracy(latency_run, capsys):  # noqa: F811
    spec, run = latency_run
    code = main(["bench", str(run), "--trials", "best", "--backend", "torch-cpu", "--backend", "openvino-cpu",
                 "--precision", "openvino-cpu=int8", "--accuracy", "--json", *QUICK])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    frame = pd.read_parquet(run / "bench.parquet")
    results = read_results(run)
    best = results.sort_values(f"val.{spec.metric}", ascending=False).iloc[0]["trial_id"]
    assert list(frame["trial_id"]) == [best] and out["rows"][0]["trial_id"] == best
    row = frame.iloc[0]
    assert row["latency.torch-cpu.p50_ms"] > 0 and row["latency.openvino-cpu.p50_ms"] > 0
    assert row["latency.openvino-cpu.precision"] == "int8"
    # accuracy after quantisation, next to the PyTorch model's on the same split
    metric = f"val.{spec.metric}"
    assert 0 <= row[f"latency.openvino-cpu.{metric}"] <= 1
    assert row[f"reference.{metric}"] == pytest.approx(row[f"latency.torch-cpu.{metric}"], abs=1e-6)
    assert row[f"reference.{metric}"] == pytest.approx(best_value(results, best, metric), abs=1e-6)


def best_value(results: pd.DataFrame, trial: str, metric: str) -> float:
    return float(results.set_index("trial_id").loc[trial, metric])


def test_bench_prints_a_table_with_speedups(latency_run, capsys):  # noqa: F811
    _, run = latency_run
    trial = read_results(run)["trial_id"].iloc[-1]
    assert main(["bench", str(run), "--trial", trial, "--backend", "torch-cpu", "--backend", "onnxruntime-cpu",
                 "--backend", "fault-raise", *QUICK]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime-cpu speedup" in out and "error: RuntimeError: injected fault: prepare raises" in out
    row = pd.read_parquet(run / "bench.parquet").iloc[0]
    assert row["trial_id"] == trial
    speedup = row["latency.torch-cpu.p50_ms"] / row["latency.onnxruntime-cpu.p50_ms"]
    assert f"{speedup:.2f}" in out


@pytest.mark.parametrize("fmt, files", [("onnx", ["model.onnx"]), ("openvino", ["model.xml", "model.bin"])])
def test_export_writes_a_deployable_model_that_matches_pytorch(latency_run, tmp_path, capsys, fmt, files):  # noqa: F811
    _, run = latency_run
    trial = read_results(run)["trial_id"].iloc[0]
    assert main(["export", str(run), "--trial", trial, "--format", fmt, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in [*files, "export.json"]:
        assert (tmp_path / name).is_file() and name in out
    meta = json.loads((tmp_path / "export.json").read_text())
    assert meta["trial_id"] == trial and meta["input"]["shape"][0] == "batch"
    assert meta["max_abs_diff_vs_pytorch"] <= 1e-3
    assert f"numerics check: max abs difference vs PyTorch {meta['max_abs_diff_vs_pytorch']:.3g} (ok)" in out
    if fmt == "onnx":  # the batch dimension is free: a batch of 3 runs
        import onnxruntime

        session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
        x = np.zeros((3, *meta["input"]["shape"][1:]), dtype=np.float32)
        assert session.run(None, {session.get_inputs()[0].name: x})[0].shape == (3, meta["outputs"]["count"])


@pytest.mark.parametrize("args, message", [
    (["bench", "{run}", "--backend", "torch-gpu"],
     "error: --backend: 'torch-gpu' is not a registered backend"),
    (["bench", "{run}", "--backend", "fault-unavailable"],
     "error: --backend fault-unavailable: injected fault: this backend is never available; install what it needs "
     "or choose another backend (`ecgsearch plugins` lists them)."),
    (["bench", "{run}", "--trial", "t9999", "--backend", "torch-cpu"],
     "error: {run}: there is no trial 't9999' in results.parquet; choose one of t0000, t0001."),
    (["bench", "{missing}", "--backend", "torch-cpu"],
     "error: bench: {missing} is not a folder; pass the --out folder of an `ecgsearch run`."),
    (["bench", "{run}", "--backend", "torch-cpu", "--precision", "fp8"],
     "error: --precision: 'fp8' is not a precision (allowed: fp32, fp16, bf16, int8); pass e.g. --precision int8 "
     "or --precision openvino-cpu=int8."),
    (["bench", "{run}", "--backend", "torch-cpu", "--batch-size", "0"],
     "error: --batch-size: 0 is not an integer >= 1; pass a positive number."),
    (["export", "{run}", "--trial", "t9999", "--format", "onnx", "--out", "{missing}"],
     "error: {run}: there is no trial 't9999' in results.parquet; choose one of t0000, t0001."),
    (["export", "{run}", "--format", "onnx", "--precision", "int8", "--out", "{missing}"],
     "error: --format onnx: no usable backend writes onnx models here (backend 'onnxruntime-cpu' is not usable here: "
     "precision 'int8' is not supported (supported: fp32)); `ecgsearch plugins` says what each backend needs (int8 "
     "also needs pip install 'ecgsearch[latency]'), or choose another --format or --precision."),
])
def test_bad_inputs_are_one_sentence_and_exit_2(latency_run, tmp_path, capsys, args, message):  # noqa: F811
    _, run = latency_run
    names = {"run": str(run), "missing": str(tmp_path / "missing")}
    assert main([a.format(**names) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message.format(**names)), err
    assert len(err.splitlines()) == 1
