"""``budget.repeats``: each configuration trained with several seeds, one row per seed, and a searcher that
learns from the configuration's mean (``ecgsearch.search.repeats``)."""

from __future__ import annotations

import pandas as pd
import pytest
from ray.tune.search import Searcher

from ecgsearch.engine import run_search
from ecgsearch.latency.bench import select_trials
from ecgsearch.results import checkpoint_path, read_results
from ecgsearch.results.configs import ranked
from ecgsearch.search.repeats import RepeatedSearcher, mean_result
from ecgsearch.space import load_space
from ecgsearch.train.context import REPEAT_SEED_STRIDE as SEED_STRIDE


class Recording(Searcher):
    """Proposes ``trials`` annotated configurations and records what it is told."""

    def __init__(self, trials: int) -> None:
        super().__init__(metric="objective", mode="max")
        self.trials, self.proposed, self.completed, self.results = trials, 0, [], []
        self.state = {"proposed": 0}

    def suggest(self, trial_id):
        if self.proposed >= self.trials:
            return Searcher.FINISHED
        index, self.proposed = self.proposed, self.proposed + 1
        return {"lr": 0.1 * (index + 1), "_trial_id": f"t{index:04d}", "_seed": 300_009 + index}

    def on_trial_result(self, trial_id, result):
        self.results.append(trial_id)

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.completed.append((trial_id, result, error))

    def save(self, path):
        with open(path, "w") as f:
            f.write(str(self.proposed))

    def restore(self, path):
        with open(path) as f:
            self.proposed = int(f.read())


def test_each_configuration_is_handed_out_once_per_repeat_with_its_own_seed():
    searcher = RepeatedSearcher(Recording(2), repeats=3)
    configs = [searcher.suggest(f"tune{i}") for i in range(7)]
    assert configs[-1] == Searcher.FINISHED
    assert [c["_trial_id"] for c in configs[:6]] == ["t0000r0", "t0000r1", "t0000r2", "t0001r0", "t0001r1", "t0001r2"]
    assert [c["_config_id"] for c in configs[:6]] == ["t0000"] * 3 + ["t0001"] * 3
    assert [c["_seed"] for c in configs[:3]] == [300_009, 300_009 + SEED_STRIDE, 300_009 + 2 * SEED_STRIDE]
    assert {c["lr"] for c in configs[:3]} == {0.1} and {c["lr"] for c in configs[3:6]} == {0.2}


def test_the_inner_searcher_learns_the_mean_once_every_repeat_ended():
    inner = Recording(1)
    searcher = RepeatedSearcher(inner, repeats=3)
    for i in range(3):
        searcher.suggest(f"tune{i}")
    for i in range(3):
        searcher.on_trial_result(f"tune{i}", {"objective": 0.1 * i})
    assert inner.results == ["tune0"]  # repeat 0 speaks for its configuration
    searcher.on_trial_complete("tune0", {"objective": 0.6, "epochs": 2, "status": "ok"})
    searcher.on_trial_complete("tune1", None, error=True)  # a failed repeat does not count
    assert inner.completed == []
    searcher.on_trial_complete("tune2", {"objective": 0.8, "epochs": 2, "status": "ok"})
    [(trial_id, result, error)] = inner.completed
    assert trial_id == "tune0" and not error and result["objective"] == pytest.approx(0.7)
    assert result["status"] == "ok" and result["epochs"] == 2


def test_a_configuration_whose_repeats_all_failed_is_an_error_for_the_inner_searcher():
    inner = Recording(1)
    searcher = RepeatedSearcher(inner, repeats=2)
    searcher.suggest("a"), searcher.suggest("b")
    searcher.on_trial_complete("a", None, error=True)
    searcher.on_trial_complete("b", None, error=True)
    assert inner.completed == [("a", None, True)]


def test_mean_result_averages_only_numbers_every_repeat_reports_finite():
    merged = mean_result([{"x": 1.0, "y": 5.0, "ok": True, "s": "a"},
                          {"x": 3, "y": float("nan"), "ok": False, "s": "b"}])
    assert merged["x"] == 2.0 and merged["y"] != merged["y"] and merged["ok"] is False and merged["s"] == "b"


def test_the_state_saved_mid_configuration_resumes_the_remaining_repeats(tmp_path):
    searcher = RepeatedSearcher(Recording(2), repeats=2)
    first = searcher.suggest("a")
    searcher.save(str(tmp_path / "state.pkl"))
    resumed = RepeatedSearcher(Recording(2), repeats=2)
    resumed.restore(str(tmp_path / "state.pkl"))
    rest = [resumed.suggest(x) for x in "bcd"]
    assert first["_trial_id"] == "t0000r0"
    assert [c["_trial_id"] for c in rest] == ["t0000r1", "t0001r0", "t0001r1"]
    resumed.on_trial_complete("a", {"objective": 1.0})
    resumed.on_trial_complete("b", {"objective": 0.0})
    assert resumed.inner.completed == [("a", {"objective": 0.5}, False)]


@pytest.mark.ray
def test_a_search_with_repeats_keeps_one_row_per_seed(ray_session, tmp_path):
    path = tmp_path / "repeats.yaml"
    path.write_text("""name: repeats
seed: 5
data: {dataset: synthetic, records: 100, sampling_rate: 50, seconds: 4, leads: [I, II]}
task: multilabel
resources: {cpu: 1, gpu: 0}
budget: {trials: 2, epochs: 1, repeats: 3}
space:
  architecture: {resnet: {depth: 8, channels: 8, kernel: {choice: [5, 9]}}}
  optimizer: {adamw: {lr: {loguniform: [1.0e-3, 1.0e-2]}}}
""")
    frame = read_results(run_search(load_space(path), tmp_path / "out").out_dir)
    assert len(frame) == 6 and set(frame["status"]) == {"ok"}
    assert sorted(frame["trial_id"]) == ["t0000r0", "t0000r1", "t0000r2", "t0001r0", "t0001r1", "t0001r2"]
    assert frame["seed"].nunique() == 6
    for config_id, group in frame.groupby("config_id"):
        assert len(group) == 3 and group["trial_id"].str.startswith(config_id).all()
        assert group["hp.optimizer.adamw.lr"].nunique() == 1 and group["cost.flops"].nunique() == 1
        assert group["val.loss"].nunique() == 3  # the seed changes the training, not the configuration


def seed_rows() -> pd.DataFrame:
    """Two seeds each of three configurations: a (cheap, best single seed, worse mean), b (best mean), c
    (dominated by b: dearer and worse)."""
    rows = [("t0000r0", "t0000", 0.95, 1e6), ("t0000r1", "t0000", 0.55, 1e6),
            ("t0001r0", "t0001", 0.80, 2e6), ("t0001r1", "t0001", 0.84, 2e6),
            ("t0002r0", "t0002", 0.70, 3e6), ("t0002r1", "t0002", 0.72, 3e6)]
    return pd.DataFrame([{"trial_id": t, "config_id": c, "status": "ok", "val.macro_auroc": v, "cost.flops": f}
                         for t, c, v, f in rows])


def test_the_best_trial_is_the_best_seed_of_the_configuration_best_on_average():
    order = ranked(seed_rows(), "val.macro_auroc", "max")
    assert list(order["trial_id"]) == ["t0001r1", "t0001r0", "t0000r0", "t0000r1", "t0002r1", "t0002r0"]
    plain = seed_rows().drop(columns="config_id")  # no configurations: each row by its own value
    assert list(ranked(plain, "val.macro_auroc", "max")["trial_id"])[:2] == ["t0000r0", "t0001r1"]


def test_latency_measures_one_seed_of_each_chosen_configuration(tmp_path):
    for trial_id in seed_rows()["trial_id"]:
        checkpoint_path(tmp_path, trial_id).parent.mkdir(parents=True)
        checkpoint_path(tmp_path, trial_id).write_bytes(b"")
    assert select_trials(seed_rows(), "macro_auroc", "max", "best", tmp_path) == ["t0001r1"]
    assert sorted(select_trials(seed_rows(), "macro_auroc", "max", "pareto", tmp_path)) == ["t0000r0", "t0001r1"]
    assert len(select_trials(seed_rows(), "macro_auroc", "max", "all", tmp_path)) == 6


def test_the_command_line_table_shows_each_configurations_mean_and_spread():
    from rich.console import Console

    from ecgsearch.analysis.repeats import per_config
    from ecgsearch.cli.display import best_table

    rows = seed_rows().assign(epochs=[2, 2, 2, 1, 2, 2])
    console = Console(width=200, record=True)
    table = best_table(per_config(rows), rows, "macro_auroc")
    console.print(table)
    text = console.export_text()
    assert "mean ± sd over seeds" in str(table.title)
    assert "0.8200 ± 0.0283 (n=2)" in text and "0.7500 ± 0.2828 (n=2)" in text
    assert " 1.5 " in text  # t0001's mean epochs
