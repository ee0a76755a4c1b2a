"""Cost features: hand-computed references, the three counters agreeing, and candidates that are costed
(and rejected when invalid) before any training.

Generated from the registry where possible: every architecture's analytic costs must equal those of
the model built on the meta device (torch's FLOP counter, the receptive field traced through the
modules), the meta device must equal the CPU, and fvcore must agree with torch's counter.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from test_architectures import ARCHS  # the registered architectures and the configured ones
from torch import nn

from ecgsearch.errors import UserError
from ecgsearch.plugins import get_registries
from ecgsearch.search.candidates import InputShape, feasible_candidate
from ecgsearch.space import make_distribution, parse_space
from ecgsearch.train.costs import (
    Costs,
    analytic_costs,
    build_on_meta,
    count_params,
    estimate_costs,
    fvcore_macs,
    model_costs,
    torch_macs,
)
from ecgsearch.train.receptive_field import receptive_field

pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py

SAMPLES = 1100


def by_name(fn: Any) -> Any:
    return pytest.mark.parametrize("info", ARCHS, ids=[a.name for a in ARCHS])(fn)


def create(name: str, leads: int, samples: int, outputs: int, **hparams: Any) -> nn.Module:
    return get_registries().architectures.get(name).create(leads, samples, outputs, **hparams)


# --- hand-computed references ----------------------------------------------------------------------


def test_resnet_8_16_7_parameters_by_hand() -> None:
    bn = lambda c: 2 * c  # noqa: E731  scale + shift
    stem = 12 * 16 * 7 + bn(16)  # conv 12 -> 16, kernel 7, no bias
    stage0 = 2 * (16 * 16 * 7) + 2 * bn(16)  # one block, 16 -> 16, identity shortcut
    stage1 = 16 * 32 * 7 + 32 * 32 * 7 + 2 * bn(32) + 16 * 32 + bn(32)  # 16 -> 32, stride 2, 1x1 projection
    stage2 = 32 * 64 * 7 + 64 * 64 * 7 + 2 * bn(64) + 32 * 64 + bn(64)
    head = 64 * 5 + 5
    expected = stem + stage0 + stage1 + stage2 + head  # = 62245
    model = create("resnet", 12, 1000, 5, depth=8, channels=16, kernel=7)
    assert count_params(model) == expected
    assert estimate_costs(get_registries().architectures.get("resnet").load(), 12, 1000, 5,
                          {"depth": 8, "channels": 16, "kernel": 7}).params == expected


def test_small_transformer_parameters_and_macs_by_hand() -> None:
    w, hidden, leads, patch, outputs = 32, 128, 12, 20, 5
    embed = leads * w * patch + w + w  # patch conv with bias, class token
    block = (2 * w) + (w * 3 * w + 3 * w) + (w * w + w) + (2 * w) + (w * hidden + hidden) + (hidden * w + w)
    head = 2 * w + w * outputs + outputs  # LayerNorm, linear
    hparams = {"width": w, "depth": 2, "heads": 2, "patch": patch, "pool": "cls"}
    model = create("transformer", leads, 1000, outputs, **hparams)
    assert count_params(model) == embed + 2 * block + head  # = 33381
    tokens = 1000 // patch + 1  # 50 patches + the class token
    per_block = tokens * (w * 3 * w + w * w + 2 * w * hidden) + 2 * tokens * tokens * w  # linears + QK^T, AV
    expected_macs = leads * w * patch * (tokens - 1) + 2 * per_block + w * outputs
    assert torch_macs(model, leads, 1000) == expected_macs  # on the CPU: attention counted there too
    assert fvcore_macs(model, leads, 1000) == expected_macs
    assert estimate_costs(get_registries().architectures.get("transformer").load(), leads, 1000, outputs,
                          hparams).macs == expected_macs


def test_small_regnet_parameters_by_hand() -> None:
    # stem 8, w0 16, wa 8, wm 2, depth 3: u = 16, 24, 32 -> s = 0, 1, 1 -> widths 16 | 32, 32 (two stages);
    # bottleneck 1, group width 4: inner widths 16 and 32 in 4 and 8 groups; SE 0.25 of the block's input
    bn = lambda c: 2 * c  # noqa: E731
    se = lambda inner, squeezed: inner * squeezed + squeezed + squeezed * inner + inner  # noqa: E731  two 1x1 convs
    stem = 12 * 8 * 9 + bn(8)  # kernel 9, stride 2
    # block: 1x1 conv, BN, grouped conv (kernel 3, 4 channels per group), BN, SE, 1x1 conv, BN, [projection, BN]
    block1 = 8 * 16 + bn(16) + 16 * 4 * 3 + bn(16) + se(16, 2) + 16 * 16 + bn(16) + 8 * 16 + bn(16)  # 8 -> 16
    block2 = 16 * 32 + bn(32) + 32 * 4 * 3 + bn(32) + se(32, 4) + 32 * 32 + bn(32) + 16 * 32 + bn(32)  # 16 -> 32
    block3 = 32 * 32 + bn(32) + 32 * 4 * 3 + bn(32) + se(32, 8) + 32 * 32 + bn(32)  # identity shortcut
    head = 32 * 5 + 5
    hparams = {"stem_width": 8, "stem_kernel": 9, "w0": 16, "wa": 8.0, "wm": 2.0, "depth": 3, "group_width": 4,
               "bottleneck": 1.0, "se": 0.25, "kernel": 3}
    model = create("regnet", 12, 1000, 5, **hparams)
    assert [len(stage) for stage in model.stages] == [1, 2]
    assert count_params(model) == stem + block1 + block2 + block3 + head  # = 8115


def test_resnet_receptive_field_by_hand() -> None:
    # resnet depth 8, kernel 7: stem conv 7 (stride 2) -> 7, jump 2; max-pool 3 (stride 2) -> 7 + 2*2 = 11, jump 4;
    # stage 0: two convs 7 -> 11 + 2*6*4 = 59; stage 1: 59 + 6*4 (stride 2 -> jump 8) + 6*8 = 131;
    # stage 2: 131 + 6*8 (jump 16) + 6*16 = 275
    model = create("resnet", 12, 1000, 5, depth=8, channels=16, kernel=7)
    assert receptive_field(model, 1000) == 275
    costs = estimate_costs(get_registries().architectures.get("resnet").load(), 12, 1000, 5,
                           {"depth": 8, "channels": 16, "kernel": 7}, sampling_rate=100.0)
    assert (costs.receptive_field, costs.receptive_field_s, costs.stages, costs.feature_width) == (275, 2.75, 3, 64)
    # a deep, wide-kernel network sees more than the record: capped at the input length
    assert receptive_field(create("resnet", 12, 1000, 5, depth=34, channels=4, kernel=31), 1000) == 1000
    # attention sees every patch
    assert receptive_field(create("transformer_tiny", 12, 1000, 5), 1000) == 1000


def test_costs_columns_and_unknown_sampling_rate() -> None:
    costs = estimate_costs(get_registries().architectures.get("resnet_tiny").load(), 8, 1000, 3, {})
    assert costs.receptive_field_s is None
    assert set(costs.columns()) == {"cost.params", "cost.macs", "cost.flops", "cost.receptive_field",
                                    "cost.receptive_field_s", "cost.receptive_field_frac", "cost.stages",
                                    "cost.feature_width"}
    assert costs.receptive_field_frac == costs.receptive_field / 1000


# --- the counters agree, for every architecture ----------------------------------------------------


def sample_hparams(space: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    out = {}
    for name, dist in space.items():
        ((kind, args),) = dist.items()
        value = make_distribution(kind, args).sample(rng)
        out[name] = value.item() if isinstance(value, np.generic) else value
    return out


def meta_costs(factory: Any, leads: int, samples: int, outputs: int, hparams: dict[str, Any]) -> Costs:
    return model_costs(build_on_meta(factory, leads, samples, outputs, **hparams), leads, samples)


@by_name
def test_analytic_costs_equal_the_built_model(info: Any) -> None:
    """The fast path counts exactly what torch's counter and the module trace find on the real model."""
    factory = analytic_costs(info.load())
    assert factory is not None, f"{info.name} has no analytic cost function"
    rng = np.random.default_rng(0)
    configs = [{}] + [sample_hparams(dict(info.default_space), rng) for _ in range(3)]
    for leads, hparams in zip((12, 8, 2, 1), configs):
        try:
            analytic = factory(leads, SAMPLES, 4, **hparams)
        except ValueError:
            continue  # an invalid combination: the factory rejects it too (test_architectures)
        assert analytic == meta_costs(info.load(), leads, SAMPLES, 4, hparams), hparams


@by_name
def test_meta_device_costs_equal_cpu_costs(info: Any) -> None:
    cpu = model_costs(info.create(8, SAMPLES, 3), 8, SAMPLES, 250.0)
    assert cpu == model_costs(build_on_meta(info.load(), 8, SAMPLES, 3), 8, SAMPLES, 250.0)
    assert all(p.device.type == "meta" for p in build_on_meta(info.load(), 8, SAMPLES, 3).parameters())


@by_name
def test_fvcore_agrees_with_torch_counter(info: Any) -> None:
    model = info.create(12, SAMPLES, 5)
    fvcore, torch_count = fvcore_macs(model, 12, SAMPLES), torch_macs(model, 12, SAMPLES)
    assert torch_count > 0 and 0.9 <= fvcore / torch_count <= 1.1, (fvcore, torch_count)


# --- any other model -------------------------------------------------------------------------------


class Plain(nn.Module):
    """A third-party model without the stem/stages/head contract and without analytic costs."""

    def __init__(self, leads: int, outputs: int, data_dependent: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv1d(leads, 8, 5, padding=2)
        self.pool = nn.MaxPool1d(2)
        self.fc = nn.Linear(8, outputs)
        self.data_dependent = data_dependent

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(torch.relu(self.conv(x))).mean(-1)
        if self.data_dependent and y.sum().item() > 1e9:  # .item() cannot run on the meta device
            y = y * 0
        return self.fc(y)


def plain_factory(in_leads: int, num_samples: int, num_outputs: int, *, data_dependent: bool = False) -> nn.Module:
    return Plain(in_leads, num_outputs, data_dependent)


@pytest.mark.parametrize("data_dependent", [False, True])
def test_a_model_without_analytic_costs_is_counted_on_meta_or_cpu(data_dependent: bool) -> None:
    costs = estimate_costs(plain_factory, 4, 100, 2, {"data_dependent": data_dependent}, sampling_rate=50.0)
    assert costs.params == 4 * 8 * 5 + 8 + 8 * 2 + 2
    assert costs.macs == 4 * 8 * 5 * 100 + 8 * 2
    assert (costs.receptive_field, costs.receptive_field_s) == (6, 0.12)  # conv 5, then max-pool 2
    assert costs.receptive_field_frac == 6 / 100
    assert costs.stages is None and costs.feature_width is None


# --- candidates: costed and, when invalid, redrawn before training ---------------------------------


def space(architecture: str) -> Any:
    return parse_space(f"""
name: invalid
data: {{dataset: synthetic, records: 120, sampling_rate: 50, seconds: 4, leads: [I, II, V1, V5]}}
task: multilabel
budget: {{trials: 4, epochs: 1}}
space:
  architecture: {architecture}
  optimizer: adamw
""", source="spaces/invalid.yaml")


SHAPE = InputShape(leads=4, samples=1000, outputs=3, sampling_rate=100.0)


def test_invalid_combinations_are_redrawn_before_training() -> None:
    # depth 34 leaves 32 samples at 1000: kernel 63 can never be built, kernel 7 always
    spec = space("{resnet: {depth: 34, channels: 4, kernel: {choice: [7, 63]}}}")
    drawn = [spec.space.sample(spec.seed, i)["architecture.resnet.kernel"] for i in range(8)]
    assert 63 in drawn  # the first draw of some indices is invalid...
    for index in range(8):
        config = feasible_candidate(spec, SHAPE, index)
        assert config["architecture.resnet.kernel"] == 7  # ...and was replaced before any training
        assert config["_costs"]["cost.receptive_field_s"] == config["_costs"]["cost.receptive_field"] / 100.0


def test_a_space_with_no_buildable_draw_is_a_user_error_quoting_the_factory() -> None:
    spec = space("{transformer: {width: 64, heads: {choice: [3, 5]}}}")
    with pytest.raises(UserError) as error:
        feasible_candidate(spec, SHAPE, 0)
    message = str(error.value)
    assert message.startswith("spaces/invalid.yaml: space.architecture: none of 50 draws for trial 0 could be "
                              "built; the last was rejected with: transformer: heads=")
    assert "does not divide width=64; choose heads among 1, 2, 4, 8, 16, 32, 64 or change the width." in message
    assert message.endswith("Narrow the space to valid combinations.")
