"""A surrogate plugin plus its feature encoding: fit on trials, predict mean and spread for candidates."""

from __future__ import annotations

import logging
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ecgsearch.errors import UserError
from ecgsearch.plugins import get_registries
from ecgsearch.search.features import FeatureEncoder

log = logging.getLogger(__name__)


def surrogate_info(name: str, registries: Any = None) -> Any:
    """The registered, usable surrogate ``name``; otherwise a ``UserError`` naming the choices or the fix."""
    if registries is None:
        registries = get_registries()
    if name not in registries.surrogates:
        raise UserError(f"surrogate {name!r} is not a registered surrogate (registered: "
                        f"{', '.join(registries.surrogates.names())}); pick one of those names.")
    info = registries.surrogates.get(name)
    usable, reason = info.available()
    if not usable:
        raise UserError(f"surrogate {name!r} cannot be used: it {reason}.")
    return info


class SurrogateModel:
    """``fit(features, y)`` then ``predict(features) -> (mean, std)`` on feature frames.

    The encoding is fitted with the model, so candidates are encoded exactly like the training rows.
    A plugin regressor without ``predict_mean_std`` gives a zero spread (acquisitions then rank by the
    mean alone).
    """

    def __init__(self, name: str = "random_forest", seed: int = 0, params: Mapping[str, Any] | None = None,
                 registries: Any = None) -> None:
        self.name = name
        self.seed = seed
        self.params = dict(params or {})
        self.info = surrogate_info(name, registries)
        self.encoder: FeatureEncoder | None = None
        self.regressor: Any = None

    def check(self) -> None:
        """Fit the surrogate once on a small made-up problem, so that an option value it refuses (one the
        plugin passes on to its model without declaring it) fails before any trial, in one sentence.

        Options declared as another surrogate's (``options_of="surrogates:NAME"``, as ``auto``'s ``forest``)
        are checked on that surrogate as well: the made-up problem may never reach the model they configure
        (``auto`` fits its forest only beyond ``gp_rows`` rows)."""
        rng = np.random.default_rng(0)
        X = rng.random((8, 2))
        self._created(X, X.sum(axis=1))
        for name, value in self.params.items():
            spec = self.info.params.get(name)
            owner = spec.options_item if spec is not None else None
            if owner is not None and owner[0] == "surrogates" and value:
                try:
                    SurrogateModel(owner[1], self.seed, value).check()
                except UserError as error:
                    raise UserError(f"surrogate {self.name!r}, option {name!r}: {error}") from None

    def _created(self, X: np.ndarray, y: np.ndarray) -> Any:
        try:
            return self.info.create(self.seed, **self.params).fit(X, y)
        except (TypeError, ValueError) as error:
            raise UserError(f"surrogate {self.name!r}: the options {self.params} are not all accepted ({error}); "
                            "see `ecgsearch plugins --params --kind surrogates` and the model's documentation."
                            ) from None

    def fit(self, features: pd.DataFrame, y: Any) -> SurrogateModel:
        y = np.asarray(y, dtype=float)
        if len(features) != len(y) or len(y) < 2:
            raise ValueError(f"need matching features and targets with >= 2 rows, got {len(features)} and {len(y)}")
        self.encoder = FeatureEncoder.fit(features)
        X = self.encoder.transform(features)
        if X.shape[1] == 0:  # nothing varies: a constant model
            X = np.zeros((len(y), 1), dtype=np.float32)
        self.regressor = self._created(X, y)
        return self

    def _matrix(self, features: pd.DataFrame) -> np.ndarray:
        if self.encoder is None:
            raise RuntimeError("the surrogate is not fitted yet")
        X = self.encoder.transform(features)
        return X if X.shape[1] else np.zeros((len(features), 1), dtype=np.float32)

    def predict(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean and standard deviation of each row."""
        X = self._matrix(features)
        if hasattr(self.regressor, "predict_mean_std"):
            mean, std = self.regressor.predict_mean_std(X)
            return np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
        return np.asarray(self.regressor.predict(X), dtype=float), np.zeros(len(X))

    @property
    def feature_names(self) -> list[str]:
        return self.encoder.names if self.encoder is not None else []

    def importances(self) -> pd.Series:
        """Impurity (Gini/variance-reduction) importance per encoded feature, summing to 1 (NaN if unknown)."""
        names = self.feature_names
        values = getattr(self.regressor, "feature_importances_", None)
        if values is None or not names or len(values) != len(names):
            return pd.Series(np.nan, index=names, dtype=float)
        return pd.Series(np.asarray(values, dtype=float), index=names)
