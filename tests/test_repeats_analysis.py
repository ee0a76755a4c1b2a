"""Runs with repeats (several seeds per configuration): the analysis reads one row per configuration, the
mean over its seeds with their standard deviation and a Student-t interval of the mean
(``ecgsearch.analysis.repeats``), and the Pareto fronts, scaling fits, ``Run.best`` and the report all
see one point per configuration; a run without repeats is analysed exactly as before. The interval's
coverage is checked by simulation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_report import recorded_figures, rendered
from test_report_studies import plain_frame

from ecgsearch.analysis.prune import configurations
from ecgsearch.analysis.repeats import mean_interval, per_config
from ecgsearch.analysis.run import load_run
from ecgsearch.analysis.scaling import scaling_points
from ecgsearch.api import load_run as api_load_run
from ecgsearch.report import build_report
from ecgsearch.results import RESULTS_FILE

METRIC, TEST = "val.macro_auroc", "test.macro_auroc"
SEEDS = 3
CONFIGS = 30


def repeated(frame: pd.DataFrame, seeds: int = SEEDS, sd: float = 0.01, seed: int = 0) -> pd.DataFrame:
    """Each configuration (row) of ``frame`` trained ``seeds`` times: a row per seed (``<trial_id>r<k>``,
    ``config_id``, ``seed``) with its own noisy metrics and training time, in a shuffled finishing order."""
    rng = np.random.default_rng(seed)
    rows = frame.loc[frame.index.repeat(seeds)].reset_index(drop=True)
    k = np.tile(np.arange(seeds), len(frame))
    rows.insert(1, "config_id", rows["trial_id"])
    rows["trial_id"] = rows["config_id"] + "r" + k.astype(str)
    rows["seed"] = k
    rows[METRIC] = rows[METRIC] + rng.normal(0, sd, len(rows))
    rows[TEST] = rows[METRIC] + rng.normal(0, sd, len(rows))
    rows["train_seconds"] = rng.uniform(10, 20, len(rows))
    return rows.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def write_run(folder: Path, frame: pd.DataFrame) -> Path:
    frame.to_parquet(folder / RESULTS_FILE, index=False)
    return folder


@pytest.fixture(scope="module")
def repeat_run(tmp_path_factory) -> Path:
    """30 configurations x 3 seeds; one seed of t0001 failed, and every seed of t0002."""
    folder = tmp_path_factory.mktemp("repeats")
    frame = repeated(plain_frame(folder, CONFIGS))
    failed = (frame["trial_id"] == "t0001r1") | (frame["config_id"] == "t0002")
    frame.loc[failed, "status"] = "failed"
    frame.loc[failed, [METRIC, TEST]] = np.nan
    return write_run(folder, frame)


def test_per_config_rows_are_numpys_mean_sd_and_t_interval(repeat_run):
    run = load_run(repeat_run)
    seeds = pd.read_parquet(repeat_run / RESULTS_FILE)
    seeds = seeds[seeds["status"] == "ok"]
    assert run.repeated and len(run.seed_rows) == len(seeds) == CONFIGS * SEEDS - 4
    trials = run.trials.set_index("trial_id")
    assert sorted(trials.index) == sorted(seeds["config_id"].unique()) and "t0002" not in trials.index
    assert "seed" not in trials.columns and trials["config_id"].equals(trials.index.to_series())
    for config, rows in seeds.groupby("config_id"):
        row, n = trials.loc[config], len(rows)
        assert row["repeats"] == n == (2 if config == "t0001" else SEEDS)
        for column in (METRIC, TEST, "train_seconds"):
            assert row[column] == pytest.approx(np.mean(rows[column]))
        for column in (METRIC, TEST):
            sd = np.std(rows[column].to_numpy(), ddof=1)
            assert row[f"{column}.sd"] == pytest.approx(sd)
            half = stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n)
            assert (row[f"{column}.ci_low"], row[f"{column}.ci_high"]) == pytest.approx(
                (np.mean(rows[column]) - half, np.mean(rows[column]) + half))
        first = rows.iloc[0]
        assert row["cost.params"] == first["cost.params"] and row["architecture"] == first["architecture"]
    assert "train_seconds.sd" not in trials.columns  # a spread for the metrics only
    assert run.seed_trial("t0001") in {"t0001r0", "t0001r2"}  # a seed with a folder (compare's learning curve)


def test_one_point_per_configuration_reaches_the_front_the_scaling_fit_and_best(repeat_run):
    run = api_load_run(repeat_run)
    configs = set(load_run(repeat_run).trials["trial_id"])
    best = run.best(n=100)
    assert len(best) == len(configs) == CONFIGS - 1 and set(best["trial_id"]) == configs
    assert {f"{METRIC}.sd", "repeats", f"{METRIC}.ci_low", f"{METRIC}.ci_high"} <= set(best.columns)
    assert best[METRIC].is_monotonic_decreasing
    front = run.pareto(x="cost.params")
    assert front["trial_id"].is_unique and set(front["trial_id"]) <= configs and f"{METRIC}.sd" in front
    fit = run.scaling("parameters")
    assert len(set(fit.trial_ids)) == len(fit.trial_ids) and set(fit.trial_ids) <= configs
    points = scaling_points(load_run(repeat_run).trials, "macro_auroc", "max", "parameters")
    assert len(points) == CONFIGS - 1 and "error.sd" in points
    seeds = pd.read_parquet(repeat_run / RESULTS_FILE)
    assert set(configurations(seeds, METRIC)["trial_id"]) == configs  # what `prune` fits its surrogate on


def test_a_run_without_repeats_is_analysed_as_before(tmp_path):
    frame = plain_frame(tmp_path, 20)
    frame.loc[3, "status"] = "failed"
    run = load_run(write_run(tmp_path, frame))
    assert not run.repeated and run.seed_rows is None
    pd.testing.assert_frame_equal(run.trials, pd.read_parquet(tmp_path / RESULTS_FILE).drop(index=3))
    once = frame.assign(config_id=frame["trial_id"], seed=0)  # repeats: 1
    assert per_config(once, [METRIC]) is once
    assert configurations(frame, METRIC) is frame


def test_rows_without_a_config_id_are_configurations_of_their_own(tmp_path):
    frame = repeated(plain_frame(tmp_path, 4), seeds=2)
    frame.loc[frame["config_id"] == "t0003", "config_id"] = None  # an older trial, resumed into the run
    out = per_config(frame, [METRIC]).set_index("trial_id")
    assert sorted(out.index) == ["t0000", "t0001", "t0002", "t0003r0", "t0003r1"]
    assert out.loc["t0003r0", "repeats"] == 1 and np.isnan(out.loc["t0003r0", f"{METRIC}.ci_low"])
    assert out.loc["t0000", "repeats"] == 2


def test_the_report_shows_means_with_their_spread_and_error_bars(repeat_run, monkeypatch):
    interactive = build_report(repeat_run)
    text = " ".join(rendered(interactive.path).text)
    assert f"{CONFIGS - 1} configurations x 2-3 seeds ({CONFIGS * SEEDS - 4} seed runs) averaged" in text
    best = next(s for s in interactive.sections if s.anchor == "best").tables[0]
    assert f"{METRIC} 95% interval" in best.header
    cell = best.rows[0][best.header.index(METRIC)]
    assert " ± " in cell and cell.endswith(("(n=3)", "(n=2)"))
    pareto = next(s for s in interactive.sections if s.anchor == "pareto")
    assert f"{METRIC} 95% interval" in pareto.tables[0].header
    figure = pareto.plots[0].figure
    bars = [t.error_y.array for t in figure.data if t.error_y is not None and t.error_y.array is not None]
    assert bars and sum(len(b) for b in bars) >= CONFIGS - 1
    figures = recorded_figures(monkeypatch)
    static = build_report(repeat_run, static=True, out_dir=repeat_run / "static")
    labels = {c.get_label() for figure in figures for ax in figure.axes for c in ax.containers}
    assert "± 1 sd over seeds" in labels
    assert "each dot a configuration's mean over its seeds" in " ".join(rendered(static.path).text)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_the_t_interval_of_a_configurations_mean_covers_at_its_level(n):
    """2000 simulated configurations of ``n`` normal seeds each: the 95% interval of ``per_config`` covers
    the true mean 93.5-96.5% of the time (binomial sd 0.5%); a percentile bootstrap would not."""
    rng = np.random.default_rng(n)
    truth = rng.uniform(0.6, 0.9, 2000)
    values = truth[:, None] + rng.normal(0, 0.02, (2000, n))
    frame = pd.DataFrame({"trial_id": [f"c{i}s{k}" for i in range(2000) for k in range(n)],
                          "config_id": np.repeat([f"c{i}" for i in range(2000)], n), "status": "ok",
                          METRIC: values.ravel()})
    out = per_config(frame, [METRIC])
    covered = (out[f"{METRIC}.ci_low"].to_numpy() <= truth) & (truth <= out[f"{METRIC}.ci_high"].to_numpy())
    assert 0.935 <= covered.mean() <= 0.965
    low, high = mean_interval(values.mean(axis=1), values.std(axis=1, ddof=1), n)
    assert np.array_equal(covered, (low <= truth) & (truth <= high))
    means = np.take_along_axis(values[:, None, :], rng.integers(0, n, (2000, 500, n)), axis=2).mean(axis=2)
    boot_low, boot_high = np.quantile(means, [0.025, 0.975], axis=1)
    assert ((boot_low <= truth) & (truth <= boot_high)).mean() < 0.9  # why the interval is not a bootstrap
