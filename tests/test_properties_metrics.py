"""Property-based tests (Hypothesis) of the built-in metrics on random label and score tables.

Each metric is compared with an independent reference (scikit-learn, scipy, or a plain loop written from
its definition in docs/metrics.md) on random inputs with many ties, and checked for invariance under
permutations of the records and of the classes, and for its bounds. Scores are finite (and in [0, 1]
for the classification metrics); what a metric does with anything else ("What metrics need": one
sentence refusing it) is a property of its own.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="the property-based tests need Hypothesis (pip install hypothesis)")

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import norm
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    mean_absolute_error,
    roc_auc_score,
)

from ecgsearch_plugins import _challenge2021 as challenge
from ecgsearch_plugins import metrics as metrics_plugin

PROPERTY = settings(derandomize=True, deadline=None, max_examples=50, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# The registered metrics, exactly as the built-in plugin registers them (its hook, without importing
# every other plugin: the architectures pull in torch).
METRICS = {info.name: info for info in metrics_plugin.ecgsearch_register_metrics()}
MULTILABEL = sorted(name for name, info in METRICS.items() if "multilabel" in info.tasks)
NORMAL = challenge.NORMAL_CODE
UNSCORED = ("000000001", "999999999", "PVC-like")  # label names that are no scored Challenge class


def metric(name: str, thresholds: np.ndarray | None = None):
    info = METRICS[name]
    return info.create(thresholds=thresholds) if info.thresholded else info.create()


def call(name: str, y_true, y_score, names, thresholds=None) -> float:
    with warnings.catch_warnings():  # scikit-learn warns about degenerate classes; values are what count
        warnings.simplefilter("ignore")
        return float(metric(name, thresholds)(y_true, y_score, names))


def same(a: float, b: float, rel: float = 1e-9, abs_: float = 1e-12) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


# ---------------------------------------------------------------- strategies


@st.composite
def scores_like(draw, shape: tuple[int, int]) -> np.ndarray:
    """Scores in [0, 1]: on a coarse grid (many ties, values exactly at 0.5 and at the thresholds) or any float."""
    grid = draw(st.sampled_from([2, 4, 20, None]))
    if grid is None:
        return draw(arrays(float, shape, elements=st.floats(0.0, 1.0, allow_nan=False)))
    return draw(arrays(np.int64, shape, elements=st.integers(0, grid))) / grid


@st.composite
def multilabel(draw, min_records: int = 1, max_records: int = 25, max_classes: int = 5):
    """``(y_true, y_score)``: 0/1 labels (all-positive and all-negative classes happen often) and scores."""
    n = draw(st.integers(min_records, max_records))
    k = draw(st.integers(1, max_classes))
    y_true = draw(arrays(np.int64, (n, k), elements=st.integers(0, 1))).astype(float)
    return y_true, draw(scores_like((n, k)))


# each scored class under any of its spellings (a merged class: either code or both joined), then the
# unscored names; one entry per possible column
SPELLINGS = [tuple(dict.fromkeys(["|".join(codes), *codes])) for codes in challenge.CLASSES] + [(u,) for u in UNSCORED]


@st.composite
def challenge_names(draw, k: int, with_normal: bool = False) -> list[str]:
    """``k`` label names of distinct classes: scored codes (merged classes under any spelling) and unscored
    ones; with ``with_normal``, sinus rhythm is one of them."""
    normal = challenge.NORMAL_INDEX
    others = [i for i in range(len(SPELLINGS)) if not (with_normal and i == normal)]
    picked = draw(st.lists(st.sampled_from(others), min_size=k - with_normal, max_size=k - with_normal, unique=True))
    if with_normal:
        picked.insert(draw(st.integers(0, len(picked))), normal)
    return [draw(st.sampled_from(SPELLINGS[i])) for i in picked]


thresholds_grid = st.integers(1, 19).map(lambda i: i / 20)  # the fitting grid 0.05 ... 0.95


# ---------------------------------------------------------------- references


def reference_macro(score, y_true: np.ndarray, y_score: np.ndarray, all_positive: float | None) -> float:
    """Mean of ``score`` over the classes with positives (and negatives, unless ``all_positive`` gives
    the value of a class whose records are all positive); NaN without any such class."""
    values = []
    for k in range(y_true.shape[1]):
        labels = y_true[:, k] > 0.5
        if not labels.any():
            continue
        if labels.all():
            if all_positive is not None:
                values.append(all_positive)
            continue
        values.append(score(labels, y_score[:, k]))
    return float(np.mean(values)) if values else float("nan")


def reference_ece(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """ECE from its definition, one (record, class) pair at a time: 10 equal-width bins, 1.0 in the last."""
    sums = [[0, 0.0, 0.0] for _ in range(10)]  # count, labels, scores
    for y, p in zip((y_true > 0.5).ravel().tolist(), y_score.ravel().tolist()):
        b = min(int(p * 10), 9)
        sums[b][0] += 1
        sums[b][1] += float(y)
        sums[b][2] += p
    total = sum(s[0] for s in sums)
    return sum(abs(s[1] - s[2]) for s in sums) / total if total else 0.0


# ---------------------------------------------------------------- ranking metrics against scikit-learn


@PROPERTY
@given(multilabel())
def test_macro_auroc_is_sklearn_roc_auc_averaged_over_classes_with_both_labels(data):
    y_true, y_score = data
    expected = reference_macro(roc_auc_score, y_true, y_score, all_positive=None)
    assert same(call("macro_auroc", y_true, y_score, None), expected)


@PROPERTY
@given(multilabel())
@example(data=(np.array([[1.0, 1.0], [1.0, 0.0]]), np.array([[0.5, 0.0], [0.5, 0.5]])))  # docs: (1 + 0.5) / 2
def test_macro_auprc_is_sklearn_average_precision_over_every_class_with_positives(data):
    y_true, y_score = data
    expected = reference_macro(average_precision_score, y_true, y_score, all_positive=1.0)
    assert same(call("macro_auprc", y_true, y_score, None), expected)


@PROPERTY
@given(multilabel(), st.sampled_from(["sqrt", "cube", "affine"]))
def test_ranking_metrics_only_see_the_order_of_the_scores(data, transform):
    """A strictly increasing transform of the scores (ties kept as ties) changes neither AUROC nor AUPRC."""
    y_true, y_score = data
    f = {"sqrt": np.sqrt, "cube": lambda s: (s + 1.0) ** 3, "affine": lambda s: 3.0 * s - 7.0}[transform]
    moved = f(y_score)
    # the transform must keep the order and the ties exactly (true for the grid scores; checked for floats)
    for k in range(y_score.shape[1]):
        order = np.argsort(y_score[:, k], kind="stable")
        assume(np.array_equal(np.argsort(moved[:, k], kind="stable"), order))
        assume(np.array_equal(np.diff(y_score[order, k]) > 0, np.diff(moved[order, k]) > 0))
    for name in ("macro_auroc", "macro_auprc"):
        assert same(call(name, y_true, moved, None), call(name, y_true, y_score, None)), name


@PROPERTY
@given(st.integers(2, 20), st.integers(3, 5), st.data())
def test_multiclass_class_index_targets_score_like_one_hot_targets(n, classes, data):
    index = data.draw(arrays(np.int64, (n, 1), elements=st.integers(0, classes - 1)))
    y_score = data.draw(scores_like((n, classes)))
    one_hot = (index == np.arange(classes)).astype(float)
    for name in ("macro_auroc", "macro_auprc", "top1_accuracy"):
        assert same(call(name, index.astype(float), y_score, None), call(name, one_hot, y_score, None)), name
    expected = reference_macro(roc_auc_score, one_hot, y_score, all_positive=None)
    assert same(call("macro_auroc", index.astype(float), y_score, None), expected)


# ---------------------------------------------------------------- binary-output metrics


@PROPERTY
@given(multilabel(), st.booleans(), st.data())
def test_macro_f1_is_sklearn_f1_averaged_over_classes_labelled_or_output(data, fitted, draw):
    y_true, y_score = data
    k = y_true.shape[1]
    thresholds = np.array(draw.draw(st.lists(thresholds_grid, min_size=k, max_size=k))) if fitted else None
    cut = 0.5 if thresholds is None else thresholds
    outputs = (y_score >= cut).astype(int)
    labels = (y_true > 0.5).astype(int)
    per_class = [f1_score(labels[:, j], outputs[:, j], zero_division=0.0)
                 for j in range(k) if labels[:, j].any() or outputs[:, j].any()]
    expected = float(np.mean(per_class)) if per_class else float("nan")
    assert same(call("macro_f1", y_true, y_score, None, thresholds), expected)


@PROPERTY
@given(multilabel(), st.booleans(), st.data())
def test_accuracy_is_sklearn_subset_accuracy_at_the_thresholds(data, fitted, draw):
    y_true, y_score = data
    k = y_true.shape[1]
    thresholds = np.array(draw.draw(st.lists(thresholds_grid, min_size=k, max_size=k))) if fitted else None
    outputs = (y_score >= (0.5 if thresholds is None else thresholds)).astype(int)
    expected = accuracy_score((y_true > 0.5).astype(int), outputs)
    assert same(call("accuracy", y_true, y_score, None, thresholds), expected)


@PROPERTY
@given(multilabel(), st.data())
def test_right_answers_score_one_on_every_binary_output_metric(data, draw):
    """Scores equal to the labels: every record's label set is right, every labelled class has F1 1,
    and the Challenge score is 1 (0 when no record has a scored class other than sinus rhythm)."""
    y_true, _ = data
    names = draw.draw(challenge_names(y_true.shape[1]))
    assert call("accuracy", y_true, y_true, names) == 1.0
    f1 = call("macro_f1", y_true, y_true, names)
    assert f1 == 1.0 if y_true.any() else math.isnan(f1)
    score = call("challenge_score", y_true, y_true, names)
    classes = [challenge.class_index(n) for n in names]
    if all(c is None for c in classes):
        assert math.isnan(score)
        return
    abnormal = [j for j, c in enumerate(classes) if c is not None and c != challenge.NORMAL_INDEX]
    assert math.isclose(score, 1.0 if y_true[:, abnormal].any() else 0.0, abs_tol=1e-9)


@PROPERTY
@given(multilabel(), st.data())
def test_answering_sinus_rhythm_only_scores_zero(data, draw):
    y_true, _ = data
    names = draw.draw(challenge_names(y_true.shape[1], with_normal=True))
    y_score = np.zeros_like(y_true)
    y_score[:, names.index(NORMAL)] = 1.0
    assert math.isclose(call("challenge_score", y_true, y_score, names), 0.0, abs_tol=1e-9)


@PROPERTY
@given(multilabel(max_classes=4), st.data())
def test_challenge_score_ignores_unscored_columns(data, draw):
    y_true, y_score = data
    names = draw.draw(challenge_names(y_true.shape[1]))
    assume(any(challenge.class_index(n) is not None for n in names))
    extra_true = draw.draw(arrays(np.int64, (len(y_true), 1), elements=st.integers(0, 1))).astype(float)
    extra_score = draw.draw(scores_like((len(y_true), 1)))
    unscored = "not-a-snomed-code"  # outside the pool the names are drawn from
    wider = call("challenge_score", np.hstack([y_true, extra_true]), np.hstack([y_score, extra_score]),
                 [*names, unscored])
    assert same(wider, call("challenge_score", y_true, y_score, names))


# ---------------------------------------------------------------- calibration


@PROPERTY
@given(multilabel(max_records=40))
def test_ece_matches_its_definition_and_is_between_0_and_1(data):
    y_true, y_score = data
    value = call("ece", y_true, y_score, None)
    assert same(value, reference_ece(y_true, y_score), rel=1e-9, abs_=1e-12)
    assert 0.0 <= value <= 1.0


@PROPERTY
@given(multilabel())
def test_ece_of_certain_right_answers_is_zero(data):
    y_true, _ = data
    assert call("ece", y_true, y_true.copy(), None) == 0.0


# ---------------------------------------------------------------- multiclass


@PROPERTY
@given(st.integers(1, 20), st.integers(2, 5), st.data())
def test_top1_accuracy_is_sklearn_accuracy_of_the_most_probable_class(n, classes, data):
    rows = [data.draw(st.lists(st.floats(0, 1, allow_nan=False), min_size=classes, max_size=classes, unique=True))
            for _ in range(n)]  # no tie for the most probable class
    y_score = np.array(rows)
    index = data.draw(arrays(np.int64, (n, 1), elements=st.integers(0, classes - 1)))
    expected = accuracy_score(index.ravel(), y_score.argmax(axis=1))
    assert same(call("top1_accuracy", index.astype(float), y_score, None), expected)
    one_hot = (index == np.arange(classes)).astype(float)
    assert same(call("top1_accuracy", one_hot, y_score, None), expected)


# ---------------------------------------------------------------- regression


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
positive = st.floats(1e-8, 1e3, allow_nan=False, allow_infinity=False)


@st.composite
def regression(draw, max_records: int = 20, max_targets: int = 3, missing: bool = True):
    """``(y_true, means, variances)``; some targets NaN (not measurable) when ``missing``."""
    n = draw(st.integers(1, max_records))
    t = draw(st.integers(1, max_targets))
    targets = st.one_of(finite, st.just(float("nan"))) if missing else finite
    y_true = draw(arrays(float, (n, t), elements=targets))
    means = draw(arrays(float, (n, t), elements=finite))
    variances = draw(arrays(float, (n, t), elements=st.one_of(positive, st.just(0.0))))
    return y_true, means, variances


@PROPERTY
@given(regression())
def test_mae_is_sklearn_mae_over_the_measured_targets(data):
    y_true, means, variances = data
    known = np.isfinite(y_true)
    expected = mean_absolute_error(y_true[known], means[known]) if known.any() else float("nan")
    assert same(call("mae", y_true, means, None), expected, rel=1e-9, abs_=1e-9)
    # a probabilistic task's scores (means, then variances): the MAE of the means
    assert same(call("mae", y_true, np.hstack([means, variances]), None), expected, rel=1e-9, abs_=1e-9)


@PROPERTY
@given(regression())
def test_gaussian_nll_is_the_mean_negative_scipy_log_density(data):
    y_true, means, variances = data
    known = np.isfinite(y_true)
    sd = np.sqrt(np.maximum(variances, 1e-6))  # the documented variance floor
    expected = float(-np.mean(norm.logpdf(y_true[known], means[known], sd[known]))) if known.any() else float("nan")
    assert same(call("gaussian_nll", y_true, np.hstack([means, variances]), None), expected, rel=1e-9, abs_=1e-9)


def reference_regression_ece(y_true, means, variances) -> float:
    known = np.isfinite(y_true)
    if not known.any():
        return float("nan")
    gaps = []
    for p in [k / 10 for k in range(1, 10)]:
        low, high = norm.interval(p, loc=means[known], scale=np.sqrt(np.maximum(variances[known], 1e-12)))
        covered = (y_true[known] >= low) & (y_true[known] <= high)
        gaps.append(abs(covered.mean() - p))
    return float(np.mean(gaps))


@PROPERTY
@given(regression(missing=False))
def test_regression_ece_is_the_mean_coverage_gap_and_at_most_one_half(data):
    """docs/metrics.md: 0 calibrated, 0.5 the worst (coverage of nested central intervals grows with p, so the
    mean gap is largest with all targets outside every interval, or inside every one)."""
    y_true, means, variances = data
    # keep targets away from the interval ends, where the two inverse CDFs may disagree in the last bit
    z = np.abs(y_true - means) / np.sqrt(np.maximum(variances, 1e-12))
    ends = np.array([norm.ppf(0.5 + k / 20) for k in range(1, 10)])
    assume(np.min(np.abs(z[..., None] - ends), initial=np.inf) > 1e-6)
    value = call("regression_ece", y_true, np.hstack([means, variances]), None)
    assert same(value, reference_regression_ece(y_true, means, variances), rel=1e-9, abs_=1e-12)
    assert 0.0 <= value <= 0.5 + 1e-12


def test_regression_ece_reaches_one_half():
    """All targets far outside every interval: coverage 0 at every level, mean gap (0.1 + ... + 0.9) / 9."""
    value = call("regression_ece", np.zeros((3, 1)), np.array([[100.0, 1.0]] * 3), None)
    assert math.isclose(value, 0.5)


# ---------------------------------------------------------------- invariances and bounds of every metric


@st.composite
def permuted_task(draw):
    """A multilabel table, its names, thresholds, and a permutation of its records and of its classes."""
    y_true, y_score = draw(multilabel())
    n, k = y_true.shape
    names = draw(challenge_names(k))
    thresholds = np.array(draw(st.lists(thresholds_grid, min_size=k, max_size=k)))
    rows = np.array(draw(st.permutations(range(n))), dtype=int)
    columns = np.array(draw(st.permutations(range(k))), dtype=int)
    return y_true, y_score, names, thresholds, rows, columns


@PROPERTY
@given(permuted_task(), st.sampled_from(MULTILABEL))
def test_multilabel_metrics_do_not_depend_on_record_or_class_order(case, name):
    y_true, y_score, names, thresholds, rows, columns = case
    base = call(name, y_true, y_score, names, thresholds)
    by_rows = call(name, y_true[rows], y_score[rows], names, thresholds)
    by_columns = call(name, y_true[:, columns], y_score[:, columns], [names[j] for j in columns],
                      thresholds[columns])
    assert same(by_rows, base), f"{name}: records reordered"
    assert same(by_columns, base), f"{name}: classes reordered"


@PROPERTY
@given(regression(), st.data())
def test_regression_metrics_do_not_depend_on_record_or_target_order(data, draw):
    y_true, means, variances = data
    n, t = y_true.shape
    rows = np.array(draw.draw(st.permutations(range(n))), dtype=int)
    columns = np.array(draw.draw(st.permutations(range(t))), dtype=int)
    scores = np.hstack([means, variances])
    moved = np.hstack([means[rows][:, columns], variances[rows][:, columns]])
    for name in ("mae", "gaussian_nll", "regression_ece"):
        assert same(call(name, y_true[rows][:, columns], moved, None), call(name, y_true, scores, None),
                    rel=1e-9, abs_=1e-9), name


@PROPERTY
@given(permuted_task())
def test_multilabel_metrics_stay_in_their_bounds(case):
    y_true, y_score, names, thresholds, _, _ = case
    labels = y_true > 0.5
    for name in ("macro_auroc", "macro_auprc", "macro_f1", "accuracy", "ece"):
        value = call(name, y_true, y_score, names, thresholds)
        if math.isnan(value):
            # NaN only when no class can be scored: none with both labels (AUROC), none with
            # positives (AUPRC), none labelled or output (F1)
            both = (labels.any(axis=0) & ~labels.all(axis=0)).any()
            outputs = (y_score >= thresholds).any()
            allowed = {"macro_auroc": not both, "macro_auprc": not labels.any(),
                       "macro_f1": not (labels.any() or outputs)}
            assert allowed.get(name, False), f"{name} is NaN"
        else:
            assert 0.0 <= value <= 1.0, f"{name} = {value}"
    score = call("challenge_score", y_true, y_score, names, thresholds)
    assert math.isnan(score) == all(challenge.class_index(n) is None for n in names)


# ---------------------------------------------------------------- what metrics need


@PROPERTY
@given(multilabel(), st.sampled_from(sorted(METRICS)), st.sampled_from([math.nan, math.inf, -math.inf]), st.data())
def test_a_score_that_is_not_finite_is_refused_in_one_sentence(data, name, bad, draw):
    """docs/metrics.md, "What metrics need": a NaN or infinite score is refused with one sentence (never a
    scikit-learn traceback, never a number)."""
    y_true, y_score = data
    read = y_score.shape[1]  # the score columns the metric reads
    if name in ("gaussian_nll", "regression_ece"):
        y_score, read = np.hstack([y_score, np.ones_like(y_score)]), 2 * read  # means, then variances
    y_score = y_score.copy()
    row = draw.draw(st.integers(0, y_score.shape[0] - 1))
    column = draw.draw(st.integers(0, read - 1))
    y_score[row, column] = bad
    names = [f"c{k}" for k in range(y_true.shape[1])]
    with pytest.raises(ValueError) as error:
        metric(name)(y_true, y_score, names)
    message = str(error.value)
    assert "\n" not in message.strip() and "finite" in message, message


@PROPERTY
@given(regression(missing=False), st.sampled_from([math.nan, math.inf]), st.integers(0, 10**6))
@example(data=(np.zeros((1, 1)), np.zeros((1, 1)), np.ones((1, 1))), bad=math.nan, where=0)
def test_mae_refuses_a_probabilistic_score_that_is_not_finite(data, bad, where):
    """mae also takes a probabilistic task's scores (means, then variances); a non-finite variance is a
    non-finite score, refused like by gaussian_nll and regression_ece."""
    y_true, means, variances = data
    variances = variances.copy()
    variances.flat[where % variances.size] = bad
    with pytest.raises(ValueError, match="finite"):
        call("mae", y_true, np.hstack([means, variances]), None)


@PROPERTY
@given(multilabel(), st.one_of(st.floats(1.0, 1e6, exclude_min=True), st.floats(-1e6, 0.0, exclude_max=True)),
       st.data())
def test_ece_refuses_scores_that_are_not_probabilities(data, bad, draw):
    """docs/metrics.md: `ece` needs probabilities in [0, 1] (the task's scores, not raw outputs)."""
    y_true, y_score = data
    y_score = y_score.copy()
    y_score[draw.draw(st.integers(0, y_score.shape[0] - 1)), draw.draw(st.integers(0, y_score.shape[1] - 1))] = bad
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        call("ece", y_true, y_score, None)
