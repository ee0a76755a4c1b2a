"""The PTB-XL reader on real metadata (the shared excerpt) with generated WFDB signals."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from ptbxl_fixture import diagnostic_classes, read_excerpt, superclasses_of, write_root

from ecgsearch.data import EcgArrays
from ecgsearch.plugins import build_registries, get_plugin_manager
from ecgsearch_plugins.datasets.ptbxl import (
    BENCHMARK_COUNTS,
    FEATURE_ALIASES,
    PtbXl,
    label_columns,
    subset_halves,
)

LEADS8 = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
PER_FOLD = 3  # 3 records of each of the 10 folds: 30 records


def _level(ecg_id: int, lead: int) -> float:
    """The constant a generated record carries on a lead: checks that records and leads stay aligned."""
    return round(0.01 * ecg_id + 0.1 * lead - 0.5, 3)


def _make_root(shared: Path, root: Path) -> list[dict[str, str]]:
    """A PTB-XL folder: 30 real metadata rows (3 per fold), the real statements, generated 100 Hz records.

    The rows keep the excerpt's order (ecg_id ascending) inside each fold; the database file lists them
    fold by fold, which also checks that the reader does not assume sorted ids."""
    fields, rows = read_excerpt(shared)
    # per fold, the first two records without NORM and the first with it: every class appears.
    chosen = []
    for fold in range(1, 11):
        in_fold = [r for r in rows if int(r["strat_fold"]) == fold]
        chosen += [r for r in in_fold if "'NORM'" not in r["scp_codes"]][:2]
        chosen += [r for r in in_fold if "'NORM'" in r["scp_codes"]][:1]
    t = np.arange(1000) / 100.0

    def signal(row: dict[str, str]) -> np.ndarray:
        levels = np.array([_level(int(row["ecg_id"]), j) for j in range(12)])
        # a constant per lead (identity) plus a 1 Hz wave (zero at whole seconds, where values are checked).
        return levels[None, :] + 0.2 * np.sin(2 * np.pi * t)[:, None]

    write_root(shared, root, fields, chosen, signal)
    return chosen


def _superdiagnostic(shared: Path, rows: list[dict[str, str]]) -> tuple[list[str], np.ndarray]:
    """An independent derivation from the statement table: diagnostic == 1 -> diagnostic_class."""
    to_class = diagnostic_classes(shared)
    classes = sorted(set(to_class.values()))
    targets = np.zeros((len(rows), len(classes)), dtype=np.float32)
    for i, row in enumerate(rows):
        for name in superclasses_of(row, to_class):
            targets[i, classes.index(name)] = 1
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
    subclasses = PtbXl(str(root), labels="subdiagnostic").read_tables()[2]
    assert "IMI" in subclasses and "NORM" in subclasses and len(subclasses) == 23
    diagnostic = sorted(row[""] for row in table if row["diagnostic"] and float(row["diagnostic"]) == 1)
    assert PtbXl(str(root), labels="diagnostic").read_tables()[2] == diagnostic and "IMI" in diagnostic


def test_the_old_subclass_name_is_read_with_a_deprecation_warning(ptbxl_tables):
    with pytest.warns(DeprecationWarning, match="labels 'diagnostic_subclass' is now called 'subdiagnostic'"):
        source = PtbXl(str(ptbxl_tables), labels="diagnostic_subclass")
    assert source.labels == "subdiagnostic"
    assert source.fingerprint() == PtbXl(str(ptbxl_tables), labels="subdiagnostic").fingerprint()


def test_fingerprint_changes_with_the_arrays(ptbxl_root):
    root, _ = ptbxl_root
    base = PtbXl(str(root)).fingerprint()
    assert base == PtbXl(str(root), workers=3).fingerprint()
    assert base != PtbXl(str(root), labels="form").fingerprint()
    assert base != PtbXl(str(root), leads=LEADS8).fingerprint()
    assert base != PtbXl(str(root), single_label=True).fingerprint()
    assert len({str(PtbXl(str(root), subset=half).fingerprint()) for half in (None, "A", "B")}) == 3


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
    ({"labels": "superclass"}, "ptbxl: labels must be one of superdiagnostic, subdiagnostic, diagnostic, form, "
                               "rhythm, all, features (got 'superclass')."),
    ({"single_label": 1}, "ptbxl: single_label must be true or false (got 1)."),
    ({"subset": "C"}, "ptbxl: subset must be A, B or null for all records (got 'C')."),
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
    assert info.load() is PtbXl and info.available() == (True, "")
    assert info.tasks == ("multilabel", "multiclass", "regression", "probabilistic")
    assert info.label_param == "labels" and tuple(info.label_sets) == info.params["labels"].choices
    assert info.label_set({}) == ("superdiagnostic", info.label_sets["superdiagnostic"])  # the factory's default
    assert info.label_sets["form"].fits(single_label=True) == ("multilabel", "multiclass")
    assert info.label_sets["features"].requires == ("features_root",)


# --- the benchmark's label sets, single_label, subset and PTB-XL+ targets (tables only: no records) ---------


@pytest.fixture
def ptbxl_tables(shared_data: Path, tmp_path: Path) -> Path:
    """A PTB-XL folder with the 520 real metadata rows of the excerpt and the real statement table (no
    records: enough for ``read_tables``)."""
    root = tmp_path / "tables"
    root.mkdir()
    shutil.copy(shared_data / "ptbxl" / "ptbxl_database_excerpt.csv", root / "ptbxl_database.csv")
    shutil.copy(shared_data / "ptbxl" / "scp_statements.csv", root / "scp_statements.csv")
    return root


def test_label_sets_have_the_published_number_of_statements(shared_data):
    """Strodthoff et al. 2020: diagnostic 44, subdiagnostic 23, superdiagnostic 5, form 19, rhythm 12, all 71
    (the benchmark keeps the statements that occur in PTB-XL: all 71 do, so the table's counts are these)."""
    import pandas as pd

    statements = pd.read_csv(shared_data / "ptbxl" / "scp_statements.csv", index_col=0)
    counts = {name: len(label_columns(statements, name)[0]) for name in BENCHMARK_COUNTS}
    assert counts == {"diagnostic": 44, "subdiagnostic": 23, "superdiagnostic": 5, "form": 19, "rhythm": 12,
                      "all": 71} == BENCHMARK_COUNTS
    assert label_columns(statements, "superdiagnostic")[0] == ["CD", "HYP", "MI", "NORM", "STTC"]
    both = set(label_columns(statements, "diagnostic")[0]) & set(label_columns(statements, "form")[0])
    assert both == {"NDT", "NST_", "DIG", "LNGQT"}  # diagnostic and form at once, in both sets


def test_single_label_keeps_the_records_with_exactly_one_label(ptbxl_tables):
    everything, all_targets, names, _ = PtbXl(str(ptbxl_tables)).read_tables()
    database, targets, single_names, extra = PtbXl(str(ptbxl_tables), single_label=True).read_tables()
    one = all_targets.sum(axis=1) == 1
    assert single_names == names and 0 < one.sum() < len(one)
    assert list(database.index) == list(everything.index[one]) and (targets.sum(axis=1) == 1).all()
    assert extra["not_single_label"] == int((~one).sum())


def test_subset_halves_are_disjoint_complete_and_stratified(ptbxl_tables):
    import pandas as pd

    database = pd.read_csv(ptbxl_tables / "ptbxl_database.csv", index_col="ecg_id")
    statements = pd.read_csv(ptbxl_tables / "scp_statements.csv", index_col=0)
    halves = subset_halves(database, statements)
    a, b = (set(database.index[halves == h]) for h in "AB")
    assert not a & b and a | b == set(database.index) and abs(len(a) - len(b)) <= 1
    _, targets, names, _ = PtbXl(str(ptbxl_tables)).read_tables()
    for j, name in enumerate(names):  # every class's share is about the same in both halves
        share_a, share_b = targets[halves == "A", j].mean(), targets[halves == "B", j].mean()
        assert abs(share_a - share_b) < 0.03, (name, share_a, share_b)
    folds = database["strat_fold"].to_numpy()
    for fold in range(1, 11):
        assert abs((halves[folds == fold] == "A").sum() - (halves[folds == fold] == "B").sum()) <= 5, fold
    shuffled = database.sample(frac=1.0, random_state=0)  # the same halves whatever the file's row order
    assert dict(zip(shuffled.index, subset_halves(shuffled, statements))) == dict(zip(database.index, halves))
    form_a = PtbXl(str(ptbxl_tables), labels="form", subset="A", drop_unlabelled=True).read_tables()[0].index
    assert set(form_a) <= a  # the halving comes before the label set and its filters
    read_a, _, _, extra = PtbXl(str(ptbxl_tables), subset="A").read_tables()
    assert set(read_a.index) == a and extra["subset"] == "A"


FEATURE_COLUMNS = ["P_Amp_I", "ecg_id", "HR__Global", "PR_Int_Global", "QRS_Dur_Global", "QT_Int_Global",
                   "QT_IntBazett_Global", "RR_Mean_Global"]  # ecg_id sits among the features, as in PTB-XL+


def _features(root: Path, ids: list[int]) -> Path:
    """A PTB-XL+ folder whose features/12sl_features.csv has a row for ``ids``, in the real column naming."""
    folder = root / "ptb-xl-plus"
    (folder / "features").mkdir(parents=True)
    with open(folder / "features" / "12sl_features.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(FEATURE_COLUMNS)
        for ecg_id in ids:
            writer.writerow([0.1, ecg_id, 60 + ecg_id % 40, 150, 90 + ecg_id % 20, 400, 420, 1000, ])
    return folder


def test_ptbxl_plus_features_become_regression_targets(ptbxl_tables, tmp_path):
    import pandas as pd

    ids = list(pd.read_csv(ptbxl_tables / "ptbxl_database.csv", usecols=["ecg_id"])["ecg_id"])
    folder = _features(tmp_path, ids[3:])  # no row for the first three records
    text = (folder / "features" / "12sl_features.csv").read_text().splitlines()
    text[1] = text[1].replace(",400,", ",,")  # an empty QT cell
    text[2] = text[2].replace(",150,", ",n/a,")  # a PR that is not a number
    (folder / "features" / "12sl_features.csv").write_text("\n".join(text) + "\n")
    source = PtbXl(str(ptbxl_tables), labels="features", features_root=str(folder), targets=["HR", "qrs", "P_Amp_I"])
    database, targets, names, extra = source.read_tables()
    assert names == ["hr_bpm", "qrs_ms", "P_Amp_I"] and targets.dtype == np.float32
    assert list(database.index) == ids[3:]  # 3 without a row; a missing QT or PR does not matter here
    assert extra["missing_targets"] == 3 and [s["record"] for s in extra["skipped"]] == [str(i) for i in ids[:3]]
    assert extra["skipped"][0]["reason"] == "no HR__Global, QRS_Dur_Global, P_Amp_I in 12sl_features.csv"
    np.testing.assert_array_equal(targets[:, 0], [60 + i % 40 for i in ids[3:]])
    np.testing.assert_array_equal(targets[:, 1], [90 + i % 20 for i in ids[3:]])
    default = PtbXl(str(ptbxl_tables), labels="features", features_root=str(folder))
    database, targets, names, extra = default.read_tables()
    assert names == ["hr_bpm", "pr_ms", "qrs_ms", "qt_ms"] and list(database.index) == ids[5:]
    assert extra["missing_targets"] == 5 and extra["skipped"][3:] == [
        {"record": str(ids[3]), "reason": "no QT_Int_Global in 12sl_features.csv"},
        {"record": str(ids[4]), "reason": "no PR_Int_Global in 12sl_features.csv"}]
    assert set(default.fingerprint()) >= {"features_file", "targets"} and "drop_unlabelled" not in default.fingerprint()
    assert {alias: column for alias, (column, _) in FEATURE_ALIASES.items()} == {
        "HR": "HR__Global", "PR": "PR_Int_Global", "QRS": "QRS_Dur_Global", "QT": "QT_Int_Global",
        "QTC": "QT_IntBazett_Global", "RR": "RR_Mean_Global"}


def test_ptbxl_plus_problems_are_one_sentence(ptbxl_tables, tmp_path):
    with pytest.raises(ValueError) as error:
        PtbXl(str(ptbxl_tables), labels="features")
    assert str(error.value) == ("ptbxl: labels: features needs features_root, the PTB-XL+ folder that holds "
                                "features/12sl_features.csv (download it from physionet.org/content/ptb-xl-plus).")
    folder = _features(tmp_path, [1, 2])
    with pytest.raises(ValueError) as error:
        PtbXl(str(ptbxl_tables), labels="features", features_root=str(folder), targets=["QRS_Dur_Globl"]).read_tables()
    assert str(error.value) == ("ptbxl: the target QRS_Dur_Globl needs the column QRS_Dur_Globl, which "
                                "12sl_features.csv does not have; close columns: QRS_Dur_Global (targets take HR, "
                                "PR, QRS, QT, QTc, RR or a column name).")
    with pytest.raises(ValueError) as error:
        PtbXl(str(ptbxl_tables), labels="features", features_root=str(folder), targets=["HR", "HR__Global"])
    assert str(error.value) == ("ptbxl: the target HR (HR__Global) is listed twice in targets; list each feature "
                                "once.")
    with pytest.raises(ValueError) as error:
        PtbXl(str(ptbxl_tables), labels="features", features_root=str(folder), feature_algorithm="unig")
    assert str(error.value) == (f"ptbxl: {folder / 'features' / 'unig_features.csv'} does not exist; set "
                                "data.features_root to the PTB-XL+ folder (the one holding features/), downloaded "
                                "from physionet.org/content/ptb-xl-plus.")


def test_features_and_a_subset_build_arrays(ptbxl_root, tmp_path):
    root, rows = ptbxl_root
    folder = _features(tmp_path, [int(row["ecg_id"]) for row in rows[1:]])
    data = PtbXl(str(root), labels="features", features_root=str(folder), subset="B").build(root)
    assert data.target_names == ["hr_bpm", "pr_ms", "qrs_ms", "qt_ms"] and np.isfinite(data.targets).all()
    assert data.extra["subset"] == "B" and data.extra["features"] == ["HR", "PR", "QRS", "QT"]
    assert len(data.signals) == len(data.targets) == len(data.record_ids) == 15 - data.extra["missing_targets"]
    np.testing.assert_array_equal(data.targets[:, 0], [60 + int(i) % 40 for i in data.record_ids])
