"""What a dataset holds once prepared (``ecgsearch data inspect``), before an hour of search runs on it.

A search trusts the cache entry blindly: a wrong ``root``, a lead set that drops a class's evidence or
a split without positives of a class only shows up as odd metrics much later. This command prepares
(or reuses) the same cache entry a search would use and summarises it: shape, label counts, split
sizes, sources, label groups, patients (and whether any patient's records fall in two splits, which would
leak between training and evaluation) and the records the reader skipped, with the reason for each.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ecgsearch.data.cache import open_dataset
from ecgsearch.data.prepare import prepare_entry
from ecgsearch.data.source import SPLITS, Progress

COMMAND = "data inspect"


def _is_binary(targets: np.ndarray) -> bool:
    return bool(np.isin(targets, (0.0, 1.0)).all())


def _targets(targets: np.ndarray, names: list[str], labels: Mapping[str, Any]) -> tuple[str, list[dict]]:
    """Positive counts per class (0/1 targets) or mean/std per regression target (NaN ignored)."""
    if _is_binary(targets):
        positives = targets.sum(axis=0) if len(targets) else np.zeros(len(names))
        return "multilabel", [
            {"name": n, "label": str(labels.get(n, "")), "positives": int(p),
             "fraction": float(p / len(targets)) if len(targets) else 0.0}
            for n, p in zip(names, positives)]
    rows = []
    for column, n in enumerate(names):
        values = targets[:, column]
        finite = values[np.isfinite(values)]
        rows.append({"name": n, "label": str(labels.get(n, "")), "count": int(finite.size),
                     "mean": float(finite.mean()) if finite.size else None,
                     "std": float(finite.std()) if finite.size else None})
    return "regression", rows


def _patients(patients: np.ndarray | None, split: np.ndarray) -> dict | None:
    """How many patients, records per patient (least, most) and patients with records in two splits or more
    (a leak between training and evaluation); None when the dataset names no patients."""
    if patients is None:
        return None
    ids, inverse, counts = np.unique(np.asarray(patients).astype(str), return_inverse=True, return_counts=True)
    pairs = np.unique(np.stack([inverse, np.unique(split, return_inverse=True)[1]]), axis=1)
    in_splits = np.bincount(pairs[0], minlength=len(ids))
    return {"patients": int(len(ids)), "records_per_patient": [int(counts.min()), int(counts.max())] if len(ids)
            else [0, 0], "in_several_splits": int((in_splits > 1).sum())}


def _label_groups(groups: Mapping[str, list[str]], targets: np.ndarray, names: list[str]) -> list[dict]:
    """Each label group the dataset declares: its classes and the records with a positive among them."""
    rows = []
    for group, members in groups.items():
        columns = [names.index(m) for m in members if m in names]
        positive = (targets[:, columns] > 0).any(axis=1) if columns and len(targets) else np.zeros(0, bool)
        rows.append({"group": group, "classes": list(members), "records": int(positive.sum())})
    return rows


def inspect_dataset(name: str, params: dict, cache_root: Path | None = None,
                    progress: Progress | None = None) -> dict:
    """Prepare (or reuse) the cache entry of ``name`` with ``params`` and summarise it as JSON-able data.

    Keys: dataset, params, entry, records, leads, sampling_rate, samples, seconds, task (``multilabel``
    or ``regression``), targets (per class: positives and fraction; per regression target: count, mean,
    std), splits, sources (when the dataset reports them), label_groups (group, classes, records with a
    positive), patients (count, least and most records per patient, patients in several splits; None when
    the dataset names none), skipped (record and reason).
    """
    entry = prepare_entry(name, params, Path(cache_root) if cache_root is not None else None, COMMAND, progress)
    arrays = open_dataset(entry)
    targets = np.asarray(arrays.targets)
    extra = arrays.extra
    task, rows = _targets(targets, list(arrays.target_names), extra.get("class_names") or {})
    records, _, samples = arrays.signals.shape
    sources = extra.get("source_counts")
    return {
        "dataset": name,
        "params": json.loads(json.dumps(dict(params), default=str)),
        "entry": str(entry),
        "records": int(records),
        "leads": list(arrays.leads),
        "sampling_rate": float(arrays.sampling_rate),
        "samples": int(samples),
        "seconds": float(samples / arrays.sampling_rate),
        "task": task,
        "targets": rows,
        "splits": {s: int((arrays.split == s).sum()) for s in SPLITS},
        "sources": {str(k): int(v) for k, v in sources.items()} if isinstance(sources, dict) else None,
        "label_groups": _label_groups(arrays.label_groups, targets, list(arrays.target_names)),
        "patients": _patients(arrays.patients, np.asarray(arrays.split)),
        "skipped": [{"record": str(s.get("record", "?")), "reason": str(s.get("reason", "?"))}
                    for s in extra.get("skipped") or []],
    }
