"""Pareto fronts: the non-dominated rows against a brute-force definition, groups, ties, NaNs, hypervolume."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecgsearch.analysis.pareto import hypervolume, non_dominated, pareto_front
from ecgsearch.errors import UserError


def brute_force(costs: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The definition: no other point is at least as cheap and as good, and strictly better on one."""
    n = len(costs)
    return np.array([not any(costs[j] <= costs[i] and scores[j] >= scores[i]
                             and (costs[j] < costs[i] or scores[j] > scores[i]) for j in range(n))
                     for i in range(n)], dtype=bool)


@pytest.mark.parametrize("seed", range(8))
def test_non_dominated_matches_the_definition_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    costs = rng.integers(0, 8, n).astype(float)  # few distinct values: many ties on both axes
    scores = rng.integers(0, 6, n).astype(float)
    assert (non_dominated(costs, scores) == brute_force(costs, scores)).all()


def test_exact_duplicates_both_stay_and_a_cheaper_equal_score_dominates():
    mask = non_dominated(np.array([1.0, 1.0, 2.0, 0.5]), np.array([0.7, 0.7, 0.7, 0.2]))
    assert mask.tolist() == [True, True, False, True]


def results(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "trial_id": [f"t{i:04d}" for i in range(n)],
        "optimizer": rng.choice(["adamw", "sgd"], n),
        "cost.flops": 10 ** rng.uniform(5, 8, n),
        "val.macro_auroc": rng.uniform(0.5, 0.9, n),
        "val.loss": rng.uniform(0.1, 1.0, n),
    })
    frame.loc[3, "val.macro_auroc"] = np.nan  # a failed trial
    frame.loc[5, "cost.flops"] = np.nan  # a trial whose costs were not recorded
    return frame


def test_pareto_front_per_group_is_sorted_and_drops_missing_values():
    frame = results()
    front = pareto_front(frame, "macro_auroc", "max", group_by="optimizer")
    assert set(front["group"]) == {"adamw", "sgd"} and 3 not in front.index and 5 not in front.index
    for name, rows in front.groupby("group"):
        assert rows["cost.flops"].is_monotonic_increasing
        assert rows["val.macro_auroc"].is_monotonic_increasing  # each step up costs more
        usable = frame[(frame["optimizer"] == name) & frame["val.macro_auroc"].notna() & frame["cost.flops"].notna()]
        expected = usable[brute_force(usable["cost.flops"].to_numpy(), usable["val.macro_auroc"].to_numpy())]
        assert set(rows.index) == set(expected.index)
    pooled = pareto_front(frame, "val.macro_auroc", "max")
    assert set(pooled["group"]) == {"all"} and len(pooled) <= len(front)


def test_a_min_metric_keeps_the_lowest_values():
    frame = results(seed=1)
    front = pareto_front(frame, "loss", "min")
    usable = frame.dropna(subset=["val.loss", "cost.flops"])
    expected = usable[brute_force(usable["cost.flops"].to_numpy(), -usable["val.loss"].to_numpy())]
    assert set(front.index) == set(expected.index)
    assert front["val.loss"].is_monotonic_decreasing


def test_bad_columns_are_one_sentence():
    frame = results()
    with pytest.raises(UserError, match=r"no column 'cost.latency' to use as a cost \(cost columns: cost.flops\)"):
        pareto_front(frame, "macro_auroc", "max", cost="cost.latency")
    with pytest.raises(UserError, match=r"no column 'val.auprc' \(metrics recorded: loss, macro_auroc\)"):
        pareto_front(frame, "auprc", "max")
    with pytest.raises(UserError, match=r"group_by='arch' is not a column of the results"):
        pareto_front(frame, "macro_auroc", "max", group_by="arch")
    with pytest.raises(UserError, match=r"mode 'best' is neither 'max' nor 'min'"):
        pareto_front(frame, "macro_auroc", "best")


def test_hypervolume_is_the_dominated_area():
    # decades 1 and 2 against a reference at decade 3: strips of width 1 at heights 0.5 and 0.8
    assert hypervolume([10.0, 100.0], [0.5, 0.8], reference=(1000.0, 0.0)) == pytest.approx(0.5 + 0.8)
    # a dominated point and points beyond the reference add nothing
    assert hypervolume([10.0, 100.0, 200.0, 5000.0], [0.5, 0.8, 0.6, 0.99], reference=(1000.0, 0.0)) == \
        pytest.approx(1.3)
    assert hypervolume([10.0], [0.5], reference=(1.0, 0.0)) == 0.0


def test_hypervolume_agrees_with_monte_carlo():
    rng = np.random.default_rng(3)
    costs, scores = rng.uniform(0, 1, 15), rng.uniform(0, 1, 15)
    samples = rng.uniform(0, 1, (200_000, 2))
    dominated = ((costs[None, :] <= samples[:, :1]) & (scores[None, :] >= samples[:, 1:])).any(axis=1)
    assert hypervolume(costs, scores, reference=(1.0, 0.0), log_cost=False) == pytest.approx(dominated.mean(),
                                                                                             abs=0.01)
