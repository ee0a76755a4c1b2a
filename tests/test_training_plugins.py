"""The built-in optimizers, task, metrics and surrogates, generated from the registries where possible."""

from __future__ import annotations

import inspect
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from ecgsearch.plugins import get_registries

REGS = get_registries()
OPTIMIZERS = list(REGS.optimizers)
SURROGATES = [s for s in REGS.surrogates if s.available()[0]]


# --- optimizers --------------------------------------------------------------------------------


def toy_regression(seed: int = 0) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 5, generator=g)
    y = x @ torch.randn(5, 1, generator=g) + 0.1
    torch.manual_seed(seed)
    return torch.nn.Linear(5, 1), x, y


def train_losses(make_optimizer, steps: int = 40) -> list[float]:
    model, x, y = toy_regression()
    opt = make_optimizer(model.parameters())
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("info", OPTIMIZERS, ids=[o.name for o in OPTIMIZERS])
def test_optimizer_decreases_loss_and_space_matches_factory(info) -> None:
    losses = train_losses(lambda p: info.create(p, lr=0.05))
    assert losses[-1] < 0.5 * losses[0]
    params = inspect.signature(info.load()).parameters
    assert set(info.default_space) <= {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY}


@pytest.mark.parametrize("info", OPTIMIZERS, ids=[o.name for o in OPTIMIZERS])
def test_optimizer_rejects_unknown_hparams(info) -> None:
    with pytest.raises(TypeError, match="learning_rate"):
        info.create(torch.nn.Linear(2, 1).parameters(), learning_rate=0.1)


@pytest.mark.parametrize("momentum, nesterov, expect_nesterov",
                         [(0.0, False, False), (0.9, False, False), (0.9, True, True),
                          (0.0, True, False)])
def test_sgd_momentum_and_nesterov(momentum: float, nesterov: bool, expect_nesterov: bool) -> None:
    info = REGS.optimizers.get("sgd")
    assert info.has_momentum
    make = lambda p: info.create(p, lr=0.05, momentum=momentum, nesterov=nesterov)  # noqa: E731
    group = make(torch.nn.Linear(2, 1).parameters()).param_groups[0]
    assert (group["momentum"], group["nesterov"]) == (momentum, expect_nesterov)
    losses = train_losses(make)
    assert losses[-1] < 0.5 * losses[0]


def test_adamw_maps_hparams() -> None:
    info = REGS.optimizers.get("adamw")
    assert info.decoupled_weight_decay
    opt = info.create(torch.nn.Linear(2, 1).parameters(), lr=3e-4, weight_decay=0.05, beta2=0.98)
    group = opt.param_groups[0]
    assert isinstance(opt, torch.optim.AdamW)
    assert (group["lr"], group["weight_decay"], group["betas"]) == (3e-4, 0.05, (0.9, 0.98))


def test_adam_maps_hparams_and_sgd_is_plain_by_default() -> None:
    params = torch.nn.Linear(2, 1).parameters
    adam = REGS.optimizers.get("adam").create(params(), lr=2e-3, weight_decay=1e-4, beta1=0.8)
    assert type(adam) is torch.optim.Adam
    assert (adam.param_groups[0]["betas"], adam.param_groups[0]["weight_decay"]) == ((0.8, 0.999), 1e-4)
    assert REGS.optimizers.get("sgd").create(params()).param_groups[0]["momentum"] == 0.0


@pytest.mark.parametrize("hparams, expected", [({}, (0.9, False)),
                                              ({"momentum": 0.95, "nesterov": True}, (0.95, True))])
def test_sgd_momentum_defaults_and_nesterov(hparams: dict, expected: tuple) -> None:
    group = REGS.optimizers.get("sgd_momentum").create(torch.nn.Linear(2, 1).parameters(), **hparams).param_groups[0]
    assert (group["momentum"], group["nesterov"]) == expected


def test_sgd_momentum_refuses_zero_momentum() -> None:
    with pytest.raises(ValueError, match=r"sgd_momentum: momentum=0.0 must be a number in \(0, 1\); use optimizer sgd"):
        REGS.optimizers.get("sgd_momentum").create(torch.nn.Linear(2, 1).parameters(), momentum=0.0)


# --- task ----------------------------------------------------------------------------------------


def test_multilabel_task() -> None:
    info = REGS.tasks.get("multilabel")
    assert info.default_metric in REGS.metrics
    task = info.create(3)
    assert (task.kind, task.num_outputs) == ("multilabel", 3)
    outputs = torch.tensor([[-50.0, 0.0, 50.0], [2.0, -1.0, 0.5]], requires_grad=True)
    targets = torch.tensor([[0, 1, 1], [1, 0, 0]], dtype=torch.uint8)
    loss = task.loss(outputs, targets)
    assert loss.ndim == 0 and math.isfinite(loss.item())
    expected = torch.nn.functional.binary_cross_entropy_with_logits(outputs, targets.float())
    assert torch.allclose(loss, expected)
    loss.backward()
    scores = task.scores(outputs)
    assert isinstance(scores, np.ndarray) and scores.shape == (2, 3)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert scores[0, 1] == pytest.approx(0.5)


def test_multilabel_task_rejects_bad_target_count() -> None:
    with pytest.raises(ValueError, match="num_targets=0 must be an integer >= 1"):
        REGS.tasks.get("multilabel").create(0)


# --- metrics -------------------------------------------------------------------------------------

# Class 2 has no positives, so it is skipped. Class 0: both positives outrank both negatives
# (AUROC 1, AP 1). Class 1: positive 0.8 beats both negatives, positive 0.1 beats none (AUROC 2/4);
# ranked 0.8(+) 0.5 0.3 0.1(+): precision 1 then 2/4 at the two positives (AP 0.75).
Y_TRUE = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
Y_SCORE = np.array([[0.9, 0.3, 0.2], [0.2, 0.8, 0.7], [0.6, 0.1, 0.1], [0.4, 0.5, 0.4]])
LABELS = ["AF", "RBBB", "never_seen"]


def metric(name: str):
    info = REGS.metrics.get(name)
    assert info.mode == "max" and "multilabel" in info.tasks
    return info.create()


@pytest.mark.parametrize("name, expected", [("macro_auroc", (1.0 + 0.5) / 2),
                                            ("macro_auprc", (1.0 + 0.75) / 2)])
def test_macro_metrics_by_hand(name: str, expected: float) -> None:
    assert metric(name)(Y_TRUE, Y_SCORE, LABELS) == pytest.approx(expected)


# AUROC needs positives and negatives (class 3, all positive, is left out); average precision counts every
# class with positives (an all-positive class has AP 1.0, as scikit-learn computes it), docs/metrics.md
@pytest.mark.parametrize("name, per_class, classes", [("macro_auroc", roc_auc_score, 3),
                                                      ("macro_auprc", average_precision_score, 4)])
def test_macro_metrics_match_sklearn_per_class(name: str, per_class, classes: int) -> None:
    rng = np.random.default_rng(0)
    y_true = (rng.random((200, 4)) < [0.1, 0.3, 0.5, 1.0]).astype(np.float32)  # class 3: all positive
    y_score = np.clip(y_true * 0.3 + rng.random((200, 4)), 0, 1)
    expected = np.mean([per_class(y_true[:, k], y_score[:, k]) for k in range(classes)])
    assert metric(name)(y_true, y_score, list("abcd")) == pytest.approx(expected)


@pytest.mark.parametrize("name, y_true", [("macro_auroc", [[1, 0], [1, 0], [1, 0]]),  # no class has both
                                          ("macro_auprc", [[0, 0], [0, 0], [0, 0]])])  # no class has positives
def test_macro_metrics_nan_without_a_usable_class(name: str, y_true) -> None:
    assert math.isnan(metric(name)(np.array(y_true), np.full((3, 2), 0.5), ["a", "b"]))


def test_macro_metric_shape_errors() -> None:
    fn = metric("macro_auroc")
    with pytest.raises(ValueError, match="same"):
        fn(Y_TRUE, Y_SCORE[:, :2], LABELS)
    with pytest.raises(ValueError, match="2 label names for 3 classes"):
        fn(Y_TRUE, Y_SCORE, LABELS[:2])


# --- surrogates ----------------------------------------------------------------------------------


def toy_hparams(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 3))
    return X, X[:, 0] ** 2 + X[:, 1] + 0.05 * rng.standard_normal(n)


@pytest.mark.parametrize("info", SURROGATES, ids=[s.name for s in SURROGATES])
def test_surrogate_fits_and_is_seeded(info) -> None:
    X, y = toy_hparams(150, seed=0)
    X_new, y_new = toy_hparams(50, seed=1)
    first = info.create(7).fit(X, y).predict(X_new)
    again = info.create(7).fit(X, y).predict(X_new)
    assert first.shape == (50,)
    assert np.corrcoef(first, y_new)[0, 1] > 0.8
    np.testing.assert_allclose(first, again)


def test_random_forest_predictive_std() -> None:
    info = REGS.surrogates.get("random_forest")
    assert info.has_uncertainty
    X, y = toy_hparams(100, seed=0)
    model = info.create(0, n_estimators=50).fit(X, y)
    mean, std = model.predict_mean_std(X[:10])
    np.testing.assert_allclose(mean, model.predict(X[:10]), rtol=1e-6)
    np.testing.assert_allclose(std, model.predict_std(X[:10]))
    assert std.shape == (10,) and (std >= 0).all() and std.max() > 0
    with pytest.raises(TypeError, match="n_trees"):
        info.create(0, n_trees=10)


def test_xgboost_is_declared_lazily() -> None:
    info = REGS.surrogates.get("xgboost")
    assert isinstance(info.factory, str) and info.requires == ("xgboost",)
    assert info.install_hint == "pip install xgboost"
    code = "import sys, ecgsearch_plugins.surrogates; assert 'xgboost' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
