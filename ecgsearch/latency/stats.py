"""The adaptive measuring loop every backend shares, and the statistics it returns.

A 2-core machine shared with other work is noisy: single timings jump by tens of percent. The loop
therefore warms up first (caches, lazy initialisation, JIT), then repeats until the median is known to
within a relative tolerance (a distribution-free confidence interval from order statistics) or the time
budget is spent, and reports the median rather than the mean.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ecgsearch.latency.options import MeasureSettings

STAT_COLUMNS: tuple[str, ...] = ("p50_ms", "p90_ms", "p99_ms", "min_ms", "mean_ms", "std_ms", "cv", "throughput",
                                 "repeats", "ci_rel", "stable")
MIN_REPEATS_OVER_BUDGET = 3  # a model slower than the budget is still timed this often


@dataclass(frozen=True)
class LatencyStats:
    """Timings of one backend at one batch size (milliseconds per call; throughput in samples/s).

    min_ms: the fastest call: the least disturbed by other work on a shared machine (the median is what
        to compare; the minimum shows how much of it is contention).
    ci_rel: half-width of the median's confidence interval relative to the median.
    stable: the loop stopped because ``ci_rel`` reached the tolerance (not because the budget ran out).
    """

    batch_size: int
    repeats: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    mean_ms: float
    std_ms: float
    cv: float
    throughput: float
    ci_rel: float
    stable: bool
    seconds: float

    def columns(self, backend: str) -> dict[str, Any]:
        """``latency.<backend>.<stat>`` columns of the results table."""
        return {f"latency.{backend}.{k}": getattr(self, k) for k in STAT_COLUMNS}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def median_ci_halfwidth(sorted_times: Sequence[float], confidence: float = 0.95) -> float:
    """Half the width of a distribution-free confidence interval of the median (order statistics).

    The ranks ``n/2 -+ z sqrt(n)/2`` bound the median with the given confidence for any distribution
    (normal approximation of the binomial), so outliers from a noisy neighbour widen it only a little.
    """
    n = len(sorted_times)
    if n < 2:
        return math.inf
    z = _normal_quantile(0.5 + confidence / 2)
    low = max(0, math.floor(n / 2 - z * math.sqrt(n) / 2) - 1)
    high = min(n - 1, math.ceil(n / 2 + z * math.sqrt(n) / 2))
    return (sorted_times[high] - sorted_times[low]) / 2


def _normal_quantile(p: float) -> float:
    """The standard normal quantile (bisection on erf: no scipy needed in the measuring process)."""
    lo, hi = -10.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def summarize(times_s: Sequence[float], batch_size: int, settings: MeasureSettings, seconds: float) -> LatencyStats:
    """Statistics of raw timings (seconds per call)."""
    ms = np.sort(np.asarray(times_s, dtype=float)) * 1000.0
    p50 = float(np.median(ms))
    mean = float(ms.mean())
    std = float(ms.std(ddof=1)) if len(ms) > 1 else 0.0
    ci_rel = median_ci_halfwidth(ms, settings.confidence) / p50 if p50 > 0 else math.inf
    return LatencyStats(
        batch_size=batch_size, repeats=len(ms), p50_ms=p50,
        p90_ms=float(np.percentile(ms, 90)), p99_ms=float(np.percentile(ms, 99)), min_ms=float(ms[0]),
        mean_ms=mean, std_ms=std, cv=std / mean if mean > 0 else math.nan,
        throughput=batch_size / (p50 / 1000.0) if p50 > 0 else math.inf,
        ci_rel=float(ci_rel), stable=bool(ci_rel <= settings.rel_tolerance), seconds=seconds,
    )


def measure_latency(time_once: Callable[[], float], settings: MeasureSettings,
                    clock: Callable[[], float] = time.perf_counter) -> LatencyStats:
    """Warm up, then call ``time_once()`` (seconds of one timed call) until the median is stable.

    The stopping rule is checked after every ~10% more calls, so checking costs O(n log n) overall.
    """
    started = clock()
    warm_until = started + min(settings.warmup_s, settings.time_budget_s / 4)
    runs = 0
    while runs < settings.warmup_runs or clock() < warm_until:
        time_once()
        runs += 1
    deadline = clock() + settings.time_budget_s
    times: list[float] = []
    next_check = settings.min_repeats
    while True:
        times.append(time_once())
        n = len(times)
        if n >= settings.max_repeats:
            break
        if clock() >= deadline and n >= min(settings.min_repeats, MIN_REPEATS_OVER_BUDGET):
            break
        if n >= next_check:
            ordered = sorted(times)
            if median_ci_halfwidth(ordered, settings.confidence) <= settings.rel_tolerance * ordered[n // 2]:
                break
            next_check = n + max(1, n // 10)
    return summarize(times, settings.batch_size, settings, clock() - started)
