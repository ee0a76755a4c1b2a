"""The Challenge 2021 facts and the binary, calibration and regression metrics, worked by hand."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from ecgsearch.plugins import get_registries
from ecgsearch.train.thresholds import GRID, fit_thresholds
from ecgsearch_plugins import _challenge2021 as challenge

REGS = get_registries()
AF, AFL, NSR, CRBBB, RBBB, UNSCORED = "164889003", "164890007", "426783006", "713427006", "59118001", "251180001"


def metric(name: str, **kwargs):
    return REGS.metrics.get(name).create(**kwargs)


# --- the facts ------------------------------------------------------------------------------------


def test_weights_and_class_order_equal_the_official_csv(shared_data) -> None:
    with open(shared_data / "physionet2021" / "weights.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0][1:] == challenge.class_names() == [row[0] for row in rows[1:]]
    official = np.array([[float(v) for v in row[1:]] for row in rows[1:]])
    assert np.array_equal(challenge.WEIGHTS, official)  # exactly, not approximately
    with open(shared_data / "physionet2021" / "weights_abbreviations.csv") as f:
        assert next(csv.reader(f))[1:] == list(challenge.ABBREVIATIONS)
    with open(shared_data / "physionet2021" / "dx_mapping_scored.csv") as f:
        scored = {row["SNOMEDCTCode"] for row in csv.DictReader(f)}
    assert scored == {code for codes in challenge.CLASSES for code in codes} and len(scored) == 30


def test_the_facts_have_the_official_shape() -> None:
    assert len(challenge.CLASSES) == 26 and challenge.WEIGHTS.shape == (26, 26)
    assert np.array_equal(challenge.WEIGHTS, challenge.WEIGHTS.T) and np.all(np.diag(challenge.WEIGHTS) == 1)
    assert challenge.CLASSES[challenge.NORMAL_INDEX] == ("426783006",)
    for pair in [("713427006", "59118001"), ("284470004", "63593006"), ("427172004", "17338001"),
                 ("733534002", "164909002")]:
        assert pair in challenge.CLASSES


@pytest.mark.parametrize("name", [CRBBB, RBBB, f"{CRBBB}|{RBBB}", f" {RBBB} "])
def test_equivalent_codes_map_to_one_class(name: str) -> None:
    assert challenge.class_index(name) == challenge.ABBREVIATIONS.index("CRBBB|RBBB")


def test_unscored_and_clashing_label_names() -> None:
    assert challenge.class_index(UNSCORED) is None and challenge.class_index("NORM") is None
    with pytest.raises(ValueError) as error:
        challenge.class_index(f"{AF}|{NSR}")
    assert str(error.value) == (f"label '{AF}|{NSR}' joins codes of different Challenge classes (AF, NSR); "
                                "name one class per column.")


# --- challenge_score ------------------------------------------------------------------------------

NAMES = [AF, AFL, NSR, CRBBB, RBBB, UNSCORED]


def rows(*sets: set[str]) -> np.ndarray:
    return np.array([[name in s for name in NAMES] for s in sets], dtype=float)


def test_challenge_score_by_hand() -> None:
    # W[AF,AFL]=0.5, W[AF,NSR]=0.25, W[CRBBB,NSR]=0.35, W[NSR,AF]=0.25.     observed  correct  all-NSR
    # r1 AF -> AFL: n=2, A[AF,AFL]=1/2                                        0.25      1        0.25/2
    # r2 RBBB column -> CRBBB column: one class, n=1                          1         1        0.35/2
    # r3 only an unscored label -> NSR: no scored label, adds nothing         0         0        0
    # r4 NSR -> NSR+AF: n=2, A[NSR,NSR]=A[NSR,AF]=1/2                         0.625     1        1
    # score = (1.875 - 1.3) / (3 - 1.3)
    y_true = rows({AF}, {RBBB}, {UNSCORED}, {NSR})
    outputs = rows({AFL}, {CRBBB}, {NSR}, {NSR, AF})
    y_score = np.where(outputs > 0, 0.9, 0.1)
    assert metric("challenge_score")(y_true, y_score, NAMES) == pytest.approx(0.575 / 1.7)


def test_both_equivalent_columns_count_as_one_class() -> None:
    # labels RBBB+CRBBB, output CRBBB only: one class each side, n=1, a perfect record.
    y_true, y_score = rows({RBBB, CRBBB}, {AF}), rows({CRBBB}, {AF})
    assert metric("challenge_score")(y_true, y_score, NAMES) == 1.0


def random_labels(seed: int = 0, records: int = 300) -> np.ndarray:
    return np.random.default_rng(seed).random((records, 26)) < 0.15


def test_perfect_outputs_score_one_and_all_normal_outputs_score_zero() -> None:
    y_true = random_labels().astype(float)
    fn, names = metric("challenge_score"), challenge.class_names()
    assert fn(y_true, y_true, names) == pytest.approx(1.0)
    normal = np.zeros_like(y_true)
    normal[:, challenge.NORMAL_INDEX] = 1
    assert fn(y_true, normal, names) == pytest.approx(0.0)
    # only normal records: true labels are no better than sinus rhythm; the official code returns 0
    assert fn(normal, normal, names) == 0.0


def looped_challenge_metric(labels: np.ndarray, outputs: np.ndarray) -> float:
    """The definition written record by record, class by class, to check the vectorised version."""
    def weighted(outs: np.ndarray) -> float:
        total = 0.0
        for label_row, out_row in zip(labels, outs):
            n = max(1, sum(a or b for a, b in zip(label_row, out_row)))
            total += sum(challenge.WEIGHTS[j, k] / n for j in range(26) for k in range(26)
                         if label_row[j] and out_row[k])
        return total
    normal = np.zeros_like(labels)
    normal[:, challenge.NORMAL_INDEX] = True
    return (weighted(outputs) - weighted(normal)) / (weighted(labels) - weighted(normal))


def test_challenge_metric_equals_the_definition_on_random_outputs() -> None:
    labels, outputs = random_labels(1, 60), random_labels(2, 60)
    assert challenge.challenge_metric(labels, outputs) == pytest.approx(looped_challenge_metric(labels, outputs))


def test_challenge_score_is_nan_without_scored_label_names() -> None:
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert math.isnan(metric("challenge_score")(y, y, ["NORM", "MI"]))


# --- thresholds and the other binary metrics --------------------------------------------------------

# Class 0: positives 0.9 and 0.35, negatives 0.3 and 0.1. Cutting at 0.05 or 0.10 makes all four
# positive (F1 4/6), 0.15..0.30 three (F1 4/5), 0.35 exactly the two positives (F1 1): 0.35 wins.
# Class 1 has no validation positive, so it keeps 0.5.
VAL_TRUE = np.array([[1, 0], [1, 0], [0, 0], [0, 0]])
VAL_SCORE = np.array([[0.9, 0.2], [0.35, 0.7], [0.3, 0.1], [0.1, 0.4]])


def test_fit_thresholds_by_hand() -> None:
    assert GRID[0] == 0.05 and GRID[-1] == 0.95 and len(GRID) == 19
    assert fit_thresholds(VAL_TRUE, VAL_SCORE, "f1").tolist() == [0.35, 0.5]


def test_thresholds_come_from_validation_only() -> None:
    # Test class 0: positives 0.4 and 0.2, negative 0.3. With the validation threshold 0.35 only 0.4 is
    # positive: TP 1, FN 1, F1 2/3. Test class 1 (validation threshold 0.5): 0.6 is its one positive,
    # F1 1. Macro F1 5/6. Fitting on the test split would cut class 0 at 0.05 (all three positive, F1
    # 4/5; ties go to the lowest cut) and class 1 at 0.25, macro F1 0.9: the score
    # below is the honest one, and the thresholds depend on the validation split alone.
    test_true, test_score = np.array([[1, 0], [1, 0], [0, 1]]), np.array([[0.4, 0.1], [0.2, 0.2], [0.3, 0.6]])
    thresholds = fit_thresholds(VAL_TRUE, VAL_SCORE, "f1")
    f1 = metric("macro_f1", thresholds=thresholds)
    assert f1(test_true, test_score, ["a", "b"]) == pytest.approx(5 / 6)
    assert fit_thresholds(test_true, test_score).tolist() == [0.05, 0.25]
    assert metric("macro_f1", thresholds=[0.05, 0.25])(test_true, test_score, ["a", "b"]) == pytest.approx(0.9)
    assert fit_thresholds(VAL_TRUE, VAL_SCORE).tolist() == thresholds.tolist() == [0.35, 0.5]


def test_macro_f1_and_accuracy_by_hand() -> None:
    # default cut 0.5: outputs [[1,0],[0,1],[0,0],[0,0]] for labels [[1,0],[1,0],[0,0],[0,0]].
    # Class 0: TP 1, FN 1 -> 2/3; class 1: FP 1 -> 0; macro F1 1/3. Records 1, 3, 4 exactly right: 3/4.
    assert metric("macro_f1")(VAL_TRUE, VAL_SCORE, ["a", "b"]) == pytest.approx(1 / 3)
    assert metric("accuracy")(VAL_TRUE, VAL_SCORE, ["a", "b"]) == pytest.approx(3 / 4)
    # fitted cut [0.35, 0.5]: class 0 perfect (F1 1), class 1 still one FP (0); records 1, 3, 4 right.
    thresholds = fit_thresholds(VAL_TRUE, VAL_SCORE)
    assert metric("macro_f1", thresholds=thresholds)(VAL_TRUE, VAL_SCORE, ["a", "b"]) == pytest.approx(0.5)
    # a class neither labelled nor output has no F1 and is skipped: only class 0 (F1 2/3) counts
    assert metric("macro_f1")(VAL_TRUE, np.minimum(VAL_SCORE, [1, 0.45]), ["a", "b"]) == pytest.approx(2 / 3)


def test_wrong_number_of_thresholds() -> None:
    with pytest.raises(ValueError, match="got 3 thresholds for 2 classes"):
        metric("accuracy", thresholds=[0.5, 0.5, 0.5])(VAL_TRUE, VAL_SCORE, ["a", "b"])


# --- calibration and regression -------------------------------------------------------------------


def test_ece_by_hand() -> None:
    # pooled pairs (p, y): (0.05,0) (0.15,1) (0.95,1) (1.0,1); bins 0, 1, 9, 9 (1.0 joins the last bin).
    # gaps: 1/4*0.05 + 1/4*0.85 + 2/4*|1 - 0.975| = 0.0125 + 0.2125 + 0.0125 = 0.2375
    y_true, y_score = np.array([[0, 1], [1, 1]]), np.array([[0.05, 0.15], [0.95, 1.0]])
    assert metric("ece")(y_true, y_score, ["a", "b"]) == pytest.approx(0.2375)


def test_mae_and_gaussian_nll_by_hand() -> None:
    # |1-0| + |2-2| + |3-5| over 3 known targets (the NaN target is skipped) = 1
    y_true = np.array([[1.0, 2.0], [3.0, np.nan]])
    assert metric("mae")(y_true, np.array([[0.0, 2.0], [5.0, 0.0]]), ["hr", "qt"]) == pytest.approx(1.0)
    # one target, mean 0, variance 1, value 1: 0.5 * (log(2 pi) + 1)
    assert metric("gaussian_nll")(np.array([[1.0]]), np.array([[0.0, 1.0]]), ["hr"]) == pytest.approx(
        0.5 * (math.log(2 * math.pi) + 1))
    with pytest.raises(ValueError, match=r"must be the \(records, 2 x targets\) shape"):
        metric("gaussian_nll")(np.array([[1.0]]), np.array([[0.0]]), ["hr"])


@pytest.mark.parametrize("name, mode, tasks", [
    ("challenge_score", "max", ("multilabel",)), ("macro_f1", "max", ("multilabel",)),
    ("accuracy", "max", ("multilabel",)), ("ece", "min", ("multilabel",)),
    ("mae", "min", ("regression", "probabilistic")), ("gaussian_nll", "min", ("probabilistic",))])
def test_metric_modes_and_tasks(name: str, mode: str, tasks: tuple[str, ...]) -> None:
    info = REGS.metrics.get(name)
    assert (info.mode, info.tasks) == (mode, tasks)
