"""Scaling-law intervals hold their level: 95% intervals of alpha, E_inf and A contain the true values in
93-97% of seeded repetitions under additive, multiplicative and heavy-tailed noise at 10 to 100 points,
and the law of a results table holds its planted alpha when poorly trained trials join the front.

Sizes: 180 fits per noise model and number of points. The 93-97% goal is asserted on each number of
points pooled over the three noise models (540 fits; binomial sd 0.9 points at 95%). Each noise model
pooled over the points is held to 91.5-98.5% (about 3 sd of its 540) and no cell to below 88%. At 10
points, where the noise model is hardest to tell and the union of both models' intervals once made them
conservative (98% under additive and Student-t noise), each noise model is checked on 600 fits against
92-98% (the goal widened by about one sd of that sample). A miscalibrated method fails by far more (the
residual bootstrap this replaced held 50-97%; a fit forced to the wrong noise model is checked to fail
here). The long run is tests/benchmarks/bench_scaling_coverage.py.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from ecgsearch.analysis.scaling import PARAMS, fit_power_law, fit_scaling

LAWS = [(0.10, 5.0, 0.30), (0.05, 200.0, 0.60), (0.20, 2.0, 0.15)]  # (E_inf, A, alpha): bent, steep, shallow
POINTS = (10, 25, 100)
SEEDS = 60  # per law and number of points: 180 fits per cell, 540 per noise model
X_RANGE = (1e3, 1e9)  # six decades


def noisy(law: tuple[float, float, float], x: np.ndarray, noise: str, rng: np.random.Generator,
          scale: float = 1.0) -> np.ndarray:
    """Additive and Student-t (3 d.o.f.) noise scaled to 10% of the smallest error; multiplicative 5%
    (``scale`` times those)."""
    clean = law[0] + law[1] * x ** -law[2]
    if noise == "multiplicative":
        return clean * np.exp(0.05 * scale * rng.normal(size=len(x)))
    draws = rng.standard_t(3, size=len(x)) if noise == "student" else rng.normal(size=len(x))
    return clean + 0.1 * scale * clean.min() * draws


@cache
def coverage(noise: str, points: int, forced: str | None = None, seeds: int = SEEDS) -> dict[str, float]:
    """Share of the 3 x ``seeds`` fits at ``points`` points whose interval holds each true parameter."""
    x = np.geomspace(*X_RANGE, points)
    held = dict.fromkeys(PARAMS, 0)
    for index, law in enumerate(LAWS):
        for seed in range(seeds):
            y = noisy(law, x, noise, np.random.default_rng([points, index, seed]))
            fit = fit_power_law(x, y, extrapolate=None, noise=forced)
            for name, truth in zip(PARAMS, law):
                low, high = fit.ci[name]
                held[name] += low <= truth <= high
    return {name: count / (len(LAWS) * seeds) for name, count in held.items()}


NOISES = ("additive", "multiplicative", "student")


def pooled(noise: str) -> dict[str, float]:
    return {name: float(np.mean([coverage(noise, points)[name] for points in POINTS])) for name in PARAMS}


@pytest.mark.parametrize("noise", NOISES)
def test_each_noise_model_holds_its_95_percent_intervals(noise):
    cells = {points: coverage(noise, points) for points in POINTS}
    for name, share in pooled(noise).items():
        assert 0.915 <= share <= 0.985, (noise, name, share, cells)
        for points, cell in cells.items():
            assert cell[name] >= 0.88, (noise, name, points, cells)


def test_95_percent_intervals_hold_the_truth_93_to_97_percent_of_the_time():
    cells = {(noise, points): coverage(noise, points) for noise in NOISES for points in POINTS}
    for name in PARAMS:
        for points in POINTS:
            share = float(np.mean([cells[noise, points][name] for noise in NOISES]))
            assert 0.93 <= share <= 0.97, (name, points, share, cells)


@pytest.mark.parametrize("noise", NOISES)
def test_at_10_points_each_noise_model_holds_92_to_98_percent(noise):
    # the union of both noise models' intervals, taken whenever the likelihoods could not tell them apart,
    # held 98.5-98.7% of A and alpha here under Student-t noise; the restricted likelihood decides more often
    cell = coverage(noise, 10, seeds=200)
    for name, share in cell.items():
        assert 0.92 <= share <= 0.98, (noise, name, cell)


def test_the_coverage_check_catches_a_miscalibrated_interval():
    # multiplicative noise fitted as additive: the noisy small-x points are trusted as much as the rest
    wrong = coverage("multiplicative", 25, forced="additive")
    assert wrong["a"] < 0.85 and wrong["alpha"] < 0.88, wrong


def planted_table(seed: int, decades: tuple[float, float] = (4.0, 8.0), well_trained: int = 20, near: int = 2,
                  excess: tuple[float, float] = (0.05, 0.5), under_trained: int = 20, noise: float = 0.03,
                  law: tuple[float, float, float] = LAWS[0]) -> pd.DataFrame:
    """A random search's table: ``well_trained`` trials on the law (multiplicative noise), ``near`` poorer
    trials within +-25% of the cost of each (``excess`` above the law at their own cost), and under-trained
    trials that reach only the error of a model 3-100 times smaller."""
    rng = np.random.default_rng(seed)

    def error(cost: np.ndarray, above: np.ndarray) -> np.ndarray:
        return (law[0] + law[1] * cost ** -law[2]) * (1 + above) * np.exp(noise * rng.normal(size=len(cost)))

    good = 10 ** np.sort(rng.uniform(*decades, well_trained))
    jittered = np.repeat(good, near) * rng.uniform(0.75, 1.25, near * well_trained)
    under = 10 ** rng.uniform(*decades, under_trained)
    costs = np.concatenate([good, jittered, under])
    errors = np.concatenate([error(good, np.zeros(well_trained)), error(jittered, rng.uniform(*excess, len(jittered))),
                             error(under * rng.uniform(0.01, 0.3, under_trained), np.zeros(under_trained))])
    kind = ["law"] * well_trained + ["near"] * len(jittered) + ["under-trained"] * under_trained
    return pd.DataFrame({"trial_id": [f"t{i:03d}" for i in range(len(costs))], "status": "ok",
                         "cost.flops": costs, "val.score": 1 - errors, "kind": kind})


def test_the_law_of_a_search_table_holds_its_planted_alpha_despite_poorly_trained_trials():
    alpha = LAWS[0][2]
    held = {"envelope": 0, "pareto front": 0}
    used_kinds: list[str] = []
    tables = [(seed, (4.0, 8.0)) for seed in range(60)] + [(seed, (3.0, 9.0)) for seed in range(60, 100)]
    for seed, decades in tables:
        table = planted_table(seed, decades)
        fit = fit_scaling(table, "score", "max", "compute")
        front = fit_scaling(table, "score", "max", "compute", bin_decades=None)  # every Pareto-optimal trial
        held["envelope"] += fit.ci["alpha"][0] <= alpha <= fit.ci["alpha"][1]
        held["pareto front"] += front.ci["alpha"][0] <= alpha <= front.ci["alpha"][1]
        used_kinds += list(table.set_index("trial_id").loc[list(fit.trial_ids), "kind"])
    assert held["envelope"] >= 0.9 * len(tables), held
    assert held["pareto front"] <= 0.8 * len(tables), held  # the bias the envelope removes is there to remove
    assert used_kinds.count("law") >= 0.85 * len(used_kinds), pd.Series(used_kinds).value_counts()
