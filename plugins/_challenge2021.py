"""The PhysioNet/CinC Challenge 2021 scoring facts, in the project's own form.

The Challenge scores 26 classes (30 SNOMED-CT codes: four pairs of equivalent codes count as one class)
with a 26x26 weight matrix that gives partial credit for clinically similar mistakes. The matrix has no
closed form (it was set by cardiologists), so it is carried here as a literal: every weight is a
multiple of 1/80, the matrix is symmetric with ones on the diagonal, so each class stores the strictly
lower-triangular part of its row in 80ths. ``tests/test_challenge_metric.py`` checks class order and
every value against the official ``weights.csv`` when the reference data is present.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

NORMAL_CODE = "426783006"
"""Sinus rhythm: the output of the 'inactive' classifier that scores 0."""

# (equivalent SNOMED-CT codes, abbreviation, lower-triangular row of weights in 80ths), official order.
_TABLE: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("164889003",), "AF", ""),
    (("164890007",), "AFL", "40"),
    (("6374002",), "BBB", "38 38"),
    (("426627000",), "Brady", "24 24 26"),
    (("733534002", "164909002"), "CLBBB|LBBB", "38 38 38 26"),
    (("713427006", "59118001"), "CRBBB|RBBB", "32 32 34 32 34"),
    (("270492004",), "IAVB", "24 24 26 40 26 32"),
    (("713426002",), "IRBBB", "24 24 26 40 26 32 40"),
    (("39732003",), "LAD", "28 28 30 36 30 36 36 36"),
    (("445118002",), "LAnFB", "28 28 30 36 30 36 36 36 40"),
    (("164947007",), "LPR", "24 24 26 40 26 32 40 40 36 36"),
    (("251146004",), "LQRSV", "34 34 36 30 36 38 30 30 34 34 30"),
    (("111975006",), "LQT", "36 36 38 28 38 36 28 28 32 32 28 38"),
    (("698252002",), "NSIVCB", "28 28 30 36 30 36 36 36 40 40 36 34 32"),
    (("426783006",), "NSR", "20 20 22 36 22 28 36 36 32 32 36 26 24 32"),
    (("284470004", "63593006"), "PAC|SVPB", "27 27 29 37 29 35 37 37 39 39 37 33 31 39 33"),
    (("10370003",), "PR", "30 30 32 34 32 38 34 34 38 38 34 36 34 38 30 37"),
    (("365413008",), "PRWP", "34 34 36 30 36 38 30 30 34 34 30 38 38 34 26 33 36"),
    (("427172004", "17338001"), "PVC|VPB", "30 30 32 34 32 38 34 34 38 38 34 36 34 38 30 37 40 36"),
    (("164917005",), "QAb", "32 32 30 16 30 24 16 16 20 20 16 26 28 20 12 19 22 26 22"),
    (("47665007",), "RAD", "28 28 30 36 30 36 36 36 40 40 36 34 32 40 32 39 38 34 38 20"),
    (("427393009",), "SA", "24 24 26 40 26 32 40 40 36 36 40 30 28 36 36 37 34 30 34 16 36"),
    (("426177001",), "SB", "24 24 26 40 26 32 40 40 36 36 40 30 28 36 36 37 34 30 34 16 36 40"),
    (("427084000",), "STach",
     "30 30 32 34 32 38 34 34 38 38 34 36 34 38 30 37 40 36 40 22 38 34 34"),
    (("164934002",), "TAb",
     "40 40 38 24 38 32 24 24 28 28 24 34 36 28 20 27 30 34 30 32 28 24 24 30"),
    (("59931005",), "TInv",
     "40 40 38 24 38 32 24 24 28 28 24 34 36 28 20 27 30 34 30 32 28 24 24 30 40"),
)

CLASSES: tuple[tuple[str, ...], ...] = tuple(codes for codes, _, _ in _TABLE)
"""The 26 scored classes in the official order; each is a tuple of equivalent SNOMED-CT codes."""

ABBREVIATIONS: tuple[str, ...] = tuple(abbreviation for _, abbreviation, _ in _TABLE)


def class_names() -> list[str]:
    """The classes as the official files name them (``713427006|59118001`` for a merged class)."""
    return ["|".join(codes) for codes in CLASSES]


def _weights() -> np.ndarray:
    """Expand the triangular literal; integer 80ths divided once give the exact CSV doubles."""
    eightieths = np.full((len(_TABLE), len(_TABLE)), 80, dtype=np.int64)
    for i, (_, _, row) in enumerate(_TABLE):
        values = [int(v) for v in row.split()]
        eightieths[i, :i] = values
        eightieths[:i, i] = values
    weights = eightieths / 80.0
    weights.setflags(write=False)
    return weights


WEIGHTS: np.ndarray = _weights()
"""The 26x26 Challenge weights (read-only): row = true class, column = output class."""

_INDEX_OF_CODE: dict[str, int] = {code: i for i, codes in enumerate(CLASSES) for code in codes}
NORMAL_INDEX: int = _INDEX_OF_CODE[NORMAL_CODE]


def class_index(name: str) -> int | None:
    """The scored class of a label name (``713427006``, ``59118001`` or ``713427006|59118001``).

    Returns None for a name that is no scored code. A name joining codes of two different classes is
    a mistake in the dataset's target names, so it raises instead of silently picking one.
    """
    codes = [code.strip() for code in str(name).split("|")]
    found = {_INDEX_OF_CODE[code] for code in codes if code in _INDEX_OF_CODE}
    if len(found) > 1:
        raise ValueError(f"label {name!r} joins codes of different Challenge classes "
                         f"({', '.join(ABBREVIATIONS[i] for i in sorted(found))}); name one class per column.")
    return found.pop() if found else None


def to_scored(matrix: np.ndarray, label_names: Iterable[str], combine: str = "any") -> np.ndarray:
    """Map ``(records, len(label_names))`` columns onto the 26 scored classes.

    Columns of unscored codes are dropped; scored classes without a column are all zero; two columns
    of equivalent codes are merged like the official code merges them: ``any`` for labels and binary
    outputs, ``mean`` (of the finite values) for probabilities.
    """
    matrix = np.asarray(matrix)
    names = list(label_names)
    if matrix.ndim != 2 or matrix.shape[1] != len(names):
        raise ValueError(f"got {len(names)} label names for an array of shape {matrix.shape}.")
    columns: dict[int, list[int]] = {}
    for k, name in enumerate(names):
        index = class_index(name)
        if index is not None:
            columns.setdefault(index, []).append(k)
    dtype = bool if combine == "any" else float
    scored = np.zeros((matrix.shape[0], len(CLASSES)), dtype=dtype)
    for index, ks in columns.items():
        part = matrix[:, ks]
        if combine == "any":
            scored[:, index] = part.astype(bool).any(axis=1)
        else:  # nanmean without its empty-slice warning: a class whose outputs are all NaN stays NaN
            part = part.astype(float)
            known = np.isfinite(part).sum(axis=1)
            scored[:, index] = np.where(known > 0, np.nansum(part, axis=1) / np.maximum(known, 1), np.nan)
    return scored


def challenge_metric(labels: np.ndarray, outputs: np.ndarray) -> float:
    """The Challenge 2021 score of binary ``outputs`` for binary ``labels``, both ``(records, 26)``.

    Each record adds ``1/n`` to ``A[true class, output class]`` with ``n = max(1, |labels OR outputs|)``;
    the score ``sum(W*A)`` is rescaled so that always answering sinus rhythm scores 0 and the true labels
    score 1. Records without scored labels add nothing to ``A`` (as in the official code). When the
    true labels score no better than sinus rhythm (e.g. every record is normal) the official code
    returns 0, and so does this.
    """
    labels = np.asarray(labels, dtype=bool)
    outputs = np.asarray(outputs, dtype=bool)
    if labels.shape != outputs.shape or labels.ndim != 2 or labels.shape[1] != len(CLASSES):
        raise ValueError(f"labels {labels.shape} and outputs {outputs.shape} must both be "
                         f"(records, {len(CLASSES)}).")
    inactive = np.zeros_like(labels)
    inactive[:, NORMAL_INDEX] = True
    observed, correct, normal = (_weighted_sum(labels, out) for out in (outputs, labels, inactive))
    if correct == normal:
        return 0.0
    return float((observed - normal) / (correct - normal))


def _weighted_sum(labels: np.ndarray, outputs: np.ndarray) -> float:
    """``sum(W * A)`` for the record-normalised multi-label confusion matrix ``A``."""
    n = np.maximum((labels | outputs).sum(axis=1), 1)
    A = (labels / n[:, None]).T @ outputs.astype(float)
    return float(np.sum(WEIGHTS * A))


def parse_dx(text: str) -> list[str]:
    """Codes of a ``Dx`` comment in order, without blanks or duplicates (real lists have both)."""
    codes: list[str] = []
    for item in text.replace(";", ",").split(","):
        code = item.strip()
        if code and code not in codes:
            codes.append(code)
    return codes
