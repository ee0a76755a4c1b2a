"""Multi-fidelity search: the learning-curve predictor, the ``learning_curve`` scheduler's stopping rule and
its options, and the surrogate searcher's use of results at every budget."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from ecgsearch import LearningCurveRule, SchedulerRun, SurrogateSearcher, predict_final
from ecgsearch.errors import SpaceError
from ecgsearch.plugins import get_registries
from ecgsearch.search.features import FIDELITY
from ecgsearch.space import load_space

T = 40  # epochs of the planted curves


def pow3(c: float, a: float, alpha: float, epochs: int = T) -> np.ndarray:
    return c - a * np.arange(1, epochs + 1, dtype=float) ** -alpha


def test_the_final_value_of_a_planted_pow3_curve_is_recovered_from_its_first_30_percent():
    rng = np.random.default_rng(0)
    for c, a, alpha in ((0.9, 0.5, 0.7), (0.75, 0.3, 1.2), (0.6, 0.4, 0.4)):
        truth = pow3(c, a, alpha)
        noisy = truth + rng.normal(0, 0.002, T)
        prediction = predict_final(noisy[:12], T)
        assert abs(prediction.mean - truth[-1]) < 0.02, (c, a, alpha, prediction)
        assert prediction.upper > prediction.mean
    exact = predict_final(pow3(0.9, 0.5, 0.7)[:12], T)
    assert abs(exact.mean - pow3(0.9, 0.5, 0.7)[-1]) < 0.005 and exact.weights["pow"] > 0.5


def test_the_upper_bound_covers_the_final_value_at_about_its_nominal_level():
    """Over 300 seeded noisy pow3 curves cut after 30% of their epochs, the upper bound at confidence 0.8
    and 0.9 is above the (noisy) final value in that share of them, within 0.07."""
    rng = np.random.default_rng(1)
    curves = [pow3(rng.uniform(0.6, 0.95), rng.uniform(0.2, 0.5), rng.uniform(0.3, 1.5)) + rng.normal(0, 0.005, T)
              for _ in range(300)]
    for confidence in (0.8, 0.9):
        covered = np.mean([curve[-1] <= predict_final(curve[:12], T, confidence=confidence).upper
                           for curve in curves])
        assert abs(covered - confidence) <= 0.07, (confidence, covered)


def test_a_prediction_needs_three_usable_points_and_ignores_failures():
    assert predict_final([0.5, 0.6], T) is None
    assert predict_final([0.5, float("nan"), -1e30, 0.6], T) is None
    prediction = predict_final([0.5, float("nan"), 0.6, 0.65], T, epochs=[1, 2, 3, 4])
    assert prediction is not None and prediction.mean > 0.6
    with pytest.raises(ValueError, match="confidence"):
        predict_final([0.5, 0.6, 0.7], T, confidence=1.0)


def run_curve(rule: LearningCurveRule, trial_id: str, curve: np.ndarray, until: int | None = None) -> int | None:
    """Report ``curve`` epoch by epoch; the epoch the rule stops it at (None: never), then end the trial."""
    stopped = None
    for epoch, value in enumerate(curve[:until], 1):
        if rule.report(trial_id, epoch, float(value)):
            stopped = epoch
            break
    rule.complete(trial_id)
    return stopped


def good_rule(**options) -> LearningCurveRule:
    rule = LearningCurveRule(horizon=T, **{"grace_period": 3, "top_k": 2, "min_curves": 3, "confidence": 0.9,
                                           "compare": "completed", **options})
    for i, c in enumerate((0.90, 0.88, 0.86)):  # three completed trials: the top 2 ends at 0.88
        assert run_curve(rule, f"good{i}", pow3(c, 0.4, 0.8)) is None
    return rule


def test_the_rule_stops_a_clearly_bad_curve_and_keeps_a_promising_one():
    rule = good_rule()
    assert rule.threshold() == pytest.approx(pow3(0.88, 0.4, 0.8).max())
    assert run_curve(rule, "bad", pow3(0.6, 0.4, 0.8)) is not None  # ends near 0.59 < 0.88
    assert "bad" in rule.stopped and "bad" not in rule.completed  # a stopped trial is no completed curve
    # below the threshold for its first 10 epochs but heading for 0.95: not stopped
    promising = pow3(0.95, 0.6, 0.6)
    assert promising[:10].max() < rule.threshold() and run_curve(rule, "promising", promising) is None
    assert "promising" in rule.completed and rule.threshold() == pytest.approx(pow3(0.90, 0.4, 0.8).max())


def test_the_rule_never_stops_before_the_grace_period():
    rule = good_rule(grace_period=6)
    stops = [rule.report("bad", epoch, 0.1 + 0.001 * epoch) for epoch in range(1, 7)]
    assert stops == [False] * 5 + [True]  # epoch 6 is the first that may stop


def test_nothing_is_stopped_until_enough_trials_ran_all_epochs():
    rule = LearningCurveRule(horizon=T, grace_period=3, top_k=1, min_curves=3, compare="completed")
    assert run_curve(rule, "bad0", np.full(T, 0.1)) is None  # no completed trial: no threshold
    assert rule.threshold() is None
    assert run_curve(rule, "good", pow3(0.9, 0.4, 0.8)) is None
    assert run_curve(rule, "short", pow3(0.5, 0.4, 0.8), until=20) is None  # ended early: not completed
    assert run_curve(rule, "bad1", np.full(T, 0.1)) is None  # two completed: still fewer than min_curves
    assert sorted(rule.completed) == ["bad0", "bad1", "good"]
    assert rule.threshold() == pytest.approx(pow3(0.9, 0.4, 0.8).max())
    assert run_curve(rule, "bad2", np.full(T, 0.1)) == 3


def test_compare_all_stops_before_any_trial_ran_all_epochs():
    """With ``compare="all"`` the top k is every trial's best report so far: a bad curve stops while the good
    ones are still running (with ``compare="completed"``, nothing can stop until three trials have run all
    epochs)."""
    rule = LearningCurveRule(horizon=T, grace_period=3, top_k=1, min_curves=3, compare="all")
    good = pow3(0.9, 0.4, 0.8)
    for epoch in range(1, 6):  # a good trial, still running, has reported 0.70 by epoch 5
        assert not rule.report("good", epoch, float(good[epoch - 1]))
    assert rule.completed == {} and rule.threshold() == pytest.approx(good[:5].max())
    assert run_curve(rule, "bad", pow3(0.3, 0.2, 0.8)) == 3  # heading for 0.3: stopped at the grace period
    assert run_curve(rule, "short", pow3(0.95, 0.5, 0.3)) is not None  # ends at 0.785, below 0.79: stopped
    rising = pow3(0.97, 0.5, 0.5)  # below the good trial's 0.79 until epoch 8, heading for 0.89: kept
    assert rising[:7].max() < rule.threshold() and run_curve(rule, "rising", rising) is None
    with pytest.raises(ValueError, match="compare must be one of"):
        LearningCurveRule(horizon=T, compare="running")


def test_the_rule_works_for_a_metric_to_minimise():
    rule = LearningCurveRule(horizon=T, mode="min", grace_period=3, top_k=1, min_curves=2, compare="completed")
    for i in range(2):
        assert run_curve(rule, f"good{i}", 1.0 - pow3(0.9, 0.4, 0.8)) is None  # a loss falling to 0.1
    assert run_curve(rule, "bad", 1.0 - pow3(0.5, 0.4, 0.8)) is not None  # a loss falling to 0.5 only
    assert run_curve(rule, "better", 1.0 - pow3(0.97, 0.5, 0.8)) is None


@pytest.mark.parametrize("compare", ["completed", "all"])
def test_the_scheduler_plugin_feeds_tune_reports_to_the_rule(compare):
    info = get_registries().schedulers.get("learning_curve")
    run = SchedulerRun(metric="objective", mode="max", max_t=T, space=None, seed=0)
    scheduler = info.create(run, grace_period=3, top_k=1, min_curves=1, compare=compare)
    assert scheduler.rule.compare == compare
    for name, curve in (("good", pow3(0.9, 0.4, 0.8)), ("bad", pow3(0.5, 0.4, 0.8))):
        trial = SimpleNamespace(trial_id=name)
        decisions = []
        for epoch, value in enumerate(curve, 1):
            decisions.append(scheduler.on_trial_result(None, trial, {"training_iteration": epoch,
                                                                     "objective": float(value)}))
            if decisions[-1] == "STOP":
                break
        scheduler.on_trial_complete(None, trial, {})
        assert ("STOP" in decisions) == (name == "bad"), decisions
    assert scheduler.on_trial_result(None, SimpleNamespace(trial_id="x"), {"other": 1.0}) == "CONTINUE"


DATA = "data: {dataset: synthetic, records: 120, sampling_rate: 50, seconds: 4, leads: [I, II, V1, V5]}"
SPACE = """
space:
  architecture: {resnet: {depth: 8, channels: 16, kernel: 5}}
  optimizer: {sgd: {lr: {loguniform: [1.0e-4, 3.0e-1]}, momentum: 0.9}}
"""


def file_error(tmp_path, scheduler: str) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(f"name: s\nseed: 3\n{DATA}\ntask: multilabel\nresources: {{cpu: 1, gpu: 0}}\n"
                    f"budget: {{trials: 2, epochs: 3, scheduler: {scheduler}}}\n{SPACE}")
    with pytest.raises(SpaceError) as info:
        load_space(path)
    return str(info.value).replace(str(path), "s.yaml")


def test_the_scheduler_plugin_and_the_rule_have_the_same_defaults():
    """The ``learning_curve`` plugin's keyword defaults (what a space file gets, and the generated docs table
    shows) are the ``LearningCurveRule`` defaults a Python user gets."""
    from ecgsearch.space.fields import factory_defaults

    plugin = factory_defaults(get_registries().schedulers.get("learning_curve"), 1)
    rule = LearningCurveRule(horizon=T)
    assert plugin and {name: getattr(rule, name) for name in plugin} == plugin


def test_bad_learning_curve_options_are_refused_in_one_sentence(tmp_path):
    assert file_error(tmp_path, "{name: learning_curve, confidence: 1.0}") == (
        "s.yaml:6: budget.scheduler.confidence: 1.0 is not a number in (0, 1)")
    assert file_error(tmp_path, "{name: learning_curve, grace_period: 4}") == (
        "s.yaml:6: budget.scheduler.grace_period: 4 is not an integer between 1 and budget.epochs = 3")
    assert file_error(tmp_path, "{name: learning_curve, top_k: 0}") == (
        "s.yaml:6: budget.scheduler.top_k: 0 is not an integer in [1, 1000]")
    assert file_error(tmp_path, "{name: learning_curve, quantile: 0.9}") == (
        "s.yaml:6: budget.scheduler.quantile: 'quantile' is not a parameter of scheduler 'learning_curve' "
        "(allowed: grace_period, top_k, confidence, min_curves, compare)")
    assert file_error(tmp_path, "{name: learning_curve, compare: running}") == (
        "s.yaml:6: budget.scheduler.compare: 'running' is not one of 'all', 'completed'")


# --- the surrogate searcher at every budget ---------------------------------------------------------------

def test_the_surrogate_learns_from_every_budget_and_from_paused_trials():
    """Once a scheduler stopped trials at different budgets, a finished trial adds its best value so far at
    iterations 1, 2, 4, ...; a running (paused) trial that reported adds its current value; candidates are
    scored at the largest budget."""
    searcher = SurrogateSearcher({"x": {"uniform": [0.0, 1.0]}}, "score", "max", seed=0, initial_trials=2,
                                 candidates=32, local_rounds=0)
    for trial, epochs in (("a", 8), ("b", 2), ("c", 8)):
        searcher.suggest(trial)
        for epoch in range(1, epochs + 1):
            searcher.on_trial_result(trial, {"score": 0.1 * epoch, "training_iteration": epoch})
        searcher.on_trial_complete(trial)
    searcher.suggest("paused")
    searcher.on_trial_result("paused", {"score": 0.3, "training_iteration": 3})
    searcher.suggest("pending")
    features, rows, done = searcher._training_frame(np.random.default_rng(0))
    finished = sorted((o.fidelity, round(o.value, 3)) for o in rows[:done])
    assert finished == [(1, 0.1), (1, 0.1), (1, 0.1), (2, 0.2), (2, 0.2), (2, 0.2), (3, 0.3), (4, 0.4), (4, 0.4),
                        (8, 0.8), (8, 0.8)]
    assert len(rows) - done == 2  # both running trials keep their constant-liar rows, at the top budget
    assert list(features[FIDELITY].iloc[done:]) == [8, 8]
    assert searcher.suggest("next") is not None
    state = searcher.get_state()
    assert [tuple(p) for p in state["observations"][0]["curve"]] == [(1, 0.1), (2, 0.2), (4, 0.4), (8, 0.8)]


def test_the_surrogate_adds_no_rows_when_every_trial_ran_the_same_budget():
    searcher = SurrogateSearcher({"x": {"uniform": [0.0, 1.0]}}, "score", "max", seed=0, initial_trials=2)
    for trial in ("a", "b"):
        searcher.suggest(trial)
        for epoch in (1, 2, 3, 4):
            searcher.on_trial_result(trial, {"score": 0.1 * epoch, "training_iteration": epoch})
        searcher.on_trial_complete(trial)
    _, rows, done = searcher._training_frame(np.random.default_rng(0))
    assert done == 2 and len(rows) == 2
