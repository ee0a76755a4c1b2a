"""Every distribution: builds from space-file arguments, samples inside its bounds with the right Python
type (ours and Ray Tune's), compiles to Tune, and includes both ends of integer ranges."""

from __future__ import annotations

import numpy as np
import pytest
from ray.tune.search.sample import Domain

from ecgsearch.space import DISTRIBUTIONS, make_distribution
from ecgsearch.space.distributions import BadArguments, Fixed

# name -> (space-file arguments, every value a sample may take or None for continuous, (lo, hi), type)
CASES = {
    "choice": ([16, 32, 64], {16, 32, 64}, (16, 64), int),
    "grid": ([1, 2, 3], {1, 2, 3}, (1, 3), int),
    "uniform": ([0.1, 0.9], None, (0.1, 0.9), float),
    "loguniform": ([1.0e-4, 1.0e-2], None, (1.0e-4, 1.0e-2), float),
    "randint": ([2, 5], {2, 3, 4, 5}, (2, 5), int),
    "lograndint": ([2, 9], set(range(2, 10)), (2, 9), int),
    "quniform": ([0.1, 1.0, 0.3], {0.3, 0.6, 0.9}, (0.1, 1.0), float),
    "qloguniform": ([1, 100, 25], {25.0, 50.0, 75.0, 100.0}, (1, 100), float),
    "qrandint": ([1, 10, 3], {3, 6, 9}, (1, 10), int),
}
DRAWS = 400


def test_every_registered_distribution_has_a_case():
    assert set(CASES) == set(DISTRIBUTIONS)


def _seen_values(values, expected):
    """Map floats onto the expected set with a tolerance (0.1 * 3 is not exactly 0.3)."""
    if expected is None:
        return set()
    return {min(expected, key=lambda e: abs(e - v)) for v in values}


@pytest.mark.parametrize("name", list(CASES))
def test_our_samples_stay_inside_bounds_with_python_types(name):
    args, expected, (lo, hi), kind = CASES[name]
    dist = make_distribution(name, args)
    assert dist.name == name
    rng = np.random.default_rng(0)
    values = [dist.sample(rng) for _ in range(DRAWS)]
    for value in values:
        assert type(value) is kind, (name, value)
        assert lo <= value <= hi
        assert dist.contains(value)
    if expected is not None:
        assert _seen_values(values, expected) == expected  # every value, both ends included
        assert all(min(abs(v - e) for e in expected) < 1e-9 for v in values)


@pytest.mark.parametrize("name", list(CASES))
def test_tune_domain_samples_stay_inside_bounds(name):
    args, expected, (lo, hi), _ = CASES[name]
    dist = make_distribution(name, args)
    compiled = dist.to_tune()
    if name == "grid":
        assert compiled == {"grid_search": [1, 2, 3]}
        return
    assert isinstance(compiled, Domain)
    rng = np.random.default_rng(1)
    values = [compiled.sample(random_state=rng) for _ in range(DRAWS)]
    for value in values:
        assert lo - 1e-9 <= value <= hi + 1e-9, (name, value)
        assert dist.contains(value), (name, value)
    if expected is not None:
        assert _seen_values(values, expected) == expected  # Tune reaches both ends too


def test_qrandint_with_q_one_includes_both_ends_in_tune():
    dist = make_distribution("qrandint", [2, 4, 1])
    rng = np.random.default_rng(2)
    assert {dist.to_tune().sample(random_state=rng) for _ in range(200)} == {2, 3, 4}
    assert {dist.sample(rng) for _ in range(200)} == {2, 3, 4}


def test_lograndint_is_an_integer_log_uniform_in_ours_and_in_tune():
    """Each k in [lo, hi] with probability log((k + 1) / k) / log((hi + 1) / lo): 2 about 3.85 times as
    often as 9 in [2, 9], where randint gives them alike; qloguniform with q = 1 gives floats instead."""
    dist = make_distribution("lograndint", [2, 9])
    rng = np.random.default_rng(5)
    ours = np.array([dist.sample(rng) for _ in range(4000)])
    theirs = np.array([dist.to_tune().sample(random_state=rng) for _ in range(4000)])
    expected = np.log(3 / 2) / np.log(10 / 2)
    for values in (ours, theirs):
        assert set(values.tolist()) == set(range(2, 10))
        assert abs((values == 2).mean() - expected) < 0.03
        assert (values == 2).sum() > 2.5 * (values == 9).sum()
    assert all(type(v) is int for v in ours[:50].tolist())
    assert type(make_distribution("qloguniform", [2, 9, 1]).sample(rng)) is float


def test_quantized_samples_are_clean_multiples():
    dist = make_distribution("quniform", [0.0, 1.0, 0.1])
    rng = np.random.default_rng(3)
    values = {dist.sample(rng) for _ in range(500)}
    assert values <= {round(0.1 * k, 10) for k in range(11)}


def test_choice_returns_the_value_itself_including_lists():
    dist = make_distribution("choice", [[2, 2, 6, 2], [3, 3, 9, 3], "wide", True])
    rng = np.random.default_rng(4)
    values = [dist.sample(rng) for _ in range(200)]
    assert {repr(v) for v in values} == {"[2, 2, 6, 2]", "[3, 3, 9, 3]", "'wide'", "True"}
    first_list = next(v for v in values if isinstance(v, list))
    first_list.append(99)
    assert dist.values[:2] == ([2, 2, 6, 2], [3, 3, 9, 3])  # samples are copies


def test_contains_rejects_out_of_range_and_wrong_types():
    randint = make_distribution("randint", [2, 5])
    assert randint.contains(2) and randint.contains(5)
    assert not randint.contains(6) and not randint.contains(3.0) and not randint.contains(True)
    assert not make_distribution("uniform", [0.1, 0.9]).contains("0.5")
    assert not make_distribution("qrandint", [1, 10, 3]).contains(4)
    assert not make_distribution("choice", [1, 2]).contains(True)
    assert make_distribution("choice", [1, 2]).contains(2)


def test_describe():
    assert make_distribution("loguniform", [1.0e-4, 1.0e-2]).describe() == "loguniform [0.0001, 0.01]"
    assert make_distribution("qrandint", [1, 10, 3]).describe() == "qrandint [1, 10, 3]"
    assert make_distribution("choice", [16, 32]).describe() == "choice [16, 32]"
    assert Fixed([2, 2]).describe() == "fixed [2, 2]"


def test_numeric_strings_are_accepted_as_float_bounds():
    dist = make_distribution("loguniform", ["1e-4", "1e-2"])
    assert (dist.lo, dist.hi) == (1e-4, 1e-2)


def test_fixed_is_returned_as_is():
    fixed = Fixed([2, 2, 6, 2])
    assert fixed.to_tune() == [2, 2, 6, 2]
    assert fixed.sample(np.random.default_rng(0)) == [2, 2, 6, 2]
    assert fixed.contains([2, 2, 6, 2]) and not fixed.contains([2, 2])


@pytest.mark.parametrize(
    "name, args, problem",
    [
        ("choice", "abc", "choice needs a non-empty list of values, got 'abc'"),
        ("uniform", [1], "uniform needs a list [lo, hi], got [1]"),
        ("uniform", [1, "x"], "uniform needs numbers [lo, hi], got [1, 'x']"),
        ("loguniform", [-1, 1], "loguniform needs 0 < lo, got [-1, 1]"),
        ("randint", [5, 2], "randint needs lo < hi, got [5, 2]"),
        ("lograndint", [0, 10], "lograndint needs 0 < lo, got [0, 10]"),
        ("lograndint", [1.5, 10], "lograndint needs integers [lo, hi], got [1.5, 10]"),
        ("quniform", [0, 1, 0], "quniform needs q > 0, got [0, 1, 0]"),
        ("qloguniform", [0, 1, 0.1], "qloguniform needs 0 < lo, got [0, 1, 0.1]"),
        ("qrandint", [0, 10, 2.5], "qrandint needs integers [lo, hi, q], got [0, 10, 2.5]"),
        ("grid", [], "grid needs a non-empty list of values, got []"),
    ],
)
def test_bad_arguments(name, args, problem):
    with pytest.raises(BadArguments) as caught:
        make_distribution(name, args)
    assert str(caught.value) == problem
