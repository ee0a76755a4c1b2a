"""``ecgsearch validate`` refuses an ``evaluate.datasets`` entry whose classes cannot be scored with the trained task,
before any data is read, where both data sections' targets follow from their parameters (``DatasetInfo.target_names``);
the run's planner (``plan_evaluate``) applies the same rule, in the same sentence, to the prepared data
(docs/evaluation.md#other-datasets)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ecgsearch.cli import main
from ecgsearch.data.harmonise import ClassMismatch, match_task_classes, shared_classes
from ecgsearch.errors import UserError
from ecgsearch.plugins import get_registries

ROOT = Path(__file__).resolve().parent.parent
SYNTHETIC_CODES = ["426783006", "426177001", "427084000", "427393009", "270492004", "698252002", "111975006",
                   "59931005", "251146004"]
HEAD = """\
data: {{dataset: synthetic, records: 40, sampling_rate: 50, seconds: 10, leads: [I, II]{extra}}}
task: {task}
budget: {{trials: 1, epochs: 1}}
space:
  architecture: {{resnet: {{depth: 8, channels: 8, kernel: 7}}}}
  optimizer: {{adamw: {{lr: 0.01}}}}
evaluate:
  datasets:
    - {{name: other, data: {ood}}}
"""
LINE = 9  # the line of evaluate.datasets[0] in HEAD


def space(tmp_path: Path, ood: str, task: str = "multilabel", extra: str = "") -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(HEAD.format(ood=ood, task=task, extra=extra))
    return path


def validate(path: Path, capsys) -> tuple[int, str]:
    code = main(["validate", str(path)])
    captured = capsys.readouterr()
    return code, captured.err


def ptbxl(tmp_path: Path, settings: str = "") -> str:
    """A PTB-XL data section whose folder does not exist: validate reads no data."""
    root = tmp_path / "no-ptbxl"
    return f"{{dataset: ptbxl, root: {root}, sampling_rate: 50, seconds: 10, leads: [I, II]{settings}}}"


def test_an_ood_dataset_with_no_class_in_common_is_refused_with_one_sentence(tmp_path, capsys):
    path = space(tmp_path, ptbxl(tmp_path))  # superdiagnostic: NORM, MI, STTC, CD, HYP; no SNOMED counterpart
    code, err = validate(path, capsys)
    assert code == 2
    assert err == (f"{path}:{LINE}: evaluate.datasets[0].data: dataset 'ptbxl' shares no class with the trained "
                   "task (426783006, 426177001, 427084000, 427393009, 270492004, 698252002 and 3 more vs CD, HYP, MI, "
                   "NORM, STTC); choose labels of it that the model's classes have a counterpart in, or remove the "
                   "entry.\n")


def test_the_command_exits_2_in_a_fresh_process(tmp_path):
    path = space(tmp_path, ptbxl(tmp_path))
    done = subprocess.run([sys.executable, "-m", "ecgsearch", "validate", str(path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"{path}:{LINE}: evaluate.datasets[0].data: dataset 'ptbxl' shares no class")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize("ood", [
    "{dataset: code15, root: /nowhere/code15, sampling_rate: 50, seconds: 10, leads: [I, II]}",  # 1dAVb, SB, ST
    "PTBXL, labels: rhythm",  # SR, SBRAD, STACH, SARRH
    "PTBXL, labels: all",
    "{seed: 7}",  # the run's own targets
])
def test_an_ood_dataset_sharing_some_classes_is_accepted(tmp_path, capsys, ood):
    if ood.startswith("PTBXL"):
        ood = ptbxl(tmp_path, ood.removeprefix("PTBXL"))
    code, err = validate(space(tmp_path, ood), capsys)
    assert code == 0, err


def test_a_regression_model_needs_every_one_of_its_targets(tmp_path, capsys):
    ood = ptbxl(tmp_path, f", labels: features, features_root: {tmp_path / 'no-plus'}, targets: [HR, QRS]")
    path = space(tmp_path, ood, task="regression", extra=", targets: intervals")
    code, err = validate(path, capsys)
    assert code == 2
    assert err == (f"{path}:{LINE}: evaluate.datasets[0].data: a regression model is scored only on data with every "
                   "one of its targets, and dataset 'ptbxl' lacks "
                   "pr_ms, qt_ms; choose data with the same targets.\n"), err
    every = ptbxl(tmp_path, f", labels: features, features_root: {tmp_path / 'no-plus'}, targets: [QT, HR, PR, QRS]")
    code, err = validate(space(tmp_path, every, task="regression", extra=", targets: intervals"), capsys)
    assert code == 0, err


def test_a_regression_model_is_scored_on_data_with_at_least_its_targets(tmp_path, capsys):
    ood = "{dataset: deepfake, records: 40, sampling_rate: 50, seconds: 10, leads: [I, II]}"  # all four intervals
    code, err = validate(space(tmp_path, ood, task="regression", extra=", targets: [qrs_ms, hr_bpm]"), capsys)
    assert code == 0, err
    code, err = validate(space(tmp_path, "{targets: [qrs_ms, qt_ms]}", task="regression",
                               extra=", targets: [qrs_ms, hr_bpm]"), capsys)
    assert code == 2 and err.endswith("dataset 'synthetic' lacks hr_bpm; choose data with the same targets.\n"), err


def test_targets_known_only_from_the_data_are_left_to_the_run(tmp_path, capsys):
    """``classes: all`` is every code seen in the records: known once they are read, so the run checks it."""
    ood = "{dataset: physionet2021, root: /nowhere/challenge, sampling_rate: 50, seconds: 10, leads: [I, II], " \
          "classes: all}"
    code, err = validate(space(tmp_path, ood), capsys)
    assert code == 0, err
    path = tmp_path / "challenge.yaml"  # the model's side unknown: the same
    path.write_text(HEAD.format(ood=ptbxl(tmp_path), task="multilabel", extra="").replace(
        "dataset: synthetic, records: 40,", "dataset: physionet2021, root: /nowhere/challenge, classes: all,"))
    code, err = validate(path, capsys)
    assert code == 0, err


def test_the_declared_targets_of_the_built_in_datasets():
    datasets = get_registries().datasets
    known = {name: datasets.get(name).known_targets for name in ("synthetic", "physionet2021", "ptbxl", "code15",
                                                                    "deepfake")}
    assert known["synthetic"]({}) == tuple(SYNTHETIC_CODES)
    assert known["synthetic"]({"targets": "intervals"}) == ("hr_bpm", "pr_ms", "qrs_ms", "qt_ms")
    assert known["synthetic"]({"targets": ["qt_ms", "hr_bpm"]}) == ("qt_ms", "hr_bpm")
    assert known["deepfake"]({}) == ("hr_bpm", "pr_ms", "qrs_ms", "qt_ms")
    assert known["deepfake"]({"targets": ["pr_ms"]}) == ("pr_ms",)
    assert known["code15"]({"root": "/x"}) == ("1dAVb", "RBBB", "LBBB", "SB", "ST", "AF")
    scored = known["physionet2021"]({})
    assert len(scored) == 26 and "713427006|59118001" in scored and known["physionet2021"]({"classes": "all"}) is None
    assert known["ptbxl"]({}) == ("CD", "HYP", "MI", "NORM", "STTC")
    assert [len(known["ptbxl"]({"labels": s})) for s in ("subdiagnostic", "diagnostic", "form", "rhythm", "all")] == \
        [23, 44, 19, 12, 71]
    assert known["ptbxl"]({"labels": "diagnostic_subclass"}) == known["ptbxl"]({"labels": "subdiagnostic"})
    assert known["ptbxl"]({"labels": "features"}) == ("hr_bpm", "pr_ms", "qrs_ms", "qt_ms")
    assert known["ptbxl"]({"labels": "features", "targets": ["QTc", "QT_IntFridericia_Global"]}) == \
        ("qtc_ms", "QT_IntFridericia_Global")


def test_the_ptbxl_declaration_equals_the_sets_of_the_real_statement_table(shared_data):
    import pandas as pd

    from ecgsearch_plugins.datasets.ptbxl import PUBLISHED_COLUMNS, STATEMENT_SETS, label_columns

    statements = pd.read_csv(shared_data / "ptbxl" / "scp_statements.csv", index_col=0)
    for labels in STATEMENT_SETS:
        assert tuple(label_columns(statements, labels)[0]) == PUBLISHED_COLUMNS[labels], labels


def test_a_merged_challenge_class_means_the_concept_of_its_codes():
    """PhysioNet 2021's scored classes merge equivalent codes (``713427006|59118001``): RBBB, as CODE-15% names it."""
    code15 = ["1dAVb", "RBBB", "LBBB", "SB", "ST", "AF"]
    scored = get_registries().datasets.get("physionet2021").known_targets({})
    matched = shared_classes(scored, code15)
    assert dict(matched.pairs) == {"164889003": ("AF",), "733534002|164909002": ("LBBB",),
                                   "713427006|59118001": ("RBBB",), "270492004": ("1dAVb",),
                                   "426177001": ("SB",), "427084000": ("ST",)}
    assert shared_classes(["RBBB"], ["713427006|59118001"]).pairs == [("RBBB", ("713427006|59118001",))]
    assert shared_classes(["CRBBB"], ["713427006|59118001", "59118001"]).pairs == [
        ("CRBBB", ("713427006|59118001", "59118001"))]


def test_the_rule_in_one_place():
    with pytest.raises(ClassMismatch) as error:
        match_task_classes(["NORM", "MI"], ["AF", "RBBB"], "multilabel", "code15")
    assert str(error.value) == ("dataset 'code15' shares no class with the trained task (NORM, MI vs AF, RBBB); choose "
                                "labels of it that the model's classes have a counterpart in, or remove the entry.")
    with pytest.raises(ClassMismatch) as error:
        match_task_classes(["AFIB", "SR"], ["AF", "RBBB"], "multiclass", "code15")
    assert str(error.value) == ("a multiclass model is scored only on data with every one of its targets, and dataset "
                                "'code15' lacks SR; choose data with the same targets.")
    matched = match_task_classes(["AFIB", "SR"], ["AF", "RBBB"], "multilabel", "code15")
    assert matched.pairs == [("AFIB", ("AF",))] and matched.missing == ["SR"]


def test_the_run_and_validate_refuse_in_the_same_sentence(tmp_path, capsys):
    """The planner's check on the prepared data and validate's on the declarations: one sentence."""
    from ecgsearch.data.prepare import prepare_data
    from ecgsearch.space import parse_space
    from ecgsearch.space.messages import Context
    from ecgsearch.space.sections import parse_data_over
    from ecgsearch.space.spec import EvaluateSpec, OodDataSpec
    from ecgsearch.space.yamlio import load_yaml
    from ecgsearch.train.ood import plan_evaluate

    path = space(tmp_path, "{targets: intervals}")
    code, err = validate(path, capsys)
    assert code == 2
    text = path.read_text()
    document, lines = load_yaml(text, str(path))
    ctx = Context(str(path), lines)
    spec = parse_space(text.split("evaluate:")[0], source=str(path))
    key = "evaluate.datasets[0].data"
    ood = parse_data_over(ctx, document["evaluate"]["datasets"][0]["data"], spec.data, get_registries(), key)
    entry = prepare_data(spec.data, "test")
    with pytest.raises(UserError) as error:
        plan_evaluate(EvaluateSpec(datasets=(OodDataSpec("other", ood),)), 0, spec.task.name, entry, ctx)
    assert str(error.value) + "\n" == err
    assert err.startswith(f"{path}:{LINE}: {key}: dataset 'synthetic' shares no class with the trained task ("
                          f"{', '.join(SYNTHETIC_CODES[:6])} and 3 more vs hr_bpm, pr_ms, qrs_ms, qt_ms); ")
