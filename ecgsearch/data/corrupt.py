"""Corruptions of a test split: what a trained model is scored on out of distribution (``evaluate.corruptions``).

Each corruption is a pure, vectorised numpy function of a ``(records, leads, samples)`` array, applied to the
test split only, after the dataset's own preprocessing (so "the signal" is what the model reads). Every
quantity is per record and per lead, so a corruption means the same thing on a loud lead and a quiet one:

- ``gaussian_noise`` (``snr_db``): adds white Gaussian noise whose power is the lead's power divided by
  ``10 ** (snr_db / 10)``. The drawn noise is rescaled to exactly that power (its own mean square over the
  record), so the SNR of every record and lead is ``snr_db`` exactly: ``10 log10(mean(x^2) / mean(n^2))``.
  A lead that is all zeros stays zero (it has no power to compare with).
- ``baseline_wander`` (``amplitude``, ``frequency_hz``): adds a sine of ``frequency_hz`` (default 0.3 Hz,
  about a breath) with a random phase per record and lead, whose peak is ``amplitude`` times the lead's
  largest absolute value.
- ``lead_dropout`` (``leads``): sets exactly ``leads`` leads of every record to zero, chosen at random per
  record (a detached electrode reads flat).
- ``amplitude_scale`` (``factor``): multiplies every sample by ``factor`` (a gain error).
- ``clipping`` (``level``): clips each lead to ``[-c, c]`` with ``c = level x max |x|`` of that lead (an
  amplifier that saturates).

Corruptions are deterministic: the random draws come from ``numpy.random.default_rng([seed, crc32(name)])``,
so every trial of a run (and ``ecgsearch evaluate-run`` later) scores the same corrupted records, and adding
a corruption changes none of the others. The module is torch-free: ``ecgsearch validate`` imports it.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np


@dataclass(frozen=True)
class Setting:
    """One setting of a corruption kind: a number in ``[low, high]`` (``low_open``: low excluded); no
    ``default``: required."""

    name: str
    doc: str
    integer: bool = False
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    default: float | None = None


@dataclass(frozen=True)
class Kind:
    """A corruption kind: its settings (the first is the one its default name is made of) and the name's form."""

    settings: tuple[Setting, ...]
    label: str  # the default name: label.format(first setting's value as a name part)
    doc: str


@dataclass(frozen=True)
class Corruption:
    """A named corruption of the test split; ``params`` holds every setting of its kind (defaults filled in)."""

    name: str
    kind: str
    params: Mapping[str, float] = field(default_factory=dict)


def noise_at_snr(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` plus white Gaussian noise at exactly ``snr_db`` dB below each record's and lead's power."""
    work = x.astype(np.float64)
    noise = rng.standard_normal(work.shape)
    power = np.mean(work ** 2, axis=-1, keepdims=True)
    drawn = np.mean(noise ** 2, axis=-1, keepdims=True)
    wanted = power / 10.0 ** (snr_db / 10.0)
    scale = np.sqrt(np.divide(wanted, drawn, out=np.zeros_like(wanted), where=drawn > 0))
    return (work + noise * scale).astype(x.dtype)


def baseline_wander(x: np.ndarray, amplitude: float, frequency_hz: float, sampling_rate: float,
                    rng: np.random.Generator) -> np.ndarray:
    """``x`` plus a sine of ``frequency_hz`` whose peak is ``amplitude`` x each lead's max |x| (random phase)."""
    t = np.arange(x.shape[-1]) / float(sampling_rate)
    phase = rng.uniform(0.0, 2 * math.pi, x.shape[:-1] + (1,))
    peak = amplitude * np.abs(x).max(axis=-1, keepdims=True)
    return (x + peak * np.sin(2 * math.pi * frequency_hz * t + phase)).astype(x.dtype)


def lead_dropout(x: np.ndarray, leads: int, rng: np.random.Generator) -> np.ndarray:
    """``x`` with exactly ``leads`` of its leads set to zero in each record (chosen per record)."""
    if not 0 <= leads <= x.shape[1]:
        raise ValueError(f"cannot drop {leads} of {x.shape[1]} leads")
    ranks = np.argsort(rng.random(x.shape[:2]), axis=1)  # a random permutation of the leads per record
    dropped = np.zeros(x.shape[:2], dtype=bool)
    np.put_along_axis(dropped, ranks[:, :leads], True, axis=1)
    return np.where(dropped[:, :, None], np.zeros((), dtype=x.dtype), x)


def amplitude_scale(x: np.ndarray, factor: float) -> np.ndarray:
    """``x`` times ``factor``."""
    return (x * factor).astype(x.dtype)


def clipping(x: np.ndarray, level: float) -> np.ndarray:
    """``x`` clipped to ``+-level x max |x|`` of each record's lead."""
    bound = level * np.abs(x).max(axis=-1, keepdims=True)
    return np.clip(x, -bound, bound).astype(x.dtype)


_POSITIVE = {"low": 0.0, "low_open": True}
KINDS: dict[str, Kind] = {
    "gaussian_noise": Kind((Setting("snr_db", "signal-to-noise ratio in dB, per record and lead", low=-100.0,
                                    high=200.0),), "noise_{}db", "additive white Gaussian noise"),
    "baseline_wander": Kind((Setting("amplitude", "the sine's peak, as a share of each lead's max |x|", **_POSITIVE),
                             Setting("frequency_hz", "the wander's frequency in Hz", **_POSITIVE, default=0.3)),
                            "wander_{}", "a slow sine added to every lead"),
    "lead_dropout": Kind((Setting("leads", "how many leads of each record read zero", integer=True, low=1),),
                         "dropout_{}leads", "leads set to zero"),
    "amplitude_scale": Kind((Setting("factor", "the gain every sample is multiplied by", **_POSITIVE),),
                            "scale_{}", "a gain error"),
    "clipping": Kind((Setting("level", "the clipping level, as a share of each lead's max |x|", high=1.0,
                              **_POSITIVE),), "clip_{}", "saturation at a share of each lead's peak"),
}

_APPLY: dict[str, Callable[..., np.ndarray]] = {
    "gaussian_noise": lambda x, p, rate, rng: noise_at_snr(x, p["snr_db"], rng),
    "baseline_wander": lambda x, p, rate, rng: baseline_wander(x, p["amplitude"], p["frequency_hz"], rate, rng),
    "lead_dropout": lambda x, p, rate, rng: lead_dropout(x, int(p["leads"]), rng),
    "amplitude_scale": lambda x, p, rate, rng: amplitude_scale(x, p["factor"]),
    "clipping": lambda x, p, rate, rng: clipping(x, p["level"]),
}


def default_name(kind: str, params: Mapping[str, Any]) -> str:
    """A corruption's name when the space file gives none: its kind's label with the first setting's value,
    written as a name part (``noise_10db``, ``clip_0p5``, ``noise_m5db`` for -5 dB)."""
    info = KINDS[kind]
    value = params[info.settings[0].name]
    text = f"{value:g}".replace("-", "m").replace(".", "p").replace("+", "")
    return info.label.format(text)


def corruption_rng(seed: int, name: str) -> np.random.Generator:
    """The random draws of corruption ``name`` in a run with ``seed``: independent of every other corruption."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def corrupt(signals: np.ndarray, corruption: Corruption, sampling_rate: float, seed: int) -> np.ndarray:
    """A corrupted copy of ``signals`` (``(records, leads, samples)``); the same every time for the same seed."""
    return _APPLY[corruption.kind](np.asarray(signals), corruption.params, sampling_rate,
                                   corruption_rng(seed, corruption.name))
