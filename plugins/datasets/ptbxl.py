"""The ``ptbxl`` dataset: PTB-XL (21,799 clinical 12-lead ECGs, 10 s) read from a local copy.

PTB-XL is the standard public benchmark for multilabel ECG classification; reading it from the
PhysioNet folder layout (``ptbxl_database.csv``, ``scp_statements.csv``, WFDB records under
``records100/`` and ``records500/``) lets a search reproduce published numbers (Strodthoff et al. 2020)
with the recommended folds: ``strat_fold`` 1-8 train, 9 validation, 10 test.

Label sets are those of the PTB-XL benchmark (Strodthoff et al. 2020, ``compute_label_aggregations`` of
its code), taken from the statement table with likelihoods ignored: ``diagnostic`` keeps the 44 codes
with ``diagnostic == 1``; ``subdiagnostic`` (23) and ``superdiagnostic`` (5: NORM, MI, STTC, CD, HYP) map
each of them to its ``diagnostic_subclass`` or ``diagnostic_class``; ``form`` (19) and ``rhythm`` (12) keep
the codes flagged as such (four codes, NDT, NST_, DIG and LNGQT, are both diagnostic and form); ``all``
keeps the 71 statements. The benchmark keeps the statements that occur in the records it reads; in
PTB-XL every one of the 71 occurs, so these counts are the published ones, and the columns come from
the statement table whatever records are read (a subset may have columns without positives). A record
with no label in the chosen set keeps an all-zero row (a legitimate "none of these" example), unless
``drop_unlabelled=True``, which gives the benchmark's records (it keeps only records with a label of the
set). ``diagnostic_subclass`` is the former name of ``subdiagnostic``, still read for one release with a
``DeprecationWarning``.

``single_label=True`` keeps only the records with exactly one label of the set, so the targets are
one-hot rows that also fit ``task: multiclass``.

Label groups (``EcgArrays.label_groups``, scored as ``val.<group>.macro_auroc``) are the five diagnostic
superclasses, NORM, MI, STTC, CD and HYP: each groups the set's columns that come from diagnostic statements
of that ``diagnostic_class`` in the statement table (``diagnostic``: its codes; ``subdiagnostic``: its
subclasses; ``superdiagnostic``: the class itself, a group of one column; ``form``: the four diagnostic form
codes, all STTC; ``all``: the 44 diagnostic codes). A superclass without such a column has no group, so
``rhythm`` and ``features`` have none.

``subset`` ``A`` or ``B`` keeps one of two disjoint halves of the records (within-dataset transfer:
pretrain on one half, fine-tune on the other). The halves are stratified by label: every record of
``ptbxl_database.csv`` is keyed by its superdiagnostic classes and its ``strat_fold``, ordered by (key,
SHA-256 of its ``ecg_id``) and dealt A, B, A, B, ... along that order, so each (classes, fold) group is
split evenly (within one record) and the result depends only on the database file. The halving comes
before every other choice (labels, ``single_label``, ``drop_unlabelled``, features), so A and B never
share a record whatever else differs between two data sections.

``labels="features"`` reads regression targets from PTB-XL+ (Strodthoff et al. 2023) instead:
``features_root`` is the PTB-XL+ folder, whose ``features/12sl_features.csv`` (GE 12SL; also
``unig_features.csv``, ``ecgdeli_features.csv``: ``feature_algorithm``) has one row per ``ecg_id`` and one
column per median-beat feature, named wave_measure_lead (``QRS_Dur_Global``, ``R_Amp_V5``). ``targets``
lists them: the short names HR, PR, QRS, QT, QTc and RR stand for ``HR__Global``, ``PR_Int_Global``,
``QRS_Dur_Global``, ``QT_Int_Global``, ``QT_IntBazett_Global`` and ``RR_Mean_Global`` (target names
``hr_bpm``, ``pr_ms``, ``qrs_ms``, ``qt_ms``, ``qtc_ms``, ``rr_ms``, as the synthetic and deepfake datasets name
them); any other name is a column name of the file, taken as it is. Records without a value for every
target (no row, an empty or non-numeric cell) are dropped, counted and listed in ``extra["skipped"]``.
"""

from __future__ import annotations

import ast
import concurrent.futures
import difflib
import hashlib
import logging
import os
import time
import warnings
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

READER_VERSION = 3  # bump when the arrays built from the same files change; 2: label groups; 3: patient ids
SUPERCLASSES = ("NORM", "MI", "STTC", "CD", "HYP")  # the label groups, in the benchmark's order
STATEMENT_SETS = ("superdiagnostic", "subdiagnostic", "diagnostic", "form", "rhythm", "all")
FEATURES = "features"  # the label set of PTB-XL+ regression targets
RENAMED = {"diagnostic_subclass": "subdiagnostic"}  # old name -> new name, read for one release
LABEL_SETS = (*STATEMENT_SETS, FEATURES, *RENAMED)
# the published number of statements (label columns) of each set: PTB-XL benchmark, Strodthoff et al. 2020
BENCHMARK_COUNTS = {"diagnostic": 44, "subdiagnostic": 23, "superdiagnostic": 5, "form": 19, "rhythm": 12, "all": 71}
SUBSETS = ("A", "B")
RECORD_SETS = {"records100": ("filename_lr", 100.0), "records500": ("filename_hr", 500.0)}
SAMPLING_RATE_RANGE = (50.0, 1000.0)
MAX_SECONDS = 10.0  # every PTB-XL record is 10 s long
FOLDS = {"train": range(1, 9), "val": (9,), "test": (10,)}
PROGRESS_WHAT = "reading PTB-XL records"
# PTB-XL+ (physionet.org/content/ptb-xl-plus): features/<file>, one row per ecg_id, harmonised column names
FEATURE_FILES = {"12sl": "12sl_features.csv", "unig": "unig_features.csv", "ecgdeli": "ecgdeli_features.csv"}
FEATURE_KEY = "ecg_id"
# short target name -> (PTB-XL+ column, target name in the arrays); any other name is a column as it is
FEATURE_ALIASES = {
    "HR": ("HR__Global", "hr_bpm"), "PR": ("PR_Int_Global", "pr_ms"), "QRS": ("QRS_Dur_Global", "qrs_ms"),
    "QT": ("QT_Int_Global", "qt_ms"), "QTC": ("QT_IntBazett_Global", "qtc_ms"), "RR": ("RR_Mean_Global", "rr_ms"),
}
DEFAULT_TARGETS = ("HR", "PR", "QRS", "QT")
# The target names of each statement set as label_columns derives them from the published statement table
# (PTB-XL 1.0.x scp_statements.csv), known before any file is read (DatasetInfo.target_names; the tests compare
# them with label_columns on the real table).
_PUBLISHED_STATEMENTS = {
    "subdiagnostic": "AMI CLBBB CRBBB ILBBB IMI IRBBB ISCA ISCI ISC_ IVCD LAFB/LPFB LAO/LAE LMI LVH NORM NST_ PMI "
                     "RAO/RAE RVH SEHYP STTC WPW _AVB",
    "diagnostic": "1AVB 2AVB 3AVB ALMI AMI ANEUR ASMI CLBBB CRBBB DIG EL ILBBB ILMI IMI INJAL INJAS INJIL INJIN INJLA "
                  "IPLMI IPMI IRBBB ISCAL ISCAN ISCAS ISCIL ISCIN ISCLA ISC_ IVCD LAFB LAO/LAE LMI LNGQT LPFB LVH NDT "
                  "NORM NST_ PMI RAO/RAE RVH SEHYP WPW",
    "form": "ABQRS DIG HVOLT INVT LNGQT LOWT LPR LVOLT NDT NST_ NT_ PAC PRC(S) PVC QWAVE STD_ STE_ TAB_ VCLVH",
    "rhythm": "AFIB AFLT BIGU PACE PSVT SARRH SBRAD SR STACH SVARR SVTAC TRIGU",
}
PUBLISHED_COLUMNS: dict[str, tuple[str, ...]] = {
    "superdiagnostic": tuple(sorted(SUPERCLASSES)),
    **{name: tuple(codes.split()) for name, codes in _PUBLISHED_STATEMENTS.items()},
    "all": tuple(sorted({code for name in ("diagnostic", "form", "rhythm")  # the 71 statements
                         for code in _PUBLISHED_STATEMENTS[name].split()})),
}


def label_columns(statements: Any, labels: str) -> tuple[list[str], dict[str, str]]:
    """The target names of a statement label set and the map statement code -> target name (pure, testable):
    the benchmark's aggregation, from the statement table's flags."""
    labels = RENAMED.get(labels, labels)
    flag = lambda column: statements[column].fillna(0).astype(float) == 1  # noqa: E731
    if labels in ("superdiagnostic", "subdiagnostic"):
        column = "diagnostic_class" if labels == "superdiagnostic" else "diagnostic_subclass"
        chosen = statements[flag("diagnostic") & statements[column].notna()]
        mapping = {str(code): str(target) for code, target in chosen[column].items()}
    elif labels in ("diagnostic", "form", "rhythm"):
        mapping = {str(code): str(code) for code in statements.index[flag(labels)]}
    else:
        mapping = {str(code): str(code) for code in statements.index}
    return sorted(set(mapping.values())), mapping


def superclass_groups(statements: Any, labels: str) -> dict[str, list[str]]:
    """The label groups of a statement label set (pure, testable): each superclass -> the set's target names
    that diagnostic statements of that ``diagnostic_class`` map to, sorted; superclasses without one left out."""
    _, mapping = label_columns(statements, labels)
    diagnostic = statements[(statements["diagnostic"].fillna(0).astype(float) == 1)
                            & statements["diagnostic_class"].notna()]
    groups: dict[str, set[str]] = {}
    for code, superclass in diagnostic["diagnostic_class"].items():
        if str(code) in mapping:
            groups.setdefault(str(superclass), set()).add(mapping[str(code)])
    return {name: sorted(groups[name]) for name in SUPERCLASSES if name in groups}


def statement_targets(database: Any, statements: Any, labels: str) -> tuple[np.ndarray, list[str]]:
    """The 0/1 targets of every database row for a statement label set, and their names."""
    names, mapping = label_columns(statements, labels)
    column = {name: j for j, name in enumerate(names)}
    targets = np.zeros((len(database), len(names)), dtype=np.float32)
    for i, (ecg_id, text) in enumerate(database["scp_codes"].items()):
        for code in parse_scp_codes(text, ecg_id):
            if code in mapping:
                targets[i, column[mapping[code]]] = 1.0
    return targets, names


def subset_halves(database: Any, statements: Any) -> np.ndarray:
    """``"A"`` or ``"B"`` for every database row: two halves stratified by (superdiagnostic classes,
    ``strat_fold``), dealt alternately along the order (classes, fold, SHA-256 of the ``ecg_id``)."""
    targets, names = statement_targets(database, statements, "superdiagnostic")
    classes = ["+".join(n for n, on in zip(names, row) if on) for row in targets]
    digests = [hashlib.sha256(str(ecg_id).encode()).hexdigest() for ecg_id in database.index]
    folds = [int(f) for f in database["strat_fold"]]
    order = sorted(range(len(database)), key=lambda i: (classes[i], folds[i], digests[i]))
    halves = np.empty(len(database), dtype="<U1")
    halves[order] = np.resize(np.array(SUBSETS), len(order))
    return halves


def patient_ids(database: Any) -> np.ndarray | None:
    """Each row's ``patient_id`` as text (``15709.0`` -> ``15709``); a row without one is its own patient
    (``ecg<ecg_id>``); None when the table has no such column. ``strat_fold`` keeps a patient in one fold."""
    if "patient_id" not in database.columns:
        return None
    ids = []
    for ecg_id, value in zip(database.index, database["patient_id"]):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if number == number and number.is_integer():
            ids.append(str(int(number)))
        elif number == number or (isinstance(value, str) and value.strip()):
            ids.append(str(value).strip())
        else:
            ids.append(f"ecg{ecg_id}")
    return np.array(ids, dtype=str)


def feature_column(name: str) -> tuple[str, str]:
    """A ``targets`` entry -> (the PTB-XL+ column, the target name): a short name (any case) or a column."""
    return FEATURE_ALIASES.get(name.upper(), (name, name))


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
    records with no label in the chosen set instead of keeping an all-zero row; single_label: keep only
    the records with exactly one label of the set; subset: ``A`` or ``B``, one half of the records (None:
    all); features_root, feature_algorithm, targets: for ``labels="features"``, the PTB-XL+ folder, its
    feature file and the features read as regression targets (see the module's docstring).
    ``drop_unlabelled`` and ``single_label`` apply to the statement sets, ``features_root``,
    ``feature_algorithm`` and ``targets`` to ``features``; each is ignored with the other kind (so a
    transfer section can override ``labels`` alone).
    """

    def __init__(self, root: str, labels: str = "superdiagnostic", records: str = "records100",
                 sampling_rate: float = 100, seconds: float = 10, leads: Sequence[str] | None = None,
                 workers: int = 0, drop_unlabelled: bool = False, single_label: bool = False,
                 subset: str | None = None, features_root: str | None = None, feature_algorithm: str = "12sl",
                 targets: Sequence[str] | None = None) -> None:
        if labels not in LABEL_SETS:
            raise ValueError(f"ptbxl: labels must be one of {', '.join(LABEL_SETS[:-len(RENAMED)])} "
                             f"(got {labels!r}).")
        if labels in RENAMED:
            warnings.warn(f"ptbxl: labels '{labels}' is now called '{RENAMED[labels]}'; the old name will be "
                          f"refused in the next release, write labels: {RENAMED[labels]}.", DeprecationWarning,
                          stacklevel=2)
            labels = RENAMED[labels]
        if records not in RECORD_SETS:
            raise ValueError(f"ptbxl: records must be one of {', '.join(RECORD_SETS)} (got {records!r}).")
        check_number("ptbxl", "sampling_rate", sampling_rate, *SAMPLING_RATE_RANGE, what="a number of Hz")
        if not is_number(seconds) or not 0 < seconds <= MAX_SECONDS:
            raise ValueError(f"ptbxl: seconds must be a number above 0 and at most {MAX_SECONDS:g}, the "
                             f"length of every PTB-XL record (got {seconds!r}).")
        check_int("ptbxl", "workers", workers, note=", 0 for automatic")
        for name, flag in (("drop_unlabelled", drop_unlabelled), ("single_label", single_label)):
            if not isinstance(flag, bool):
                raise ValueError(f"ptbxl: {name} must be true or false (got {flag!r}).")
        if subset is not None and subset not in SUBSETS:
            raise ValueError(f"ptbxl: subset must be A, B or null for all records (got {subset!r}).")
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
        self.single_label = single_label
        self.subset = subset
        self.features_file: Path | None = None
        self.targets: tuple[str, ...] = ()
        if labels == FEATURES:
            self.features_file = self._features_file(features_root, feature_algorithm)
            self.targets = self._targets(targets)

    @staticmethod
    def _features_file(features_root: str | None, algorithm: str) -> Path:
        if algorithm not in FEATURE_FILES:
            raise ValueError(f"ptbxl: feature_algorithm must be one of {', '.join(FEATURE_FILES)} "
                             f"(got {algorithm!r}).")
        if features_root is None:
            raise ValueError("ptbxl: labels: features needs features_root, the PTB-XL+ folder that holds "
                             f"features/{FEATURE_FILES[algorithm]} (download it from "
                             "physionet.org/content/ptb-xl-plus).")
        folder = Path(features_root).expanduser()
        for path in (folder / "features" / FEATURE_FILES[algorithm], folder / FEATURE_FILES[algorithm]):
            if path.is_file():
                return path
        raise ValueError(f"ptbxl: {folder / 'features' / FEATURE_FILES[algorithm]} does not exist; set "
                         "data.features_root to the PTB-XL+ folder (the one holding features/), downloaded "
                         "from physionet.org/content/ptb-xl-plus.")

    @staticmethod
    def _targets(targets: Sequence[str] | None) -> tuple[str, ...]:
        if targets is None:
            return DEFAULT_TARGETS
        if isinstance(targets, str) or not targets or not all(isinstance(t, str) and t for t in targets):
            raise ValueError("ptbxl: targets must be a non-empty list of PTB-XL+ feature names (HR, PR, QRS, QT, "
                             f"QTc, RR or column names such as QT_IntFridericia_Global; got {targets!r}).")
        columns = [feature_column(t)[0] for t in targets]
        twice = next((t for t, c in zip(targets, columns) if columns.count(c) > 1), None)
        if twice is not None:
            raise ValueError(f"ptbxl: the target {twice} ({feature_column(twice)[0]}) is listed twice in "
                             "targets; list each feature once.")
        return tuple(targets)

    def fingerprint(self) -> dict[str, Any]:
        """Every parameter that changes the arrays (not ``workers``: results do not depend on it); the newer
        options (``single_label``, ``subset``) appear only when set, so entries built before them stay valid."""
        fp = {
            "root": str(self.root.resolve()), "labels": self.labels, "records": self.records,
            "sampling_rate": self.sampling_rate, "seconds": self.seconds, "leads": list(self.leads),
            "drop_unlabelled": self.drop_unlabelled, "reader": READER_VERSION,
        }
        if self.subset is not None:
            fp["subset"] = self.subset
        if self.labels == FEATURES:
            del fp["drop_unlabelled"]
            fp.update(features_file=str(self.features_file.resolve()), targets=list(self.targets))
        elif self.single_label:
            fp["single_label"] = True
        return fp

    def read_tables(self) -> tuple[Any, np.ndarray, list[str], dict[str, Any]]:
        """The database rows kept, their targets, the target names and what the choice dropped (for
        ``EcgArrays.extra``)."""
        import pandas as pd

        database = pd.read_csv(self.root / "ptbxl_database.csv", index_col="ecg_id")
        statements = pd.read_csv(self.root / "scp_statements.csv", index_col=0)
        extra: dict[str, Any] = {}
        if self.subset is not None:
            database = database[subset_halves(database, statements) == self.subset]
            extra["subset"] = self.subset
        if self.labels == FEATURES:
            targets, names, skipped = self._feature_targets(database)
            keep = np.isfinite(targets).all(axis=1)
            extra.update(missing_targets=int((~keep).sum()), skipped=skipped)
            if (~keep).any():
                log.info("ptbxl: dropping %d record(s) without every target in %s", int((~keep).sum()),
                         self.features_file)
            return database[keep], targets[keep], names, extra
        targets, names = statement_targets(database, statements, self.labels)
        if self.single_label:
            keep = targets.sum(axis=1) == 1
            extra["not_single_label"] = int((~keep).sum())
            log.info("ptbxl: dropping %d record(s) without exactly one %s label", int((~keep).sum()), self.labels)
            database, targets = database[keep], targets[keep]
        if self.drop_unlabelled:
            keep = targets.any(axis=1)
            log.info("ptbxl: dropping %d record(s) without a %s label", int((~keep).sum()), self.labels)
            database, targets = database[keep], targets[keep]
        return database, targets, names, extra

    def _feature_targets(self, database: Any) -> tuple[np.ndarray, list[str], list[dict[str, str]]]:
        """The PTB-XL+ features of every database row (NaN where missing), their names, and why each record
        without them is dropped."""
        import pandas as pd

        path = self.features_file
        header = list(pd.read_csv(path, nrows=0).columns)
        if FEATURE_KEY not in header:
            raise ValueError(f"ptbxl: {path} has no {FEATURE_KEY} column; it is not a PTB-XL+ feature file "
                             "(download PTB-XL+ again from physionet.org/content/ptb-xl-plus).")
        columns, names = zip(*(feature_column(t) for t in self.targets))
        for target, column in zip(self.targets, columns):
            if column not in header:
                close = difflib.get_close_matches(column, header, n=3, cutoff=0.8)
                hint = f"; close columns: {', '.join(close)}" if close else ""
                raise ValueError(f"ptbxl: the target {target} needs the column {column}, which {path.name} does "
                                 f"not have{hint} (targets take HR, PR, QRS, QT, QTc, RR or a column name).")
        table = pd.read_csv(path, usecols=[FEATURE_KEY, *columns], index_col=FEATURE_KEY)
        table = table[~table.index.duplicated()].apply(pd.to_numeric, errors="coerce")
        values = table.reindex(database.index)[list(columns)].to_numpy(dtype=np.float32)
        skipped = []
        for ecg_id, row in zip(database.index, values):
            if not np.isfinite(row).all():
                missing = [c for c, v in zip(columns, row) if not np.isfinite(v)]
                skipped.append({"record": str(ecg_id), "reason": f"no {', '.join(missing)} in {path.name}"})
        return values, list(names), skipped

    def build(self, workdir: Path, progress: Progress | None = None) -> EcgArrays:
        """Read the tables, then every record (in threads: the work is file reading and decoding)."""
        started = time.perf_counter()
        database, targets, names, chosen = self.read_tables()
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
            patients=patient_ids(database),
            extra={"labels": self.labels, **self._summary(targets, names, split), **chosen},
            label_groups=self._label_groups(),
        )

    def _label_groups(self) -> dict[str, list[str]]:
        """The superclass groups of the chosen statement set (``superclass_groups``); none for features."""
        if self.labels == FEATURES:
            return {}
        import pandas as pd

        return superclass_groups(pd.read_csv(self.root / "scp_statements.csv", index_col=0), self.labels)

    def _summary(self, targets: np.ndarray, names: list[str], split: np.ndarray) -> dict[str, Any]:
        summary: dict[str, Any] = {"split_counts": {name: int((split == name).sum()) for name in FOLDS}}
        if self.labels == FEATURES:
            return {"features": list(self.targets), "feature_file": str(self.features_file), **summary}
        return {"class_counts": {name: int(n) for name, n in zip(names, targets.sum(axis=0))}, **summary,
                "unlabelled": int((~targets.any(axis=1)).sum())}

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


_STATEMENTS = {
    "superdiagnostic": "5 diagnostic classes: NORM, MI, STTC, CD, HYP",
    "subdiagnostic": "23 diagnostic subclasses",
    "diagnostic": "44 diagnostic statements",
    "form": "19 form statements",
    "rhythm": "12 rhythm statements",
    "all": "all 71 statements",
}


def target_names(params: Mapping[str, Any]) -> list[str] | None:
    """The target names the data parameters give (``DatasetInfo.target_names``): a statement set's in the
    published statement table, or the feature targets' names (``hr_bpm``, a column name as it is)."""
    labels = params.get("labels", "superdiagnostic")
    if labels == FEATURES:
        targets = params.get("targets") or DEFAULT_TARGETS
        return [feature_column(t)[1] for t in targets] if all(isinstance(t, str) for t in targets) else None
    columns = PUBLISHED_COLUMNS.get(RENAMED.get(labels, labels)) if isinstance(labels, str) else None
    return None if columns is None else list(columns)


@hookimpl
def ecgsearch_register_datasets() -> list[DatasetInfo]:
    multilabel = {name: LabelSet(("multilabel",), single_label="single_label", doc=doc)
                  for name, doc in _STATEMENTS.items()}
    return [DatasetInfo(
        name="ptbxl",
        description="PTB-XL 12-lead ECGs (local copy): the benchmark's SCP label sets (superdiagnostic, "
                    "subdiagnostic, diagnostic, form, rhythm, all) or PTB-XL+ feature regression; folds 1-8/9/10",
        factory=PtbXl,
        label_param="labels",
        label_sets={
            **multilabel,
            FEATURES: LabelSet(("regression", "probabilistic"), requires=("features_root",),
                               doc="PTB-XL+ median-beat features (HR, PR, QRS, QT, ...) as regression targets"),
            **{old: LabelSet(("multilabel",), single_label="single_label", doc=f"former name of {new}",
                             deprecated=f"labels: {new}") for old, new in RENAMED.items()},
        },
        target_names=target_names,
        provides=("patients",),
        requires=("wfdb", "pandas", "scipy"),
        install_hint="pip install wfdb pandas scipy",
        params={
            "root": str_param(doc="the PTB-XL folder"),
            "labels": str_param(*LABEL_SETS, doc="the benchmark's statement sets (`superdiagnostic`: NORM, MI, STTC, "
                                "CD, HYP; `subdiagnostic` 23, `diagnostic` 44, `form` 19, `rhythm` 12, `all` 71) or "
                                "`features` (PTB-XL+ regression targets); `diagnostic_subclass`: deprecated name of "
                                "`subdiagnostic`"),
            "records": str_param(*RECORD_SETS, doc="`records100` (100 Hz files) or `records500`"),
            "sampling_rate": float_param(*SAMPLING_RATE_RANGE, doc="resampled rate (Hz)"),
            "seconds": float_param(0, MAX_SECONDS, low_open=True, doc="the central `seconds` (at most 10)"),
            "leads": list_param("str", choices=STANDARD_LEADS, ignore_case=True, nullable=True,
                                doc="lead names, e.g. the 8-lead subset `[I, II, V1, V2, V3, V4, V5, V6]` (null: 12)"),
            "workers": int_param(0, 1024, doc="reading threads"),
            "drop_unlabelled": bool_param("drop records with no statement of the set (else kept, all labels 0); "
                                          "true gives the benchmark's records"),
            "single_label": bool_param("keep only records with exactly one label of the set (then `task: "
                                       "multiclass` fits)"),
            "subset": str_param(*SUBSETS, nullable=True, doc="`A` or `B`: one of two disjoint halves stratified by "
                                "superdiagnostic classes and fold, for within-dataset transfer (null: all records)"),
            "features_root": str_param(nullable=True, doc="for `labels: features`: the PTB-XL+ folder (holds "
                                       "`features/12sl_features.csv`)"),
            "feature_algorithm": str_param(*FEATURE_FILES, doc="for `labels: features`: the PTB-XL+ feature file "
                                           "(`12sl`: GE 12SL, `unig`: Glasgow, `ecgdeli`: ECGDeli)"),
            "targets": list_param("str", nullable=True, doc="for `labels: features`: HR, PR, QRS, QT, QTc, RR or "
                                  "PTB-XL+ column names (null: HR, PR, QRS, QT)"),
        }
    )]
