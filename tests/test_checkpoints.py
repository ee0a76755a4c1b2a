"""Trial checkpoints: a resumed trial continues exactly where it stopped; unsafe files are refused."""

from __future__ import annotations

import io
import math
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch

from ecgsearch.data.prepare import prepare_entry
from ecgsearch.errors import UserError
from ecgsearch.results.folder import load_weights
from ecgsearch.space import parse_space
from ecgsearch.train.checkpoints import STATE_FILE, restore_state, retune, save_state, stateful_parts
from ecgsearch.train.context import TrialContext
from ecgsearch.train.trial import run_trial

SPACE = """
name: ckpt
seed: 2
data: {dataset: synthetic, records: 120, sampling_rate: 50, seconds: 4, leads: [I, II, V1, V5]}
task: multilabel
budget: {trials: 1, epochs: 3}
space:
  architecture: {resnet: {depth: 8, channels: 8, kernel: 5}}
  optimizer: {adamw: {lr: 3.0e-3}}
  batch_size: 16
  augment_noise: 0.05
"""


class _Crash(Exception):
    pass


class Reporter:
    """A checkpointing reporter without Tune: saves after ``save_at``, crashes after ``crash_at``."""

    def __init__(self, folder: Path, save_at: int = 0, crash_at: int = 0, restore_from: Path | None = None):
        self.folder, self.save_at, self.crash_at, self.restore_from = folder, save_at, crash_at, restore_from
        self.reports: list[dict[str, Any]] = []

    def __call__(self, metrics: dict[str, Any]) -> None:
        self.reports.append(metrics)

    def epoch_end(self, metrics: dict[str, Any], state: Any) -> None:
        self.reports.append(metrics)
        if state.epoch == self.save_at:
            save_state(state, self.folder)
        if state.epoch == self.crash_at:
            raise _Crash

    def restore(self, setup: Any, generator: torch.Generator, config: Any = None) -> Any:
        self.setup = setup
        return None if self.restore_from is None else restore_state(self.restore_from, setup, generator, config)


def _context(tmp_path: Path) -> tuple[dict[str, Any], TrialContext]:
    spec = parse_space(SPACE)
    entry = prepare_entry(spec.data.dataset, dict(spec.data.params), None, "test")
    config = {**spec.space.sample(spec.seed, 0), "_trial_id": "t0000", "_seed": 11}
    context = TrialContext(cache_entry=str(entry), out_dir=str(tmp_path / "out"), epochs=3, metric=spec.metric,
                           mode=spec.mode, task="multilabel", task_params={}, seed=spec.seed, space=spec.space)
    return config, context


def test_a_resumed_trial_continues_where_it_stopped_not_from_epoch_1(tmp_path, single_thread):
    config, context = _context(tmp_path)
    straight = Reporter(tmp_path)
    run_trial(config, context, straight)

    crashed = Reporter(tmp_path, save_at=1, crash_at=2)
    with pytest.raises(_Crash):
        run_trial(config, context, crashed)
    resumed = Reporter(tmp_path, restore_from=tmp_path / STATE_FILE)
    last = run_trial(config, context, resumed)

    assert [r["epoch"] for r in resumed.reports] == [2, 3]  # epoch 1 is not trained again
    assert last["status"] == "ok" and last["epochs"] == 3
    # model, optimizer, generator and RNG state restored: the same numbers as the uninterrupted run
    for key in ("loss", "val.macro_auroc", "test.macro_auroc", "best_epoch", "current.val.macro_auroc"):
        expected = straight.reports[-1][key]
        assert last[key] == expected or (math.isnan(last[key]) and math.isnan(expected)), key
    assert last["train_seconds"] >= crashed.reports[0]["train_seconds"]


def test_the_checkpoint_holds_every_stateful_part(tmp_path, single_thread):
    config, context = _context(tmp_path)
    reporter = Reporter(tmp_path, save_at=1, crash_at=1)
    with pytest.raises(_Crash):
        run_trial(config, context, reporter)
    payload = torch.load(tmp_path / STATE_FILE, weights_only=True)
    assert {"model", "optimizer"} <= set(payload["parts"]) and payload["epoch"] == 1
    assert payload["last"]["epoch"] == 1 and payload["best"]["best_epoch"] == 1


def test_a_state_continued_with_new_optimizer_settings_takes_them(tmp_path, single_thread):
    """Population-based training continues a better trial's state with a perturbed learning rate and
    weight decay: the restored optimizer runs at the saved rate times new/old, with the new decay."""
    config, context = _context(tmp_path)
    reporter = Reporter(tmp_path, save_at=1, crash_at=1)
    with pytest.raises(_Crash):
        run_trial(config, context, reporter)
    saved = torch.load(tmp_path / STATE_FILE, weights_only=True)["parts"]["optimizer"]["param_groups"][0]
    lr_key = next(k for k in config if k.startswith("optimizer.") and k.endswith(".lr"))
    decay_key = lr_key.replace(".lr", ".weight_decay")
    perturbed = {**config, lr_key: config[lr_key] * 1.2, decay_key: 0.0123}
    continued = Reporter(tmp_path, restore_from=tmp_path / STATE_FILE, crash_at=2)
    with pytest.raises(_Crash):
        run_trial(perturbed, context, continued)
    assert [r["epoch"] for r in continued.reports] == [2]
    group = continued.setup.optimizer.param_groups[0]
    assert group["weight_decay"] == 0.0123
    # the second epoch ran at the saved rate x 1.2 (a constant schedule: the rate itself)
    assert group["lr"] == pytest.approx(saved["lr"] * 1.2)

    plain = Reporter(tmp_path, restore_from=tmp_path / STATE_FILE, crash_at=2)
    with pytest.raises(_Crash):
        run_trial(config, context, plain)  # the same settings: the saved state as it was
    assert plain.setup.optimizer.param_groups[0]["lr"] == pytest.approx(saved["lr"])
    assert plain.setup.optimizer.param_groups[0]["weight_decay"] == saved["weight_decay"]


def test_retune_scales_a_schedule_part_way_through():
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    before = optimizer.param_groups[0]["lr"]

    class Setup:
        pass

    setup = Setup()
    setup.optimizer, setup.scheduler = optimizer, scheduler
    old = {"optimizer": "adamw", "optimizer.adamw.lr": 0.01, "optimizer.adamw.weight_decay": 0.1}
    changed = retune(setup, old, {**old, "optimizer.adamw.lr": 0.02})
    assert changed == ["optimizer.adamw.lr"]
    assert optimizer.param_groups[0]["lr"] == pytest.approx(2 * before)
    assert scheduler.base_lrs == [pytest.approx(0.02)]
    scheduler.step()  # the cosine continues from the scaled rate: exactly twice the unscaled one
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.02 * (1 + math.cos(math.pi * 5 / 10)) / 2)


def test_stateful_parts_are_found_one_level_down():
    class Holder:
        def __init__(self):
            self.scheduler = torch.optim.lr_scheduler.StepLR(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))],
                                                                              lr=0.1), 1)

    class Setup:
        def __init__(self):
            self.model = torch.nn.Linear(2, 2)
            self.schedule = Holder()
            self.train_x = torch.zeros(3)
            self.name = "x"

    assert set(stateful_parts(Setup())) == {"model", "schedule.scheduler"}


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch /tmp/ecgsearch-checkpoint-pwned",))


def test_a_checkpoint_holding_a_non_tensor_object_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": torch.nn.Linear(2, 2).state_dict(), "extra": _Payload()}, path)
    with pytest.raises(UserError) as info:
        load_weights(path)
    assert str(info.value) == (
        f"{path}: refused to load: the file holds a pickled Python object (posix.system) that is not a tensor "
        "or plain data, and ecgsearch never runs code from a checkpoint; use a checkpoint written by ecgsearch "
        "or a torch.save of tensors and state dicts.")
    assert not Path("/tmp/ecgsearch-checkpoint-pwned").exists()


def test_a_plain_pickle_of_an_object_is_refused_too(tmp_path):
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"weights": io.BytesIO(b"x")}, protocol=2))
    with pytest.raises(UserError, match=r"refused to load: the file holds a pickled Python object \(_io.BytesIO\)"):
        load_weights(path)


def test_a_damaged_or_missing_checkpoint_is_one_sentence(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError, match=r"bad.pt: refused to load: not a data-only PyTorch checkpoint "
                                        r"\(Unsupported operand 110\); the file is damaged or holds pickled "
                                        r"objects, and ecgsearch never runs code from a checkpoint\.$"):
        load_weights(bad)
    with pytest.raises(UserError, match=r"missing.pt: no such checkpoint file\.$"):
        load_weights(tmp_path / "missing.pt")


def test_restore_refuses_a_foreign_file(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(UserError, match=r"weights.pt: not an ecgsearch trial checkpoint \(format 1\)"):
        restore_state(path, object(), torch.Generator())


def test_predict_refuses_an_unsafe_best_checkpoint(tmp_path):
    from ecgsearch.results.folder import RunFolder, checkpoint_path

    path = checkpoint_path(tmp_path, "t0000")
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": {}, "config": _Payload()}, path)
    with pytest.raises(UserError, match=r"best.pt: refused to load: the file holds a pickled Python object"):
        RunFolder(tmp_path).load_checkpoint("t0000")
