"""The Space object: deterministic sampling, conditional activity, default sub-spaces, grids, and the
to_tune -> active -> resolve round trip."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest
from ray.tune.search.sample import Domain

from ecgsearch.space import TRIAL_PARAMS, Fixed, Space, parse_space

TRIAL_DEFAULTS = {name: param.default for name, param in TRIAL_PARAMS.items()}

FAKES = runpy.run_path(str(Path(__file__).parent / "space_files" / "fakes.py"))

HEADER = """\
data: {dataset: synthetic}
task: multilabel
budget: {trials: 4, epochs: 2}
"""

CONDITIONAL = HEADER + """\
space:
  architecture:
    resnet:
      depth: {choice: [8, 10]}
      stem: {width: {randint: [8, 16]}, kernel: 7}
    convnext: {stages: {randint: [2, 3]}, depths: [2, 2, 6, 2]}
    kwargsnet: {anything: {uniform: [0.0, 1.0]}}
  optimizer:
    adamw: {lr: {loguniform: [1.0e-4, 1.0e-2]}}
    sgd: {lr: {loguniform: [1.0e-3, 1.0e-1]}, momentum: {choice: [0.0, 0.9]}}
  batch_size: {qrandint: [16, 64, 16]}
"""


@pytest.fixture(scope="module")
def registries():
    return FAKES["fake_registries"]()


@pytest.fixture(scope="module")
def space(registries) -> Space:
    return parse_space(CONDITIONAL, registries=registries).space


def test_sample_is_deterministic(space):
    assert space.sample(7, 3) == space.sample(7, 3)
    assert len({repr(space.sample(7, i)) for i in range(20)}) == 20
    assert space.sample(7, 3) != space.sample(8, 3)


def test_only_the_chosen_options_parameters_are_active(space):
    seen = set()
    for index in range(60):
        config = space.sample(0, index)
        arch, opt = config["architecture"], config["optimizer"]
        seen.add(arch)
        for key in config:
            if key.startswith("architecture."):
                assert key.startswith(f"architecture.{arch}.")
            if key.startswith("optimizer."):
                assert key.startswith(f"optimizer.{opt}.")
        expected = {p.name for p in space.parameters if p.condition in (None, ("architecture", arch),
                                                                          ("optimizer", opt))}
        assert set(config) == expected | {"architecture", "optimizer"}
    assert seen == {"resnet", "convnext", "kwargsnet"}


def test_sample_values_and_types(space):
    for index in range(40):
        config = space.sample(1, index)
        assert config["batch_size"] in (16, 32, 48, 64) and type(config["batch_size"]) is int
        assert config["data_fraction"] == 1.0  # not in the file: the TRIAL_PARAMS default
        if config["architecture"] == "convnext":
            assert config["architecture.convnext.depths"] == [2, 2, 6, 2]  # a plain list is fixed
            assert type(config["architecture.convnext.stages"]) is int
        if config["architecture"] == "resnet":
            assert 8 <= config["architecture.resnet.stem.width"] <= 16
            assert config["architecture.resnet.stem.kernel"] == 7


def test_choices_in_file_order(space):
    assert space.choices == {"architecture": ("resnet", "convnext", "kwargsnet"), "optimizer": ("adamw", "sgd")}


def test_resolve_nests_groups(space):
    config = next(c for c in (space.sample(2, i) for i in range(50)) if c["architecture"] == "resnet")
    resolved = space.resolve(config)
    option, kwargs = resolved.choices["architecture"]
    assert option == "resnet"
    assert kwargs == {"depth": config["architecture.resnet.depth"],
                      "stem": {"width": config["architecture.resnet.stem.width"], "kernel": 7}}
    assert resolved.params == {**TRIAL_DEFAULTS, "batch_size": config["batch_size"]}
    # the nested kwargs really are what the factory takes
    assert FAKES["resnet"](12, 1000, 5, **kwargs)[0] == "resnet"


def test_to_tune_active_resolve_round_trip(space):
    param_space = space.to_tune()
    assert set(param_space) == {"architecture", "optimizer"} | {p.name for p in space.parameters}
    assert param_space["architecture.convnext.depths"] == [2, 2, 6, 2]
    assert param_space["data_fraction"] == 1.0
    rng = np.random.default_rng(5)
    for _ in range(50):
        config = {k: v.sample(random_state=rng) if isinstance(v, Domain) else v for k, v in param_space.items()}
        active = space.active(config)
        chosen = {kind: active[kind] for kind in space.choices}
        for param in space.parameters:
            if param.condition is None or chosen[param.condition[0]] == param.condition[1]:
                assert param.dist.contains(active[param.name]), (param.name, active[param.name])
            else:
                assert param.name not in active
        resolved = space.resolve(config)
        for kind, option in chosen.items():
            assert resolved.choices[kind][0] == option


def test_resolve_rejects_an_unknown_option(space):
    with pytest.raises(ValueError, match="architecture='vgg'"):
        space.resolve({"architecture": "vgg", "optimizer": "sgd"})


def test_default_true_merges_the_default_space(registries):
    text = HEADER + """\
space:
  architecture:
    resnet: {default: true, depth: 34, stem: {kernel: 9}}
  optimizer:
    adamw: {default: true}
"""
    space = parse_space(text, registries=registries).space
    dists = {p.name: p.dist for p in space.parameters}
    assert dists["architecture.resnet.depth"] == Fixed(34)  # overridden
    assert dists["architecture.resnet.channels"].values == (16, 32)  # from the default space
    assert dists["architecture.resnet.stem.width"].values == (16, 32)  # group merged key by key
    assert dists["architecture.resnet.stem.kernel"] == Fixed(9)
    assert dists["optimizer.adamw.lr"].describe() == "loguniform [0.0001, 0.01]"
    assert space.choices == {"architecture": ("resnet",), "optimizer": ("adamw",)}


def test_plain_option_names_mean_factory_defaults(registries):
    text = HEADER + "space: {architecture: resnet, optimizer: [adamw, sgd], data_fraction: 0.5}\n"
    space = parse_space(text, registries=registries).space
    assert space.choices == {"architecture": ("resnet",), "optimizer": ("adamw", "sgd")}
    config = space.sample(0, 0)
    assert set(config) == {"architecture", "optimizer", *TRIAL_PARAMS}
    assert config["batch_size"] == 64 and config["data_fraction"] == 0.5
    assert space.resolve(config).choices["architecture"] == ("resnet", {})


def test_grid_enumerates_every_point_once(registries):
    text = HEADER + """\
space:
  architecture:
    resnet: {depth: {grid: [8, 10, 18]}, channels: {choice: [16, 32]}}
  optimizer: {sgd: null}
  batch_size: {grid: [16, 32]}
"""
    space = parse_space(text, registries=registries).space
    assert space.grid_size() == 6
    points = [(c["architecture.resnet.depth"], c["batch_size"]) for c in (space.sample(3, i) for i in range(6))]
    assert sorted(points) == sorted((d, b) for d in (8, 10, 18) for b in (16, 32))
    assert (space.sample(3, 6)["architecture.resnet.depth"], space.sample(3, 6)["batch_size"]) == points[0]
    assert space.to_tune()["batch_size"] == {"grid_search": [16, 32]}


def test_grid_size_without_grids(space):
    assert space.grid_size() == 1
    assert space.grid_point(5) == {}


def test_kwargs_factories_skip_the_name_check(registries):
    text = HEADER + "space: {architecture: {kwargsnet: {whatever: 3}}, optimizer: sgd}\n"
    config = parse_space(text, registries=registries).space.sample(0, 0)
    assert config["architecture.kwargsnet.whatever"] == 3
