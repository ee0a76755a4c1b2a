"""Every registered architecture: shapes, gradients, its default space, costs and error messages.

The tests are generated from the registry, so a new architecture plugin is covered as soon as it is
registered; family-specific expectations (width parameter, bad values) live in the tables below.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any, Iterator

import pytest
import torch

from ecgsearch.infos import ArchitectureInfo
from ecgsearch.plugins import get_registries
from ecgsearch_plugins.architectures._blocks import DropPath

# tests/fixtures/ecg_test_plugins.py registers architectures that fail on purpose (fault injection).
FAULT_INJECTION_PLUGINS = {"ecg_test_plugins"}
ARCHS = [a for a in get_registries().architectures if a.plugin not in FAULT_INJECTION_PLUGINS]
NUM_OUTPUTS = 5

# family -> the hyperparameter that sets the width (FLOPs must grow with it)
WIDTH_PARAM = {"resnet": "channels", "convnext": "width"}

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
    ],
}


@pytest.fixture(autouse=True, scope="module")
def single_thread() -> Iterator[None]:
    """One intra-op thread: on a shared 2-core runner, 2 OpenMP threads are many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def by_name(fn: Any) -> Any:
    return pytest.mark.parametrize("info", ARCHS, ids=[a.name for a in ARCHS])(fn)


def space_corners(space: dict[str, Any]) -> list[dict[str, Any]]:
    """The all-smallest and all-largest configurations of a default space."""
    low, high = {}, {}
    for name, dist in space.items():
        ((kind, values),) = dist.items()
        ordered = sorted(values) if kind in ("choice", "grid") else list(values)
        low[name], high[name] = ordered[0], ordered[-1]
    return [low, high]


def finite(t: torch.Tensor) -> bool:
    return bool(torch.isfinite(t).all())


def test_builtin_families_are_registered() -> None:
    names = get_registries().architectures.names()
    assert {"resnet", "resnet_tiny", "convnext", "convnext_tiny"} <= set(names)
    assert {a.family for a in ARCHS} >= {"resnet", "convnext"}


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
@pytest.mark.parametrize("shape", [(2, 12, 1000), (2, 1, 500), (3, 8, 4096)])
def test_forward_shape(info: ArchitectureInfo, shape: tuple[int, int, int]) -> None:
    batch, leads, samples = shape
    model = info.create(leads, samples, NUM_OUTPUTS).eval()
    with torch.no_grad():
        out = model(torch.randn(shape))
    assert out.shape == (batch, NUM_OUTPUTS)
    assert finite(out)


@by_name
def test_backward_gives_finite_grads(info: ArchitectureInfo) -> None:
    model = info.create(12, 1000, NUM_OUTPUTS).train()
    assert sum(p.numel() for p in model.parameters()) > 0
    out = model(torch.randn(2, 12, 1000))
    torch.nn.functional.binary_cross_entropy_with_logits(out, torch.ones_like(out)).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert finite(p.grad), name


@by_name
def test_default_space_corners_build_and_train(info: ArchitectureInfo) -> None:
    for hparams in space_corners(dict(info.default_space)):
        model = info.create(8, 500, NUM_OUTPUTS, **hparams).train()
        out = model(torch.randn(2, 8, 500))
        out.sum().backward()
        assert out.shape == (2, NUM_OUTPUTS) and finite(out), hparams


@by_name
def test_flops_positive_and_grow_with_width(info: ArchitectureInfo) -> None:
    param = WIDTH_PARAM.get(info.family)
    if param is None:
        pytest.skip(f"no width parameter known for family {info.family!r}")
    with warnings.catch_warnings():  # fvcore's import uses the deprecated torch.jit.script
        warnings.simplefilter("ignore", DeprecationWarning)
        from fvcore.nn import FlopCountAnalysis
    default = inspect.signature(info.load()).parameters[param].default
    x = torch.randn(1, 8, 1000)
    macs = []
    for width in (default, 2 * default):
        model = info.create(8, 1000, NUM_OUTPUTS, **{param: width}).eval()
        analysis = FlopCountAnalysis(model, x).unsupported_ops_warnings(False)
        macs.append(analysis.uncalled_modules_warnings(False).total())
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
    info = get_registries().architectures.get(family)
    for hparams, text in BAD_HPARAMS[family]:
        with pytest.raises(ValueError) as error:
            info.create(8, 1000, 2, **hparams)
        assert text in str(error.value), (hparams, str(error.value))


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
