"""Task plugins (losses, scores, target checks) and the regression/multiclass metrics, checked by hand."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from ecgsearch.infos import LOSS_METRIC
from ecgsearch.plugins import get_registries
from ecgsearch.train.context import TrialContext
from ecgsearch.train.scoring import Scorer
from ecgsearch.train.tasks import fit_task

REGS = get_registries()


def task(name: str, num_targets: int, **params):
    return REGS.tasks.get(name).create(num_targets, **params)


def metric(name: str):
    return REGS.metrics.get(name).create()


def test_every_task_names_a_default_metric_that_applies_to_it() -> None:
    assert {"multilabel", "multiclass", "regression", "probabilistic"} <= set(REGS.tasks.names())
    for info in REGS.tasks:
        if info.self_supervised:  # its only metric: its own loss
            assert info.default_metric == LOSS_METRIC
        else:
            assert info.name in REGS.metrics.get(info.default_metric).tasks


# --- multilabel ----------------------------------------------------------------------------------


def test_asymmetric_loss_without_focusing_or_clipping_is_bce() -> None:
    logits = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    targets = (torch.rand(6, 3, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    asl = task("multilabel", 3, loss="asymmetric", gamma_neg=0, gamma_pos=0, clip=0)
    assert torch.allclose(asl.loss(logits, targets), F.binary_cross_entropy_with_logits(logits, targets))


def test_asymmetric_loss_by_hand() -> None:
    """One positive (p = 0.8) and one negative (p = 0.3): gamma_neg 2, gamma_pos 1, clip 0.1."""
    logits = torch.logit(torch.tensor([[0.8, 0.3]]))
    loss = task("multilabel", 2, loss="asymmetric", gamma_neg=2, gamma_pos=1, clip=0.1).loss(
        logits, torch.tensor([[1.0, 0.0]]))
    positive = (1 - 0.8) ** 1 * math.log(0.8)
    negative = 0.2 ** 2 * math.log(1 - 0.2)  # shifted probability 0.3 - 0.1
    assert loss.item() == pytest.approx(-(positive + negative) / 2, rel=1e-5)


def test_asymmetric_loss_ignores_easy_negatives_and_trains() -> None:
    asl = task("multilabel", 1, loss="asymmetric", clip=0.05)
    easy = torch.logit(torch.tensor([[0.04]])).requires_grad_()
    asl.loss(easy, torch.zeros(1, 1)).backward()
    assert easy.grad.item() == 0.0  # p < clip: no loss, no gradient
    hard = torch.logit(torch.tensor([[0.7]])).requires_grad_()
    asl.loss(hard, torch.zeros(1, 1)).backward()
    assert hard.grad.item() > 0  # pushes the false positive down


def test_multilabel_rejects_an_unknown_loss() -> None:
    with pytest.raises(ValueError, match="task multilabel: loss='focal' must be one of bce, asymmetric"):
        task("multilabel", 2, loss="focal")


# --- multiclass ----------------------------------------------------------------------------------


def test_multiclass_one_hot_and_index_targets_give_the_same_loss() -> None:
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    one_hot = task("multiclass", 3)
    index = task("multiclass", 1, classes=3)
    assert (one_hot.num_outputs, index.num_outputs) == (3, 3)
    expected = F.cross_entropy(logits, torch.tensor([0, 2]))
    assert torch.allclose(one_hot.loss(logits, torch.tensor([[1.0, 0, 0], [0, 0, 1.0]])), expected)
    assert torch.allclose(index.loss(logits, torch.tensor([[0.0], [2.0]])), expected)
    scores = one_hot.scores(logits)
    assert scores.shape == (2, 3) and np.allclose(scores.sum(axis=1), 1)


@pytest.mark.parametrize("num_targets, params, targets, message", [
    (3, {}, [[1, 0, 0], [1, 1, 0]], "1 of 2 training records do not have exactly one positive column"),
    (1, {"classes": 3}, [[0], [3]], r"do not have a class index in 0..2 \(first: row 1\)"),
])
def test_multiclass_refuses_targets_that_are_not_one_class(num_targets, params, targets, message) -> None:
    with pytest.raises(ValueError, match=message):
        fit_task(task("multiclass", num_targets, **params), np.array(targets, dtype=np.float32), ["a"] * num_targets)


def test_multiclass_index_targets_need_classes() -> None:
    with pytest.raises(ValueError, match="needs classes: the number of classes"):
        task("multiclass", 1)


def test_multiclass_metrics_by_hand() -> None:
    scores = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1], [0.2, 0.5, 0.3]])
    index = np.array([[0], [2], [1], [1]])
    one_hot = np.eye(3)[index[:, 0]]
    assert metric("top1_accuracy")(index, scores, ["class"]) == pytest.approx(0.75)
    assert metric("top1_accuracy")(one_hot, scores, ["a", "b", "c"]) == pytest.approx(0.75)
    # one-vs-rest AUROC: class 0 ranks its record first (1.0); class 1: positives 0.4, 0.5 vs 0.2, 0.3 (1.0);
    # class 2: positive 0.6 vs 0.1, 0.1, 0.3 (1.0)
    assert metric("macro_auroc")(index, scores, ["class"]) == pytest.approx(1.0)


# --- regression ----------------------------------------------------------------------------------

HR_QT = np.array([[60.0, 380.0], [80.0, 400.0], [100.0, 420.0], [np.nan, 440.0]], dtype=np.float32)


def test_regression_standardises_per_target_and_scores_in_original_units() -> None:
    reg = task("regression", 2)
    reg.fit(HR_QT)
    assert reg.mean.tolist() == pytest.approx([80.0, 410.0])  # the NaN HR is skipped
    assert reg.std.tolist() == pytest.approx([math.sqrt(800 / 3), math.sqrt(500)])
    zeros = torch.zeros(3, 2)
    assert np.allclose(reg.scores(zeros), [[80.0, 410.0]] * 3)  # an all-zero head predicts the means
    assert reg.state() == {"mean": reg.mean.tolist(), "std": reg.std.tolist()}


@pytest.mark.parametrize("loss, power", [("l1", 1), ("mse", 2)])
def test_regression_loss_is_in_standard_units_and_skips_nan(loss: str, power: int) -> None:
    reg = task("regression", 2, loss=loss)
    reg.fit(HR_QT)
    targets = torch.from_numpy(HR_QT)
    outputs = torch.ones(4, 2, requires_grad=True)
    value = reg.loss(outputs, targets)
    z = (HR_QT - reg.mean.numpy()) / reg.std.numpy()
    known = np.isfinite(z)
    assert value.item() == pytest.approx(float(np.mean(np.abs(1 - z[known]) ** power)), rel=1e-5)
    value.backward()
    assert torch.isfinite(outputs.grad).all() and outputs.grad[3, 0] == 0  # no gradient from the NaN target


def test_regression_without_standardisation_trains_on_raw_values() -> None:
    reg = task("regression", 2, standardize=False)
    reg.fit(HR_QT)
    assert reg.scores(torch.tensor([[70.0, 390.0]])).tolist() == [[70.0, 390.0]]


def test_probabilistic_nll_and_scores() -> None:
    prob = task("probabilistic", 2)
    assert prob.num_outputs == 4
    prob.fit(HR_QT)
    outputs = torch.tensor([[0.5, -0.2, math.log(0.25), 0.0]])  # means then log-variances (standard units)
    target = torch.tensor([[80.0 + 1.0 * prob.std[0].item(), 410.0]])  # z = (1, 0)
    expected = 0.5 * ((math.log(0.25) + (1 - 0.5) ** 2 / 0.25) + (0.0 + 0.2 ** 2 / 1.0)) / 2
    assert prob.loss(outputs, target).item() == pytest.approx(expected, rel=1e-5)
    scores = prob.scores(outputs)
    std = prob.std.numpy()
    assert scores.shape == (1, 4)
    assert scores[0, :2] == pytest.approx([80.0 + 0.5 * std[0], 410.0 - 0.2 * std[1]], rel=1e-5)
    assert scores[0, 2:] == pytest.approx([0.25 * std[0] ** 2, 1.0 * std[1] ** 2], rel=1e-5)  # variances


def test_regression_ece_by_hand() -> None:
    """Targets at 0.5 sd from the mean: inside every central interval wider than +-0.5 sd (38.3%)."""
    y_true = np.full((10, 1), 0.5)
    scores = np.concatenate([np.zeros((10, 1)), np.ones((10, 1))], axis=1)
    inside = [p for p in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9) if NormalDist().inv_cdf(0.5 + p / 2) >= 0.5]
    expected = np.mean([abs((1.0 if p in inside else 0.0) - p) for p in np.round(np.arange(1, 10) / 10, 1)])
    assert metric("regression_ece")(y_true, scores, ["x"]) == pytest.approx(expected)
    rng = np.random.default_rng(0)
    calibrated = rng.standard_normal((4000, 1))
    assert metric("regression_ece")(calibrated, scores[:1].repeat(4000, axis=0), ["x"]) < 0.02


def test_mae_reads_the_means_of_a_probabilistic_task() -> None:
    y_true = np.array([[60.0, 400.0], [90.0, 420.0]])
    scores = np.array([[62.0, 390.0, 4.0, 9.0], [87.0, 425.0, 4.0, 9.0]])
    assert metric("mae")(y_true, scores, ["hr_bpm", "qt_ms"]) == pytest.approx((2 + 10 + 3 + 5) / 4)


@pytest.mark.parametrize("kind, scores", [
    ("regression", np.array([[62.0, 390.0], [87.0, 425.0]])),
    ("probabilistic", np.array([[62.0, 390.0, 4.0, 9.0], [87.0, 425.0, 4.0, 9.0]])),
])
def test_scorer_reports_mae_per_target_in_its_units(kind: str, scores: np.ndarray) -> None:
    context = TrialContext(cache_entry="", out_dir="", epochs=1, metric="mae", mode="min", task=kind,
                           task_params={}, seed=0, space=None)
    out = Scorer(context, kind, ["hr_bpm", "qt_ms"]).score("val", np.array([[60.0, 400.0], [90.0, 420.0]]), scores)
    assert out["val.mae.hr_bpm"] == pytest.approx(2.5) and out["val.mae.qt_ms"] == pytest.approx(7.5)
    assert out["val.mae"] == pytest.approx(5.0)
    assert ("val.gaussian_nll" in out) == (kind == "probabilistic")
    assert ("val.regression_ece.hr_bpm" in out) == (kind == "probabilistic")


def test_a_regression_checkpoint_keeps_the_target_scaling(tmp_path) -> None:
    """Predictions in bpm/ms need the training split's mean and spread: they are saved with the weights."""
    from dataclasses import replace

    from toy_ecg import toy_context, toy_entry

    from ecgsearch.data.cache import open_dataset
    from ecgsearch.results.folder import checkpoint_path
    from ecgsearch.train.trial import run_trial

    torch.set_num_threads(1)
    entry = toy_entry(tmp_path / "data")
    context = replace(toy_context(entry, epochs=1), out_dir=str(tmp_path / "run"))
    run_trial({**context.space.sample(0, 0), "_trial_id": "t0000"}, context, lambda report: None)
    saved = torch.load(checkpoint_path(tmp_path / "run", "t0000"), weights_only=True)["task_state"]
    data = open_dataset(entry)
    train = np.asarray(data.targets[data.indices("train")], dtype=np.float64)
    assert saved["mean"] == pytest.approx(train.mean(axis=0).tolist(), rel=1e-5)
    assert saved["std"] == pytest.approx(train.std(axis=0).tolist(), rel=1e-5)
    # and it comes back: a fresh task scores outputs in the training units (predict, export's model card)
    from ecgsearch.train.tasks import restore_task

    fresh = get_registries().tasks.get("regression").create(2)
    restore_task(fresh, saved)
    outputs = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    expected = np.array([saved["mean"], [m + s for m, s in zip(saved["mean"], [saved["std"][0], -saved["std"][1]])]])
    assert fresh.scores(outputs) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="task regression: a state of 2 targets does not fit 3."):
        restore_task(get_registries().tasks.get("regression").create(3), saved)
