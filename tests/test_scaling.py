"""Scaling laws: known exponents recovered from noisy synthetic data, honest intervals, the extrapolation
check, degenerate inputs as one sentence, and the law of a results table's Pareto-optimal trials."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecgsearch.analysis.scaling import (
    ScalingError,
    extrapolation_check,
    fit_power_law,
    fit_scaling,
    scaling_points,
)

X = np.geomspace(1e4, 1e8, 20)
LAWS = [(0.10, 5.0, 0.30), (0.05, 200.0, 0.60), (0.20, 2.0, 0.15)]  # (E_inf, A, alpha)
ALPHA_TOLERANCE = 0.06  # at noise of 2% of the error's range over the 4 decades


def noisy(law: tuple[float, float, float], seed: int, x: np.ndarray = X, noise: float = 0.02) -> np.ndarray:
    e_inf, a, alpha = law
    clean = e_inf + a * x ** -alpha
    return clean + np.random.default_rng(seed).normal(0, noise * np.ptp(clean), len(x))


@pytest.mark.parametrize("law", LAWS)
def test_known_exponents_are_recovered_and_covered(law):
    fit = fit_power_law(X, noisy(law, seed=11), bootstrap=300, seed=0)
    e_inf, a, alpha = law
    assert abs(fit.law.alpha - alpha) <= ALPHA_TOLERANCE
    for name, truth in zip(("e_inf", "a", "alpha"), law):
        low, high = fit.ci[name]
        assert low <= truth <= high, (name, truth, fit.ci[name])
    assert fit.r2 > 0.95 and fit.n == len(X)
    low, high = fit.band(X)
    assert (low <= fit.predict(X) + 1e-12).all() and (fit.predict(X) <= high + 1e-12).all()


def test_the_95_percent_intervals_cover_the_truth_most_of_the_time():
    law, covered = LAWS[0], 0
    for seed in range(20):
        low, high = fit_power_law(X, noisy(law, seed=100 + seed), bootstrap=100, seed=seed,
                                  extrapolate=None).ci["alpha"]
        covered += low <= law[2] <= high
    assert covered >= 16  # nominal 19 of 20; the percentile bootstrap runs slightly narrow at n = 20


def test_the_extrapolation_check_tells_a_law_from_a_kink():
    law = LAWS[0]
    check = extrapolation_check(X, noisy(law, seed=3, noise=0.005))
    assert check.n_fit == 14 and check.n_test == 6 and (check.x > check.split).all()
    assert check.mean_relative_error < 0.05
    kinked = noisy(law, seed=3, noise=0.005)
    kinked[X > check.split] *= 0.4  # a regime change beyond the fitted range
    assert extrapolation_check(X, kinked).mean_relative_error > 0.5
    fit = fit_power_law(X, kinked, bootstrap=20)
    assert fit.extrapolation is not None and fit.extrapolation.mean_relative_error > 0.5


def test_degenerate_inputs_are_one_sentence():
    with pytest.raises(ScalingError, match=r"needs at least 4 points at 3 or more distinct values of x \(x\), "
                                           r"and there are 3 points at 3 distinct values; run more trials"):
        fit_power_law([1e4, 1e5, 1e6], [0.3, 0.2, 0.15])
    with pytest.raises(ScalingError, match=r"there are 6 points at 1 distinct value; run more trials that "
                                           r"differ in FLOPs"):
        fit_power_law([1e6] * 6, [0.3, 0.2, 0.25, 0.3, 0.2, 0.1], what="FLOPs")
    with pytest.raises(ScalingError, match=r"must be positive to fit a power law, and 1 of the points"):
        fit_power_law([0.0, 1e4, 1e5, 1e6], [0.4, 0.3, 0.2, 0.15])
    with pytest.raises(ScalingError, match=r"none of the 6 points lies above x = 1e\+06"):
        extrapolation_check([1e4, 1e5, 1e6, 1e6, 1e6, 1e6], [0.4, 0.3, 0.2, 0.2, 0.21, 0.19])
    with pytest.raises(ScalingError, match=r"must be finite numbers in pairs, and 5 x values came with 5 errors, "
                                           r"1 of them missing or infinite; leave those trials out"):
        fit_power_law([1e4, 1e5, 1e6, 1e7, 1e8], [0.4, 0.3, np.nan, 0.15, 0.1])
    fit = fit_power_law([1e4, 1e5, 1e6, 1e7], [0.4, 0.3, 0.2, 0.15], bootstrap=10)
    assert fit.extrapolation is None  # enough for the law, but its lower two thirds are only 3 points
    assert fit.extrapolation_note.startswith("extrapolation check (fit on the lower 67%): fitting error")


def trials(law: tuple[float, float, float], n: int = 60, seed: int = 0, mode: str = "max") -> pd.DataFrame:
    """Trials whose best error at each size follows the law; most trials are worse (under-trained)."""
    rng = np.random.default_rng(seed)
    flops = 10 ** rng.uniform(4, 8, n)
    fraction = rng.choice([0.125, 0.25, 0.5, 1.0], n)
    error = law[0] + law[1] * flops ** -law[2]
    error = error + np.where(rng.uniform(size=n) < 0.7, rng.exponential(0.05, n), 0.0)
    return pd.DataFrame({"trial_id": [f"t{i:04d}" for i in range(n)], "status": "ok", "cost.flops": flops,
                         "cost.params": flops / 100, "hp.data_fraction": fraction,
                         "val.score": 1 - error if mode == "max" else error})


def test_the_law_of_a_results_table_is_fitted_on_its_pareto_optimal_trials():
    law = LAWS[0]
    frame = trials(law)
    points = scaling_points(frame, "score", "max", "compute")
    front = points[points["pareto"]]
    assert len(front) < len(points) and front.sort_values("x")["error"].is_monotonic_decreasing
    fit = fit_scaling(frame, "score", "max", "compute", bootstrap=100)
    assert abs(fit.law.alpha - law[2]) <= ALPHA_TOLERANCE and fit.axis == "compute"
    assert set(fit.trial_ids) == set(frame.loc[front.index, "trial_id"])
    everything = fit_scaling(frame, "score", "max", "compute", pareto=False, bootstrap=20)
    assert everything.n == len(frame) and everything.law.e_inf > fit.law.e_inf  # the cloud sits above the front
    minimised = fit_scaling(trials(law, mode="min"), "score", "min", "compute", bootstrap=20)
    assert minimised.law.alpha == pytest.approx(fit.law.alpha, rel=1e-3)


def test_the_data_axis_in_records_only_rescales_a():
    rng = np.random.default_rng(2)
    fraction = np.repeat(0.5 ** np.arange(6), 5)  # 1/32 ... 1 of the training split, 5 trials each
    error = 0.1 + 0.05 * fraction ** -0.5 + rng.exponential(0.02, len(fraction))
    frame = pd.DataFrame({"trial_id": [f"t{i:04d}" for i in range(len(fraction))], "hp.data_fraction": fraction,
                          "val.score": 1 - error})
    relative = fit_scaling(frame, "score", "max", "data", bootstrap=20)
    records = fit_scaling(frame, "score", "max", "data", train_records=1000, bootstrap=20)
    assert records.law.alpha == pytest.approx(relative.law.alpha, rel=1e-3)
    assert records.law.e_inf == pytest.approx(relative.law.e_inf, abs=1e-6)
    assert records.law.a == pytest.approx(relative.law.a * 1000 ** relative.law.alpha, rel=1e-3)


def test_too_few_pareto_points_name_the_axis():
    frame = trials(LAWS[0]).head(3)
    with pytest.raises(ScalingError, match=r"^scaling law on the parameters axis \(\d Pareto-optimal trials\): "
                                           r"fitting error = E_inf \+ A \* x\^-alpha needs at least 4 points"):
        fit_scaling(frame, "score", "max", "parameters")
