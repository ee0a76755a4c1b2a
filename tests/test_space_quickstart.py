"""A whole valid space file (the quickstart's shape) parses into the expected SearchSpec."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

import ecgsearch.plugins
from ecgsearch.space import (
    TRIAL_PARAMS,
    BudgetSpec,
    ConstraintSpec,
    DataSpec,
    LatencySpec,
    ResourceSpec,
    SearchAlgSpec,
    TaskSpec,
    load_space,
    parse_space,
)

FAKES = runpy.run_path(str(Path(__file__).parent / "space_files" / "fakes.py"))

QUICKSTART = """\
name: quickstart
seed: 0
data: {dataset: synthetic, records: 1200, sampling_rate: 100, seconds: 10, leads: [I, II, V1, V2, V3, V4, V5, V6]}
task: multilabel
metric: macro_auroc
budget: {trials: 12, epochs: 4, scheduler: fifo, max_concurrent: 2}
resources: {cpu: 1, gpu: 0}
search: {algorithm: random}
constraints: {max_flops: 5.0e7}
space:
  architecture:
    convnext: {stages: {randint: [2, 3]}, width: {choice: [16, 32]}, kernel: {choice: [7, 9]}}
    resnet:   {depth: {choice: [8, 10]}, channels: {choice: [16, 32]}, kernel: {choice: [7, 9, 15]}}
  optimizer:
    adamw: {lr: {loguniform: [1.0e-3, 1.0e-2]}, weight_decay: {loguniform: [1.0e-5, 1.0e-2]}}
    sgd:   {lr: {loguniform: [1.0e-2, 1.0e-1]}, momentum: {choice: [0.0, 0.9]}}
  batch_size: {choice: [32, 64]}
  data_fraction: 1.0
"""


@pytest.fixture(scope="module")
def registries():
    return FAKES["fake_registries"]()


def test_quickstart_parses(registries, tmp_path):
    path = tmp_path / "quickstart.yaml"
    path.write_text(QUICKSTART)
    spec = load_space(path, registries)
    assert spec.path == str(path)
    assert (spec.name, spec.seed, spec.metric, spec.mode) == ("quickstart", 0, "macro_auroc", "max")
    assert spec.data == DataSpec("synthetic", {"records": 1200, "sampling_rate": 100, "seconds": 10,
                                               "leads": ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]}, None)
    assert spec.task == TaskSpec("multilabel", {})
    assert spec.budget == BudgetSpec(trials=12, epochs=4, scheduler="fifo", max_concurrent=2)
    assert spec.resources == ResourceSpec(cpu=1.0, gpu=0.0)
    assert spec.search == SearchAlgSpec("random", {})
    assert spec.constraints == ConstraintSpec(max_flops=5.0e7)
    assert type(spec.constraints.max_flops) is float
    assert spec.latency is None
    assert spec.space.choices == {"architecture": ("convnext", "resnet"), "optimizer": ("adamw", "sgd")}
    assert spec.space.grid_size() == 1
    assert spec.lines["space.optimizer.sgd.momentum"] == 16
    config = spec.space.sample(spec.seed, 0)
    assert config["data_fraction"] == 1.0 and config["batch_size"] in (32, 64)


def test_sample_has_the_documented_shape(registries):
    space = parse_space(QUICKSTART, registries=registries).space
    config = next(c for c in (space.sample(0, i) for i in range(40))
                  if c["architecture"] == "resnet" and c["optimizer"] == "adamw")
    assert list(config) == ["architecture", "architecture.resnet.depth", "architecture.resnet.channels",
                            "architecture.resnet.kernel", "optimizer", "optimizer.adamw.lr",
                            "optimizer.adamw.weight_decay", *TRIAL_PARAMS]  # the file's, then the defaults
    assert 1.0e-3 <= config["optimizer.adamw.lr"] <= 1.0e-2


def test_defaults_and_optional_sections(registries):
    text = """\
seed: null
data: {dataset: synthetic, cache_dir: /tmp/cache}
task: {name: multilabel, pos_weight: 2.0}
budget: {trials: 3, epochs: 5, scheduler: asha, grace_period: 2, reduction_factor: 3, trial_time_limit_s: 60}
resources: {gpu: 0.25}
search: {}
constraints: {max_flops: 5e7, max_params: '1e6', max_latency_ms: 20}
latency: {backends: [torch-cpu, onnxruntime-cpu], batch_size: 1, threads: 2}
space: {architecture: resnet, optimizer: sgd, batch_size: null}
"""
    spec = parse_space(text, source="spaces/study.yaml", registries=registries)
    assert spec.space.sample(0, 0)["batch_size"] == 64  # null: the default
    assert spec.name == "study" and spec.seed == 0
    assert spec.metric == "macro_auroc"  # the task's default metric
    assert spec.data == DataSpec("synthetic", {}, "/tmp/cache")
    assert spec.task == TaskSpec("multilabel", {"pos_weight": 2.0})
    assert spec.budget == BudgetSpec(3, 5, "asha", {"grace_period": 2, "reduction_factor": 3}, None, 60.0)
    assert spec.resources == ResourceSpec(cpu=1.0, gpu=0.25)
    assert spec.search == SearchAlgSpec("random", {})  # the default algorithm
    assert spec.constraints == ConstraintSpec(5e7, 1e6, 20.0)
    assert spec.latency == LatencySpec(("torch-cpu", "onnxruntime-cpu"), 1, 2)


def test_min_mode_comes_from_the_metric(registries):
    text = "data: {dataset: synthetic}\ntask: regression\nbudget: {trials: 1, epochs: 1}\n" \
           "space: {architecture: resnet, optimizer: sgd}\n"
    spec = parse_space(text, registries=registries)
    assert (spec.metric, spec.mode) == ("mae", "min")


def test_mapping_input(registries):
    spec = parse_space({"data": {"dataset": "synthetic"}, "task": "multilabel",
                        "budget": {"trials": 1, "epochs": 1},
                        "space": {"architecture": {"resnet": {"depth": {"choice": (8, 10)}}}, "optimizer": "sgd"}},
                       registries=registries)
    assert spec.name == "space"
    assert spec.space.parameters[0].dist.values == (8, 10)


def test_registries_default_to_the_process_registries(registries, monkeypatch):
    monkeypatch.setattr(ecgsearch.plugins, "get_registries", lambda: registries)
    assert parse_space(QUICKSTART).name == "quickstart"


def test_spec_is_frozen(registries):
    spec = parse_space(QUICKSTART, registries=registries)
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]
