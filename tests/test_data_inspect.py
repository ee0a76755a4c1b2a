"""``data inspect``: the summary of a prepared dataset, its text and JSON forms, and its errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from ecgsearch.cli.data import add_parser, format_summary, parse_params
from ecgsearch.data.inspect import inspect_dataset
from ecgsearch.errors import UserError
from ecgsearch.plugins import get_registries

SYNTHETIC = {"records": 40, "workers": 1}


def run_cli(argv: list[str]) -> int:
    """Call the command as the CLI will: a parser with ``add_parser(sub)``, then ``args.func(args)``."""
    parser = argparse.ArgumentParser(prog="ecgsearch")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("inspect-cache")


@pytest.fixture(scope="module")
def synthetic(cache_root: Path) -> dict:
    return inspect_dataset("synthetic", dict(SYNTHETIC), cache_root=cache_root)


def test_synthetic_summary_counts_records_classes_and_splits(synthetic, cache_root):
    s = synthetic
    assert (s["dataset"], s["records"], s["samples"], s["sampling_rate"], s["seconds"]) == \
        ("synthetic", 40, 1000, 100.0, 10.0)
    assert len(s["leads"]) == 12 and s["leads"][:2] == ["I", "II"]
    assert s["task"] == "multilabel"
    assert sum(s["splits"].values()) == 40 and set(s["splits"]) == {"train", "val", "test"}
    assert s["splits"]["val"] == s["splits"]["test"] == 6  # 15% of 40, rounded
    assert len(s["targets"]) == 9 and all(t["positives"] >= 1 for t in s["targets"])
    assert all(t["fraction"] == pytest.approx(t["positives"] / 40) for t in s["targets"])
    assert s["sources"] is None and s["skipped"] == []
    assert Path(s["entry"]).parent == cache_root


def test_a_second_inspection_reuses_the_entry(synthetic, cache_root):
    again = inspect_dataset("synthetic", dict(SYNTHETIC), cache_root=cache_root)
    assert again == synthetic
    assert len([p for p in cache_root.iterdir() if p.is_dir()]) == 1


def test_the_text_summary_has_aligned_columns(synthetic):
    text = format_summary(synthetic)
    lines = text.splitlines()
    assert lines[0] == "dataset        synthetic"
    assert "records        40" in lines
    assert "sampling rate  100 Hz" in lines
    assert "samples        1000 per lead (10 s)" in lines
    assert "targets (9, multilabel)" in lines
    assert "skipped records: none" in lines
    table = lines[lines.index("targets (9, multilabel)") + 1:][:10]
    assert table[0].split() == ["class", "label", "positives", "fraction"]
    ends = {len(line) for line in table}  # right-aligned numbers end in the same column
    assert len(ends) == 1, table


def test_real_records_summary_lists_sources_and_classes(shared_data, tmp_path):
    root = shared_data / "physionet2021" / "sample_records"
    s = inspect_dataset("physionet2021", {"root": str(root), "workers": 1}, cache_root=tmp_path)
    assert (s["records"], len(s["leads"]), s["sampling_rate"], s["samples"]) == (10, 12, 100.0, 1000)
    assert s["sources"] == {"Georgia": 10}
    assert s["skipped"] == []
    assert len(s["targets"]) == 26 and sum(s["splits"].values()) == 10
    # E07500 is "67741000119109,426177001" (unscored, sinus bradycardia SB)
    sb = next(t for t in s["targets"] if t["name"] == "426177001")
    assert sb["label"] == "SB" and sb["positives"] >= 1
    text = format_summary(s)
    assert "sources" in text.splitlines() and "  Georgia       10" in text.splitlines()
    # the four label groups of the ResNet D/C/K study, each counted against the classes' own positives
    groups = {g["group"]: g for g in s["label_groups"]}
    assert set(groups) == {"arrhythmia", "conduction_disorder", "axis_deviation", "prolonged_intervals"}
    positives = {t["name"]: t["positives"] for t in s["targets"]}
    for group in groups.values():
        present = [c for c in group["classes"] if c in positives]
        assert max((positives[c] for c in present), default=0) <= group["records"] <= \
            sum(positives[c] for c in present)
    assert "label groups" in text.splitlines() and s["patients"] is None and "patients " not in text


def test_patients_are_counted_and_a_patient_in_two_splits_is_found():
    from ecgsearch.data.inspect import _patients

    assert _patients(None, np.array(["train"])) is None
    summary = _patients(np.array(["a", "a", "b", "c", "c", "c"]),
                        np.array(["train", "val", "train", "test", "test", "test"]))
    assert summary == {"patients": 3, "records_per_patient": [1, 3], "in_several_splits": 1}  # a: train and val


def test_synthetic_patients_stay_in_one_split(cache_root):
    s = inspect_dataset("synthetic", {**SYNTHETIC, "records_per_patient": 2}, cache_root=cache_root)
    assert s["patients"] == {"patients": 20, "records_per_patient": [2, 2], "in_several_splits": 0}
    assert "patients       20 (2-2 records each; 0 with records in two splits or more)" in format_summary(s)


def test_skipped_records_are_listed_with_their_reason(shared_data, tmp_path):
    root = tmp_path / "records"
    root.mkdir()
    for path in (shared_data / "physionet2021" / "sample_records").glob("E0750[01].*"):
        (root / path.name).write_bytes(path.read_bytes())
    (root / "E07501.mat").write_bytes(b"not a mat file")
    s = inspect_dataset("physionet2021", {"root": str(root), "workers": 1}, cache_root=tmp_path / "cache")
    assert s["records"] == 1 and [k["record"] for k in s["skipped"]] == ["E07501"]
    assert s["skipped"][0]["reason"]
    assert "skipped records: 1" in format_summary(s)


def test_the_command_prints_text_and_json(synthetic, cache_root, monkeypatch, capsys):
    monkeypatch.setenv("ECGSEARCH_CACHE", str(cache_root))  # the same entry: a cache hit
    assert run_cli(["data", "inspect", "synthetic", "--param", "records=40", "--param", "workers=1"]) == 0
    assert capsys.readouterr().out == format_summary(synthetic) + "\n"
    assert run_cli(["data", "inspect", "synthetic", "--param", "records=40", "--param", "workers=1",
                    "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == synthetic


def test_root_and_yaml_values_become_parameters():
    assert parse_params(["records=40", "leads=[I, II]", "bandpass_high=null", "classes=all"], "/data") == {
        "records": 40, "leads": ["I", "II"], "bandpass_high": None, "classes": "all", "root": "/data"}


def _message(call) -> str:
    with pytest.raises(UserError) as caught:
        call()
    return str(caught.value)


def test_an_unknown_dataset_names_the_allowed_ones(tmp_path):
    allowed = ", ".join(get_registries().datasets.names())
    assert _message(lambda: inspect_dataset("physionet2012", {}, cache_root=tmp_path)) == (
        f"'physionet2012' is not a registered dataset (allowed: {allowed}); did you mean 'physionet2021'?")


def test_bad_parameters_are_one_sentence(tmp_path):
    assert _message(lambda: inspect_dataset("synthetic", {"records": 2}, cache_root=tmp_path)) == (
        "data inspect: dataset 'synthetic': records must be an integer of at least 20 (got 2).")
    assert _message(lambda: inspect_dataset("synthetic", {"bogus": 1}, cache_root=tmp_path)) == (
        "data inspect: dataset 'synthetic' rejected its parameters: SyntheticEcg.__init__() got an "
        "unexpected keyword argument 'bogus'")
    missing = tmp_path / "nowhere"
    assert _message(lambda: inspect_dataset("physionet2021", {"root": str(missing)}, cache_root=tmp_path)) == (
        f"data inspect: dataset 'physionet2021': the data folder {missing} does not exist; set root to the "
        "unpacked Challenge 2021 training folder.")
    assert not [p for p in tmp_path.iterdir() if p.is_dir() and p.name != "nowhere"]


def test_bad_command_line_parameters_are_one_sentence(tmp_path):
    assert _message(lambda: run_cli(["data", "inspect", "synthetic", "--param", "records"])) == (
        "data inspect: --param expects KEY=VALUE (got 'records'); for example --param sampling_rate=100.")
    assert _message(lambda: run_cli(["data", "inspect", "synthetic", "--param", "leads=[I, II"])).startswith(
        "data inspect: --param leads: '[I, II' is not a valid YAML value (")
    assert _message(lambda: run_cli(["data", "inspect", "physionet2021", "--root", str(tmp_path),
                                     "--param", f"root={tmp_path}"])) == (
        "data inspect: the data folder is given twice (--root and --param root=...); keep one of them.")
