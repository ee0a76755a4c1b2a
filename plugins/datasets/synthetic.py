"""The ``synthetic`` dataset: 12-lead ECGs from neurokit2's ECGSYN with labels known by construction.

It needs no download, so quickstarts, tests and CI can run a real search anywhere, and its labels are
exact: a model that fails here is broken, not fooled by label noise. Classes are scored PhysioNet 2021
codes (one sinus rhythm per record plus independent conduction/repolarisation abnormalities), so the
same metrics and reports apply as on the real Challenge data. The physiology lives in
``_ecgsyn_conditions``; this module validates parameters, generates records in parallel and splits them.
"""

from __future__ import annotations

import concurrent.futures
import functools
import importlib.metadata
import logging
import math
import multiprocessing
import numbers
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ecgsearch import DatasetInfo, hookimpl
from ecgsearch.data import EcgArrays, Progress
from ecgsearch_plugins.datasets import _ecgsyn_conditions as cond

log = logging.getLogger(__name__)

GENERATOR_VERSION = 2  # bump when the generated arrays change, so old cache entries are not reused
MIN_RECORDS = 20
SAMPLING_RATE_RANGE = (50.0, 1000.0)
SECONDS_RANGE = (2.0, 300.0)
PROGRESS_WHAT = "generating synthetic ECGs"


def _generate_chunk(start: int, labels: np.ndarray, *, seed: int, seconds: float, sampling_rate: float,
                    lead_index: tuple[int, ...]) -> np.ndarray:
    """Records ``start .. start + len(labels)``: ``(records, leads, samples)`` float32 (a worker task)."""
    out = []
    for offset, row in enumerate(labels):
        codes = {code for code, flag in zip(cond.CLASSES, row) if flag}
        record = cond.synthesize_record(seed, start + offset, codes, seconds, sampling_rate)
        out.append(record[list(lead_index)].astype(np.float32))
    return np.stack(out)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_leads(leads: Sequence[str] | None) -> list[str]:
    allowed = ", ".join(cond.STANDARD_LEADS)
    if leads is None:
        return list(cond.STANDARD_LEADS)
    if isinstance(leads, (str, bytes)) or not isinstance(leads, Sequence) or not leads:
        raise ValueError(f"synthetic: leads must be a non-empty list of lead names from {allowed} "
                         f"(got {leads!r}).")
    by_lower = {name.lower(): name for name in cond.STANDARD_LEADS}
    chosen: list[str] = []
    for lead in leads:
        name = by_lower.get(str(lead).lower())
        if name is None:
            raise ValueError(f"synthetic: unknown lead {lead!r}; allowed leads: {allowed}.")
        if name in chosen:
            raise ValueError(f"synthetic: lead {name!r} is listed twice in leads; list each lead once.")
        chosen.append(name)
    return chosen


class SyntheticEcg:
    """An ``EcgSource`` of ECGSYN records: sinus rhythms plus IAVB, NSIVCB, LQT, TInv and LQRSV.

    records: how many; sampling_rate (Hz) and seconds: the output grid; leads: standard lead names in
    the wanted channel order; seed: everything random derives from it; val/test_fraction: split sizes;
    workers: processes generating records (0: ``min(2, cpu_count)``; 1: in this process).
    """

    def __init__(self, records: int = 1200, sampling_rate: float = 100, seconds: float = 10,
                 leads: Sequence[str] | None = None, seed: int = 0, val_fraction: float = 0.15,
                 test_fraction: float = 0.15, workers: int = 0) -> None:
        if not _is_int(records) or records < MIN_RECORDS:
            raise ValueError(f"synthetic: records must be an integer of at least {MIN_RECORDS} "
                             f"(got {records!r}).")
        lo, hi = SAMPLING_RATE_RANGE
        if not _is_number(sampling_rate) or not lo <= sampling_rate <= hi:
            raise ValueError(f"synthetic: sampling_rate must be a number of Hz between {lo:g} and {hi:g} "
                             f"(got {sampling_rate!r}).")
        lo, hi = SECONDS_RANGE
        if not _is_number(seconds) or not lo <= seconds <= hi:
            raise ValueError(f"synthetic: seconds must be a number between {lo:g} and {hi:g} "
                             f"(got {seconds!r}).")
        if not _is_int(seed) or seed < 0:
            raise ValueError(f"synthetic: seed must be a non-negative integer (got {seed!r}).")
        for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not _is_number(value) or not 0 < value < 1:
                raise ValueError(f"synthetic: {name} must be a number between 0 and 1, both excluded, "
                                 f"so that every split has records (got {value!r}).")
        if not _is_int(workers) or workers < 0:
            raise ValueError(f"synthetic: workers must be a non-negative integer, 0 for automatic "
                             f"(got {workers!r}).")
        self.records = int(records)
        self.sampling_rate = float(sampling_rate)
        self.seconds = float(seconds)
        self.leads = _check_leads(leads)
        self.seed = int(seed)
        self.val_fraction = float(val_fraction)
        self.test_fraction = float(test_fraction)
        self.workers = int(workers)
        self.n_val = max(1, round(self.val_fraction * self.records))
        self.n_test = max(1, round(self.test_fraction * self.records))
        n_train = self.records - self.n_val - self.n_test
        if n_train < len(cond.CLASSES):
            raise ValueError(
                f"synthetic: records={self.records} with val_fraction={val_fraction} and "
                f"test_fraction={test_fraction} leaves {max(n_train, 0)} training records; at least "
                f"{len(cond.CLASSES)} are needed (one per class): lower the fractions or add records.")

    def fingerprint(self) -> dict[str, Any]:
        """Every parameter that changes the arrays (not ``workers``: results do not depend on it)."""
        return {
            "records": self.records, "sampling_rate": self.sampling_rate, "seconds": self.seconds,
            "leads": list(self.leads), "seed": self.seed, "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction, "generator": GENERATOR_VERSION,
        }

    def resolved_workers(self) -> int:
        return self.workers or min(2, os.cpu_count() or 1)

    def build(self, workdir: Path, progress: Progress | None = None) -> EcgArrays:
        """Generate every record (in worker processes when ``workers`` > 1) and split them."""
        started = time.perf_counter()
        targets = cond.assign_labels(self.records, self.seed)
        signals = self._generate(targets, progress)
        split = self.assign_splits(targets)
        log.info("generated %d synthetic ECGs (%d leads, %g Hz, %g s) in %.1f s", self.records,
                 len(self.leads), self.sampling_rate, self.seconds, time.perf_counter() - started)
        return EcgArrays(
            signals=signals, targets=targets, target_names=list(cond.CLASSES), split=split,
            sampling_rate=self.sampling_rate, leads=list(self.leads),
            record_ids=np.array([f"SYN{i + 1:05d}" for i in range(self.records)]),
            extra=self._extra(targets, split),
        )

    def _generate(self, targets: np.ndarray, progress: Progress | None) -> np.ndarray:
        samples = round(self.seconds * self.sampling_rate)
        signals = np.empty((self.records, len(self.leads), samples), dtype=np.float32)
        lead_index = tuple(cond.STANDARD_LEADS.index(lead) for lead in self.leads)
        workers = self.resolved_workers()
        size = max(1, min(10, math.ceil(self.records / (4 * workers))))
        chunks = [(start, min(start + size, self.records)) for start in range(0, self.records, size)]
        task = functools.partial(_generate_chunk, seed=self.seed, seconds=self.seconds,
                                 sampling_rate=self.sampling_rate, lead_index=lead_index)
        report = progress or (lambda done, total, what: None)
        report(0, self.records, PROGRESS_WHAT)
        log.info("generating %d synthetic ECGs with %d worker process(es)", self.records, workers)
        done = 0
        if workers <= 1:
            for start, stop in chunks:
                signals[start:stop] = task(start, targets[start:stop])
                done += stop - start
                report(done, self.records, PROGRESS_WHAT)
            return signals
        # "spawn": forking a process that runs threads (a Ray driver, a progress bar) can deadlock.
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(min(workers, len(chunks)), mp_context=context) as pool:
            futures = {pool.submit(task, start, targets[start:stop]): (start, stop) for start, stop in chunks}
            try:
                for future in concurrent.futures.as_completed(futures):
                    start, stop = futures[future]
                    signals[start:stop] = future.result()
                    done += stop - start
                    report(done, self.records, PROGRESS_WHAT)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return signals

    def assign_splits(self, targets: np.ndarray) -> np.ndarray:
        """Random train/val/test by seed; one positive record of every class is kept in train."""
        order = np.random.default_rng([self.seed, 3]).permutation(self.records)
        anchors: list[int] = []
        for column in range(targets.shape[1]):
            if not any(targets[i, column] for i in anchors):
                anchors.append(next(int(i) for i in order if targets[i, column] and i not in anchors))
        anchored = set(anchors)
        rest = [int(i) for i in order if i not in anchored]
        split = np.full(self.records, "train", dtype="<U5")
        split[rest[: self.n_val]] = "val"
        split[rest[self.n_val: self.n_val + self.n_test]] = "test"
        return split

    def _extra(self, targets: np.ndarray, split: np.ndarray) -> dict[str, Any]:
        try:
            nk_version = importlib.metadata.version("neurokit2")
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover - generation needed it
            nk_version = "unknown"
        return {
            "class_names": dict(cond.ABBREVIATIONS),
            "class_counts": {code: int(n) for code, n in zip(cond.CLASSES, targets.sum(axis=0))},
            "split_counts": {name: int((split == name).sum()) for name in ("train", "val", "test")},
            "generator": {
                "model": "ECGSYN (McSharry et al. 2003) via neurokit2.ecg_simulate, one trace per record "
                         "projected on 12 leads; solve_ivp max_step = 3 x the narrowest wave width",
                "neurokit2": nk_version, "version": GENERATOR_VERSION,
                "rhythm_fractions": dict(cond.RHYTHM_FRACTIONS),
                "abnormality_fraction": cond.ABNORMALITY_FRACTION, **cond.SETTINGS,
            },
        }


@hookimpl
def ecgsearch_register_datasets() -> list[DatasetInfo]:
    return [DatasetInfo(
        name="synthetic",
        description="ECGSYN 12-lead ECGs with exact labels: 4 sinus rhythms, 5 abnormalities "
                    "(PhysioNet 2021 codes); no download",
        factory=SyntheticEcg,
        tasks=("multilabel",),
        requires=("neurokit2",),
        install_hint="pip install neurokit2",
    )]
