"""RegNet-1D with ConvNeXt blocks (``regnet`` with ``block: convnext``): the block, the downsampling between
stages, costs and receptive field by hand and against the built model, LayerScale, the stochastic-depth
schedule, the refusal of the other block's parameters, and the study space that uses it.

The registry-generated tests (test_architectures.py, test_costs.py, test_latency_backends.py) also cover
this configuration through ``test_architectures.CONFIGURED``.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from ecgsearch.errors import UserError
from ecgsearch.plugins import get_registries
from ecgsearch.search.candidates import InputShape, feasible_candidate
from ecgsearch.space import load_space, parse_space
from ecgsearch.train.costs import build_on_meta, count_params, estimate_costs, model_costs, torch_macs
from ecgsearch.train.receptive_field import receptive_field
from ecgsearch_plugins.architectures._convnext_impl import ConvNeXt1d
from ecgsearch_plugins.architectures._layers import ChannelLayerNorm, ConvNeXtBlock

pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py

LEADS, SAMPLES, OUTPUTS = 12, 1000, 5
# stem 8 (kernel 9, stride 2); w0 8, wa 8, wm 2, depth 3: u = 8, 16, 24 -> s = 0, 1, 2 -> widths 8 | 16 | 32,
# three stages of one block each
SMALL: dict[str, Any] = {"block": "convnext", "stem_width": 8, "stem_kernel": 9, "w0": 8, "wa": 8.0, "wm": 2.0,
                         "depth": 3, "kernel": 7}


def regnet(**hparams: Any) -> nn.Module:
    torch.manual_seed(0)
    return get_registries().architectures.get("regnet").create(LEADS, SAMPLES, OUTPUTS, **hparams)


def costs(**hparams: Any) -> Any:
    return estimate_costs(get_registries().architectures.get("regnet").load(), LEADS, SAMPLES, OUTPUTS, hparams)


def blocks(module: nn.Module) -> list[ConvNeXtBlock]:
    return [m for m in module.modules() if isinstance(m, ConvNeXtBlock)]


def test_stages_are_a_downsampling_layer_then_convnext_blocks() -> None:
    model = regnet(**SMALL)
    assert [type(m) for m in model.stages[0]] == [ChannelLayerNorm, nn.Conv1d, ConvNeXtBlock]
    for stage, (c_in, c_out) in zip(model.stages, [(8, 8), (8, 16), (16, 32)]):
        norm, down, block = stage
        assert norm.normalized_shape == (c_in,) and (down.in_channels, down.out_channels) == (c_in, c_out)
        assert (down.kernel_size, down.stride) == ((2,), (2,))
        assert block.dwconv.groups == c_out == block.dwconv.in_channels and block.dwconv.kernel_size == (7,)
        assert (block.pw1.out_features, block.pw2.in_features) == (4 * c_out, 4 * c_out)  # expansion 4
        assert isinstance(block.act, nn.GELU) and isinstance(block.norm, nn.LayerNorm)
    assert isinstance(model.head.norm, nn.LayerNorm)  # ConvNeXt's head LayerNorm
    x = torch.randn(2, LEADS, SAMPLES)
    model.eval()
    with torch.no_grad():
        # 1000 -> stem 500 -> 250, 125, 62: every stage halves, as with RegNet's own blocks
        assert model.features(x).shape == (2, 32, 62)
        assert model(x).shape == (2, OUTPUTS)
    # the ConvNeXt family builds the same shared block
    convnext = get_registries().architectures.get("convnext_tiny").create(LEADS, SAMPLES, OUTPUTS)
    assert isinstance(convnext, ConvNeXt1d) and any(isinstance(m, ConvNeXtBlock) for m in convnext.modules())


def test_parameters_macs_and_receptive_field_by_hand() -> None:
    ln = bn = lambda c: 2 * c  # noqa: E731  scale + shift

    def block(c: int, length: int, hidden: int) -> tuple[int, int]:  # dwconv 7, LN, two linears, LayerScale
        params = c * 7 + c + ln(c) + (c * hidden + hidden) + (hidden * c + c) + c
        return params, length * (c * 7 + 2 * c * hidden)

    stem = LEADS * 8 * 9 + bn(8)
    params, macs = stem, LEADS * 8 * 9 * 500
    for c_in, c, length in [(8, 8, 250), (8, 16, 125), (16, 32, 62)]:
        params += ln(c_in) + c_in * c * 2 + c  # downsampling: LayerNorm, conv kernel 2 with bias
        macs += c_in * c * 2 * length
        p, m = block(c, length, 4 * c)
        params, macs = params + p, macs + m
    params += ln(32) + 32 * OUTPUTS + OUTPUTS  # head: LayerNorm, linear
    macs += 32 * OUTPUTS
    # stem 9 (jump 2); per stage: downsampling conv 2 adds 1 * jump and doubles it, the kernel-7 block adds 6 * jump
    field = 9 + (2 + 6 * 4) + (4 + 6 * 8) + (8 + 6 * 16)
    model = regnet(**SMALL)
    assert count_params(model) == params == costs(**SMALL).params  # = 9765
    assert torch_macs(model, LEADS, SAMPLES) == macs == costs(**SMALL).macs
    assert receptive_field(model, SAMPLES) == field == costs(**SMALL).receptive_field == 191
    assert (costs(**SMALL).stages, costs(**SMALL).feature_width) == (3, 32)


@pytest.mark.parametrize("hparams", [
    {},
    {"expansion": 1.5, "layer_scale": 0.0, "kernel": 3},  # hidden widths 12, 24, 48; no LayerScale
    {"expansion": 0.3, "drop_path": 0.3, "kernel": 11, "stem_kernel": 3},  # round(8 * 0.3) = 2
    {"w0": 16, "wa": 20.0, "wm": 1.5, "depth": 6, "expansion": 2.0},  # more stages and blocks per stage
])
def test_analytic_costs_equal_the_built_model(hparams: dict[str, Any]) -> None:
    hp = {**SMALL, **hparams}
    factory = get_registries().architectures.get("regnet").load()
    analytic = estimate_costs(factory, LEADS, SAMPLES, OUTPUTS, hp)
    assert analytic == model_costs(build_on_meta(factory, LEADS, SAMPLES, OUTPUTS, **hp), LEADS, SAMPLES)
    model = factory(LEADS, SAMPLES, OUTPUTS, **hp)
    assert analytic == model_costs(model, LEADS, SAMPLES)
    assert analytic.receptive_field == receptive_field(model, SAMPLES)


def test_layer_scale_initial_value_and_off() -> None:
    model = regnet(**SMALL, layer_scale=0.25)
    assert all(torch.equal(b.gamma.detach(), torch.full((b.dwconv.in_channels,), 0.25)) for b in blocks(model))
    assert all(b.gamma is None for b in blocks(regnet(**SMALL, layer_scale=0.0)))
    # LayerScale is one parameter per channel of every block: 8 + 16 + 32
    assert costs(**SMALL, layer_scale=0.25).params - costs(**SMALL, layer_scale=0.0).params == 56
    # the default is ConvNeXt's 1e-6: every block starts as (nearly) the identity
    assert all(torch.allclose(b.gamma.detach(), torch.tensor(1e-6)) for b in blocks(regnet(**SMALL)))


def test_drop_path_grows_linearly_over_all_blocks() -> None:
    # depth 5, wa 4: u = 8, 12, 16, 20, 24 -> s = 0, 1, 1, 1, 2 -> stages of 1, 3 and 1 blocks; the rate runs
    # from 0 to drop_path over all blocks in order, across the stage boundaries, as in ConvNeXt
    model = regnet(**{**SMALL, "depth": 5, "wa": 4.0}, drop_path=0.2)
    assert [len(blocks(stage)) for stage in model.stages] == [1, 3, 1]
    assert [b.drop_path.p for b in blocks(model)] == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2])
    assert [b.drop_path.p for b in blocks(regnet(**SMALL))] == [0.0, 0.0, 0.0]
    x = torch.randn(4, LEADS, SAMPLES)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))  # stochastic depth only while training


def test_default_block_and_the_convnext_family_are_unchanged() -> None:
    """``block`` defaults to RegNet's bottleneck block: the numbers of docs/benchmarks.md (12 x 1100)."""
    regnet_factory = get_registries().architectures.get("regnet").load()
    default = estimate_costs(regnet_factory, 12, 1100, 5, {})
    assert (default.params, default.macs) == (220_613, 18_038_400)
    assert estimate_costs(regnet_factory, 12, 1100, 5, {"block": "resnet_bottleneck"}) == default
    convnext = estimate_costs(get_registries().architectures.get("convnext").load(), 12, 1100, 5, {})
    assert (convnext.params, convnext.macs) == (374_629, 33_775_936)


BAD: list[tuple[dict[str, Any], str]] = [
    ({"block": "ConvNeXt"}, "regnet: block='ConvNeXt' is not supported; allowed values: resnet_bottleneck, convnext."),
    ({"block": "convnext", "group_width": 16},
     "regnet: group_width=16 applies to block: resnet_bottleneck only (a ConvNeXt block's depthwise conv has one "
     "channel per group); leave it out, or at its default 8, with block: convnext."),
    ({"block": "convnext", "bottleneck": 2.0},
     "regnet: bottleneck=2.0 applies to block: resnet_bottleneck only (`expansion` sets a ConvNeXt block's inverted "
     "bottleneck); leave it out, or at its default 1.0, with block: convnext."),
    ({"block": "convnext", "se": 0},
     "regnet: se=0 applies to block: resnet_bottleneck only (ConvNeXt blocks have no squeeze-excitation); leave it "
     "out, or at its default 0.25, with block: convnext."),
    ({"expansion": 2.0}, "regnet: expansion=2.0 applies to block: convnext only (`bottleneck` sets a bottleneck "
                         "block's inner width); leave it out, or at its default 4.0, with block: resnet_bottleneck."),
    ({"layer_scale": 0.0}, "regnet: layer_scale=0.0 applies to block: convnext only (bottleneck blocks have no "
                           "LayerScale); leave it out, or at its default 1e-06, with block: resnet_bottleneck."),
    ({"block": "resnet_bottleneck", "drop_path": 0.1},
     "regnet: drop_path=0.1 applies to block: convnext only (bottleneck blocks have no stochastic depth); leave it "
     "out, or at its default 0.0, with block: resnet_bottleneck."),
    ({"block": "convnext", "expansion": 0.1}, "regnet: expansion=0.1 must be a number in [0.25, 16.0]."),
    ({"block": "convnext", "layer_scale": -1.0}, "regnet: layer_scale=-1.0 must be a number in [0.0, 10.0]."),
    ({"block": "convnext", "drop_path": 1.0}, "regnet: drop_path=1.0 must be a number in [0.0, 1.0)."),
    ({"block": "convnext", "kernel": 4}, "regnet: kernel=4 must be an odd integer"),
    # widths 8, 16, 24, 32, 40, 48: six stages, 1000 -> stem 500 -> 250, 125, 62, 31, 15, 7: too few for kernel 11
    ({"block": "convnext", "w0": 8, "wa": 8.0, "wm": 1.2, "depth": 6, "kernel": 11},
     "regnet: kernel=11 is longer than the 7 samples left after the 6 stages that w0=8, wa=8, wm=1.2, depth=6 give "
     "(num_samples=1000); use fewer stages (a larger wm, a smaller wa or depth), a smaller kernel or longer records."),
]


@pytest.mark.parametrize("hparams, message", BAD, ids=[",".join(h) for h, _ in BAD])
def test_bad_values_are_refused_in_one_sentence(hparams: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as error:
        regnet(**hparams)
    assert message in str(error.value)
    with pytest.raises(ValueError) as costing:
        costs(**hparams)
    assert str(costing.value) == str(error.value)


def test_parameters_at_their_defaults_are_accepted_with_either_block() -> None:
    explicit = {"group_width": 8, "bottleneck": 1.0, "se": 0.25, "expansion": 4, "layer_scale": 1e-6,
                "drop_path": 0.0}
    assert costs(**SMALL, **explicit) == costs(**SMALL)
    assert costs(**explicit) == costs()


def test_the_study_space_builds_convnext_blocks() -> None:
    from conftest import ROOT

    spec = load_space(ROOT / "spaces" / "regnet_space_a.yaml")
    shape = InputShape(leads=12, samples=1000, outputs=26, sampling_rate=100.0)
    config = feasible_candidate(spec, shape, 0)
    assert config["architecture.regnet.block"] == "convnext"
    assert config["_costs"]["cost.flops"] <= 2.0e9
    assert not any(key.split(".")[-1] in ("group_width", "bottleneck", "se") for key in config)


def test_a_space_setting_the_other_blocks_parameter_is_a_user_error() -> None:
    spec = parse_space("""
name: mixed
data: {dataset: synthetic, records: 120, sampling_rate: 50, seconds: 4, leads: [I, II, V1, V5]}
task: multilabel
budget: {trials: 2, epochs: 1}
space:
  architecture: {regnet: {block: convnext, group_width: {choice: [4, 16]}}}
  optimizer: adamw
""", source="spaces/mixed.yaml")
    with pytest.raises(UserError, match=r"group_width=(4|16) applies to block: resnet_bottleneck only"):
        feasible_candidate(spec, InputShape(leads=4, samples=200, outputs=3, sampling_rate=50.0), 0)
