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


def test_a_surrogates_options_are_checked_against_its_declaration_and_merged_with_the_defaults() -> None:
    """``surrogate_params`` holds the chosen surrogate's options, ``auto``'s nested ones included: each is
    checked like any plugin parameter, and setting one forest option keeps the searcher's other forest
    defaults (``max_features: 0.5``)."""
    spec = parse_space(SPACE_TEXT + "search: {algorithm: surrogate, surrogate_params: {gp_rows: 50, "
                       "forest: {n_estimators: 60, min_samples_split: 3}, gp: {nu: 1.5}}}")
    assert spec.search.params["surrogate_params"] == {"gp_rows": 50, "gp": {"nu": 1.5},
                                                      "forest": {"n_estimators": 60, "min_samples_split": 3}}
    searcher = SurrogateSearcher(spec.space, "objective", "max", **spec.search.params)
    assert searcher.surrogate_params["forest"] == {"max_features": 0.5, "n_estimators": 60, "min_samples_split": 3}


def test_an_option_value_the_declaration_passes_on_is_refused_when_the_searcher_is_built() -> None:
    """Options a surrogate passes on to its model undeclared (any ``RandomForestRegressor`` argument) are
    judged by a fit on a small made-up problem when the searcher is built: before any trial."""
    with pytest.raises(UserError, match=r"surrogate 'random_forest': the options .*'min_samples_split': -2.* are "
                                        r"not all accepted \(.*min_samples_split.*\); see `ecgsearch plugins "
                                        r"--params --kind surrogates`"):
        SurrogateSearcher(SPACE, "score", "max", surrogate="random_forest",
                          surrogate_params={"min_samples_split": -2})
    with pytest.raises(UserError, match=r"surrogate 'auto': .*gp_rows must be >= 0, got -1"):
        SurrogateSearcher(SPACE, "score", "max", surrogate_params={"gp_rows": -1})
    # ``auto`` fits its forest only beyond ``gp_rows`` rows: its forest options are checked on the forest itself
    with pytest.raises(UserError, match=r"^surrogate 'auto', option 'forest': surrogate 'random_forest': the options "
                                        r".*'min_samples_split': -2.* are not all accepted \(.*min_samples_split"):
        SurrogateSearcher(SPACE, "score", "max", surrogate_params={"forest": {"min_samples_split": -2}})


@pytest.mark.parametrize(("search", "message"), [
    ("{algorithm: surrogat}", r"search.algorithm: 'surrogat' is not a registered searcher \(allowed: grid, "
                              r"optuna, random, surrogate\); did you mean 'surrogate'\?"),
    ("{algorithm: surrogate, acquisiton: ei}", r"search.acquisiton: 'acquisiton' is not a parameter of searcher "
                                               r"'surrogate' .*did you mean 'acquisition'\?"),
    ("{algorithm: surrogate, surrogate: forest}", r"search.surrogate: 'forest' is not a registered surrogate"),
    ("{algorithm: surrogate, acquisition: pi}", r"search.acquisition: 'pi' is not one of 'ei', 'ucb'"),
    ("{algorithm: surrogate, surrogate_params: {gp_rows: -1}}",
     r"s.yaml:\d+: search.surrogate_params.gp_rows: -1 is not an integer >= 0$"),
    ("{algorithm: surrogate, surrogate: random_forest, surrogate_params: {n_estimators: 0}}",
     r"search.surrogate_params.n_estimators: 0 is not an integer in \[1, 100000\]"),
    ("{algorithm: surrogate, surrogate_params: {forest: {max_features: 2}}}",
     r"search.surrogate_params.forest.max_features: 2 is not a number in \(0, 1\] or one of 'sqrt', 'log2' or "
     r"null"),
    ("{algorithm: surrogate, surrogate_params: {gp: {nu: 3}}}",
     r"search.surrogate_params.gp.nu: 3 is not one of 0.5, 1.5, 2.5"),
    ("{algorithm: surrogate, surrogate: gaussian_process, surrogate_params: {gp_rows: 10}}",
     r"search.surrogate_params.gp_rows: 'gp_rows' is not a parameter of surrogate 'gaussian_process' \(allowed: "
     r"restarts, log_ratio, nu\)"),
    ("{algorithm: surrogate, surrogate_params: {forest: {n_estimators: {deep: 1}}}}",
     r"search.surrogate_params: .* is not a mapping of options of the surrogate or null"),
    ("{algorithm: surrogate, initial_trials: 0}", r"search.initial_trials: 0 is not an integer in \[1, 1000000\]"),
    ("{algorithm: surrogate, objectives: {macro_auroc: max}}", r"search.objectives: .* is not a mapping of at least "
                                                               r"two objectives to max or min; multi-objective "
                                                               r"search needs e.g."),
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


# --- plain spaces, Tune's param_space, a missing metric, shared dimensions -------------------------


PLAIN = {
    "model": {"mlp": {"width": {"lograndint": [8, 512]}, "lr": {"loguniform": [1.0e-4, 1.0e-1]}},
              "cnn": {"kernel": {"choice": [3, 5, 7]}, "lr": {"loguniform": [1.0e-4, 1.0e-1]}}},
    "dropout": {"uniform": [0.0, 0.5]},
    "epochs": 3,
}


def plain_value(config: dict) -> float:
    """Best: the mlp, width about 128, lr 1e-2, no dropout."""
    lr = config.get("model.mlp.lr") or config["model.cnn.lr"]
    width = config.get("model.mlp.width", 16)
    return (0.2 * (config["model"] == "mlp") - 0.1 * (math.log10(lr) + 2) ** 2
            - 0.05 * (math.log2(width) - 7) ** 2 - 0.3 * config["dropout"])


def test_any_plain_hyperparameter_space_is_searched() -> None:
    searcher = SurrogateSearcher(PLAIN, "score", "max", seed=0, initial_trials=6, candidates=200, local_rounds=1)
    configs = drive(searcher, 20, value=plain_value)
    for c in configs:
        assert c["epochs"] == 3 and c["model"] in ("mlp", "cnn")
        assert ("model.mlp.width" in c) == (c["model"] == "mlp") and ("model.cnn.kernel" in c) == (c["model"] == "cnn")
        assert type(c.get("model.mlp.width", 8)) is int and 8 <= c.get("model.mlp.width", 8) <= 512
    assert max(plain_value(c) for c in configs[6:]) > max(plain_value(c) for c in configs[:6])


def test_a_hyperparameter_two_options_have_alike_is_one_dimension_and_one_feature() -> None:
    from ecgsearch.search.features import config_frame, feature_frame, shared_groups
    from ecgsearch.search.sampling import dimensions, from_unit, plain_space, to_unit

    space = plain_space(PLAIN)
    assert shared_groups(space) == {"model.*.lr": ("model.mlp.lr", "model.cnn.lr")}
    assert shared_groups(SPACE) == {"optimizer.*.lr": ("optimizer.adamw.lr", "optimizer.sgd.lr")}
    dims = dimensions(space, shared=True)
    assert [d.name for d in dims] == ["model", "model.mlp.width", "model.*.lr", "model.cnn.kernel", "dropout"]
    assert len(dimensions(space)) == len(dims) + 1
    configs = [{"model": "mlp", "model.mlp.width": 64, "model.mlp.lr": 1e-3, "dropout": 0.1},
               {"model": "cnn", "model.cnn.kernel": 5, "model.cnn.lr": 1e-2, "dropout": 0.2}]
    features = feature_frame(config_frame(configs, space), space, shared=True)
    assert "hp.model.*.lr" in features.columns
    assert not {"hp.model.mlp.lr", "hp.model.cnn.lr"} & set(features.columns)
    assert features["hp.model.*.lr"].tolist() == [1e-3, 1e-2]
    # the same position in the unit cube is the same learning rate under either option
    units = to_unit(space, config_frame(configs, space), dims=dims)
    switched = np.nan_to_num(units, nan=0.5)  # inactive coordinates are missing; any value will do
    switched[:, 0] = units[::-1, 0]  # swap the options, keep the learning rates' positions
    frame = from_unit(space, switched, dims=dims)
    assert frame["hp.model.cnn.lr"].iloc[0] == pytest.approx(1e-3)
    assert frame["hp.model.mlp.lr"].iloc[1] == pytest.approx(1e-2)
    assert np.isnan(frame["hp.model.mlp.lr"].iloc[0]) and np.isnan(frame["hp.model.cnn.lr"].iloc[1])


def test_a_plain_space_that_cannot_be_searched_is_one_sentence() -> None:
    from ecgsearch.search.sampling import PlainSpaceError

    with pytest.raises(PlainSpaceError, match=r"^space: lr: loguniform needs 0 < lo, got \[0, 1\]\.$"):
        SurrogateSearcher({"lr": {"loguniform": [0, 1]}}, "score", "max")
    with pytest.raises(PlainSpaceError, match=r"^space: a search space is a non-empty mapping"):
        SurrogateSearcher({}, "score", "max")


def test_a_result_without_the_metric_is_refused_until_some_trial_reported_it(caplog) -> None:
    searcher = SurrogateSearcher(SPACE, "score", "max", seed=0, initial_trials=2)
    searcher.suggest("t0")
    with pytest.raises(ValueError, match=r"^SurrogateSearcher: trial t0 finished without reporting the metric "
                                         r"'score' \(it reported scroe\); pass the metric the trainable reports, "
                                         r"or report it\.$"):
        searcher.on_trial_complete("t0", {"scroe": 0.5, "training_iteration": 1})
    searcher.suggest("t1")
    searcher.on_trial_complete("t1", {"score": 0.5, "training_iteration": 1})
    searcher.suggest("t2")
    with caplog.at_level("WARNING", logger="ecgsearch.search.surrogate"):
        searcher.on_trial_complete("t2", {"loss": 0.5, "training_iteration": 1})
    assert "trial t2 finished without reporting the metric 'score'; it counts as failed" in caplog.text
    assert [o.value for o in searcher.observations][-1] is None
    searcher.suggest("t3")
    searcher.on_trial_complete("t3", None, error=True)  # a crashed trial is a failure, not a typo
    assert searcher.observations[-1].value is None


def test_it_takes_the_param_space_tune_hands_over() -> None:
    from ray import tune

    param_space = {"lr": tune.loguniform(1e-4, 1e-1), "width": tune.lograndint(8, 513),
                   "act": tune.choice(["relu", "gelu"]), "model": {"depth": tune.randint(2, 6)}, "epochs": 3}
    searcher = SurrogateSearcher(seed=0, initial_trials=3, candidates=100, local_rounds=1)
    assert searcher.set_search_properties("score", "max", param_space) is True
    configs = []
    for i in range(6):
        config = searcher.suggest(f"t{i}")
        configs.append(config)
        searcher.on_trial_complete(f"t{i}", {"score": -abs(math.log10(config["lr"]) + 2), "training_iteration": 1})
    for c in configs:
        assert set(c) == {"lr", "width", "act", "model", "epochs"} and c["epochs"] == 3
        assert type(c["width"]) is int and 8 <= c["width"] <= 512 and 1e-4 <= c["lr"] <= 1e-1
        assert type(c["model"]["depth"]) is int and 2 <= c["model"]["depth"] <= 5 and c["act"] in ("relu", "gelu")
    # a searcher given its space declines a param_space with distributions (Tune then says so), not constants
    assert SurrogateSearcher(SPACE).set_search_properties("score", "max", param_space) is False
    assert SurrogateSearcher(SPACE).set_search_properties("score", "max", {"epochs": 3}) is True
    with pytest.raises(ValueError, match="SurrogateSearcher has no search space"):
        SurrogateSearcher(metric="score", mode="max").suggest("t")


def nested_trainable(config: dict) -> None:
    from ray import tune

    tune.report({"score": -abs(math.log10(config["lr"]) + 2) - 0.1 * config["net"]["depth"]})


@pytest.mark.ray
def test_a_tune_param_space_is_searched_and_one_that_clashes_is_refused(ray_session, tmp_path) -> None:
    from ray import cloudpickle, tune

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    param_space = {"lr": tune.loguniform(1e-4, 1e-1), "net": {"depth": tune.randint(2, 6)}, "epochs": 2}
    grid = tune.Tuner(nested_trainable, param_space=param_space, tune_config=tune.TuneConfig(
        metric="score", mode="max", num_samples=4,
        search_alg=SurrogateSearcher(seed=0, initial_trials=2, candidates=50, local_rounds=1)),
        run_config=tune.RunConfig(name="param_space", storage_path=str(tmp_path), verbose=0)).fit()
    assert len(grid) == 4 and not grid.errors
    for result in grid:
        assert type(result.config["net"]["depth"]) is int and result.config["epochs"] == 2
    assert len({r.config["lr"] for r in grid}) == 4
    with pytest.raises(ValueError, match="the search algorithm was already instantiated with a search space"):
        tune.Tuner(nested_trainable, param_space=param_space, tune_config=tune.TuneConfig(
            metric="score", mode="max", num_samples=1, search_alg=SurrogateSearcher(SPACE)),
            run_config=tune.RunConfig(name="clash", storage_path=str(tmp_path), verbose=0)).fit()


def test_a_long_history_is_fitted_on_the_best_trials_and_a_sample_of_the_rest() -> None:
    """max_fit_rows bounds the rows the model sees: every one of the best half is in, the rest is a
    uniform sample that changes per suggestion, a failed trial counts as the worst, running trials join."""
    searcher = SurrogateSearcher(SPACE, "score", "min", seed=3, initial_trials=2, candidates=50, max_fit_rows=20)
    configs = [SPACE.sample(70, i) for i in range(60)]
    for i, config in enumerate(configs):
        searcher.add_evaluated_point(config, None if i == 0 else float(i), error=i == 0)  # trial 1 is the best
    fitted = [searcher._fitted(np.random.default_rng(k)) for k in range(2)]
    for rows in fitted:
        values = [o.value for o in rows]
        assert len(rows) == 20 and values[:10] == [float(v) for v in range(1, 11)]  # the best 10, in order
        assert all(v is None or v > 10 for v in values[10:])
    assert fitted[0][10:] != fitted[1][10:]  # a fresh sample per suggestion
    searcher.suggest("running")
    features, rows, done = searcher._training_frame(np.random.default_rng(0))
    assert done == 20 and len(rows) == len(features) == 21  # the running trial is added for the constant liar
    small = SurrogateSearcher(SPACE, "score", "min", max_fit_rows=100)
    small.add_evaluated_point(configs[1], 1.0)
    assert small._fitted(np.random.default_rng(0)) == small.observations  # under the cap: all of them
