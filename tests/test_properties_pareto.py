"""Property-based tests (Hypothesis) of Pareto fronts and hypervolume against brute-force definitions.

``non_dominated`` and ``pareto_front`` are compared with the definition (no other point is at least as
cheap and at least as good, and strictly better on one), and ``hypervolume`` with the area of the union
of the points' rectangles measured cell by cell on the grid of all their coordinates.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="the property-based tests need Hypothesis (pip install hypothesis)")

import pandas as pd
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ecgsearch.analysis.pareto import hypervolume, non_dominated, pareto_front

PROPERTY = settings(derandomize=True, deadline=None, max_examples=60, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
TABLES = settings(PROPERTY, max_examples=30)  # pandas makes each example of a results table slower


def brute_force_front(costs, scores) -> list[bool]:
    """The definition, pair by pair: cost minimised, score maximised; exact ties dominate neither."""
    n = len(costs)
    return [not any(costs[j] <= costs[i] and scores[j] >= scores[i] and (costs[j] < costs[i] or scores[j] > scores[i])
                    for j in range(n))
            for i in range(n)]


def brute_force_area(costs, scores, ref_cost: float, ref_score: float) -> float:
    """Area of the union of ``[c, ref_cost] x [ref_score, s]`` over the points, cell by cell on the grid
    of every coordinate; points not strictly better than the reference on both axes add nothing."""
    points = [(c, s) for c, s in zip(costs, scores) if c < ref_cost and s > ref_score]
    xs = sorted({c for c, _ in points} | {ref_cost})
    ys = sorted({s for _, s in points} | {ref_score})
    area = 0.0
    for x0, x1 in itertools.pairwise(xs):
        for y0, y1 in itertools.pairwise(ys):
            if any(c <= x0 and s >= y1 for c, s in points):  # the cell lies inside that point's rectangle
                area += (x1 - x0) * (y1 - y0)
    return area


# coordinates: a few integers (many ties on both axes) or any moderate float
def coordinate(low: float, high: float) -> st.SearchStrategy[float]:
    return st.one_of(st.integers(int(low), int(low) + 6).map(float),
                     st.floats(low, high, allow_nan=False, allow_infinity=False))


@st.composite
def points(draw, min_size: int = 0, max_size: int = 30, cost=(0.0, 100.0), score=(-10.0, 10.0)):
    n = draw(st.integers(min_size, max_size))
    costs = draw(st.lists(coordinate(*cost), min_size=n, max_size=n))
    scores = draw(st.lists(coordinate(*score), min_size=n, max_size=n))
    return np.array(costs, dtype=float), np.array(scores, dtype=float)


# ---------------------------------------------------------------- non_dominated


@PROPERTY
@given(points())
def test_non_dominated_is_the_definition(data):
    costs, scores = data
    assert non_dominated(costs, scores).tolist() == brute_force_front(costs, scores)


@PROPERTY
@given(points(min_size=1), st.data())
def test_non_dominated_does_not_depend_on_the_order_of_the_points(data, draw):
    costs, scores = data
    order = np.array(draw.draw(st.permutations(range(len(costs)))), dtype=int)
    assert non_dominated(costs[order], scores[order]).tolist() == non_dominated(costs, scores)[order].tolist()


@PROPERTY
@given(points(min_size=1))
def test_the_front_is_non_empty_mutually_non_dominated_and_dominates_the_rest(data):
    costs, scores = data
    front = non_dominated(costs, scores)
    assert front.any()
    on, off = np.flatnonzero(front), np.flatnonzero(~front)
    for i in on:  # no front point beats another
        assert not any(costs[j] <= costs[i] and scores[j] >= scores[i]
                       and (costs[j], scores[j]) != (costs[i], scores[i])
                       for j in on)
    for i in off:  # every point off the front is beaten by one on it
        assert any(costs[j] <= costs[i] and scores[j] >= scores[i] for j in on)


@PROPERTY
@given(points(min_size=1, cost=(1.0, 1e6)))
def test_the_front_survives_strictly_increasing_rescaling_of_either_axis(data):
    costs, scores = data
    moved_costs, moved_scores = np.log10(costs), np.exp(scores / 10.0)
    # the rescaling must keep distinct values distinct (float rounding may not)
    assume(len(set(moved_costs.tolist())) == len(set(costs.tolist())))
    assume(len(set(moved_scores.tolist())) == len(set(scores.tolist())))
    assert non_dominated(moved_costs, moved_scores).tolist() == non_dominated(costs, scores).tolist()


# ---------------------------------------------------------------- pareto_front on a results table


@st.composite
def results_table(draw):
    """A results table with failed trials (NaN metric), unmeasured costs (NaN, inf) and two or three groups."""
    n = draw(st.integers(0, 25))
    value = st.one_of(coordinate(0.0, 1.0), st.just(float("nan")), st.just(float("inf")))
    flops = st.one_of(coordinate(1.0, 1e9), st.just(float("nan")), st.just(float("-inf")))
    return pd.DataFrame({
        "trial_id": [f"t{i:04d}" for i in range(n)],
        "optimizer": draw(st.lists(st.sampled_from(["adamw", "sgd", "adam"]), min_size=n, max_size=n)),
        "val.macro_auroc": draw(st.lists(value, min_size=n, max_size=n)),
        "val.loss": draw(st.lists(value, min_size=n, max_size=n)),
        "cost.flops": draw(st.lists(flops, min_size=n, max_size=n)),
    }, index=draw(st.lists(st.integers(0, 10_000), min_size=n, max_size=n, unique=True)))


def expected_front(frame: pd.DataFrame, column: str, mode: str, group_by: str | None) -> dict[str, set]:
    """Group -> index labels of the rows on its front, by the definition, over the rows with finite values."""
    usable = frame[np.isfinite(frame[column]) & np.isfinite(frame["cost.flops"])]
    groups = {"all": usable} if group_by is None else {str(k): g for k, g in usable.groupby(group_by)}
    sign = 1.0 if mode == "max" else -1.0
    out = {}
    for name, rows in groups.items():
        mask = brute_force_front(rows["cost.flops"].tolist(), (sign * rows[column]).tolist())
        out[name] = {label for label, on in zip(rows.index, mask) if on}
    return {name: labels for name, labels in out.items() if labels}


@TABLES
@given(results_table(), st.sampled_from([("macro_auroc", "max"), ("val.loss", "min")]),
       st.sampled_from([None, "optimizer"]))
def test_pareto_front_is_the_definition_per_group(frame, metric_mode, group_by):
    metric, mode = metric_mode
    column = metric if metric.startswith("val.") else f"val.{metric}"
    front = pareto_front(frame, metric, mode, cost="cost.flops", group_by=group_by)
    got = {name: set(rows.index) for name, rows in front.groupby("group")} if len(front) else {}
    assert got == expected_front(frame, column, mode, group_by)
    assert set(front.columns) == set(frame.columns) | {"group"}
    for name, rows in (front.groupby("group") if len(front) else []):
        assert rows["cost.flops"].is_monotonic_increasing  # each group sorted by cost
        pd.testing.assert_frame_equal(rows.drop(columns="group"), frame.loc[rows.index])  # rows unchanged


@TABLES
@given(results_table(), st.data())
def test_pareto_front_does_not_depend_on_the_row_order(frame, draw):
    order = draw.draw(st.permutations(range(len(frame))))
    shuffled = frame.iloc[list(order)]
    a = pareto_front(frame, "macro_auroc", "max", group_by="optimizer")
    b = pareto_front(shuffled, "macro_auroc", "max", group_by="optimizer")
    assert sorted(a.index) == sorted(b.index)


# ---------------------------------------------------------------- hypervolume


@st.composite
def reference_and_points(draw, log_cost: bool):
    low = 1.0 if log_cost else -50.0
    costs, scores = draw(points(cost=(low, 1e4) if log_cost else (low, 100.0)))
    ref_cost = draw(coordinate(low if not log_cost else 1.0, 1e4 if log_cost else 100.0))
    ref_score = draw(coordinate(-10.0, 10.0))
    return costs, scores, (ref_cost, ref_score)


@PROPERTY
@given(reference_and_points(log_cost=False))
def test_hypervolume_is_the_area_of_the_union_of_the_rectangles(case):
    costs, scores, reference = case
    expected = brute_force_area(costs.tolist(), scores.tolist(), *reference)
    got = hypervolume(costs, scores, reference, log_cost=False)
    assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-9)


@PROPERTY
@given(reference_and_points(log_cost=True))
def test_hypervolume_with_log_cost_measures_the_cost_axis_in_decades(case):
    costs, scores, reference = case
    ref_cost, ref_score = reference
    expected = brute_force_area(np.log10(costs).tolist(), scores.tolist(), math.log10(ref_cost), ref_score)
    got = hypervolume(costs, scores, reference, log_cost=True)
    assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(got, hypervolume(costs, scores, reference), rel_tol=0, abs_tol=0)  # the default


@PROPERTY
@given(reference_and_points(log_cost=False), st.data())
def test_hypervolume_ignores_order_and_grows_with_every_added_point(case, draw):
    costs, scores, reference = case
    base = hypervolume(costs, scores, reference, log_cost=False)
    assert base >= 0.0
    order = np.array(draw.draw(st.permutations(range(len(costs)))), dtype=int)
    assert math.isclose(hypervolume(costs[order], scores[order], reference, log_cost=False), base,
                        rel_tol=1e-12, abs_tol=1e-12)
    c, s = draw.draw(coordinate(-50.0, 100.0)), draw.draw(coordinate(-10.0, 10.0))
    more = hypervolume(np.append(costs, c), np.append(scores, s), reference, log_cost=False)
    assert more >= base - 1e-9 * max(1.0, base)
    dominated = any(ci <= c and si >= s for ci, si in zip(costs, scores)) or not (c < reference[0] and s > reference[1])
    if dominated:  # a point dominated (or weakly: a duplicate) by one already there adds nothing
        assert math.isclose(more, base, rel_tol=1e-12, abs_tol=1e-12)


@PROPERTY
@given(reference_and_points(log_cost=False))
def test_hypervolume_depends_only_on_the_front(case):
    costs, scores, reference = case
    front = non_dominated(costs, scores) if len(costs) else np.zeros(0, dtype=bool)
    assert math.isclose(hypervolume(costs[front], scores[front], reference, log_cost=False),
                        hypervolume(costs, scores, reference, log_cost=False), rel_tol=1e-12, abs_tol=1e-12)


@PROPERTY
@given(points(min_size=1, cost=(1.0, 1e4)), st.integers(0, 29), st.sampled_from([0.0, -1.0, -1e-300]))
def test_log_cost_refuses_a_cost_that_is_not_positive(data, where, bad):
    costs, scores = data
    costs = costs.copy()
    costs[where % len(costs)] = bad
    with pytest.raises(ValueError, match="positive"):
        hypervolume(costs, scores, (1e5, -100.0), log_cost=True)
    with pytest.raises(ValueError, match="positive"):
        hypervolume(np.abs(costs) + 1.0, scores, (bad, -100.0), log_cost=True)
