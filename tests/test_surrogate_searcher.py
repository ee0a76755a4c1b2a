"""SurrogateSearcher: design, constraints, failures, fidelity, multi-objective, state, and real Ray Tune."""

from __future__ import annotations

import math
import pickle
import sys

import numpy as np
import pytest

from ecgsearch.errors import SpaceError, UserError
from ecgsearch.search import RandomSearcher, SurrogateSearcher
from ecgsearch.space import parse_space

HEAD = """
data: {dataset: synthetic, records: 60, sampling_rate: 50, seconds: 4, leads: [I, II]}
task: multilabel
budget: {trials: 30, epochs: 1}
"""
SPACE_TEXT = HEAD + """
space:
  architecture:
    resnet: {depth: {choice: [8, 10]}, channels: {choice: [8, 16, 32]}, kernel: {choice: [3, 7, 15]}}
    convnext: {stages: {randint: [2, 3]}, width: {choice: [8, 16]}, depth: 1, kernel: 7}
  optimizer:
    adamw: {lr: {loguniform: [1.0e-4, 1.0e-1]}}
    sgd: {lr: {loguniform: [1.0e-3, 1.0]}, momentum: {choice: [0.0, 0.9]}}
  batch_size: {choice: [16, 32, 64]}
"""
SPACE = parse_space(SPACE_TEXT).space


def truth(config: dict) -> float:
    """Best: resnet, 32 channels, kernel 7, lr at the optimizer's optimum (1.0 at the very best)."""
    value = 0.7 + 0.1 * (config["architecture"] == "resnet")
    value += 0.05 * math.log2(config.get("architecture.resnet.channels", 8) / 8) - 0.01 * abs(
        config.get("architecture.resnet.kernel", 3) - 7)
    lr = config.get("optimizer.adamw.lr") or config["optimizer.sgd.lr"]
    return value - 0.05 * (math.log10(lr) - math.log10(3e-3 if config["optimizer"] == "adamw" else 1e-1)) ** 2


def flops(config: dict) -> dict[str, float]:
    if config["architecture"] == "resnet":
        return {"cost.flops": 1e5 * config["architecture.resnet.channels"] ** 2 * config["architecture.resnet.depth"]}
    return {"cost.flops": 2e5 * config["architecture.convnext.width"] ** 2 * config["architecture.convnext.stages"]}


def drive(searcher, n: int, fail=lambda c: False, value=truth, key: str = "score") -> list[dict]:
    """Suggest and complete ``n`` trials one after the other; returns the suggested configs."""
    configs = []
    for i in range(n):
        config = searcher.suggest(f"trial{i}")
        configs.append(config)
        failed = fail(config)
        searcher.on_trial_complete(f"trial{i}", None if failed else {key: value(config), "training_iteration": 1},
                                   error=failed)
    return configs


def test_the_initial_design_is_distinct_feasible_and_fills_the_space() -> None:
    too_big = lambda c: None if c["architecture"] == "resnet" and c["architecture.resnet.channels"] == 32 else flops(c)
    searcher = SurrogateSearcher(SPACE, "score", "max", seed=1, initial_trials=16, costs=too_big,
                                 cost_inputs=["architecture"])
    configs = [searcher.suggest(f"t{i}") for i in range(16)]
    assert len({repr(sorted(c.items())) for c in configs}) == 16
    assert not any(c.get("architecture.resnet.channels") == 32 for c in configs)
    assert {c["architecture"] for c in configs} == {"resnet", "convnext"}
    assert {c["optimizer"] for c in configs} == {"adamw", "sgd"}
    assert all(c["architecture.convnext.depth"] == 1 for c in configs if c["architecture"] == "convnext")
    assert all(set(SPACE.active(c)) == set(c) for c in configs)  # only the chosen options' parameters
    lrs = sorted(math.log10(c["optimizer.adamw.lr"]) for c in configs if c["optimizer"] == "adamw")
    assert lrs[0] < -3 and lrs[-1] > -2  # spread over the log range


def test_its_suggestions_after_the_design_beat_random_search() -> None:
    ours, theirs = [], []
    for seed in range(2):
        ours += [truth(c) for c in drive(SurrogateSearcher(SPACE, "score", "max", seed=seed, initial_trials=8,
                                                           candidates=400), 24)[8:]]
        random = RandomSearcher(lambda i, s=seed: SPACE.sample(s, i), 24, "score", "max")
        theirs += [truth(c) for c in drive(random, 24)[8:]]
    assert np.mean(ours) > np.mean(theirs) + 0.05 and np.max(ours) > 0.85


def test_failed_trials_teach_it_to_avoid_the_region_that_fails() -> None:
    searcher = SurrogateSearcher(SPACE, "score", "max", seed=2, initial_trials=8, candidates=300)
    configs = drive(searcher, 24, fail=lambda c: c["optimizer"] == "sgd")
    assert sum(c["optimizer"] == "sgd" for c in configs[12:]) <= 2
    assert sum(o.value is None for o in searcher.observations) >= 2


def test_a_minimised_metric_is_minimised() -> None:
    searcher = SurrogateSearcher(SPACE, "loss", "min", seed=3, initial_trials=8, candidates=300)
    configs = drive(searcher, 24, value=lambda c: 1 - truth(c), key="loss")
    assert all(o.value is not None for o in searcher.observations)
    assert np.mean([truth(c) for c in configs[12:]]) > np.mean([truth(c) for c in configs[:8]]) + 0.05


def test_stopped_trials_keep_their_best_report_and_fidelity() -> None:
    searcher = SurrogateSearcher(SPACE, "score", "max", seed=4, initial_trials=2)
    for trial, iterations in (("a", 4), ("b", 1), ("c", 2)):
        searcher.suggest(trial)
        for i in range(1, iterations + 1):
            searcher.on_trial_result(trial, {"score": [0.5, 0.7, 0.6, 0.8][i - 1], "training_iteration": i})
        searcher.on_trial_complete(trial, {"score": 0.1, "training_iteration": iterations})
    observed = {o.fidelity: o.value for o in searcher.observations}
    assert observed == {4: 0.8, 1: 0.5, 2: 0.7}
    assert searcher.suggest("d") is not None  # the model copes with mixed fidelities


def test_multi_objective_mode_spreads_over_the_front() -> None:
    def front_size(configs):
        points = np.array([(truth(c), -flops(c)["cost.flops"]) for c in configs])
        return sum(not any((q >= p).all() and (q > p).any() for q in points) for p in points)

    log_flops = {"multi": [], "single": []}
    for seed in range(2):
        kwargs = dict(seed=seed, initial_trials=8, candidates=250, costs=flops, cost_inputs=["architecture"])
        multi = drive(SurrogateSearcher(SPACE, "score", "max", objectives={"score": "max", "cost.flops": "min"},
                                        **kwargs), 22)
        single = drive(SurrogateSearcher(SPACE, "score", "max", **kwargs), 22)
        assert front_size(multi) >= 3  # the true front has 4 points (the cheapest best of each size)
        log_flops["multi"] += [math.log10(flops(c)["cost.flops"]) for c in multi[8:]]
        log_flops["single"] += [math.log10(flops(c)["cost.flops"]) for c in single[8:]]
    assert np.mean(log_flops["multi"]) < np.mean(log_flops["single"]) - 0.2  # it also aims at cheap models


def test_state_saved_and_restored_continues_with_the_same_observations(tmp_path) -> None:
    searcher = SurrogateSearcher(SPACE, "score", "max", seed=6, initial_trials=4, candidates=200, trials=12)
    drive(searcher, 9)
    pending = searcher.suggest("running")
    searcher.save(str(tmp_path / "state.pkl"))
    restored = SurrogateSearcher(SPACE, "score", "max", seed=6, initial_trials=4, candidates=200, trials=12)
    restored.restore(str(tmp_path / "state.pkl"))
    assert [(o.config, o.value) for o in restored.observations] == [(o.config, o.value)
                                                                     for o in searcher.observations]
    restored.on_trial_complete("running", {"score": truth(pending), "training_iteration": 1})
    searcher.on_trial_complete("running", {"score": truth(pending), "training_iteration": 1})
    assert restored.suggest("next") == searcher.suggest("next")
    assert len(restored.observations) == 10
    pickle.dumps(restored)  # Tune pickles the searcher with the experiment
    drive(restored, 1)
    assert restored.suggest("over budget") == "FINISHED"


def test_a_used_up_space_repeats_a_configuration_instead_of_stopping_the_run() -> None:
    tiny = parse_space(HEAD + """
space:
  architecture: {resnet: {depth: 8, channels: {choice: [8, 16]}}}
  optimizer: {adamw: {lr: {choice: [1.0e-3, 1.0e-2]}}}
""").space
    searcher = SurrogateSearcher(tiny, "score", "max", seed=0, initial_trials=2, candidates=50)
    configs = drive(searcher, 6, value=lambda c: c["architecture.resnet.channels"] * c["optimizer.adamw.lr"])
    assert len({repr(sorted(c.items())) for c in configs[:4]}) == 4  # every configuration once first
    with pytest.raises(UserError, match=r"search: no configuration satisfied the constraints in 200 draws of the "
                                        r"space; raise max_flops/max_params or narrow the space to smaller models\."):
        SurrogateSearcher(tiny, "score", "max", costs=lambda c: None).suggest("t")


def test_it_asks_for_the_metric_and_mode_it_optimises() -> None:
    with pytest.raises(ValueError, match="SurrogateSearcher needs the metric and mode"):
        SurrogateSearcher(SPACE).suggest("t")


def test_warm_start_from_evaluated_points_skips_the_initial_design() -> None:
    searcher = SurrogateSearcher(SPACE, "score", "max", seed=7, initial_trials=8, candidates=300)
    for i in range(20):
        config = SPACE.sample(70, i)
        searcher.add_evaluated_point(config, truth(config))
    assert truth(searcher.suggest("first")) > np.median([truth(SPACE.sample(70, i)) for i in range(20)])


def test_search_options_in_the_space_file() -> None:
    spec = parse_space(SPACE_TEXT + "search: {algorithm: surrogate, surrogate: xgboost, initial_trials: 4, "
                       "acquisition: ucb, initial_design: random, objectives: {macro_auroc: max, cost.flops: min}}")
    assert spec.search.algorithm == "surrogate"
    assert spec.search.params == {"surrogate": "xgboost", "initial_trials": 4, "acquisition": "ucb",
                                  "initial_design": "random",
                                  "objectives": {"val.macro_auroc": "max", "cost.flops": "min"}}
    SurrogateSearcher(spec.space, "objective", "max", **spec.search.params)


@pytest.mark.parametrize(("search", "message"), [
    ("{algorithm: surrogat}", r"search.algorithm: 'surrogat' is not a search algorithm \(allowed: random, "
                              r"surrogate\); did you mean 'surrogate'\?"),
    ("{algorithm: surrogate, acquisiton: ei}", r"search.acquisiton: 'acquisiton' is not an option of the "
                                               r"surrogate search .*did you mean 'acquisition'\?"),
    ("{algorithm: surrogate, surrogate: forest}", r"search.surrogate: 'forest' is not a registered surrogate"),
    ("{algorithm: surrogate, acquisition: pi}", r"search.acquisition: 'pi' is not an acquisition function "
                                                r"\(allowed: ei, ucb\)"),
    ("{algorithm: surrogate, initial_trials: 0}", r"search.initial_trials: 0 is not an integer >= 1"),
    ("{algorithm: surrogate, objectives: {macro_auroc: max}}", r"search.objectives: .* names 1 objective; "
                                                               r"multi-objective search needs at least two"),
    ("{algorithm: surrogate, objectives: {macro_auroc: best, cost.flops: min}}",
     r"search.objectives.macro_auroc: 'best' is not max or min"),
    ("{algorithm: surrogate, objectives: {macro_aurc: max, cost.flops: min}}",
     r"search.objectives.macro_aurc: 'macro_aurc' is not a registered metric or a cost column .*"
     r"did you mean 'macro_auroc'\?"),
])
def test_bad_search_options_are_one_clear_sentence(search: str, message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        parse_space(SPACE_TEXT + f"search: {search}", source="s.yaml")


# --- with Ray Tune --------------------------------------------------------------------------------


def plain_trainable(config: dict) -> None:
    """Any Tune function trainable: a learning curve rising to the configuration's value."""
    from ray import tune

    for step in range(1, 5):
        tune.report({"score": truth(config) * (1 - 0.5 ** step)})


@pytest.mark.ray
def test_with_a_plain_trainable_asha_and_tune_resume_state(ray_session, tmp_path) -> None:
    from ray import cloudpickle, tune
    from ray.tune.schedulers import ASHAScheduler

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray's workers cannot import tests/
    searcher = SurrogateSearcher(SPACE, "score", "max", seed=8, initial_trials=4, candidates=200)
    tuner = tune.Tuner(plain_trainable, tune_config=tune.TuneConfig(
        metric="score", mode="max", search_alg=searcher, num_samples=8, max_concurrent_trials=2,
        scheduler=ASHAScheduler(time_attr="training_iteration", max_t=4, grace_period=1, reduction_factor=2)),
        run_config=tune.RunConfig(name="plain", storage_path=str(tmp_path), verbose=0))
    grid = tuner.fit()
    assert len(grid) == 8 and not grid.errors
    fidelities = [r.metrics["training_iteration"] for r in grid]
    assert min(fidelities) < 4 and max(fidelities) == 4  # ASHA stopped some trials early
    # Tune saved the searcher with the experiment; a fresh searcher restores the same observations
    fresh = SurrogateSearcher(SPACE, "score", "max", seed=8, initial_trials=4, candidates=200)
    fresh.restore_from_dir(str(tmp_path / "plain"))
    assert len(fresh.observations) >= 6
    assert all(o.value is not None and o.fidelity in (1, 2, 3, 4) for o in fresh.observations), \
        [(o.value, o.fidelity) for o in fresh.observations]
    assert fresh.suggest("continued") is not None


@pytest.mark.ray
def test_the_engine_runs_a_surrogate_search_from_the_space_file(ray_session, tmp_path) -> None:
    from ecgsearch.engine import run_search
    from ecgsearch.results import read_results

    path = tmp_path / "surrogate.yaml"
    path.write_text("""name: surrogate
seed: 2
data: {dataset: synthetic, records: 120, sampling_rate: 50, seconds: 4, leads: [I, II, V1, V5]}
task: multilabel
budget: {trials: 3, epochs: 1}
resources: {cpu: 1, gpu: 0}
search: {algorithm: surrogate, initial_trials: 2, candidates: 50}
constraints: {max_flops: 5.0e6}
space:
  architecture:
    resnet: {depth: 8, channels: {choice: [8, 16, 64]}, kernel: {choice: [5, 7]}}
  optimizer:
    adamw: {lr: {loguniform: [1.0e-3, 1.0e-2]}}
  batch_size: 32
""")
    from ecgsearch.space import load_space

    frame = read_results(run_search(load_space(path), tmp_path / "out").out_dir)
    assert sorted(frame["trial_id"]) == ["t0000", "t0001", "t0002"] and set(frame["status"]) == {"ok"}
    assert (frame["cost.flops"] <= 5.0e6).all()  # channels 64 breaks the constraint and is never proposed
    assert (frame["hp.architecture.resnet.channels"] < 64).all()
