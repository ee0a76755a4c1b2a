"""Faults of trials at cluster scale: hangs, out-of-memory, dead workers, retries, and their record.

Every fault is written to ``OUT/faults/`` as one small JSON file (one per event, so writers on several
nodes of a shared filesystem never interleave) with the trial, the kind and the reason:

- in the worker: ``hang`` (the watchdog stopped a trial that reported no epoch in time), ``oom`` (the
  trial ran out of memory: recorded as a failed trial whose objective is the worst value, so a searcher
  that learns from results learns that region is infeasible; never retried), ``resumed`` (a retried or
  resumed trial continued from its checkpoint);
- in the driver: ``retry`` (a failed attempt that Tune retries, ``budget.max_failures``) and ``failed``
  (the attempt that ended the trial).

``read_faults(OUT)`` returns them in time order; docs/fault-tolerance.md says what is guaranteed.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

FAULTS_DIR = "faults"
DRIVER_KINDS = ("retry", "failed")
_WORKER_DIED = ("ActorDiedError", "RayActorError", "actor died", "actor is dead", "WorkerCrashedError",
                "worker died", "worker process has died", "NodeDiedError")
_OOM_TEXT = ("out of memory", "outofmemoryerror", "memoryerror", "not enough memory", "cannot allocate memory",
             "running low on memory")


def record_fault(out_dir: str | Path, trial_id: str, kind: str, reason: str, **extra: Any) -> Path:
    """Write one fault event ``OUT/faults/<trial>.<time>.<pid>.<kind>.json`` atomically."""
    folder = Path(out_dir) / FAULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    path = folder / f"{trial_id}.{time.time_ns()}.{os.getpid()}.{kind}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"trial_id": trial_id, "kind": kind, "reason": reason, "time": now, **extra},
                              default=str))
    tmp.replace(path)
    log.info("fault recorded: trial %s %s: %s", trial_id, kind, reason)
    return path


def read_faults(out_dir: str | Path) -> list[dict[str, Any]]:
    """Every fault event of a run, oldest first (an empty list when there was none)."""
    folder = Path(out_dir) / FAULTS_DIR
    events = []
    for path in folder.glob("*.json") if folder.is_dir() else ():
        try:
            events.append(json.loads(path.read_text()))
        except (OSError, ValueError):  # a half-copied file on a shared filesystem: skip it
            continue
    return sorted(events, key=lambda e: e.get("time", 0.0))


def is_out_of_memory(error: BaseException | str) -> bool:
    """An allocation failure (CUDA or host), by exception type or by the text of its traceback."""
    if isinstance(error, MemoryError):
        return True
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return any(marker in text.lower() for marker in _OOM_TEXT)


def worker_died(summary: str) -> bool:
    """Whether a trial's error says its worker process disappeared (killed, crashed, node lost)."""
    return any(marker.lower() in summary.lower() for marker in _WORKER_DIED)


def fault_reason(out_dir: str | Path, trial_id: str, summary: str) -> str:
    """The sentence for a failed attempt: the worker's own note (a hang) when it died, else the error.

    ``summary`` is the exception line Tune recorded. Only notes left since the trial's previous failed
    attempt count, so an earlier attempt's hang does not explain a later attempt's death.
    """
    if is_out_of_memory(summary):
        return summary if summary.lower().startswith("out of memory") else f"out of memory: {summary}"
    if not worker_died(summary):
        return summary
    events = [e for e in read_faults(out_dir) if e.get("trial_id") == trial_id]
    since = max((e.get("time", 0.0) for e in events if e.get("kind") in DRIVER_KINDS), default=0.0)
    notes = [e for e in events if e.get("kind") == "hang" and e.get("time", 0.0) >= since]
    if notes:
        return str(notes[-1]["reason"])
    return ("the trial's worker process died (killed by a signal, by the operating system for lack of "
            f"memory, or with its node): {summary}")


class Watchdog:
    """Stops this worker process when no epoch is reported for ``timeout_s`` seconds.

    Tune's ``time_total_s`` stop only fires when a trial reports, so a trial stuck inside an epoch (a
    deadlock, a dead filesystem, a sleeping plugin) would hold its resources forever. ``on_timeout`` runs
    first (it records the reason), then the process is killed: Tune sees the worker die and records the
    trial as failed, or retries it from its checkpoint when ``max_failures`` allows.
    """

    def __init__(self, timeout_s: float, on_timeout: Callable[[float], None],
                 kill: Callable[[], None] | None = None) -> None:
        self.timeout_s = float(timeout_s)
        self._on_timeout = on_timeout
        self._kill = kill or (lambda: os.kill(os.getpid(), signal.SIGKILL))
        self._last = time.monotonic()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="ecgsearch-watchdog", daemon=True)
        self._thread.start()

    def pet(self) -> None:
        """A sign of life: an epoch was reported."""
        self._last = time.monotonic()

    def stop(self) -> None:
        self._stopped.set()

    def _watch(self) -> None:
        while not self._stopped.wait(min(1.0, self.timeout_s / 4)):
            silent = time.monotonic() - self._last
            if silent >= self.timeout_s:
                try:
                    self._on_timeout(silent)
                finally:
                    if not self._stopped.is_set():
                        self._kill()
                return


def hang_reason(timeout_s: float, key: str, epoch: int) -> str:
    where = f"after epoch {epoch}" if epoch else "in its first epoch"
    return f"hung: no epoch finished within {timeout_s:g} s ({key}) {where}; the trial's worker was stopped"
