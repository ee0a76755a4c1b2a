"""The ``code15`` dataset: CODE-15% (345,779 12-lead ECGs from 233,770 Brazilian patients) read locally.

CODE-15% is the public 15% sample of the CODE study (Ribeiro et al. 2020): six abnormalities annotated
per exam (1dAVb, RBBB, LBBB, SB, ST, AF), 400 Hz tracings of 4096 samples (10.24 s; shorter exams are
zero-padded on both sides). The files are ``exams.csv`` plus ``exams_part*.hdf5`` parts, each holding
``tracings`` (N x 4096 x 12) and ``exam_id`` (N; trailing ids of 0 are padding rows). The parts are tens
of GB, so rows are read lazily with h5py, a block at a time, only for the exams ``exams.csv`` lists.

The split is by patient (no patient in two splits), because several exams of one patient in both train
and test would overstate the test score.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ecgsearch import (
    STANDARD_LEADS,
    DatasetInfo,
    EcgArrays,
    LabelSet,
    Progress,
    SignalWriter,
    SplitShares,
    check_number,
    float_param,
    hookimpl,
    int_param,
    is_number,
    list_param,
    resample,
    standard_leads,
    str_param,
)

log = logging.getLogger(__name__)

READER_VERSION = 2  # bump when the arrays built from the same files change; 2: patient ids
CLASSES = ("1dAVb", "RBBB", "LBBB", "SB", "ST", "AF")
FILE_RATE = 400.0
FILE_SAMPLES = 4096
SAMPLING_RATE_RANGE = (50.0, 1000.0)
BLOCK_ROWS = 256  # rows read from a part at once: bounded memory whatever the part size
PROGRESS_WHAT = "reading CODE-15% exams"






def _flags(column: Any) -> np.ndarray:
    """A label column as 0/1 (the csv spells them True/False; 0/1 is accepted too)."""
    text = column.astype(str).str.strip().str.lower()
    return text.isin(("true", "1", "1.0")).to_numpy(dtype=np.float32)


class Code15:
    """An ``EcgSource`` over a local CODE-15% folder.

    root: the folder with ``exams.csv`` and the ``exams_part*.hdf5`` files; sampling_rate and seconds:
    the output grid (the central ``seconds`` of the 10.24 s tracing, resampled from 400 Hz); leads:
    standard lead names in the wanted channel order; val/test_fraction: shares of exams in those splits,
    drawn by patient; seed: the patient shuffle.
    """

    def __init__(self, root: str, sampling_rate: float = 400, seconds: float = 10.24,
                 leads: Sequence[str] | None = None, val_fraction: float = 0.1, test_fraction: float = 0.1,
                 seed: int = 0) -> None:
        check_number("code15", "sampling_rate", sampling_rate, *SAMPLING_RATE_RANGE, what="a number of Hz")
        longest = FILE_SAMPLES / FILE_RATE
        if not is_number(seconds) or not 0 < seconds <= longest:
            raise ValueError(f"code15: seconds must be a number above 0 and at most {longest:g}, the "
                             f"length of every CODE-15% tracing (got {seconds!r}).")
        self.split = SplitShares.checked("code15", val_fraction, test_fraction, seed, below=0.5)
        self.leads = standard_leads(leads, "code15")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise ValueError(f"code15: the folder {self.root} does not exist; set data.root to the CODE-15% "
                             "folder that holds exams.csv (download it from zenodo.org/records/4916206).")
        if not (self.root / "exams.csv").is_file():
            raise ValueError(f"code15: exams.csv is missing from {self.root}; point data.root at the "
                             "CODE-15% folder that holds exams.csv and the exams_part*.hdf5 files.")
        self.sampling_rate = float(sampling_rate)
        self.seconds = float(seconds)

    def fingerprint(self) -> dict[str, Any]:
        """Every parameter that changes the arrays."""
        return {
            "root": str(self.root.resolve()), "sampling_rate": self.sampling_rate, "seconds": self.seconds,
            "leads": list(self.leads), **self.split.fingerprint(), "reader": READER_VERSION,
        }

    def read_table(self) -> Any:
        """``exams.csv``, checked: the columns this reader needs, one row per exam."""
        import pandas as pd

        exams = pd.read_csv(self.root / "exams.csv")
        needed = ["exam_id", "patient_id", "trace_file", *CLASSES]
        absent = [column for column in needed if column not in exams.columns]
        if absent:
            raise ValueError(f"code15: exams.csv in {self.root} lacks the column(s) {', '.join(absent)}; "
                             "it does not look like the CODE-15% exams.csv, download it again.")
        if exams["exam_id"].duplicated().any():
            duplicate = exams["exam_id"][exams["exam_id"].duplicated()].iloc[0]
            raise ValueError(f"code15: exam_id {duplicate} appears twice in exams.csv; each exam must be "
                             "listed once.")
        return exams

    def build(self, workdir: Path, progress: Progress | None = None) -> EcgArrays:
        """Check every part the table names exists, then copy each exam's rows out of its part."""
        started = time.perf_counter()
        exams = self.read_table()
        parts = sorted(set(exams["trace_file"].astype(str)))
        missing = [name for name in parts if not (self.root / name).is_file()]
        if missing:
            count = int(exams["trace_file"].astype(str).isin(missing).sum())
            raise ValueError(f"code15: {missing[0]} (named by {count} exam(s) in exams.csv) is missing from "
                             f"{self.root}; download every exams_part*.hdf5 file, or remove the rows of the "
                             "missing parts from exams.csv.")
        samples = round(self.seconds * self.sampling_rate)
        writer = SignalWriter(workdir, len(exams), (len(self.leads), samples))  # into the entry, as read
        report = progress or (lambda done, total, what: None)
        report(0, len(exams), PROGRESS_WHAT)
        done = 0
        for part in parts:
            rows = np.flatnonzero(exams["trace_file"].astype(str).to_numpy() == part)
            self._read_part(self.root / part, exams["exam_id"].to_numpy()[rows], rows, writer)
            done += len(rows)
            report(done, len(exams), PROGRESS_WHAT)
        signals = writer.finish()
        targets = np.stack([_flags(exams[name]) for name in CLASSES], axis=1)
        split = self.assign_splits(exams["patient_id"].to_numpy())
        log.info("read %d CODE-15%% exams from %d part(s) (%d leads, %g Hz, %g s) in %.1f s", len(exams),
                 len(parts), len(self.leads), self.sampling_rate, self.seconds, time.perf_counter() - started)
        return EcgArrays(
            signals=signals, targets=targets, target_names=list(CLASSES), split=split,
            sampling_rate=self.sampling_rate, leads=list(self.leads),
            record_ids=exams["exam_id"].astype(str).to_numpy(),
            patients=patient_keys(exams["patient_id"].to_numpy()),
            extra={
                "class_counts": {name: int(n) for name, n in zip(CLASSES, targets.sum(axis=0))},
                "split_counts": {name: int((split == name).sum()) for name in ("train", "val", "test")},
                "parts": parts,
            },
        )

    def _read_part(self, path: Path, exam_ids: np.ndarray, rows: np.ndarray, writer: SignalWriter) -> None:
        """Write the exams' ``rows`` from one part, reading only the blocks of rows that hold wanted exams."""
        import h5py

        with h5py.File(path, "r") as handle:
            stored = np.asarray(handle["exam_id"][()]).astype(np.int64)
            where = {int(exam): i for i, exam in enumerate(stored) if exam != 0}  # 0: padding rows
            absent = [int(exam) for exam in exam_ids if int(exam) not in where]
            if absent:
                raise ValueError(f"code15: exam_id {absent[0]} is listed in exams.csv with trace_file "
                                 f"{path.name} but is not in that file ({len(absent)} such exam(s)); the "
                                 "file is incomplete, download it again.")
            file_rows = np.array([where[int(exam)] for exam in exam_ids], dtype=np.int64)
            order = np.argsort(file_rows)
            tracings = handle["tracings"]
            lead_index = [STANDARD_LEADS.index(lead) for lead in self.leads]
            for start in range(0, len(order), BLOCK_ROWS):
                chunk = order[start:start + BLOCK_ROWS]
                first, last = int(file_rows[chunk[0]]), int(file_rows[chunk[-1]])
                if last - first < 2 * BLOCK_ROWS:  # a contiguous slice is much faster than fancy indexing
                    block = tracings[first:last + 1][file_rows[chunk] - first]
                else:  # h5py wants increasing indices: file_rows[chunk] is sorted by construction
                    block = tracings[file_rows[chunk]]
                writer.put(rows[chunk], self._to_grid(block[:, :, lead_index]))

    def _to_grid(self, block: np.ndarray) -> np.ndarray:
        """(n, 4096, leads) at 400 Hz -> (n, leads, samples): the central ``seconds``, resampled."""
        keep = round(self.seconds * FILE_RATE)
        start = (block.shape[1] - keep) // 2
        signal = np.nan_to_num(block[:, start:start + keep, :].transpose(0, 2, 1).astype(np.float64))
        signal = resample(signal, FILE_RATE, self.sampling_rate)
        samples = round(self.seconds * self.sampling_rate)
        out = np.zeros((*signal.shape[:2], samples), dtype=np.float32)
        out[..., : min(samples, signal.shape[-1])] = signal[..., :samples]
        return out

    def assign_splits(self, patient_ids: np.ndarray) -> np.ndarray:
        """Whole patients, shuffled by seed, fill test then val up to their share of exams; the rest train.

        An exam without a patient id counts as its own patient.
        """
        keys = np.array([f"p{p}" if p == p else f"e{i}" for i, p in enumerate(patient_ids)])  # NaN != NaN
        patients, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        if len(patients) < 3:
            raise ValueError(f"code15: exams.csv has {len(patients)} patient(s); a patient-level split "
                             "needs at least 3 (one per split).")
        order = np.random.default_rng([self.split.seed, 15]).permutation(len(patients))
        total = len(keys)
        group = np.zeros(len(patients), dtype=np.int8)  # 0 train, 1 val, 2 test
        filled = {1: 0, 2: 0}
        want = dict(zip((1, 2), self.split.counts(total)))
        for patient in order:
            for target in (2, 1):
                if filled[target] < want[target] and (filled[target] == 0 or filled[target] + counts[patient]
                                                      <= want[target]):
                    group[patient] = target
                    filled[target] += counts[patient]
                    break
        if not (group == 0).any():
            group[order[-1]] = 0
        return np.array(["train", "val", "test"])[group[inverse]]


def patient_keys(patient_ids: np.ndarray) -> np.ndarray:
    """Each exam's patient as text (``EcgArrays.patients``: ``500.0`` -> ``500``); an exam without a patient id
    is its own patient (``exam<row>``), as in ``assign_splits``."""
    keys = []
    for i, value in enumerate(patient_ids):
        if value != value:  # NaN: no patient id
            keys.append(f"exam{i}")
        elif isinstance(value, (float, np.floating)) and float(value).is_integer():
            keys.append(str(int(value)))
        else:
            keys.append(str(value))
    return np.array(keys, dtype=str)


def target_names(params: Mapping[str, Any]) -> list[str]:
    """The target names (``DatasetInfo.target_names``): the six abnormalities, whatever the parameters."""
    return list(CLASSES)


@hookimpl
def ecgsearch_register_datasets() -> list[DatasetInfo]:
    return [DatasetInfo(
        name="code15",
        description="CODE-15% 12-lead ECGs (local copy, 400 Hz): 1dAVb, RBBB, LBBB, SB, ST, AF; "
                    "patient-level split",
        factory=Code15,
        label_sets={"abnormalities": LabelSet(("multilabel",), doc="1dAVb, RBBB, LBBB, SB, ST, AF")},
        target_names=target_names,
        provides=("patients",),
        requires=("h5py", "pandas", "scipy"),
        install_hint="pip install h5py pandas scipy",
        params={
            "root": str_param(doc="the CODE-15% folder (exams.csv, exams_part*.hdf5)"),
            "sampling_rate": float_param(*SAMPLING_RATE_RANGE, doc="resampled rate (Hz)"),
            "seconds": float_param(0, FILE_SAMPLES / FILE_RATE, low_open=True,
                                   doc="the central `seconds` of each tracing"),
            "leads": list_param("str", choices=STANDARD_LEADS, ignore_case=True, nullable=True,
                                doc="lead names (null: 12)"),
            "val_fraction": float_param(0, 0.5, low_open=True, high_open=True,
                                        doc="validation share of exams, by patient (no patient in two splits)"),
            "test_fraction": float_param(0, 0.5, low_open=True, high_open=True, doc="test share of exams, by patient"),
            "seed": int_param(0, 2**32 - 1, doc="the patient shuffle"),
        }
    )]
