"""The PTB-XL reader on real metadata (the shared excerpt) with generated WFDB signals."""

from __future__ import annotations

import ast
import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from ecgsearch.data import EcgArrays
from ecgsearch.plugins import build_registries, get_plugin_manager
from ecgsearch_plugins.datasets.ptbxl import PtbXl

WFDB_LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
LEADS8 = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
PER_FOLD = 3  # 3 records of each of the 10 folds: 30 records


def _level(ecg_id: int, lead: int) -> float:
    """The constant a generated record carries on a lead: checks that records and leads stay aligned."""
    return round(0.01 * ecg_id + 0.1 * lead - 0.5, 3)


def _make_root(shared: Path, root: Path) -> list[dict[str, str]]:
    """A PTB-XL folder: 30 real metadata rows (3 per fold), the real statements, generated 100 Hz records.

    The rows keep the excerpt's order (ecg_id ascending) inside each fold; the database file lists them
    fold by fold, which also checks that the reader does not assume sorted ids."""
    with open(shared / "ptbxl" / "ptbxl_database_excerpt.csv", newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    # per fold, the first two records without NORM and the first with it: every class appears.
    chosen = []
    for fold in range(1, 11):
        in_fold = [r for r in rows if int(r["strat_fold"]) == fold]
        chosen += [r for r in in_fold if "'NORM'" not in r["scp_codes"]][:2]
        chosen += [r for r in in_fold if "'NORM'" in r["scp_codes"]][:1]
    root.mkdir()
    with open(root / "ptbxl_database.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(chosen)
    shutil.copy(shared / "ptbxl" / "scp_statements.csv", root / "scp_statements.csv")
    import wfdb

    t = np.arange(1000) / 100.0
    for row in chosen:
        path = root / row["filename_lr"]
        path.parent.mkdir(parents=True, exist_ok=True)
        ecg_id = int(row["ecg_id"])
        levels = np.array([_level(ecg_id, j) for j in range(12)])
        # a constant per lead (identity) plus a 1 Hz wave (zero at whole seconds, where values are checked).
        signal = levels[None, :] + 0.2 * np.sin(2 * np.pi * t)[:, None]
        wfdb.wrsamp(path.name, fs=100, units=["mV"] * 12, sig_name=WFDB_LEADS, p_signal=signal,
                    fmt=["16"] * 12, write_dir=str(path.parent))
    return chosen


def _superdiagnostic(shared: Path, rows: list[dict[str, str]]) -> tuple[list[str], np.ndarray]:
    """An independent derivation from the statement table: diagnostic == 1 -> diagnostic_class."""
    with open(shared / "ptbxl" / "scp_statements.csv", newline="") as f:
        table = {row[""]: row for row in csv.DictReader(f)}
    to_class = {code: row["diagnostic_class"] for code, row in table.items()
                if row["diagnostic"] and float(row["diagnostic"]) == 1.0}
    classes = sorted(set(to_class.values()))
    targets = np.zeros((len(rows), len(classes)), dtype=np.float32)
    for i, row in enumerate(rows):
        for code in ast.literal_eval(row["scp_codes"]):
            if code in to_class:
                targets[i, classes.index(to_class[code])] = 1
    return classes, targets


@pytest.fixture
def ptbxl_root(shared_data: Path, tmp_path: Path) -> tuple[Path, list[dict[str, str]]]:
    root = tmp_path / "ptb-xl"
    return root, _make_root(shared_data, root)


def test_superdiagnostic_labels_folds_and_signals(ptbxl_root, shared_data):
    root, rows = ptbxl_root
    calls: list = []
    data = PtbXl(str(root)).build(root, lambda *a: calls.append(a))
    assert isinstance(data, EcgArrays)
    assert data.signals.shape == (30, 12, 1000) and data.signals.dtype == np.float32
    assert data.leads == ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    classes, expected = _superdiagnostic(shared_data, rows)
    assert classes == ["CD", "HYP", "MI", "NORM", "STTC"] and data.target_names == classes
    assert list(data.record_ids) == [row["ecg_id"] for row in rows]
    np.testing.assert_array_equal(data.targets, expected)
    assert (expected.sum(axis=0) >= 3).all()  # every class is present
    assert (expected.sum(axis=1) > 1).any() and (expected.sum(axis=1) == 0).any()  # multi- and unlabelled
    folds = np.array([int(row["strat_fold"]) for row in rows])
    assert (data.split[folds <= 8] == "train").all()
    assert (data.split[folds == 9] == "val").all() and (data.split[folds == 10] == "test").all()
    assert data.extra["split_counts"] == {"train": 24, "val": 3, "test": 3}
    for i, row in enumerate(rows):
        levels = [_level(int(row["ecg_id"]), j) for j in range(12)]
        np.testing.assert_allclose(data.signals[i, :, 500], levels, atol=2e-3)
    assert calls[0] == (0, 30, "reading PTB-XL records") and calls[-1] == (30, 30, "reading PTB-XL records")


def test_lead_subset_resampling_and_crop(ptbxl_root):
    root, rows = ptbxl_root
    data = PtbXl(str(root), sampling_rate=50, seconds=8, leads=[lead.lower() for lead in LEADS8],
                 workers=1).build(root)
    assert data.signals.shape == (30, 8, 400) and data.sampling_rate == 50.0 and data.leads == LEADS8
    lead_index = [0, 1, 6, 7, 8, 9, 10, 11]
    levels = [_level(int(rows[4]["ecg_id"]), j) for j in lead_index]
    np.testing.assert_allclose(data.signals[4, :, 200], levels, atol=5e-3)


def test_unlabelled_records_kept_as_zero_rows_or_dropped(ptbxl_root):
    root, rows = ptbxl_root
    kept = PtbXl(str(root), labels="form").build(root)
    unlabelled = ~kept.targets.any(axis=1)
    assert 0 < unlabelled.sum() < 30 and kept.extra["unlabelled"] == int(unlabelled.sum())
    dropped = PtbXl(str(root), labels="form", drop_unlabelled=True).build(root)
    assert len(dropped.signals) == 30 - unlabelled.sum() and dropped.targets.any(axis=1).all()
    assert list(dropped.record_ids) == list(kept.record_ids[~unlabelled])


def test_other_label_sets_come_from_the_statement_table(ptbxl_root, shared_data):
    root, _ = ptbxl_root
    with open(shared_data / "ptbxl" / "scp_statements.csv", newline="") as f:
        table = list(csv.DictReader(f))
    source = PtbXl(str(root), labels="all")
    assert source.read_tables()[2] == sorted(row[""] for row in table)
    rhythm = sorted(row[""] for row in table if row["rhythm"] and float(row["rhythm"]) == 1)
    assert PtbXl(str(root), labels="rhythm").read_tables()[2] == rhythm and "SR" in rhythm
    subclasses = PtbXl(str(root), labels="diagnostic_subclass").read_tables()[2]
    assert "IMI" in subclasses and "NORM" in subclasses and len(subclasses) == 23


def test_fingerprint_changes_with_the_arrays(ptbxl_root):
    root, _ = ptbxl_root
    base = PtbXl(str(root)).fingerprint()
    assert base == PtbXl(str(root), workers=3).fingerprint()
    assert base != PtbXl(str(root), labels="form").fingerprint()
    assert base != PtbXl(str(root), leads=LEADS8).fingerprint()


def test_missing_inputs_are_one_clear_sentence(ptbxl_root, tmp_path):
    root, rows = ptbxl_root
    nowhere = tmp_path / "nowhere"
    with pytest.raises(ValueError) as error:
        PtbXl(str(nowhere))
    assert str(error.value) == (
        f"ptbxl: the folder {nowhere} does not exist; set data.root to the PTB-XL folder that holds "
        "ptbxl_database.csv (download it from physionet.org/content/ptb-xl).")
    (root / "scp_statements.csv").rename(root / "statements.bak")
    with pytest.raises(ValueError) as error:
        PtbXl(str(root))
    assert str(error.value) == (
        f"ptbxl: scp_statements.csv is missing from {root}; point data.root at the PTB-XL folder that "
        "holds both ptbxl_database.csv and scp_statements.csv.")
    (root / "statements.bak").rename(root / "scp_statements.csv")
    missing = root / rows[7]["filename_lr"]
    missing.with_suffix(".hea").unlink()
    with pytest.raises(ValueError) as error:
        PtbXl(str(root)).build(root)
    assert str(error.value) == (
        f"ptbxl: the record file {missing}.hea listed in ptbxl_database.csv is missing; download the "
        "records100 folder completely or choose the other records.")
    with pytest.raises(ValueError) as error:
        PtbXl(str(root), records="records500").build(root)
    assert str(error.value).startswith(f"ptbxl: the record file {root / rows[0]['filename_hr']}.hea listed")


@pytest.mark.parametrize("kwargs, message", [
    ({"labels": "superclass"}, "ptbxl: labels must be one of superdiagnostic, diagnostic_subclass, form, "
                               "rhythm, all (got 'superclass')."),
    ({"records": "records250"}, "ptbxl: records must be one of records100, records500 (got 'records250')."),
    ({"sampling_rate": 10}, "ptbxl: sampling_rate must be a number of Hz between 50 and 1000 (got 10)."),
    ({"seconds": 12}, "ptbxl: seconds must be a number above 0 and at most 10, the length of every PTB-XL "
                      "record (got 12)."),
    ({"leads": ["I", "X"]}, "ptbxl: unknown lead 'X'; allowed leads: I, II, III, aVR, aVL, aVF, V1, V2, V3, "
                            "V4, V5, V6."),
    ({"leads": ["I", "i"]}, "ptbxl: lead 'I' is listed twice in leads; list each lead once."),
    ({"workers": -1}, "ptbxl: workers must be a non-negative integer, 0 for automatic (got -1)."),
])
def test_bad_parameters(tmp_path, kwargs, message):
    with pytest.raises(ValueError) as error:
        PtbXl(str(tmp_path), **kwargs)
    assert str(error.value) == message


def test_damaged_scp_codes_are_reported_not_evaluated(ptbxl_root):
    root, rows = ptbxl_root
    text = (root / "ptbxl_database.csv").read_text()
    first = rows[0]["scp_codes"]
    (root / "ptbxl_database.csv").write_text(text.replace(first, "__import__('os').getcwd()", 1))
    with pytest.raises(ValueError) as error:
        PtbXl(str(root)).read_tables()
    assert str(error.value) == (
        f"ptbxl: scp_codes of ecg_id {rows[0]['ecg_id']} is not a dictionary of codes (got "
        "\"__import__('os').getcwd()\"); the ptbxl_database.csv file looks damaged, download it again.")


def test_registered_as_a_dataset_plugin():
    registries = build_registries(get_plugin_manager(["ecgsearch_plugins.datasets.ptbxl"]))
    info = registries.datasets.get("ptbxl")
    assert info.tasks == ("multilabel",) and info.load() is PtbXl and info.available() == (True, "")
