"""A narrower search space, derived from a run's results: drop dominated values, cut ranges.

The ResNet study recommends searching a narrower space once the first results are in. ``prune_space``
derives it: a surrogate fitted on the trials (hyperparameters only: costs are functions of them)
scores a large sample of the space, and

- a choice value (an architecture, an optimizer, a ``choice``/``grid`` value) is dropped when even
  its most optimistic candidate (mean + kappa x std) stays below the threshold: the best value
  observed so far (or the best pessimistic prediction, mean - kappa x std, if higher) minus
  ``tolerance`` times the surrogate's cross-validated error, so that a gap the model cannot resolve
  never drops anything. A value tried fewer than ``min_trials`` times is kept (no evidence), and so
  is every value of the best trial;
- a range (``uniform``, ``loguniform``, ``randint``, ...) is cut to the span of the candidates left
  in the pruned space whose predicted mean reaches the threshold (the tolerance already allows for
  the model's error; a tree's spread is too wide at the edges of a range to cut anything), widened by
  ``margin`` (a fraction of the range) and always including the best trial's value.

The pruned file is the original with only those entries rewritten, validated by the space parser,
and checked to contain the best configuration found so far. A run with repeats (several seeds per
configuration) is pruned on one row per configuration, the mean over its seeds (``repeats.per_config``).
"""

from __future__ import annotations

import copy
import difflib
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import pandas as pd
import yaml
from sklearn.model_selection import KFold

from ecgsearch.analysis.repeats import per_config
from ecgsearch.analysis.run import analysed
from ecgsearch.errors import UserError
from ecgsearch.results.configs import has_repeats
from ecgsearch.results.folder import PRUNED_FILE, SPACE_COPY, open_run
from ecgsearch.search.features import COST_PREFIX, FIDELITY, feature_frame, target
from ecgsearch.search.sampling import (
    Dimension,
    dimensions,
    from_unit,
    row_configs,
    to_unit,
)
from ecgsearch.search.surrogate_model import SurrogateModel
from ecgsearch.space import TRIAL_PARAMS, parse_space
from ecgsearch.space.distributions import Choice, Range
from ecgsearch.space.yamlio import load_yaml, read_text

if TYPE_CHECKING:
    from ecgsearch.space import SearchSpec, Space

log = logging.getLogger(__name__)

MIN_TRIALS = 8  # fewer finished trials than this give no basis for pruning


@dataclass(frozen=True)
class Change:
    """One rewritten entry: its dotted key in the space file, before, after, and why."""

    key: str
    before: str
    after: str
    reason: str

    def line(self) -> str:
        return f"{self.key}: {self.before} -> {self.after} ({self.reason})"


@dataclass(frozen=True)
class PrunedSpace:
    """The pruned space file (``document``, plain YAML values), its changes and the best trial kept."""

    original: Mapping[str, Any]
    document: Mapping[str, Any]
    changes: tuple[Change, ...]
    best: Mapping[str, Any]
    threshold: float  # (signed) a value whose optimistic bound stays below this is dropped

    def text(self, header: str = "") -> str:
        body = yaml.safe_dump(dict(self.document), sort_keys=False, default_flow_style=None, width=110)
        return "".join(f"# {line}\n" for line in header.splitlines()) + body

    def diff(self, before: str = "original", after: str = "pruned") -> str:
        """The changes, one line each, then a unified diff of the two files as plain YAML."""
        lines = [c.line() for c in self.changes] or ["nothing pruned: no value or range is dominated yet"]
        dump = lambda doc: yaml.safe_dump(dict(doc), sort_keys=False, default_flow_style=None, width=110)
        unified = difflib.unified_diff(dump(self.original).splitlines(), dump(self.document).splitlines(),
                                       before, after, lineterm="")
        return "\n".join([*lines, "", *unified]).rstrip() + "\n"


def _cv_rmse(surrogate: str, features: pd.DataFrame, y: pd.Series, seed: int, folds: int = 3) -> float:
    """The surrogate's out-of-fold prediction error: how far apart two predictions must be to mean anything."""
    errors = []
    for train, test in KFold(n_splits=folds, shuffle=True, random_state=seed).split(features):
        model = SurrogateModel(surrogate, seed).fit(features.iloc[train], y.iloc[train])
        errors.append(model.predict(features.iloc[test])[0] - y.iloc[test].to_numpy())
    return float(np.sqrt(np.mean(np.concatenate(errors) ** 2)))


def _best_row(results: pd.DataFrame, y: pd.Series) -> pd.Series:
    return results.loc[y.idxmax()]


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _dist_entry(dist: Any, values: list[Any] | None = None, bounds: tuple[Any, Any] | None = None) -> dict[str, Any]:
    """The space-file form of a (narrowed) distribution."""
    if isinstance(dist, Choice):
        return {dist.name: [copy.deepcopy(v) for v in (values if values is not None else dist.values)]}
    lo, hi = bounds if bounds is not None else (dist.lo, dist.hi)
    return {dist.name: [lo, hi, dist.q] if dist.quantized else [lo, hi]}


def _entry_path(dim: Dimension, space: Space) -> list[str]:
    """Where a dimension lives in the file's ``space`` section."""
    if dim.condition is None:
        return [dim.name]
    kind, option = dim.condition
    return [kind, option, *dim.name[len(f"{kind}.{option}."):].split(".")]


def _set_entry(section: dict[str, Any], path: list[str], entry: Any) -> None:
    """Write ``entry`` at ``path`` (an option given by name alone becomes a mapping of its parameters)."""
    target = section
    for i, part in enumerate(path[:-1]):
        value = target.get(part)
        if i == 0 and not isinstance(value, dict):  # `architecture: resnet` or a list of names
            names = [value] if isinstance(value, str) else list(value)
            value = target[part] = {name: None for name in names}
        if not isinstance(value, dict):
            value = target[part] = {}
        target = value
    target[path[-1]] = entry


def _drop_options(section: dict[str, Any], kind: str, keep: list[str]) -> None:
    value = section[kind]
    if isinstance(value, dict):
        section[kind] = {k: v for k, v in value.items() if k in keep}
    elif isinstance(value, list):
        section[kind] = [v for v in value if v in keep]


@dataclass(frozen=True)
class PruneSettings:
    """How cautiously ``prune_space`` prunes (the options of ``ecgsearch prune``).

    surrogate: the surrogate plugin; candidates: points sampled to judge the space; kappa: optimism of a
    candidate's bound (mean + kappa x std); tolerance: how many cross-validated prediction errors (RMSE)
    below the best a value's bound must stay to be dropped; min_trials: values tried fewer times are
    never dropped; margin: unit-interval slack kept around a cut range; seed: sampling and surrogate.
    """

    surrogate: str = "random_forest"
    candidates: int = 20_000
    kappa: float = 1.0
    tolerance: float = 2.0
    min_trials: int = 2
    margin: float = 0.05
    seed: int = 0


class _Pruner:
    """The fitted surrogate's verdicts on a sample of the space."""

    def __init__(self, spec: SearchSpec, results: pd.DataFrame, settings: PruneSettings) -> None:
        surrogate, candidates, kappa, seed = settings.surrogate, settings.candidates, settings.kappa, settings.seed
        self.spec, self.space = spec, spec.space
        self.kappa, self.min_trials, self.margin = kappa, settings.min_trials, settings.margin
        self.y = target(results, spec.metric, spec.mode)
        if len(self.y) < MIN_TRIALS:
            raise UserError(f"pruning needs at least {MIN_TRIALS} trials with a finite val.{spec.metric}, and the "
                            f"results have {len(self.y)}; run more trials first.")
        self.rows = results.loc[self.y.index]
        fidelity = FIDELITY in self.rows.columns and self.rows[FIDELITY].nunique() > 1
        features = feature_frame(self.rows, self.space, fidelity=fidelity)
        features = features[[c for c in features.columns if not c.startswith(COST_PREFIX)]]
        self.model = SurrogateModel(surrogate, seed).fit(features, self.y)
        rng = np.random.default_rng(seed)
        self.dims = dimensions(self.space)
        pool = from_unit(self.space, rng.random((candidates, len(self.dims))), rng)
        if fidelity:
            pool[FIDELITY] = self.rows[FIDELITY].max()
        self.pool = pool
        self.units = to_unit(self.space, pool)
        mean, std = self.model.predict(feature_frame(pool, self.space, fidelity=fidelity)[features.columns])
        self.mean, self.upper, lower = mean, mean + kappa * std, mean - kappa * std
        self.best = _best_row(results, self.y)
        self.best_value = float(max(self.y.max(), lower.max()))
        self.tolerance = settings.tolerance * _cv_rmse(surrogate, features, self.y, seed)
        self.threshold = self.best_value - self.tolerance
        self.best_units = to_unit(self.space, self.best.to_frame().T)[0]
        self.alive = np.ones(len(pool), dtype=bool)  # candidates still inside the pruned space

    def drop(self, j: int, dim: Dimension, keep: list[Any]) -> None:
        """Take the candidates with a dropped value out of the space the later verdicts look at."""
        k = len(dim.dist.values)  # type: ignore[attr-defined]
        position = np.minimum(np.nan_to_num(self.units[:, j] * k, nan=-1.0).astype(int), k - 1)
        gone = [i for i, v in enumerate(dim.dist.values) if v not in keep]  # type: ignore[attr-defined]
        self.alive &= ~np.isin(position, gone)

    def kept_values(self, j: int, dim: Dimension) -> tuple[list[Any], list[str]]:
        """The values of a choice-like dimension that are not dominated, and why the others go."""
        assert isinstance(dim.dist, Choice)
        values = list(dim.dist.values)
        k = len(values)
        position = np.minimum(np.nan_to_num(self.units[:, j] * k, nan=-1.0).astype(int), k - 1)
        tried = np.floor(to_unit(self.space, self.rows)[:, j] * k)  # NaN where not tried
        keep, reasons = [], []
        for i, value in enumerate(values):
            here = ~np.isnan(self.units[:, j]) & (position == i) & self.alive
            n_tried = int(np.sum(tried == i))
            is_best = not math.isnan(self.best_units[j]) and min(int(self.best_units[j] * k), k - 1) == i
            optimistic = float(self.upper[here].max()) if here.any() else math.inf
            if is_best or n_tried < self.min_trials or optimistic >= self.threshold:
                keep.append(value)
            else:
                reasons.append(f"{_show(value)}: at best {self._metric(optimistic)} predicted vs "
                               f"{self._metric(self.best_value)} reached, {n_tried} trials")
        return keep, reasons

    def cut_range(self, j: int, dim: Dimension) -> tuple[float, float] | None:
        """Unit-interval bounds covering the promising candidates and the best trial, or None (no cut)."""
        active = ~np.isnan(self.units[:, j]) & self.alive
        promising = active & (self.mean >= self.threshold)
        if not promising.any():
            return None
        u = self.units[promising, j]
        if not math.isnan(self.best_units[j]):
            u = np.append(u, self.best_units[j])
        lo, hi = max(0.0, u.min() - self.margin), min(1.0, u.max() + self.margin)
        return None if hi - lo > 1.0 - 2 * self.margin else (lo, hi)

    def _metric(self, signed: float) -> str:
        return _show(signed if self.spec.mode == "max" else -signed)


def _range_bounds(dist: Range, lo_u: float, hi_u: float, best: Any) -> tuple[Any, Any]:
    """Unit bounds back to values, snapped outwards (integers, multiples of q), containing ``best``."""
    lo0, hi0 = (float(b) for b in dist.bounds())
    to_value = (lambda u: math.exp(math.log(lo0) + u * (math.log(hi0) - math.log(lo0)))) if dist.log \
        else (lambda u: lo0 + u * (hi0 - lo0))
    lo, hi = to_value(lo_u), to_value(hi_u)
    if best is not None and not (isinstance(best, float) and math.isnan(best)):
        lo, hi = min(lo, float(best)), max(hi, float(best))
    if dist.q is not None:
        lo, hi = math.floor(lo / dist.q + 1e-9) * dist.q, math.ceil(hi / dist.q - 1e-9) * dist.q
    if dist.integer:
        lo, hi = int(math.floor(lo)), int(math.ceil(hi))
    else:
        lo, hi = float(f"{lo:.4g}"), float(f"{hi:.4g}")  # readable; widen if rounding cut the best
        if best is not None and not (isinstance(best, float) and math.isnan(best)):
            lo, hi = min(lo, float(best)), max(hi, float(best))
    lo, hi = max(lo, dist.bounds()[0]), min(hi, dist.bounds()[1])
    return lo, hi


def configurations(results: pd.DataFrame, column: str) -> pd.DataFrame:
    """With repeats, one row per configuration: the mean over its analysed seeds; otherwise ``results``."""
    if column not in results.columns or not has_repeats(results):
        return results
    return per_config(results[analysed(results, column)])


def prune_space(spec: SearchSpec, document: Mapping[str, Any], results: pd.DataFrame,
                settings: PruneSettings | None = None, **options: Any) -> PrunedSpace:
    """Prune ``spec`` (parsed from ``document``, the file's plain YAML values) by the ``results`` so far.

    settings: a ``PruneSettings`` (or its fields as keyword ``options``).
    """
    pruner = _Pruner(spec, configurations(results, f"val.{spec.metric}"),
                     settings if settings is not None else PruneSettings(**options))
    new = copy.deepcopy(dict(document))
    section = new["space"]
    changes: list[Change] = []
    dropped: set[tuple[str, str]] = set()
    for j, dim in enumerate(pruner.dims):
        if dim.condition is not None and dim.condition in dropped:
            continue
        if dim.condition is None and dim.name not in spec.space.choices and dim.name not in TRIAL_PARAMS:
            continue  # a parameter another section adds (e.g. transfer's freeze_stages): not ours to rewrite
        prefix = f"space.{'.'.join(_entry_path(dim, spec.space))}"
        if isinstance(dim.dist, Choice):
            keep, reasons = pruner.kept_values(j, dim)
            if len(keep) == len(dim.dist.values) or not keep:
                continue
            pruner.drop(j, dim, keep)
            if dim.condition is None and dim.name in spec.space.choices:
                _drop_options(section, dim.name, [str(k) for k in keep])
                dropped |= {(dim.name, str(v)) for v in dim.dist.values if v not in keep}
                before, after = f"options {list(dim.dist.values)}", f"{keep}"
            else:
                _set_entry(section, _entry_path(dim, spec.space), _dist_entry(dim.dist, keep))
                before, after = dim.dist.describe(), _dist_entry(dim.dist, keep)[dim.dist.name]
            changes.append(Change(prefix, str(before), str(after), "; ".join(reasons)))
        elif isinstance(dim.dist, Range):
            cut = pruner.cut_range(j, dim)
            if cut is None:
                continue
            bounds = _range_bounds(dim.dist, *cut, pruner.best.get(dim.column))
            if tuple(bounds) == tuple(dim.dist.bounds()) or not bounds[0] < bounds[1]:
                continue
            _set_entry(section, _entry_path(dim, spec.space), _dist_entry(dim.dist, bounds=bounds))
            changes.append(Change(prefix, dim.dist.describe(), f"[{', '.join(_show(b) for b in bounds)}]",
                                  f"candidates predicted to reach {pruner._metric(pruner.threshold)} lie inside"))
    return PrunedSpace(original=document, document=new, changes=tuple(changes),
                       best=_best_config(spec.space, pruner.best), threshold=pruner.threshold)


def _best_config(space: Space, best: pd.Series) -> dict[str, Any]:
    return row_configs(space, best.to_frame().T.reset_index(drop=True))[0]


def contains(space: Space, config: Mapping[str, Any]) -> list[str]:
    """The keys of ``config`` that ``space`` cannot produce (empty: the space contains it)."""
    problems = []
    for key, options in space.choices.items():
        if config.get(key) not in options:
            problems.append(key)
    params = {p.name: p for p in space.parameters}
    for key, value in config.items():
        param = params.get(key)
        if key in space.choices or param is None:
            continue
        active = param.condition is None or config.get(param.condition[0]) == param.condition[1]
        if active and not param.dist.contains(value):
            problems.append(key)
    return problems


def prune_run(run_dir: str | Path, out: str | Path | None = None, settings: PruneSettings | None = None,
              **options: Any) -> tuple[PrunedSpace, Path]:
    """Prune the space of the run in ``run_dir`` by its results; write and validate the pruned file.

    Returns ``(PrunedSpace, path written)`` (default ``RUN_DIR/space.pruned.yaml``).
    """
    run = open_run(run_dir, "prune")
    spec, results = run.spec, run.results()
    space_file = run.path / SPACE_COPY
    document, _ = load_yaml(read_text(space_file), str(space_file))
    pruned = prune_space(spec, document, results, settings, **options)
    target = Path(out) if out is not None else run.path / PRUNED_FILE
    header = (f"{spec.name}, pruned by `ecgsearch prune` from {space_file} on the {len(results)} "
              f"trials of {run.path}.\n" + "\n".join(c.line() for c in pruned.changes))
    text = pruned.text(header)
    new_spec = parse_space(text, source=str(target))  # a pruned file that does not validate is a bug
    missing = contains(new_spec.space, pruned.best)
    if missing:
        raise RuntimeError(f"the pruned space excludes the best trial's {missing}; please report this bug")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return pruned, target
