"""The surrogate's inputs: one feature frame for finished trials and for sampled candidates alike.

A performance model is only as good as the agreement between what it was fitted on and what it
scores, so the columns are chosen (``feature_frame``) and encoded (``FeatureEncoder``) in one place:

- choice columns (``architecture``, ``optimizer``, any other conditional choice) and categorical
  hyperparameters (strings, lists) are one-hot encoded, one feature ``column=value`` per value seen at
  fit time (an unseen value encodes as all zeros);
- numeric hyperparameters (``hp.*``) and cost features (``cost.*``: params, FLOPs and whatever other
  costs the run recorded, e.g. stages or receptive field) are used as they are; a hyperparameter of an
  option that was not chosen is missing and is filled with a value far below the column's range, so a
  tree separates "not applicable" from every real value;
- columns that are constant at fit time carry no information and are dropped;
- with ``shared=True`` (the surrogate search), a parameter that several options of one choice have
  alike (``optimizer.adamw.lr`` and ``optimizer.sgd.lr``, both log-uniform; ``shared_groups``) is one
  column ``hp.optimizer.*.lr``, so the model learns one effect of the learning rate from both options.

Tree models are indifferent to monotone transforms, so nothing is log-scaled or standardised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ecgsearch.errors import UserError
from ecgsearch.results.names import prior_costs
from ecgsearch.space import CONDITIONAL_CHOICES
from ecgsearch.space.distributions import Choice, Fixed, Range

if TYPE_CHECKING:
    from ecgsearch.space import Space

HP_PREFIX = "hp."
COST_PREFIX = "cost."
VAL_PREFIX = "val."
FIDELITY = "epochs"  # the fidelity feature: epochs a trial trained before its value was taken
_FILL_MARGIN = 10.0


def _choice_columns(space: Space | None, columns: Iterable[str]) -> list[str]:
    """The conditional choices: the space's, or (without one) those of the space language present."""
    if space is not None:
        return list(space.choices)

    present = set(columns)
    return [c for c in CONDITIONAL_CHOICES if c in present]


def _searched(space: Space) -> list[str]:
    """The ``hp.*`` columns of the space's searched (not fixed) parameters, in the space's order."""
    return [HP_PREFIX + p.name for p in space.parameters if not isinstance(p.dist, Fixed)]


def _alike(dists: list[Any]) -> bool:
    """Whether distributions describe the same kind of value: ranges of one class (bounds may differ),
    or choices of the same values."""
    first = dists[0]
    if isinstance(first, Range):
        return all(type(d) is type(first) for d in dists)
    if isinstance(first, Choice):
        return all(type(d) is type(first) and list(d.values) == list(first.values) for d in dists)
    return False


def shared_groups(space: Space) -> dict[str, tuple[str, ...]]:
    """Searched parameters that two or more options of one choice have alike, by shared name.

    ``{"optimizer.*.lr": ("optimizer.adamw.lr", "optimizer.sgd.lr")}`` when both learning rates are
    ranges of the same kind (both log-uniform, say) or choices of the same values. At most one option
    is chosen, so at most one member of a group is active in any configuration.
    """
    found: dict[tuple[str, str], list[Any]] = {}
    for p in space.parameters:
        if p.condition is None or isinstance(p.dist, Fixed):
            continue
        choice, option = p.condition
        prefix = f"{choice}.{option}."
        if p.name.startswith(prefix):
            found.setdefault((choice, p.name[len(prefix):]), []).append(p)
    return {f"{choice}.*.{rest}": tuple(p.name for p in members) for (choice, rest), members in found.items()
            if len(members) > 1 and _alike([p.dist for p in members])}


def feature_frame(results: pd.DataFrame, space: Space | None = None, fidelity: bool = False,
                  shared: bool = False) -> pd.DataFrame:
    """The model inputs of a results table (or of ``config_frame(candidates)``), row for row.

    Columns: the choice columns, the ``hp.*`` columns (with ``space``: exactly its searched parameters,
    missing ones filled with NaN, so that trials and candidates give the same columns; without it:
    every ``hp.*`` column present) and every ``cost.*`` column present; with ``fidelity`` also
    ``epochs``. With ``shared`` (and ``space``) the members of each ``shared_groups`` group are one
    column, the value of whichever member is present. The index is the input's index.
    """
    columns = _choice_columns(space, results.columns)
    if space is not None:
        hp = _searched(space)
    else:
        hp = [c for c in results.columns if c.startswith(HP_PREFIX)]
    costs = prior_costs(results.columns)  # not the training compute: a result, not a prior
    wanted = [*columns, *hp, *costs, *([FIDELITY] if fidelity else [])]
    frame = results.reindex(columns=wanted)
    if not (shared and space is not None):
        return frame
    for group, members in shared_groups(space).items():
        member_columns = [HP_PREFIX + m for m in members]
        merged = frame[member_columns[0]].astype(object) if frame[member_columns[0]].dtype == object \
            else frame[member_columns[0]].copy()
        for column in member_columns[1:]:
            merged = merged.where(merged.notna(), frame[column])
        position = frame.columns.get_loc(member_columns[0])
        frame = frame.drop(columns=member_columns)
        frame.insert(position, HP_PREFIX + group, merged)
    return frame


def _plain(value: Any) -> Any:
    """Numpy scalars become Python values; lists become their ``str`` (as the results table stores them)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (list, tuple)):
        return str(list(value))
    return value


def config_frame(configs: Sequence[Mapping[str, Any]], space: Space | None = None) -> pd.DataFrame:
    """Sampled configurations (flat dotted keys) in the results table's naming.

    A choice key stays as it is (``architecture``), every other hyperparameter becomes ``hp.<key>``,
    ``_costs`` (a mapping of ``cost.*`` columns) is spread into columns and other private keys
    (``_trial_id``, ``_seed``) are dropped.
    """
    if space is not None:
        choices = set(space.choices)
    else:
        choices = set(CONDITIONAL_CHOICES)
    rows = []
    for config in configs:
        row: dict[str, Any] = {}
        for key, value in config.items():
            if key == "_costs":
                row.update({k: v for k, v in (value or {}).items()})
            elif not key.startswith("_"):
                row[key if key in choices else HP_PREFIX + key] = _plain(value)
        rows.append(row)
    return pd.DataFrame(rows)


def _numeric(column: pd.Series) -> pd.Series | None:
    """The column as floats, or None when any present value is not a number (a categorical column)."""
    present = column.dropna()
    if present.map(lambda v: isinstance(v, str)).any():
        return None
    converted = pd.to_numeric(present, errors="coerce")
    if converted.isna().any():
        return None
    return pd.to_numeric(column, errors="coerce").astype(float)


def _category(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(_plain(value))


@dataclass(frozen=True)
class FeatureEncoder:
    """A fitted encoding: which columns are numeric (and their fill value), which categorical (values)."""

    numeric: Mapping[str, float]  # column -> fill value for missing entries
    categories: Mapping[str, tuple[str, ...]]  # column -> the values seen at fit time
    order: tuple[str, ...]  # the kept input columns, in frame order

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> FeatureEncoder:
        numeric: dict[str, float] = {}
        categories: dict[str, tuple[str, ...]] = {}
        order = []
        for name in frame.columns:
            values = _numeric(frame[name])
            if values is not None:
                present = values.dropna()
                if present.empty or (present.nunique() == 1 and not values.isna().any()):
                    continue  # constant or empty: no information
                low, high = float(present.min()), float(present.max())
                numeric[name] = low - _FILL_MARGIN * (high - low + 1.0)
            else:
                cats = frame[name].map(_category)
                seen = tuple(sorted(set(cats.dropna())))
                if len(seen) == 1 and not cats.isna().any():
                    continue
                categories[name] = seen
            order.append(name)
        return cls(numeric=numeric, categories=categories, order=tuple(order))

    @property
    def names(self) -> list[str]:
        """One name per output feature: the column, or ``column=value`` for a one-hot indicator."""
        out: list[str] = []
        for name in self.order:
            out += [name] if name in self.numeric else [f"{name}={value}" for value in self.categories[name]]
        return out

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The feature matrix (float32, one row per frame row); missing columns count as missing values."""
        blocks = []
        for name in self.order:
            column = frame[name] if name in frame.columns else pd.Series(np.nan, index=frame.index)
            if name in self.numeric:
                values = pd.to_numeric(column, errors="coerce").astype(float).to_numpy()
                blocks.append(np.where(np.isnan(values), self.numeric[name], values)[:, None])
            else:
                cats = column.map(_category).to_numpy(dtype=object)
                blocks.append(np.stack([cats == value for value in self.categories[name]], axis=1))
        if not blocks:
            return np.zeros((len(frame), 0), dtype=np.float32)
        return np.concatenate([b.astype(np.float32) for b in blocks], axis=1)

    def source(self, feature: str) -> str:
        """The input column a feature name comes from (``architecture=resnet`` -> ``architecture``)."""
        return feature if feature in self.numeric else feature.split("=", 1)[0]


def encode(frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Fit an encoding on ``frame`` and apply it: ``(X, feature names)``. Keep a ``FeatureEncoder`` to
    encode other rows (candidates) the same way."""
    encoder = FeatureEncoder.fit(frame)
    return encoder.transform(frame), encoder.names


def metric_column(results: pd.DataFrame, metric: str) -> str:
    """``val.<metric>`` (``metric`` may already carry the prefix); a missing column is a ``UserError``."""
    column = metric if metric.startswith(VAL_PREFIX) else VAL_PREFIX + metric
    if column not in results.columns:
        recorded = sorted(c[len(VAL_PREFIX):] for c in results.columns if c.startswith(VAL_PREFIX))
        raise UserError(f"the results have no column '{column}' (metrics recorded: "
                        f"{', '.join(recorded) or 'none'}); pick one of those metrics.")
    return column


def check_mode(mode: str) -> str:
    if mode not in ("max", "min"):
        raise UserError(f"mode {mode!r} is neither 'max' nor 'min'; pass mode='max' when larger values "
                        "of the metric are better and mode='min' otherwise.")
    return mode


def target(results: pd.DataFrame, metric: str, mode: str) -> pd.Series:
    """The finite values of ``val.<metric>``, signed so that larger is always better.

    ``mode == "max"``: the values as they are; ``mode == "min"``: their negatives. Rows without a finite
    value (failed or diverged trials) are left out; the index is the results' index, so
    ``feature_frame(results).loc[target(...).index]`` gives the matching inputs.
    """
    column = metric_column(results, metric)
    values = pd.to_numeric(results[column], errors="coerce").astype(float)
    values = values[np.isfinite(values)]
    return values if check_mode(mode) == "max" else -values
