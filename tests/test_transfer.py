"""Transfer learning: the space file's section, the pretrain / re-head / freeze / fine-tune trial, the fusion of
several pretrainings (one encoder each: trial, freezing, costs, export), and a real reduced-size transfer search
whose results table holds fine-tuned and from-scratch scores."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from toy_ecg import SEARCH_DATA, SPACE, reduced_space, toy_context, toy_entry

from ecgsearch.data.cache import open_dataset
from ecgsearch.errors import SpaceError, UserError
from ecgsearch.space import parse_space
from ecgsearch.train.setup import build_trial
from ecgsearch.train.transfer import PretrainPlan, TransferPlan, check_matching_data, plan_transfer, start_transfer
from ecgsearch.train.trial import run_trial

pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py

BASE = "data: {dataset: synthetic, records: 60}\ntask: multilabel\nbudget: {trials: 1, epochs: 2}\n" \
       "space: {architecture: resnet, optimizer: adamw}\n"


# --- the space file ------------------------------------------------------------------------------


def test_the_transfer_section_parses_and_adds_freeze_stages() -> None:
    spec = parse_space(BASE + "transfer:\n  pretrain: {data: {targets: intervals}, task: {name: regression, loss: mse},"
                              " epochs: 3}\n  freeze_stages: {choice: [0, 1, 2]}\n  compare_scratch: true\n")
    (pretrain,) = spec.transfer.pretrain
    assert pretrain.name == "" and spec.encoders == 1  # one mapping: columns pretrain.*, one model
    assert pretrain.data.dataset == "synthetic"
    assert dict(pretrain.data.params) == {"records": 60, "targets": "intervals"}  # merged over data
    assert (pretrain.task.name, dict(pretrain.task.params), pretrain.metric, pretrain.mode, pretrain.epochs) == \
        ("regression", {"loss": "mse"}, "mae", "min", 3)
    assert spec.transfer.compare_scratch
    assert {spec.space.sample(0, i)["freeze_stages"] for i in range(30)} == {0, 1, 2}


def test_without_freeze_stages_nothing_is_frozen() -> None:
    spec = parse_space(BASE + "transfer: {pretrain: {data: {targets: intervals}, task: regression, epochs: 1}}")
    assert spec.space.sample(0, 0)["freeze_stages"] == 0 and not spec.transfer.compare_scratch


@pytest.mark.parametrize("section, message", [
    ("{pretrain: {task: regression}}", r"transfer.pretrain.epochs: the required key is missing"),
    ("{pretrain: {task: regresion, epochs: 1}}", r"transfer.pretrain.task: 'regresion' is not a registered task.*"
                                                 r"did you mean 'regression'"),
    ("{pretrain: {data: {targets: intervals}, task: regression, metric: macro_auroc, epochs: 1}}",
     r"transfer.pretrain.metric: 'macro_auroc' does not apply to task 'regression' \(allowed: mae\)"),
    ("{pretrain: {data: {recrods: 5}, task: regression, epochs: 1}}",
     r"transfer.pretrain.data.recrods: 'recrods' is not a parameter of dataset 'synthetic'"),
    ("{pretrain: {data: {targets: intervals}, task: regression, epochs: 1}, freeze_stages: -1}",
     r"transfer.freeze_stages: -1 is not an integer >= 0"),
    ("{pretrain: {task: regression, epochs: 1}, compare: true}",
     r"transfer.compare: 'compare' is not a transfer setting.*did you mean 'compare_scratch'"),
    ("{freeze_stages: 1}", r"transfer.pretrain: the required key is missing"),
])
def test_transfer_section_errors(section: str, message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        parse_space(BASE + f"transfer: {section}")


def test_a_list_of_pretrainings_parses_with_unique_names() -> None:
    """Route (1): several pretrainings, fused; a name by default from the chosen targets, else the task."""
    spec = parse_space(BASE + "transfer:\n  pretrain:\n"
                              "    - {data: {targets: [qrs_ms]}, task: regression, epochs: 1}\n"
                              "    - {name: rhythm, data: {targets: [hr_bpm, pr_ms]}, task: regression, epochs: 2}\n"
                              "    - {data: {targets: intervals}, task: regression, epochs: 1}\n"
                              "    - {data: {targets: intervals}, task: regression, epochs: 1}\n")
    assert [p.name for p in spec.transfer.pretrain] == ["qrs_ms", "rhythm", "intervals", "intervals_2"]
    assert spec.encoders == 4 and spec.transfer.pretrain[1].epochs == 2
    assert dict(spec.transfer.pretrain[0].data.params) == {"records": 60, "targets": ["qrs_ms"]}


ONE = "{data: {targets: [qrs_ms]}, task: regression, epochs: 1}"


@pytest.mark.parametrize("section, message", [
    ("  pretrain: []\n", "<string>:6: transfer.pretrain: [] is an empty list; give one pretraining (a mapping) or a "
                         "list of them"),
    (f"  pretrain:\n    - {ONE}\n    - regression\n",
     "<string>:8: transfer.pretrain[1]: 'regression' is not a mapping of data, task, metric, epochs and name"),
    ("  pretrain:\n    - {name: qrs, data: {targets: [qrs_ms]}, task: regression, epochs: 1}\n"
     "    - {name: qrs, data: {targets: [qt_ms]}, task: regression, epochs: 1}\n",
     "<string>:8: transfer.pretrain[1].name: 'qrs' is already the name of transfer.pretrain[0]; give each "
     "pretraining its own name"),
    ("  pretrain:\n    - {name: q.rs, data: {targets: [qrs_ms]}, task: regression, epochs: 1}\n",
     "<string>:7: transfer.pretrain[0].name: 'q.rs' is not a name of at most 40 letters, digits and underscores "
     "starting with a letter (it names the columns pretrain.<name>.*)"),
    (f"  pretrain:\n    - {ONE}\n    - {{data: {{targets: [qrs_ms]}}, epochs: 1}}\n",
     "<string>:8: transfer.pretrain[1].task: the required key is missing"),
    (f"  pretrain:\n    - {ONE}\n    - {{data: {{targets: [qrs]}}, task: regression, epochs: 1}}\n",
     "<string>:8: transfer.pretrain[1].data.targets: ['qrs'] is not one of 'labels', 'intervals' or a non-empty "
     "list of at most 4 values from 'hr_bpm', 'pr_ms', 'qrs_ms', 'qt_ms'"),
])
def test_pretraining_list_errors(section: str, message: str) -> None:
    with pytest.raises(SpaceError) as error:
        parse_space(BASE + "transfer:\n" + section)
    assert str(error.value) == message


def test_each_pretraining_must_match_the_target_input(entries, tmp_path, monkeypatch) -> None:
    """The data check of ``plan_transfer`` names the pretraining (and its line) whose data does not fit."""
    values, labels = entries
    short = toy_entry(tmp_path, samples=100)
    monkeypatch.setattr("ecgsearch.train.transfer.prepare_data",
                        lambda data, where, progress=None: short if data.params["targets"] == ["qt_ms"] else values)
    spec = parse_space(BASE + f"transfer:\n  pretrain:\n    - {ONE}\n"
                              "    - {data: {targets: [qt_ms]}, task: regression, epochs: 1}\n", source="x.yaml")
    with pytest.raises(UserError) as error:
        plan_transfer(spec, labels)
    assert str(error.value) == ("x.yaml:8: transfer.pretrain[1].data does not match data (100 vs 200 samples per "
                                "record); a pretrained model takes the same input as the target, so give both "
                                "sections the same leads, sampling rate and record length.")


def test_one_regression_target_is_a_data_parameter(tmp_path) -> None:
    """Route (2): ``targets: [qrs_ms]`` pretrains on the QRS duration alone (synthetic and deepfake alike)."""
    from ecgsearch_plugins.datasets.synthetic import SyntheticEcg

    for data in ("{targets: [qrs_ms]}", "{dataset: deepfake, targets: [qrs_ms]}"):
        spec = parse_space(BASE + f"transfer: {{pretrain: {{data: {data}, task: regression, epochs: 1}}}}")
        assert spec.transfer.pretrain[0].data.params["targets"] == ["qrs_ms"] and spec.encoders == 1
    small = {"records": 20, "seconds": 2, "sampling_rate": 50, "workers": 1}
    qrs = SyntheticEcg(**small, targets=["qrs_ms"]).build(None)
    every = SyntheticEcg(**small, targets="intervals").build(None)
    assert qrs.target_names == ["qrs_ms"] and qrs.targets.shape == (20, 1)
    np.testing.assert_array_equal(qrs.targets[:, 0], every.targets[:, every.target_names.index("qrs_ms")])


# --- the trial -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def entries(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    return toy_entry(root, targets="values"), toy_entry(root, targets="labels")


def transfer_context(entries, freeze: int = 1, compare: bool = True, epochs: int = 2, names=("",),
                     pretrain_epochs: int = 2):
    """Pretrain a regression of the sines' frequency and amplitude, fine-tune a classification of them.

    names: ``("",)`` for the single-mapping form; several names pretrain one model each and fuse them."""
    values, labels = entries
    context = toy_context(labels, task="multilabel", epochs=epochs, extra=fusion_section(names, freeze))
    plan = TransferPlan(pretrain=tuple(PretrainPlan(cache_entry=str(values), task="regression", task_params={},
                                                    metric="mae", mode="min", epochs=pretrain_epochs, name=name)
                                       for name in names), compare_scratch=compare)
    return replace(context, transfer=plan)


def fusion_section(names, freeze: int) -> str:
    """The transfer section of ``transfer_context`` (its space file: the run folder's copy, for export)."""
    one = "{{{name}data: {{targets: intervals}}, task: regression, epochs: 2}}"
    entries = [one.format(name=f"name: {name}, " if name else "") for name in names]
    pretrain = entries[0] if names == ("",) else f"[{', '.join(entries)}]"
    return f"transfer: {{pretrain: {pretrain}, freeze_stages: {freeze}}}"


def test_a_transfer_trial_reports_pretrain_scratch_and_fine_tuned_scores(entries) -> None:
    context = transfer_context(entries)
    config = context.space.sample(0, 0)
    reports: list[dict] = []
    last = run_trial(config, context, reports.append)
    assert last["status"] == "ok" and len(reports) == 2
    for key in ("val.macro_auroc", "test.macro_auroc", "scratch.val.macro_auroc", "scratch.test.macro_auroc",
                "pretrain.val.mae", "pretrain.val.mae.freq_hz"):
        assert math.isfinite(last[key]), key
    assert all("scratch.val.macro_auroc" in report for report in reports)  # every report carries them
    # the from-scratch comparison is exactly the trial this configuration gives without transfer
    plain = run_trial(config, replace(context, transfer=None), lambda report: None)
    assert last["scratch.val.macro_auroc"] == plain["val.macro_auroc"]
    assert last["scratch.test.macro_auroc"] == plain["test.macro_auroc"]


@pytest.mark.parametrize("names", [("",), ("freq", "amp")])
def test_the_stem_and_first_stages_stay_frozen_while_fine_tuning(entries, names) -> None:
    """One model, or the fused model of two pretrainings: the stem and first stage of every encoder."""
    context = transfer_context(entries, freeze=1, compare=False, names=names, pretrain_epochs=1)
    config = context.space.sample(0, 0)
    done = start_transfer(config, context, seed=0)
    model, columns = done.model, done.columns
    prefixes = ["pretrain."] if names == ("",) else [f"pretrain.{name}." for name in names]
    assert all(f"{prefix}val.mae" in columns for prefix in prefixes)
    assert not any(k.startswith("scratch.") for k in columns)
    with torch.no_grad():
        assert model(torch.zeros(2, 2, 200)).shape == (2, 2)  # re-headed for the 2 labels
    if len(names) > 1:  # one encoder per pretraining, each frozen alike
        assert len(model.stem.branches) == len(model.stages[0].branches) == len(model.head.pools) == len(names)
    frozen = [*model.stem.parameters(), *model.stages[0].parameters()]
    trainable = [*model.stages[1].parameters(), *model.head.parameters()]
    assert not any(p.requires_grad for p in frozen) and all(p.requires_grad for p in trainable)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    setup = build_trial(config, context, model=model)
    assert sum(len(g["params"]) for g in setup.optimizer.param_groups) == len([p for p in model.parameters()
                                                                               if p.requires_grad])
    from ecgsearch.train.loop import train_epoch

    train_epoch(setup, torch.Generator().manual_seed(0))
    after = model.state_dict()
    for name, value in state.items():  # weights and BatchNorm statistics of the frozen part are unchanged
        if name.startswith(("stem.", "stages.0.")):
            assert torch.equal(after[name], value), name
    assert any(not torch.equal(after[n], v) for n, v in state.items() if n.startswith("stages.1."))


def test_freezing_more_stages_than_the_model_has_is_refused_before_training(entries) -> None:
    context = transfer_context(entries, freeze=7)
    with pytest.raises(UserError, match="transfer.freeze_stages: 7 is more than the 3 stages of architecture "
                                        "'resnet' in this trial; freeze at most 3"):
        start_transfer(context.space.sample(0, 0), context, seed=0)


def test_pretraining_data_must_match_the_target_input(tmp_path) -> None:
    short = open_dataset(toy_entry(tmp_path, samples=100, leads=1))
    target = open_dataset(toy_entry(tmp_path))
    with pytest.raises(UserError, match=r"x.yaml: transfer.pretrain.data does not match data \(leads \['I'\] vs "
                                        r"\['I', 'II'\]; 100 vs 200 samples per record\); a pretrained model takes "
                                        "the same input as the target"):
        check_matching_data(short, target, "x.yaml")


# --- the fused model of several pretrainings -----------------------------------------------------

FUSED = ("freq", "amp")


@pytest.fixture(scope="module")
def fused_run(entries, tmp_path_factory):
    """One fused trial (two pretrainings) trained into a run folder, as ``ecgsearch run`` leaves it."""
    import pandas as pd

    from ecgsearch.results.folder import SPACE_COPY

    run = tmp_path_factory.mktemp("fused_run")
    context = replace(transfer_context(entries, compare=False, epochs=1, names=FUSED, pretrain_epochs=1),
                      out_dir=str(run))
    config = {**context.space.sample(0, 0), "_trial_id": "t0000"}
    reports: list[dict] = []
    last = run_trial(config, context, reports.append)
    (run / SPACE_COPY).write_text(SPACE.format(task="multilabel", epochs=1, targets="labels",
                                               extra=fusion_section(FUSED, 1)))
    pd.DataFrame([{"trial_id": "t0000", "status": last["status"], "val.macro_auroc": last["val.macro_auroc"]}]
                 ).to_parquet(run / "results.parquet")
    return run, context, config, last


def test_a_fused_trial_reports_every_pretraining_and_the_fine_tuned_scores(fused_run) -> None:
    _, context, config, last = fused_run
    assert last["status"] == "ok", last.get("error")
    for key in ("val.macro_auroc", "test.macro_auroc", "pretrain.freq.val.mae", "pretrain.freq.val.mae.freq_hz",
                "pretrain.amp.val.mae", "pretrain.amp.val.mae.amplitude", "pretrain.freq.train_seconds",
                "pretrain.amp.train_seconds"):
        assert math.isfinite(last[key]), key
    assert not any(key.startswith("pretrain.val.") for key in last)  # named pretrainings only
    single = build_trial(config, replace(context, transfer=None)).model  # the plain model of the configuration
    assert last["cost.feature_width"] == 2 * single.head.in_features and last["cost.stages"] == len(single.stages)


def test_the_fused_checkpoint_is_rebuilt_for_predict_and_export(fused_run, entries, tmp_path, monkeypatch) -> None:
    """``ecgsearch predict`` and ``export`` get the model from ``trained_model``: the fused structure, the
    trained weights; the ONNX file gives the same outputs."""
    pytest.importorskip("onnxruntime")
    from ecgsearch.deploy import export as export_module
    from ecgsearch.deploy.model import trained_model
    from ecgsearch.results import open_run

    run, _, _, _ = fused_run
    _, labels = entries
    monkeypatch.setattr(export_module, "prepare_data", lambda data, where, progress=None: labels)
    trained = trained_model(open_run(run, "predict"), "t0000", open_dataset(labels))
    assert trained.ref.encoders == 2 and len(trained.model.stem.branches) == 2 and trained.targets == ["fast", "tall"]
    saved = torch.load(run / "trials" / "t0000" / "best.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(trained.model.state_dict()[k], v) for k, v in saved.items())
    exported = export_module.export_trial(run, "t0000", "onnx", tmp_path / "onnx")
    assert exported.max_abs_diff < 1e-4, exported.max_abs_diff


@pytest.mark.parametrize("architecture, params", [
    ("resnet", {"depth": 8, "channels": 8, "kernel": 7}),
    ("inception", {"filters": 8, "depth": 6, "kernel": 19, "bottleneck": 8}),
    ("transformer", {"width": 16, "depth": 2, "heads": 2, "patch": 10}),
])
def test_the_costs_of_a_fused_candidate_are_those_of_the_fused_model(architecture, params) -> None:
    """``cost.*`` of a fused trial (counted by the driver, analytically) equal the torch counter on the model."""
    from ecgsearch.plugins import get_registries
    from ecgsearch.search.candidates import InputShape, candidate_costs
    from ecgsearch.train.costs import model_costs
    from ecgsearch.train.fusion import make_model

    spec = parse_space(BASE.replace("architecture: resnet", f"architecture: {{{architecture}: {params}}}") +
                       f"transfer:\n  pretrain:\n    - {ONE}\n    - {ONE.replace('qrs_ms', 'qt_ms')}\n"
                       f"    - {ONE.replace('qrs_ms', 'hr_bpm')}\n")
    shape = InputShape(leads=2, samples=200, outputs=5, sampling_rate=100.0, encoders=spec.encoders)
    config = spec.space.sample(0, 0)
    model = make_model(get_registries().architectures.get(architecture).create, 3, 2, 200, 5, **params)
    assert candidate_costs(config, spec.space, shape) == model_costs(model, 2, 200, 100.0)
    single = model_costs(get_registries().architectures.get(architecture).create(2, 200, 5, **params), 2, 200, 100.0)
    assert model_costs(model, 2, 200).feature_width == 3 * single.feature_width


# --- a real search -------------------------------------------------------------------------------


FUSED_PRETRAIN = [{"name": name, "data": {"targets": [target]}, "task": {"name": "regression", "loss": "l1"},
                   "epochs": 2} for name, target in (("qrs", "qrs_ms"), ("qt", "qt_ms"))]


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("name, pretrain, columns", [
    ("inception_transfer", {"transfer.pretrain.data": {"targets": "intervals"}, "transfer.pretrain.epochs": 2},
     ["pretrain.val.mae.hr_bpm"]),
    ("inception_fusion", {"transfer.pretrain": FUSED_PRETRAIN},
     ["pretrain.qrs.val.mae.qrs_ms", "pretrain.qt.val.mae.qt_ms"]),
])
def test_the_transfer_space_puts_fine_tuned_and_scratch_scores_side_by_side(ray_session, tmp_path, name, pretrain,
                                                                            columns) -> None:
    """spaces/inception_transfer.yaml (one pretraining) and inception_fusion.yaml (two, fused) at a reduced
    size: synthetic intervals -> synthetic labels."""
    from ecgsearch.engine import run_search

    spec = reduced_space(
        name, tmp_path, data={**SEARCH_DATA, "records": 160}, budget={"trials": 1, "epochs": 2},
        resources={"cpu": 1, "gpu": 0}, **pretrain,
        **{"space.architecture": {"inception": {"filters": 8, "depth": 6, "kernel": 19, "bottleneck": 8}},
           "space.optimizer": {"adamw": {"lr": 0.01, "weight_decay": 0.01}},
           "space.data_fraction": 1.0, "space.batch_size": 16})
    frame = run_search(spec, tmp_path / "out").results
    assert list(frame["status"]) == ["ok"], frame.get("error")
    row = frame.iloc[0]
    side_by_side = ["val.macro_auroc", "scratch.val.macro_auroc", "test.macro_auroc", "scratch.test.macro_auroc"]
    print(row[side_by_side + columns + ["hp.freeze_stages", "hp.data_fraction", "cost.params"]].to_dict())
    for key in side_by_side + columns:
        assert np.isfinite(row[key]), key
    assert row["hp.freeze_stages"] in (0, 1, 2) and row["schedule"] == "cosine"
    assert row["cost.stages"] == 2 and row["cost.feature_width"] == 32 * spec.encoders  # 4 branches x 8 filters each
