"""The latency predictor (cost features -> latency per backend) and the screen that uses it in a search."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecgsearch.latency.options import BackendOptions, MeasureSettings
from ecgsearch.latency.plan import LatencyPlan
from ecgsearch.latency.predictor import (
    LatencyPredictor,
    cross_validate,
    latency_features,
    measured_rows,
    score_holdout,
)
from ecgsearch.latency.screen import MIN_MEASURED, LatencyScreen
from ecgsearch.results import RESULTS_FILE
from ecgsearch.train.costs import Costs

BACKEND = "onnxruntime-cpu"
COLUMN = f"latency.{BACKEND}.p50_ms"


def synthetic_rows(n: int, seed: int = 0, noise: float = 0.02) -> pd.DataFrame:
    """Latency that grows with FLOPs, with a per-architecture overhead and a little noise."""
    rng = np.random.default_rng(seed)
    arch = rng.choice(["resnet", "convnext"], n)
    flops = np.exp(rng.uniform(np.log(1e6), np.log(1e9), n))
    overhead = np.where(arch == "resnet", 0.05, 0.2)
    latency = (overhead + flops / 2e8) * np.exp(rng.normal(0, noise, n))
    return pd.DataFrame({"trial_id": [f"t{i:04d}" for i in range(n)], "architecture": arch, "cost.flops": flops,
                         "cost.macs": flops / 2, "cost.params": flops / 100, "hp.lr": rng.uniform(size=n),
                         COLUMN: latency})


def test_features_are_the_architecture_and_every_cost_column():
    frame = synthetic_rows(5).assign(**{"cost.receptive_field": 1.0})
    assert list(latency_features(frame).columns) == ["architecture", "cost.flops", "cost.macs", "cost.params",
                                                     "cost.receptive_field"]


def test_only_finite_positive_measurements_are_learned_from():
    frame = synthetic_rows(6)
    frame.loc[0, COLUMN] = np.nan
    frame.loc[1, COLUMN] = 0.0
    assert list(measured_rows(frame, BACKEND)["trial_id"]) == ["t0002", "t0003", "t0004", "t0005"]
    assert measured_rows(frame, "openvino-cpu").empty
    with pytest.raises(ValueError, match="needs >= 2 measured rows, got 0"):
        LatencyPredictor("openvino-cpu").fit(frame)


def test_held_out_models_are_predicted_within_ten_percent():
    train, test = synthetic_rows(150, seed=1), synthetic_rows(60, seed=2)
    score = score_holdout(train, test, BACKEND)
    assert score.models == 60 and score.within >= 0.7, score
    cv = cross_validate(pd.concat([train, test]), BACKEND, folds=3)
    assert cv is not None and cv.folds == 3 and cv.models == 210 and cv.within >= 0.7
    assert "held-out models predicted within +-10%" in cv.sentence()
    assert 0 < cv.band < 0.2 and cv.band >= cv.median_rel_error  # the 90th percentile of the errors
    assert cross_validate(train.head(3), BACKEND) is None  # too few rows to cross-validate


def write_results(tmp_path, frame: pd.DataFrame) -> None:
    frame.assign(status="ok").to_parquet(tmp_path / RESULTS_FILE, index=False)


def test_the_screen_waits_for_measurements_then_rejects_predicted_slow_candidates(tmp_path):
    plan = LatencyPlan(backends=(BACKEND,), options={BACKEND: BackendOptions()}, settings=MeasureSettings(),
                       max_latency_ms=1.0)
    screen = LatencyScreen(plan, tmp_path)
    slow = Costs(params=int(1e7), macs=int(5e8), flops=int(1e9))  # ~5 ms in synthetic_rows
    fast = Costs(params=int(1e4), macs=int(5e5), flops=int(1e6))  # ~0.05 ms
    config = {"architecture": "resnet"}
    assert screen(config, slow) == []  # no results yet: nothing is screened
    write_results(tmp_path, synthetic_rows(MIN_MEASURED - 1))
    assert screen(config, slow) == []  # too few measurements: the fallback is to measure each candidate
    write_results(tmp_path, synthetic_rows(120, seed=3))
    reasons = screen(config, slow)
    assert len(reasons) == 1 and reasons[0].startswith(f"predicted {COLUMN} ")
    assert " > max_latency_ms 1 by more than the predictor's error band (" in reasons[0]
    fitted = screen.fitted()
    assert fitted is not None and fitted.models == 120 and 0 < fitted.band < 0.2  # its cross-validated error
    assert screen(config, fast) == []
    assert screen.decisions == {"accept": 1, "measure": 0, "reject": 1}
