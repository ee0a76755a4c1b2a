"""GPU switches of the resources section: data on the GPU and torch.compile (CUDA parts skip without a GPU)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from ecgsearch.errors import SpaceError
from ecgsearch.space import parse_space
from ecgsearch.train.accel import accelerate, data_on_gpu
from ecgsearch.train.context import TrialRuntime

BASE = """
data: {{dataset: synthetic}}
task: multilabel
budget: {{trials: 1, epochs: 1}}
resources: {resources}
space: {{architecture: resnet, optimizer: adamw}}
"""


@dataclass
class Setup:
    model: torch.nn.Module
    train_x: torch.Tensor
    train_y: torch.Tensor
    device: torch.device


def test_the_switches_parse_and_bad_values_are_one_sentence():
    spec = parse_space(BASE.format(resources="{gpu: 0.25, data_on_gpu: false, compile: true}"), source="s.yaml")
    assert spec.resources.data_on_gpu is False and spec.resources.compile is True
    assert parse_space(BASE.format(resources="{data_on_gpu: auto}"), source="s.yaml").resources.data_on_gpu is None
    with pytest.raises(SpaceError) as info:
        parse_space(BASE.format(resources="{data_on_gpu: always}"), source="s.yaml")
    assert str(info.value) == "s.yaml:5: resources.data_on_gpu: 'always' is not true or false or auto " \
                              "(allowed: true, false, auto)"


def test_nothing_moves_on_the_cpu():
    assert not data_on_gpu(10, torch.device("cpu"), True, 1.0)
    setup = Setup(torch.nn.Linear(2, 2), torch.zeros(4, 2), torch.zeros(4, 2), torch.device("cpu"))
    accelerate(setup, TrialRuntime(data_on_gpu=True), 0.0)
    assert setup.train_x.device.type == "cpu"


def test_compile_compiles_the_model_in_place(monkeypatch):
    compiled = []
    model = torch.nn.Linear(2, 2)
    monkeypatch.setattr(model, "compile", lambda: compiled.append(True))
    accelerate(Setup(model, torch.zeros(4, 2), torch.zeros(4, 2), torch.device("cpu")), TrialRuntime(compile=True), 0)
    assert compiled == [True]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_training_set_goes_to_the_gpu_when_it_fits():
    device = torch.device("cuda")
    setup = Setup(torch.nn.Linear(2, 2).to(device), torch.zeros(64, 2), torch.zeros(64, 2), device)
    accelerate(setup, TrialRuntime(data_on_gpu=None), 0.25)
    assert setup.train_x.device.type == "cuda" and setup.train_y.device.type == "cuda"
    huge = torch.cuda.get_device_properties(device).total_memory
    assert not data_on_gpu(huge, device, None, 0.25) and data_on_gpu(huge, device, True, 0.25)
