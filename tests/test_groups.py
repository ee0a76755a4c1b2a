"""Per-origin scores: a dataset that names each record's origin (PhysioNet 2021's source databases) gets
every validation and test metric per origin too (``test.source.<source>.<metric>``), as the
leave-one-source-out studies report."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecgsearch.data import EcgArrays
from ecgsearch.data.cache import open_dataset, prepare_dataset
from ecgsearch.train import scoring
from ecgsearch.train.context import TrialContext
from ecgsearch.train.scoring import Scorer, score_by_group, score_test
from ecgsearch.train.setup import TrialSetup
from ecgsearch_plugins.tasks import build_multilabel

GROUPS = np.array(["CPSC", "Georgia", "PTB-XL"] * 20)


def _arrays(groups: np.ndarray | None = GROUPS) -> EcgArrays:
    rng = np.random.default_rng(0)
    n = len(GROUPS)
    targets = (rng.random((n, 2)) > 0.5).astype(np.float32)
    # the signal carries the labels with group-dependent noise, so the groups score differently
    noise = np.where(GROUPS == "CPSC", 0.1, np.where(GROUPS == "Georgia", 1.0, 3.0))[:, None, None]
    signals = (targets[:, :, None] + noise * rng.normal(size=(n, 2, 8))).astype(np.float32)
    split = np.array(["train", "val", "test", "test"] * (n // 4))
    return EcgArrays(signals=signals, targets=targets, target_names=["a", "b"], split=split, sampling_rate=8.0,
                     leads=["I", "II"], record_ids=np.array([f"R{i}" for i in range(n)]), groups=groups)


class MeanPerLead(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=-1)


def _setup(data: EcgArrays) -> TrialSetup:
    model = MeanPerLead()
    return TrialSetup(data=data, model=model, optimizer=torch.optim.SGD([torch.zeros(1)], lr=0.1),
                      task=build_multilabel(2), batch_size=8, train_x=torch.zeros(0), train_y=torch.zeros(0),
                      architecture="x", optimizer_name="sgd", samples=8)


def _scorer() -> Scorer:
    context = TrialContext(cache_entry="", out_dir="", epochs=1, metric="macro_auroc", mode="max",
                           task="multilabel", task_params={}, seed=0, space=None, metrics=("macro_auroc",))
    return Scorer(context, "multilabel", ["a", "b"])


def test_test_metrics_are_also_reported_per_group(monkeypatch):
    monkeypatch.setattr(scoring, "EVAL_BATCH", 7)  # uneven batches: the loss is a mean over records all the same
    data = _arrays()
    scores = score_test(_setup(data), _scorer())
    assert set(scores) == {"test.macro_auroc", "test.source.CPSC.macro_auroc", "test.source.Georgia.macro_auroc",
                           "test.source.PTB-XL.macro_auroc", "test.loss", "test.auroc.a", "test.auroc.b"}
    assert not any("@" in key for key in scores)  # the former name, test.macro_auroc@CPSC, is gone
    test = data.indices("test")
    p = 1 / (1 + np.exp(-data.signals[test].astype(np.float64).mean(-1)))
    y = data.targets[test]
    assert scores["test.loss"] == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), rel=1e-5)
    test = data.indices("test")
    for group in ("CPSC", "Georgia", "PTB-XL"):  # each equals the metric computed on that group alone
        idx = test[GROUPS[test] == group]
        y_score = torch.sigmoid(torch.from_numpy(data.signals[idx]).mean(-1)).numpy()
        expected = _scorer().score("test", data.targets[idx], y_score)["test.macro_auroc"]
        assert scores[f"test.source.{group}.macro_auroc"] == pytest.approx(expected)
    assert scores["test.source.CPSC.macro_auroc"] > scores["test.source.PTB-XL.macro_auroc"]  # less noise, better


def test_validation_is_scored_per_origin_too():
    data = _arrays()
    val = data.indices("val")
    y_score = torch.sigmoid(torch.from_numpy(data.signals[val]).mean(-1)).numpy()
    scores = score_by_group(_scorer(), data, "val", data.targets[val], y_score)
    assert {k for k in scores if ".source." in k} == {f"val.source.{g}.macro_auroc" for g in ("CPSC", "Georgia",
                                                                                              "PTB-XL")}


def test_without_groups_only_the_pooled_metrics():
    assert set(score_test(_setup(_arrays(groups=None)), _scorer())) == {"test.macro_auroc", "test.loss",
                                                                         "test.auroc.a", "test.auroc.b"}


class _Source:
    def __init__(self, groups: np.ndarray | None) -> None:
        self.groups = groups

    def fingerprint(self) -> dict:
        return {"with_groups": self.groups is not None}

    def build(self, workdir, progress=None) -> EcgArrays:
        return _arrays(self.groups)


@pytest.mark.parametrize("groups", [GROUPS, None], ids=["groups", "none"])
def test_groups_survive_the_cache(tmp_path, groups):
    data = open_dataset(prepare_dataset("fake", _Source(groups), tmp_path))
    assert (data.groups is None) if groups is None else data.groups.tolist() == groups.tolist()


def test_groups_must_match_the_records():
    with pytest.raises(ValueError, match="groups has 3 rows but signals has 60"):
        _arrays(groups=np.array(["a", "b", "c"]))
