"""``ecgsearch evaluate`` for PhysioNet/CinC Challenge 2021 outputs: labels from ``.hea`` headers, output
CSVs, and the official scores (the ``physionet2021`` dataset's ``evaluator``).

``evaluate(labels_dir, outputs_dir)`` scores any Challenge entry's outputs the way the official
``evaluate_model.py`` does, so numbers from a search can be compared with the published ones:
classes may come in any order, unscored classes are ignored, equivalent codes count as one class,
a record without an output file counts as all-negative (with a warning), macro averages skip the
classes where a per-class score is undefined. Structural mistakes (missing folders, no headers, an
output file that is not four lines of matching length) are ``UserError``s instead of silent zeros.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from ecgsearch import UserError
from ecgsearch_plugins import _challenge2021 as challenge
from ecgsearch_plugins.metrics import f_measures

log = logging.getLogger(__name__)

SCORES: dict[str, str] = {"auroc": "AUROC", "auprc": "AUPRC", "accuracy": "Accuracy",
                          "f_measure": "F-measure", "challenge_metric": "Challenge metric"}
"""The five numbers ``evaluate`` returns, with the names the official script prints."""
OUTPUT_FORMAT = ("write '#RECORD_ID' on line 1, then three comma-separated lines of equal length "
                 "(class codes, 0/1 outputs, probabilities)")
TRUE_WORDS = {"1", "true", "t"}


def read_header(path: str | Path) -> tuple[str, list[str]]:
    """``(record id, Dx codes)`` of a WFDB header, in any of the Challenge's three layouts.

    The record id is line 1's first field without a ``.mat`` suffix (some Georgia headers carry it);
    Dx codes come from a ``#Dx:`` or ``# Dx:`` comment, with duplicates and empty entries dropped.
    """
    path = Path(path)
    lines = path.read_text(errors="replace").splitlines()
    fields = lines[0].split() if lines else []
    record = fields[0].removesuffix(".mat") if fields else path.stem
    for line in lines:
        key, sep, value = line.lstrip("#").strip().partition(":")
        if line.startswith("#") and sep and key.strip() == "Dx":
            return record, challenge.parse_dx(value)
    raise UserError(f"header {path} has no '#Dx:' line; add the record's SNOMED-CT codes "
                    "as '#Dx: CODE,CODE'.")


def read_outputs(path: str | Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(classes, binary outputs, probabilities)`` of one output file, read as tolerantly as officially.

    Comment and blank lines are skipped; binary values other than 1/True/T count as 0 and
    probabilities that are not numbers as 0 (as the official script reads them).
    """
    path = Path(path)
    rows = [(n, [cell.strip() for cell in line.split(",")])
            for n, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
            if line.strip() and not line.strip().startswith("#")]
    if len(rows) < 3:
        raise UserError(f"output file {path} has {len(rows)} lines of values instead of 3; {OUTPUT_FORMAT}.")
    (_, classes), *values = rows[:3]
    for n, cells in values:
        if len(cells) != len(classes):
            raise UserError(f"output file {path}: line {n} has {len(cells)} values but the class line "
                            f"names {len(classes)} classes; {OUTPUT_FORMAT}.")
    binary = np.array([cell.lower() in TRUE_WORDS for cell in values[0][1]])
    probabilities = np.array([_number(cell) for cell in values[1][1]])
    bad = np.flatnonzero(~np.isfinite(probabilities))
    if bad.size:
        k = int(bad[0])
        raise UserError(f"output file {path}: the probability of class {classes[k]} is {values[1][1][k]}; write a "
                        "finite number (the scores are ranked to compute AUROC and AUPRC).")
    return classes, binary, probabilities


def _number(cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        return 0.0


def _by_record(folder: Path, suffix: str, option: str) -> dict[str, Path]:
    """Every ``*suffix`` file under ``folder`` (at any depth, as the Challenge folders nest them), by record
    name; a record name found twice is a ``UserError`` naming both files."""
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob(f"*{suffix}"), key=lambda p: p.parts):
        if not path.is_file() or path.name.startswith("."):
            continue
        other = found.setdefault(path.stem, path)
        if other != path:
            raise UserError(f"{option} folder {folder}: record {path.stem} is there twice ({other} and {path}); "
                            "keep one copy of each record.")
    return found


def load_directories(labels_dir: str | Path,
                     outputs_dir: str | Path) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, int]:
    """``(record ids, labels, binary outputs, probabilities, records without outputs)`` over the 26
    scored classes (a class absent from a record's output file scores 0 there).

    Records are the headers anywhere under ``labels_dir`` (a published training folder nests them one or
    two levels down: ``training/georgia/g1/E00001.hea``), sorted by name; each one's outputs are the
    ``<record>.csv`` anywhere under ``outputs_dir``, all zeros when there is none.
    """
    labels_dir, outputs_dir = Path(labels_dir), Path(outputs_dir)
    for folder, option, what in ((labels_dir, "--labels", "the records' .hea files"),
                                 (outputs_dir, "--outputs", "your model's .csv outputs")):
        if not folder.is_dir():
            raise UserError(f"{option} folder {folder} does not exist; pass the folder of {what}.")
    headers = _by_record(labels_dir, ".hea", "--labels")
    if not headers:
        raise UserError(f"--labels folder {labels_dir} has no .hea header files; pass the folder "
                        "that holds the records' .hea files.")
    outputs = _by_record(outputs_dir, ".csv", "--outputs")
    names = challenge.class_names()
    records = sorted(headers)
    labels = np.zeros((len(records), len(names)), dtype=bool)
    binary = np.zeros_like(labels)
    scalar = np.zeros(labels.shape)
    missing = []
    for i, record in enumerate(records):
        codes = read_header(headers[record])[1]
        labels[i] = challenge.to_scored(np.ones((1, len(codes)), dtype=bool), codes)[0]
        output = outputs.get(record)
        if output is None:
            missing.append(f"{record}.csv")
            continue
        classes, row_binary, row_scalar = read_outputs(output)
        try:
            binary[i] = challenge.to_scored(row_binary[None], classes)[0]
            scalar[i] = challenge.to_scored(row_scalar[None], classes, combine="mean")[0]
        except ValueError as error:
            raise UserError(f"output file {output}: {error}") from None
    if len(missing) == len(records):
        raise UserError(f"--outputs folder {outputs_dir} has none of the {len(records)} records' output "
                        f"files (e.g. {missing[0]}); pass the folder your model wrote its .csv files to.")
    if missing:
        log.warning("%d of %d records have no output file (e.g. %s); they count as all-negative.",
                    len(missing), len(records), missing[0])
    return records, labels, binary, np.nan_to_num(scalar, nan=0.0), len(missing)


def macro_auc(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """Official macro AUROC and AUPRC: AUROC over classes with positives and negatives, AUPRC over
    classes with positives (the per-class curves the official script integrates equal sklearn's)."""
    positives = labels.sum(axis=0)
    auroc = [roc_auc_score(labels[:, k], scores[:, k])
             for k in np.flatnonzero((positives > 0) & (positives < len(labels)))]
    auprc = [average_precision_score(labels[:, k], scores[:, k]) for k in np.flatnonzero(positives > 0)]
    return (float(np.mean(auroc)) if auroc else math.nan), (float(np.mean(auprc)) if auprc else math.nan)


def score(labels: np.ndarray, binary: np.ndarray, scalar: np.ndarray) -> dict[str, float]:
    """The five official numbers for ``(records, 26)`` labels, binary outputs and probabilities."""
    auroc, auprc = macro_auc(labels, scalar)
    f_measure = f_measures(labels, binary)
    return {
        "auroc": auroc,
        "auprc": auprc,
        "accuracy": float(np.mean(np.all(labels == binary, axis=1))),
        "f_measure": float(np.nanmean(f_measure)) if np.isfinite(f_measure).any() else math.nan,
        "challenge_metric": challenge.challenge_metric(labels, binary),
    }


class Scores(dict):
    """The official numbers and the record counts; ``str()`` is the text ``ecgsearch evaluate`` prints."""

    def __str__(self) -> str:
        lines = [f"{title:<17}{self[key]:.3f}" for key, title in SCORES.items()]
        lines.append(f"{'records':<17}{self['records']} ({self['missing_outputs']} without outputs, "
                     "scored all-negative)")
        return "\n".join(lines)


def evaluate(labels_dir: str | Path, outputs_dir: str | Path) -> Scores:
    """Score a folder of Challenge outputs against a folder of headers, as the official script does.

    Returns ``auroc``, ``auprc``, ``accuracy``, ``f_measure``, ``challenge_metric`` (see ``SCORES``)
    plus ``records`` and ``missing_outputs`` (records scored as all-negative).
    """
    records, labels, binary, scalar, missing = load_directories(labels_dir, outputs_dir)
    return Scores({**score(labels, binary, scalar), "records": len(records), "missing_outputs": missing})
