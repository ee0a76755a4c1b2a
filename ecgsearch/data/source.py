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
        PhysioNet 2021 record: CPSC, Georgia, ...); trials then also score the validation and test splits
        per origin (``val.source.<source>.<metric>``), as the leave-one-source-out studies report.
    label_groups: named subsets of the target names, ``{group: [target names]}`` (PhysioNet 2021's
        arrhythmias, conduction disorders, ...; PTB-XL's superclasses); trials then also compute each
        macro-averaged metric on each group's columns alone (``val.<group>.macro_auroc``), because a
        pooled macro average hides a family of classes the model cannot see. The dataset fills it from
        its own clinical knowledge when it builds the arrays (the cache keeps it) and leaves out a group
        without a member among the chosen targets; a group name holds no dot (it is part of a column name).
    patients: optional ``(records,)`` strings, each record's patient (PTB-XL's and CODE-15%'s
        ``patient_id``, the synthetic dataset's patients when ``records_per_patient`` > 1); None when the
        dataset does not know patients. Two records of one patient are the positive pairs of the contrastive
        task's ``positives: patient``. A record without a known patient gets an id of its own.
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
    label_groups: dict[str, list[str]] = field(default_factory=dict)
    patients: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.signals)
        if self.signals.ndim != 3:
            raise ValueError(f"signals must be (records, leads, samples), got shape {self.signals.shape}")
        for name in ("targets", "split", "record_ids", "groups", "patients"):
            if getattr(self, name) is not None and len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} rows but signals has {n}")
        if self.targets.shape[1] != len(self.target_names):
            raise ValueError("targets and target_names disagree on the number of targets")
        unknown = set(np.unique(self.split)) - set(SPLITS)
        if unknown:
            raise ValueError(f"split values must be one of {SPLITS}, got {sorted(unknown)}")
        self.label_groups = {str(name): [str(t) for t in members] for name, members in self.label_groups.items()}
        known = set(map(str, self.target_names))
        for name, members in self.label_groups.items():
            strangers = [t for t in members if t not in known]
            if not name or "." in name:
                problem = "must be a name without dots (it is one part of the column names val.<group>.<metric>)"
            elif strangers or not members:
                problem = f"names {', '.join(strangers)}, not target names" if strangers else "has no target"
            elif len(set(members)) < len(members):
                problem = "lists a target twice"
            else:
                continue
            raise ValueError(f"label group {name!r} {problem}; a group lists some of target_names, once each")

    def indices(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)


class EcgSource(Protocol):
    """What a dataset plugin's factory returns."""

    def fingerprint(self) -> Mapping[str, Any]:
        """Every parameter that changes the arrays (JSON-able); it names the cache entry."""

    def build(self, workdir: Path, progress: Progress | None = None) -> EcgArrays:
        """Read or generate the records; ``workdir`` is scratch space kept with the cache entry."""
