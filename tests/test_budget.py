"""Whole-search budgets: a time or GPU-hour budget stops starting trials before it would be exceeded,
running trials finish or stop at their next epoch, every finished row is written, and a resume continues
with what is left."""

from __future__ import annotations

import json

import pytest

from ecgsearch.engine import run_search
from ecgsearch.engine.budget import BUDGET_FILE, SearchBudget
from ecgsearch.errors import SpaceError
from ecgsearch.results import read_results
from ecgsearch.space import load_space

DATA = "data: {dataset: synthetic, records: 120, sampling_rate: 50, seconds: 4, leads: [I, II, V1, V5]}"
SPACE = """
space:
  architecture: {logged_tiny: {}}
  optimizer: {adamw: {lr: {loguniform: [1.0e-3, 1.0e-2]}}}
"""


def write_space(tmp_path, budget: str, resources: str = "{cpu: 1, gpu: 0}"):
    path = tmp_path / "b.yaml"
    path.write_text(f"name: b\nseed: 1\n{DATA}\ntask: multilabel\nresources: {resources}\nbudget: {budget}\n{SPACE}")
    return load_space(path)


@pytest.mark.parametrize("value, seconds", [("2h", 7200.0), ("90m", 5400.0), ("1h30m", 5400.0), ("45s", 45.0),
                                            (600, 600.0), ("1.5d", 129600.0)])
def test_a_time_budget_reads_durations(tmp_path, value, seconds):
    spec = write_space(tmp_path, f"{{trials: 2, epochs: 1, time: {value}}}")
    assert spec.budget.time == seconds and spec.budget.on_budget == "finish"


@pytest.mark.parametrize("budget, resources, message", [
    ("{trials: 2, epochs: 1, time: soon}", "{cpu: 1}",
     "budget.time: 'soon' is not a duration > 0; write seconds (7200) or e.g. 2h, 90m, 1h30m"),
    ("{trials: 2, epochs: 1, time: 0}", "{cpu: 1}",
     "budget.time: 0 is not a duration > 0; write seconds (7200) or e.g. 2h, 90m, 1h30m"),
    ("{trials: 2, epochs: 1, on_budget: pause}", "{cpu: 1}",
     "budget.on_budget: 'pause' is not finish or stop (allowed: finish, stop)"),
    ("{trials: 2, epochs: 1, gpu_hours: 10}", "{cpu: 1}",
     "budget.gpu_hours: 10.0 GPU hours cannot be spent by trials that reserve no GPU (resources.gpu is 0); set "
     "resources.gpu or budget a time instead"),
])
def test_a_bad_budget_is_one_sentence(tmp_path, budget, resources, message):
    with pytest.raises(SpaceError) as info:
        write_space(tmp_path, budget, resources)
    assert str(info.value).split(": ", 1)[1] == message


def test_the_account_counts_earlier_sessions_and_gpu_hours(tmp_path):
    budget = SearchBudget(tmp_path, time_s=100.0, gpu_hours=1.0, gpu_per_trial=0.5)
    budget.start()
    budget.record("t0000", 1800.0, ended=True)  # half an hour on half a GPU: 0.25 GPU hours
    assert budget.gpu_hours_spent() == pytest.approx(0.25) and budget.exhausted() is None
    # one more typical trial fits (0.5 GPU hours), but the wall time of a 1800 s trial does not
    assert "budget.time of 100 s would be exceeded by one more trial" in budget.would_exceed()
    budget.record("t0001", 3600.0 * 3, ended=True)  # 1.5 more GPU hours
    assert budget.exhausted() == "budget.gpu_hours of 1 is spent (1.75)"
    again = SearchBudget(tmp_path, time_s=100.0, gpu_hours=1.0, gpu_per_trial=0.5)
    again.start()  # a resume: the account goes on
    assert again.gpu_hours_spent() == pytest.approx(1.75) and again.elapsed() >= budget.before
    assert set(again.finished) == {"t0000", "t0001"}


@pytest.mark.ray
def test_a_time_budget_stops_starting_trials_and_a_resume_keeps_the_account(ray_session, tmp_path):
    spec = write_space(tmp_path, "{trials: 200, epochs: 1, max_concurrent: 2, time: 15s}")
    frame = read_results(run_search(spec, tmp_path / "out").out_dir)
    account = json.loads((tmp_path / "out" / BUDGET_FILE).read_text())
    assert 1 <= len(frame) < 200 and set(frame["status"]) == {"ok"}  # every started trial finished
    assert account["stopped_because"].startswith("budget.time of 15 s")
    assert account["seconds"] >= 10
    run_search(spec, tmp_path / "out", resume=True)  # the budget is spent: nothing more is started
    again = read_results(tmp_path / "out")
    assert len(again) == len(frame) and again["trial_id"].is_unique
    assert json.loads((tmp_path / "out" / BUDGET_FILE).read_text())["seconds"] >= account["seconds"]


@pytest.mark.ray
def test_on_budget_stop_stops_running_trials_at_their_next_epoch(ray_session, tmp_path):
    spec = write_space(tmp_path, "{trials: 2, epochs: 400, max_concurrent: 2, time: 10s, on_budget: stop}")
    frame = read_results(run_search(spec, tmp_path / "out").out_dir)
    # each trial that started is stopped at an epoch boundary (a trial the budget ran out before is never
    # started: on a loaded machine the second one may not start within the 10 s)
    assert 1 <= len(frame) <= 2 and set(frame["status"]) == {"stopped"}
    assert (frame["epochs"] < 400).all() and (frame["epochs"] >= 1).all()
    assert frame["val.macro_auroc"].notna().all()  # the best epoch so far is the row
