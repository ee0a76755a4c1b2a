"""The random forest of ``surrogates.py`` (a scikit-learn subclass), imported when the surrogate is created:
listing the plugin or checking a space file needs only ``surrogates.py``, which imports no scikit-learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestRegressor


class ForestSurrogate(RandomForestRegressor):
    """A ``RandomForestRegressor`` with ``predict_mean_std``: the mean and spread of its trees."""

    def predict_mean_std(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Mean (equal to ``predict``) and standard deviation of the trees' predictions.

        Accumulated tree by tree (sum and sum of squares), so 100,000 candidates never hold a
        trees x candidates matrix in memory. The input is checked once, here, and each fitted tree's
        structure (``tree_``) is evaluated directly: ``DecisionTreeRegressor.predict`` would check it
        again for every tree, which is most of the time on the few thousand candidates a search scores.
        """
        X = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has shape {X.shape}; the forest was fitted on {self.n_features_in_} features")
        total = np.zeros(len(X))
        squares = np.zeros(len(X))
        for tree in self.estimators_:
            pred = tree.tree_.predict(X)[:, 0].reshape(len(X))
            total += pred
            squares += pred * pred
        n = len(self.estimators_)
        mean = total / n
        return mean, np.sqrt(np.maximum(squares / n - mean * mean, 0.0))

    def predict_std(self, X: Any) -> np.ndarray:
        return self.predict_mean_std(X)[1]
