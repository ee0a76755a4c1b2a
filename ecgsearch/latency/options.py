"""The two option records of latency measurement, and its vocabulary (precisions, hints, measuring modes).

The vocabulary is the space file's (``ecgsearch.space.spec``): the parser validates a ``latency``
section with it, and the backends, ``bench`` and ``export`` take the same words.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from ecgsearch.space.spec import HINTS, MEASURE_MODES
from ecgsearch.space.spec import LATENCY_PRECISIONS as PRECISIONS

__all__ = ["BackendOptions", "HINTS", "KERNEL_PREDICTOR", "MEASURE_MODES", "MeasureSettings", "OPTIMIZATION_LEVELS", "PRECISIONS",
           "precision_for"]

OPTIMIZATION_LEVELS: tuple[str, ...] = ("all", "extended", "basic", "disabled")
KERNEL_PREDICTOR = "kernel"  # ``latency.predictor: kernel``: the kernel-level predictor (else a surrogate name)


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
