"""The CNN families' head (``PoolHead``): every ``pool`` on every family builds, trains, costs what it
measures and exports; ``flatten`` depends on the input length; ``cost.receptive_field_frac``.

The registry-generated tests (test_architectures.py, test_costs.py, test_latency_backends.py) also run
``resnet_tiny[pool=flatten]``, whose default space searches every pool.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from test_costs import space  # a tiny space file around one architecture section

from ecgsearch.errors import UserError
from ecgsearch.plugins import get_registries
from ecgsearch.train.costs import (
    AnalyticFactory,
    Costs,
    Tally,
    build_on_meta,
    estimate_costs,
    fvcore_macs,
    model_costs,
)
from ecgsearch.train.receptive_field import Span, receptive_field
from ecgsearch_plugins.architectures._blocks import POOLS
from ecgsearch_plugins.architectures._layers import PoolHead

pytestmark = pytest.mark.usefixtures("single_thread")  # see conftest.py

LEADS, SAMPLES, OUTPUTS = 3, 600, 5
# every CNN family (and regnet's ConvNeXt blocks: the head's LayerNorm), small and fast: label -> (item, hparams)
FAMILIES: dict[str, tuple[str, dict[str, Any]]] = {
    "resnet": ("resnet_tiny", {}),
    "resnet_code": ("resnet_code", {"widths": [8, 16, 16], "kernel": 9}),
    "inception": ("inception_tiny", {"filters": 4}),
    "convnext": ("convnext_tiny", {}),
    "regnet": ("regnet_tiny", {}),
    "regnet[block=convnext]": ("regnet", {"block": "convnext", "stem_width": 8, "w0": 16, "wa": 8.0, "depth": 3,
                                          "kernel": 7}),
}
# what a pool adds to gap's parameters and MACs, for C channels over T time steps
EXTRA_PARAMS = {"gap": lambda c, t: 0, "max": lambda c, t: 0, "gap_max": lambda c, t: c * OUTPUTS,
                "attention": lambda c, t: c, "flatten": lambda c, t: c * (t - 1) * OUTPUTS}
EXTRA_MACS = {**EXTRA_PARAMS, "attention": lambda c, t: 2 * c * t}  # the scores, then the weighted sum
FEATURES = {"gap": lambda c, t: c, "max": lambda c, t: c, "gap_max": lambda c, t: 2 * c,
            "attention": lambda c, t: c, "flatten": lambda c, t: c * t}


def family(label: str) -> tuple[Any, dict[str, Any]]:
    item, hparams = FAMILIES[label]
    return get_registries().architectures.get(item), hparams


def build(label: str, pool: str, samples: int = SAMPLES, seed: int = 0) -> torch.nn.Module:
    info, hparams = family(label)
    torch.manual_seed(seed)
    return info.create(LEADS, samples, OUTPUTS, **hparams, pool=pool)


def example(samples: int = SAMPLES, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, LEADS, samples, generator=torch.Generator().manual_seed(3))


def random_scores(model: torch.nn.Module) -> torch.nn.Module:
    """An attention head whose weights are not uniform (they start so)."""
    with torch.no_grad():
        model.head.score.copy_(torch.randn(model.head.score.shape, generator=torch.Generator().manual_seed(1)))
    return model


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("label", list(FAMILIES))
def test_every_pool_trains_and_costs_what_it_measures(label: str, pool: str) -> None:
    info, hparams = family(label)
    hparams = {**hparams, "pool": pool}
    model = build(label, pool).train()
    x = example()
    out = model(x)
    assert out.shape == (2, OUTPUTS) and torch.isfinite(out).all()
    torch.nn.functional.binary_cross_entropy_with_logits(out, torch.ones_like(out)).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    channels, steps = model.features(x).shape[1:]
    assert model.head.in_features == FEATURES[pool](channels, steps)

    analytic = estimate_costs(info.load(), LEADS, SAMPLES, OUTPUTS, hparams, sampling_rate=100.0)
    assert analytic == model_costs(model, LEADS, SAMPLES, 100.0)  # on the CPU
    assert analytic == model_costs(build_on_meta(info.load(), LEADS, SAMPLES, OUTPUTS, **hparams), LEADS, SAMPLES,
                                   100.0)
    gap = estimate_costs(info.load(), LEADS, SAMPLES, OUTPUTS, {**hparams, "pool": "gap"}, sampling_rate=100.0)
    assert analytic.params - gap.params == EXTRA_PARAMS[pool](channels, steps)
    assert analytic.macs - gap.macs == EXTRA_MACS[pool](channels, steps)
    assert analytic.feature_width == model.head.in_features
    # the head is left out of the receptive field: every pool has the stages' field
    assert (analytic.receptive_field, analytic.receptive_field_frac) == (gap.receptive_field, gap.receptive_field_frac)

    model.reset_head(3)  # transfer learning: a fresh output layer of the same width
    assert model.head.in_features == analytic.feature_width and model(x).shape == (2, 3)


@pytest.mark.parametrize("pool", ["attention", "gap_max"])
def test_fvcore_counts_the_head_like_torch(pool: str) -> None:
    model = build("convnext", pool)
    info, hparams = family("convnext")
    assert fvcore_macs(model, LEADS, SAMPLES) == estimate_costs(info.load(), LEADS, SAMPLES, OUTPUTS,
                                                                {**hparams, "pool": pool}).macs


# every pool on one family, every family once
EXPORTED = [("gap", "inception"), ("max", "resnet_code"), ("gap_max", "regnet"), ("attention", "convnext"),
            ("flatten", "resnet"), ("flatten", "regnet[block=convnext]")]


@pytest.mark.parametrize("pool, label", EXPORTED, ids=[f"{p}-{f}" for p, f in EXPORTED])
def test_the_onnx_export_computes_what_torch_does(pool: str, label: str) -> None:
    from ecgsearch.latency.backend import create_backend
    from ecgsearch.latency.options import BackendOptions

    pytest.importorskip("onnxruntime")
    model = build(label, pool).eval()
    if pool == "attention":
        random_scores(model)
    backend = create_backend(get_registries().backends.get("onnxruntime-cpu"), BackendOptions(threads=1))
    backend.prepare(model, example())
    assert backend.numerics_check(model, example().numpy()) <= 1e-4


@pytest.mark.parametrize("pool", ["gap_max", "attention", "flatten"])  # gap's export: every registry test
def test_openvino_and_the_dynamic_batch_export_run_the_new_heads(pool: str, tmp_path: Any) -> None:
    """OpenVINO, and the export with a free batch dimension (``ecgsearch export``), on the heads with new
    operators: a maximum over time and a concatenation; a softmax and a matrix product; a flatten."""
    from ecgsearch.latency.backend import create_backend
    from ecgsearch.latency.options import BackendOptions
    from ecgsearch_plugins.backends._onnx import export_onnx

    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("openvino")
    model = random_scores(build("resnet", pool).eval()) if pool == "attention" else build("resnet", pool).eval()
    backend = create_backend(get_registries().backends.get("openvino-cpu"), BackendOptions(threads=1))
    backend.prepare(model, example())
    assert backend.numerics_check(model, example().numpy()) <= 1e-4
    path = export_onnx(model, example(batch=1), tmp_path / "model.onnx", dynamic_batch=True)  # `ecgsearch export`
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = example(batch=3)
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x).numpy(), atol=1e-4)


def test_flatten_grows_with_the_input_length_and_takes_only_that_length() -> None:
    info, _ = family("resnet")
    short, long = (estimate_costs(info.load(), LEADS, n, OUTPUTS, {"pool": "flatten"}) for n in (600, 1200))
    # resnet_tiny: 64 channels; 600 -> 300 -> 150 -> 75 -> 38 and 1200 -> ... -> 75 time steps at the head
    assert (short.feature_width, long.feature_width) == (64 * 38, 64 * 75)
    assert long.params - short.params == 64 * (75 - 38) * OUTPUTS
    gap = [estimate_costs(info.load(), LEADS, n, OUTPUTS, {}) for n in (600, 1200)]
    assert gap[0].params == gap[1].params and gap[0].feature_width == 64

    model = build("resnet", "flatten", samples=1200).eval()
    with torch.no_grad():
        assert model(example(1200)).shape == (2, OUTPUTS)
        with pytest.raises(ValueError) as error:
            model(example(1000))
    assert str(error.value) == (
        "pool: flatten: this model was built for num_samples=1200, which gives the head 75 time steps, but it "
        "received 63; a flatten head takes only the input length the model was built for (build the model for "
        "this length, or use pool gap, max, gap_max or attention, which take any length).")
    for pool in ("gap", "max", "gap_max", "attention"):  # every other pool takes any length
        with torch.no_grad():
            assert build("resnet", pool, samples=1200).eval()(example(1000)).shape == (2, OUTPUTS)


def test_attention_weights_sum_to_one_and_start_uniform() -> None:
    gap, attention = build("convnext", "gap").eval(), build("convnext", "attention").eval()
    x = example()
    with torch.no_grad():
        features = attention.features(x)
        weights = attention.head.weights(features)
        assert weights.shape == (2, features.shape[-1])
        assert torch.allclose(weights, torch.full_like(weights, 1 / features.shape[-1]))  # zero scores at first
        assert torch.allclose(attention(x), gap(x), atol=1e-6)  # so the head starts as gap (same seed)
        random_scores(attention)
        weights = attention.head.weights(features)
        assert (weights >= 0).all() and torch.allclose(weights.sum(dim=-1), torch.ones(2))
        assert weights.std() > 0  # no longer uniform
        expected = attention.head.norm((features * weights.unsqueeze(1)).sum(dim=-1))
        assert torch.allclose(attention.head.pooled(features), expected, atol=1e-5)
    with pytest.raises(ValueError, match="PoolHead: pool='gap' has no attention weights"):
        gap.head.weights(features)


def test_gap_max_concatenates_the_mean_and_the_maximum() -> None:
    head = PoolHead(4, 2, pool="gap_max").eval()
    x = torch.randn(3, 4, 10)
    assert torch.equal(head.pooled(x), torch.cat([x.mean(dim=-1), x.amax(dim=-1)], dim=1))
    assert PoolHead(4, 2, pool="max").pooled(x).equal(x.amax(dim=-1))
    with pytest.raises(ValueError, match="PoolHead: pool='flatten' needs length"):
        PoolHead(4, 2, pool="flatten")


@pytest.mark.parametrize("label", list(FAMILIES))
def test_receptive_field_frac_is_the_field_over_the_input(label: str) -> None:
    info, hparams = family(label)
    for samples in (SAMPLES, 1100):
        costs = estimate_costs(info.load(), LEADS, samples, OUTPUTS, hparams)
        assert 0 < costs.receptive_field_frac <= 1
        assert costs.receptive_field_frac == costs.receptive_field / samples
        assert costs.columns()["cost.receptive_field_frac"] == costs.receptive_field_frac
        assert receptive_field(build(label, "gap", samples=samples), samples) == costs.receptive_field


def test_receptive_field_frac_of_other_models() -> None:
    regs = get_registries().architectures
    # resnet_tiny at 1100 samples sees 275 (test_costs.py): a quarter of the record
    assert estimate_costs(regs.get("resnet_tiny").load(), 12, 1100, 5, {}).receptive_field_frac == 0.25
    assert estimate_costs(regs.get("transformer_tiny").load(), 12, 1000, 5, {}).receptive_field_frac == 1.0

    def own_costs(spec: dict[str, int]) -> Costs:  # a plugin's analytic costs that do not give the fraction
        return Costs(params=1, macs=1, flops=2, receptive_field=30)

    factory = AnalyticFactory(lambda in_leads, num_samples, num_outputs: {}, lambda spec: torch.nn.Identity(),
                              own_costs)
    assert estimate_costs(factory, 2, 120, 1, {}).receptive_field_frac == 0.25
    assert Tally().costs(Span(1e9), 500, 1, 8).receptive_field_frac == 1.0  # capped at the input


@pytest.mark.parametrize("label", list(FAMILIES))
def test_a_bad_pool_is_refused_with_one_sentence(label: str) -> None:
    info, hparams = family(label)
    owner = label.split("[")[0]  # the family's name (resnet_tiny is a resnet)
    for bad in ("avg", 1, None):
        text = f"{owner}: pool={bad!r} is not supported; allowed values: gap, max, gap_max, attention, flatten."
        with pytest.raises(ValueError) as error:
            info.create(LEADS, SAMPLES, OUTPUTS, **hparams, pool=bad)
        assert str(error.value) == text
        with pytest.raises(ValueError) as costing:
            estimate_costs(info.load(), LEADS, SAMPLES, OUTPUTS, {**hparams, "pool": bad})
        assert str(costing.value) == text


def test_the_pool_is_searchable_and_checked_before_any_trial() -> None:
    spec = space("{resnet_tiny: {pool: {choice: [gap, max, gap_max, attention, flatten]}}, "
                 "convnext_tiny: {pool: attention}}")
    drawn = {spec.space.sample(spec.seed, i).get("architecture.resnet_tiny.pool") for i in range(40)}
    assert set(POOLS) <= drawn
    with pytest.raises(UserError) as error:
        space("{inception: {pool: {choice: [gap, avg]}}}")
    assert "space.architecture.inception.pool" in str(error.value)
    assert "can give 'avg', which is not one of 'gap', 'max', 'gap_max', 'attention', 'flatten'" in str(error.value)

