"""SurrogateSearcher: a Ray Tune ``Searcher`` steered by a tree-model surrogate of the metric.

The first ``initial_trials`` suggestions are a space-filling design (scrambled Sobol points, or random
draws). After that every suggestion fits the surrogate on the trials so far (hyperparameters + cost
features, ``ecgsearch.search.features``) and picks, from ``candidates`` fresh candidates (random
points of the space plus perturbations of the best trials), the one with the highest acquisition
(expected improvement or an upper confidence bound). Candidates whose costs break the constraints are
never proposed (``costs`` returns None for them), and a configuration is never proposed twice.

How imperfect trials are used:

- failed trials (an error, no finite value) count as the worst value observed so far, so the model
  learns to avoid the region that fails (re-imputed at every fit, as the worst value changes);
- trials stopped early (ASHA) keep the best value they reported, and the number of iterations they
  ran is a feature (``epochs``); candidates are scored at the largest number observed, so a partly
  trained trial informs the model without being mistaken for a fully trained one;
- trials still running are included at the median observed value ("constant liar"), so parallel
  suggestions spread out instead of piling onto one optimum.

Multi-objective mode (``objectives={"val.macro_auroc": "max", "cost.flops": "min"}``) aims at the
Pareto front: each suggestion draws random weights and maximises the augmented Chebyshev
scalarisation of the objectives, cost objectives taken exactly from the candidate's costs and the
others from a surrogate each, optimistically (mean + kappa x std).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from ray.tune.search import Searcher
from scipy.stats import qmc

from ecgsearch.errors import UserError
from ecgsearch.search.acquisition import ACQUISITIONS, acquire, chebyshev, normalise
from ecgsearch.search.features import COST_PREFIX, FIDELITY, config_frame, feature_frame
from ecgsearch.search.sampling import (
    Dimension,
    dimensions,
    from_unit,
    perturb,
    row_configs,
    signatures,
    to_unit,
)
from ecgsearch.search.state import StatefulSearcher
from ecgsearch.search.surrogate_model import SurrogateModel
from ecgsearch.space.search_options import INITIAL_DESIGNS as DESIGNS

if TYPE_CHECKING:
    from ecgsearch.space import Space

log = logging.getLogger(__name__)

FAILED_VALUE = 1e29  # reports at or beyond this magnitude are failure sentinels (ecgsearch's worst objective)
DESIGN_ATTEMPTS = 200
PARENTS = 5  # the best trials whose neighbourhoods are searched

Costs = Callable[[dict[str, Any]], "Mapping[str, float] | None"]
Annotate = Callable[[int, dict[str, Any], Mapping[str, float]], dict[str, Any]]


@dataclass
class Observation:
    """A finished (or stopped, or failed) trial as the surrogate sees it; values are as reported."""

    config: dict[str, Any]
    costs: dict[str, float]
    value: float | None  # the metric (None: failed)
    fidelity: int | None  # iterations it ran (None: unknown, counted as a full run)
    objectives: dict[str, float] = field(default_factory=dict)


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and abs(number) < FAILED_VALUE else None


class SurrogateSearcher(StatefulSearcher):
    """Model-based search over a parsed space (``load_space(path).space``); see the module docstring.

    costs: ``config -> {"cost.flops": ..., ...}`` or None when the candidate breaks a constraint
        (None for no cost features); cost_inputs: the configuration keys (prefixes) the costs depend
        on, so each distinct architecture is costed once (None: every key); max_new_costs: at most this
        many not-yet-costed architectures are costed per suggestion (candidates beyond are skipped).
    annotate: ``(index, config, costs) -> config`` adds private keys (trial id, seed) to a suggestion.
    """

    def __init__(self, space: Space, metric: str | None = None, mode: str | None = None, *,
                 trials: int | None = None, seed: int = 0, surrogate: str = "random_forest",
                 surrogate_params: Mapping[str, Any] | None = None, initial_trials: int = 8,
                 initial_design: str = "sobol", acquisition: str = "ei", candidates: int = 1000,
                 local_fraction: float = 0.3, kappa: float = 1.96, xi: float = 0.01,
                 objectives: Mapping[str, str] | None = None, costs: Costs | None = None,
                 cost_inputs: Sequence[str] | None = None, max_new_costs: int = 64,
                 annotate: Annotate | None = None) -> None:
        super().__init__(metric=metric, mode=mode)
        space = getattr(space, "space", space)  # a SearchSpec is accepted too
        if initial_design not in DESIGNS:
            raise ValueError(f"initial_design must be one of {DESIGNS}, got {initial_design!r}")
        if acquisition not in ACQUISITIONS:
            raise ValueError(f"acquisition must be one of {ACQUISITIONS}, got {acquisition!r}")
        if objectives is not None and (len(objectives) < 2 or set(objectives.values()) - {"max", "min"}):
            raise ValueError(f"objectives must map >= 2 result keys to 'max' or 'min', got {dict(objectives)!r}")
        self.space = space
        self.trials = trials
        self.seed = seed
        self.surrogate, self.surrogate_params = surrogate, dict(surrogate_params or {})
        SurrogateModel(surrogate, seed, self.surrogate_params)  # an unknown surrogate fails now
        self.initial_trials, self.initial_design = max(1, initial_trials), initial_design
        self.acquisition, self.candidates = acquisition, max(1, candidates)
        self.local_fraction, self.kappa, self.xi = local_fraction, kappa, xi
        self.objectives = dict(objectives) if objectives else None
        self._costs, self._annotate = costs, annotate
        self.cost_inputs = tuple(cost_inputs) if cost_inputs is not None else None
        self.max_new_costs = max_new_costs
        self._dims: list[Dimension] = dimensions(space)
        self._columns = [d.column for d in self._dims]
        # state (get_state / set_state)
        self._next = 0
        self._design_next = 0
        self._live: dict[str, dict[str, Any]] = {}
        self._observations: list[Observation] = []
        self._seen: set[int] = set()
        self._cost_cache: dict[int, dict[str, float] | None] = {}

    # --- Tune's interface ---------------------------------------------------------------------

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        """Take Tune's metric and mode unless given here; the space comes from the constructor."""
        self._metric = self._metric or metric
        self._mode = self._mode or mode
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
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
        self._live[trial_id] = {"config": config, "costs": costs, "value": None, "fidelity": None, "last": {}}
        return self._annotate(index, config, costs) if self._annotate else dict(config)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        live = self._live.get(trial_id)
        if live is not None:
            self._update(live, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        live = self._live.pop(trial_id, None)
        if live is None:  # not suggested by this searcher object (e.g. a run resumed from scratch)
            config = dict((result or {}).get("config") or {})
            if not config:
                return
            live = {"config": {k: v for k, v in config.items() if not k.startswith("_")},
                    "costs": dict(config.get("_costs") or {}), "value": None, "fidelity": None, "last": {}}
        if result:
            self._update(live, result)
        value = None if error else live["value"]
        self._observations.append(Observation(live["config"], live["costs"], value, live["fidelity"],
                                              self._objective_values(live)))

    def add_evaluated_point(self, parameters: dict, value: float, error: bool = False, pruned: bool = False,
                            intermediate_values: list[float] | None = None) -> None:
        """Warm-start from a trial run elsewhere (a previous run's results); ``_costs`` in ``parameters``
        is used when present, else the costs function when given."""
        config = {k: v for k, v in parameters.items() if not k.startswith("_")}
        costs = dict(parameters.get("_costs") or {})
        if not costs and self._costs is not None:
            frame = self._with_costs(config_frame([config], self.space).reindex(columns=self._columns), None)
            costs = {k: float(v) for k, v in frame.iloc[0].items() if k.startswith(COST_PREFIX)} if len(frame) else {}
        fidelity = len(intermediate_values) if pruned and intermediate_values else None
        self._observations.append(Observation(config, costs, None if error else _finite(value), fidelity))
        self._seen.add(int(signatures(config_frame([config], self.space), self._columns)[0]))

    # --- state ---------------------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        return {"next": self._next, "design_next": self._design_next, "live": self._live,
                "observations": [asdict(o) for o in self._observations], "seen": sorted(self._seen),
                "cost_cache": self._cost_cache, "metric": self._metric, "mode": self._mode}

    def set_state(self, state: dict[str, Any]) -> None:
        self._next, self._design_next = state["next"], state["design_next"]
        self._live = state["live"]
        self._observations = [Observation(**o) for o in state["observations"]]
        self._seen = set(state["seen"])
        self._cost_cache = state["cost_cache"]
        self._metric, self._mode = state["metric"], state["mode"]

    @property
    def observations(self) -> list[Observation]:
        return list(self._observations)

    # --- observations ---------------------------------------------------------------------------

    def _update(self, live: dict[str, Any], result: Mapping[str, Any]) -> None:
        """Keep the best metric value reported so far and the iterations run."""
        value = _finite(result.get(self._metric)) if self._metric else None
        if value is not None and (live["value"] is None or self._sign() * (value - live["value"]) > 0):
            live["value"] = value
        iteration = result.get("training_iteration")
        if isinstance(iteration, (int, np.integer)):
            live["fidelity"] = int(iteration)
        live["last"] = {k: result[k] for k in (self.objectives or {}) if k in result}

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
        return [d.column for d in self._dims
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

    def _design(self, allow_seen: bool = False) -> pd.DataFrame:
        """The next feasible, unseen point of the initial design (Sobol or random).

        A small discrete space can be used up: then a configuration already tried is proposed again
        (with a warning) rather than stopping the run.
        """
        for _ in range(DESIGN_ATTEMPTS):
            k = self._design_next
            self._design_next += 1
            row = self._with_costs(from_unit(self.space, self._unit(k)[None, :], np.random.default_rng(k)), None)
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

    def _pool(self, index: int, rng: np.random.Generator, parents: pd.DataFrame) -> pd.DataFrame:
        """Random candidates plus neighbours of ``parents``: feasible, costed, untried, distinct."""
        n_local = int(round(self.candidates * self.local_fraction)) if len(parents) else 0
        units = rng.random((self.candidates - n_local, len(self._dims)))
        if n_local:
            base = to_unit(self.space, parents)[rng.integers(0, len(parents), n_local)]
            units = np.vstack([units, perturb(base, self._dims, rng)])
        frame = self._with_costs(from_unit(self.space, units, rng), self.max_new_costs)
        sig = signatures(frame, self._columns)
        fresh = ~pd.Series(sig).duplicated().to_numpy() & ~np.isin(sig, np.fromiter(self._seen, np.uint64))
        return frame[fresh].reset_index(drop=True)

    # --- the model ------------------------------------------------------------------------------

    def _training_frame(self) -> tuple[pd.DataFrame, list[Observation]]:
        """Features of the observations and the running trials (the latter for the constant liar)."""
        rows = self._observations + [Observation(v["config"], v["costs"], None, None) for v in self._live.values()]
        frame = config_frame([{**o.config, "_costs": o.costs} for o in rows], self.space)
        top = max([o.fidelity for o in rows if o.fidelity is not None], default=1)
        frame[FIDELITY] = [o.fidelity if o.fidelity is not None else top for o in rows]
        return feature_frame(frame, self.space, fidelity=True), rows

    def _targets(self, rows: list[Observation], key: str | None, sign: float) -> np.ndarray:
        """Signed values (larger better): failed -> the worst observed, running -> the median."""
        done = len(self._observations)
        raw = [(o.value if key is None else o.objectives.get(key)) for o in rows[:done]]
        values = np.array([np.nan if v is None else sign * v for v in raw], dtype=float)
        finite = values[np.isfinite(values)]
        worst = finite.min() if len(finite) else 0.0
        values = np.where(np.isfinite(values), values, worst)
        return np.concatenate([values, np.full(len(rows) - done, np.median(finite) if len(finite) else 0.0)])

    def _propose(self, index: int) -> pd.DataFrame:
        rng = np.random.default_rng([self.seed, index, 1])
        features, rows = self._training_frame()
        y = self._targets(rows, None, self._sign())
        done = len(self._observations)
        order = np.argsort(-y[:done])[:PARENTS]
        parents = config_frame([self._observations[i].config for i in order], self.space)
        pool = self._pool(index, rng, parents)
        if pool.empty:
            log.warning("suggestion %d: no untried feasible candidate among %d draws; proposing from the design",
                        index, self.candidates)
            return self._design()
        top = int(features[FIDELITY].max())
        pool_features = feature_frame(pool.assign(**{FIDELITY: top}), self.space, fidelity=True)
        if self.objectives:
            score = self._scalarised(features, rows, pool, pool_features, rng)
        else:
            mean, std = SurrogateModel(self.surrogate, self.seed, self.surrogate_params).fit(features, y) \
                .predict(pool_features)
            full = (features[FIDELITY].to_numpy()[:done] == top) & np.isfinite(y[:done])
            best = float(y[:done][full].max() if full.any() else y[:done].max())
            score = acquire(self.acquisition, mean, std, best, float(np.std(y[:done])) or 1.0, self.kappa, self.xi)
        return pool.iloc[[int(np.argmax(score))]].reset_index(drop=True)

    def _scalarised(self, features: pd.DataFrame, rows: list[Observation], pool: pd.DataFrame,
                    pool_features: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
        """Random-weight Chebyshev scalarisation of the objectives (optimistic for modelled ones)."""
        assert self.objectives is not None
        weights = rng.dirichlet(np.ones(len(self.objectives)))
        columns = []
        for key, mode in self.objectives.items():
            sign = 1.0 if mode == "max" else -1.0
            if key in pool.columns:  # a cost: known exactly before training
                values = sign * pd.to_numeric(pool[key], errors="coerce").to_numpy(dtype=float)
                observed = np.array([sign * o.costs[key] for o in self._observations if key in o.costs])
            else:
                y = self._targets(rows, key, sign)
                mean, std = SurrogateModel(self.surrogate, self.seed, self.surrogate_params).fit(features, y) \
                    .predict(pool_features)
                values = mean + self.kappa * std
                observed = y[:len(self._observations)]
            reference = np.concatenate([observed, values[np.isfinite(values)]])
            low, high = (reference.min(), reference.max()) if len(reference) else (0.0, 1.0)
            columns.append(np.nan_to_num(normalise(values, low, high), nan=0.0))
        return chebyshev(np.stack(columns, axis=1), weights)
