"""Mixed precision, gradient clipping and the training device; CUDA paths skip without a GPU."""

from __future__ import annotations

import pytest
import torch
from toy_ecg import toy_context, toy_entry

from ecgsearch.errors import SpaceError, UserError
from ecgsearch.space import parse_space
from ecgsearch.train.precision import make_stepper, trial_device
from ecgsearch.train.setup import build_trial
from ecgsearch.train.trial import run_trial

pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (CI has none)")


@pytest.fixture(scope="module")
def entry(tmp_path_factory):
    return toy_entry(tmp_path_factory.mktemp("toy"))


def test_plain_fp32_on_the_cpu_adds_nothing_to_the_loop(entry) -> None:
    setup = build_trial(toy_context(entry).space.sample(0, 0), toy_context(entry))
    assert setup.stepper is None and setup.device.type == "cpu"


def test_bf16_autocasts_on_the_cpu_and_trains(entry) -> None:
    context = toy_context(entry, extra="  precision: bf16")
    config = context.space.sample(0, 0)
    setup = build_trial(config, context)
    with setup.stepper.autocast():
        assert setup.model(setup.train_x[:4]).dtype == torch.bfloat16
    last = run_trial(config, context, lambda report: None)
    assert last["status"] == "ok" and last["val.mae"] == last["val.mae"]  # a number, not NaN


def test_gradient_clipping_bounds_the_step(entry) -> None:
    """Plain SGD with lr 1: the update is the clipped gradient, so its norm is at most grad_clip."""
    context = toy_context(entry, extra="  grad_clip: 0.01")
    config = {**context.space.sample(0, 0)}
    setup = build_trial(config, context)
    sgd = torch.optim.SGD([p for p in setup.model.parameters() if p.requires_grad], lr=1.0)
    before = [p.detach().clone() for p in setup.model.parameters()]
    loss = setup.task.loss(setup.model(setup.train_x[:16]), setup.train_y[:16])
    sgd.zero_grad()
    setup.stepper.step(loss, sgd)
    moved = torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(setup.model.parameters(), before)))
    assert 0 < moved.item() <= 0.01 + 1e-6


def test_fp16_without_a_gpu_is_refused_in_the_space_file() -> None:
    with pytest.raises(SpaceError, match="space.precision: 'fp16' needs a CUDA GPU but resources.gpu is 0; use "
                                         "bf16 or fp32 on the CPU"):
        parse_space("data: {dataset: synthetic}\ntask: multilabel\nbudget: {trials: 1, epochs: 1}\n"
                    "space: {architecture: resnet, optimizer: adamw, precision: {choice: [fp32, fp16]}}")


def test_fp16_on_the_cpu_is_refused_by_the_trial() -> None:
    with pytest.raises(UserError, match="precision fp16 needs a CUDA GPU but this trial trains on the CPU"):
        make_stepper("fp16", 0.0, torch.device("cpu"), [])


def test_an_unknown_precision_is_a_space_error() -> None:
    with pytest.raises(SpaceError, match=r"space.precision: 'fp8' is not one of fp32, bf16, fp16"):
        parse_space("data: {dataset: synthetic}\ntask: multilabel\nbudget: {trials: 1, epochs: 1}\n"
                    "space: {architecture: resnet, optimizer: adamw, precision: fp8}")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_gpu_trial_without_a_gpu_says_so() -> None:
    with pytest.raises(UserError, match="resources.gpu is 1 but this trial's worker sees no CUDA GPU"):
        trial_device(1.0)


@CUDA
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_a_trial_trains_on_cuda(entry, precision: str) -> None:
    context = toy_context(entry, extra=f"  precision: {precision}\n  grad_clip: 1.0", gpu=1.0)
    config = context.space.sample(0, 0)
    setup = build_trial(config, context)
    assert next(setup.model.parameters()).is_cuda
    assert (setup.stepper.scaler is not None) == (precision == "fp16")
    last = run_trial(config, context, lambda report: None)
    assert last["status"] == "ok" and last["val.mae"] == last["val.mae"]
