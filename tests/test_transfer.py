"""Transfer learning: the space file's section, the pretrain / re-head / freeze / fine-tune trial, and a
real reduced-size transfer search whose results table holds fine-tuned and from-scratch scores."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from toy_ecg import SEARCH_DATA, reduced_space, toy_context, toy_entry

from ecgsearch.data.cache import open_dataset
from ecgsearch.errors import SpaceError, UserError
from ecgsearch.space import parse_space
from ecgsearch.train.setup import build_trial
from ecgsearch.train.transfer import TransferPlan, check_matching_data, start_transfer
from ecgsearch.train.trial import run_trial

pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py

BASE = "data: {dataset: synthetic, records: 60}\ntask: multilabel\nbudget: {trials: 1, epochs: 2}\n" \
       "space: {architecture: resnet, optimizer: adamw}\n"


# --- the space file ------------------------------------------------------------------------------


def test_the_transfer_section_parses_and_adds_freeze_stages() -> None:
    spec = parse_space(BASE + "transfer:\n  pretrain: {data: {targets: intervals}, task: {name: regression, loss: mse},"
                              " epochs: 3}\n  freeze_stages: {choice: [0, 1, 2]}\n  compare_scratch: true\n")
    pretrain = spec.transfer.pretrain
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


# --- the trial -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def entries(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    return toy_entry(root, targets="values"), toy_entry(root, targets="labels")


def transfer_context(entries, freeze: int = 1, compare: bool = True, epochs: int = 2):
    """Pretrain a regression of the sines' frequency and amplitude, fine-tune a classification of them."""
    values, labels = entries
    context = toy_context(labels, task="multilabel", epochs=epochs,
                          extra=f"transfer: {{pretrain: {{data: {{targets: intervals}}, task: regression, epochs: 2}}, "
                                f"freeze_stages: {freeze}}}")
    plan = TransferPlan(cache_entry=str(values), task="regression", task_params={}, metric="mae", mode="min",
                        epochs=2, compare_scratch=compare)
    return replace(context, transfer=plan)


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


def test_the_stem_and_first_stages_stay_frozen_while_fine_tuning(entries) -> None:
    context = transfer_context(entries, freeze=1, compare=False)
    config = context.space.sample(0, 0)
    model, columns = start_transfer(config, context, seed=0)
    assert "pretrain.val.mae" in columns and not any(k.startswith("scratch.") for k in columns)
    with torch.no_grad():
        assert model(torch.zeros(2, 2, 200)).shape == (2, 2)  # re-headed for the 2 labels
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


# --- a real search -------------------------------------------------------------------------------


@pytest.mark.ray
@pytest.mark.slow
def test_the_transfer_space_puts_fine_tuned_and_scratch_scores_side_by_side(ray_session, tmp_path) -> None:
    """spaces/inception_transfer.yaml at a reduced size: synthetic intervals -> synthetic labels."""
    from ecgsearch.engine import run_search

    spec = reduced_space(
        "inception_transfer", tmp_path, data=SEARCH_DATA, budget={"trials": 1, "epochs": 2},
        resources={"cpu": 1, "gpu": 0}, **{"transfer.pretrain.data": {"targets": "intervals"},
                                           "transfer.pretrain.epochs": 2,
                                           "space.architecture": {"inception": {"filters": 8, "depth": 6, "kernel": 19,
                                                                                "bottleneck": 8}},
                                           "space.optimizer": {"adamw": {"lr": 0.01, "weight_decay": 0.01}},
                                           "space.data_fraction": 1.0, "space.batch_size": 16})
    frame = run_search(spec, tmp_path / "out").results
    assert list(frame["status"]) == ["ok"], frame.get("error")
    row = frame.iloc[0]
    side_by_side = ["val.macro_auroc", "scratch.val.macro_auroc", "test.macro_auroc", "scratch.test.macro_auroc"]
    print(row[side_by_side + ["pretrain.val.mae.hr_bpm", "hp.freeze_stages", "hp.data_fraction"]].to_dict())
    for key in side_by_side + ["pretrain.val.mae.hr_bpm"]:
        assert np.isfinite(row[key]), key
    assert row["hp.freeze_stages"] in (0, 1, 2) and row["schedule"] == "cosine"
