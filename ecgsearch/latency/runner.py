"""Measure in a separate process, so that a runtime that crashes or hangs cannot take its caller down.

``measure_isolated(request)`` starts ``python -m ecgsearch.latency.worker`` (a fresh interpreter: no
state, threads or CUDA context shared with the caller), follows its event file, and turns each backend's
outcome into a ``BackendResult``. A backend running when the process dies (segfault, abort, out of
memory) or that exceeds its time limit gets an error saying so; the backends after it are measured in a
new process. Nothing here raises for a backend's failure: the reason is recorded instead.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecgsearch.latency.request import MeasureRequest
from ecgsearch.latency.stats import LatencyStats

log = logging.getLogger(__name__)

DEFAULT_BACKEND_TIMEOUT_S = 300.0  # prepare (export, compile, quantise) + measure of one backend
STARTUP_TIMEOUT_S = 120.0  # interpreter start, imports, registries, model build
POLL_S = 0.05


@dataclass(frozen=True)
class BackendResult:
    """One backend's outcome: statistics and checks, or the one-line reason it has none."""

    backend: str
    stats: LatencyStats | None = None
    max_abs_diff: float | None = None
    precision: str | None = None
    prepare_s: float | None = None
    metric: float | None = None
    reference_metric: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.stats is not None

    def columns(self, metric_name: str | None = None) -> dict[str, Any]:
        """``latency.<backend>.*`` columns; ``.error`` is None for a measured backend."""
        prefix = f"latency.{self.backend}"
        out: dict[str, Any] = {f"{prefix}.error": self.error}
        if self.stats is not None:
            out.update(self.stats.columns(self.backend))
            out.update({f"{prefix}.max_abs_diff": self.max_abs_diff, f"{prefix}.precision": self.precision,
                        f"{prefix}.prepare_s": self.prepare_s})
        if metric_name and self.metric is not None:
            out[f"{prefix}.val.{metric_name}"] = self.metric
        return out


@dataclass
class _Progress:
    results: dict[str, BackendResult] = field(default_factory=dict)
    running: str | None = None
    running_since: float = 0.0


def _read_events(path: Path, progress: _Progress, seen: int) -> int:
    """Apply the events after the first ``seen`` complete lines; returns the new count."""
    if not path.exists():
        return seen
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    complete = [line for line in lines if line.endswith("\n")]
    for line in complete[seen:]:
        event = json.loads(line)
        name = event.pop("backend")
        kind = event.pop("event")
        if kind == "begin":
            progress.running, progress.running_since = name, time.monotonic()
        elif kind == "error":
            progress.results[name] = BackendResult(name, error=event["error"])
            progress.running = None
        elif kind == "done":
            stats = LatencyStats(**event.pop("stats"))
            progress.results[name] = BackendResult(name, stats=stats, **event)
            progress.running = None
    return len(complete)


def _death(returncode: int | None) -> str:
    if returncode is None:
        return "did not exit"
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def _last_line(path: Path) -> str:
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _child_env(request: MeasureRequest) -> dict[str, str]:
    env = dict(os.environ)
    threads = [o.threads for o in request.options.values() if o.threads]
    if threads:  # OpenMP reads these once, at start: the runtime's own setting then agrees with them
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(max(threads))
    return env


def measure_isolated(request: MeasureRequest, backend_timeout_s: float = DEFAULT_BACKEND_TIMEOUT_S,
                     startup_timeout_s: float = STARTUP_TIMEOUT_S) -> dict[str, BackendResult]:
    """Every backend of ``request`` measured in a child process; one ``BackendResult`` per backend."""
    progress = _Progress()
    remaining = list(request.backends)
    with tempfile.TemporaryDirectory(prefix="ecgsearch-latency-") as tmp:
        attempt = 0
        while remaining:
            attempt += 1
            request_path, events, stderr_path = (Path(tmp) / f"{name}-{attempt}" for name in
                                                 ("request.json", "events.jsonl", "stderr.txt"))
            request.with_backends(remaining).write(request_path)
            with open(stderr_path, "w") as stderr:
                process = subprocess.Popen([sys.executable, "-m", "ecgsearch.latency.worker", str(request_path),
                                            str(events)], stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                                           env=_child_env(request))
                timed_out = _follow(process, events, progress, time.monotonic(), backend_timeout_s,
                                    startup_timeout_s)
            if progress.running is not None:
                name, progress.running = progress.running, None
                why = (f"timed out after {backend_timeout_s:g} s" if timed_out
                       else f"the measuring process {_death(process.returncode)}")
                detail = _last_line(stderr_path)
                progress.results[name] = BackendResult(
                    name, error=f"{why} while measuring it" + (f" (last output: {detail})" if detail and not timed_out
                                                               else ""))
            left = [b for b in remaining if b not in progress.results]
            if left == remaining:  # the process died before it started any backend
                why = "timed out while starting" if timed_out else _death(process.returncode)
                detail = _last_line(stderr_path)
                for name in left:
                    progress.results[name] = BackendResult(
                        name, error=f"the measuring process {why} before measuring" + (f": {detail}" if detail else ""))
                left = []
            remaining = left
    return {name: progress.results[name] for name in request.backends}


def _follow(process: subprocess.Popen[bytes], events: Path, progress: _Progress, started: float,
            backend_timeout_s: float, startup_timeout_s: float) -> bool:
    """Read events until the process ends; kill it when a backend or the start-up runs too long."""
    seen = 0
    while True:
        finished = process.poll() is not None
        seen = _read_events(events, progress, seen)
        if finished:
            return False
        now = time.monotonic()
        too_long = (now - progress.running_since > backend_timeout_s if progress.running is not None
                    else not progress.results and now - started > startup_timeout_s)
        if too_long:
            process.kill()
            process.wait()
            _read_events(events, progress, seen)
            return True
        time.sleep(POLL_S)
