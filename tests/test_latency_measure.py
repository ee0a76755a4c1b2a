"""The adaptive measuring loop and its statistics, on scripted timings (no runtime, no real clock)."""

from __future__ import annotations

import math
from itertools import cycle

import numpy as np
import pytest

from ecgsearch.latency.options import MeasureSettings, precision_for
from ecgsearch.latency.stats import STAT_COLUMNS, LatencyStats, measure_latency, median_ci_halfwidth, summarize


class FakeClock:
    """A clock that advances by each scripted call's duration: the loop sees exact, repeatable timings."""

    def __init__(self, durations: list[float]) -> None:
        self.now = 0.0
        self.durations = cycle(durations)
        self.calls = 0

    def __call__(self) -> float:
        return self.now

    def call(self) -> float:
        duration = next(self.durations)
        self.now += duration
        self.calls += 1
        return duration


def test_steady_timings_stop_early_with_exact_statistics():
    clock = FakeClock([0.002])
    settings = MeasureSettings(batch_size=4, time_budget_s=10.0, warmup_s=0.01, warmup_runs=3, min_repeats=10)
    stats = measure_latency(clock.call, settings, clock=clock)
    assert stats.stable and stats.ci_rel == 0.0
    assert stats.repeats == settings.min_repeats  # stable at the first check: no time wasted
    assert stats.p50_ms == pytest.approx(2.0) and stats.p99_ms == pytest.approx(2.0) and stats.std_ms == 0.0
    assert stats.throughput == pytest.approx(4 / 0.002)  # samples per second at batch 4
    assert clock.calls == stats.repeats + 5  # 3 warm-up runs are not enough for 10 ms of warm-up: 5


def test_noisy_timings_run_until_the_budget_and_report_the_median():
    durations = list(np.random.default_rng(1).lognormal(np.log(0.001), 0.5, 5000))  # noise: never within 1%
    clock = FakeClock(durations)
    settings = MeasureSettings(time_budget_s=0.5, warmup_s=0.0, warmup_runs=0, min_repeats=10)
    stats = measure_latency(clock.call, settings, clock=clock)
    assert not stats.stable and stats.ci_rel > settings.rel_tolerance
    assert 0.5 <= stats.seconds <= 0.5 + max(durations)
    timings = np.array([durations[i % len(durations)] for i in range(stats.repeats)]) * 1000
    assert stats.p50_ms == pytest.approx(np.median(timings))
    assert stats.p90_ms == pytest.approx(np.percentile(timings, 90))
    assert stats.min_ms == pytest.approx(timings.min())
    assert stats.mean_ms == pytest.approx(timings.mean()) and stats.cv == pytest.approx(timings.std(ddof=1) / timings.mean())


def test_a_model_slower_than_the_budget_is_still_timed_three_times():
    clock = FakeClock([2.0])
    stats = measure_latency(clock.call, MeasureSettings(time_budget_s=0.1, warmup_runs=1, warmup_s=0.0), clock=clock)
    assert stats.repeats == 3 and stats.p50_ms == pytest.approx(2000.0)


def test_max_repeats_caps_the_loop():
    clock = FakeClock([0.001, 0.002])
    stats = measure_latency(clock.call, MeasureSettings(time_budget_s=100, max_repeats=25, warmup_runs=0,
                                                        warmup_s=0.0, rel_tolerance=0.0), clock=clock)
    assert stats.repeats == 25


def test_median_interval_covers_the_median_and_narrows_with_more_samples():
    rng = np.random.default_rng(0)
    widths = []
    for n in (20, 200, 2000):
        sample = np.sort(rng.lognormal(0.0, 0.3, n))
        half = median_ci_halfwidth(sample)
        widths.append(half)
        assert half > 0
    assert widths[0] > widths[1] > widths[2]
    assert median_ci_halfwidth([1.0]) == math.inf
    # coverage: the interval around the sample median contains the true median (1.0) most of the time
    hits = 0
    for _ in range(200):
        sample = np.sort(rng.lognormal(0.0, 0.3, 101))
        half = median_ci_halfwidth(sample)
        hits += abs(np.median(sample) - 1.0) <= 2 * half
    assert hits >= 180


def test_stats_columns_follow_the_results_contract():
    stats = summarize([0.001, 0.002, 0.003], 1, MeasureSettings(), seconds=0.01)
    columns = stats.columns("onnxruntime-cpu")
    assert list(columns) == [f"latency.onnxruntime-cpu.{k}" for k in STAT_COLUMNS]
    assert columns["latency.onnxruntime-cpu.p50_ms"] == pytest.approx(2.0)
    assert LatencyStats(**stats.as_dict()) == stats


def test_precision_for_one_or_each_backend():
    assert precision_for("bf16", "openvino-cpu") == "bf16"
    assert precision_for({"openvino-cpu": "int8"}, "openvino-cpu") == "int8"
    assert precision_for({"openvino-cpu": "int8"}, "torch-cpu") == "fp32"
