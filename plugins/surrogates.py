"""Built-in surrogate regressors that predict a trial's metric from its hyperparameters.

``random_forest`` also gives a predictive standard deviation (the spread of its trees' predictions,
as in SMAC), which acquisition functions such as expected improvement need. ``xgboost`` is usually
the more accurate point predictor; its factory is a ``"module:attr"`` string and xgboost is imported
inside it, so listing plugins never imports xgboost.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestRegressor

from ecgsearch import SurrogateInfo, hookimpl


class ForestSurrogate(RandomForestRegressor):
    """A ``RandomForestRegressor`` with ``predict_std``: the standard deviation across its trees."""

    def predict_mean_std(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Mean (equal to ``predict``) and standard deviation of the trees' predictions."""
        per_tree = np.stack([tree.predict(np.asarray(X, dtype=np.float32))
                             for tree in self.estimators_])
        return per_tree.mean(axis=0), per_tree.std(axis=0)

    def predict_std(self, X: Any) -> np.ndarray:
        return self.predict_mean_std(X)[1]


def build_random_forest(seed: int, **params: Any) -> ForestSurrogate:
    """A random forest; ``params`` are ``RandomForestRegressor`` arguments (unknown ones: TypeError)."""
    return ForestSurrogate(**{"n_estimators": 200, "min_samples_leaf": 1, **params},
                           random_state=seed)


def build_xgboost(seed: int, **params: Any) -> Any:
    """A gradient-boosted tree regressor; ``params`` are ``xgboost.XGBRegressor`` arguments.

    Defaults suit the tens to hundreds of trials a search yields: shallow trees, slow learning rate.
    """
    from xgboost import XGBRegressor

    # One thread: surrogates are refitted in the driver while trials use the other cores.
    defaults = {"n_estimators": 300, "max_depth": 4, "learning_rate": 0.05, "subsample": 0.8,
                "colsample_bytree": 0.8, "n_jobs": 1}
    return XGBRegressor(**{**defaults, **params}, random_state=seed)


@hookimpl
def ecgsearch_register_surrogates() -> list[SurrogateInfo]:
    return [
        SurrogateInfo(
            name="random_forest",
            description="random forest (scikit-learn); predictive std from the spread of its trees",
            factory=build_random_forest,
            default_space={"n_estimators": {"choice": [100, 200, 500]},
                           "min_samples_leaf": {"choice": [1, 2, 4]}},
            has_uncertainty=True,
        ),
        SurrogateInfo(
            name="xgboost",
            description="gradient-boosted trees (XGBoost)",
            factory="ecgsearch_plugins.surrogates:build_xgboost",
            default_space={"n_estimators": {"choice": [100, 300, 600]},
                           "max_depth": {"choice": [3, 4, 6]},
                           "learning_rate": {"loguniform": [0.01, 0.3]}},
            requires=("xgboost",),
            install_hint="pip install xgboost",
        ),
    ]
