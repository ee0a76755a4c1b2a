"""Per-class, per-label-group and per-source columns of a classification trial: ``val.auroc.<class>`` and
``val.auprc.<class>`` are scikit-learn's values of that class alone; ``val.<group>.<metric>`` is the macro
metric on the group's classes alone (groups the dataset declares: PhysioNet 2021's four families, PTB-XL's
superclasses); ``val.source.<source>.<metric>`` the metric on one source's records."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from ecgsearch.data import EcgArrays
from ecgsearch.data.cache import open_dataset, prepare_dataset
from ecgsearch.results.names import label_group_columns, metric_column, source_columns
from ecgsearch.train.context import TrialContext
from ecgsearch.train.scoring import Scorer, score_by_group
from ecgsearch_plugins import _challenge2021 as challenge
from ecgsearch_plugins.datasets import physionet2021
from ecgsearch_plugins.datasets.ptbxl import STATEMENT_SETS, SUPERCLASSES, label_columns, superclass_groups

NAMES = ["164889003", "426627000", "39732003", "47665007", "111975006", "426783006"]  # AF Brady LAD RAD LQT NSR
GROUPS = {"rhythm": ["164889003", "426627000"], "axis": ["39732003", "47665007"], "qt": ["111975006"]}


def _scorer(metrics: tuple[str, ...] = ("macro_auroc", "macro_auprc", "challenge_score", "macro_f1"),
            names: list[str] = NAMES) -> Scorer:
    context = TrialContext(cache_entry="", out_dir="", epochs=1, metric=metrics[0], mode="max", task="multilabel",
                           task_params={}, seed=0, space=None, metrics=metrics)
    return Scorer(context, "multilabel", names)


def _scores(n: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels with every class present (the last, NSR, in every record) and scores that follow them noisily."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, len(NAMES))) < 0.3).astype(np.float32)
    y[:, -1] = 1.0
    y[0, :-1], y[1, :-1] = 1.0, 0.0  # positives and negatives in every other class
    return y, np.clip(0.6 * y + 0.5 * rng.random(y.shape), 0.0, 1.0)


def test_per_class_columns_are_sklearns_values_of_each_class():
    y, s = _scores()
    out = _scorer().score("val", y, s)
    for k, name in enumerate(NAMES[:-1]):
        assert out[f"val.auroc.{name}"] == pytest.approx(roc_auc_score(y[:, k], s[:, k]))
        assert out[f"val.auprc.{name}"] == pytest.approx(average_precision_score(y[:, k], s[:, k]))
    # NSR is positive in every record: no ROC curve (NaN, as the macro average skips it); its AP is 1.0
    assert math.isnan(out["val.auroc.426783006"]) and out["val.auprc.426783006"] == 1.0
    y[:, 0] = 0.0  # no positive: neither curve exists
    out = _scorer().score("val", y, s)
    assert math.isnan(out["val.auroc.164889003"]) and math.isnan(out["val.auprc.164889003"])
    # only the metrics that declare a per-class name get per-class columns
    assert not any(k.startswith(("val.challenge_score.", "val.macro_f1.")) for k in out)


def test_a_label_group_gets_the_macro_metrics_on_its_classes_alone():
    y, s = _scores()
    scorer = _scorer()
    scorer.fit(y, s)
    groups = {**GROUPS, "absent": ["not-a-target"]}
    out = scorer.score("val", y, s, groups)
    for group, members in GROUPS.items():
        ks = [NAMES.index(m) for m in members]
        assert out[f"val.{group}.macro_auroc"] == pytest.approx(np.mean([roc_auc_score(y[:, k], s[:, k]) for k in ks]))
        assert out[f"val.{group}.macro_auprc"] == pytest.approx(
            np.mean([average_precision_score(y[:, k], s[:, k]) for k in ks]))
        # the thresholded macro F1 cuts each class at its own fitted threshold
        f1 = [f1_score(y[:, k] > 0.5, s[:, k] >= scorer.thresholds[k]) for k in ks]
        assert out[f"val.{group}.macro_f1"] == pytest.approx(np.mean(f1))
        assert f"val.{group}.challenge_score" not in out  # weighs every class pair: not defined on a group
    assert not any(k.startswith("val.absent.") for k in out)  # no class of the group among the targets
    assert set(label_group_columns(out, "val", "macro_auroc")) == set(GROUPS)


def test_class_index_targets_have_no_per_class_or_group_columns():
    """Multiclass with one class-index column: the scores have a column per class but the targets do not."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, (30, 1)).astype(np.float32)
    s = rng.dirichlet(np.ones(3), 30)
    context = TrialContext(cache_entry="", out_dir="", epochs=1, metric="macro_auroc", mode="max", task="multiclass",
                           task_params={}, seed=0, space=None, metrics=("macro_auroc",))
    out = Scorer(context, "multiclass", ["rhythm"]).score("val", y, s, {"g": ["rhythm"]})
    assert set(out) == {"val.macro_auroc"}


def _arrays(label_groups: dict[str, list[str]], sources: bool = True) -> EcgArrays:
    y, s = _scores(120, seed=2)
    split = np.array(["train", "val", "test"] * 40)
    signals = s[:, :, None].astype(np.float32).repeat(4, axis=2)
    return EcgArrays(signals=signals, targets=y, target_names=NAMES, split=split, sampling_rate=4.0,
                     leads=[f"L{i}" for i in range(len(NAMES))], record_ids=np.array([f"R{i}" for i in range(120)]),
                     groups=np.array(["CPSC", "Georgia"] * 60) if sources else None, label_groups=label_groups)


class _Source:
    def fingerprint(self) -> dict:
        return {"label_groups": True}

    def build(self, workdir, progress=None) -> EcgArrays:
        return _arrays(GROUPS)


def test_label_groups_survive_the_cache_and_reach_the_columns_with_the_sources(tmp_path):
    data = open_dataset(prepare_dataset("fake", _Source(), tmp_path))
    assert data.label_groups == GROUPS
    test = data.indices("test")
    y, s = data.targets[test], data.signals[test, :, 0]
    out = score_by_group(_scorer(("macro_auroc",)), data, "test", y, s)
    assert {c for c in out if ".source." in c} == {"test.source.CPSC.macro_auroc", "test.source.Georgia.macro_auroc"}
    assert source_columns(out, "test", "macro_auroc") == {name: f"test.source.{name}.macro_auroc"
                                                          for name in ("CPSC", "Georgia")}
    assert not any("@" in c for c in out)  # the former per-source name (test.macro_auroc@CPSC) is gone
    cpsc = data.groups[test] == "CPSC"
    alone = _scorer(("macro_auroc",)).score("test", y[cpsc], s[cpsc])["test.macro_auroc"]
    assert out[metric_column("test", "macro_auroc", source="CPSC")] == pytest.approx(alone)
    assert set(label_group_columns(out, "test", "macro_auroc")) == set(GROUPS)


@pytest.mark.parametrize("groups, message", [
    ({"a.b": ["164889003"]}, "label group 'a.b' must be a name without dots"),
    ({"x": ["164889003", "NOPE"]}, "label group 'x' names NOPE, not target names"),
    ({"x": []}, "label group 'x' has no target"),
    ({"x": ["164889003", "164889003"]}, "label group 'x' lists a target twice"),
])
def test_label_groups_must_name_targets(groups, message):
    with pytest.raises(ValueError, match=message):
        _arrays(groups)


def test_the_physionet2021_groups_cover_scored_classes_only():
    scored = set(challenge.ABBREVIATIONS)
    listed = [abbreviation for members in physionet2021.LABEL_GROUPS.values() for abbreviation in members]
    assert set(listed) <= scored and len(listed) == len(set(listed))  # known classes, each in one group at most
    assert list(physionet2021.LABEL_GROUPS) == ["arrhythmia", "conduction_disorder", "axis_deviation",
                                                "prolonged_intervals"]
    groups = physionet2021.label_groups(list(physionet2021.SCORED_CLASSES))
    assert {name for members in groups.values() for name in members} <= set(physionet2021.SCORED_CLASSES)
    assert not any(challenge.NORMAL_CODE in members for members in groups.values())  # NSR is in no group
    assert groups["axis_deviation"] == ["39732003", "47665007"]
    # classes: all (one column per code): both codes of a merged pair join its group, unscored codes none
    codes = physionet2021.label_groups(["59118001", "713427006", "164947007", "251146004", "999999"])
    assert codes == {"conduction_disorder": ["59118001", "713427006"], "prolonged_intervals": ["164947007"]}


def test_the_physionet2021_groups_against_the_official_class_names(shared_data):
    """Each grouped code is a scored code of ``dx_mapping_scored.csv`` whose diagnosis fits its group."""
    with open(shared_data / "physionet2021" / "dx_mapping_scored.csv", newline="") as handle:
        dx = {row["SNOMEDCTCode"]: row["Dx"].lower() for row in csv.DictReader(handle)}
    groups = physionet2021.label_groups(list(physionet2021.SCORED_CLASSES))
    words = {"axis_deviation": ("axis deviation",), "prolonged_intervals": ("prolonged",),
             "conduction_disorder": ("block", "conduction"),
             "arrhythmia": ("fibrillation", "flutter", "cardia", "arrhythmia", "premature", "pacing")}
    for group, members in groups.items():
        for code in (c for name in members for c in name.split("|")):
            assert code in dx, f"{code} of {group} is not a scored code"
            assert any(word in dx[code] for word in words[group]), f"{code} ({dx[code]}) in {group}"


def test_a_physionet2021_build_carries_the_groups(shared_data, tmp_path):
    source = physionet2021.PhysioNet2021(str(shared_data / "physionet2021" / "sample_records"), sampling_rate=50,
                                         seconds=2, leads=2, workers=1)
    data = open_dataset(prepare_dataset("physionet2021", source, tmp_path))
    assert data.label_groups == physionet2021.label_groups(data.target_names)
    assert set(data.label_groups) == set(physionet2021.LABEL_GROUPS)


def test_the_ptbxl_groups_are_the_superclasses_of_the_real_statements(shared_data):
    import pandas as pd

    path = shared_data / "ptbxl" / "scp_statements.csv"
    statements = pd.read_csv(path, index_col=0)
    with open(path, newline="") as handle:  # the table read again, independently of the reader
        superclass = {row[""]: row["diagnostic_class"] for row in csv.DictReader(handle)
                      if row["diagnostic"] == "1.0"}
    diagnostic = superclass_groups(statements, "diagnostic")
    assert list(diagnostic) == list(SUPERCLASSES)
    assert {code: group for group, codes in diagnostic.items() for code in codes} == superclass
    assert superclass_groups(statements, "superdiagnostic") == {c: [c] for c in SUPERCLASSES}  # a class each
    assert superclass_groups(statements, "all") == diagnostic
    assert superclass_groups(statements, "form") == {"STTC": ["DIG", "LNGQT", "NDT", "NST_"]}
    assert superclass_groups(statements, "rhythm") == {}
    subclasses = superclass_groups(statements, "subdiagnostic")
    assert sorted(n for names in subclasses.values() for n in names) == label_columns(statements, "subdiagnostic")[0]
    assert "_AVB" in subclasses["CD"] and "LVH" in subclasses["HYP"]
    for labels in STATEMENT_SETS:  # every group lists target names of its set
        names = set(label_columns(statements, labels)[0])
        assert all(set(members) <= names for members in superclass_groups(statements, labels).values())
