"""The CODE-15% reader on a generated miniature: exams.csv plus two hdf5 parts with padding rows."""

from __future__ import annotations

import csv
from pathlib import Path

import h5py
import numpy as np
import pytest

from ecgsearch.plugins import build_registries, get_plugin_manager
from ecgsearch_plugins.datasets import code15
from ecgsearch_plugins.datasets.code15 import CLASSES, Code15

COLUMNS = ["exam_id", "age", "is_male", "nn_predicted_age", *CLASSES, "patient_id", "death", "timey",
           "normal_ecg", "trace_file"]
PARTS = {"exams_part0.hdf5": 14, "exams_part1.hdf5": 10}  # exams listed in exams.csv per part
PADDING = 3  # zero exam_id rows at the end of each part


def _level(exam_id: int, lead: int) -> float:
    """The constant an exam carries on a lead: checks that csv rows and hdf5 rows stay aligned."""
    return (exam_id % 1000) * 0.001 + 0.1 * lead


def _make_root(root: Path) -> list[dict]:
    """24 listed exams of 12 patients (2 each) in 2 parts, stored in a shuffled order, plus 1 unlisted."""
    rng = np.random.default_rng(7)
    root.mkdir()
    exams, exam_id = [], 1000
    for part, count in PARTS.items():
        ids = []
        for _ in range(count):
            exam_id += int(rng.integers(1, 50))
            ids.append(exam_id)
            exams.append({"exam_id": exam_id, "age": 60, "is_male": True, "nn_predicted_age": 61.5,
                          **{name: bool(rng.random() < 0.4) for name in CLASSES},
                          "patient_id": 500 + len(exams) // 2, "death": "", "timey": "",
                          "normal_ecg": False, "trace_file": part})
        stored = [int(i) for i in rng.permutation(ids)] + [exam_id + 7]  # one exam exams.csv omits
        stored += [0] * PADDING
        tracings = np.zeros((len(stored), 4096, 12), dtype=np.float32)
        for row, exam in enumerate(stored):
            if exam:  # a 7 s exam, zero-padded on both sides like the real 4096-sample tracings
                tracings[row, 648:3448, :] = [_level(exam, j) for j in range(12)]
        with h5py.File(root / part, "w") as handle:
            handle["tracings"] = tracings
            handle["exam_id"] = np.array(stored, dtype=np.int64)
    with open(root / "exams.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(exams)
    return exams


@pytest.fixture
def code15_root(tmp_path: Path) -> tuple[Path, list[dict]]:
    root = tmp_path / "code15"
    return root, _make_root(root)


def test_alignment_labels_and_grid(code15_root):
    root, exams = code15_root
    calls: list = []
    data = Code15(str(root), seconds=6).build(root, lambda *a: calls.append(a))
    assert data.signals.shape == (24, 12, 2400) and data.signals.dtype == np.float32
    assert data.target_names == list(CLASSES) and data.sampling_rate == 400.0
    assert list(data.record_ids) == [str(e["exam_id"]) for e in exams]  # csv order, unlisted exam skipped
    expected = np.array([[float(e[name]) for name in CLASSES] for e in exams], dtype=np.float32)
    np.testing.assert_array_equal(data.targets, expected)
    assert 0 < expected.sum() < expected.size
    for i, exam in enumerate(exams):
        levels = [_level(exam["exam_id"], j) for j in range(12)]
        np.testing.assert_allclose(data.signals[i], np.array(levels)[:, None].repeat(2400, 1), atol=1e-6)
    assert data.extra["parts"] == list(PARTS) and data.extra["class_counts"]["RBBB"] == expected[:, 1].sum()
    assert calls == [(0, 24, "reading CODE-15% exams"), (14, 24, "reading CODE-15% exams"),
                     (24, 24, "reading CODE-15% exams")]


def test_lead_subset_and_resampling(code15_root):
    root, exams = code15_root
    data = Code15(str(root), sampling_rate=100, seconds=10.24, leads=["V1", "ii"]).build(root)
    assert data.signals.shape == (24, 2, 1024) and data.leads == ["V1", "II"]
    np.testing.assert_allclose(data.signals[5, :, 512], [_level(exams[5]["exam_id"], j) for j in (6, 1)],
                               atol=1e-3)
    assert np.abs(data.signals[:, :, :100]).max() < 0.02  # the padding of a 7 s exam stays near zero


def test_reads_are_lazy_and_bounded(code15_root, monkeypatch):
    root, _ = code15_root
    source = Code15(str(root))  # opens no hdf5 file: parts are only touched by build
    monkeypatch.setattr(code15, "BLOCK_ROWS", 2)
    reads: list[int] = []
    original = h5py.Dataset.__getitem__

    def spy(self, key):
        value = original(self, key)
        if self.name == "/tracings":
            reads.append(len(value))
        return value

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    data = source.build(root)
    assert len(data.signals) == 24 and len(reads) >= 12 and max(reads) <= 4


def test_split_is_by_patient_and_seeded(code15_root):
    root, exams = code15_root
    patients = np.array([e["patient_id"] for e in exams])
    data = Code15(str(root)).build(root)
    for patient in set(patients):
        assert len(set(data.split[patients == patient])) == 1
    counts = data.extra["split_counts"]
    assert counts["val"] >= 2 and counts["test"] >= 2 and counts["train"] >= 16
    source = Code15(str(root), val_fraction=0.25, test_fraction=0.25)
    first = source.assign_splits(patients)
    assert (first == source.assign_splits(patients)).all()
    assert not (first == Code15(str(root), val_fraction=0.25, test_fraction=0.25, seed=1)
                .assign_splits(patients)).all()
    assert {name: int((first == name).sum()) for name in ("train", "val", "test")} == \
        {"train": 12, "val": 6, "test": 6}
    with_missing = source.assign_splits(np.array([1.0, np.nan, np.nan, 2.0]))
    assert len(set(with_missing)) == 3  # an exam without a patient id counts as its own patient


def test_fingerprint_changes_with_the_arrays(code15_root):
    root, _ = code15_root
    base = Code15(str(root)).fingerprint()
    assert base == Code15(str(root)).fingerprint()
    assert base != Code15(str(root), seed=1).fingerprint()
    assert base != Code15(str(root), leads=["I"]).fingerprint()


def test_missing_inputs_are_one_clear_sentence(code15_root, tmp_path):
    root, exams = code15_root
    nowhere = tmp_path / "nowhere"
    with pytest.raises(ValueError) as error:
        Code15(str(nowhere))
    assert str(error.value) == (
        f"code15: the folder {nowhere} does not exist; set data.root to the CODE-15% folder that holds "
        "exams.csv (download it from zenodo.org/records/4916206).")
    with pytest.raises(ValueError) as error:
        Code15(str(tmp_path))
    assert str(error.value) == (
        f"code15: exams.csv is missing from {tmp_path}; point data.root at the CODE-15% folder that holds "
        "exams.csv and the exams_part*.hdf5 files.")
    (root / "exams_part1.hdf5").rename(root / "part1.bak")
    with pytest.raises(ValueError) as error:
        Code15(str(root)).build(root)
    assert str(error.value) == (
        f"code15: exams_part1.hdf5 (named by 10 exam(s) in exams.csv) is missing from {root}; download every "
        "exams_part*.hdf5 file, or remove the rows of the missing parts from exams.csv.")
    (root / "part1.bak").rename(root / "exams_part1.hdf5")
    text = (root / "exams.csv").read_text()
    moved = str(exams[3]["exam_id"])
    (root / "exams.csv").write_text(text.replace(f"\n{moved},", "\n77,", 1))
    with pytest.raises(ValueError) as error:
        Code15(str(root)).build(root)
    assert str(error.value) == (
        "code15: exam_id 77 is listed in exams.csv with trace_file exams_part0.hdf5 but is not in that file "
        "(1 such exam(s)); the file is incomplete, download it again.")
    (root / "exams.csv").write_text(text.replace("patient_id", "patient", 1))
    with pytest.raises(ValueError) as error:
        Code15(str(root)).read_table()
    assert str(error.value) == (
        f"code15: exams.csv in {root} lacks the column(s) patient_id; it does not look like the CODE-15% "
        "exams.csv, download it again.")


@pytest.mark.parametrize("kwargs, message", [
    ({"sampling_rate": 20}, "code15: sampling_rate must be a number of Hz between 50 and 1000 (got 20)."),
    ({"seconds": 11}, "code15: seconds must be a number above 0 and at most 10.24, the length of every "
                      "CODE-15% tracing (got 11)."),
    ({"val_fraction": 0.5}, "code15: val_fraction must be a number above 0 and below 0.5 (got 0.5)."),
    ({"seed": -2}, "code15: seed must be a non-negative integer (got -2)."),
    ({"leads": "II"}, "code15: leads must be a non-empty list of lead names from I, II, III, aVR, aVL, aVF, "
                      "V1, V2, V3, V4, V5, V6 (got 'II')."),
])
def test_bad_parameters(tmp_path, kwargs, message):
    with pytest.raises(ValueError) as error:
        Code15(str(tmp_path), **kwargs)
    assert str(error.value) == message


def test_registered_as_a_dataset_plugin():
    registries = build_registries(get_plugin_manager(["ecgsearch_plugins.datasets.code15"]))
    info = registries.datasets.get("code15")
    assert info.requires[0] == "h5py" and info.load() is Code15 and info.available() == (True, "")
