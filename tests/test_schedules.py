"""Learning-rate schedule plugins: their trajectories by hand, their errors, and the space's ``schedule``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from toy_ecg import toy_context, toy_entry

from ecgsearch.errors import SpaceError
from ecgsearch.plugins import get_registries
from ecgsearch.space import parse_space
from ecgsearch.train.loop import train_epochs
from ecgsearch.train.schedules import ScheduleRun, steps_per_epoch
from ecgsearch.train.scoring import Scorer
from ecgsearch.train.setup import build_trial
from ecgsearch.train.trial import run_trial

REGS = get_registries()
BASE_LR = 0.1
BASE = "data: {dataset: synthetic}\ntask: multilabel\nbudget: {trials: 1, epochs: 3}\n"


def schedule(name: str, run: ScheduleRun, **hparams):
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=BASE_LR)
    return optimizer, REGS.schedules.get(name).create(optimizer, run, **hparams)


def lrs_per_step(name: str, run: ScheduleRun, steps: int, **hparams) -> list[float]:
    """The learning rate used by each of ``steps`` optimizer steps (stepping as the trial loop does)."""
    optimizer, sched = schedule(name, run, **hparams)
    seen = []
    for _ in range(steps):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if sched.per_step:
            sched.step()
    return seen


def test_every_schedule_is_registered_with_a_valid_default_space() -> None:
    assert {"constant", "cosine", "exponential", "onecycle", "plateau"} <= set(REGS.schedules.names())
    for info in REGS.schedules:
        spec = parse_space(BASE + "space: {architecture: resnet, optimizer: adamw, "
                                  f"schedule: {{{info.name}: {{default: true}}}}}}")
        config = spec.space.sample(0, 0)
        name, params = spec.space.resolve(config).choices["schedule"]
        optimizer, sched = schedule(name, ScheduleRun(3, 4), **params)
        assert isinstance(sched.per_step, bool)


def test_constant_never_changes() -> None:
    optimizer, sched = schedule("constant", ScheduleRun(3, 4))
    for _ in range(5):
        sched.step()
        sched.epoch_end(0.5)
    assert optimizer.param_groups[0]["lr"] == BASE_LR and not sched.per_step


def test_cosine_warms_up_then_decays_to_the_floor() -> None:
    run = ScheduleRun(epochs=5, steps_per_epoch=4)  # 20 steps: 4 of warmup, 16 of decay
    lrs = lrs_per_step("cosine", run, 21, warmup_epochs=1, min_lr_ratio=0.1)
    assert lrs[0] == pytest.approx(BASE_LR / 5)  # (step + 1) / (warmup + 1)
    assert lrs[3] == pytest.approx(BASE_LR * 4 / 5)
    assert lrs[4] == pytest.approx(BASE_LR)  # the peak is the optimizer's lr
    assert lrs[12] == pytest.approx(BASE_LR * (0.1 + 0.9 * 0.5))  # half-way: cos(pi / 2) = 0
    assert lrs[19] == pytest.approx(BASE_LR * (0.1 + 0.45 * (1 + math.cos(math.pi * 15 / 16))))  # last step
    assert lrs[20] == lrs[19]  # no step past the plan
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))


def test_onecycle_peaks_at_lr_and_tolerates_extra_steps() -> None:
    run = ScheduleRun(epochs=2, steps_per_epoch=10)
    lrs = lrs_per_step("onecycle", run, 25, pct_start=0.3, div_factor=10.0, final_div_factor=100.0)
    assert lrs[0] == pytest.approx(BASE_LR / 10)
    assert max(lrs) == pytest.approx(BASE_LR) and int(np.argmax(lrs)) == 5  # 0.3 x 20 steps - 1
    assert lrs[19] == pytest.approx(BASE_LR / 1000, rel=1e-3) and lrs[24] == lrs[19]


def test_onecycle_leaves_plain_sgd_without_momentum() -> None:
    optimizer, _ = schedule("onecycle", ScheduleRun(2, 5))
    assert optimizer.param_groups[0]["momentum"] == 0


def test_exponential_decays_per_epoch_only() -> None:
    optimizer, sched = schedule("exponential", ScheduleRun(5, 10), gamma=0.5)
    assert not sched.per_step
    for _ in range(3):
        optimizer.step()
        sched.epoch_end(None)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(BASE_LR / 8)


@pytest.mark.parametrize("mode, values, expected", [
    ("max", [0.5, 0.5, 0.5, 0.6], BASE_LR * 0.5),  # 2 epochs without improvement (patience 1): one cut
    ("min", [0.5, 0.4, 0.3, 0.2], BASE_LR),  # always improving: no cut
    ("max", [0.5, math.nan, math.nan, math.nan], BASE_LR),  # epochs without a score change nothing
])
def test_plateau_follows_the_metric_direction(mode: str, values: list[float], expected: float) -> None:
    optimizer, sched = schedule("plateau", ScheduleRun(4, 3, mode=mode), factor=0.5, patience=1)
    for value in values:
        sched.epoch_end(value)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(expected)


@pytest.mark.parametrize("name, hparams, message", [
    ("cosine", {"warmup_epochs": 3}, "warmup_epochs=3 leaves no epoch to decay over in a trial of 3 epochs"),
    ("cosine", {"min_lr_ratio": 1.5}, r"min_lr_ratio=1.5 must be a number in \[0, 1\]"),
    ("exponential", {"gamma": 0}, r"gamma=0 must be a number in \(0, 1\]"),
    ("plateau", {"patience": -1}, "patience=-1 must be an integer >= 0"),
    ("onecycle", {"anneal": "cosine"}, "anneal='cosine' must be 'cos' or 'linear'"),
])
def test_schedule_parameter_errors(name: str, hparams: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        schedule(name, ScheduleRun(3, 4), **hparams)


@pytest.mark.parametrize("records, batch, steps", [(10, 4, 3), (9, 4, 2), (8, 4, 2), (1, 4, 1), (5, 1, 1)])
def test_steps_per_epoch_matches_the_loop(records: int, batch: int, steps: int) -> None:
    assert steps_per_epoch(records, batch) == steps  # a last batch of one record is dropped


# --- the space file's `schedule` -----------------------------------------------------------------


def test_schedule_is_optional_and_sampled_when_given() -> None:
    plain = parse_space(BASE + "space: {architecture: resnet, optimizer: adamw}")
    assert "schedule" not in plain.space.choices and "schedule" not in plain.space.sample(0, 0)
    spec = parse_space(BASE + "space: {architecture: resnet, optimizer: adamw, "
                              "schedule: {cosine: {warmup_epochs: {choice: [0, 1]}}, onecycle: {}}}")
    assert spec.space.choices["schedule"] == ("cosine", "onecycle")
    seen = {spec.space.sample(0, i)["schedule"] for i in range(20)}
    assert seen == {"cosine", "onecycle"}


def test_a_misspelled_schedule_parameter_names_the_key() -> None:
    with pytest.raises(SpaceError, match="space.schedule.cosine.warmup_epoch: 'warmup_epoch' is not a parameter "
                                         "of schedule 'cosine'.*did you mean 'warmup_epochs'"):
        parse_space(BASE + "space: {architecture: resnet, optimizer: adamw, schedule: {cosine: {warmup_epoch: 1}}}")


def test_an_unknown_schedule_is_listed() -> None:
    with pytest.raises(SpaceError, match="'cosin' is not a registered schedule.*did you mean 'cosine'"):
        parse_space(BASE + "space: {architecture: resnet, optimizer: adamw, schedule: cosin}")


def test_a_trial_follows_its_schedule(tmp_path) -> None:
    """The loop steps a per-step schedule exactly as planned: one learning rate per optimizer step."""
    torch.set_num_threads(1)
    context = toy_context(toy_entry(tmp_path), epochs=2,
                          extra="  schedule: {cosine: {warmup_epochs: 0, min_lr_ratio: 0.0}}")
    config = context.space.sample(0, 0)
    setup = build_trial(config, context)
    assert setup.schedule_name == "cosine" and setup.schedule.per_step
    scorer = Scorer(context, setup.task.kind, setup.data.target_names)
    epochs = list(train_epochs(setup, context, scorer, torch.Generator().manual_seed(0)))
    assert len(epochs) == 2
    total = 2 * steps_per_epoch(len(setup.train_x), 16)
    assert setup.schedule.total_steps == total and setup.schedule.taken == total - 1
    last_lr = 0.01 * 0.5 * (1 + math.cos(math.pi * (total - 1) / total))  # the lr of the last planned step
    assert setup.optimizer.param_groups[0]["lr"] == pytest.approx(last_lr)
    last = run_trial(config, context, lambda report: None)
    assert last["status"] == "ok" and last["schedule"] == "cosine"


def test_the_plugin_guide_schedule_example_registers_and_runs(monkeypatch) -> None:
    import re
    import sys
    import types

    from conftest import ROOT

    from ecgsearch.plugins import build_registries, get_plugin_manager

    doc = (ROOT / "docs" / "plugins.md").read_text()
    code = re.search(r"`ecgsearch_stepdecay.py`:\n\n```python\n(.*?)```", doc, re.S).group(1)
    module = types.ModuleType("doc_schedule_plugin")
    exec(compile(code, "docs/plugins.md", "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, "doc_schedule_plugin", module)
    monkeypatch.setenv("ECGSEARCH_PLUGINS", "doc_schedule_plugin")
    regs = build_registries(get_plugin_manager())
    spec = parse_space(BASE + "space: {architecture: resnet, optimizer: adamw, schedule: {step_decay: {every: 1}}}",
                       registries=regs)
    name, params = spec.space.resolve(spec.space.sample(0, 0)).choices["schedule"]
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=BASE_LR)
    sched = regs.schedules.get(name).create(optimizer, ScheduleRun(3, 4), **params)
    for _ in range(2):
        optimizer.step()
        sched.epoch_end(None)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(BASE_LR / 4)


def test_a_restored_schedule_continues_the_same_curve() -> None:
    """What a resumed trial relies on: the schedule's state (steps taken included) round-trips."""
    run = ScheduleRun(epochs=2, steps_per_epoch=5)
    first_opt, first = schedule("onecycle", run)
    for _ in range(4):
        first_opt.step()
        first.step()
    second_opt, second = schedule("onecycle", run)
    second_opt.load_state_dict(first_opt.state_dict())
    second.load_state_dict(first.state_dict())
    for _ in range(10):  # past the end: no "tried to step too many times"
        first_opt.step(), first.step(), second_opt.step(), second.step()
        assert second_opt.param_groups[0]["lr"] == first_opt.param_groups[0]["lr"]
    assert second.taken == first.taken == run.total_steps - 1
