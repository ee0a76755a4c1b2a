"""Optuna's samplers as an ecgsearch searcher (``search: {algorithm: optuna}``), through Ray Tune's
``OptunaSearch`` (``pip install 'ecgsearch[optuna]'``).

The space is given to Optuna define-by-run, so conditional parameters stay conditional: the options of
each choice are asked first, then only the parameters of the chosen options. Each ecgsearch
distribution maps to the Optuna distribution with the same support:

- ``choice``/``grid`` -> ``suggest_categorical`` (over the values' positions when a value is a list);
- ``uniform``/``loguniform`` -> ``suggest_float`` (``log=True``), ``quniform`` -> ``suggest_float(step=q)``;
- ``randint`` -> ``suggest_int``, ``qrandint`` -> ``suggest_int(step=q)``;
- ``qloguniform`` -> ``suggest_float(log=True)`` rounded to a multiple of ``q`` inside the bounds;
- a fixed value is returned as a constant.

Constraints, the trial ids and costs come from ``ecgsearch.ConstrainedSearcher``: a suggestion that
breaks a constraint is told the worst value and Optuna is asked again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: listing the plugin or checking a space file imports no Ray Tune
    from ecgsearch import ConstrainedSearcher, SearchProblem, WarmPoint
    from ecgsearch.space import Space


@dataclass(frozen=True)
class DefineByRun:
    """``trial -> constants``: asks Optuna's trial for every active parameter of ``space``."""

    space: Space

    def __call__(self, trial: Any) -> dict[str, Any]:
        config: dict[str, Any] = {key: trial.suggest_categorical(key, list(options))
                                  for key, options in self.space.choices.items()}
        constants: dict[str, Any] = {}
        for param in self.space.parameters:
            if param.condition is not None and config.get(param.condition[0]) != param.condition[1]:
                continue
            if param.dist.name == "fixed":
                constants[param.name] = param.dist.value
            else:
                config[param.name] = suggest(trial, param.name, param.dist)
        return {**constants, **_lists(self.space, config)}


def suggest(trial: Any, name: str, dist: Any) -> Any:
    """One value of ``dist`` from Optuna's ``trial`` (see the module docstring for the mapping)."""
    if hasattr(dist, "values"):  # choice, grid
        values = list(dist.values)
        if all(isinstance(v, (str, int, float, bool)) or v is None for v in values):
            return trial.suggest_categorical(name, values)
        return trial.suggest_categorical(f"{name}#", list(range(len(values))))  # lists: by position
    if not hasattr(dist, "bounds"):
        raise ValueError(f"{name}: the optuna searcher cannot search a {dist.describe()}")
    low, high = dist.bounds()
    if dist.integer:
        return trial.suggest_int(name, int(low), int(high), step=int(dist.q or 1), log=dist.log and dist.q is None)
    if dist.q is None:
        return trial.suggest_float(name, float(low), float(high), log=dist.log)
    if not dist.log:
        return trial.suggest_float(name, float(low), float(high), step=float(dist.q))
    value = trial.suggest_float(name, float(low), float(high), log=True)
    return min(max(round(value / dist.q) * dist.q, low), high)


def _lists(space: Space, config: dict[str, Any]) -> dict[str, Any]:
    """Values of list choices asked by position (``name#``) become the lists themselves."""
    by_name = {p.name: p.dist for p in space.parameters}
    return {key.rstrip("#"): by_name[key.rstrip("#")].values[value] if key.endswith("#") else value
            for key, value in config.items()}


def make_sampler(name: str, seed: int, n_startup_trials: int, multivariate: bool) -> Any:
    import optuna  # deferred: an optional extra

    samplers = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials,
                                                  multivariate=multivariate),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
        "qmc": lambda: optuna.samplers.QMCSampler(seed=seed, scramble=True),
        "gp": lambda: optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_startup_trials),
    }
    return samplers[name]()


def build_optuna(problem: SearchProblem, *, sampler: str = "tpe", n_startup_trials: int = 10,
                 multivariate: bool = False, objectives: dict[str, str] | None = None) -> ConstrainedSearcher:
    """Ray Tune's ``OptunaSearch`` over ``problem.space`` (define-by-run), made feasible and annotated.

    With ``objectives`` (``{"val.macro_auroc": "max", "cost.flops": "min"}``) Optuna searches for their
    Pareto front (TPE and NSGA-II are multi-objective); otherwise it optimises ``problem.metric``."""
    from ray.tune.search.optuna import OptunaSearch  # deferred: imports optuna

    from ecgsearch import ConstrainedSearcher  # deferred: Ray Tune

    if problem.space.grid_size() > 1:
        raise ValueError("the optuna searcher does not enumerate grid values; write them as choice, or use "
                         "algorithm: grid")
    metric: Any = list(objectives) if objectives else problem.metric
    mode: Any = list(objectives.values()) if objectives else problem.mode
    define = DefineByRun(problem.space)
    inner = OptunaSearch(space=define, metric=metric, mode=mode,
                         sampler=make_sampler(sampler, problem.seed, n_startup_trials, multivariate))
    for point in problem.warm_start:  # search.warm_start: earlier runs' trials inside this space
        add_earlier(inner, define, point, list(objectives) if objectives else [problem.metric])
    return ConstrainedSearcher(inner, problem)


def add_earlier(inner: Any, define: DefineByRun, point: WarmPoint, keys: list[str]) -> None:
    """Tell Optuna's study about a trial run elsewhere. Ray Tune's ``add_evaluated_point`` refuses a
    define-by-run space, so the point's distributions come from running the space on an Optuna
    ``FixedTrial`` of its values, and the finished trial is added to the searcher's study directly. A
    point without a value for every objective is skipped."""
    import optuna  # deferred: an optional extra

    known = {**point.metrics, **point.costs}
    values = [point.value] if len(keys) == 1 else [known.get(key) for key in keys]
    if None in values:
        return
    trial = optuna.trial.FixedTrial(optuna_params(define.space, point.config))
    define(trial)
    inner._ot_study.add_trial(optuna.trial.create_trial(  # the study Ray Tune's OptunaSearch asks
        params=trial.params, distributions=trial.distributions, values=values))


def optuna_params(space: Space, config: dict[str, Any]) -> dict[str, Any]:
    """A configuration under the names ``DefineByRun`` asks Optuna for (list choices by position)."""
    by_name = {p.name: p.dist for p in space.parameters}
    out = {}
    for key, value in config.items():
        values = getattr(by_name.get(key), "values", None)
        if values is not None and isinstance(value, list):
            out[f"{key}#"] = [i for i, v in enumerate(values) if v == value][0]
        else:
            out[key] = value
    return out
