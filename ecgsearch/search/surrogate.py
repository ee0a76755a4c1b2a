"""SurrogateSearcher: a Ray Tune ``Searcher`` steered by a surrogate model of the metric (``surrogate``: a
surrogate plugin; ``auto``, the default, is a Gaussian process on up to 200 rows and a random forest beyond).

The first ``initial_trials`` suggestions are a space-filling design (scrambled Sobol points, or random
draws). After that every suggestion fits the surrogate on the trials so far (hyperparameters + cost
features, ``ecgsearch.search.features``; the values as normal scores of their ranks, ``transform``) and
maximises the acquisition (expected improvement or an upper confidence bound) over candidates:

1. a pool of ``candidates``: random points of the space, and (``local_fraction`` of them) neighbours of
   the best trials at several step sizes (a few coordinates moved at a time);
2. ``local_rounds`` rounds of local search: neighbours of the pool's best-scoring candidates, at
   smaller and smaller steps, are scored and join the pool.

The candidate with the highest acquisition becomes the suggestion. Candidates whose costs break the
constraints are never proposed (``costs`` returns None for them), and a configuration is never proposed
twice. A parameter that several options of one choice have alike (a learning rate under two
optimizers) is one dimension and one feature (``ecgsearch.search.sampling.dimensions(shared=True)``).

How imperfect trials are used:

- failed trials (an error, no finite value) count as the worst value observed so far, so the model
  learns to avoid the region that fails (re-imputed at every fit, as the worst value changes);
- trials stopped early (ASHA) keep the best value they reported, and the number of iterations they
  ran is a feature (``epochs``); candidates are scored at the largest number observed, so a partly
  trained trial informs the model without being mistaken for a fully trained one;
- results at every budget (multi-fidelity, as BOHB uses every rung of HyperBand): once trials have ended
  at different numbers of iterations (a scheduler stopped some), each finished trial also contributes
  its best value so far at iterations 1, 2, 4, 8, ... below the one it ended at, so the model sees how
  values grow with the budget for good and bad trials alike (not only bad trials at low budgets);
  and a running trial that has reported (one paused at a HyperBand rung, say) contributes its best
  value so far at the iterations it has reached, besides its constant-liar row;
- trials still running are included at the median observed value ("constant liar"), so parallel
  suggestions spread out instead of piling onto one optimum.

A trial that reports results but never the metric is refused (``ValueError``) while no trial has
reported it, since a misspelt metric would otherwise leave the model with nothing to learn; later it
is counted as failed, with a warning.

Multi-objective mode (``objectives={"val.macro_auroc": "max", "cost.flops": "min"}``) aims at the
Pareto front: each suggestion draws random weights and maximises the augmented Chebyshev
scalarisation of the objectives (in place of the acquisition: the same pool and local search, with the
neighbourhoods of the trials best for the drawn weights), cost objectives taken exactly from the
candidate's costs and the others from a surrogate each, optimistically (mean + kappa x std).

The space is a parsed space file's ``Space``, a plain mapping of hyperparameters
(``ecgsearch.search.sampling.plain_space``: space-file distributions, Ray Tune domains, constants,
conditional choices), or, when none is given, the ``param_space`` Ray Tune hands over.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from ray.tune.search import Searcher
from scipy.stats import norm, qmc, rankdata

from ecgsearch.errors import UserError
from ecgsearch.search.acquisition import ACQUISITIONS, acquire, chebyshev, normalise
from ecgsearch.search.features import COST_PREFIX, FIDELITY, config_frame, feature_frame
from ecgsearch.search.sampling import (
    Dimension,
    dimensions,
    flatten,
    from_unit,
    is_space,
    neighbours,
    plain_space,
    row_configs,
    signatures,
    to_unit,
)
from ecgsearch.search.state import StatefulSearcher
from ecgsearch.search.surrogate_model import SurrogateModel
from ecgsearch.space.model import nest
from ecgsearch.space.search_options import INITIAL_DESIGNS as DESIGNS

if TYPE_CHECKING:
    from ecgsearch.space import Space

log = logging.getLogger(__name__)

FAILED_VALUE = 1e29  # reports at or beyond this magnitude are failure sentinels (ecgsearch's worst objective)
DESIGN_ATTEMPTS = 200
PARENTS = 5  # the best trials whose neighbourhoods are searched
SCALES = np.array([0.03, 0.07, 0.15, 0.3])  # neighbour step sizes in the unit cube (std of a Gaussian step)
TRANSFORMS = ("rank", "none")
# The searcher's own defaults for the built-in forest (the plugin's defaults serve explain and prune):
# fully grown trees on bootstrap samples, each split among half the features, so the trees disagree
# away from the data (chosen on the tuning scenarios of docs/benchmarks.md, reported on others).
FOREST_PARAMS: dict[str, Any] = {"max_features": 0.5}


def surrogate_options(surrogate: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The searcher's defaults for the forest (also inside ``auto``) under the user's ``options``; a nested
    mapping (``auto``'s ``forest``) is merged key by key, so setting one option keeps the others' defaults."""
    defaults: dict[str, Any] = {"random_forest": FOREST_PARAMS, "auto": {"forest": FOREST_PARAMS}}.get(surrogate, {})
    merged = dict(defaults)
    for name, value in dict(options or {}).items():
        base = defaults.get(name)
        merged[name] = {**base, **value} if isinstance(base, Mapping) and isinstance(value, Mapping) else value
    return merged


Costs = Callable[[dict[str, Any]], "Mapping[str, float] | None"]
Annotate = Callable[[int, dict[str, Any], Mapping[str, float]], dict[str, Any]]
Score = Callable[[pd.DataFrame], np.ndarray]  # candidates -> how good each is (larger better)


@dataclass
class Observation:
    """A finished (or stopped, or failed) trial as the surrogate sees it; values are as reported."""

    config: dict[str, Any]
    costs: dict[str, float]
    value: float | None  # the metric (None: failed)
    fidelity: int | None  # iterations it ran (None: unknown, counted as a full run)
    objectives: dict[str, float] = field(default_factory=dict)
    curve: list[tuple[int, float]] = field(default_factory=list)  # best value so far at iterations 1, 2, 4, ...


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and abs(number) < FAILED_VALUE else None


def _cost_scale(costs: np.ndarray, log_scale: bool) -> np.ndarray:
    """Costs as the multi-objective mode compares them: their logarithm where ``log_scale`` (NaN where not
    positive), else as they are."""
    if not log_scale:
        return costs
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(costs > 0, np.log(costs), np.nan)


def normal_scores(y: np.ndarray) -> np.ndarray:
    """Values replaced by the normal quantiles of their ranks (ties share a rank): the order is kept,
    outliers and skew are not, so a few very bad trials do not flatten the model where it matters."""
    if len(y) < 2:
        return np.zeros(len(y))
    return norm.ppf((rankdata(y) - 0.5) / len(y))


def budget_scores(y: np.ndarray, fidelity: np.ndarray, done: int, top: int) -> np.ndarray:
    """Normal scores of the values' ranks, ranked among the results at a similar budget when the finished
    rows span several (iterations in [1, 2), [2, 4), [4, 8), ... below ``top``, and ``top`` itself): a
    configuration's rank among the trials stopped after 2 epochs says as much about it as its rank among
    the full-length trials, while its raw value after 2 epochs would read as bad next to any of them.
    The rows after ``done`` (running trials, the constant liar) get the median score."""
    bucket = np.where(fidelity[:done] >= top, -1, np.floor(np.log2(np.maximum(fidelity[:done], 1))))
    if len(np.unique(bucket)) < 2:
        return normal_scores(y)
    scores = np.zeros(done)
    for b in np.unique(bucket):
        scores[bucket == b] = normal_scores(y[:done][bucket == b])
    return np.concatenate([scores, np.full(len(y) - done, float(np.median(scores)) if done else 0.0)])


class SurrogateSearcher(StatefulSearcher):
    """Model-based search over a space; see the module docstring.

    space: a parsed ``Space`` (``load_space(path).space``; a ``SearchSpec`` is accepted too), a plain
        mapping of hyperparameters (``plain_space``), or None to take the ``param_space`` Ray Tune hands
        over (``tune.Tuner(..., param_space={...})``).
    costs: ``config -> {"cost.flops": ..., ...}`` or None when the candidate breaks a constraint
        (None for no cost features); cost_inputs: the configuration keys (prefixes) the costs depend
        on, so each distinct architecture is costed once (None: every key); max_new_costs: at most this
        many not-yet-costed architectures are costed per suggestion (candidates beyond are skipped).
    annotate: ``(index, config, costs) -> config`` adds private keys (trial id, seed) to a suggestion.
    local_rounds: rounds of local search on the acquisition after the pool is scored (0: none).
    transform: ``rank`` fits the model on the normal scores of the values' ranks, ``none`` on the values.
    max_fit_rows: the model is fitted on at most this many finished trials: the best half of them by the
        metric and a uniform sample (seeded per suggestion) of the others, so a suggestion's cost stops
        growing with the history (running trials are added for the constant liar).
    """

    def __init__(self, space: Space | Mapping[str, Any] | None = None, metric: str | None = None,
                 mode: str | None = None, *, trials: int | None = None, seed: int = 0,
                 surrogate: str = "auto", surrogate_params: Mapping[str, Any] | None = None,
                 initial_trials: int = 5, initial_design: str = "sobol", acquisition: str = "ei",
                 candidates: int = 1000, local_fraction: float = 0.5, kappa: float = 1.96, xi: float = 0.01,
                 objectives: Mapping[str, str] | None = None, costs: Costs | None = None,
                 cost_inputs: Sequence[str] | None = None, max_new_costs: int = 64,
                 annotate: Annotate | None = None, local_rounds: int = 3, transform: str = "rank",
                 max_fit_rows: int = 10_000) -> None:
        super().__init__(metric=metric, mode=mode)
        if initial_design not in DESIGNS:
            raise ValueError(f"initial_design must be one of {DESIGNS}, got {initial_design!r}")
        if acquisition not in ACQUISITIONS:
            raise ValueError(f"acquisition must be one of {ACQUISITIONS}, got {acquisition!r}")
        if transform not in TRANSFORMS:
            raise ValueError(f"transform must be one of {TRANSFORMS}, got {transform!r}")
        if objectives is not None and (len(objectives) < 2 or set(objectives.values()) - {"max", "min"}):
            raise ValueError(f"objectives must map >= 2 result keys to 'max' or 'min', got {dict(objectives)!r}")
        self.trials = trials
        self.seed = seed
        self.surrogate = surrogate
        self.surrogate_params = surrogate_options(surrogate, surrogate_params)
        model = SurrogateModel(surrogate, seed, self.surrogate_params)  # an unknown surrogate fails now
        if surrogate_params:
            model.check()  # and so does an option value it refuses (the defaults are known to be good)
        self.initial_trials, self.initial_design = max(1, initial_trials), initial_design
        self.acquisition, self.candidates = acquisition, max(1, candidates)
        self.local_fraction, self.kappa, self.xi = local_fraction, kappa, xi
        self.local_rounds, self.transform = max(0, local_rounds), transform
        self.max_fit_rows = max(2, max_fit_rows)
        self.objectives = dict(objectives) if objectives else None
        self._costs, self._annotate = costs, annotate
        self.cost_inputs = tuple(cost_inputs) if cost_inputs is not None else None
        self.max_new_costs = max_new_costs
        self.space: Space | None = None
        self._nested = False  # suggestions go back as nested dicts (a nested Tune param_space)
        if space is not None:
            self._use_space(space if is_space(space) else plain_space(space))
        # state (get_state / set_state)
        self._next = 0
        self._design_next = 0
        self._live: dict[str, dict[str, Any]] = {}
        self._observations: list[Observation] = []
        self._seen: set[int] = set()
        self._cost_cache: dict[int, dict[str, float] | None] = {}
        self._metric_seen = False  # some trial has reported the metric

    def _use_space(self, space: Any) -> None:
        space = getattr(space, "space", space)  # a SearchSpec is accepted too
        self.space = space
        self._dims: list[Dimension] = dimensions(space, shared=True)  # the unit cube's axes
        self._params: list[Dimension] = dimensions(space)  # one per parameter (the results' columns)
        self._columns = [d.column for d in self._params]

    # --- Tune's interface ---------------------------------------------------------------------

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        """Take Tune's metric and mode unless given here, and Tune's ``param_space`` when the searcher
        has no space yet. A searcher that has a space declines a ``param_space`` with distributions in it
        (returns False, so Tune says that the space belongs to the searcher); constants are fine (Tune
        adds them to every trial's configuration)."""
        if self.space is not None and config and _has_domains(config):
            return False
        if self.space is None and config:
            flat = flatten(config, choices=False)
            self._nested = any("/" in key for key in flat)
            self._use_space(plain_space(config, choices=False))
        self._metric = self._metric or metric
        self._mode = self._mode or mode
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.space is None:
            raise ValueError("SurrogateSearcher has no search space: pass one to its constructor (a space file's "
                             "space or a mapping of hyperparameters) or give Ray Tune a param_space.")
        if not self._metric or self._mode not in ("max", "min"):
            raise ValueError("SurrogateSearcher needs the metric and mode (max or min) it optimises: pass them "
                             "to its constructor (Tune hands them over only to searchers given a param_space).")
        if self.trials is not None and self._next >= self.trials:
            return Searcher.FINISHED
        index = self._next
        enough = max(index, len(self._observations)) >= self.initial_trials  # warm starts skip the design
        modelled = enough and sum(o.value is not None for o in self._observations) >= 2
        row = self._propose(index) if modelled else self._design()
        config = row_configs(self.space, row)[0]
        costs = {k: float(v) for k, v in row.iloc[0].items() if k.startswith(COST_PREFIX) and pd.notna(v)}
        self._next += 1
        self._seen.add(int(signatures(row, self._columns)[0]))
        self._live[trial_id] = {"config": config, "costs": costs, "value": None, "fidelity": None, "last": {},
                                "reported": [], "curve": []}
        out = self._annotate(index, config, costs) if self._annotate else dict(config)
        return nest(out, sep="/") if self._nested else out  # a nested Tune param_space's keys

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        live = self._live.get(trial_id)
        if live is not None:
            self._update(live, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        live = self._live.pop(trial_id, None)
        if live is None:  # not suggested by this searcher object (e.g. a run resumed from scratch)
            config = flatten(dict((result or {}).get("config") or {}), choices=False)
            if not config:
                return
            live = {"config": {k: v for k, v in config.items() if not k.startswith("_")},
                    "costs": dict(config.get("_costs") or {}), "value": None, "fidelity": None, "last": {},
                    "reported": [], "curve": []}
        if result:
            self._update(live, result)
        if not error and live["value"] is None:
            self._check_metric(trial_id, live)
        value = None if error else live["value"]
        self._observations.append(Observation(live["config"], live["costs"], value, live["fidelity"],
                                              self._objective_values(live),
                                              [] if error else [tuple(p) for p in live.get("curve", [])]))

    def add_evaluated_point(self, parameters: dict, value: float, error: bool = False, pruned: bool = False,
                            intermediate_values: list[float] | None = None) -> None:
        """Warm-start from a trial run elsewhere (a previous run's results); ``_costs`` in ``parameters``
        is used when present, else the costs function when given."""
        if self.space is None:
            raise ValueError("SurrogateSearcher has no search space yet: pass one to its constructor before "
                             "adding evaluated points.")
        config = {k: v for k, v in flatten(parameters, choices=False).items() if not k.startswith("_")}
        costs = dict(parameters.get("_costs") or {})
        if not costs and self._costs is not None:
            frame = self._with_costs(config_frame([config], self.space).reindex(columns=self._columns), None)
            costs = {k: float(v) for k, v in frame.iloc[0].items() if k.startswith(COST_PREFIX)} if len(frame) else {}
        fidelity = len(intermediate_values) if pruned and intermediate_values else None
        finite = None if error else _finite(value)
        self._metric_seen = self._metric_seen or finite is not None
        self._observations.append(Observation(config, costs, finite, fidelity,
                                              curve=self._curve(intermediate_values or [])))
        self._seen.add(int(signatures(config_frame([config], self.space), self._columns)[0]))

    # --- state ---------------------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        return {"next": self._next, "design_next": self._design_next, "live": self._live,
                "observations": [asdict(o) for o in self._observations], "seen": sorted(self._seen),
                "cost_cache": self._cost_cache, "metric": self._metric, "mode": self._mode,
                "metric_seen": self._metric_seen}

    def set_state(self, state: dict[str, Any]) -> None:
        self._next, self._design_next = state["next"], state["design_next"]
        self._live = state["live"]
        self._observations = [Observation(**o) for o in state["observations"]]
        self._seen = set(state["seen"])
        self._cost_cache = state["cost_cache"]
        self._metric, self._mode = state["metric"], state["mode"]
        self._metric_seen = state.get("metric_seen", any(o.value is not None for o in self._observations))

    @property
    def observations(self) -> list[Observation]:
        return list(self._observations)

    # --- observations ---------------------------------------------------------------------------

    def _update(self, live: dict[str, Any], result: Mapping[str, Any]) -> None:
        """Keep the best metric value reported so far and the iterations run."""
        value = _finite(result.get(self._metric)) if self._metric else None
        if self._metric in result:
            self._metric_seen = True
        if value is not None and (live["value"] is None or self._sign() * (value - live["value"]) > 0):
            live["value"] = value
        iteration = result.get("training_iteration")
        if isinstance(iteration, (int, np.integer)):
            live["fidelity"] = int(iteration)
            if iteration > 0 and iteration & (iteration - 1) == 0 and live["value"] is not None:  # 1, 2, 4, ...
                curve = [p for p in live.get("curve", []) if p[0] != iteration]  # a resumed trial reports again
                live["curve"] = [*curve, (int(iteration), float(live["value"]))]
        live["last"] = {k: result[k] for k in (self.objectives or {}) if k in result}
        live.setdefault("reported", [])
        live["reported"] = sorted(set(live["reported"]) | {str(k) for k in result if not str(k).startswith("_")
                                                           and k not in ("config",)})

    def _curve(self, values: Sequence[Any]) -> list[tuple[int, float]]:
        """The best value so far at iterations 1, 2, 4, ... of a trial's reports (``values[i]`` at i + 1)."""
        best, curve = None, []
        for iteration, raw in enumerate(values, 1):
            value = _finite(raw)
            if value is not None and (best is None or self._sign() * (value - best) > 0):
                best = value
            if best is not None and iteration & (iteration - 1) == 0:
                curve.append((iteration, best))
        return curve

    def _check_metric(self, trial_id: str, live: Mapping[str, Any]) -> None:
        """A finished trial without the metric: refused while no trial has reported it, else a warning."""
        reported = [k for k in live.get("reported", []) if k not in TUNE_KEYS]
        if not reported:  # nothing reported at all: a trial that died quietly counts as failed
            return
        if not self._metric_seen:
            raise ValueError(f"SurrogateSearcher: trial {trial_id} finished without reporting the metric "
                             f"{self._metric!r} (it reported {', '.join(reported[:8])}); pass the metric the "
                             "trainable reports, or report it.")
        log.warning("trial %s finished without reporting the metric %r; it counts as failed", trial_id, self._metric)

    def _objective_values(self, live: Mapping[str, Any]) -> dict[str, float]:
        out = {}
        for key in self.objectives or {}:
            value = live["value"] if key == self._metric else _finite(live["last"].get(key))
            if value is not None:
                out[key] = value
        return out

    def _sign(self) -> float:
        return -1.0 if self._mode == "min" else 1.0

    # --- candidates -----------------------------------------------------------------------------

    def _cost_columns(self) -> list[str]:
        if self.cost_inputs is None:
            return self._columns
        return [d.column for d in self._params
                if any(d.name == p or d.name.startswith(p + ".") for p in self.cost_inputs)]

    def _with_costs(self, frame: pd.DataFrame, limit: int | None) -> pd.DataFrame:
        """The feasible rows with their ``cost.*`` columns; at most ``limit`` new architectures costed."""
        if self._costs is None or frame.empty:
            return frame
        keys = signatures(frame, self._cost_columns()).astype(np.int64)
        unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        new = 0
        for key, position in zip(unique.tolist(), first.tolist()):
            if key in self._cost_cache or (limit is not None and new >= limit):
                continue
            result = self._costs(row_configs(self.space, frame.iloc[[position]])[0])
            self._cost_cache[key] = None if result is None else {k: float(v) for k, v in result.items()
                                                                 if isinstance(v, (int, float))}
            new += 1
        known = [self._cost_cache.get(key) for key in unique.tolist()]
        keep = np.array([c is not None for c in known])[inverse]
        table = pd.DataFrame([c or {} for c in known])
        costs = table.iloc[inverse[keep]].set_axis(frame.index[keep])
        return pd.concat([frame[keep], costs], axis=1)

    def _frame(self, units: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        return from_unit(self.space, units, rng, dims=self._dims)

    def _design(self, allow_seen: bool = False) -> pd.DataFrame:
        """The next feasible, unseen point of the initial design (Sobol or random).

        A small discrete space can be used up: then a configuration already tried is proposed again
        (with a warning) rather than stopping the run.
        """
        for _ in range(DESIGN_ATTEMPTS):
            k = self._design_next
            self._design_next += 1
            row = self._with_costs(self._frame(self._unit(k)[None, :], np.random.default_rng(k)), None)
            if len(row) and (allow_seen or int(signatures(row, self._columns)[0]) not in self._seen):
                return row.reset_index(drop=True)
        if not allow_seen and self._seen:
            log.warning("no untried feasible configuration in %d draws: the space looks used up; "
                        "proposing one already tried", DESIGN_ATTEMPTS)
            return self._design(allow_seen=True)
        raise UserError(f"search: no configuration satisfied the constraints in {DESIGN_ATTEMPTS} draws of the "
                        "space; raise max_flops/max_params or narrow the space to smaller models.")

    def _unit(self, k: int) -> np.ndarray:
        d = max(len(self._dims), 1)
        if self.initial_design == "random":
            return np.random.default_rng([self.seed, k]).random(d)
        m = max(6, int(math.ceil(math.log2(k + 1))))
        if getattr(self, "_sobol_cache", (None, None))[0] != m:
            self._sobol_cache = (m, qmc.Sobol(d, scramble=True, seed=self.seed).random_base2(m))
        return self._sobol_cache[1][k]

    def _fresh(self, frame: pd.DataFrame, taken: set[int] | None = None) -> pd.DataFrame:
        """Feasible (costed), untried, distinct rows of ``frame``; ``taken`` collects their signatures."""
        frame = self._with_costs(frame, self.max_new_costs)
        if frame.empty:
            return frame
        sig = signatures(frame, self._columns)
        exclude = np.fromiter(self._seen | (taken or set()), np.uint64)
        fresh = ~pd.Series(sig).duplicated().to_numpy() & ~np.isin(sig, exclude)
        if taken is not None:
            taken.update(int(s) for s in sig[fresh])
        return frame[fresh].reset_index(drop=True)

    def _pool(self, index: int, rng: np.random.Generator, parents: pd.DataFrame,
              taken: set[int] | None = None) -> pd.DataFrame:
        """Random candidates plus neighbours of ``parents`` at several step sizes: feasible, costed,
        untried, distinct."""
        n_local = int(round(self.candidates * self.local_fraction)) if len(parents) else 0
        units = rng.random((self.candidates - n_local, len(self._dims)))
        if n_local:
            base = to_unit(self.space, parents, dims=self._dims)[rng.integers(0, len(parents), n_local)]
            units = np.vstack([units, neighbours(base, self._dims, rng, rng.choice(SCALES, n_local))])
        return self._fresh(self._frame(units, rng), taken)

    # --- the model ------------------------------------------------------------------------------

    def _fitted(self, rng: np.random.Generator) -> list[Observation]:
        """The finished trials the model is fitted on: all of them up to ``max_fit_rows``, else the best half
        by the metric (failed and unreported trials last) and a uniform sample of the rest, in history order."""
        kept = self._observations
        if len(kept) <= self.max_fit_rows:
            return list(kept)
        values = np.array([np.nan if o.value is None else self._sign() * o.value for o in kept], dtype=float)
        order = np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")
        best, rest = order[: self.max_fit_rows // 2], order[self.max_fit_rows // 2:]
        sample = rng.choice(rest, self.max_fit_rows - len(best), replace=False)
        return [kept[i] for i in np.sort(np.concatenate([best, sample]))]

    def _training_frame(self, rng: np.random.Generator) -> tuple[pd.DataFrame, list[Observation], int]:
        """Features of the fitted observations and of the running trials (the latter for the constant liar),
        those rows, and how many of them are finished (they come first)."""
        done = self._fitted(rng)
        done = done + self._lower_budgets(done)
        rows = done + [Observation(v["config"], v["costs"], None, None) for v in self._live.values()]
        frame = config_frame([{**o.config, "_costs": o.costs} for o in rows], self.space)
        top = max([o.fidelity for o in rows if o.fidelity is not None], default=1)
        frame[FIDELITY] = [o.fidelity if o.fidelity is not None else top for o in rows]
        return self._features(frame), rows, len(done)

    def _lower_budgets(self, done: list[Observation]) -> list[Observation]:
        """Results at lower budgets (see the module docstring): the fitted trials' best values at iterations
        1, 2, 4, ... below their last, once trials ended at different budgets, and the running trials'
        best values so far. Single-objective only (the objectives of a partial result are not kept)."""
        if self.objectives:
            return []
        rows: list[Observation] = []
        multi = len({o.fidelity for o in done if o.value is not None}) > 1
        for o in done:
            if multi and o.value is not None:
                rows += [Observation(o.config, o.costs, v, f) for f, v in o.curve
                         if o.fidelity is None or f < o.fidelity]
        for live in self._live.values():
            value, fidelity = live.get("value"), live.get("fidelity")
            if value is None or not fidelity:
                continue
            earlier = [(f, v) for f, v in live.get("curve", []) if f < fidelity] if multi else []
            rows += [Observation(live["config"], live["costs"], v, f) for f, v in [*earlier, (fidelity, value)]]
        return rows

    def _features(self, frame: pd.DataFrame) -> pd.DataFrame:
        return feature_frame(frame, self.space, fidelity=True, shared=True)

    def _targets(self, rows: list[Observation], done: int, key: str | None, sign: float) -> np.ndarray:
        """Signed values (larger better) of ``rows``, whose first ``done`` are finished: failed -> the worst
        observed, running -> the median."""
        raw = [(o.value if key is None else o.objectives.get(key)) for o in rows[:done]]
        values = np.array([np.nan if v is None else sign * v for v in raw], dtype=float)
        finite = values[np.isfinite(values)]
        worst = finite.min() if len(finite) else 0.0
        values = np.where(np.isfinite(values), values, worst)
        return np.concatenate([values, np.full(len(rows) - done, np.median(finite) if len(finite) else 0.0)])

    def _model(self, features: pd.DataFrame, y: np.ndarray) -> SurrogateModel:
        return SurrogateModel(self.surrogate, self.seed, self.surrogate_params).fit(features, y)

    def _propose(self, index: int) -> pd.DataFrame:
        rng = np.random.default_rng([self.seed, index, 1])
        features, rows, done = self._training_frame(rng)
        top = int(features[FIDELITY].max())
        if self.objectives:
            scores, observed = self._scalarised(features, rows, done, top, rng)
        else:
            scores, observed = self._acquisition(features, rows, done, top)
        order = np.argsort(-observed, kind="stable")[:PARENTS]
        parents = config_frame([rows[i].config for i in order], self.space)
        taken: set[int] = set()
        pool = self._pool(index, rng, parents, taken)
        if pool.empty:
            log.warning("suggestion %d: no untried feasible candidate among %d draws; proposing from the design",
                        index, self.candidates)
            return self._design()
        score = scores(pool)
        for round_ in range(self.local_rounds):
            pool, score = self._refine(pool, score, scores, rng, round_, taken)
        return pool.iloc[[int(np.argmax(score))]].reset_index(drop=True)

    def _refine(self, pool: pd.DataFrame, score: np.ndarray, scores: Score, rng: np.random.Generator,
                round_: int, taken: set[int]) -> tuple[pd.DataFrame, np.ndarray]:
        """One round of local search: neighbours of the best-scoring candidates at smaller steps."""
        best = np.argsort(-score, kind="stable")[:10]
        per = max(1, self.candidates // (4 * len(best)))
        base = to_unit(self.space, pool.iloc[best], dims=self._dims)
        base = np.repeat(base, per, axis=0)
        scales = rng.choice(SCALES[: max(1, len(SCALES) - 1 - round_)], len(base))
        extra = self._fresh(self._frame(neighbours(base, self._dims, rng, scales), rng), taken)
        if extra.empty:
            return pool, score
        return pd.concat([pool, extra], ignore_index=True), np.concatenate([score, scores(extra)])

    def _inputs(self, frame: pd.DataFrame, top: int) -> pd.DataFrame:
        """The model inputs of candidates, at the full fidelity ``top``."""
        return self._features(frame.assign(**{FIDELITY: top}))

    def _acquisition(self, features: pd.DataFrame, rows: list[Observation], done: int,
                     top: int) -> tuple[Score, np.ndarray]:
        """The acquisition of candidates (one surrogate of the metric) and the completed trials' values."""
        y = self._targets(rows, done, None, self._sign())
        fidelity = features[FIDELITY].to_numpy()
        fitted = y if self.transform == "none" else budget_scores(y, fidelity, done, top)
        model = self._model(features, fitted)
        full = (features[FIDELITY].to_numpy()[:done] == top) & np.isfinite(y[:done])
        best = float(fitted[:done][full].max() if full.any() else fitted[:done].max())
        spread = float(np.std(fitted[:done])) or 1.0

        def scores(frame: pd.DataFrame) -> np.ndarray:
            mean, std = model.predict(self._inputs(frame, top))
            return acquire(self.acquisition, mean, std, best, spread, self.kappa, self.xi)

        return scores, y[:done]

    def _scalarised(self, features: pd.DataFrame, rows: list[Observation], done: int, top: int,
                    rng: np.random.Generator) -> tuple[Score, np.ndarray]:
        """Random-weight Chebyshev scalarisation of the objectives, of candidates (optimistic for modelled
        objectives: mean + kappa x std) and of the completed trials (their observed values), each objective
        scaled by the range the completed trials span. A positive cost counts by its logarithm (FLOPs and
        parameters span orders of magnitude; on a linear scale every small model would cost about 0).

        The trials' scalarisation picks the parents whose neighbourhoods are searched, so that each
        suggestion searches near the trials best for its weights (cheap ones when the cost weighs most),
        not only near the trials best by the metric.
        """
        assert self.objectives is not None
        weights = rng.dirichlet(np.ones(len(self.objectives)))
        finished = rows[:done]
        exact: dict[str, bool] = {}  # cost objectives -> whether compared by their logarithm
        models: dict[str, SurrogateModel] = {}
        observed = []
        for key, mode in self.objectives.items():
            sign = 1.0 if mode == "max" else -1.0
            if key.startswith(COST_PREFIX) and any(key in o.costs for o in finished):
                # a cost the costs function gives: known exactly before training
                costs = np.array([o.costs.get(key, np.nan) for o in finished], dtype=float)
                exact[key] = bool(np.nanmin(costs) > 0)
                observed.append(sign * _cost_scale(costs, exact[key]))
            else:
                y = self._targets(rows, done, key, sign)
                models[key] = self._model(features, y)
                observed.append(y[:done])
        ranges = [(np.nanmin(o), np.nanmax(o)) if np.isfinite(o).any() else (0.0, 1.0) for o in observed]

        def scalarise(columns: list[np.ndarray]) -> np.ndarray:
            scaled = [np.nan_to_num(normalise(c, low, high), nan=0.0) for c, (low, high) in zip(columns, ranges)]
            return chebyshev(np.stack(scaled, axis=1), weights)

        def scores(frame: pd.DataFrame) -> np.ndarray:
            inputs = self._inputs(frame, top) if models else None
            columns = []
            for key, mode in self.objectives.items():
                sign = 1.0 if mode == "max" else -1.0
                if key in exact:
                    costs = pd.to_numeric(frame[key], errors="coerce") if key in frame.columns else np.nan
                    values = np.broadcast_to(np.asarray(costs, dtype=float), len(frame))
                    columns.append(sign * _cost_scale(values, exact[key]))
                else:
                    mean, std = models[key].predict(inputs)
                    columns.append(mean + self.kappa * std)
            return scalarise(columns)

        return scores, scalarise(observed)


TUNE_KEYS = frozenset({"training_iteration", "time_this_iter_s", "time_total_s", "timestamp", "date", "pid",
                       "hostname", "node_ip", "iterations_since_restore", "time_since_restore", "done",
                       "trial_id", "experiment_tag", "checkpoint_dir_name", "should_checkpoint", "config"})


def _has_domains(config: Mapping[str, Any]) -> bool:
    """Whether a Tune ``param_space`` holds distributions (not only constants)."""
    for value in config.values():
        if isinstance(value, Mapping):
            if "grid_search" in value or _has_domains(value):
                return True
        elif type(value).__module__.startswith("ray.tune"):
            return True
    return False
