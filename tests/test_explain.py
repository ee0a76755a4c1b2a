"""Feature frames, the target's sign, and cross-validated explanations on results of known structure."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ecgsearch.analysis import POOLED, FeatureEncoder, config_frame, encode, explain, feature_frame, target
from ecgsearch.errors import UserError
from ecgsearch.space import parse_space

SPACE = parse_space("""
data: {dataset: synthetic, records: 60, sampling_rate: 50, seconds: 4, leads: [I, II]}
task: multilabel
budget: {trials: 10, epochs: 1}
space:
  architecture:
    resnet: {depth: {choice: [8, 10]}, channels: {choice: [8, 16, 32]}, kernel: 7}
    convnext: {stages: {randint: [2, 3]}, width: {choice: [8, 16]}, depth: 1}
  optimizer:
    adamw: {lr: {loguniform: [1.0e-4, 1.0e-1]}}
    sgd: {lr: {loguniform: [1.0e-3, 1.0]}, momentum: {choice: [0.0, 0.9]}}
  batch_size: {choice: [16, 32]}
""").space


def truth(config: dict) -> float:
    """A metric driven by the architecture, the channels and the learning rate (optimum 3e-3 / 1e-1)."""
    value = 0.6 + 0.08 * (config["architecture"] == "resnet")
    value += 0.03 * math.log2(config.get("architecture.resnet.channels", 8) / 8)
    lr = config.get("optimizer.adamw.lr") or config["optimizer.sgd.lr"]
    value -= 0.04 * (math.log10(lr) - math.log10(3e-3 if config["optimizer"] == "adamw" else 1e-1)) ** 2
    return value


def results(n: int, seed: int = 0, noise: float = 0.005) -> pd.DataFrame:
    configs = [SPACE.sample(seed, i) for i in range(n)]
    frame = config_frame(configs, SPACE)
    rng = np.random.default_rng(seed)
    frame["val.auc"] = [truth(c) + noise * rng.standard_normal() for c in configs]
    frame["trial_id"] = [f"t{i:04d}" for i in range(n)]
    frame["status"] = "ok"
    frame["epochs"] = 3
    frame["cost.flops"] = frame["hp.architecture.resnet.channels"].fillna(4) * 1e5
    return frame


def test_trials_and_candidates_give_the_same_feature_columns() -> None:
    frame = results(20)
    candidates = config_frame([{**SPACE.sample(9, i), "_costs": {"cost.flops": 1e5}, "_seed": 1} for i in range(5)],
                              SPACE)
    assert list(feature_frame(frame, SPACE).columns) == list(feature_frame(candidates, SPACE).columns)
    columns = list(feature_frame(frame, SPACE).columns)
    assert columns[:2] == ["architecture", "optimizer"] and "hp.optimizer.sgd.momentum" in columns
    assert "hp.architecture.convnext.depth" not in columns  # fixed: no information
    assert columns[-1] == "cost.flops" and "epochs" not in columns
    assert feature_frame(frame, SPACE, fidelity=True).columns[-1] == "epochs"


def test_encoding_one_hot_missing_values_and_unseen_categories() -> None:
    frame = pd.DataFrame({"architecture": ["resnet", "convnext", "resnet"], "hp.depth": [8, np.nan, 10],
                          "hp.kernel": [[3, 3], [5, 5], [3, 3]], "hp.constant": [1.0, 1.0, 1.0]})
    X, names = encode(frame)
    assert names == ["architecture=convnext", "architecture=resnet", "hp.depth", "hp.kernel=[3, 3]",
                     "hp.kernel=[5, 5]"]
    np.testing.assert_array_equal(X[:, :2], [[0, 1], [1, 0], [0, 1]])
    assert X[1, 2] < 8 - 10  # "not applicable" lies far below every real depth
    encoder = FeatureEncoder.fit(frame)
    new = encoder.transform(pd.DataFrame({"architecture": ["regnet"], "hp.kernel": ["[3, 3]"]}))
    np.testing.assert_array_equal(new[0, [0, 1, 3, 4]], [0, 0, 1, 0])  # unseen value: all zeros
    assert encoder.source("hp.kernel=[3, 3]") == "hp.kernel"


def test_target_is_signed_so_that_larger_is_better_and_drops_failed_trials() -> None:
    frame = pd.DataFrame({"val.mae": [2.0, np.nan, 1.0, np.inf]})
    assert target(frame, "mae", "max").tolist() == [2.0, 1.0]
    assert target(frame, "val.mae", "min").tolist() == [-2.0, -1.0]
    assert target(frame, "mae", "min").index.tolist() == [0, 2]


def test_explain_recovers_the_structure_pooled_and_per_optimizer() -> None:
    frame = results(150)
    frame.loc[5, "val.auc"] = np.nan  # a failed trial takes no part
    explanation = explain(frame, "auc", "max")
    cv = explanation.cv.set_index("group")
    assert list(cv.index) == [POOLED, "adamw", "sgd"]
    assert cv.loc[POOLED, "n"] == 149 and cv.loc["adamw", "n"] + cv.loc["sgd", "n"] == 149
    assert cv.loc[POOLED, "pearson_r"] > 0.85 and cv.loc[POOLED, "spearman_rho"] > 0.8
    assert cv.loc[POOLED, "mae"] < frame["val.auc"].std()
    pooled = explanation.importance[explanation.importance["group"] == POOLED].set_index("feature")
    assert pooled["impurity"].sum() == pytest.approx(1.0)
    assert pooled["spearman"]["architecture=resnet"] > 0.4  # resnet does better, by construction
    top = pooled["impurity"].sort_values(ascending=False).index[:4]
    # the architecture's effect may be carried by any feature that tells the architectures apart
    assert any(f.startswith(("architecture", "hp.architecture", "cost.")) for f in top)
    assert {"hp.optimizer.adamw.lr", "hp.optimizer.sgd.lr"} & set(top)
    assert "hp.batch_size" not in top  # no effect by construction
    predictions = explanation.predictions
    assert set(predictions.columns) == {"trial_id", "group", "true", "predicted"}
    assert len(predictions[predictions["group"] == POOLED]) == 149 and "t0005" not in set(predictions["trial_id"])


def test_explain_reports_in_the_metrics_own_units_for_min_metrics() -> None:
    frame = results(60).rename(columns={"val.auc": "val.loss"})
    frame["val.loss"] = 1 - frame["val.loss"]
    explanation = explain(frame, "loss", "min", group_by=None, surrogate="gradient_boosting")
    assert list(explanation.cv["group"]) == [POOLED]
    pooled = explanation.predictions.merge(frame[["trial_id", "val.loss"]], on="trial_id")
    assert len(pooled) == 60 and np.allclose(pooled["true"], pooled["val.loss"])  # the metric as recorded
    assert explanation.cv.loc[0, "pearson_r"] > 0.7  # positive: predictions are not sign-flipped
    assert (pooled["predicted"] > 0).all()


def test_small_groups_are_reported_but_not_cross_validated() -> None:
    frame = results(40)
    frame.loc[frame.index[:36], "optimizer"] = "adamw"
    frame.loc[frame.index[36:], "optimizer"] = "sgd"  # 4 trials < 2 x 3 folds
    cv = explain(frame, "auc", "max").cv.set_index("group")
    assert cv.loc["sgd", "n"] == 4 and math.isnan(cv.loc["sgd", "pearson_r"])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"metric": "f1"}, r"the results have no column 'val.f1' \(metrics recorded: auc\); pick one of those metrics\."),
    ({"mode": "up"}, r"mode 'up' is neither 'max' nor 'min'"),
    ({"folds": 1}, r"folds=1 is not an integer >= 2; cross-validation needs at least 2 folds\."),
    ({"group_by": "family"}, r"group_by='family' is not a column of the results"),
    ({"surrogate": "svm"}, r"surrogate 'svm' is not a registered surrogate"),
    ({"folds": 5}, r"explaining auc needs at least 10 trials with a finite value for 5-fold cross-validation, "
                   r"and the results have 8; run more trials or lower folds\."),
])
def test_bad_requests_are_one_clear_sentence(kwargs: dict, message: str) -> None:
    args = {"metric": "auc", "mode": "max", **kwargs}
    with pytest.raises(UserError, match=message):
        explain(results(8), args.pop("metric"), args.pop("mode"), **args)
