"""The searchers compared on the public benchmarks, each driven for ``budget`` evaluations of a problem.

Every runner takes a ``YahpoProblem``, a seed and a budget and returns the values of the evaluated
configurations in order (the problem's own units). All are driven through their ask/tell interfaces,
one evaluation at a time, with their defaults:

- ``surrogate``: ecgsearch's ``SurrogateSearcher`` on the problem's plain space definition (its Ray
  Tune ``Searcher`` API: ``suggest`` / ``on_trial_complete``); options can be overridden for tuning;
- ``random``: configurations drawn uniformly (log-uniformly where the scale is log);
- ``tpe``: Optuna's ``TPESampler`` with its defaults (10 random start-up trials, independent sampling),
  conditional hyperparameters asked define-by-run;
- ``smac``: SMAC3's ``HyperparameterOptimizationFacade`` (random forest, log-transformed EI, local and
  random search over the acquisition, Sobol initial design) with its defaults.
"""

from __future__ import annotations

import logging
import tempfile
from typing import Any, Callable, Mapping

import numpy as np
from yahpo import YahpoProblem

Runner = Callable[[YahpoProblem, int, int], list[float]]


def run_surrogate(problem: YahpoProblem, seed: int, budget: int,
                  options: Mapping[str, Any] | None = None) -> list[float]:
    from ecgsearch.search import SurrogateSearcher

    space = problem.search_space()
    try:
        searcher = SurrogateSearcher(space, "score", problem.scenario.mode, seed=seed, trials=budget,
                                     **dict(options or {}))
    except (TypeError, ValueError, AttributeError):  # an ecgsearch without plain spaces (the code before)
        searcher = SurrogateSearcher(_legacy_space(space), "score", problem.scenario.mode, seed=seed, trials=budget,
                                     **dict(options or {}))
    values: list[float] = []
    for i in range(budget):
        config = searcher.suggest(f"t{i}")
        value = float(problem.evaluate([problem.plain(config)])[0])
        values.append(value)
        searcher.on_trial_complete(f"t{i}", {"score": value, "training_iteration": 1})
    return values


def _legacy_space(definition: Mapping[str, Any]) -> Any:
    """The plain definition as a ``Space`` built by hand (for ecgsearch before ``plain_space``; log
    integers become ``qloguniform`` with q = 1, rounded by the problem)."""
    from ecgsearch.space import Param, Space, make_distribution

    def dist(value: Mapping[str, Any]) -> Any:
        (name, args), = value.items()
        if name == "lograndint":
            return make_distribution("qloguniform", [args[0], args[1], 1])
        return make_distribution(name, args)

    params, choices = [], {}
    for key, value in definition.items():
        (first, body), = list(value.items())[:1] or [(None, None)]
        if isinstance(body, Mapping):  # a conditional choice
            choices[key] = tuple(value)
            for option, sub in value.items():
                params += [Param(f"{key}.{option}.{n}", dist(v), (key, option)) for n, v in sub.items()]
        else:
            params.append(Param(key, dist(value)))
    return Space(parameters=tuple(params), choices=choices)


def run_random(problem: YahpoProblem, seed: int, budget: int) -> list[float]:
    return [float(v) for v in problem.evaluate(problem.random_configs(budget, seed=100_003 + seed))]


def run_tpe(problem: YahpoProblem, seed: int, budget: int) -> list[float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if problem.scenario.mode == "max" else "minimize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    parents_first = sorted(problem.hyperparameters, key=lambda h: h.parent is not None)
    values = []
    for _ in range(budget):
        trial = study.ask()
        config: dict[str, Any] = {}
        for h in parents_first:
            if h.parent is not None and str(config.get(h.parent)) not in h.when:
                continue
            if h.kind == "categorical":
                config[h.name] = trial.suggest_categorical(h.name, list(h.choices))
            elif h.kind == "uniform_int":
                config[h.name] = trial.suggest_int(h.name, int(h.lower), int(h.upper), log=h.log)
            else:
                config[h.name] = trial.suggest_float(h.name, h.lower, h.upper, log=h.log)
        value = float(problem.evaluate([config])[0])
        study.tell(trial, value)
        values.append(value)
    return values


def _configspace(problem: YahpoProblem, seed: int) -> Any:
    from ConfigSpace import Categorical, ConfigurationSpace, EqualsCondition, Float, InCondition, Integer

    space = ConfigurationSpace(seed=seed)
    made = {}
    for h in problem.hyperparameters:
        if h.kind == "categorical":
            made[h.name] = Categorical(h.name, list(h.choices))
        elif h.kind == "uniform_int":
            made[h.name] = Integer(h.name, (int(h.lower), int(h.upper)), log=h.log)
        else:
            made[h.name] = Float(h.name, (float(h.lower), float(h.upper)), log=h.log)
    space.add(list(made.values()))
    for h in problem.hyperparameters:
        if h.parent is not None:
            condition = (EqualsCondition(made[h.name], made[h.parent], h.when[0]) if len(h.when) == 1
                         else InCondition(made[h.name], made[h.parent], list(h.when)))
            space.add(condition)
    return space


def run_smac(problem: YahpoProblem, seed: int, budget: int) -> list[float]:
    from smac import HyperparameterOptimizationFacade, Scenario
    from smac.runhistory.dataclasses import TrialValue

    logging.getLogger("smac").setLevel(logging.ERROR)
    sign = 1.0 if problem.scenario.mode == "max" else -1.0
    with tempfile.TemporaryDirectory(prefix="smac-") as out:
        scenario = Scenario(_configspace(problem, seed), deterministic=True, n_trials=budget, seed=seed,
                            output_directory=out)
        smac = HyperparameterOptimizationFacade(scenario, lambda config, seed=0: 0.0, overwrite=True,
                                                logging_level=40)
        values = []
        for _ in range(budget):
            info = smac.ask()
            value = float(problem.evaluate([dict(info.config)])[0])
            smac.tell(info, TrialValue(cost=-sign * value))
            values.append(value)
    return values


RUNNERS: dict[str, Runner] = {"surrogate": run_surrogate, "random": run_random, "tpe": run_tpe, "smac": run_smac}


def signed(values: list[float], mode: str) -> np.ndarray:
    return np.asarray(values, dtype=float) * (1.0 if mode == "max" else -1.0)
