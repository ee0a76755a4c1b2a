"""The built-in searchers, registered like any third-party searcher plugin.

Each factory takes the ``ecgsearch.SearchProblem`` the engine poses and the options of ``search:``:

- ``random``: feasible random candidates (the default);
- ``grid``: every combination of a space of finite choices, in order;
- ``surrogate``: model-based search steered by a surrogate model (``ecgsearch.SurrogateSearcher``);
- ``optuna``: Optuna's samplers (TPE by default, NSGA-II / multi-objective TPE for ``objectives``)
  through Ray Tune's Optuna integration, an optional extra (``pip install 'ecgsearch[optuna]'``).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from ecgsearch import SearcherInfo, bool_param, float_param, hookimpl, int_param, str_param
from ecgsearch.infos import ParamSpec

if TYPE_CHECKING:
    from ecgsearch import GridSearcher, RandomSearcher, SearchProblem, SurrogateSearcher

SURROGATE_PARAMS = {
    "surrogate": str_param(registry="surrogates", doc="the performance model (a surrogate plugin)"),
    "surrogate_params": ParamSpec("mapping", nullable=True, options_of="surrogate",
                                  doc="options of the surrogate (`ecgsearch plugins --params --kind surrogates`)"),
    "initial_trials": int_param(1, 1_000_000, doc="trials of the space-filling design before the model"),
    "initial_design": str_param("sobol", "random", doc="scrambled Sobol points or random draws"),
    "acquisition": str_param("ei", "ucb", doc="expected improvement or upper confidence bound"),
    "candidates": int_param(1, 10_000_000, doc="candidates scored per suggestion"),
    "local_fraction": float_param(0, 1, doc="share of candidates drawn around the best trials"),
    "kappa": float_param(0, 1_000, doc="UCB's exploration weight"),
    "xi": float_param(0, 1_000, doc="EI's improvement margin"),
    "max_new_costs": int_param(1, 1_000_000, doc="new architectures costed per suggestion at most"),
    "local_rounds": int_param(0, 100, doc="rounds of local search on the acquisition after the pool is scored"),
    "max_fit_rows": int_param(2, 100_000_000, doc="finished trials the model is fitted on at most (the best half "
                              "of them, a uniform sample of the rest)"),
    "transform": str_param("rank", "none", doc="fit the model on the normal scores of the values' ranks, or on "
                           "the values"),
    "objectives": ParamSpec("objectives", nullable=True, doc="multi-objective search: result columns to max or min"),
}
# SurrogateSearcher's defaults of those options, in its signature's order: declared here so that listing them
# (``ecgsearch plugins --params``) and checking a space file import no Ray Tune; a test holds them equal to
# the searcher's own signature (tests/test_cli_imports.py)
SURROGATE_DEFAULTS: dict[str, Any] = {
    "surrogate": "auto", "surrogate_params": None, "initial_trials": 5, "initial_design": "sobol",
    "acquisition": "ei", "candidates": 1000, "local_fraction": 0.5, "kappa": 1.96, "xi": 0.01, "objectives": None,
    "max_new_costs": 64, "local_rounds": 3, "transform": "rank", "max_fit_rows": 10_000,
}
OPTUNA_PARAMS = {
    "sampler": str_param("tpe", "random", "nsga2", "qmc", "gp", doc="the Optuna sampler"),
    "n_startup_trials": int_param(1, 1_000_000, doc="random trials before TPE models"),
    "multivariate": bool_param("TPE models the parameters jointly"),
    "objectives": ParamSpec("objectives", nullable=True, doc="multi-objective search: result columns to max or min"),
}


def build_random(problem: SearchProblem) -> RandomSearcher:
    from ecgsearch import RandomSearcher  # deferred: Ray Tune, imported when a search starts

    return RandomSearcher(problem.candidate, problem.trials, metric=problem.metric, mode=problem.mode)


def build_grid(problem: SearchProblem) -> GridSearcher:
    from ecgsearch import GridSearcher  # deferred: Ray Tune

    return GridSearcher(problem)


class SurrogateFactory:
    """Creates ``ecgsearch.SurrogateSearcher``; its options and their defaults (``SURROGATE_PARAMS``,
    ``SURROGATE_DEFAULTS``: the searcher's own) are shown as this factory's signature: the space parser checks
    names against it and ``ecgsearch plugins --params`` reads the defaults from it."""

    def __call__(self, problem: SearchProblem, **options: Any) -> SurrogateSearcher:
        from ecgsearch import SurrogateSearcher  # deferred: Ray Tune

        searcher = SurrogateSearcher(problem.space, metric=problem.metric, mode=problem.mode, trials=problem.trials,
                                     seed=problem.seed, costs=problem.costs, cost_inputs=problem.cost_inputs,
                                     annotate=problem.annotate, **options)
        for point in problem.warm_start:  # search.warm_start: earlier runs' trials inside this space
            searcher.add_evaluated_point({**point.config, "_costs": point.costs}, point.value)
        return searcher

    @property
    def __signature__(self) -> inspect.Signature:
        options = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
                   for name, default in SURROGATE_DEFAULTS.items()]
        return inspect.Signature([inspect.Parameter("problem", inspect.Parameter.POSITIONAL_OR_KEYWORD), *options])


build_surrogate = SurrogateFactory()


@hookimpl
def ecgsearch_register_searchers() -> list[SearcherInfo]:
    return [
        SearcherInfo(name="random", description="feasible random candidates", factory=build_random),
        SearcherInfo(name="grid", description="every combination of finite choices, in order", factory=build_grid),
        SearcherInfo(name="surrogate", description="model-based search steered by a tree-model surrogate",
                     factory=build_surrogate, model_based=True, params=SURROGATE_PARAMS),
        SearcherInfo(name="optuna", description="Optuna's TPE (or NSGA-II, CMA-ES, ...) through Ray Tune",
                     factory="ecgsearch_plugins.optuna_searcher:build_optuna", model_based=True,
                     requires=("optuna",), install_hint="pip install 'ecgsearch[optuna]'", params=OPTUNA_PARAMS),
    ]
