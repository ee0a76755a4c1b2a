"""Metric edge cases against scikit-learn, and the one sentence a metric says about bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from ecgsearch.plugins import get_registries
from ecgsearch_plugins.metrics import expected_calibration_error, macro_auprc, macro_auroc, regression_ece


def test_macro_auprc_counts_a_class_whose_records_are_all_positive():
    y_true = np.array([[1, 0], [1, 1], [1, 0], [1, 1]])
    y_score = np.array([[0.2, 0.1], [0.9, 0.8], [0.5, 0.3], [0.1, 0.7]])
    expected = np.mean([average_precision_score(y_true[:, k], y_score[:, k]) for k in range(2)])
    assert macro_auprc(y_true, y_score, None) == pytest.approx(expected)  # before: NaN-free, class 0 dropped
    assert average_precision_score(y_true[:, 0], y_score[:, 0]) == 1.0
    # ROC AUC is undefined without negatives: that class alone is left out of the macro
    assert macro_auroc(y_true, y_score, None) == pytest.approx(roc_auc_score(y_true[:, 1], y_score[:, 1]))


def test_a_class_without_positives_is_left_out_of_both():
    y_true = np.array([[0, 1], [0, 0], [0, 1]])
    y_score = np.array([[0.3, 0.9], [0.2, 0.1], [0.6, 0.4]])
    assert macro_auprc(y_true, y_score, None) == pytest.approx(average_precision_score(y_true[:, 1], y_score[:, 1]))
    assert np.isnan(macro_auroc(y_true[:, :1], y_score[:, :1], None))


@pytest.mark.parametrize("metric", [m.name for m in get_registries().metrics if "multilabel" in m.tasks])
def test_every_multilabel_metric_refuses_nan_scores_in_one_sentence(metric):
    info = get_registries().metrics.get(metric)
    fn = info.create(thresholds=None) if info.thresholded else info.create()
    y_true = np.array([[1, 0], [0, 1], [1, 1]])
    with pytest.raises(ValueError, match=r"^y_score holds NaN or infinite values; metrics need finite scores"):
        fn(y_true, np.array([[0.5, np.nan], [0.1, 0.2], [0.3, 0.4]]), ["a", "b"])


def test_ece_says_it_needs_probabilities():
    with pytest.raises(ValueError, match=r"^y_score must be probabilities in \[0, 1\], got values from -2 to 3; "
                                         r"pass the task's scores, not the model's raw outputs\.$"):
        expected_calibration_error(np.array([[1, 0]]), np.array([[-2.0, 3.0]]))


def test_regression_ece_reaches_its_stated_bound_of_one_half():
    y = np.random.default_rng(0).normal(size=(500, 1))
    overconfident = np.c_[y + 50, np.full((500, 1), 1e-6)]  # no interval covers anything
    underconfident = np.c_[y, np.full((500, 1), 1e12)]  # every interval covers everything
    assert regression_ece(y, overconfident) == pytest.approx(0.5)
    assert regression_ece(y, underconfident) == pytest.approx(0.5)
    assert regression_ece(y, np.c_[np.zeros((500, 1)), np.ones((500, 1))]) < 0.05  # calibrated: N(0, 1) for N(0, 1)
