"""The ``synthetic`` dataset: 12-lead ECGs from neurokit2's ECGSYN with labels known by construction.

It needs no download, so quickstarts, tests and CI can run a real search anywhere, and its labels are
exact: a model that fails here is broken, not fooled by label noise. Classes are scored PhysioNet 2021
codes (one sinus rhythm per record plus independent conduction/repolarisation abnormalities), so the
same metrics and reports apply as on the real Challenge data. Each record is written to
``workdir/records/`` as a Challenge ``.hea``/``.mat`` pair and the arrays are what the physionet2021
reader decodes from those files (so they are quantised like real data, and ``PhysioNet2021(root=...)``
can read the folder too). ``targets="intervals"`` swaps the labels for regression targets known by
construction: HR (bpm), PR, QRS and QT (ms). ``records_per_patient`` > 1 makes several records per
patient (they share the patient's labels, heart rate, wave shapes and lead geometry, differ in beat-to-beat
variation, the first beat's phase, noise and baseline wander, and stay in one split), with patient ids
for the contrastive task's ``positives: patient``. The physiology lives in ``_ecgsyn_conditions``, the file
format in ``_synthetic_wfdb``; this module validates parameters, generates records in parallel and
splits them.
"""

from __future__ import annotations

import concurrent.futures
import functools
import importlib.metadata
import logging
import math
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ecgsearch import (
    DatasetInfo,
    EcgArrays,
    LabelSet,
    Progress,
    SplitShares,
    check_int,
    check_number,
    float_param,
    hookimpl,
    int_param,
    list_param,
    standard_leads,
)
from ecgsearch_plugins.datasets import _ecgsyn_conditions as cond
from ecgsearch_plugins.datasets import _synthetic_wfdb as wfdb
from ecgsearch_plugins.datasets._targets import check_targets, chosen_columns, named_targets, targets_param

log = logging.getLogger(__name__)

GENERATOR_VERSION = 3  # bump when the generated arrays change, so old cache entries are not reused
MIN_RECORDS = 20
SAMPLING_RATE_RANGE = (50.0, 1000.0)
SECONDS_RANGE = (2.0, 300.0)
PROGRESS_WHAT = "generating synthetic ECGs"
TARGETS = ("labels", "intervals")
RECORDS_DIR = "records"


def record_name(index: int) -> str:
    return f"SYN{index + 1:05d}"


def _generate_chunk(start: int, labels: np.ndarray, *, seed: int, seconds: float, sampling_rate: float,
                    leads: tuple[str, ...], folder: str,
                    per_patient: int = 1) -> tuple[np.ndarray, list[list[str]], np.ndarray]:
    """Generate, write and read back records ``start .. start + len(labels)`` (a worker task); record
    ``i``'s patient is ``i // per_patient`` (per_patient 1: each record is its own patient, as before).

    Returns the signals as read, ``(records, leads, samples)`` float32, the Dx codes as read, and the
    intervals as constructed, ``(records, 4)``. Writing and reading here keeps the file work parallel.
    """
    signals, dx, intervals = [], [], []
    for offset, row in enumerate(labels):
        index = start + offset
        codes = [code for code, flag in zip(cond.CLASSES, row) if flag]
        patient = index // per_patient
        record, known = cond.synthesize(seed, index, set(codes), seconds, sampling_rate,
                                        patient=patient if per_patient > 1 else None)
        hea = wfdb.write_record(Path(folder), record_name(index), record, sampling_rate, cond.STANDARD_LEADS,
                                codes, *wfdb.demographics(seed, patient))
        signal, codes_read = wfdb.read_back(hea, leads)
        signals.append(signal)
        dx.append(codes_read)
        intervals.append(known)
    return np.stack(signals), dx, np.array(intervals, dtype=np.float32)


class SyntheticEcg:
    """An ``EcgSource`` of ECGSYN records: sinus rhythms plus IAVB, NSIVCB, LQT, TInv and LQRSV.

    records: how many; sampling_rate (Hz) and seconds: the output grid; leads: standard lead names in
    the wanted channel order; seed: everything random derives from it; val/test_fraction: split sizes;
    targets: ``labels`` (9 SNOMED codes, multilabel) or ``intervals`` (``hr_bpm, pr_ms, qrs_ms,
    qt_ms``, regression), or a list of those interval names to keep only them (``["qrs_ms"]``); workers:
    processes generating records (0: ``min(2, cpu_count)``; 1: in this process); records_per_patient:
    consecutive records of one patient (the last patient may have fewer), who share labels and waveform
    traits and one split; 1 (default): every record its own patient, no patient ids. The split depends on
    the labels in both modes, so both see the same records in each part.
    """

    def __init__(self, records: int = 1200, sampling_rate: float = 100, seconds: float = 10,
                 leads: Sequence[str] | None = None, seed: int = 0, val_fraction: float = 0.15,
                 test_fraction: float = 0.15, workers: int = 0, targets: str | Sequence[str] = "labels",
                 records_per_patient: int = 1) -> None:
        check_int("synthetic", "records", records, low=MIN_RECORDS)
        check_number("synthetic", "sampling_rate", sampling_rate, *SAMPLING_RATE_RANGE, what="a number of Hz")
        check_number("synthetic", "seconds", seconds, *SECONDS_RANGE)
        self.split = SplitShares.checked("synthetic", val_fraction, test_fraction, seed)
        check_int("synthetic", "workers", workers, note=", 0 for automatic")
        check_int("synthetic", "records_per_patient", records_per_patient, low=1)
        self.targets = check_targets("synthetic", targets, TARGETS, cond.INTERVAL_NAMES)
        self.records = int(records)
        self.sampling_rate = float(sampling_rate)
        self.seconds = float(seconds)
        self.leads = standard_leads(leads, "synthetic", cond.STANDARD_LEADS)
        self.seed = self.split.seed
        self.workers = int(workers)
        self.per_patient = int(records_per_patient)
        self.patients = math.ceil(self.records / self.per_patient)
        if self.patients < len(cond.CLASSES) + 2:
            raise ValueError(
                f"synthetic: records={self.records} with records_per_patient={self.per_patient} makes "
                f"{self.patients} patients; at least {len(cond.CLASSES) + 2} are needed (one per class in "
                "training, one each for validation and test): add records or lower records_per_patient.")
        self.n_val, self.n_test = self.split.counts(self.records)
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
            "leads": list(self.leads), **self.split.fingerprint(), "targets": self.targets,
            "generator": GENERATOR_VERSION,
            # only when set: entries built before the parameter stay valid (their arrays are the same)
            **({"records_per_patient": self.per_patient} if self.per_patient > 1 else {}),
        }

    def resolved_workers(self) -> int:
        return self.workers or min(2, os.cpu_count() or 1)

    def build(self, workdir: Path | None, progress: Progress | None = None) -> EcgArrays:
        """Generate every record (in worker processes when ``workers`` > 1) into ``workdir/records`` as
        Challenge files, read them back, and split them. Without a workdir the files are temporary."""
        if workdir is None:
            with tempfile.TemporaryDirectory(prefix="ecgsearch-synthetic-") as scratch:
                return self.build(Path(scratch), progress)
        started = time.perf_counter()
        folder = Path(workdir) / RECORDS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        for stale in [*folder.glob("SYN*.hea"), *folder.glob("SYN*.mat")]:
            stale.unlink()  # a smaller rebuild in the same workdir must not leave extra records behind
        patient_of = np.arange(self.records) // self.per_patient
        drawn = cond.assign_labels(self.patients, self.seed)[patient_of]  # a patient's records share labels
        signals, dx, intervals = self._generate(drawn, folder, progress)
        labels = np.array([[code in codes for code in cond.CLASSES] for codes in dx], dtype=np.float32)
        if not np.array_equal(labels, drawn):  # the reader lost or invented a code: never train on that
            raise RuntimeError(f"synthetic: the Dx codes read back from {folder} differ from those written.")
        split = self.assign_splits(labels, patient_of)
        log.info("generated %d synthetic ECGs (%d leads, %g Hz, %g s) in %.1f s", self.records,
                 len(self.leads), self.sampling_rate, self.seconds, time.perf_counter() - started)
        if self.targets == "labels":
            targets, names = labels, list(cond.CLASSES)
        else:
            targets, names = chosen_columns(intervals, cond.INTERVAL_NAMES, self.targets)
        return EcgArrays(
            signals=signals, targets=targets, target_names=names, split=split,
            sampling_rate=self.sampling_rate, leads=list(self.leads),
            record_ids=np.array([record_name(i) for i in range(self.records)]),
            patients=np.array([f"P{p + 1:05d}" for p in patient_of]) if self.per_patient > 1 else None,
            extra={**self._extra(labels, split), "records_dir": str(folder),
                   "interval_ranges": {name: [round(float(intervals[:, k].min()), 1),
                                              round(float(intervals[:, k].max()), 1)]
                                       for k, name in enumerate(cond.INTERVAL_NAMES)}},
        )

    def _generate(self, labels: np.ndarray, folder: Path,
                  progress: Progress | None) -> tuple[np.ndarray, list[list[str]], np.ndarray]:
        samples = round(self.seconds * self.sampling_rate)
        signals = np.empty((self.records, len(self.leads), samples), dtype=np.float32)
        intervals = np.empty((self.records, len(cond.INTERVAL_NAMES)), dtype=np.float32)
        dx: list[list[str]] = [[] for _ in range(self.records)]
        workers = self.resolved_workers()
        size = max(1, min(10, math.ceil(self.records / (4 * workers))))
        chunks = [(start, min(start + size, self.records)) for start in range(0, self.records, size)]
        task = functools.partial(_generate_chunk, seed=self.seed, seconds=self.seconds,
                                 sampling_rate=self.sampling_rate, leads=tuple(self.leads),
                                 folder=str(folder), per_patient=self.per_patient)
        report = progress or (lambda done, total, what: None)
        report(0, self.records, PROGRESS_WHAT)
        log.info("generating %d synthetic ECGs with %d worker process(es)", self.records, workers)
        done = 0

        def store(start: int, stop: int, result: tuple[np.ndarray, list[list[str]], np.ndarray]) -> None:
            nonlocal done
            signals[start:stop], dx[start:stop], intervals[start:stop] = result
            done += stop - start
            report(done, self.records, PROGRESS_WHAT)

        if workers <= 1:
            for start, stop in chunks:
                store(start, stop, task(start, labels[start:stop]))
            return signals, dx, intervals
        # "spawn": forking a process that runs threads (a Ray driver, a progress bar) can deadlock.
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(min(workers, len(chunks)), mp_context=context) as pool:
            futures = {pool.submit(task, start, labels[start:stop]): (start, stop) for start, stop in chunks}
            try:
                for future in concurrent.futures.as_completed(futures):
                    store(*futures[future], future.result())
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return signals, dx, intervals

    def assign_splits(self, targets: np.ndarray, patient_of: np.ndarray | None = None) -> np.ndarray:
        """Random train/val/test by seed; one positive record of every class is kept in train. Whole patients
        are split (``patient_of``: each record's patient, consecutive; None: every record its own), validation
        and test taking patients until they hold their share of records."""
        patient_of = np.arange(self.records) if patient_of is None else np.asarray(patient_of)
        starts = np.flatnonzero(np.r_[True, patient_of[1:] != patient_of[:-1]])
        stops = np.r_[starts[1:], len(patient_of)]
        units = np.maximum.reduceat(targets, starts, axis=0)  # a patient is positive if a record is
        order = np.random.default_rng([self.seed, 3]).permutation(len(starts))
        anchors: list[int] = []
        for column in range(units.shape[1]):
            if not any(units[i, column] for i in anchors):
                anchors.append(next(int(i) for i in order if units[i, column] and i not in anchors))
        anchored = set(anchors)
        split = np.full(self.records, "train", dtype="<U5")
        filled = {"val": 0, "test": 0}
        for unit in (int(i) for i in order if i not in anchored):
            part = "val" if filled["val"] < self.n_val else "test" if filled["test"] < self.n_test else None
            if part is None:
                break
            split[starts[unit]:stops[unit]] = part
            filled[part] += int(stops[unit] - starts[unit])
        return split

    def _extra(self, targets: np.ndarray, split: np.ndarray) -> dict[str, Any]:
        try:
            nk_version = importlib.metadata.version("neurokit2")
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover - generation needed it
            nk_version = "unknown"
        patients = {"patients": self.patients, "records_per_patient": self.per_patient} if self.per_patient > 1 else {}
        return {
            **patients,
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


def target_names(params: Mapping[str, Any]) -> list[str] | None:
    """The target names the data parameters give (``DatasetInfo.target_names``): the 9 codes, the 4 intervals or
    the listed intervals."""
    return named_targets(params.get("targets", "labels"),
                         {"labels": cond.CLASSES, "intervals": cond.INTERVAL_NAMES}, cond.INTERVAL_NAMES)


def _several(value: object) -> bool:
    """``records_per_patient`` above 1 (then records name their patients)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 1


@hookimpl
def ecgsearch_register_datasets() -> list[DatasetInfo]:
    return [DatasetInfo(
        name="synthetic",
        description="ECGSYN 12-lead ECGs with exact labels (4 sinus rhythms, 5 abnormalities; PhysioNet "
                    "2021 codes) or HR/PR/QRS/QT targets; no download",
        factory=SyntheticEcg,
        label_param="targets",
        label_sets={"labels": LabelSet(("multilabel",), doc="9 SNOMED-CT codes (4 sinus rhythms, 5 abnormalities)"),
                    "intervals": LabelSet(("regression", "probabilistic"), members=tuple(cond.INTERVAL_NAMES),
                                          doc="HR, PR, QRS, QT")},
        target_names=target_names,
        provides=lambda params: ("patients",) if _several(params.get("records_per_patient", 1)) else (),
        requires=("neurokit2", "scipy"),
        install_hint="pip install neurokit2 scipy",
        params={
            "records": int_param(MIN_RECORDS, 10_000_000, doc="number of records"),
            "sampling_rate": float_param(*SAMPLING_RATE_RANGE, doc="Hz"),
            "seconds": float_param(*SECONDS_RANGE, doc="record length"),
            "leads": list_param("str", choices=cond.STANDARD_LEADS, ignore_case=True, nullable=True,
                                doc="any subset (null: the 12 standard leads)"),
            "seed": int_param(0, 2**32 - 1, doc="the records and their split"),
            "val_fraction": float_param(0, 1, low_open=True, high_open=True, doc="validation share"),
            "test_fraction": float_param(0, 1, low_open=True, high_open=True, doc="test share"),
            "workers": int_param(0, 1024, doc="generation processes (0: up to 2); the arrays do not depend on it"),
            "targets": targets_param(TARGETS, cond.INTERVAL_NAMES, doc="`labels` (9 SNOMED codes, multilabel) or "
                                     "`intervals` (HR, PR, QRS, QT; regression)"),
            "records_per_patient": int_param(1, 10_000_000, doc="records of each patient, who share labels, waveform "
                                             "traits and a split (1: no patient ids)"),
        }
    )]
