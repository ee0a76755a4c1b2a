"""PTB-XL-layout folders for tests (not collected: no ``test_`` prefix): real metadata rows of the shared
excerpt (``../shared/data/ptbxl``), the real statement table, and 100 Hz WFDB records whose signals a test
chooses. Tests that use it take conftest's ``shared_data`` fixture, which skips them without the data."""

from __future__ import annotations

import ast
import csv
import shutil
from pathlib import Path
from typing import Callable

import numpy as np

WFDB_LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
SUPERCLASSES = ("NORM", "MI", "STTC", "CD", "HYP")
Row = dict[str, str]


def read_excerpt(shared: Path) -> tuple[list[str], list[Row]]:
    """The excerpt's column names and its 520 rows (``ecg_id`` ascending), as strings."""
    with open(shared / "ptbxl" / "ptbxl_database_excerpt.csv", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def diagnostic_classes(shared: Path) -> dict[str, str]:
    """SCP code -> superclass, straight from the statement table: ``diagnostic == 1`` -> ``diagnostic_class``
    (independent of the reader under test)."""
    with open(shared / "ptbxl" / "scp_statements.csv", newline="") as f:
        return {row[""]: row["diagnostic_class"] for row in csv.DictReader(f)
                if row["diagnostic"] and float(row["diagnostic"]) == 1.0}


def superclasses_of(row: Row, to_class: dict[str, str]) -> set[str]:
    """The superdiagnostic classes of one metadata row (likelihoods ignored)."""
    return {to_class[code] for code in ast.literal_eval(row["scp_codes"]) if code in to_class}


def write_root(shared: Path, root: Path, fields: list[str], rows: list[Row],
               signal: Callable[[Row], np.ndarray]) -> None:
    """``root`` as a PTB-XL folder: ``ptbxl_database.csv`` with ``rows`` in the given order, the real
    ``scp_statements.csv``, and each row's ``filename_lr`` record, ``signal(row)`` ``(1000, 12)`` in mV at
    100 Hz in the WFDB lead order, written by ``wfdb.wrsamp`` (format 16)."""
    import wfdb

    root.mkdir(parents=True)
    with open(root / "ptbxl_database.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    shutil.copy(shared / "ptbxl" / "scp_statements.csv", root / "scp_statements.csv")
    for row in rows:
        path = root / row["filename_lr"]
        path.parent.mkdir(parents=True, exist_ok=True)
        wfdb.wrsamp(path.name, fs=100, units=["mV"] * 12, sig_name=WFDB_LEADS, p_signal=signal(row),
                    fmt=["16"] * 12, write_dir=str(path.parent))


def balanced_rows(shared: Path, per_class: dict[int, int]) -> tuple[list[str], list[Row]]:
    """Rows spread over the folds: in fold ``f``, up to ``per_class[f]`` records of each superclass (those
    with that class alone first, so that ``single_label: true`` keeps several of each), each record once."""
    fields, rows = read_excerpt(shared)
    to_class = diagnostic_classes(shared)
    chosen: list[Row] = []
    for fold, count in sorted(per_class.items()):
        in_fold = [(row, superclasses_of(row, to_class)) for row in rows if int(row["strat_fold"]) == fold]
        for name in SUPERCLASSES:
            having = [row for row, classes in in_fold if name in classes and row not in chosen]
            having.sort(key=lambda row: len(superclasses_of(row, to_class)) != 1)  # stable: single-label first
            chosen += having[:count]
    return fields, chosen


def synthetic_signals(shared: Path, seed: int = 0) -> Callable[[Row], np.ndarray]:
    """``signal(row)`` for ``write_root``: an ECGSYN record of the project's synthetic generator, whose
    shape depends on the row's superclasses (a stand-in abnormality per class, so the labels are
    learnable), varied per record by a shift, lead gains and noise. Distinct class sets share a few
    generated traces (ECGSYN is the costly part)."""
    from ecgsearch_plugins.datasets import _ecgsyn_conditions as cond

    stand_in = {"MI": cond.TINV, "STTC": cond.LQT, "CD": cond.NSIVCB, "HYP": cond.IAVB}
    to_class = diagnostic_classes(shared)
    traces: dict[frozenset[str], np.ndarray] = {}

    def signal(row: Row) -> np.ndarray:
        classes = frozenset(superclasses_of(row, to_class))
        if classes not in traces:
            codes = {cond.NSR} | {stand_in[name] for name in classes if name in stand_in}
            traces[classes] = cond.synthesize_record(seed, len(traces), codes, 10.0, 100.0)  # (12, 1000)
        rng = np.random.default_rng([seed, int(row["ecg_id"])])
        trace = np.roll(traces[classes], int(rng.integers(0, 100)), axis=1)
        gains = rng.uniform(0.8, 1.2, size=(12, 1))
        return (gains * trace + 0.02 * rng.standard_normal(trace.shape)).T

    return signal


SEARCH_FOLDS = {**{fold: 1 for fold in range(1, 9)}, 9: 2, 10: 2}  # ~60 records, ~10 each in val and test


def search_root(shared: Path, root: Path) -> list[Row]:
    """A PTB-XL folder for real searches: ~60 records over the ten folds (``SEARCH_FOLDS``), each
    superclass in every split (HYP alone: in the training and validation splits), synthetic signals."""
    fields, rows = balanced_rows(shared, SEARCH_FOLDS)
    write_root(shared, root, fields, rows, synthetic_signals(shared))
    return rows
