"""``features_gbm``: the classical baseline. Interval and amplitude features per lead, gradient-boosted trees.

The electrolyte study compares its networks with classical machine learning on ECG features; this is
that baseline, searchable in the same space file as the networks (``space.architecture.features_gbm``)
and reported in the same results table. It is an *estimator* architecture (``model_kind="estimator"``,
see ``ecgsearch.train.estimators``): no network, one fit per trial.

Features, per lead (``feature_leads``: the data's leads by default), from neurokit2 (``ecg_peaks``, then
``ecg_delineate`` with the DWT method) on the cached, preprocessed signal:

- rhythm: ``hr_bpm`` (from the median RR interval), ``sdnn_ms`` and ``rmssd_ms`` (HRV of the RR series);
- intervals, medians over the beats: ``pr_ms``, ``qrs_ms``, ``qt_ms``, and ``qtc_ms`` (Bazett:
  QT / sqrt(median RR in s));
- amplitudes, medians over the beats, in the signal's units after preprocessing (z-scored when the
  data section normalises): ``p_amp``, ``q_amp``, ``r_amp``, ``s_amp``, ``t_amp``.

A feature that cannot be measured on a record (fewer than 3 R peaks, no delineated P wave) is NaN;
XGBoost learns where missing values go. Features are extracted once per dataset cache entry and lead.

Model: XGBoost (``tree_method="hist"``): ``binary:logistic`` with one tree per label and round
(multilabel), ``multi:softprob`` (multiclass), one ``reg:squarederror`` model per target fitted on the
records where that target is measured (regression). With ``early_stopping`` the validation split stops
the rounds, and the fitted model keeps only the rounds up to the best one.

Costs (``cost.*``): ``params`` counts tree nodes (a split stores a feature and a threshold, a leaf a
value), ``macs`` is 0 (trees multiply nothing), ``flops`` is at most one comparison per level of every
tree plus one addition per tree for one record (for a fitted model: each tree's depth; before fitting:
``max_depth`` for every possible tree); feature extraction (the delineation) is not counted. The
receptive field is the whole record (the rhythm features read every beat).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ecgsearch import (
    ArchitectureInfo,
    Costs,
    check_int,
    check_number,
    float_param,
    hookimpl,
    int_param,
    list_param,
)
from ecgsearch_plugins._delineation import DelineationError, beat_intervals, delineate, positive_median

NAME = "features_gbm"
EXTRACTOR = "ecg-intervals-v1"  # bump when lead_features computes something else: cached features are keyed by it
FEATURES = ("hr_bpm", "sdnn_ms", "rmssd_ms", "pr_ms", "qrs_ms", "qt_ms", "qtc_ms",
            "p_amp", "q_amp", "r_amp", "s_amp", "t_amp")
AMPLITUDES = {"p_amp": "ECG_P_Peaks", "q_amp": "ECG_Q_Peaks", "s_amp": "ECG_S_Peaks", "t_amp": "ECG_T_Peaks"}
TASKS = ("multilabel", "multiclass", "regression")


def lead_features(signal: np.ndarray, sampling_rate: float) -> np.ndarray:
    """The ``FEATURES`` of one lead of one record (NaN for what cannot be measured)."""
    out = dict.fromkeys(FEATURES, math.nan)
    try:
        rpeaks, waves = delineate(signal, sampling_rate)
    except DelineationError:
        return np.array([out[name] for name in FEATURES])
    rr_ms = np.diff(rpeaks) * 1000.0 / sampling_rate
    out["hr_bpm"] = 60_000.0 / float(np.median(rr_ms))
    out["sdnn_ms"] = float(np.std(rr_ms, ddof=1))
    out["rmssd_ms"] = float(np.sqrt(np.mean(np.diff(rr_ms) ** 2))) if len(rr_ms) > 1 else math.nan
    for name, series in beat_intervals(waves, sampling_rate).items():
        out[name] = positive_median(series)
    out["qtc_ms"] = out["qt_ms"] / math.sqrt(float(np.median(rr_ms)) / 1000.0)
    out["r_amp"] = float(np.median(signal[rpeaks]))
    for name, key in AMPLITUDES.items():
        at = waves.get(key, np.zeros(0))
        at = at[np.isfinite(at)].astype(np.int64)
        out[name] = float(np.median(signal[at])) if len(at) else math.nan
    return np.array([out[name] for name in FEATURES])


class FeaturesGbm:
    """The ``Estimator`` of ``features_gbm`` (factory arguments as in ``PARAMS``)."""

    extractor = EXTRACTOR
    feature_names = FEATURES

    def __init__(self, in_leads: int, num_samples: int, num_outputs: int, n_estimators: int = 300,
                 max_depth: int = 4, learning_rate: float = 0.1, l2: float = 1.0, min_child_weight: float = 1.0,
                 subsample: float = 1.0, early_stopping: int = 20, feature_leads: Sequence[str] | None = None) -> None:
        owner = f"architecture {NAME}"
        self.in_leads = check_int(owner, "in_leads", in_leads, 1)
        self.num_samples = check_int(owner, "num_samples", num_samples, 1)
        self.num_outputs = check_int(owner, "num_outputs", num_outputs, 1)
        self.n_estimators = check_int(owner, "n_estimators", n_estimators, 1, 10_000)
        self.max_depth = check_int(owner, "max_depth", max_depth, 1, 16)
        self.learning_rate = check_number(owner, "learning_rate", learning_rate, 1e-4, 1.0)
        self.l2 = check_number(owner, "l2", l2, 0.0, 1e4)
        self.min_child_weight = check_number(owner, "min_child_weight", min_child_weight, 0.0, 1e4)
        self.subsample = check_number(owner, "subsample", subsample, 0.05, 1.0)
        self.early_stopping = check_int(owner, "early_stopping", early_stopping, 0, 10_000)
        if feature_leads is not None and (isinstance(feature_leads, str) or not feature_leads):
            raise ValueError(f"{owner}: feature_leads must be a non-empty list of lead names or null "
                             f"(got {feature_leads!r}).")
        self.feature_leads = None if feature_leads is None else [str(lead) for lead in feature_leads]
        self.task_kind = ""
        self.boosters: list[Any] = []  # one per regression target, else one
        self.used_leads: list[str] = []

    def leads(self, available: Sequence[str]) -> list[str]:
        if self.feature_leads is None:
            self.used_leads = list(available)
            return self.used_leads
        by_name = {lead.lower(): lead for lead in available}
        missing = [lead for lead in self.feature_leads if lead.lower() not in by_name]
        if missing:
            raise ValueError(f"architecture {NAME}: feature_leads {missing} are not among the data's leads "
                             f"{list(available)}; name leads the data section keeps.")
        self.used_leads = [by_name[lead.lower()] for lead in self.feature_leads]
        return self.used_leads

    def extract(self, signal: np.ndarray, sampling_rate: float) -> np.ndarray:
        return lead_features(signal, sampling_rate)

    def _params(self, objective: str, threads: int, **extra: Any) -> dict[str, Any]:
        return {"objective": objective, "tree_method": "hist", "max_depth": self.max_depth,
                "eta": self.learning_rate, "lambda": self.l2, "min_child_weight": self.min_child_weight,
                "subsample": self.subsample, "nthread": max(1, int(threads)), "seed": 0, **extra}

    def _train(self, params: dict[str, Any], x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
               y_val: np.ndarray) -> Any:
        import xgboost as xgb

        train = xgb.DMatrix(x_train, label=y_train)
        stop = self.early_stopping if self.early_stopping and len(x_val) else None
        evals = [(xgb.DMatrix(x_val, label=y_val), "val")] if stop else []
        booster = xgb.train(params, train, num_boost_round=self.n_estimators, evals=evals,
                            early_stopping_rounds=stop, verbose_eval=False)
        if stop:  # keep the rounds up to the best one only
            booster = booster[: booster.best_iteration + 1]
        return booster

    def fit(self, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, task_kind: str,
            threads: int) -> None:
        if task_kind not in TASKS:
            raise ValueError(f"architecture {NAME} learns {', '.join(TASKS)} tasks, not {task_kind}.")
        self.task_kind = task_kind
        if task_kind == "multilabel":
            self.boosters = [self._train(self._params("binary:logistic", threads), x_train, y_train, x_val, y_val)]
        elif task_kind == "multiclass":
            params = self._params("multi:softprob", threads, num_class=self.num_outputs)
            self.boosters = [self._train(params, x_train, self._classes(y_train), x_val, self._classes(y_val))]
        else:
            self.boosters = [self._fit_target(k, x_train, y_train, x_val, y_val, threads)
                             for k in range(y_train.shape[1])]

    def _fit_target(self, k: int, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                    threads: int) -> Any:
        """One regression target, on the records where it is measured."""
        train, val = np.isfinite(y_train[:, k]), np.isfinite(y_val[:, k])
        if not train.any():
            raise ValueError(f"architecture {NAME}: regression target {k} is not measured on any training record.")
        return self._train(self._params("reg:squarederror", threads), x_train[train], y_train[train, k],
                           x_val[val], y_val[val, k])

    def _classes(self, y: np.ndarray) -> np.ndarray:
        """Class indices of one-hot rows, or of a single column of indices."""
        return y[:, 0].astype(np.int64) if y.shape[1] == 1 else np.argmax(y, axis=1)

    def scores(self, x: np.ndarray) -> np.ndarray:
        import xgboost as xgb

        if not len(x):  # an empty split (XGBoost cannot shape no predictions)
            return np.zeros((0, self.num_outputs), dtype=np.float32)
        matrix = xgb.DMatrix(x)
        if self.task_kind == "regression":
            return np.stack([booster.predict(matrix) for booster in self.boosters], axis=1)
        out = self.boosters[0].predict(matrix)
        return out.reshape(len(x), -1)

    def _trees(self) -> tuple[int, int, int]:
        """(trees, nodes, sum of tree depths) of the fitted boosters."""
        trees = nodes = depths = 0
        for booster in self.boosters:
            frame = booster.trees_to_dataframe()
            trees += frame["Tree"].nunique()
            nodes += len(frame)
            depth = {}
            for row in frame.itertuples():  # parents come before children in xgboost's dump
                depth.setdefault(row.ID, 0)
                if row.Feature != "Leaf":
                    depth[row.Yes] = depth[row.No] = depth[row.ID] + 1
            leaves = frame[frame["Feature"] == "Leaf"]
            depths += int(leaves.assign(depth=leaves["ID"].map(depth)).groupby("Tree")["depth"].max().sum())
        return trees, nodes, depths

    def costs(self) -> Costs:
        leads = len(self.used_leads) if self.used_leads else \
            (len(self.feature_leads) if self.feature_leads else self.in_leads)
        if self.boosters:
            trees, nodes, depths = self._trees()
        else:  # the most the hyperparameters allow: full trees, every round
            trees = self.n_estimators * self.num_outputs
            nodes, depths = trees * (2 ** (self.max_depth + 1) - 1), trees * self.max_depth
        return Costs(params=int(nodes), macs=0, flops=int(depths + trees), receptive_field=self.num_samples,
                     receptive_field_frac=1.0, feature_width=leads * len(FEATURES))

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        for k, booster in enumerate(self.boosters):
            booster.save_model(folder / f"booster_{k}.json")
        (folder / "model.json").write_text(json.dumps(
            {"architecture": NAME, "extractor": EXTRACTOR, "leads": self.used_leads, "features": list(FEATURES),
             "task": self.task_kind, "boosters": len(self.boosters),
             "columns": [f"{lead}.{name}" for lead in self.used_leads for name in FEATURES]}, indent=1))


PARAMS = {
    "n_estimators": int_param(1, 10_000, doc="boosting rounds at most (early stopping may use fewer)"),
    "max_depth": int_param(1, 16, doc="depth of each tree"),
    "learning_rate": float_param(1e-4, 1.0, doc="shrinkage of each round (XGBoost `eta`)"),
    "l2": float_param(0, 1e4, doc="L2 penalty on leaf values (XGBoost `lambda`)"),
    "min_child_weight": float_param(0, 1e4, doc="least hessian weight in a leaf"),
    "subsample": float_param(0.05, 1.0, doc="share of training records drawn for each tree"),
    "early_stopping": int_param(0, 10_000, doc="stop after this many rounds without a better validation loss "
                                                "(0: all rounds)"),
    "feature_leads": list_param("str", nullable=True, doc="leads to extract features from (null: every lead of "
                                                          "the data)"),
}


def default_space() -> dict[str, Any]:
    return {"n_estimators": {"choice": [100, 300, 1000]}, "max_depth": {"choice": [2, 3, 4, 6]},
            "learning_rate": {"loguniform": [0.01, 0.3]}, "subsample": {"choice": [0.7, 1.0]}}


@hookimpl
def ecgsearch_register_architectures() -> list[ArchitectureInfo]:
    return [ArchitectureInfo(name=NAME, family=NAME, factory=FeaturesGbm, default_space=default_space(),
                             params=PARAMS, model_kind="estimator", tasks=TASKS, requires=("neurokit2", "xgboost"),
                             description="classical baseline: neurokit2 interval/amplitude features per lead, "
                                         "XGBoost trees")]
