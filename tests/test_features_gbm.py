"""``features_gbm``, the classical baseline (neurokit2 features per lead + XGBoost), and the estimator trial
around it (``ecgsearch.train.estimators``): features measured on simulated ECGs of known heart rate, better
than chance on labels that depend on heart rate, every task kind, costs counted independently, the
per-entry feature cache, the validate-time refusals, and a mixed search with a network through Ray."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from ecgsearch.cli import main
from ecgsearch.data import EcgArrays
from ecgsearch.data.cache import open_dataset, prepare_dataset
from ecgsearch.data.features import features_path
from ecgsearch.data.features import lead_features as lead_features_of
from ecgsearch.engine import run_search
from ecgsearch.errors import UserError
from ecgsearch.plugins import get_registries
from ecgsearch.results import open_run
from ecgsearch.space import load_space, parse_space
from ecgsearch.train.context import TrialContext
from ecgsearch.train.estimators import record_features, run_estimator_trial
from ecgsearch_plugins.architectures.features_gbm import EXTRACTOR, FEATURES, lead_features

HZ, SECONDS = 250, 8


def simulated(hr: float, seed: int, method: str = "simple") -> np.ndarray:
    """neurokit2's ECG at ``hr`` bpm: ``simple`` (fast; no P wave) or ``ecgsyn`` (every wave)."""
    import neurokit2 as nk

    return nk.ecg_simulate(duration=SECONDS, sampling_rate=HZ, heart_rate=hr, method=method, noise=0.01,
                           random_state=seed)


class HeartRateEcgs:
    """Two-lead ECGs (lead II, and lead V1 its negative) at random heart rates; targets by ``kind``:
    ``labels`` (fast: HR > 85, slow: HR < 65), ``classes`` (one-hot slow/normal/fast) or ``hr`` (the rate)."""

    def __init__(self, kind: str, records: int = 96) -> None:
        self.kind, self.records = kind, records

    def fingerprint(self) -> dict[str, Any]:
        return {"kind": self.kind, "records": self.records, "version": 1}

    def build(self, workdir: Path | None, progress: Any = None) -> EcgArrays:
        rng = np.random.default_rng(0)
        hr = rng.uniform(50, 110, self.records)
        lead = np.stack([simulated(h, i) for i, h in enumerate(hr)])
        signals = np.stack([lead, -lead], axis=1).astype(np.float32)
        if self.kind == "labels":
            targets, names = np.stack([hr > 85, hr < 65], axis=1), ["fast", "slow"]
        elif self.kind == "classes":
            targets, names = np.eye(3)[np.digitize(hr, [65, 85])], ["slow", "normal", "fast"]
        else:
            targets, names = hr[:, None], ["hr_bpm"]
        split = np.array(["train", "train", "val", "test"] * (self.records // 4))
        return EcgArrays(signals=signals, targets=targets.astype(np.float32), target_names=names, split=split,
                         sampling_rate=float(HZ), leads=["II", "V1"], record_ids=np.arange(self.records).astype(str))


SPACE = """
data: {data}
task: {task}
metric: {metric}
budget: {{trials: 1, epochs: 1}}
space:
  architecture: {{features_gbm: {{n_estimators: 60, max_depth: 3, learning_rate: 0.2, feature_leads: {leads}}}}}
  optimizer: {{adamw: {{lr: 0.01}}}}
"""
# data sections whose targets fit each task (the parser checks the pair; the trial reads the given entry)
DATA = {"multilabel": "{dataset: synthetic, targets: labels}", "regression": "{dataset: synthetic, targets: intervals}",
        "multiclass": "{dataset: ptbxl, root: ., labels: superdiagnostic, single_label: true}"}
METRICS = {"multilabel": "macro_auroc", "multiclass": "top1_accuracy", "regression": "mae"}


def fit(entry: Path, task: str, out_dir: Path | str = "", leads: str = "[II]",
        reports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The row of one estimator trial of ``SPACE`` on ``entry`` (its reports appended to ``reports``)."""
    spec = parse_space(SPACE.format(task=task, metric=METRICS[task], data=DATA[task], leads=leads),
                       source="gbm.yaml")
    context = TrialContext(cache_entry=str(entry), out_dir=str(out_dir), epochs=1, metric=spec.metric,
                           mode=spec.mode, task=spec.task.name, task_params=dict(spec.task.params), seed=0,
                           space=spec.space)
    config = {**spec.space.sample(0, 0), "_trial_id": "t0000"}
    return run_estimator_trial(config, context, (reports if reports is not None else []).append)


@pytest.fixture(scope="module")
def entries(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hr-cache")
    return {kind: prepare_dataset(f"hr-{kind}", HeartRateEcgs(kind), root) for kind in ("labels", "classes", "hr")}


@pytest.mark.parametrize("hr", [60.0, 100.0])
def test_lead_features_measure_a_simulated_ecg(hr: float) -> None:
    values = dict(zip(FEATURES, lead_features(simulated(hr, 1, "ecgsyn"), HZ)))
    assert values["hr_bpm"] == pytest.approx(hr, abs=2.0)
    assert values["qtc_ms"] == pytest.approx(values["qt_ms"] / math.sqrt(60.0 / values["hr_bpm"]), rel=0.02)
    for name in ("pr_ms", "qrs_ms", "qt_ms", "sdnn_ms", "rmssd_ms"):
        assert math.isfinite(values[name]) and values[name] >= 0, (name, values[name])
    assert 80 < values["pr_ms"] < 250 and 250 < values["qt_ms"] < 550  # ECGSYN's waves, as delineated
    assert values["r_amp"] > values["t_amp"] > values["p_amp"] > 0 > values["s_amp"]


def test_a_lead_without_beats_has_no_features() -> None:
    assert np.isnan(lead_features(np.zeros(HZ * SECONDS), HZ)).all()


def test_beats_chance_on_labels_that_depend_on_heart_rate(entries, tmp_path) -> None:
    reports: list[dict[str, Any]] = []
    row = fit(entries["labels"], "multilabel", tmp_path, reports=reports)
    assert reports == [row] and row["status"] == "ok" and row["epochs"] == 1
    assert row["val.macro_auroc"] >= 0.9 and row["test.macro_auroc"] >= 0.9, row  # chance is 0.5
    # the scores are the fitted model's own: refit here and score with scikit-learn
    data = open_dataset(entries["labels"])
    x = np.load(features_path(entries["labels"], EXTRACTOR, "II"))
    model = json.loads((tmp_path / "trials" / "t0000" / "estimator" / "model.json").read_text())
    assert model["columns"] == [f"II.{name}" for name in FEATURES] and model["task"] == "multilabel"
    booster = xgb.Booster(model_file=str(tmp_path / "trials" / "t0000" / "estimator" / "booster_0.json"))
    test = data.indices("test")
    scores = booster.predict(xgb.DMatrix(x[test]))
    assert row["test.macro_auroc"] == pytest.approx(
        np.mean([roc_auc_score(data.targets[test, k], scores[:, k]) for k in range(2)]))


def test_every_task_kind(entries) -> None:
    classes = fit(entries["classes"], "multiclass")
    assert classes["val.top1_accuracy"] >= 0.8 and classes["test.top1_accuracy"] >= 0.8  # chance: about 1/3
    regression = fit(entries["hr"], "regression")
    assert regression["val.mae"] < 5 and regression["test.mae"] < 5  # bpm; the rates span 50-110


def test_features_are_extracted_once_per_entry_and_lead(entries) -> None:
    entry = entries["labels"]
    fit(entry, "multilabel")
    path = features_path(entry, EXTRACTOR, "II")
    stamp = path.stat().st_mtime_ns
    assert not features_path(entry, EXTRACTOR, "V1").exists()  # only the leads asked for
    fit(entry, "multilabel", leads="[II, V1]")
    assert path.stat().st_mtime_ns == stamp and features_path(entry, EXTRACTOR, "V1").is_file()
    data = open_dataset(entry)
    assert np.load(path).shape == (len(data.signals), len(FEATURES))


def test_extraction_in_processes_equals_one_process(entries) -> None:
    entry = entries["hr"]  # 96 records: two chunks
    one = lead_features_of(entry, "one-process", "II", lead_features, workers=1)
    two = lead_features_of(entry, "two-processes", "II", lead_features, workers=2)
    assert one.shape == (96, len(FEATURES)) and np.array_equal(one, two, equal_nan=True)


def test_costs_count_the_fitted_trees(entries, tmp_path) -> None:
    info = get_registries().architectures.get("features_gbm")
    estimator = info.create(2, HZ * SECONDS, 2, n_estimators=40, max_depth=3, early_stopping=0)
    bound = estimator.costs()
    assert (bound.params, bound.macs, bound.flops) == (40 * 2 * 15, 0, 40 * 2 * 4)  # full trees, every round
    data = open_dataset(entries["labels"])
    x = record_features(estimator, entries["labels"], data)
    train, val = data.indices("train"), data.indices("val")
    estimator.fit(x[train], data.targets[train], x[val], data.targets[val], "multilabel", 1)
    estimator.save(tmp_path)
    booster = xgb.Booster(model_file=str(tmp_path / "booster_0.json"))
    dump = booster.get_dump()  # one text tree per entry, a tab per level
    nodes = sum(len(tree.strip().splitlines()) for tree in dump)
    depths = sum(max(line.count("\t") for line in tree.splitlines() if "leaf=" in line) for tree in dump)
    costs = estimator.costs()
    assert len(dump) == 80 and costs.params == nodes <= bound.params
    assert costs.flops == depths + len(dump) <= bound.flops and costs.macs == 0
    assert costs.feature_width == 2 * len(FEATURES) and costs.receptive_field_frac == 1.0
    assert estimator.scores(x[:0]).shape == (0, 2)  # an empty split scores to nothing, not an error


def test_leads_the_data_lacks_are_one_sentence(entries) -> None:
    estimator = get_registries().architectures.get("features_gbm").create(2, 100, 2, feature_leads=["II", "V5"])
    with pytest.raises(UserError) as error:
        record_features(estimator, entries["labels"], open_dataset(entries["labels"]))
    assert str(error.value) == ("architecture features_gbm: feature_leads ['V5'] are not among the data's leads "
                                "['II', 'V1']; name leads the data section keeps.")


GOOD = """\
name: gbm
data: {dataset: synthetic, records: 40, targets: intervals}
task: regression
budget: {trials: 1, epochs: 1}
space:
  architecture:
    features_gbm: {max_depth: 3}
  optimizer: {adamw: {lr: 0.01}}
"""


@pytest.mark.parametrize("old, new, message", [
    ("task: regression", "task: probabilistic", ":7: space.architecture.features_gbm: architecture 'features_gbm' "
     "learns only multilabel, multiclass, regression tasks, not probabilistic; remove it from the space or change "
     "the task"),
    ("task: regression\n", "task: regression\ntransfer: {pretrain: {task: regression, epochs: 1}}\n",
     ":8: space.architecture.features_gbm: architecture 'features_gbm' is an estimator model (features + fitted "
     "model) with no layers to pretrain or freeze; remove it from this space or remove the transfer section"),
    ("max_depth: 3", "max_depth: 0", ":7: space.architecture.features_gbm.max_depth: 0 is not"),
])
def test_validate_refuses_what_the_model_cannot_do(tmp_path, capsys, old, new, message) -> None:
    path = tmp_path / "gbm.yaml"
    path.write_text(GOOD.replace(old, new))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}{message}"), err
    assert err.count("\n") == 1


MIXED = """\
name: mixed
seed: 0
data: {dataset: synthetic, records: 96, sampling_rate: 100, seconds: 8, leads: [II, V1]}
task: multilabel
metric: macro_auroc
budget: {trials: 2, epochs: 1}
resources: {cpu: 1, gpu: 0}
search: {algorithm: grid}
latency: {backends: [torch-cpu], batch_size: 1, time_budget_s: 0.2}
space:
  architecture:
    features_gbm: {n_estimators: 30, max_depth: 2}
    resnet: {depth: 8, channels: 8, kernel: 7}
  optimizer: {adamw: {lr: 0.01}}
  batch_size: 16
"""


@pytest.mark.ray
def test_a_search_mixes_the_baseline_with_networks(ray_session, tmp_path, capsys) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(MIXED)
    frame = run_search(load_space(path), tmp_path / "out").results.set_index("architecture")
    assert set(frame.index) == {"features_gbm", "resnet"} and (frame["status"] == "ok").all()
    gbm, net = frame.loc["features_gbm"], frame.loc["resnet"]
    assert gbm["cost.macs"] == 0 and gbm["cost.params"] > 0 and pd.isna(gbm["optimizer"]) and net["optimizer"] == "adamw"
    assert gbm["latency.torch-cpu.error"].startswith("not applicable: features_gbm is an estimator model")
    assert pd.isna(net["latency.torch-cpu.error"]) and net["latency.torch-cpu.p50_ms"] > 0
    assert math.isfinite(gbm["val.macro_auroc"]) and gbm["features_seconds"] >= 0
    run = open_run(tmp_path / "out", "predict")
    assert run.choose_trial(None) == net["trial_id"]  # the best network, whatever the baseline scored
    with pytest.raises(UserError) as error:
        run.load_checkpoint(gbm["trial_id"])
    assert str(error.value) == (f"{tmp_path / 'out'}: trial {gbm['trial_id']} is an estimator model (features + "
                                f"fitted model, kept in {tmp_path / 'out' / 'trials' / gbm['trial_id'] / 'estimator'})"
                                ", and predict serves networks only; choose a network trial with --trial.")
