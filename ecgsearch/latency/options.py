"""The vocabulary of latency measurement: precisions, hints, measuring modes and the two option records.

This module imports nothing heavy, so the space-file parser can validate a ``latency`` section without
importing torch or any runtime.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16", "int8")
HINTS: tuple[str, ...] = ("latency", "throughput")
MEASURE_MODES: tuple[str, ...] = ("all", "pareto", "best")
OPTIMIZATION_LEVELS: tuple[str, ...] = ("all", "extended", "basic", "disabled")


@dataclass(frozen=True)
class BackendOptions:
    """What a backend factory receives (``BackendInfo.factory(**asdict(options))``).

    threads: intra-op threads of the runtime (None: the runtime's default).
    precision: ``fp32``, ``fp16``, ``bf16`` or ``int8``; a backend that cannot run it says so.
    hint: OpenVINO's performance hint (``latency`` or ``throughput``); other runtimes ignore it.
    optimization: ONNX Runtime's graph optimisation level; other runtimes ignore it.
    """

    threads: int | None = None
    precision: str = "fp32"
    hint: str = "latency"
    optimization: str = "all"

    def as_kwargs(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MeasureSettings:
    """How long and how carefully one backend is timed (the adaptive loop in ``latency.stats``).

    The loop warms up for ``warmup_s`` (at least ``warmup_runs`` calls), then times calls until the
    median's relative confidence-interval half-width is at most ``rel_tolerance`` (after at least
    ``min_repeats`` calls) or ``time_budget_s`` is spent or ``max_repeats`` calls were made.
    """

    batch_size: int = 1
    time_budget_s: float = 1.0
    warmup_s: float = 0.1
    warmup_runs: int = 3
    min_repeats: int = 10
    max_repeats: int = 100_000
    rel_tolerance: float = 0.01
    confidence: float = 0.95

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def precision_for(precision: str | Mapping[str, str], backend: str) -> str:
    """The precision one backend runs at: a single value, or a backend -> precision mapping (fp32 default)."""
    if isinstance(precision, str):
        return precision
    return str(precision.get(backend, "fp32"))
