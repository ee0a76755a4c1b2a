"""Scaling laws: known exponents recovered from noisy synthetic data, the extrapolation check, degenerate
inputs as one sentence, the reasons a fit gives not to trust it, and the law of a results table's lower
envelope. How often the intervals hold the truth is tests/test_scaling_coverage.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecgsearch.analysis.scaling import (
    ScalingError,
    envelope,
    extrapolation_check,
    fit_power_law,
    fit_scaling,
    scaling_points,
)
from ecgsearch.analysis.scaling_ci import (
    NOISE_POWER,
    choose_noise,
    e_bounds_of,
    fit_noise,
    preferred,
    restricted_loglik,
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
    fit = fit_power_law(X, noisy(law, seed=11))
    assert abs(fit.law.alpha - law[2]) <= ALPHA_TOLERANCE
    for name, truth in zip(("e_inf", "a", "alpha"), law):
        low, high = fit.ci[name]
        assert low <= truth <= high, (name, truth, fit.ci[name])
    assert fit.r2 > 0.95 and fit.n == len(X)
    low, high = fit.band(X)
    assert (low <= fit.predict(X) + 1e-12).all() and (fit.predict(X) <= high + 1e-12).all()


def test_the_extrapolation_check_tells_a_law_from_a_kink():
    law = LAWS[0]
    check = extrapolation_check(X, noisy(law, seed=3, noise=0.005))
    assert check.n_fit == 14 and check.n_test == 6 and (check.x > check.split).all()
    assert check.mean_relative_error < 0.05
    kinked = noisy(law, seed=3, noise=0.005)
    kinked[X > check.split] *= 0.4  # a regime change beyond the fitted range
    assert extrapolation_check(X, kinked).mean_relative_error > 0.5
    fit = fit_power_law(X, kinked)
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


def test_the_law_of_a_results_table_is_fitted_on_its_lower_envelope():
    law = LAWS[0]
    frame = trials(law)
    points = scaling_points(frame, "score", "max", "compute")
    front, used = points[points["pareto"]], points[points["envelope"]]
    assert len(front) < len(points) and front.sort_values("x")["error"].is_monotonic_decreasing
    assert set(used.index) <= set(front.index) and len(used) < len(front)
    bins = np.floor((np.log10(used["x"]) - np.log10(points["x"].min())) / 0.5)  # 4 decades: half-decade bins
    assert bins.is_unique  # at most one trial per bin: its lowest error
    fit = fit_scaling(frame, "score", "max", "compute")
    assert abs(fit.law.alpha - law[2]) <= ALPHA_TOLERANCE and fit.axis == "compute"
    assert set(fit.trial_ids) == set(frame.loc[used.index, "trial_id"])
    everything = fit_scaling(frame, "score", "max", "compute", pareto=False)
    assert everything.n == len(frame) and everything.law.e_inf > fit.law.e_inf  # the cloud sits above the front
    whole_front = fit_scaling(frame, "score", "max", "compute", bin_decades=None)
    assert set(whole_front.trial_ids) == set(frame.loc[front.index, "trial_id"])
    minimised = fit_scaling(trials(law, mode="min"), "score", "min", "compute")
    assert minimised.law.alpha == pytest.approx(fit.law.alpha, rel=1e-3)


def test_the_envelope_drops_a_cheap_poorly_trained_trial_that_joins_the_front():
    x = np.array([1e4, 1e5, 1.2e6, 1.5e6, 1e7, 1e8])  # half-decade bins from 1e4: 1.2e6 and 1.5e6 share one
    error = 0.1 + 5 * x ** -0.3
    error[2] *= 1.3  # 20% cheaper than its neighbour and 30% above the law
    assert envelope(x, error, bin_decades=None)[2]  # on the Pareto front: no cheaper trial is better
    assert envelope(x, error).tolist() == [True, True, False, True, True, True]  # its bin's best is better
    # bins narrow on a short range so that six remain: 1.2 decades -> 0.2-decade bins
    short = np.geomspace(1e6, 10 ** 7.2, 7)
    assert envelope(short, 0.1 + 5 * short ** -0.3).all()


def test_a_fit_says_when_it_cannot_be_trusted():
    x = np.geomspace(1e3, 1e9, 20)
    sound = fit_power_law(x, noisy(LAWS[0], seed=4, x=x, noise=0.005))
    assert sound.trusted and sound.warnings == () and sound.decades == pytest.approx(6.0)
    few = fit_power_law(x[::4], noisy(LAWS[0], seed=4, x=x[::4], noise=0.005))
    assert any(w.startswith("only 5 points: the intervals are checked by simulation from 6") for w in few.warnings)
    short = np.geomspace(1e6, 1e7, 12)
    narrow = fit_power_law(short, noisy(LAWS[0], seed=4, x=short, noise=0.005))
    assert any(w.startswith("x (x) spans only 1.0 decades") for w in narrow.warnings) and not narrow.trusted
    straight = fit_power_law(x, 5 * x ** -0.3 * np.exp(0.02 * np.random.default_rng(1).normal(size=len(x))))
    assert straight.ci["e_inf"][0] == 0.0
    assert any(w.startswith("no bend: E_inf = 0") for w in straight.warnings)
    # additive noise whose spread grows with x: neither noise model describes it
    growing = 0.1 + 5 * x ** -0.3 + 0.002 * (x / 1e3) ** 0.3 * np.random.default_rng(2).normal(size=len(x))
    spread = fit_power_law(x, growing)
    assert any("spread of the residuals changes with x" in w for w in spread.warnings), spread.warnings


def test_the_noise_model_is_chosen_when_the_points_tell_and_can_be_forced():
    x = np.geomspace(1e3, 1e9, 40)
    clean = 0.05 + 200 * x ** -0.6
    rng = np.random.default_rng(5)
    assert fit_power_law(x, clean * np.exp(0.05 * rng.normal(size=len(x)))).noise == "multiplicative"
    assert fit_power_law(x, clean + 0.005 * rng.normal(size=len(x))).noise == "additive"
    assert fit_power_law(x, clean, noise="additive").noise == "additive"
    with pytest.raises(ScalingError, match=r"^noise='log' is not a noise model; pass one of additive, "
                                           r"multiplicative or None\.$"):
        fit_power_law(x, clean, noise="log")
    with pytest.raises(ScalingError, match=r"^multiplicative noise needs positive errors, and 1 are zero or "
                                           r"negative; use noise='additive'\.$"):
        fit_power_law(x, np.append(clean[:-1], 0.0), noise="multiplicative")


def test_the_restricted_likelihood_ignores_the_weights_scale_and_a_flat_law_keeps_both_models():
    # rescaling a model's weights (and so its weighted sum of squares) changes nothing, so the additive and
    # multiplicative values can be compared; errors that rise with x leave A = 0 and alpha free, which is
    # no evidence either way: both regions are kept (a nearly flat law too, where the value would be huge)
    x = np.geomspace(1e3, 1e9, 12)
    log_u = np.log(x / np.exp(np.mean(np.log(x))))
    y = 0.05 + 200 * x ** -0.6 + 0.005 * np.random.default_rng(2).normal(size=len(x))
    fit = fit_noise(log_u, y, "multiplicative", e_bounds_of(y))
    assert restricted_loglik(log_u, 7 * fit.weights, fit.params, 7 * fit.sse) == pytest.approx(fit.restricted)
    rising = np.linspace(0.2, 0.4, len(x))
    fits = [fit_noise(log_u, rising, name, e_bounds_of(rising)) for name in NOISE_POWER]
    assert all(np.isnan(one.restricted) for one in fits) and len(choose_noise(fits)) == 2
    assert fit_power_law(x, rising, extrapolate=None).noise == "additive or multiplicative"
    nearly_flat = fit_noise(log_u, y, "additive", e_bounds_of(y))
    params = nearly_flat.params * np.array([1.0, 1e-12, 1.0])
    assert np.isnan(restricted_loglik(log_u, nearly_flat.weights, params, nearly_flat.sse))
    assert preferred([fits[0], fit]) is fit  # a NaN counts lowest (plain max() would keep the first)
    assert preferred([fits[1], fits[0]]) is fits[1]  # both NaN: the first one given


def test_the_data_axis_in_records_only_rescales_a():
    rng = np.random.default_rng(2)
    fraction = np.repeat(0.5 ** np.arange(6), 5)  # 1/32 ... 1 of the training split, 5 trials each
    error = 0.1 + 0.05 * fraction ** -0.5 + rng.exponential(0.02, len(fraction))
    frame = pd.DataFrame({"trial_id": [f"t{i:04d}" for i in range(len(fraction))], "hp.data_fraction": fraction,
                          "val.score": 1 - error})
    relative = fit_scaling(frame, "score", "max", "data")
    records = fit_scaling(frame, "score", "max", "data", train_records=1000)
    assert records.law.alpha == pytest.approx(relative.law.alpha, rel=1e-3)
    assert records.law.e_inf == pytest.approx(relative.law.e_inf, abs=1e-6)
    assert records.law.a == pytest.approx(relative.law.a * 1000 ** relative.law.alpha, rel=1e-3)


def test_too_few_envelope_points_name_the_axis():
    frame = trials(LAWS[0]).head(3)
    with pytest.raises(ScalingError, match=r"^scaling law on the parameters axis \(\d trials on the lower "
                                           r"envelope\): "
                                           r"fitting error = E_inf \+ A \* x\^-alpha needs at least 4 points"):
        fit_scaling(frame, "score", "max", "parameters")
