"""Trial scoring: every metric of the task, binary ones at thresholds fitted on validation only."""

from __future__ import annotations

import math

import numpy as np

from ecgsearch.train.context import TrialContext
from ecgsearch.train.scoring import Scorer
from ecgsearch.train.thresholds import fit_thresholds


def _context(metric: str = "macro_f1") -> TrialContext:
    return TrialContext(cache_entry="", out_dir="", epochs=1, metric=metric, mode="max", task="multilabel",
                        task_params={}, seed=0, space=None)


def test_every_multilabel_metric_is_scored():
    scorer = Scorer(_context("macro_auroc"), "multilabel", ["426783006", "426177001"])
    names = [info.name for info in scorer.infos]
    assert names[0] == "macro_auroc"
    assert {"macro_auprc", "challenge_score", "macro_f1", "accuracy", "ece"} <= set(names)
    assert "mae" not in names  # a regression metric


def test_test_scores_use_the_validation_thresholds():
    rng = np.random.default_rng(0)
    y_val = rng.integers(0, 2, (200, 2)).astype(np.float32)
    s_val = np.clip(0.35 * y_val + rng.uniform(0, 0.5, y_val.shape), 0, 1)  # positives ~0.35-0.85
    y_test = rng.integers(0, 2, (200, 2)).astype(np.float32)
    s_test = np.clip(0.35 * y_test + rng.uniform(0.2, 0.7, y_test.shape), 0, 1)  # shifted up by 0.2
    scorer = Scorer(_context(), "multilabel", ["426783006", "426177001"])
    scorer.fit(y_val, s_val)
    assert np.array_equal(scorer.thresholds, fit_thresholds(y_val, s_val))
    test_f1 = scorer.score("test", y_test, s_test)["test.macro_f1"]
    refit = Scorer(_context(), "multilabel", ["426783006", "426177001"])
    refit.fit(y_test, s_test)  # what fitting on the test split would give: not what the trial reports
    assert test_f1 < refit.score("test", y_test, s_test)["test.macro_f1"]
    manual = np.mean([_f1(y_test[:, c] > 0.5, s_test[:, c] >= scorer.thresholds[c]) for c in range(2)])
    assert np.isclose(test_f1, manual)


def _f1(truth: np.ndarray, pred: np.ndarray) -> float:
    tp = np.sum(truth & pred)
    return 2 * tp / (np.sum(truth) + np.sum(pred))


def test_an_empty_split_scores_nothing():
    scorer = Scorer(_context(), "multilabel", ["x"])
    assert scorer.score("test", np.zeros((0, 1)), np.zeros((0, 1))) == {}


def test_a_trial_whose_outputs_become_nan_is_recorded_as_diverged(tmp_path):
    """The loss stays finite but the scores are NaN: before, scikit-learn raised 'Input contains NaN.'"""
    from ecgsearch.data.prepare import prepare_entry
    from ecgsearch.space import parse_space
    from ecgsearch.train.trial import run_trial

    spec = parse_space("""
name: nan
data: {dataset: synthetic, records: 60, sampling_rate: 50, seconds: 4, leads: [I, II]}
task: multilabel
budget: {trials: 1, epochs: 2}
space: {architecture: fault_nan_outputs, optimizer: {adamw: {lr: 1.0e-3}}, batch_size: 16}
""")
    entry = prepare_entry("synthetic", dict(spec.data.params), None, "test")
    context = TrialContext(cache_entry=str(entry), out_dir=str(tmp_path), epochs=2, metric=spec.metric,
                           mode=spec.mode, task="multilabel", task_params={}, seed=0, space=spec.space)
    reports: list[dict] = []
    last = run_trial({**spec.space.sample(0, 0), "_trial_id": "t0000"}, context, reports.append)
    assert last["status"] == "diverged" and reports[-1] is last
    assert last["error"] == "the model's outputs became NaN or infinite on 9 of 9 val records"
    assert last["epochs"] == 1 and math.isnan(last["val.macro_auroc"]) and last["objective"] == -1e30
