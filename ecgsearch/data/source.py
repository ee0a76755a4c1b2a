"""The data contract between dataset plugins and the core.

A dataset plugin's factory returns an ``EcgSource``. The core asks it for a ``fingerprint()`` (every
parameter that changes the arrays: a change gives a new cache key) and, on a cache miss, for
``build()``: decoded, preprocessed arrays that the core stores once per key and memory-maps into every
trial (``ecgsearch.data.cache``). Sources know their dataset; the core knows none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

import numpy as np

SPLITS = ("train", "val", "test")

# progress(done, total, what): sources call it while building so the CLI can show a progress bar.
Progress = Callable[[int, int, str], None]


@dataclass
class EcgArrays:
    """Everything a trial needs from a dataset, as arrays.

    signals: float32 ``(records, leads, samples)``, already resampled/cropped to a fixed length.
    targets: float32 ``(records, targets)``: 0/1 for multilabel, values for regression.
    target_names: one name per target column (SNOMED code, statement, ``hr_bpm``...).
    split: ``(records,)`` strings, each one of ``train``, ``val``, ``test``.
    sampling_rate: Hz of ``signals``; leads: lead names in channel order.
    record_ids: ``(records,)`` identifiers, for reports and error lists.
    extra: small JSON-able facts (per-class counts, skipped records...).
    groups: optional ``(records,)`` strings naming each record's origin (the source database of a
        PhysioNet 2021 record: CPSC, Georgia, ...); trials then also score the test split per group
        (``test.<metric>@<group>``), as the leave-one-source-out studies report.
    """

    signals: np.ndarray
    targets: np.ndarray
    target_names: list[str]
    split: np.ndarray
    sampling_rate: float
    leads: list[str]
    record_ids: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)
    groups: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.signals)
        if self.signals.ndim != 3:
            raise ValueError(f"signals must be (records, leads, samples), got shape {self.signals.shape}")
        for name in ("targets", "split", "record_ids", "groups"):
            if getattr(self, name) is not None and len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} rows but signals has {n}")
        if self.targets.shape[1] != len(self.target_names):
            raise ValueError("targets and target_names disagree on the number of targets")
        unknown = set(np.unique(self.split)) - set(SPLITS)
        if unknown:
            raise ValueError(f"split values must be one of {SPLITS}, got {sorted(unknown)}")

    def indices(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)


class EcgSource(Protocol):
    """What a dataset plugin's factory returns."""

    def fingerprint(self) -> Mapping[str, Any]:
        """Every parameter that changes the arrays (JSON-able); it names the cache entry."""

    def build(self, workdir: Path, progress: Progress | None = None) -> EcgArrays:
        """Read or generate the records; ``workdir`` is scratch space kept with the cache entry."""
