"""Every registered architecture: shapes, gradients, its default space, costs and error messages.

The tests are generated from the registry, so a new architecture plugin is covered as soon as it is
registered; family-specific expectations (width parameter, bad values) live in the tables below.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any

import pytest
import torch

from ecgsearch.infos import ArchitectureInfo
from ecgsearch.plugins import get_registries
from ecgsearch.train.costs import count_params, estimate_costs
from ecgsearch.train.models import check_model, feature_width, freeze_stages, stage_count
from ecgsearch_plugins.architectures._layers import DropPath
from ecgsearch_plugins.architectures.regnet import quantized_widths, regnet_stages

pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py

# tests/fixtures/ecg_test_plugins.py registers architectures that fail on purpose (fault injection).
FAULT_INJECTION_PLUGINS = {"ecg_test_plugins"}
# Networks only: an estimator architecture (features + fitted model, such as features_gbm) builds no module
# and has its own tests (tests/test_features_gbm.py).
REGISTERED = [a for a in get_registries().architectures
              if a.plugin not in FAULT_INJECTION_PLUGINS and a.model_kind == "torch"]

# Configurations of a registered item that every generated test (here, in test_costs.py and in
# test_latency_backends.py) also covers as if they were registered variants:
# name -> (registered item, hyperparameters bound as the defaults, default space)
CONFIGURED: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "regnet[block=convnext]": (
        "regnet", {"block": "convnext", "stem_width": 16, "w0": 16, "wa": 8.0, "depth": 4, "kernel": 7,
                   "drop_path": 0.1},
        {"kernel": {"choice": [3, 7]}, "expansion": {"choice": [2.0, 4.0]}, "layer_scale": {"choice": [0.0, 1e-6]},
         "drop_path": {"choice": [0.0, 0.2]}, "w0": {"choice": [8, 24]}}),
    # the head's pooling (tests/test_heads.py has every pool on every CNN family): flatten by default, every
    # pool in the space (its corners, which test_latency_backends exports, are attention and max)
    "resnet_tiny[pool=flatten]": (
        "resnet_tiny", {"pool": "flatten"}, {"pool": {"choice": ["gap", "max", "gap_max", "attention", "flatten"]}}),
}


def configured(name: str, item: str, hparams: dict[str, Any], space: dict[str, Any]) -> ArchitectureInfo:
    info = get_registries().architectures.get(item)
    return dataclasses.replace(info, name=name, factory=functools.partial(info.load(), **hparams),
                               default_space=space)


ARCHS = REGISTERED + [configured(name, *config) for name, config in CONFIGURED.items()]
NUM_OUTPUTS = 5
LEADS = (12, 8, 2)
LENGTHS = (1100, 1400)  # every built-in default fits both (resnet_code needs >= 1089 at kernel 17)

# name or family -> hyperparameters that double the width of the defaults (FLOPs must grow)
WIDER: dict[str, dict[str, Any]] = {
    "resnet": {"channels": 128}, "convnext": {"width": 64}, "regnet": {"w0": 64}, "transformer": {"width": 256},
    "inception": {"filters": 64}, "resnet_code": {"widths": [128, 256, 392, 512, 640]},
    "rnn": {"hidden": 128}, "lstm": {"hidden": 128}, "gru": {"hidden": 128},
}

# family -> (bad hyperparameters, text the ValueError must contain)
BAD_HPARAMS: dict[str, list[tuple[dict[str, Any], str]]] = {
    "resnet": [
        ({"depth": 12}, "resnet: depth=12 is not supported; allowed values: 8, 10, 18, 34."),
        ({"kernel": 4}, "kernel=4 must be an odd integer"),
        ({"channels": 0}, "channels=0 must be an integer >= 1"),
        ({"channels": 2.5}, "channels=2.5"),
    ],
    "convnext": [
        ({"stages": 5}, "convnext: stages=5 is not supported; allowed values: 1, 2, 3, 4."),
        ({"kernel": 6}, "kernel=6 must be an odd integer"),
        ({"drop_path": 1.0}, "drop_path=1.0 must be a number in [0.0, 1.0)"),
        ({"layer_scale": -1.0}, "layer_scale=-1.0"),
        ({"depths": [1, 1, 1, 1, 1]}, "depths=[1, 1, 1, 1, 1] must be a list of 1 to 4"),
        ({"depths": [2, 0]}, "depths=0"),
        ({"patch": 0}, "patch=0"),
        ({"widths": [16, 32], "depths": [1, 1, 1]}, "convnext: widths=[16, 32] has 2 entries but depths=[1, 1, 1] "
                                                    "has 3; give one width per stage."),
        ({"stages": 4, "patch": 16, "kernel": 31}, "convnext: kernel=31 is longer than the 7 samples left after "
                                                   "downsampling num_samples=1000; use a smaller kernel, fewer "
                                                   "stages or longer records."),
    ],
    "resnet_code": [
        ({"widths": [64]}, "resnet_code: widths=[64] must be a list of 2 to 8 integers"),
        ({"dropout": 1.0}, "dropout=1.0 must be a number in [0.0, 1.0)"),
        # 1000 samples / 4**3 leaves 16 for the last block: too few for kernel 17
        ({}, "resnet_code: kernel=17 is longer than the 16 samples left after downsampling num_samples=1000"),
    ],
    "regnet": [
        ({"w0": 36}, "regnet: w0=36 must be a multiple of 8 (e.g. 32 or 40)"),
        ({"wm": 1.0}, "regnet: wm=1.0 must be a number > 1"),
        ({"wa": -1.0}, "wa=-1.0 must be a number in [0.0, inf]"),
        ({"se": 2.0}, "se=2.0 must be a number in [0.0, 1.0]"),
        ({"stem_kernel": 4}, "stem_kernel=4 must be an odd integer"),
        # u_j = 32 + 50 j with wm = 1.1 gives a new width at almost every block: 18 stages halve 1000 to 1
        ({"w0": 32, "wa": 50.0, "wm": 1.1, "depth": 20},
         "regnet: kernel=3 is longer than the 1 samples left after the 18 stages that w0=32, wa=50, wm=1.1, "
         "depth=20 give (num_samples=1000); use fewer stages"),
        ({"block": "bottleneck"}, "regnet: block='bottleneck' is not supported; allowed values: resnet_bottleneck, "
                                  "convnext."),
        ({"block": "convnext", "group_width": 16}, "regnet: group_width=16 applies to block: resnet_bottleneck only "
                                                   "(a ConvNeXt block's depthwise conv has one channel per group); "
                                                   "leave it out, or at its default 8, with block: convnext."),
        ({"expansion": 2.0}, "regnet: expansion=2.0 applies to block: convnext only"),
    ],
    "transformer": [
        ({"width": 64, "heads": 3}, "transformer: heads=3 does not divide width=64; choose heads among "
                                    "1, 2, 4, 8, 16, 32, 64 or change the width."),
        ({"pool": "max"}, "transformer: pool='max' is not supported; allowed values: cls, mean."),
        ({"patch": 2000}, "transformer: num_samples=1000 is below 2000, one patch of patch=2000 samples"),
        ({"mlp_ratio": 0}, "mlp_ratio=0 must be a number in [0.1, 64.0]"),
    ],
    "inception": [
        ({"kernel": 1001}, "inception: num_samples=1000 is below 1001, the longest kernel (kernel=1001); use a "
                           "smaller kernel or longer records."),
        ({"residual": "yes"}, "inception: residual='yes' must be true or false."),
        ({"bottleneck": -1}, "bottleneck=-1 must be an integer >= 0"),
    ],
    "lstm": [
        ({"hidden": 0}, "lstm: hidden=0 must be an integer >= 1."),
        ({"bidirectional": "yes"}, "lstm: bidirectional='yes' must be true or false."),
        ({"pool": "cls"}, "lstm: pool='cls' is not supported; allowed values: last, mean, max."),
        ({"front_kernel": 4}, "front_kernel=4 must be an odd integer"),
        ({"front_layers": 3, "front_stride": 16}, "lstm: num_samples=1000 is below 4096, the front end's "
                                                  "downsampling (front_stride=16 over front_layers=3)"),
    ],
}


def by_name(fn: Any) -> Any:
    return pytest.mark.parametrize("info", ARCHS, ids=[a.name for a in ARCHS])(fn)


def space_corners(space: dict[str, Any]) -> list[dict[str, Any]]:
    """The all-smallest and all-largest configurations of a default space."""
    low, high = {}, {}
    for name, dist in space.items():
        ((kind, values),) = dist.items()
        ordered = sorted(values) if kind in ("choice", "grid") else list(values)[:2]  # [lo, hi(, q)]
        low[name], high[name] = ordered[0], ordered[-1]
    return [low, high]


def finite(t: torch.Tensor) -> bool:
    return bool(torch.isfinite(t).all())


def test_builtin_families_are_registered() -> None:
    names = get_registries().architectures.names()
    assert {"resnet", "resnet_tiny", "resnet_code", "convnext", "convnext_tiny", "regnet", "regnet_tiny",
            "transformer", "transformer_tiny", "inception", "inception_tiny", "rnn", "lstm", "gru"} <= set(names)
    assert {a.family for a in ARCHS} >= {"resnet", "convnext", "regnet", "transformer", "inception", "rnn", "lstm",
                                         "gru"}


@by_name
def test_factory_signature(info: ArchitectureInfo) -> None:
    """Hyperparameters are keyword-only with defaults, and the default space names only them."""
    params = list(inspect.signature(info.load()).parameters.values())
    assert [p.name for p in params[:3]] == ["in_leads", "num_samples", "num_outputs"]
    hparams = {p.name for p in params[3:] if p.kind is p.KEYWORD_ONLY and p.default is not p.empty}
    assert len(hparams) == len(params) - 3
    assert set(info.default_space) <= hparams
    assert info.family and info.description


@by_name
@pytest.mark.parametrize("samples", LENGTHS)
@pytest.mark.parametrize("leads", LEADS)
def test_forward_backward_and_costs(info: ArchitectureInfo, leads: int, samples: int) -> None:
    """Output shape, no NaN, finite gradients everywhere and every cost feature, for each lead count/length."""
    torch.manual_seed(0)
    model = info.create(leads, samples, NUM_OUTPUTS).train()
    out = model(torch.randn(2, leads, samples))
    assert out.shape == (2, NUM_OUTPUTS) and finite(out)
    torch.nn.functional.binary_cross_entropy_with_logits(out, torch.ones_like(out)).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and finite(p.grad), name
    costs = estimate_costs(info.load(), leads, samples, NUM_OUTPUTS, {}, sampling_rate=100.0)
    assert costs.params == count_params(model) > 0
    assert costs.flops == 2 * costs.macs > 0
    assert 1 <= costs.receptive_field <= samples and costs.receptive_field_s == costs.receptive_field / 100.0
    assert costs.receptive_field_frac == costs.receptive_field / samples
    assert costs.stages == stage_count(model) >= 1 and costs.feature_width == feature_width(model)
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, leads, samples)).shape == (1, NUM_OUTPUTS)


@by_name
def test_model_contract_freeze_and_reset_head(info: ArchitectureInfo) -> None:
    """Every architecture follows ecgsearch.train.models: features -> head, freezing stages, a fresh head."""
    model = info.create(8, LENGTHS[0], NUM_OUTPUTS)
    check_model(model, info.name)
    x = torch.randn(2, 8, LENGTHS[0])
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model.head(model.features(x)), model(x))
    frozen = 1
    freeze_stages(model, frozen)
    model.reset_head(3)
    model.train()
    out = model(x)
    assert out.shape == (2, 3)
    out.sum().backward()
    for part in [model.stem, model.stages[0]]:
        assert all(not p.requires_grad and p.grad is None for p in part.parameters())
        assert not part.training  # BatchNorm statistics of frozen parts stay as they were
    trainable = [p for stage in list(model.stages)[frozen:] for p in stage.parameters()] + list(model.head.parameters())
    assert trainable and all(p.requires_grad and p.grad is not None for p in trainable)
    assert feature_width(model) == model.head.in_features


@by_name
def test_default_space_corners_build_and_train(info: ArchitectureInfo) -> None:
    samples = LENGTHS[0]
    for hparams in space_corners(dict(info.default_space)):
        model = info.create(8, samples, NUM_OUTPUTS, **hparams).train()
        out = model(torch.randn(2, 8, samples))
        out.sum().backward()
        assert out.shape == (2, NUM_OUTPUTS) and finite(out), hparams


@by_name
def test_flops_positive_and_grow_with_width(info: ArchitectureInfo) -> None:
    wider = WIDER.get(info.name, WIDER[info.family])
    factory = info.load()
    macs = [estimate_costs(factory, 8, 2000, NUM_OUTPUTS, hparams).macs for hparams in ({}, wider)]
    assert 0 < macs[0] < macs[1]


@by_name
def test_bad_sizes_and_unknown_hparams(info: ArchitectureInfo) -> None:
    for args, text in [((0, 1000, 2), "in_leads=0"), ((8, 1000, 0), "num_outputs=0"),
                       ((8, 4, 2), "num_samples=4 is below")]:
        with pytest.raises(ValueError, match=text):
            info.create(*args)
    with pytest.raises(TypeError, match="no_such_param"):
        info.create(8, 1000, 2, no_such_param=1)


@pytest.mark.parametrize("family", sorted(BAD_HPARAMS))
def test_bad_hparams_name_the_parameter(family: str) -> None:
    """Bad values and invalid combinations are rejected by the factory, and by the cost estimate
    (which never builds the model), with the same sentence."""
    info = get_registries().architectures.get(family)
    for hparams, text in BAD_HPARAMS[family]:
        with pytest.raises(ValueError) as error:
            info.create(8, 1000, 2, **hparams)
        assert text in str(error.value), (hparams, str(error.value))
        with pytest.raises(ValueError) as costing:
            estimate_costs(info.load(), 8, 1000, 2, hparams)
        assert str(costing.value) == str(error.value)


def test_resnet_rejects_a_kernel_longer_than_the_last_stage() -> None:
    resnet = get_registries().architectures.get("resnet")
    # depth 34: 1000 -> stem conv 500 -> max-pool 250 -> 125 -> 63 -> 32 samples in the last stage
    assert resnet.create(8, 1000, 2, depth=34, channels=4, kernel=31)(torch.randn(2, 8, 1000)).shape == (2, 2)
    with pytest.raises(ValueError, match="resnet: kernel=33 is longer than the 32 samples left after downsampling "
                                         "num_samples=1000; use a smaller kernel, fewer stages or longer records."):
        resnet.create(8, 1000, 2, depth=34, kernel=33)


def test_regnet_quantised_linear_widths() -> None:
    # u = 24 + 36 j = 24, 60, 96, 132, 168, 204; s = round(log(u / 24) / log 2.5) = 0, 1, 2, 2, 2, 2;
    # 24 * 2.5**s = 24, 60, 150 -> multiples of 8: 24, 64 (7.5 rounds to 8), 152 (18.75 -> 19)
    assert quantized_widths(24, 36.0, 2.5, 6) == [24, 64, 152, 152, 152, 152]
    stages = regnet_stages(24, 36.0, 2.5, 6, group_width=16, bottleneck=0.5)
    assert [(s.width, s.blocks) for s in stages] == [(24, 1), (64, 1), (152, 4)]
    # bottleneck widths 12, 32, 76 rounded to multiples of the group width (min(16, inner)): 12, 32, 80
    assert [(s.inner, s.groups) for s in stages] == [(12, 1), (32, 2), (80, 5)]
    model = get_registries().architectures.get("regnet").create(12, 1000, 2, w0=24, wa=36.0, wm=2.5, depth=6,
                                                                group_width=16, bottleneck=0.5)
    assert [len(stage) for stage in model.stages] == [1, 1, 4] and model.head.in_features == 152


def test_integral_floats_are_accepted() -> None:
    """Samplers may hand over 32.0 for 32; that must not fail a trial."""
    model = get_registries().architectures.get("resnet").create(8, 1000, 2, depth=8.0, channels=8.0)
    assert model(torch.randn(1, 8, 1000)).shape == (1, 2)


def test_convnext_depths_override_stage_count() -> None:
    model = get_registries().architectures.get("convnext").create(8, 1000, 3, width=8,
                                                                  depths=[1, 1, 2, 1])
    assert len(model.stages) == 4
    assert model(torch.randn(2, 8, 1000)).shape == (2, 3)


def test_drop_path_is_identity_in_eval_and_unbiased_in_training() -> None:
    layer, x = DropPath(0.25), torch.ones(20000, 4)
    assert torch.equal(layer.eval()(x), x)
    y = layer.train()(x)
    dropped = (y == 0).all(dim=1).float().mean().item()
    assert abs(dropped - 0.25) < 0.02
    assert abs(y.mean().item() - 1.0) < 0.03
