"""The surrogate plugins share one interface: fit, predict, predict_mean_std, feature_importances_."""

from __future__ import annotations

import numpy as np
import pytest

from ecgsearch.analysis import SurrogateModel
from ecgsearch.errors import UserError
from ecgsearch.plugins import get_registries
from ecgsearch_plugins.surrogates import BootstrapEnsemble

REGS = get_registries()
BUILTIN = ["random_forest", "xgboost", "gradient_boosting", "gaussian_process", "auto"]
SMALL = {"random_forest": {"n_estimators": 30}, "xgboost": {"n_estimators": 60, "members": 3},
         "gradient_boosting": {"n_estimators": 60, "members": 3}, "gaussian_process": {"restarts": 0},
         "auto": {"gp_rows": 100}}  # auto: the forest on the 200-row tests, the process on the 150-row one


def data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(n, 3))
    return X, np.sin(4 * X[:, 0]) + X[:, 1] + 0.05 * rng.standard_normal(n)


@pytest.mark.parametrize("name", BUILTIN)
def test_every_builtin_predicts_a_mean_and_a_spread(name: str) -> None:
    info = REGS.surrogates.get(name)
    assert info.has_uncertainty
    X, y = data(200, 0)
    model = info.create(3, **SMALL[name]).fit(X, y)
    X_new, y_new = data(50, 1)
    mean, std = model.predict_mean_std(X_new)
    np.testing.assert_allclose(mean, model.predict(X_new), rtol=1e-5, atol=1e-6)
    assert np.corrcoef(mean, y_new)[0, 1] > 0.8
    assert std.shape == (50,) and (std >= 0).all() and std.max() > 0
    importances = model.feature_importances_
    assert importances.shape == (3,) and importances.sum() == pytest.approx(1.0)
    assert importances[2] < min(importances[0], importances[1])  # feature 2 is noise
    again = info.create(3, **SMALL[name]).fit(X, y).predict_mean_std(X_new)
    np.testing.assert_allclose(again[0], mean)  # seeded


@pytest.mark.parametrize("name", BUILTIN)
def test_the_spread_is_wider_away_from_the_data(name: str) -> None:
    """Trained on x0 < 0.5 only, the models are less sure about x0 > 0.5 (where y also jumps)."""
    X, _ = data(300, 2)
    X = X[X[:, 0] < 0.5]
    y = X[:, 1] + 2 * (X[:, 0] > 0.45) + 0.05 * np.random.default_rng(0).standard_normal(len(X))
    model = REGS.surrogates.get(name).create(0, **SMALL[name]).fit(X, y)
    _, std_in = model.predict_mean_std(np.column_stack([np.full(50, 0.2), np.linspace(0, 1, 50), np.full(50, .5)]))
    _, std_edge = model.predict_mean_std(np.column_stack([np.full(50, 0.47), np.linspace(0, 1, 50), np.full(50, .5)]))
    assert std_edge.mean() > std_in.mean()


def test_unknown_options_fail_when_the_model_is_built() -> None:
    for name, option in (("xgboost", "n_trees"), ("gradient_boosting", "n_trees"), ("random_forest", "n_trees")):
        with pytest.raises(TypeError, match="n_trees"):
            REGS.surrogates.get(name).create(0, n_trees=5)
    with pytest.raises(ValueError, match="members >= 2"):
        BootstrapEnsemble(lambda s: None, members=1, seed=0)


def test_surrogate_model_names_the_registered_surrogates_and_bad_options() -> None:
    with pytest.raises(UserError, match=r"surrogate 'forest' is not a registered surrogate \(registered: .*"
                                        r"random_forest.*\); pick one of those names\."):
        SurrogateModel("forest")
    X, y = data(30, 0)
    import pandas as pd

    frame = pd.DataFrame(X, columns=["hp.a", "hp.b", "hp.c"])
    with pytest.raises(UserError, match=r"surrogate 'random_forest': the options \{'n_trees': 3\} are not all "
                                        r"accepted"):
        SurrogateModel("random_forest", params={"n_trees": 3}).fit(frame, y)


def test_the_gaussian_process_scales_log_ranges_and_keeps_not_applicable_apart() -> None:
    """Encoded columns come raw: a log-uniform learning rate, and a parameter of an option not chosen filled
    far below its range. The process maps the first to log scale and the fill one step outside [0, 1], so
    the real values keep their resolution and the fit learns the curve in log(lr)."""
    rng = np.random.default_rng(0)
    lr = np.exp(rng.uniform(np.log(1e-5), np.log(1e-1), 60))
    width = rng.uniform(16, 64, 60)
    active = rng.uniform(size=60) < 0.7
    encoded_width = np.where(active, width, 16 - 10 * (64 - 16 + 1))  # the encoder's fill for an inactive value
    y = -(np.log10(lr) + 3) ** 2 + np.where(active, width / 64, -1.0)
    X = np.column_stack([lr, encoded_width])
    model = REGS.surrogates.get("gaussian_process").create(0).fit(X, y)
    (log_lr, *_), (log_width, low, high, fill) = model.columns_
    assert log_lr and not log_width and fill is not None and low == pytest.approx(width[active].min())
    scaled = model._scale(X)
    assert scaled[~active, 1].tolist() == [-1.0] * int((~active).sum())
    assert 0.0 <= scaled[active, 1].min() and scaled[active, 1].max() <= 1.0
    grid = np.column_stack([np.geomspace(1e-5, 1e-1, 9), np.full(9, 40.0)])
    assert np.argmax(model.predict(grid)) == 4  # the optimum at lr = 1e-3


def test_auto_is_a_process_on_few_rows_and_a_forest_on_many() -> None:
    from ecgsearch_plugins._surrogates_impl import ForestSurrogate, GaussianProcessSurrogate

    info = REGS.surrogates.get("auto")
    X, y = data(60, 0)
    assert isinstance(info.create(0, gp_rows=60).fit(X, y).model_, GaussianProcessSurrogate)
    assert isinstance(info.create(0, gp_rows=59).fit(X, y).model_, ForestSurrogate)
    with pytest.raises(ValueError, match="gp_rows must be >= 0, got -1"):
        info.create(0, gp_rows=-1)
