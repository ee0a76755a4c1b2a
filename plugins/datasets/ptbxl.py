"""The ``ptbxl`` dataset: PTB-XL (21,799 clinical 12-lead ECGs, 10 s) read from a local copy.

PTB-XL is the standard public benchmark for multilabel ECG classification; reading it from the
PhysioNet folder layout (``ptbxl_database.csv``, ``scp_statements.csv``, WFDB records under
``records100/`` and ``records500/``) lets a search reproduce published numbers (Strodthoff et al. 2020)
with the recommended folds: ``strat_fold`` 1-8 train, 9 validation, 10 test.

Label sets follow the statement table: ``superdiagnostic`` maps every diagnostic code of a record to its
``diagnostic_class`` (NORM, MI, STTC, CD, HYP; likelihoods ignored), ``diagnostic_subclass`` to its
subclass, ``form`` and ``rhythm`` keep the codes flagged as such, ``all`` keeps every statement. Columns
come from the statement table, so they do not depend on which records are read. A record with no label
in the chosen set keeps an all-zero row (a legitimate "none of these" example), unless
``drop_unlabelled=True``.
"""

from __future__ import annotations

import ast
import concurrent.futures
import logging
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ecgsearch import (
    STANDARD_LEADS,
    DatasetInfo,
    EcgArrays,
    Progress,
    SignalWriter,
    bool_param,
    check_int,
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

READER_VERSION = 1  # bump when the arrays built from the same files change
LABEL_SETS = ("superdiagnostic", "diagnostic_subclass", "form", "rhythm", "all")
RECORD_SETS = {"records100": ("filename_lr", 100.0), "records500": ("filename_hr", 500.0)}
SAMPLING_RATE_RANGE = (50.0, 1000.0)
MAX_SECONDS = 10.0  # every PTB-XL record is 10 s long
FOLDS = {"train": range(1, 9), "val": (9,), "test": (10,)}
PROGRESS_WHAT = "reading PTB-XL records"








def label_columns(statements: Any, labels: str) -> tuple[list[str], dict[str, str]]:
    """The target names of a label set and the map statement code -> target name (pure, testable)."""
    flag = lambda column: statements[column].fillna(0).astype(float) == 1  # noqa: E731
    if labels in ("superdiagnostic", "diagnostic_subclass"):
        column = "diagnostic_class" if labels == "superdiagnostic" else "diagnostic_subclass"
        chosen = statements[flag("diagnostic") & statements[column].notna()]
        mapping = {str(code): str(target) for code, target in chosen[column].items()}
    elif labels in ("form", "rhythm"):
        mapping = {str(code): str(code) for code in statements.index[flag(labels)]}
    else:
        mapping = {str(code): str(code) for code in statements.index}
    return sorted(set(mapping.values())), mapping


def parse_scp_codes(text: str, ecg_id: Any) -> dict[str, float]:
    """``scp_codes`` is a Python dict literal: parse it safely (``ast.literal_eval``, never ``eval``)."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = None
    if not isinstance(value, dict):
        raise ValueError(f"ptbxl: scp_codes of ecg_id {ecg_id} is not a dictionary of codes (got {text!r}); "
                         "the ptbxl_database.csv file looks damaged, download it again.")
    return value


class PtbXl:
    """An ``EcgSource`` over a local PTB-XL folder.

    root: the folder holding ``ptbxl_database.csv``; labels: one of ``LABEL_SETS``; records:
    ``records100`` (100 Hz files) or ``records500`` (500 Hz); sampling_rate and seconds: the output grid
    (resampled from the files' rate, first ``seconds`` kept); leads: standard lead names in the wanted
    channel order (default all 12); workers: reader threads (0: automatic); drop_unlabelled: drop the
    records with no label in the chosen set instead of keeping an all-zero row.
    """

    def __init__(self, root: str, labels: str = "superdiagnostic", records: str = "records100",
                 sampling_rate: float = 100, seconds: float = 10, leads: Sequence[str] | None = None,
                 workers: int = 0, drop_unlabelled: bool = False) -> None:
        if labels not in LABEL_SETS:
            raise ValueError(f"ptbxl: labels must be one of {', '.join(LABEL_SETS)} (got {labels!r}).")
        if records not in RECORD_SETS:
            raise ValueError(f"ptbxl: records must be one of {', '.join(RECORD_SETS)} (got {records!r}).")
        check_number("ptbxl", "sampling_rate", sampling_rate, *SAMPLING_RATE_RANGE, what="a number of Hz")
        if not is_number(seconds) or not 0 < seconds <= MAX_SECONDS:
            raise ValueError(f"ptbxl: seconds must be a number above 0 and at most {MAX_SECONDS:g}, the "
                             f"length of every PTB-XL record (got {seconds!r}).")
        check_int("ptbxl", "workers", workers, note=", 0 for automatic")
        if not isinstance(drop_unlabelled, bool):
            raise ValueError(f"ptbxl: drop_unlabelled must be true or false (got {drop_unlabelled!r}).")
        self.leads = standard_leads(leads, "ptbxl")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise ValueError(f"ptbxl: the folder {self.root} does not exist; set data.root to the PTB-XL "
                             "folder that holds ptbxl_database.csv (download it from "
                             "physionet.org/content/ptb-xl).")
        for name in ("ptbxl_database.csv", "scp_statements.csv"):
            if not (self.root / name).is_file():
                raise ValueError(f"ptbxl: {name} is missing from {self.root}; point data.root at the PTB-XL "
                                 "folder that holds both ptbxl_database.csv and scp_statements.csv.")
        self.labels = labels
        self.records = records
        self.sampling_rate = float(sampling_rate)
        self.seconds = float(seconds)
        self.workers = int(workers)
        self.drop_unlabelled = drop_unlabelled

    def fingerprint(self) -> dict[str, Any]:
        """Every parameter that changes the arrays (not ``workers``: results do not depend on it)."""
        return {
            "root": str(self.root.resolve()), "labels": self.labels, "records": self.records,
            "sampling_rate": self.sampling_rate, "seconds": self.seconds, "leads": list(self.leads),
            "drop_unlabelled": self.drop_unlabelled, "reader": READER_VERSION,
        }

    def read_tables(self) -> tuple[Any, np.ndarray, list[str]]:
        """The database rows kept, their 0/1 targets and the target names."""
        import pandas as pd

        database = pd.read_csv(self.root / "ptbxl_database.csv", index_col="ecg_id")
        statements = pd.read_csv(self.root / "scp_statements.csv", index_col=0)
        names, mapping = label_columns(statements, self.labels)
        column = {name: j for j, name in enumerate(names)}
        targets = np.zeros((len(database), len(names)), dtype=np.float32)
        for i, (ecg_id, text) in enumerate(database["scp_codes"].items()):
            for code in parse_scp_codes(text, ecg_id):
                if code in mapping:
                    targets[i, column[mapping[code]]] = 1.0
        if self.drop_unlabelled:
            keep = targets.any(axis=1)
            log.info("ptbxl: dropping %d record(s) without a %s label", int((~keep).sum()), self.labels)
            database, targets = database[keep], targets[keep]
        return database, targets, names

    def build(self, workdir: Path, progress: Progress | None = None) -> EcgArrays:
        """Read the tables, then every record (in threads: the work is file reading and decoding)."""
        started = time.perf_counter()
        database, targets, names = self.read_tables()
        split = self._splits(database)
        filename_column, _ = RECORD_SETS[self.records]
        paths = [self.root / str(name) for name in database[filename_column]]
        missing = next((p for p in paths if not p.with_suffix(".hea").is_file()), None)
        if missing is not None:
            raise ValueError(f"ptbxl: the record file {missing}.hea listed in ptbxl_database.csv is missing; "
                             f"download the {self.records} folder completely or choose the other records.")
        signals = self._read_all(paths, progress, workdir)
        log.info("read %d PTB-XL records (%d leads, %g Hz, %g s) in %.1f s", len(paths), len(self.leads),
                 self.sampling_rate, self.seconds, time.perf_counter() - started)
        return EcgArrays(
            signals=signals, targets=targets, target_names=names, split=split,
            sampling_rate=self.sampling_rate, leads=list(self.leads),
            record_ids=np.array([str(i) for i in database.index]),
            extra={
                "labels": self.labels,
                "class_counts": {name: int(n) for name, n in zip(names, targets.sum(axis=0))},
                "split_counts": {name: int((split == name).sum()) for name in FOLDS},
                "unlabelled": int((~targets.any(axis=1)).sum()),
            },
        )

    def _splits(self, database: Any) -> np.ndarray:
        folds = database["strat_fold"].to_numpy()
        split = np.full(len(folds), "", dtype="<U5")
        for name, members in FOLDS.items():
            split[np.isin(folds, list(members))] = name
        bad = folds[split == ""]
        if len(bad):
            raise ValueError(f"ptbxl: strat_fold must be between 1 and 10 in ptbxl_database.csv "
                             f"(found {bad[0]!r}).")
        return split

    def _read_all(self, paths: list[Path], progress: Progress | None, workdir: Path | None) -> np.ndarray:
        """Every record, in order, written into the cache entry as it is read (``SignalWriter``)."""
        writer = SignalWriter(workdir, len(paths), (len(self.leads), round(self.seconds * self.sampling_rate)))
        report = progress or (lambda done, total, what: None)
        report(0, len(paths), PROGRESS_WHAT)
        workers = self.workers or min(4, os.cpu_count() or 1)
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for done, (i, signal) in enumerate(pool.map(self._read_one, range(len(paths)), paths), 1):
                writer.put([i], signal[None])
                if done % 100 == 0 or done == len(paths):
                    report(done, len(paths), PROGRESS_WHAT)
        return writer.finish()

    def _read_one(self, index: int, path: Path) -> tuple[int, np.ndarray]:
        """One record: the chosen leads, resampled, cut (or zero-padded) to the output length."""
        import wfdb

        record = wfdb.rdrecord(str(path))
        by_lower = {str(name).lower(): j for j, name in enumerate(record.sig_name)}
        absent = [lead for lead in self.leads if lead.lower() not in by_lower]
        if absent:
            raise ValueError(f"ptbxl: record {path} has no lead {absent[0]} "
                             f"(it has {', '.join(record.sig_name)}).")
        signal = record.p_signal[:, [by_lower[lead.lower()] for lead in self.leads]].T
        signal = resample(np.nan_to_num(signal.astype(np.float64)), float(record.fs), self.sampling_rate)
        samples = round(self.seconds * self.sampling_rate)
        out = np.zeros((len(self.leads), samples), dtype=np.float32)
        out[:, : min(samples, signal.shape[1])] = signal[:, :samples]
        return index, out


@hookimpl
def ecgsearch_register_datasets() -> list[DatasetInfo]:
    return [DatasetInfo(
        name="ptbxl",
        description="PTB-XL 12-lead ECGs (local copy): superdiagnostic, subclass, form, rhythm or all "
                    "SCP labels; recommended folds 1-8/9/10",
        factory=PtbXl,
        tasks=("multilabel",),
        requires=("wfdb", "pandas", "scipy"),
        install_hint="pip install wfdb pandas scipy",
        params={
            "root": str_param(doc="the PTB-XL folder"),
            "labels": str_param(*LABEL_SETS, doc="the statements used as labels; `superdiagnostic`: NORM, MI, STTC, CD, HYP"),
            "records": str_param(*RECORD_SETS, doc="`records100` (100 Hz files) or `records500`"),
            "sampling_rate": float_param(*SAMPLING_RATE_RANGE, doc="resampled rate (Hz)"),
            "seconds": float_param(0, MAX_SECONDS, low_open=True, doc="the central `seconds` (at most 10)"),
            "leads": list_param("str", choices=STANDARD_LEADS, ignore_case=True, nullable=True,
                                doc="lead names, e.g. the 8-lead subset `[I, II, V1, V2, V3, V4, V5, V6]` (null: 12)"),
            "workers": int_param(0, 1024, doc="reading threads"),
            "drop_unlabelled": bool_param("drop records with no statement of the set (else kept, all labels 0)"),
        }
    )]
