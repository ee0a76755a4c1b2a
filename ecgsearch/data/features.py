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
import multiprocessing
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from ecgsearch.data.cache import exclusive_lock, open_dataset

log = logging.getLogger(__name__)

FEATURES_DIR = "features"
CHUNK = 64  # records per unit of work
Extract = Callable[[np.ndarray, float], np.ndarray]  # one lead of one record, Hz -> (features,)


def _safe(name: str) -> str:
    """A file name for an extractor or lead name (``aVR`` stays ``aVR``; anything odd becomes ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def features_path(entry: Path, extractor: str, lead: str) -> Path:
    return Path(entry) / FEATURES_DIR / _safe(extractor) / f"{_safe(lead)}.npy"


def lead_features(entry: Path, extractor: str, lead: str, extract: Extract,
                  heartbeat: Callable[[], None] | None = None, workers: int = 1) -> np.ndarray:
    """``(records, features)`` float32: ``extract`` applied to ``lead`` of every record of ``entry``.

    Computed on first use and kept in the entry; later calls (any process on the node) load the file.
    heartbeat: called as records are done (a trial's hang watchdog is told it is alive). workers: processes
    that extract (``extract`` must then be picklable: a module-level function or a method of an importable
    class); the result does not depend on it.
    """
    path = features_path(entry, extractor, lead)
    if path.is_file():
        return np.load(path, allow_pickle=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(path.with_suffix(".lock"), f"{extractor} features of lead {lead}"):
        if path.is_file():  # another trial extracted them while we waited
            return np.load(path, allow_pickle=False)
        started = time.perf_counter()
        records = len(open_dataset(Path(entry)).signals)
        chunks = [(start, min(start + CHUNK, records)) for start in range(0, records, CHUNK)]
        blocks = _in_processes(Path(entry), lead, extract, chunks, workers, heartbeat) if workers > 1 and \
            len(chunks) > 1 else [_extract_chunk(Path(entry), lead, extract, *chunk, heartbeat) for chunk in chunks]
        features = np.vstack(blocks) if blocks else np.zeros((0, 0), dtype=np.float32)
        log.info("extracted features of lead %s from %d records in %.1f s (%d worker(s))", lead, records,
                 time.perf_counter() - started, workers)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, features, allow_pickle=False)
        os.replace(tmp, path)
    return features


def _extract_chunk(entry: Path, lead: str, extract: Extract, start: int, stop: int,
                   heartbeat: Callable[[], None] | None = None) -> np.ndarray:
    """Records ``start:stop`` of ``lead`` (also run in a worker process, which opens the entry itself)."""
    data = open_dataset(entry)
    channel = list(data.leads).index(lead)
    rows = []
    for record in range(start, stop):
        rows.append(np.asarray(extract(np.asarray(data.signals[record, channel], dtype=np.float64),
                                       float(data.sampling_rate)), dtype=np.float32))
        if heartbeat is not None and record % 16 == 0:
            heartbeat()
    return np.vstack(rows)


def _in_processes(entry: Path, lead: str, extract: Extract, chunks: list[tuple[int, int]], workers: int,
                  heartbeat: Callable[[], None] | None) -> list[np.ndarray]:
    """The chunks extracted by ``workers`` spawned processes, in order."""
    context = multiprocessing.get_context("spawn")  # no fork inside a Ray worker's threads
    with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=context) as pool:
        futures = [pool.submit(_extract_chunk, entry, lead, extract, *chunk) for chunk in chunks]
        blocks = []
        for future in futures:
            blocks.append(future.result())
            if heartbeat is not None:
                heartbeat()
    return blocks
