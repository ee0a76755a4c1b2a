"""Datasets declare the label sets they give and the tasks each fits; ``ecgsearch validate`` refuses a task
that does not fit the chosen targets before any data is read, with one sentence (one test per refusal)."""

from __future__ import annotations

import inspect
import logging
import runpy
from pathlib import Path

import pytest

from ecgsearch.cli import main
from ecgsearch.errors import SpaceError
from ecgsearch.infos import DatasetInfo, LabelSet
from ecgsearch.plugins import BUILTIN_PLUGINS, get_registries
from ecgsearch.space import parse_space

FAKES = runpy.run_path(str(Path(__file__).parent / "space_files" / "fakes.py"))
DOCS = Path(__file__).resolve().parent.parent / "docs"
TAIL = "budget: {trials: 1, epochs: 1}\nspace: {architecture: resnet, optimizer: adamw}\n"


def refusal(data: str, task: str, registries=None, extra: str = "") -> str:
    """The message of the space file ``data`` (line 1) + ``task`` (line 2), which must be refused."""
    with pytest.raises(SpaceError) as caught:
        parse_space(f"data: {data}\ntask: {task}\n{TAIL}{extra}", source="x.yaml", registries=registries)
    return str(caught.value)


def documented(message: str) -> str:
    """``message``, which docs/space-file.md shows as it is."""
    assert message in (DOCS / "space-file.md").read_text(), message
    return message


def test_every_built_in_dataset_declares_its_label_sets():
    for info in get_registries().datasets:
        if info.plugin not in BUILTIN_PLUGINS:
            continue
        assert info.label_sets and info.tasks, info.name
        assert set(info.tasks) <= {"multilabel", "multiclass", "regression", "probabilistic"}, info.name
        if info.label_param:  # its values are the sets, and the first set is the factory's default
            declared = info.params[info.label_param]  # a string, or either that or a list of targets (deepfake)
            strings = [form for form in declared.forms if form.type == "str"] if declared.forms else [declared]
            assert strings[0].choices == tuple(info.label_sets), info.name
            default = inspect.signature(info.load()).parameters[info.label_param].default
            assert default == next(iter(info.label_sets)), info.name
        else:
            assert len(info.label_sets) == 1, info.name


def test_the_datasets_page_lists_each_declaration():
    """docs/datasets.md's table of label sets and tasks says what the declarations say."""
    rows = {}
    for line in (DOCS / "datasets.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 3:
            rows[cells[0].strip("`")] = cells
    for info in get_registries().datasets:
        if info.plugin not in BUILTIN_PLUGINS:
            continue
        _, chosen_by, sets = rows[info.name]
        assert chosen_by == (f"`{info.label_param}`" if info.label_param else "(one set)"), info.name
        for name, label_set in info.label_sets.items():
            assert label_set.deprecated or not info.label_param or f"`{name}`" in sets, (info.name, name)
            assert all(task in sets for task in label_set.fits(True)), (info.name, name)


# --- the refusals, one per path of ecgsearch.space.sections.check_data_task --------------------------------


def test_a_task_no_target_of_the_dataset_fits():
    assert refusal("{dataset: code15, root: /data/code15}", "regression") == documented(
        "x.yaml:2: task: 'regression' does not fit dataset 'code15', whose targets fit only multilabel; use task: "
        "multilabel, or a dataset with regression targets")


def test_a_label_set_that_needs_another_parameter():
    assert refusal("{dataset: ptbxl, root: /data/ptbxl, labels: features}", "regression") == documented(
        "x.yaml:1: data.labels: 'features' of dataset 'ptbxl' needs data.features_root; set data.features_root or "
        "choose another value of labels")


def test_multiclass_on_a_multilabel_set_without_single_label():
    assert refusal("{dataset: ptbxl, root: /data/ptbxl}", "multiclass") == documented(
        "x.yaml:2: task: 'multiclass' needs exactly one label per record and data.labels: 'superdiagnostic' of "
        "dataset 'ptbxl' can give several; set data.single_label: true to keep only the records with exactly one "
        "label, or use task: multilabel")


@pytest.mark.parametrize("data, task, message", [
    ("{dataset: synthetic}", "regression",
     "x.yaml:2: task: 'regression' does not fit data.targets: 'labels' of dataset 'synthetic' (it fits multilabel); "
     "set data.targets: intervals for regression"),
    ("{dataset: ptbxl, root: /data/ptbxl}", "regression",
     "x.yaml:2: task: 'regression' does not fit data.labels: 'superdiagnostic' of dataset 'ptbxl' (it fits "
     "multilabel, or multiclass with data.single_label: true); set data.labels: features with data.features_root "
     "for regression"),
    ("{dataset: ptbxl, root: /data/ptbxl, labels: features, features_root: /data/ptb-xl-plus}", "multiclass",
     "x.yaml:2: task: 'multiclass' does not fit data.labels: 'features' of dataset 'ptbxl' (it fits regression or "
     "probabilistic); set data.labels: superdiagnostic, subdiagnostic, diagnostic, form, rhythm or all with "
     "data.single_label: true for multiclass"),
    ("{dataset: synthetic, targets: [qrs_ms]}", "multilabel",  # some targets of a set stand for the set
     "x.yaml:2: task: 'multilabel' does not fit data.targets: 'intervals' of dataset 'synthetic' (it fits regression "
     "or probabilistic); set data.targets: labels for multilabel"),
], ids=["synthetic labels", "ptbxl statements", "ptbxl features", "synthetic qrs"])
def test_a_task_that_another_label_set_fits(data, task, message):
    assert refusal(data, task) == message
    if data == "{dataset: synthetic}":
        documented(message)


def test_a_task_only_a_deprecated_name_fits():
    regs = FAKES["fake_registries"]()
    regs.datasets.add(DatasetInfo(name="odd", description="", factory=lambda kind="a": None, label_param="kind",
                                  label_sets={"a": LabelSet(("multilabel",)),
                                              "b": LabelSet(("regression",), deprecated="kind: c")}))
    assert refusal("{dataset: odd}", "regression", regs) == (
        "x.yaml:2: task: 'regression' does not fit data.kind: 'a' of dataset 'odd' (it fits multilabel)")


def test_the_pretraining_task_is_checked_against_its_data():
    message = refusal("{dataset: synthetic}", "multilabel",
                      extra="transfer: {pretrain: {data: {targets: labels}, task: regression, epochs: 1}}\n")
    assert message == (
        "x.yaml:5: transfer.pretrain.task: 'regression' does not fit transfer.pretrain.data.targets: 'labels' of "
        "dataset 'synthetic' (it fits multilabel); set transfer.pretrain.data.targets: intervals for regression")


def test_validate_prints_the_refusal_and_exits_2(tmp_path, capsys):
    path = tmp_path / "space.yaml"
    path.write_text(f"data: {{dataset: ptbxl, root: /data/ptbxl, labels: form}}\ntask: multiclass\n{TAIL}")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:2: task: 'multiclass' needs exactly one label per record and data.labels: "
                          "'form' of dataset 'ptbxl' can give several; set data.single_label: true") and \
        err.count("\n") == 1


# --- what passes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data, task", [
    ("{dataset: ptbxl, root: /data/ptbxl, labels: rhythm, single_label: true}", "multiclass"),
    ("{dataset: ptbxl, root: /data/ptbxl, labels: features, features_root: /data/ptb-xl-plus, targets: [HR, QT]}",
     "probabilistic"),
    ("{dataset: synthetic, targets: intervals}", "regression"),
    ("{dataset: deepfake}", "regression"),
    ("{dataset: synthetic, targets: [qrs_ms, hr_bpm]}", "regression"),
    ("{dataset: physionet2021, root: /data/challenge, classes: all}", "multilabel"),
])
def test_fitting_pairs_validate(data, task):
    spec = parse_space(f"data: {data}\ntask: {task}\n{TAIL}", source="x.yaml")
    assert spec.task.name == task


def test_the_old_subclass_name_validates_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="ecgsearch.space.sections"):
        parse_space(f"data: {{dataset: ptbxl, root: /data/ptbxl, labels: diagnostic_subclass}}\ntask: multilabel\n"
                    f"{TAIL}", source="x.yaml")
    assert "x.yaml: data.labels: 'diagnostic_subclass' is an old name, read for now; write labels: subdiagnostic" \
        in caplog.text


def test_a_dataset_that_declares_nothing_is_not_checked_and_one_with_tasks_is():
    regs = FAKES["fake_registries"]()  # its synthetic dataset declares neither tasks nor label sets
    assert parse_space(f"data: {{dataset: synthetic}}\ntask: regression\n{TAIL}", registries=regs).task.name == \
        "regression"
    regs.datasets.add(DatasetInfo(name="labelled", description="", factory=lambda: None, tasks=("multilabel",)))
    assert refusal("{dataset: labelled}", "regression", regs) == (
        "x.yaml:2: task: 'regression' does not fit dataset 'labelled', whose targets fit only multilabel; use task: "
        "multilabel, or a dataset with regression targets")


def test_declarations_that_contradict_themselves_are_refused():
    with pytest.raises(ValueError, match="tasks .* differ from those of its label_sets"):
        DatasetInfo(name="x", description="", factory=dict, tasks=("multilabel",),
                    label_sets={"v": LabelSet(("regression",))})
    with pytest.raises(ValueError, match="label_param 'kind' names no label_sets"):
        DatasetInfo(name="x", description="", factory=dict, label_param="kind")
    info = DatasetInfo(name="x", description="", factory=dict, label_param="kind",
                       label_sets={"a": LabelSet(("multilabel",), single_label="one"), "b": LabelSet(("regression",))})
    assert info.tasks == ("multilabel", "multiclass", "regression")
    assert info.label_set({}) == ("a", info.label_sets["a"]) and info.label_set({"kind": "b"})[0] == "b"
    assert info.label_set({"kind": "zzz"}) is None
