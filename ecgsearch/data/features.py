"""Per-lead features of every record of a cache entry, extracted once and kept in the entry.

An estimator model (``ecgsearch.train.estimators``) reads features, not samples: intervals and
amplitudes delineated on each lead, say. Delineating thousands of records takes minutes, and every
trial of a search would repeat it with the same result, so ``lead_features`` computes one lead's
features for all records once per (entry, extractor), under an exclusive file lock (trials on one node
wait, then reuse the file), and publishes ``<entry>/features/<extractor>/<lead>.npy`` by an atomic
rename. A trial that asks for other leads only extracts those. The extractor's name must change when
what it computes changes (it carries a version: ``ecg-intervals-v1``).
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ecgsearch.data.cache import exclusive_lock, open_dataset

log = logging.getLogger(__name__)

FEATURES_DIR = "features"
Extract = Callable[[np.ndarray, float], np.ndarray]  # one lead of one record, Hz -> (features,)


def _safe(name: str) -> str:
    """A file name for an extractor or lead name (``aVR`` stays ``aVR``; anything odd becomes ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def features_path(entry: Path, extractor: str, lead: str) -> Path:
    return Path(entry) / FEATURES_DIR / _safe(extractor) / f"{_safe(lead)}.npy"


def lead_features(entry: Path, extractor: str, lead: str, extract: Extract,
                  heartbeat: Callable[[], None] | None = None) -> np.ndarray:
    """``(records, features)`` float32: ``extract`` applied to ``lead`` of every record of ``entry``.

    Computed on first use and kept in the entry; later calls (any process on the node) load the file.
    heartbeat: called every few records while extracting (a trial's hang watchdog is told it is alive).
    """
    path = features_path(entry, extractor, lead)
    if path.is_file():
        return np.load(path, allow_pickle=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(path.with_suffix(".lock"), f"{extractor} features of lead {lead}"):
        if path.is_file():  # another trial extracted them while we waited
            return np.load(path, allow_pickle=False)
        features = _extract_all(Path(entry), lead, extract, heartbeat)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, features, allow_pickle=False)
        os.replace(tmp, path)
    return features


def _extract_all(entry: Path, lead: str, extract: Extract, heartbeat: Callable[[], None] | None) -> np.ndarray:
    data = open_dataset(entry)
    channel = list(data.leads).index(lead)
    started = time.perf_counter()
    rows = []
    for record in range(len(data.signals)):
        rows.append(np.asarray(extract(np.asarray(data.signals[record, channel], dtype=np.float64),
                                       float(data.sampling_rate)), dtype=np.float32))
        if heartbeat is not None and record % 16 == 0:
            heartbeat()
    log.info("extracted features of lead %s from %d records in %.1f s", lead, len(rows),
             time.perf_counter() - started)
    return np.vstack(rows) if rows else np.zeros((0, 0), dtype=np.float32)
