"""The physionet2021 dataset: three header layouts, messy Dx lists, sources, splits, skips, errors."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from challenge_fixture import write_record

from ecgsearch import DatasetInfo
from ecgsearch.data.preprocess import STANDARD_LEADS
from ecgsearch_plugins.datasets import physionet2021 as pn
from ecgsearch_plugins.datasets._wfdb_header import parse_header, read_header, read_raw, to_physical
from ecgsearch_plugins.datasets.physionet2021 import PhysioNet2021


def raises(message: str):
    """``pytest.raises`` for a ValueError with exactly this message."""
    return pytest.raises(ValueError, match=f"^{re.escape(message)}$")

IDENTITY = dict(sampling_rate=500, bandpass_low=None, normalize=False, workers=1)
# name, layout, rate, Dx text, expected scored classes, source
RECORDS = [
    ("A0001", "original", 500, "164889003,,59118001,", ["164889003", "713427006|59118001"], "CPSC"),
    ("Q0001", "original", 500, "713427006, 59118001,59118001", ["713427006|59118001"], "CPSC-Extra"),
    ("I0001", "wfdb", 257, "426783006", ["426783006"], "INCART"),
    ("S0001", "wfdb", 1000, "999999999", [], "PTB"),
    ("HR00001", "wfdb", 500, "426783006,17338001", ["426783006", "427172004|17338001"], "PTB-XL"),
    ("E00001", "matname", 500, "63593006,,284470004", ["284470004|63593006"], "Georgia"),
    ("JS00001", "matname", 500, "999999999", [], "Chapman-Shaoxing/Ningbo"),  # an unscored code only
]


def _raw(seed: int, fs: float, seconds: float = 10.0) -> np.ndarray:
    raw = np.random.default_rng(seed).integers(-3000, 3000, size=(12, round(fs * seconds)), dtype=np.int16)
    raw[2, 10:20] = -32768  # missing samples, as in real records
    return raw


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    """A nested training tree in all three header layouts, the raw values of each record."""
    root = tmp_path_factory.mktemp("pn2021")
    raws = {}
    for i, (name, layout, fs, dx, _, _) in enumerate(RECORDS):
        raws[name] = _raw(i, fs)
        write_record(root / f"g{i % 3}" / ("deep" if i % 2 else ""), name, raws[name], fs, layout, dx)
    return root, raws


@pytest.mark.parametrize("layout", ["original", "wfdb", "matname"])
def test_each_layout_reads_microvolt_exact(tmp_path, layout):
    raw = _raw(7, 500)
    path = write_record(tmp_path, "E09999", raw, 500, layout, "426783006", age="NaN", sex="Unknown")
    header = read_header(path)
    assert (header.record, header.n_sig, header.fs, header.n_samples) == ("E09999", 12, 500, 5000)
    assert header.lead_names == STANDARD_LEADS and header.comments["Dx"] == "426783006"
    physical = to_physical(read_raw(header, path), header)
    missing = raw == -32768
    assert np.isnan(physical[missing]).all() and not np.isnan(physical[~missing]).any()
    assert np.array_equal(np.round(physical[~missing] * 1000).astype(int), raw[~missing])


def test_real_sample_records_match_wfdb(shared_data):
    wfdb = pytest.importorskip("wfdb")
    folder = shared_data / "physionet2021" / "sample_records"
    for path in sorted(folder.glob("*.hea")):
        header = read_header(path)
        raw = read_raw(header, path)
        physical = to_physical(raw, header)
        record = wfdb.rdrecord(str(path.with_suffix("")))
        assert header.lead_names == tuple(record.sig_name) and header.fs == record.fs
        assert np.allclose(physical, record.p_signal.T, equal_nan=True, atol=1e-12)
        assert np.array_equal(np.round(physical * 1000), raw.astype(float))
        assert pn.parse_dx(header.comments["Dx"]) == pn.parse_dx(
            next(c for c in record.comments if c.startswith("Dx:"))[3:])


def test_real_sample_records_build(shared_data):
    folder = shared_data / "physionet2021" / "sample_records"
    data = PhysioNet2021(str(folder), **IDENTITY).build(None)
    assert data.signals.shape == (10, 12, 5000) and data.extra["skipped"] == []
    assert data.extra["source_counts"] == {"Georgia": 10}
    raw = scipy.io.loadmat(folder / "E07500.mat")["val"]
    assert np.array_equal(np.round(data.signals[0].astype(np.float64) * 1000), raw)
    # E07500: Dx 67741000119109,426177001 -> only sinus bradycardia is scored
    assert [n for n, v in zip(data.target_names, data.targets[0]) if v] == ["426177001"]


def test_scored_constants_match_the_challenge_files(shared_data):
    folder = shared_data / "physionet2021"
    with open(folder / "weights.csv", newline="") as handle:
        assert tuple(next(csv.reader(handle))[1:]) == pn.SCORED_CLASSES
    with open(folder / "dx_mapping_scored.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["SNOMEDCTCode"] for row in rows} == set(pn.CODE_TO_SCORED)
    for row in rows:
        name = pn.CODE_TO_SCORED[row["SNOMEDCTCode"]]
        assert row["Abbreviation"] in pn.SCORED_ABBREVIATIONS[name].split("|")


def test_build_labels_sources_and_signals(tree):
    root, raws = tree
    data = PhysioNet2021(str(root), seconds=10, **IDENTITY).build(None)
    assert sorted(data.record_ids) == sorted(r[0] for r in RECORDS)
    assert data.target_names == list(pn.SCORED_CLASSES) and data.signals.dtype == np.float32
    for name, _, fs, _, scored, source in RECORDS:
        row = list(data.record_ids).index(name)
        assert [n for n, v in zip(data.target_names, data.targets[row]) if v] == sorted(
            scored, key=pn.SCORED_CLASSES.index)
        assert pn.source_of(name) == source and data.groups[row] == source  # scored per source
        if fs == 500:  # identity preprocessing: mV values exact to the microvolt, NaN interpolated
            signal = data.signals[row].astype(np.float64)
            ok = raws[name] != -32768
            assert np.array_equal(np.round(signal[ok] * 1000), raws[name][ok].astype(float))
            assert np.isfinite(signal).all()
    assert data.extra["source_counts"] == {source: 1 for *_, source in RECORDS}
    assert data.extra["class_counts"]["713427006|59118001"] == 2
    assert data.extra["sex_counts"] == {"Female": 7, "Male": 0, "Unknown": 0}


def test_classes_all_keeps_every_code_once(tree):
    data = PhysioNet2021(str(tree[0]), classes="all", **IDENTITY).build(None)
    assert data.target_names == ["17338001", "59118001", "63593006", "164889003", "284470004",
                                 "426783006", "713427006", "999999999"]
    row = list(data.record_ids).index("Q0001")
    assert data.targets[row].tolist() == [0, 1, 0, 0, 0, 0, 1, 0]


def test_resampling_and_workers(tree, tmp_path):
    calls: list = []
    one = PhysioNet2021(str(tree[0]), sampling_rate=100, leads=3, workers=1).build(None)
    two = PhysioNet2021(str(tree[0]), sampling_rate=100, leads=3, workers=2)
    data = two.build(tmp_path, lambda *a: calls.append(a))
    assert data.signals.shape == (7, 3, 1000) and data.leads == ["I", "II", "V2"]
    assert np.array_equal(one.signals, data.signals) and np.array_equal(one.split, data.split)
    assert calls[0] == (0, 7, pn.PROGRESS_WHAT) and calls[-1] == (7, 7, pn.PROGRESS_WHAT)
    table = list(csv.DictReader(open(tmp_path / "records.csv")))
    assert {row["record"]: row["source"] for row in table}["JS00001"] == "Chapman-Shaoxing/Ningbo"


def test_kfold_and_source_splits(tmp_path):
    codes = ["164889003", "426783006", "59118001", "270492004"]
    for i in range(40):
        write_record(tmp_path / "x", f"{'AEQ'[i % 3]}{i:04d}", np.zeros((12, 50), np.int16), 500, "wfdb",
                     codes[i % 4])
    tests = []
    for fold in range(5):
        source = PhysioNet2021(str(tmp_path), fold=fold, seconds=0.1, **IDENTITY)
        data = source.build(None)
        tests.append(set(data.record_ids[data.split == "test"]))
        assert data.extra["split_counts"] == {"train": 24, "val": 8, "test": 8}
        nxt = PhysioNet2021(str(tmp_path), fold=(fold + 1) % 5, seconds=0.1, **IDENTITY).build(None)
        assert set(data.record_ids[data.split == "val"]) == set(nxt.record_ids[nxt.split == "test"])
    assert set.union(*tests) == {f"{'AEQ'[i % 3]}{i:04d}" for i in range(40)}
    data = PhysioNet2021(str(tmp_path), split="source", holdout_source="georgia", seconds=0.1,
                         **IDENTITY).build(None)
    assert set(data.record_ids[data.split == "test"]) == {f"E{i:04d}" for i in range(40) if i % 3 == 1}
    assert data.extra["split_counts"]["val"] == round(0.15 * 27)


def test_corrupt_records_are_skipped_with_reasons(tmp_path):
    write_record(tmp_path, "A0001", _raw(0, 500), 500, "original", "164889003")
    bad = write_record(tmp_path, "A0002", _raw(1, 500), 500, "original", "164889003")
    mat = bad.with_suffix(".mat")
    mat.write_bytes(mat.read_bytes()[:5000])
    wrong = write_record(tmp_path, "A0003", _raw(2, 500), 500, "wfdb", "164889003")
    wrong.write_text(wrong.read_text().replace("A0003 12 500", "A0003 11 500"))
    write_record(tmp_path, "A0004", _raw(3, 500), 500, "wfdb", "").with_suffix(".mat").unlink()
    data = PhysioNet2021(str(tmp_path), **IDENTITY).build(None)
    assert list(data.record_ids) == ["A0001"]
    assert data.extra["skipped"] == [
        {"record": "A0002", "reason": "the signal file A0002.mat is unreadable (Not enough bytes to read "
                                      "matrix 'val')"},
        {"record": "A0003", "reason": "the header announces 11 signals but describes 12"},
        {"record": "A0004", "reason": "the signal file A0004.mat is missing"},
    ]
    (tmp_path / "A0001.mat").unlink()
    with raises(
            f"physionet2021: no readable records under {tmp_path}: all 4 were skipped (A0001: the signal "
            "file A0001.mat is missing; A0002: the signal file A0002.mat is unreadable (Not enough bytes to read "
            "matrix 'val'); A0003: the header announces 11 signals but describes 12)."):
        PhysioNet2021(str(tmp_path), **IDENTITY).build(None)


def test_missing_and_empty_folders(tmp_path):
    with raises(
            f"physionet2021: the data folder {tmp_path / 'nope'} does not exist; set root to the unpacked "
            "Challenge 2021 training folder."):
        PhysioNet2021(str(tmp_path / "nope")).build(None)
    (tmp_path / "notes.txt").write_text("no records here")
    with raises(
            f"physionet2021: no .hea header files under {tmp_path}; set root to the unpacked Challenge "
            "2021 training folder."):
        PhysioNet2021(str(tmp_path)).build(None)


def test_records_without_labels_or_samples_are_skipped_and_counted(tmp_path, capsys):
    """Before, a header with no (or an empty) Dx line was an all-negative labelled record, and a record with
    every sample missing a flat zero signal; `evaluate` already refused the first."""
    write_record(tmp_path, "A0001", _raw(0, 500), 500, "wfdb", "164889003")
    write_record(tmp_path, "A0002", _raw(1, 500), 500, "wfdb", "")
    no_line = write_record(tmp_path, "A0003", _raw(2, 500), 500, "wfdb", "164889003")
    no_line.write_text("\n".join(line for line in no_line.read_text().splitlines() if "Dx" not in line) + "\n")
    write_record(tmp_path, "A0004", np.full((12, 5000), -32768), 500, "wfdb", "164889003")  # all missing
    data = PhysioNet2021(str(tmp_path), **IDENTITY).build(None)
    assert list(data.record_ids) == ["A0001"]
    no_labels = ("the header has no Dx codes (a '#Dx:' line with SNOMED-CT codes); a record without labels is "
                 "skipped")
    assert data.extra["skipped"] == [
        {"record": "A0002", "reason": no_labels}, {"record": "A0003", "reason": no_labels},
        {"record": "A0004", "reason": "every sample of the record is missing (NaN); it would be a flat signal, "
                                      "so it is skipped"}]


def test_missing_leads_and_rates(tmp_path):
    path = write_record(tmp_path, "S0001", _raw(0, 100)[:2], 100, "wfdb", "426783006", leads=("I", "II"))
    with raises(
            f"physionet2021: record {path}: lead(s) V2 requested but the record has only I, II."):
        PhysioNet2021(str(tmp_path), leads=3, workers=1).build(None)
    with raises(
            f"physionet2021: record {path}: cannot resample from 100 Hz to 500 Hz: that upsamples 5x and at "
            "most 4x is allowed; choose a sampling rate of at most 400 Hz."):
        PhysioNet2021(str(tmp_path), leads=2, sampling_rate=500, workers=1).build(None)


@pytest.mark.parametrize("kwargs, message", [
    ({"classes": "some"}, "physionet2021: classes must be 'scored' or 'all' (got 'some')."),
    ({"split": "random"}, "physionet2021: split must be 'kfold' or 'source' (got 'random')."),
    ({"folds": 2}, "physionet2021: folds must be an integer of at least 3 so that train, val and test each "
                   "get a fold (got 2)."),
    ({"fold": 5}, "physionet2021: fold must be an integer from 0 to 4 (got 5)."),
    ({"split": "source"}, "physionet2021: split='source' needs holdout_source, one of CPSC, CPSC-Extra, "
                          "Chapman-Shaoxing/Ningbo, Georgia, INCART, PTB, PTB-XL (got None)."),
    ({"holdout_source": "PTB"}, "physionet2021: holdout_source is only used with split='source'; remove it "
                                "or set split='source'."),
    ({"bandpass_high": 50}, "physionet2021: bandpass high edge 50 Hz must be below the Nyquist frequency "
                            "50 Hz of the 100 Hz sampling rate; lower it or raise the rate."),
    ({"leads": 7}, "physionet2021: leads=7 is not a lead set; use one of [2, 3, 4, 6, 8, 12] or a list of "
                   "lead names."),
    ({"workers": -1}, "physionet2021: workers must be a non-negative integer (got -1)."),
])
def test_parameter_errors(kwargs, message):
    with raises(message):
        PhysioNet2021("/data", **kwargs)


def test_header_parser_edge_cases():
    header = parse_header("JS00001.mat 2 500/1 10\nJS00001.mat 16 200 16 0 0 0 0 V1\n"
                          "JS00001.mat 16 0 16 0 0 0 0 V2\n#Dx:1,,1,\n")
    assert header.record == "JS00001" and header.gains == (200.0, 200.0) and header.lead_names == ("V1", "V2")
    assert pn.parse_dx(header.comments["Dx"]) == ["1"]
    assert pn.source_of("XY123") == "unknown"


def test_fingerprint_and_registration(tmp_path):
    a = PhysioNet2021(str(tmp_path), workers=1).fingerprint()
    assert a == PhysioNet2021(str(tmp_path), workers=4).fingerprint()
    assert a != PhysioNet2021(str(tmp_path), fold=1).fingerprint()
    (info,) = pn.ecgsearch_register_datasets()
    assert isinstance(info, DatasetInfo) and info.name == "physionet2021" and info.tasks == ("multilabel",)
    assert info.factory is PhysioNet2021


def test_mat_v4_reader_matches_scipy(tmp_path):
    """The direct MATLAB v4 reader returns scipy's matrix, and hands everything else to scipy."""
    import io
    import struct

    from ecgsearch_plugins.datasets._wfdb_header import read_v4_val

    for dtype in (np.int16, np.float64, np.float32, np.int32, np.uint16, np.uint8):
        buffer = io.BytesIO()
        scipy.io.savemat(buffer, {"before": np.ones((2, 3)), "val": np.arange(12).reshape(3, 4).astype(dtype)},
                         format="4")
        got = read_v4_val(bytearray(buffer.getvalue()))
        expected = scipy.io.loadmat(io.BytesIO(buffer.getvalue()))["val"]
        assert got.dtype == expected.dtype and np.array_equal(got, expected) and got.flags.writeable
    big_endian = struct.pack(">5i", 1030, 2, 3, 0, 4) + b"val\0" + np.arange(6, dtype=">i2").tobytes()
    assert read_v4_val(bytearray(big_endian)).tolist() == [[0, 2, 4], [1, 3, 5]]
    assert read_v4_val(bytearray(big_endian[:-1])) is None  # truncated: scipy names the problem
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"val": np.arange(6, dtype=np.int16).reshape(2, 3)}, format="5")
    assert read_v4_val(bytearray(buffer.getvalue())) is None
    # A MATLAB 5 file beside a header is still read, through scipy.
    path = write_record(tmp_path, "A0001", _raw(0, 500)[:2], 500, "original", "", leads=("I", "II"))
    scipy.io.savemat(path.with_suffix(".mat"), {"val": _raw(0, 500)[:2]}, format="5")
    assert np.array_equal(read_raw(read_header(path), path), _raw(0, 500)[:2])


def test_to_physical_layouts_and_precisions():
    header = parse_header("X 2 500 4\nX.mat 16 1000/mV 16 0 0 0 0 I\nX.mat 16 200(10)/mV 16 0 0 0 0 II\n")
    raw = np.array([[1000, -32768, 2, 0], [10, 210, -32768, 0]], dtype=np.int16)
    expected = [[1.0, np.nan, 0.002, 0.0], [0.0, 1.0, np.nan, -0.05]]
    np.testing.assert_array_equal(to_physical(raw, header), expected)
    time_major = to_physical(raw, header, np.float32, leads_last=True)
    assert time_major.dtype == np.float32 and time_major.shape == (4, 2)
    np.testing.assert_allclose(time_major.T, expected, rtol=1e-6)
    buffer = np.zeros((6, 2), np.float32)
    to_physical(raw, header, np.float32, out=buffer[:4], leads_last=True)
    np.testing.assert_allclose(buffer[:4].T, expected, rtol=1e-6)
    assert not buffer[4:].any()


def test_batches_and_processes_agree(tree, monkeypatch):
    """Batches of any size and spawned processes decode the same arrays, bit for bit."""
    root = tree[0]
    one = PhysioNet2021(str(root), sampling_rate=100, workers=1).build(None)
    monkeypatch.setattr(pn, "BATCH", 1)
    np.testing.assert_array_equal(PhysioNet2021(str(root), sampling_rate=100, workers=1).build(None).signals,
                                  one.signals)
    monkeypatch.setattr(pn, "BATCH", 8)
    monkeypatch.setattr(pn, "MIN_RECORDS_PER_WORKER", 1)  # force the spawned pool (7 records)
    processes = PhysioNet2021(str(root), sampling_rate=100, workers=2).build(None)
    np.testing.assert_array_equal(processes.signals, one.signals)
    assert list(processes.record_ids) == list(one.record_ids)


@pytest.mark.parametrize("cpus", [1, 2])
def test_helper_thread_gives_the_same_arrays_and_progress(tree, monkeypatch, cpus):
    """One CPU: records are preprocessed in the reading thread; two: on a helper thread, a batch at a
    time, while the next is read. Bit for bit the same arrays either way, with progress as it goes."""
    monkeypatch.setattr(pn, "BATCH", 8)
    monkeypatch.setattr(pn, "available_cpus", lambda: 1)
    reference = PhysioNet2021(str(tree[0]), sampling_rate=100, workers=1).build(None)
    monkeypatch.setattr(pn, "BATCH", 2)  # several batches in flight, and rate changes between them
    monkeypatch.setattr(pn, "PROGRESS_EVERY", 3)
    monkeypatch.setattr(pn, "available_cpus", lambda: cpus)
    calls: list = []
    data = PhysioNet2021(str(tree[0]), sampling_rate=100, workers=1).build(None, lambda *a: calls.append(a))
    np.testing.assert_array_equal(data.signals, reference.signals)
    assert list(data.record_ids) == list(reference.record_ids)
    assert [done for done, _, _ in calls] == [0, 3, 6, 7]


@pytest.mark.parametrize("cpus", [1, 2])
def test_preprocessing_errors_name_the_first_record_with_or_without_helper(tmp_path, monkeypatch, cpus):
    """A preprocessing error surfaces for the first record it concerns, even when later batches, already
    on the helper thread, fail too."""
    monkeypatch.setattr(pn, "BATCH", 1)
    monkeypatch.setattr(pn, "available_cpus", lambda: cpus)
    for i in range(6):
        leads = ("I", "II") if i in (2, 3) else STANDARD_LEADS  # two failing batches of one shape
        write_record(tmp_path, f"A000{i}", _raw(i, 500)[:len(leads)], 500, "original", "164889003", leads=leads)
    with raises(f"physionet2021: record {tmp_path / 'A0002.hea'}: lead(s) V2 requested but the record "
                "has only I, II."):
        PhysioNet2021(str(tmp_path), leads=3, workers=1).build(None)


def test_cache_entry_written_while_decoding_matches_an_in_memory_build(tree, tmp_path, monkeypatch):
    """Through the cache, signals go straight into the entry's file (``ecgsearch.data.signal_writer``), from
    this process or, in path order, from worker processes: the same arrays as an in-memory build."""
    from ecgsearch.data.cache import open_dataset, prepare_dataset

    expected = PhysioNet2021(str(tree[0]), sampling_rate=100, workers=1).build(None)
    monkeypatch.setattr(pn, "MIN_RECORDS_PER_WORKER", 3)  # 2 spawned workers, chunks done in any order
    for workers in (1, 2):
        entry = prepare_dataset("physionet2021", PhysioNet2021(str(tree[0]), sampling_rate=100,
                                                               workers=workers), tmp_path / f"cache{workers}")
        data = open_dataset(entry)
        np.testing.assert_array_equal(data.signals, expected.signals)
        assert list(data.record_ids) == list(expected.record_ids)
        assert sorted(path.name for path in (entry / "work").iterdir()) == ["records.csv"]


def test_a_repeated_record_name_is_skipped_and_its_signal_not_kept(tmp_path):
    write_record(tmp_path / "a", "A0001", _raw(0, 500), 500, "original", "164889003")
    write_record(tmp_path / "a", "A0002", _raw(1, 500), 500, "original", "164889003")
    write_record(tmp_path / "b", "A0001", _raw(2, 500), 500, "wfdb", "426783006")
    data = PhysioNet2021(str(tmp_path), **IDENTITY).build(None)
    assert list(data.record_ids) == ["A0001", "A0002"] and len(data.signals) == 2
    assert data.extra["skipped"] == [{"record": "A0001", "reason": "duplicate record name"}]
    np.testing.assert_allclose(data.signals[1, 0], _raw(1, 500)[0] / 1000, atol=1e-6)  # A0002's own signal


def test_building_an_entry_holds_a_batch_not_the_dataset_in_memory(tmp_path, monkeypatch):
    """The signals go to the entry's file as they are decoded: the build's peak of traced memory stays
    far below the size of the signals (120 records x 12 x 5000 float32 = 28.8 MB here; stacking them in
    memory and saving them, as before, peaked above twice that)."""
    import tracemalloc

    from ecgsearch.data.cache import open_dataset, prepare_dataset

    for i in range(120):
        write_record(tmp_path / "data", f"A{i:04d}", _raw(i, 500), 500, "original", "164889003")
    monkeypatch.setattr(pn, "BATCH", 4)
    source = PhysioNet2021(str(tmp_path / "data"), sampling_rate=500, bandpass_low=None, workers=1)
    tracemalloc.start()
    try:
        entry = prepare_dataset("physionet2021", source, tmp_path / "cache")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    total = open_dataset(entry).signals.nbytes
    assert total == 120 * 12 * 5000 * 4
    assert peak < total / 2, f"peak {peak / 1e6:.1f} MB for {total / 1e6:.1f} MB of signals"
