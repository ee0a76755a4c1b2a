"""The deepfake dataset: contract, seeded determinism, measured targets, safe weights, errors, registry."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import find_peaks

pytest.importorskip("deepfakeecg", reason="the deepfake dataset needs deepfake-ecg (pip install deepfake-ecg)")
pytest.importorskip("neurokit2", reason="the deepfake dataset needs neurokit2 (pip install neurokit2)")

from ecgsearch.data import EcgArrays  # noqa: E402
from ecgsearch_plugins.datasets import deepfake  # noqa: E402
from ecgsearch_plugins.datasets.deepfake import DeepFakeEcg  # noqa: E402

RECORDS = 24
LEADS = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]


@pytest.fixture(scope="module")
def dataset() -> tuple[EcgArrays, list]:
    calls: list = []
    data = DeepFakeEcg(records=RECORDS, seed=1, batch_size=8).build(None, lambda *a: calls.append(a))
    return data, calls


def test_arrays_follow_the_contract(dataset):
    data, calls = dataset
    kept = len(data.record_ids)
    assert kept + len(data.extra["skipped"]) == RECORDS and kept >= RECORDS // 2
    assert data.signals.shape == (kept, 8, 5000) and data.signals.dtype == np.float32
    assert data.targets.shape == (kept, 4) and data.targets.dtype == np.float32
    assert data.target_names == ["hr_bpm", "pr_ms", "qrs_ms", "qt_ms"]
    assert data.leads == LEADS and data.sampling_rate == 500.0
    assert np.isfinite(data.signals).all() and 0.01 < np.abs(data.signals).mean() < 1  # mV, not µV
    assert all(rid.startswith("DF") for rid in data.record_ids) and len(set(data.record_ids)) == kept
    skipped_ids = {item["record"] for item in data.extra["skipped"]}
    assert not skipped_ids & set(data.record_ids)
    assert all(item["reason"] for item in data.extra["skipped"])
    counts = data.extra["split_counts"]
    assert sum(counts.values()) == kept and min(counts.values()) >= 1
    assert calls[0] == (0, RECORDS, "generating DeepFake ECGs")
    assert [c[0] for c in calls] == [0, 8, 16, 24]


def test_targets_in_range_and_hr_matches_r_peak_counting(dataset):
    data, _ = dataset
    for column, name in enumerate(data.target_names):
        lo, hi = deepfake.TARGET_RANGES[name]
        assert ((data.targets[:, column] >= lo) & (data.targets[:, column] <= hi)).all(), name
    lead_ii = data.signals[:, LEADS.index("II")]
    agree = 0
    for signal, hr in zip(lead_ii, data.targets[:, 0]):
        peaks = find_peaks(signal, distance=int(0.3 * 500), prominence=0.5 * np.ptp(signal))[0]
        counted = 60.0 * (len(peaks) - 1) / ((peaks[-1] - peaks[0]) / 500.0)
        agree += abs(counted - hr) / hr < 0.1
    assert agree >= 0.9 * len(lead_ii)


def test_same_seed_same_arrays_other_seed_differs_lead_subset_and_rate(dataset):
    data, _ = dataset
    again = DeepFakeEcg(records=RECORDS, seed=1, batch_size=8, leads=["v5", "II"], sampling_rate=250,
                        seconds=8).build(None)
    np.testing.assert_array_equal(again.record_ids, data.record_ids)
    np.testing.assert_array_equal(again.targets, data.targets)
    np.testing.assert_array_equal(again.split, data.split)
    assert again.leads == ["V5", "II"] and again.signals.shape == (len(data.record_ids), 2, 2000)
    first = deepfake.batch_noise(1, 0, 2)
    assert np.array_equal(first.numpy(), deepfake.batch_noise(1, 0, 2).numpy())
    assert not np.allclose(first.numpy(), deepfake.batch_noise(2, 0, 2).numpy())
    assert not np.allclose(first.numpy(), deepfake.batch_noise(1, 1, 2).numpy())
    assert float(first.min()) >= -1 and float(first.max()) <= 1


def test_a_list_of_targets_keeps_only_those_columns(dataset):
    """``targets: [qrs_ms]``: the same records, only the QRS duration (a single-target pretraining)."""
    data, _ = dataset
    qrs = DeepFakeEcg(records=RECORDS, seed=1, batch_size=8, targets=["qrs_ms"]).build(None)
    assert qrs.target_names == ["qrs_ms"] and qrs.targets.shape == (len(data.record_ids), 1)
    np.testing.assert_array_equal(qrs.targets[:, 0], data.targets[:, data.target_names.index("qrs_ms")])
    assert DeepFakeEcg(targets=["qrs_ms"]).fingerprint() != DeepFakeEcg().fingerprint()  # its own cache entry


def test_weights_are_loaded_with_weights_only(monkeypatch):
    import torch

    seen: list = []
    real_load = torch.load

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    model = deepfake.load_generator()
    assert seen == [{"map_location": "cpu", "weights_only": True}] and not model.training


def test_fingerprint_has_every_parameter_and_a_version():
    fp = DeepFakeEcg(records=30, workers=1).fingerprint()
    assert set(fp) >= {"records", "sampling_rate", "seconds", "leads", "targets", "seed", "val_fraction",
                       "test_fraction", "batch_size", "generator"}
    assert "workers" not in fp and fp["leads"] == LEADS
    assert DeepFakeEcg(records=30, batch_size=8).fingerprint() != fp


def test_no_measurable_record_is_an_error(monkeypatch):
    monkeypatch.setattr(deepfake, "measure_intervals", lambda signal: (None, "delineation failed: boom"))
    with pytest.raises(ValueError) as error:
        DeepFakeEcg(records=10, batch_size=10).build(None)
    assert str(error.value) == ("deepfake: none of the 10 generated records could be measured on lead II "
                                "(delineation failed); try another seed or more records.")


def test_flat_signal_is_skipped_with_a_reason():
    values, reason = deepfake.measure_intervals(np.zeros(5000))
    assert values is None and reason


@pytest.mark.parametrize("kwargs, message", [
    ({"records": 5}, "deepfake: records must be an integer of at least 10 (got 5)."),
    ({"sampling_rate": 20}, "deepfake: sampling_rate must be a number of Hz between 50 and 1000 (got 20)."),
    ({"seconds": 12}, "deepfake: seconds must be a number between 2 and 10, the generator makes 10 s "
                      "records (got 12)."),
    ({"targets": "labels"}, "deepfake: targets must be one of 'intervals', or a list of distinct names from "
                            "hr_bpm, pr_ms, qrs_ms, qt_ms (got 'labels')."),
    ({"targets": ["qrs_ms", "qrs_ms"]}, "deepfake: targets must be one of 'intervals', or a list of distinct names "
                                        "from hr_bpm, pr_ms, qrs_ms, qt_ms (got ['qrs_ms', 'qrs_ms'])."),
    ({"seed": -1}, "deepfake: seed must be a non-negative integer (got -1)."),
    ({"val_fraction": 0}, "deepfake: val_fraction must be a number between 0 and 1, both excluded, so "
                          "that every split has records (got 0)."),
    ({"val_fraction": 0.5, "test_fraction": 0.4}, "deepfake: val_fraction + test_fraction must stay below "
                                                  "0.9 so that training keeps records (got 0.5 + 0.4)."),
    ({"batch_size": 0}, "deepfake: batch_size must be an integer between 1 and 1024 (got 0)."),
    ({"workers": -1}, "deepfake: workers must be a non-negative integer, 0 for automatic (got -1)."),
    ({"leads": "II"}, "deepfake: leads must be a non-empty list of lead names from I, II, V1, V2, V3, V4, "
                      "V5, V6 (got 'II')."),
    ({"leads": ["aVR"]}, "deepfake: unknown lead 'aVR'; allowed leads: I, II, V1, V2, V3, V4, V5, V6."),
    ({"leads": ["II", "ii"]}, "deepfake: lead 'II' is listed twice in leads; list each lead once."),
])
def test_bad_arguments_are_explained(kwargs, message):
    with pytest.raises(ValueError) as error:
        DeepFakeEcg(**kwargs)
    assert str(error.value) == message


def test_hook_registers_the_dataset_lazily():
    (info,) = deepfake.ecgsearch_register_datasets()
    assert (info.name, info.tasks, info.requires) == ("deepfake", ("regression", "probabilistic"),
                                                       ("deepfakeecg", "neurokit2"))
    assert info.factory == "ecgsearch_plugins.datasets.deepfake:DeepFakeEcg"
    assert info.install_hint == "pip install deepfake-ecg" and info.available() == (True, "")
    assert isinstance(info.create(records=10), DeepFakeEcg)
