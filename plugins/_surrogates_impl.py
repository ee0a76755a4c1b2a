"""The random forest, the Gaussian process and ``auto`` (one, then the other) of ``surrogates.py``, imported
when a surrogate is created: listing the plugin or checking a space file needs only ``surrogates.py``, which
imports no scikit-learn.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

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


class GaussianProcessSurrogate:
    """A Gaussian process (scikit-learn): Matern 5/2 kernel with one length scale per feature, a white-noise
    term, hyperparameters by maximum marginal likelihood (``restarts`` extra starts).

    The features are the search's encoding (raw values; a hyperparameter of an option not chosen filled far
    below its range), so each column is mapped to [0, 1] here: log-scaled where its values are positive and
    span ``log_ratio`` or more, and a fill value (the column's minimum, further below the other values than
    their own range) mapped to -1, one step outside, so "not applicable" stays apart without squeezing the
    real values. A candidate beyond the fitted rows' range is scaled as it is (beyond [0, 1]): far from the
    data, the process predicts its prior mean with its largest spread there.
    """

    def __init__(self, restarts: int = 2, log_ratio: float = 10.0, nu: float = 2.5, random_state: int = 0) -> None:
        self.restarts, self.log_ratio, self.nu, self.random_state = restarts, log_ratio, nu, random_state
        self.columns_: list[tuple[bool, float, float, float | None]] = []  # (log, low, high, fill)

    def _column(self, x: np.ndarray) -> tuple[bool, float, float, float | None]:
        fill = None
        low = float(x.min())
        rest = x[x > low]
        if len(rest) and (float(rest.min()) - low) > 2.0 * (float(rest.max()) - float(rest.min()) + 1e-12):
            fill, x = low, rest
        log = bool(x.min() > 0 and x.max() / x.min() >= self.log_ratio)
        values = np.log(x) if log else x
        return log, float(values.min()), float(values.max()), fill

    def _scale(self, X: np.ndarray) -> np.ndarray:
        out = np.empty(X.shape, dtype=float)
        for j, (log, low, high, fill) in enumerate(self.columns_):
            x = X[:, j].astype(float)
            inactive = np.zeros(len(x), dtype=bool) if fill is None else x <= fill
            safe = np.where(inactive, high if not log else np.exp(high), x)
            values = np.log(np.maximum(safe, 1e-300)) if log else safe
            scaled = (values - low) / (high - low) if high > low else np.zeros(len(x))
            out[:, j] = np.where(inactive, -1.0, scaled)
        return out

    def fit(self, X: Any, y: Any) -> GaussianProcessSurrogate:
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
        self.columns_ = [self._column(X[:, j]) for j in range(X.shape[1])]
        kernel = (ConstantKernel(1.0, (1e-2, 1e2)) * Matern(np.ones(X.shape[1]), (1e-2, 1e2), nu=self.nu)
                  + WhiteKernel(1e-2, (1e-6, 1.0)))
        self.model_ = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=self.restarts,
                                               random_state=self.random_state)
        with warnings.catch_warnings():  # a bound reached by the fit is not an error here
            warnings.simplefilter("ignore")
            self.model_.fit(self._scale(X), y)
        return self

    def predict_mean_std(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        mean, std = self.model_.predict(self._scale(np.asarray(X, dtype=float)), return_std=True)
        return np.asarray(mean, dtype=float), np.asarray(std, dtype=float)

    def predict(self, X: Any) -> np.ndarray:
        return self.predict_mean_std(X)[0]

    @property
    def feature_importances_(self) -> np.ndarray:
        """Inverse length scales, summing to 1: a feature the fit found flat has a long one."""
        inverse = 1.0 / np.asarray(self.model_.kernel_.k1.k2.length_scale, dtype=float).reshape(-1)
        return inverse / inverse.sum()


class AutoSurrogate:
    """``small()`` (a Gaussian process) while the model is fitted on at most ``gp_rows`` rows, ``large()`` (a
    random forest) beyond: the process models the first tens of trials more sharply (smooth in every
    hyperparameter, its spread grows away from the data), the forest scales to the thousands of trials a
    long search keeps (the process costs the cube of the rows)."""

    def __init__(self, small: Callable[[], Any], large: Callable[[], Any], gp_rows: int = 200) -> None:
        if gp_rows < 0:
            raise ValueError(f"gp_rows must be >= 0, got {gp_rows}")
        self.small, self.large, self.gp_rows = small, large, gp_rows

    def fit(self, X: Any, y: Any) -> AutoSurrogate:
        self.model_ = (self.small if len(y) <= self.gp_rows else self.large)().fit(X, y)
        return self

    def predict_mean_std(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        return self.model_.predict_mean_std(X)

    def predict(self, X: Any) -> np.ndarray:
        return self.model_.predict(X)

    @property
    def feature_importances_(self) -> np.ndarray:
        return self.model_.feature_importances_
