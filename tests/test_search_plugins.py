"""Schedulers and searchers are plugins: every built-in one runs a real (tiny) Ray Tune search, their
options are checked before any trial, and a third-party scheduler registers like a built-in one."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from conftest import start_ray

from ecgsearch import hookimpl
from ecgsearch.engine import run_search
from ecgsearch.errors import SpaceError, UserError
from ecgsearch.plugins import BUILTIN_PLUGINS, get_registries
from ecgsearch.results import read_results
from ecgsearch.space import load_space

DATA = "data: {dataset: synthetic, records: 120, sampling_rate: 50, seconds: 4, leads: [I, II, V1, V5]}"
LR_SPACE = """
space:
  architecture: {logged_tiny: {}}
  optimizer: {sgd: {lr: {loguniform: [1.0e-4, 3.0e-1]}, momentum: 0.9}}
  batch_size: {choice: [16, 32]}
"""


def write_space(tmp_path, budget: str, search: str = "", space: str = LR_SPACE, name: str = "s", seed: int = 3):
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nseed: {seed}\n{DATA}\ntask: multilabel\nresources: {{cpu: 1, gpu: 0}}\n"
                    f"budget: {budget}\n{search}\n{space}")
    return load_space(path)


def file_error(tmp_path, budget: str, search: str = "", space: str = LR_SPACE) -> str:
    with pytest.raises(SpaceError) as info:
        write_space(tmp_path, budget, search, space)
    return str(info.value).replace(str(tmp_path / "s.yaml"), "s.yaml")


@pytest.mark.ray
def test_population_based_training_clones_better_trials_with_perturbed_rates(ray_session, tmp_path):
    spec = write_space(tmp_path, "{trials: 4, epochs: 4, max_concurrent: 4, scheduler: {name: pbt, "
                                 "perturbation_interval: 1, quantile_fraction: 0.5, resample_probability: 0.0}}")
    frame = read_results(run_search(spec, tmp_path / "out").out_dir)
    assert sorted(frame["trial_id"]) == ["t0000", "t0001", "t0002", "t0003"]  # each trial keeps its own id
    assert set(frame["status"]) == {"ok"} and (frame["epochs"] == 4).all()
    cloned = frame[frame["cloned_from"].notna()] if "cloned_from" in frame else frame.iloc[:0]
    assert len(cloned), "no trial continued a better trial's state"
    assert set(cloned["cloned_from"]) <= set(frame["trial_id"])
    assert (cloned["cloned_from"] != cloned["trial_id"]).all()
    # a cloned trial runs at its donor's rate times 0.8 or 1.2 (several exploits compound), inside the range
    drawn = {spec.space.sample(spec.seed, i)["optimizer.sgd.lr"] for i in range(4)}
    lrs = cloned["hp.optimizer.sgd.lr"]
    assert lrs.between(1.0e-4, 3.0e-1).all() and not set(lrs) <= drawn


# The options each built-in runs with below; one registered later without an entry runs with its defaults.
RUN_OPTIONS = {
    ("schedulers", "asha"): "{name: asha, grace_period: 1, reduction_factor: 2}",
    ("schedulers", "hyperband"): "{name: hyperband, reduction_factor: 2}",
    ("schedulers", "median_stopping"): "{name: median_stopping, grace_period: 1, min_samples_required: 2}",
    ("schedulers", "pbt"): "{name: pbt, perturbation_interval: 1, quantile_fraction: 0.5}",
    ("schedulers", "learning_curve"): "{name: learning_curve, grace_period: 1, top_k: 1, min_curves: 1}",
    ("searchers", "surrogate"): "{algorithm: surrogate, initial_trials: 2, candidates: 64}",
    ("searchers", "optuna"): "{algorithm: optuna, n_startup_trials: 2}",
}
GRID_SPACE = """
space:
  architecture: {logged_tiny: {}}
  optimizer: {sgd: {lr: {choice: [1.0e-3, 1.0e-2]}, momentum: 0.9}}
  batch_size: {choice: [16, 32]}
"""


def registered(kind: str) -> list[tuple[str, str]]:
    """Every built-in scheduler or searcher, as the registry lists them (``ecgsearch_plugins``)."""
    return [(kind, info.name) for info in getattr(get_registries(), kind) if info.plugin in BUILTIN_PLUGINS]


class CrashAfter:
    """A lifecycle plugin that kills the search (an exception in the driver) after ``rows`` trials ended;
    the test then stops the Ray cluster, as a killed driver takes its local cluster with it."""

    def __init__(self, rows: int) -> None:
        self.rows, self.seen = rows, 0

    @hookimpl
    def ecgsearch_trial_finished(self, trial_id, row):
        self.seen += 1
        if self.seen == self.rows:
            raise KeyboardInterrupt("the driver dies")


@pytest.mark.ray
@pytest.mark.parametrize("kind,name", registered("schedulers") + registered("searchers"))
def test_each_registered_scheduler_and_searcher_runs_and_resumes_a_real_search(ray_session, tmp_path, kind, name):
    """A real Ray Tune search with each built-in, killed after two trials ended and resumed: every trial ends
    once, with one row, and the resumed search runs no more trials than the budget."""
    info = getattr(get_registries(), kind).get(name)
    if not info.available()[0]:
        pytest.skip(f"{kind[:-1]} {name} {info.available()[1]}; the README's test install has it")
    options = RUN_OPTIONS.get((kind, name), f"{{name: {name}}}" if kind == "schedulers" else f"{{algorithm: {name}}}")
    budget = "{trials: 4, epochs: 2, max_concurrent: 2" + (f", scheduler: {options}}}" if kind == "schedulers" else "}")
    search = f"search: {options}" if kind == "searchers" else ""
    spec = write_space(tmp_path, budget, search, GRID_SPACE if name == "grid" else LR_SPACE)
    crash = CrashAfter(2)
    get_registries().manager.register(crash)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_search(spec, tmp_path / "out")
    finally:
        get_registries().manager.unregister(crash)
        ray_session.shutdown()  # the trials still running die with the driver's cluster
        start_ray()
    assert len(read_results(tmp_path / "out")) >= 2
    frame = read_results(run_search(spec, tmp_path / "out", resume=True).out_dir)
    assert sorted(frame["trial_id"]) == ["t0000", "t0001", "t0002", "t0003"]  # none lost, none twice
    assert set(frame["status"]) <= {"ok", "stopped"}
    assert (frame.loc[frame["status"] == "ok", "epochs"] == 2).all()
    assert (frame.loc[frame["status"] == "stopped", "epochs"] < 2).all()
    assert frame["hp.optimizer.sgd.lr"].between(1.0e-4, 3.0e-1).all() and (frame["cost.flops"] > 0).all()
    assert not (tmp_path / "out" / "budget.json").exists()  # no time or GPU-hour budget: no account kept


def test_a_resumed_hyperband_does_not_wait_on_trials_that_had_ended():
    """Tune hands a resumed scheduler every restored trial; with finished ones in its bracket, Ray's HyperBand
    paused the resumed trial at the first rung forever (CI hung in the resume test above). The finished trial
    joins no bracket, so the resumed trial's rung completes and the bracket decides."""
    from ray.tune.experiment import Trial
    from ray.tune.schedulers import TrialScheduler

    from ecgsearch import SchedulerRun

    scheduler = get_registries().schedulers.get("hyperband").create(
        SchedulerRun(metric="objective", mode="max", max_t=2, space=None, seed=0))
    scheduler.set_search_properties("objective", "max")
    finished, resumed = Trial("tune_trainable", stub=True), Trial("tune_trainable", stub=True)
    finished.set_status(Trial.TERMINATED)  # restored as it was: ended before the kill
    scheduler.on_trial_add(None, finished)
    scheduler.on_trial_add(None, resumed)
    resumed.set_status(Trial.RUNNING)
    decision = scheduler.on_trial_result(None, resumed, {"objective": 0.5, "training_iteration": 2})
    assert decision != TrialScheduler.PAUSE  # before: PAUSE, waiting on the finished trial's next report


@pytest.mark.parametrize(("order", "first_decision"), [("most_trials_first", "PAUSE"),
                                                      ("full_length_first", "CONTINUE")])
def test_hyperband_runs_the_bracket_with_the_most_trials_first_unless_told_otherwise(order, first_decision):
    """HyperBand's and BOHB's order: with 10 epochs and eta 3 an iteration's first bracket starts 9 trials at
    1 epoch, so the first trial's first result pauses it at that rung. Ray's order (before: the only one) starts
    with 3 trials of all 10 epochs, where nothing pauses at epoch 1."""
    from ray.tune.experiment import Trial
    from ray.tune.schedulers import TrialScheduler

    from ecgsearch import SchedulerRun

    options = {} if order == "most_trials_first" else {"order": order}  # the default, then Ray's
    scheduler = get_registries().schedulers.get("hyperband").create(
        SchedulerRun(metric="objective", mode="max", max_t=10, space=None, seed=0), **options)
    scheduler.set_search_properties("objective", "max")
    trials = [Trial("tune_trainable", stub=True) for _ in range(3)]
    for trial in trials:
        scheduler.on_trial_add(None, trial)
        trial.set_status(Trial.RUNNING)
    decision = scheduler.on_trial_result(None, trials[0], {"objective": 0.5, "training_iteration": 1})
    assert decision == getattr(TrialScheduler, first_decision)


def test_hyperband_refuses_an_unknown_order(tmp_path):
    message = file_error(tmp_path, "{trials: 2, epochs: 3, scheduler: {name: hyperband, order: shortest_first}}")
    assert message == ("s.yaml:6: budget.scheduler.order: 'shortest_first' is not one of 'most_trials_first', "
                       "'full_length_first'")


class Controller:
    """What a scheduler asks of Tune's controller in these tests: the trials, and stopping one."""

    def __init__(self, *trials) -> None:
        self.trials, self.stopped = list(trials), []

    def get_trials(self) -> list:
        return self.trials

    def stop_trial(self, trial) -> None:
        from ray.tune.experiment import Trial

        self.stopped.append(trial)
        trial.set_status(Trial.TERMINATED)


def paused_bracket():
    """A HyperBand bracket of two trials (eta 2, 2 epochs) whose first trial reached the last epoch and was
    paused, waiting for the second: the scheduler, the controller, the paused trial and the other one."""
    from ray.tune.experiment import Trial
    from ray.tune.schedulers import TrialScheduler

    from ecgsearch import SchedulerRun

    scheduler = get_registries().schedulers.get("hyperband").create(
        SchedulerRun(metric="objective", mode="max", max_t=2, space=None, seed=0), reduction_factor=2)
    scheduler.set_search_properties("objective", "max")
    paused, other = Trial("tune_trainable", stub=True), Trial("tune_trainable", stub=True)
    controller = Controller(paused, other)
    for trial in (paused, other):
        scheduler.on_trial_add(controller, trial)
        trial.set_status(Trial.RUNNING)
    assert scheduler.on_trial_result(controller, paused, {"objective": 0.6, "training_iteration": 2}) == \
        TrialScheduler.PAUSE
    paused.set_status(Trial.PAUSED)
    return scheduler, controller, paused, other


def test_hyperband_stops_the_paused_trials_when_its_bracket_ends_with_a_completed_trial():
    """The second trial's last result arrives with its end (``on_trial_complete``). Ray then skipped the
    bracket (already finished) and the paused trial waited forever (CI hung); now it is stopped, as when the
    bracket ends through a result."""
    scheduler, controller, paused, other = paused_bracket()
    scheduler.on_trial_complete(controller, other, {"objective": 0.5, "training_iteration": 2, "done": True})
    assert controller.stopped == [paused]  # before: [], and the search waited on the paused trial


def test_hyperband_settles_a_bracket_that_waits_on_a_trial_that_ended_without_telling_it():
    """Whatever lost a bracket member's last report, when nothing runs or waits to start the brackets are
    settled: the ended member is dropped, the paused trial at the bracket's last rung is stopped."""
    from ray.tune.experiment import Trial

    scheduler, controller, paused, other = paused_bracket()
    other.set_status(Trial.TERMINATED)  # its end never reached the scheduler
    assert scheduler.choose_trial_to_run(controller) is None
    assert controller.stopped == [paused]  # before: nothing, and Tune waited on the paused trial forever


def test_every_built_in_scheduler_and_searcher_is_in_the_generated_tests():
    names = {n for _, n in registered("schedulers") + registered("searchers")}
    assert {"fifo", "asha", "hyperband", "median_stopping", "learning_curve", "pbt", "random", "grid", "surrogate",
            "optuna"} <= names


@pytest.mark.ray
def test_grid_search_enumerates_every_combination_once(ray_session, tmp_path):
    spec = write_space(tmp_path, "{trials: 4, epochs: 1, max_concurrent: 2}", "search: {algorithm: grid}", """
space:
  architecture: {logged_tiny: {}}
  optimizer: {sgd: {lr: {choice: [0.01, 0.1]}}}
  batch_size: {choice: [16, 32]}
""")
    frame = read_results(run_search(spec, tmp_path / "out").out_dir)
    pairs = sorted(zip(frame["hp.optimizer.sgd.lr"], frame["hp.batch_size"]))
    assert pairs == [(0.01, 16), (0.01, 32), (0.1, 16), (0.1, 32)]


@pytest.mark.ray
def test_optuna_proposes_only_feasible_configurations(ray_session, tmp_path):
    if importlib.util.find_spec("optuna") is None:
        pytest.skip("optuna is not installed (pip install 'ecgsearch[optuna]'); the README's test install has it")
    spec = write_space(tmp_path, "{trials: 3, epochs: 1, max_concurrent: 1}",
                       "search: {algorithm: optuna, n_startup_trials: 1}\nconstraints: {max_params: 2000}", """
space:
  architecture:
    logged_tiny: {}
    resnet: {depth: 8, channels: 16, kernel: 5}
  optimizer: {adamw: {lr: {loguniform: [1.0e-4, 1.0e-2]}}}
""")
    frame = read_results(run_search(spec, tmp_path / "out").out_dir)
    assert len(frame) == 3 and set(frame["architecture"]) == {"logged_tiny"}  # the resnet breaks max_params
    assert (frame["cost.params"] <= 2000).all()


def test_a_scheduler_option_is_checked_before_any_trial(tmp_path):
    message = file_error(tmp_path, "{trials: 2, epochs: 3, scheduler: {name: asha, grace_periods: 2}}")
    assert message == ("s.yaml:6: budget.scheduler.grace_periods: 'grace_periods' is not a parameter of scheduler "
                       "'asha' (allowed: grace_period, reduction_factor, brackets); did you mean 'grace_period'?")
    message = file_error(tmp_path, "{trials: 2, epochs: 3, scheduler: {name: pbt, quantile_fraction: 0.9}}")
    assert message == "s.yaml:6: budget.scheduler.quantile_fraction: 0.9 is not a number in (0, 0.5]"
    message = file_error(tmp_path, "{trials: 2, epochs: 3, scheduler: {name: asha, grace_period: 4}}")
    assert message == "s.yaml:6: budget.scheduler.grace_period: 4 is not an integer between 1 and budget.epochs = 3"
    message = file_error(tmp_path, "{trials: 2, epochs: 3, scheduler: {grace_period: 2}}")
    assert message == "s.yaml:6: budget.scheduler.name: the required key is missing"
    message = file_error(tmp_path, "{trials: 2, epochs: 3, scheduler: fifo, grace_period: 2}")
    assert message == ("s.yaml:6: budget.grace_period: scheduler 'fifo' has no option grace_period; remove it or "
                       "choose a scheduler that takes it (asha)")


def test_a_searcher_option_is_checked_before_any_trial(tmp_path):
    budget = "{trials: 2, epochs: 1}"
    assert file_error(tmp_path, budget, "search: {algorithm: surrogate, acquisition: pi}") == (
        "s.yaml:7: search.acquisition: 'pi' is not one of 'ei', 'ucb'")
    assert file_error(tmp_path, budget, "search: {algorithm: surrogate, surrogate: forest}") == (
        "s.yaml:7: search.surrogate: 'forest' is not a registered surrogate (allowed: auto, gaussian_process, "
        "gradient_boosting, random_forest, xgboost); did you mean 'random_forest'?")
    assert file_error(tmp_path, budget, "search: {algorithm: random, acquisition: ucb}") == (
        "s.yaml:7: search.acquisition: the random search takes no options; set search.algorithm: surrogate to use "
        "this one, or remove it")
    assert file_error(tmp_path, budget, "search: {algorithm: surrogate, objectives: {macro_auroc: max}}") == (
        "s.yaml:7: search.objectives: {'macro_auroc': 'max'} is not a mapping of at least two objectives to max "
        "or min; multi-objective search needs e.g. {macro_auroc: max, cost.flops: min}")
    assert file_error(tmp_path, "{trials: 2, epochs: 3, scheduler: pbt}", "search: {algorithm: surrogate}") == (
        "s.yaml:7: search.algorithm: the surrogate search learns from finished trials, and scheduler 'pbt' changes "
        "their hyperparameters while they train; use search.algorithm: random or grid with it, or another scheduler")
    assert file_error(tmp_path, budget, "search: {algorithm: grdi}").startswith(
        "s.yaml:7: search.algorithm: 'grdi' is not a registered searcher (allowed: grid, optuna, random, surrogate)")


@pytest.mark.ray
def test_an_option_the_declaration_cannot_judge_is_refused_when_the_search_is_built(ray_session, tmp_path):
    spec = write_space(tmp_path, "{trials: 2, epochs: 3, scheduler: {name: pbt, perturbation_interval: 3}}")
    with pytest.raises(UserError, match=r"budget\.scheduler: pbt: perturbation_interval=3 is not below the 3 "
                                        r"epochs of a trial"):
        run_search(spec, tmp_path / "out")
    assert not (tmp_path / "out" / "results.parquet").exists()
    spec = write_space(tmp_path, "{trials: 2, epochs: 1}", "search: {algorithm: grid}")
    with pytest.raises(UserError, match=r"search: .*grid"):
        run_search(spec, tmp_path / "out2")


def test_a_missing_optional_package_is_named_with_its_install_command(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "optuna" else real(name, *a))
    assert file_error(tmp_path, "{trials: 2, epochs: 1}", "search: {algorithm: optuna}") == (
        "s.yaml:7: search.algorithm: searcher 'optuna' needs the Python package 'optuna' (pip install "
        "'ecgsearch[optuna]')")


PLUGIN_DOC = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"


def doc_example(hook: str) -> str:
    """The Python example under ``### <hook>`` in docs/plugins.md."""
    section = PLUGIN_DOC.read_text(encoding="utf-8").split(f"\n### {hook}\n", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.ray
def test_the_documented_third_party_scheduler_and_searcher_run_a_search(ray_session, tmp_path, monkeypatch):
    if importlib.util.find_spec("optuna") is None:
        pytest.skip("optuna is not installed (pip install 'ecgsearch[optuna]'); the README's test install has it")
    (tmp_path / "my_scheduler.py").write_text(doc_example("ecgsearch_register_schedulers"))
    (tmp_path / "my_searcher.py").write_text(doc_example("ecgsearch_register_searchers"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("ECGSEARCH_PLUGINS", ",".join(filter(None, [os.environ.get("ECGSEARCH_PLUGINS"),
                                                                    "my_scheduler", "my_searcher"])))
    get_registries.cache_clear()
    try:
        regs = get_registries()
        assert "my_median" in regs.schedulers.names() and "flat_tpe" in regs.searchers.names()
        with pytest.raises(SpaceError, match=r"budget\.scheduler\.grace_period: 0 is not an integer in \[1, 1000\]"):
            write_space(tmp_path, "{trials: 3, epochs: 2, scheduler: {name: my_median, grace_period: 0}}")
        spec = write_space(tmp_path, "{trials: 3, epochs: 2, max_concurrent: 1, scheduler: {name: my_median, "
                                     "grace_period: 1}}", "search: {algorithm: flat_tpe, n_startup_trials: 2}")
        frame = read_results(run_search(spec, tmp_path / "out").out_dir)
        assert sorted(frame["trial_id"]) == ["t0000", "t0001", "t0002"]
        assert set(frame["status"]) <= {"ok", "stopped"} and frame["hp.optimizer.sgd.lr"].between(1e-4, 0.3).all()
    finally:
        for module in ("my_scheduler", "my_searcher"):
            sys.modules.pop(module, None)
        get_registries.cache_clear()


@pytest.mark.parametrize("order", ["most_trials_first", "full_length_first"])
def test_hyperband_declares_the_size_of_its_largest_halving_bracket(order):
    """``paused_together`` (what ``max_concurrent`` is checked against) equals the most trials a bracket that
    halves holds in the scheduler itself, for many epochs and etas."""
    from ray.tune.experiment import Trial

    from ecgsearch import SchedulerRun

    info = get_registries().schedulers.get("hyperband")
    for epochs, eta in [(2, 2), (2, 3), (9, 3), (10, 3), (27, 3), (52, 3), (49, 7), (100, 4), (729, 3)]:
        scheduler = info.create(SchedulerRun(metric="objective", mode="max", max_t=epochs, space=None, seed=0),
                                reduction_factor=eta, order=order)
        scheduler.set_search_properties("objective", "max")
        for _ in range(400):
            scheduler.on_trial_add(None, Trial("tune_trainable", stub=True))
        halving = [b._n0 for band in scheduler._hyperbands for b in band if b is not None and b._halves > 0]
        assert info.paused_together(epochs, reduction_factor=eta) == max(halving, default=1), (epochs, eta)


def test_max_concurrent_below_a_hyperband_bracket_is_refused(tmp_path):
    """A concurrency limit counts paused trials: with max_concurrent 2 and a first bracket of 9 trials, Ray's
    HyperBand judged each rung among the 2 trials let in, and 11 of 12 trials ran all 9 epochs (before: the
    file validated)."""
    message = file_error(tmp_path, "{trials: 12, epochs: 9, max_concurrent: 2, scheduler: hyperband}")
    assert message == ("s.yaml:6: budget.max_concurrent: 2 is fewer than the 9 trials scheduler 'hyperband' pauses "
                       "together at 9 epochs, and paused trials count against it, so they would be judged only "
                       "among the trials let in at once; remove max_concurrent (the trials' resources then limit "
                       "how many run, and paused ones free theirs), set it to 9 or more, or use scheduler asha")
    write_space(tmp_path, "{trials: 12, epochs: 9, max_concurrent: 9, scheduler: hyperband}")  # the whole bracket
    write_space(tmp_path, "{trials: 12, epochs: 9, max_concurrent: 2, scheduler: asha}")  # ASHA pauses nothing
