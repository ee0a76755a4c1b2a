"""Why some trials did better: cross-validated surrogate accuracy and per-feature importance.

The ConvNeXt design-space study fitted a tree model on its random trials and reported how well it
predicts held-out trials (3-fold CV Pearson r) and which hyperparameters matter (impurity importance
and Spearman correlation), pooled and within each optimizer. ``explain`` does the same for any run.

Every row with a finite ``val.<metric>`` takes part, whatever its status; when trials trained for
different numbers of epochs (an ASHA run) ``epochs`` is a feature, so partly trained trials inform the
model without being mistaken for fully trained ones. Values in the output are in the metric's own
units and direction (``true``, ``predicted``, ``mae``); ``spearman`` is the rank correlation of a
feature with the metric as recorded (positive: larger feature values go with larger metric values).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.model_selection import KFold

from ecgsearch.errors import UserError
from ecgsearch.search.features import feature_frame, target
from ecgsearch.search.surrogate_model import SurrogateModel, surrogate_info

if TYPE_CHECKING:
    from ecgsearch.space import Space

log = logging.getLogger(__name__)

POOLED = "all"


@dataclass(frozen=True)
class Explanation:
    """The outcome of ``explain``.

    cv: one row per group (``all`` first): group, n, pearson_r, spearman_rho, mae (NaN for a group
        with fewer than ``2 * folds`` trials, which is not cross-validated).
    predictions: the out-of-fold predictions: trial_id, group, true, predicted.
    importance: group, feature, impurity (of the model fitted on the whole group), spearman.
    """

    metric: str
    mode: str
    surrogate: str
    folds: int
    group_by: str | None
    cv: pd.DataFrame
    predictions: pd.DataFrame
    importance: pd.DataFrame


def _corr(a: np.ndarray, b: np.ndarray, rank: bool) -> float:
    """Pearson (or Spearman) correlation; NaN when either side is constant or too short."""
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    if rank:
        return float(spearmanr(a, b).statistic)
    return float(np.corrcoef(a, b)[0, 1])


def _feature_spearman(model: SurrogateModel, features: pd.DataFrame, values: np.ndarray) -> pd.Series:
    """Spearman rho of every encoded feature with the metric, over the rows where the feature applies."""
    assert model.encoder is not None
    X = model.encoder.transform(features)
    out = {}
    for j, name in enumerate(model.feature_names):
        present = features[model.encoder.source(name)].notna().to_numpy() if name in model.encoder.numeric \
            else np.ones(len(features), dtype=bool)
        out[name] = _corr(X[present, j], values[present], rank=True)
    return pd.Series(out, dtype=float)


def _group(name: str, features: pd.DataFrame, y: pd.Series, sign: float, trial_ids: pd.Series,
           surrogate: str, folds: int, seed: int) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """CV statistics, out-of-fold predictions and importance of one group."""
    n = len(y)
    row: dict[str, Any] = {"group": name, "n": n, "pearson_r": np.nan, "spearman_rho": np.nan, "mae": np.nan}
    no_predictions = pd.DataFrame(columns=["trial_id", "group", "true", "predicted"])
    if n < 2 * folds:
        log.info("group %s has %d trials, fewer than 2 x %d folds: not cross-validated", name, n, folds)
        return row, no_predictions, pd.DataFrame(columns=["group", "feature", "impurity", "spearman"])
    predicted = np.empty(n)
    for train, test in KFold(n_splits=folds, shuffle=True, random_state=seed).split(features):
        model = SurrogateModel(surrogate, seed).fit(features.iloc[train], y.iloc[train])
        predicted[test] = model.predict(features.iloc[test])[0]
    true = sign * y.to_numpy()
    predicted = sign * predicted
    row.update(pearson_r=_corr(true, predicted, rank=False), spearman_rho=_corr(true, predicted, rank=True),
               mae=float(np.mean(np.abs(true - predicted))))
    predictions = pd.DataFrame({"trial_id": trial_ids.to_numpy(), "group": name, "true": true,
                                "predicted": predicted})
    full = SurrogateModel(surrogate, seed).fit(features, y)
    importance = pd.DataFrame({"group": name, "feature": full.feature_names,
                               "impurity": full.importances().to_numpy(),
                               "spearman": _feature_spearman(full, features, true).to_numpy()})
    return row, predictions, importance.sort_values("impurity", ascending=False, kind="stable")


def explain(results: pd.DataFrame, metric: str, mode: str, surrogate: str = "random_forest", folds: int = 3,
            group_by: str | None = "optimizer", seed: int = 0, space: Space | None = None) -> Explanation:
    """k-fold cross-validated surrogate accuracy and feature importance, pooled (``all``) and per group.

    results: a results table (``ecgsearch.results.read_results``); metric: ``macro_auroc`` or
    ``val.macro_auroc``; mode: ``max`` or ``min``; group_by: a column whose values form the groups
    (None: pooled only); space: the run's ``Space`` (optional; fixes the feature columns).
    """
    if not isinstance(folds, int) or folds < 2:
        raise UserError(f"folds={folds!r} is not an integer >= 2; cross-validation needs at least 2 folds.")
    surrogate_info(surrogate)
    y = target(results, metric, mode)
    if len(y) < 2 * folds:
        raise UserError(f"explaining {metric} needs at least {2 * folds} trials with a finite value for {folds}-fold "
                        f"cross-validation, and the results have {len(y)}; run more trials or lower folds.")
    if group_by is not None and group_by not in results.columns:
        raise UserError(f"group_by={group_by!r} is not a column of the results (e.g. optimizer, architecture); "
                        "pass one of the results' columns or None.")
    sign = 1.0 if mode == "max" else -1.0
    rows = results.loc[y.index]
    features = feature_frame(rows, space, fidelity="epochs" in rows.columns)
    trial_ids = rows["trial_id"].astype(str) if "trial_id" in rows.columns else \
        pd.Series(rows.index.astype(str), index=rows.index)
    groups: list[tuple[str, pd.Index]] = [(POOLED, rows.index)]
    if group_by is not None:
        groups += [(str(value), index) for value, index in rows.groupby(group_by, sort=True).groups.items()]
    stats, predictions, importance = [], [], []
    for name, index in groups:
        row, pred, imp = _group(name, features.loc[index], y.loc[index], sign, trial_ids.loc[index],
                                surrogate, folds, seed)
        stats.append(row)
        predictions.append(pred)
        importance.append(imp)
    return Explanation(
        metric=metric, mode=mode, surrogate=surrogate, folds=folds, group_by=group_by,
        cv=pd.DataFrame(stats, columns=["group", "n", "pearson_r", "spearman_rho", "mae"]),
        predictions=pd.concat([p for p in predictions if len(p)] or predictions[:1], ignore_index=True),
        importance=pd.concat([i for i in importance if len(i)] or importance[:1], ignore_index=True),
    )
