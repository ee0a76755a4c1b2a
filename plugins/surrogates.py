"""Built-in surrogate regressors that predict a trial's metric from its hyperparameters and costs.

Every built-in has the same interface: ``fit(X, y)``, ``predict(X)``, ``predict_mean_std(X)`` (the
predictive mean and standard deviation that acquisition functions such as expected improvement need)
and ``feature_importances_`` (mean decrease in impurity, summing to 1).

- ``random_forest``: the standard deviation is the spread of its trees' predictions, as in SMAC.
- ``gaussian_process``: the posterior mean and standard deviation of a Gaussian process (Matern 5/2, one
  length scale per feature); it maps the raw encoded features to [0, 1] itself (log where they span a
  factor of 10, "not applicable" fill values to -1).
- ``auto`` (the surrogate searcher's default): the Gaussian process while fitted on at most ``gp_rows``
  rows, the random forest (``max_features=0.5``) beyond.
- ``xgboost`` and ``gradient_boosting``: a boosted model has no spread of its own, so each is a small
  bootstrap ensemble (every member fitted on a resample of the rows, with its own seed) and the
  standard deviation is the spread of the members. The members are cheap (shallow trees).

``xgboost``'s factory is a ``"module:attr"`` string and xgboost is imported inside it, so listing
plugins never imports xgboost; the scikit-learn models are imported when created too (``ForestSurrogate`` is in
``_surrogates_impl.py``). Every model uses one thread: surrogates are refitted in the driver while
the trials use the other cores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ecgsearch import ParamSpec, SurrogateInfo, either, float_param, hookimpl, int_param, str_param

if TYPE_CHECKING:  # annotations only
    from ecgsearch_plugins._surrogates_impl import AutoSurrogate, ForestSurrogate, GaussianProcessSurrogate


class BootstrapEnsemble:
    """``members`` regressors, each fitted on a bootstrap resample of the rows with its own seed.

    ``make(seed)`` builds one member. The mean of the members is the prediction and their spread the
    uncertainty: wide where the data are thin, as a bagged model's are.
    """

    def __init__(self, make: Callable[[int], Any], members: int, seed: int) -> None:
        if members < 2:
            raise ValueError(f"an ensemble needs members >= 2 to estimate a spread, got {members}")
        self.make = make
        self.members = members
        self.seed = seed
        self.models_: list[Any] = []

    def fit(self, X: Any, y: Any) -> BootstrapEnsemble:
        X, y = np.asarray(X, dtype=np.float32), np.asarray(y, dtype=float)
        rng = np.random.default_rng(self.seed)
        self.models_ = []
        for member in range(self.members):
            rows = rng.integers(0, len(X), len(X))
            self.models_.append(self.make(self.seed * 1009 + member).fit(X[rows], y[rows]))
        return self

    def predict_mean_std(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        preds = np.stack([np.asarray(m.predict(np.asarray(X, dtype=np.float32)), dtype=float)
                          for m in self.models_])
        return preds.mean(axis=0), preds.std(axis=0)

    def predict(self, X: Any) -> np.ndarray:
        return self.predict_mean_std(X)[0]

    def predict_std(self, X: Any) -> np.ndarray:
        return self.predict_mean_std(X)[1]

    @property
    def feature_importances_(self) -> np.ndarray:
        importances = np.mean([m.feature_importances_ for m in self.models_], axis=0)
        total = importances.sum()
        return importances / total if total > 0 else importances


def build_random_forest(seed: int, n_estimators: int = 100, min_samples_leaf: int = 1, max_features: Any = 0.8,
                        max_depth: int | None = None, **params: Any) -> ForestSurrogate:
    """A random forest; ``params`` are further ``RandomForestRegressor`` arguments (unknown ones: TypeError).

    ``max_features=0.8`` decorrelates the trees a little (a wider spread than bagging alone) while
    keeping them accurate on the few trials a search has (tuned on the tabular benchmark: see
    docs/benchmarks.md).
    """
    from ecgsearch_plugins._surrogates_impl import ForestSurrogate  # deferred: scikit-learn

    return ForestSurrogate(**{"n_jobs": 1, **params}, n_estimators=n_estimators, min_samples_leaf=min_samples_leaf,
                           max_features=max_features, max_depth=max_depth, random_state=seed)


def build_gaussian_process(seed: int, restarts: int = 2, log_ratio: float = 10.0,
                           nu: float = 2.5) -> GaussianProcessSurrogate:
    """A Gaussian process (see ``GaussianProcessSurrogate``)."""
    from ecgsearch_plugins._surrogates_impl import GaussianProcessSurrogate  # deferred: scikit-learn

    return GaussianProcessSurrogate(restarts=restarts, log_ratio=log_ratio, nu=nu, random_state=seed)


def build_auto(seed: int, gp_rows: int = 200, gp: dict[str, Any] | None = None,
               forest: dict[str, Any] | None = None) -> AutoSurrogate:
    """The searcher's default: ``gaussian_process`` while fitted on at most ``gp_rows`` rows, ``random_forest``
    beyond; ``gp`` and ``forest`` are the keyword arguments of each (the searcher sets the forest's)."""
    from ecgsearch_plugins._surrogates_impl import AutoSurrogate  # deferred: scikit-learn

    gp, forest = dict(gp or {}), dict(forest or {})
    build_gaussian_process(seed, **gp)  # unknown options fail now, not at the first fit
    build_random_forest(seed, **forest)
    return AutoSurrogate(lambda: build_gaussian_process(seed, **gp), lambda: build_random_forest(seed, **forest),
                         gp_rows)


def build_xgboost(seed: int, members: int = 5, n_estimators: int = 200, max_depth: int = 4,
                  learning_rate: float = 0.08, **params: Any) -> BootstrapEnsemble:
    """A bootstrap ensemble of ``xgboost.XGBRegressor``; ``params`` are further XGBRegressor arguments.

    Defaults suit the tens to thousands of trials a search yields: shallow trees, slow learning rate.
    """
    from xgboost import XGBRegressor

    settings = {"subsample": 0.9, "colsample_bytree": 0.8, "n_jobs": 1, "tree_method": "hist", **params,
                "n_estimators": n_estimators, "max_depth": max_depth, "learning_rate": learning_rate}
    unknown = sorted(set(params) - set(XGBRegressor().get_params()))
    if unknown:  # XGBRegressor takes **kwargs and would only warn at the first fit
        raise TypeError(f"XGBRegressor got unexpected keyword arguments {unknown}")
    return BootstrapEnsemble(lambda s: XGBRegressor(**settings, random_state=s), members, seed)


def build_gradient_boosting(seed: int, members: int = 5, n_estimators: int = 150, learning_rate: float = 0.08,
                            max_depth: int = 3, **params: Any) -> BootstrapEnsemble:
    """A bootstrap ensemble of scikit-learn's ``GradientBoostingRegressor`` (``params``: further arguments)."""
    from sklearn.ensemble import GradientBoostingRegressor  # deferred: scikit-learn

    settings = {"subsample": 0.9, **params, "n_estimators": n_estimators, "learning_rate": learning_rate,
                "max_depth": max_depth}
    GradientBoostingRegressor(**settings)  # unknown arguments fail now
    return BootstrapEnsemble(lambda s: GradientBoostingRegressor(**settings, random_state=s), members, seed)


# what a space file may set in ``search.surrogate_params`` (checked by ``ecgsearch validate``); the factories
# pass further keyword arguments on to the scikit-learn / XGBoost model as they are
FOREST_OPTIONS = {
    "n_estimators": int_param(1, 100_000, doc="trees"),
    "min_samples_leaf": int_param(1, None, doc="fewest rows in a leaf"),
    "max_features": either(float_param(0, 1, low_open=True), str_param("sqrt", "log2"), nullable=True,
                           doc="share of the features each split considers (sqrt, log2, or null for all)"),
    "max_depth": int_param(1, None, nullable=True, doc="deepest tree (null: grown until the leaves are pure)"),
}
GP_OPTIONS = {
    "restarts": int_param(0, 100, doc="extra starts of the marginal-likelihood optimiser"),
    "log_ratio": float_param(1, None, low_open=True, doc="a positive feature spanning this factor is log-scaled"),
    "nu": ParamSpec("float", choices=(0.5, 1.5, 2.5), doc="the Matern kernel's smoothness"),
}
AUTO_OPTIONS = {
    "gp_rows": int_param(0, None, doc="the Gaussian process while fitted on at most this many rows"),
    "gp": ParamSpec("mapping", nullable=True, options_of="surrogates:gaussian_process",
                    doc="options of the Gaussian process"),
    "forest": ParamSpec("mapping", nullable=True, options_of="surrogates:random_forest",
                        doc="options of the random forest"),
}


def boosting_params(depth_high: int) -> dict[str, ParamSpec]:
    """The declared options of a bootstrap ensemble of boosted trees."""
    return {
        "members": int_param(2, 1000, doc="ensemble members (their spread is the predictive std)"),
        "n_estimators": int_param(1, 100_000, doc="boosting rounds per member"),
        "max_depth": int_param(1, depth_high, doc="deepest tree"),
        "learning_rate": float_param(0, 1, low_open=True, doc="shrinkage per round"),
    }


@hookimpl
def ecgsearch_register_surrogates() -> list[SurrogateInfo]:
    return [
        SurrogateInfo(
            name="random_forest",
            description="random forest (scikit-learn); predictive std from the spread of its trees",
            factory=build_random_forest,
            params=FOREST_OPTIONS,
            default_space={"n_estimators": {"choice": [100, 200, 500]},
                           "min_samples_leaf": {"choice": [1, 2, 4]}},
            has_uncertainty=True,
        ),
        SurrogateInfo(
            name="gaussian_process",
            description="Gaussian process (scikit-learn, Matern 5/2, one length scale per feature); predictive "
                        "std from the posterior",
            factory=build_gaussian_process,
            params=GP_OPTIONS,
            default_space={"nu": {"choice": [1.5, 2.5]}},
            has_uncertainty=True,
        ),
        SurrogateInfo(
            name="auto",
            description="a Gaussian process while fitted on at most 200 rows, a random forest beyond (the "
                        "surrogate searcher's default)",
            factory=build_auto,
            params=AUTO_OPTIONS,
            default_space={"gp_rows": {"choice": [100, 200, 400]}},
            has_uncertainty=True,
        ),
        SurrogateInfo(
            name="xgboost",
            description="gradient-boosted trees (XGBoost); predictive std from a bootstrap ensemble",
            factory="ecgsearch_plugins.surrogates:build_xgboost",
            params=boosting_params(depth_high=32),
            default_space={"n_estimators": {"choice": [100, 200, 400]},
                           "max_depth": {"choice": [3, 4, 6]},
                           "learning_rate": {"loguniform": [0.01, 0.3]}},
            requires=("xgboost",),
            install_hint="pip install xgboost",
            has_uncertainty=True,
        ),
        SurrogateInfo(
            name="gradient_boosting",
            description="gradient boosting (scikit-learn); predictive std from a bootstrap ensemble",
            factory=build_gradient_boosting,
            params=boosting_params(depth_high=100),
            default_space={"n_estimators": {"choice": [100, 150, 300]},
                           "learning_rate": {"loguniform": [0.01, 0.3]}},
            has_uncertainty=True,
        ),
    ]
