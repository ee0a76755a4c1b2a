"""Regression searches on synthetic ECGs with known HR/PR/QRS/QT: the must-show (an HR mean absolute
error under 5 bpm on the validation and the test split; figures in docs/benchmarks.md), and the
InceptionTime regression study space at a reduced size."""

from __future__ import annotations

import time

import pytest
from toy_ecg import SEARCH_DATA, reduced_space

from ecgsearch.engine import run_search
from ecgsearch.space import load_space

SPACE = """
name: hr-regression
seed: 0
data: {dataset: synthetic, records: 400, sampling_rate: 50, seconds: 10, leads: [I, II, V1, V5], targets: intervals}
task: regression
metric: mae
budget: {trials: 1, epochs: 20}
resources: {cpu: 1, gpu: 0}
space:
  architecture: {resnet: {depth: 8, channels: 16, kernel: 7}}
  optimizer: {adamw: {lr: 0.01, weight_decay: 1.0e-4}}
  schedule: {cosine: {warmup_epochs: 1}}
  batch_size: 16
"""


@pytest.mark.ray
@pytest.mark.slow
def test_a_regression_search_estimates_heart_rate_within_5_bpm(ray_session, tmp_path) -> None:
    path = tmp_path / "hr.yaml"
    path.write_text(SPACE)
    started = time.perf_counter()
    frame = run_search(load_space(path), tmp_path / "out").results
    row = frame.iloc[0]
    errors = ", ".join(f"{t} {row[f'val.mae.{t}']:.2f}/{row[f'test.mae.{t}']:.2f}"
                       for t in ("hr_bpm", "pr_ms", "qrs_ms", "qt_ms"))
    print(f"HR search: {time.perf_counter() - started:.1f} s (train {row['train_seconds']:.1f} s); "
          f"val/test MAE {errors}")
    assert row["status"] == "ok" and row["schedule"] == "cosine"
    assert row["val.mae.hr_bpm"] < 5.0 and row["test.mae.hr_bpm"] < 5.0
    for target in ("pr_ms", "qrs_ms", "qt_ms"):  # every target has its own error column, in its unit
        assert row[f"val.mae.{target}"] > 0


@pytest.mark.ray
@pytest.mark.slow
def test_the_inception_regression_space_runs_at_a_reduced_size(ray_session, tmp_path) -> None:
    """The study space as written (bf16 autocast, clipping, cosine/one-cycle), on the synthetic intervals."""
    spec = reduced_space("inception_regression", tmp_path, data={**SEARCH_DATA, "targets": "intervals"},
                         budget={"trials": 1, "epochs": 2}, resources={"cpu": 1, "gpu": 0},
                         constraints={"max_flops": 6.0e7})  # filters 16, depth 3, kernel 19
    frame = run_search(spec, tmp_path / "out").results
    row = frame.iloc[0]
    assert row["status"] == "ok", row["error"]
    assert row["architecture"] == "inception" and row["schedule"] in ("cosine", "onecycle")
    assert row["hp.precision"] == "bf16" and row["hp.grad_clip"] == 1.0
    assert all(row[f"test.mae.{t}"] > 0 for t in ("hr_bpm", "pr_ms", "qrs_ms", "qt_ms"))
