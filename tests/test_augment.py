"""Behaviour of the train-time augmentations: each changes what it should, and only that."""

from __future__ import annotations

import math

import pytest
import torch

from ecgsearch.data import augment
from ecgsearch.data.augment import Augmentation

RATE = 100.0
AUGMENTATIONS = {
    "amplitude_scale": lambda x, g, p=1.0: augment.amplitude_scale(x, 0.3, g, p),
    "amplitude_scale_per_lead": lambda x, g, p=1.0: augment.amplitude_scale(x, 0.3, g, p, per_lead=True),
    "gaussian_noise": lambda x, g, p=1.0: augment.gaussian_noise(x, 0.2, g, p),
    "baseline_wander": lambda x, g, p=1.0: augment.baseline_wander(x, 0.5, g, RATE, p),
    "time_mask": lambda x, g, p=1.0: augment.time_mask(x, 0.2, g, p),
    "lead_mask": lambda x, g, p=1.0: augment.lead_mask(x, 0.5, g, p),
    "time_warp": lambda x, g, p=1.0: augment.time_warp(x, 0.5, g, p),
}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ecg_like(records: int = 32, leads: int = 8, samples: int = 1000, seed: int = 1) -> torch.Tensor:
    """Zero-mean signals with content between 1 and 20 Hz (none near the wander band), no exact zeros."""
    g = gen(seed)
    t = torch.arange(samples) / RATE
    freq = 1 + 19 * torch.rand(records, leads, 3, 1, generator=g)
    phase = 2 * math.pi * torch.rand(records, leads, 3, 1, generator=g)
    amp = 0.5 + torch.rand(records, leads, 3, 1, generator=g)
    x = (amp * torch.sin(2 * math.pi * freq * t + phase)).sum(dim=2)
    return torch.where(x == 0, torch.full_like(x, 1e-3), x).float()


@pytest.mark.parametrize("name", AUGMENTATIONS)
def test_shape_dtype_finite_deterministic_and_pure(name: str) -> None:
    x = ecg_like()
    before = x.clone()
    fn = AUGMENTATIONS[name]
    out = fn(x, gen(3))
    assert out.shape == x.shape and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert torch.equal(x, before), "the input batch must not be modified in place"
    assert not torch.equal(out, x)
    assert torch.equal(out, fn(x, gen(3)))
    assert not torch.equal(out, fn(x, gen(4)))


@pytest.mark.parametrize("name", AUGMENTATIONS)
def test_p_zero_leaves_the_batch_unchanged(name: str) -> None:
    x = ecg_like()
    assert torch.equal(AUGMENTATIONS[name](x, gen(), 0.0), x)


def test_p_picks_a_fraction_of_records_and_leaves_the_others_exact() -> None:
    x = ecg_like(records=400, leads=2, samples=200)
    out = augment.gaussian_noise(x, 0.3, gen(), p=0.5)
    changed = (out != x).flatten(1).any(dim=1)
    assert 150 < int(changed.sum()) < 250
    assert torch.equal(out[~changed], x[~changed])


def test_lead_mask_zeroes_whole_leads_and_never_all() -> None:
    x = ecg_like(records=256)
    out = augment.lead_mask(x, 0.6, gen())
    zeroed = (out == 0).all(dim=-1)
    kept = (out == x).all(dim=-1)
    assert (zeroed ^ kept).all(), "every lead is either untouched or entirely zero"
    assert zeroed.any() and not zeroed.all(dim=1).any()
    only_one = augment.lead_mask(x, 1.0, gen())
    assert ((only_one != 0).any(dim=-1).sum(dim=1) == 1).all()


def test_time_mask_zeroes_one_contiguous_window_in_all_leads() -> None:
    x = ecg_like(records=64)
    out = augment.time_mask(x, 0.2, gen())
    hole = out == 0
    assert torch.equal(out[~hole], x[~hole])
    assert (hole == hole[:, :1, :]).all(), "the window is the same in every lead"
    for record in hole[:, 0, :]:
        where = record.nonzero().squeeze(1)
        assert 1 <= len(where) <= 200
        assert int(where[-1] - where[0]) + 1 == len(where), "one contiguous window"


@pytest.mark.parametrize("per_lead", [False, True])
def test_amplitude_scale_preserves_zero_crossings_and_shape(per_lead: bool) -> None:
    x = ecg_like()
    out = augment.amplitude_scale(x, 0.3, gen(), per_lead=per_lead)
    assert torch.equal(torch.sign(out), torch.sign(x))
    ratio = out / x
    factor = ratio[..., :1] if per_lead else ratio[:, :1, :1]
    assert torch.allclose(ratio, factor.expand_as(ratio), rtol=1e-5)
    assert ((factor >= 0.7 - 1e-6) & (factor <= 1.3 + 1e-6)).all()
    if not per_lead:
        assert not torch.allclose(ratio[0], ratio[1])


def test_gaussian_noise_is_relative_to_lead_std() -> None:
    x = ecg_like()
    x[:, 1] *= 10  # a lead in other units gets ten times the noise
    noise = augment.gaussian_noise(x, 0.2, gen()) - x
    relative = noise.std(dim=-1) / x.std(dim=-1)
    assert torch.allclose(relative, torch.full_like(relative, 0.2), rtol=0.15)
    assert noise.mean().abs() < 0.05


def test_baseline_wander_adds_only_low_frequency_power() -> None:
    x = ecg_like()
    added = augment.baseline_wander(x, 0.5, gen(), RATE) - x
    assert (added.abs().amax(dim=-1) > 0).all()
    power = torch.fft.rfft(added.double() * torch.hann_window(x.shape[-1], dtype=torch.float64)).abs() ** 2
    freqs = torch.fft.rfftfreq(x.shape[-1], d=1 / RATE)
    low = power[..., freqs <= 0.7].sum(dim=-1) / power.sum(dim=-1)
    assert (low > 0.99).all()
    relative = added.abs().amax(dim=-1) / x.std(dim=-1)
    assert (relative <= 2 * 0.5 + 1e-4).all()


def test_time_warp_keeps_endpoints_range_and_order() -> None:
    x = ecg_like()
    out = augment.time_warp(x, 0.5, gen())
    assert torch.allclose(out[..., [0, -1]], x[..., [0, -1]])
    assert (out >= x.amin(dim=-1, keepdim=True) - 1e-5).all()
    assert (out <= x.amax(dim=-1, keepdim=True) + 1e-5).all()
    assert not torch.allclose(out[..., 1:-1], x[..., 1:-1])
    ramp = torch.linspace(0, 1, 500).expand(16, 2, 500).contiguous()
    warped = augment.time_warp(ramp, 0.9, gen())
    assert (warped.diff(dim=-1) > 0).all(), "a monotone warp of a ramp stays strictly increasing"
    assert torch.allclose(augment.time_warp(x, 0.0, gen()), x, atol=1e-5)


def test_random_crop_takes_a_window_per_record_and_center_crop_the_middle() -> None:
    x = torch.arange(1000, dtype=torch.float32).expand(32, 3, 1000).contiguous()
    x += 10000 * torch.arange(32.0)[:, None, None]
    out = augment.random_crop(x, 600, gen())
    assert out.shape == (32, 3, 600) and out.dtype == torch.float32
    starts = out[:, 0, 0] - x[:, 0, 0]
    assert torch.equal(out, x.gather(-1, (starts.long()[:, None, None] + torch.arange(600)).expand(32, 3, 600)))
    assert len(starts.unique()) > 1
    assert torch.equal(out, augment.random_crop(x, 600, gen()))
    assert torch.equal(augment.center_crop(x, 600), x[..., 200:800])
    assert augment.random_crop(x, 1000, gen()) is x
    with pytest.raises(ValueError) as error:
        augment.random_crop(x, 1200, gen())
    assert str(error.value) == ("cannot crop 1200 samples from records of 1000 samples; "
                                "choose a crop length between 1 and 1000")


def test_all_zero_augmentation_returns_the_same_object() -> None:
    x = ecg_like()
    assert not Augmentation().enabled
    assert Augmentation()(x, gen(), RATE) is x
    off = Augmentation(noise=0.3, p=0.0)
    assert not off.enabled and off(x, gen(), RATE) is x


def test_full_augmentation_is_reproducible() -> None:
    aug = Augmentation.from_params({"amplitude_scale": 0.2, "noise": 0.1, "baseline_wander": 0.3,
                                    "time_mask": 0.1, "lead_mask": 0.2, "time_warp": 0.2, "p": 1})
    assert aug.enabled
    x = ecg_like()
    out = aug(x, gen(5), RATE)
    assert out.shape == x.shape and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert torch.equal(out, aug(x, gen(5), RATE))
    assert not torch.equal(out, aug(x, gen(6), RATE))


@pytest.mark.parametrize("params, message", [
    ({"noise": 1.5}, "augmentation.noise must be a number in [0, 1], got 1.5"),
    ({"p": -0.1}, "augmentation.p must be a number in [0, 1], got -0.1"),
    ({"time_warp": "0.2"}, "augmentation.time_warp must be a number in [0, 1], got '0.2'"),
    ({"lead_mask": True}, "augmentation.lead_mask must be a number in [0, 1], got True"),
    ({"lead_mask": float("nan")}, "augmentation.lead_mask must be a number in [0, 1], got nan"),
    ({"nosie": 0.1}, "augmentation.nosie is not an augmentation; expected one of amplitude_scale, "
                     "noise, baseline_wander, time_mask, lead_mask, time_warp, p"),
])
def test_from_params_rejects_bad_values_with_one_sentence(params: dict, message: str) -> None:
    with pytest.raises(ValueError) as error:
        Augmentation.from_params(params)
    assert str(error.value) == message
