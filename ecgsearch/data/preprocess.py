"""Signal preprocessing shared by every dataset plugin: leads, NaN, resampling, filtering, length, scale.

Datasets arrive at different rates (257 to 1000 Hz), lengths, lead orders and with missing samples;
a search needs one fixed ``(leads, samples)`` float32 grid. Keeping these steps in one pure
numpy/scipy module means every plugin prepares records the same way and one ``Preprocessing`` value
(part of each dataset fingerprint) says exactly what was done, so a change gives a new cache key.

Order in ``Preprocessing.apply``: select leads -> fill NaN -> resample -> band-pass -> crop ->
z-score -> zero-pad. Cropping before the z-score keeps the statistics on the kept window; padding
after it pads with the lead mean (0), not with a value that shifts the statistics.

Resampling is scipy's polyphase filter and the band-pass scipy's zero-phase Butterworth, both
computed by the FFT forms in ``ecgsearch.data.spectral`` (the same numbers, several times faster), in
float32 inside ``Preprocessing`` (float64 inputs stay float64 in the standalone functions).
``Preprocessing.apply_batch`` runs many records of one shape together, as dataset readers should.
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any, Sequence

import numpy as np

from ecgsearch.data.params import is_number

# Bump when apply() output changes for the same parameters. 2: float32 FFT forms of the same filters
# (equal to version 1 within float32 rounding, about 1e-5 of a z-scored lead).
PREPROCESS_VERSION = 2
STANDARD_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
# The reduced-lead sets of the PhysioNet/CinC Challenge 2021.
LEAD_SETS: dict[int, tuple[str, ...]] = {
    12: STANDARD_LEADS,
    8: ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6"),
    6: ("I", "II", "III", "aVR", "aVL", "aVF"),
    4: ("I", "II", "III", "V2"),
    3: ("I", "II", "V2"),
    2: ("I", "II"),
}
MAX_UPSAMPLING = 4.0  # beyond this, interpolation invents more signal than it preserves
FILTER_ORDER = 4
CROP_MODES = ("center", "start")


def resolve_leads(leads: int | Sequence[str] | None) -> tuple[str, ...]:
    """``None`` -> 12 leads; an int -> that Challenge lead set; a list -> those names (standard case)."""
    if leads is None:
        return STANDARD_LEADS
    if isinstance(leads, numbers.Integral) and not isinstance(leads, bool):
        if int(leads) not in LEAD_SETS:
            raise ValueError(f"leads={leads} is not a lead set; use one of {sorted(LEAD_SETS)} "
                             "or a list of lead names.")
        return LEAD_SETS[int(leads)]
    if isinstance(leads, (str, bytes)) or not isinstance(leads, Sequence) or not leads:
        raise ValueError(f"leads must be a lead count ({sorted(LEAD_SETS)}) or a non-empty list of lead "
                         f"names (got {leads!r}).")
    by_lower = {name.lower(): name for name in STANDARD_LEADS}
    chosen = [by_lower.get(str(lead).lower(), str(lead)) for lead in leads]
    twice = sorted({name for name in chosen if chosen.count(name) > 1})
    if twice:
        raise ValueError(f"leads lists {', '.join(twice)} more than once; list each lead once.")
    return tuple(chosen)


def standard_leads(leads: Sequence[str] | None, owner: str,
                   available: Sequence[str] = STANDARD_LEADS) -> list[str]:
    """Lead names (any case) of a dataset that always has ``available``; errors start with ``owner``."""
    allowed = ", ".join(available)
    if leads is None:
        return list(available)
    if isinstance(leads, (str, bytes)) or not isinstance(leads, Sequence) or not leads:
        raise ValueError(f"{owner}: leads must be a non-empty list of lead names from {allowed} "
                         f"(got {leads!r}).")
    by_lower = {name.lower(): name for name in available}
    chosen: list[str] = []
    for lead in leads:
        name = by_lower.get(str(lead).lower())
        if name is None:
            raise ValueError(f"{owner}: unknown lead {lead!r}; allowed leads: {allowed}.")
        if name in chosen:
            raise ValueError(f"{owner}: lead {name!r} is listed twice in leads; list each lead once.")
        chosen.append(name)
    return chosen


def select_leads(signal: np.ndarray, names: Sequence[str], wanted: Sequence[str], axis: int = -2) -> np.ndarray:
    """Leads of ``signal`` (``axis``: the leads axis) in the order of ``wanted``, names in any case."""
    index = {str(name).strip().lower(): i for i, name in enumerate(names)}
    missing = [lead for lead in wanted if lead.lower() not in index]
    if missing:
        raise ValueError(f"lead(s) {', '.join(missing)} requested but the record has only "
                         f"{', '.join(map(str, names))}.")
    rows = [index[lead.lower()] for lead in wanted]
    signal = np.asarray(signal)
    if rows == list(range(signal.shape[axis])):
        return signal  # all leads in order: no copy (callers copy when they convert or filter)
    return np.take(signal, rows, axis=axis)


def fill_nan(signal: np.ndarray) -> np.ndarray:
    """Missing samples (NaN/inf) linearly interpolated per lead; edges take the nearest value.

    A lead with no finite sample at all becomes zeros; ``np.nan_to_num`` then guarantees that no
    non-finite value survives (filters and z-scores would spread one NaN over the whole lead).
    Returns a float copy (float32 stays float32, anything else becomes float64) of any shape.
    """
    out = np.array(signal, dtype=_float_dtype(signal), order="C")  # C order: the row views below write into it
    bad = ~np.isfinite(out)
    if not bad.any():
        return out
    positions = np.arange(out.shape[-1])
    for row, mask in zip(out.reshape(-1, out.shape[-1]), bad.reshape(-1, out.shape[-1])):
        if mask.all():
            row[:] = 0.0
        elif mask.any():
            row[mask] = np.interp(positions[mask], positions[~mask], row[~mask])
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def resample(signal: np.ndarray, from_hz: float, to_hz: float, axis: int = -1,
             samples: int | None = None) -> np.ndarray:
    """Polyphase resampling along ``axis`` (anti-aliased), with up/down from a rational fit.

    The result is ``scipy.signal.resample_poly``'s (Kaiser-windowed sinc, zero padding at the ends),
    computed by FFT (``ecgsearch.data.spectral``), with ``axis`` moved last; float32 stays float32.
    ``samples``: the signal is that many samples followed by zeros (a buffer ``padded_length`` long).
    """
    if from_hz <= 0 or to_hz <= 0:
        raise ValueError(f"sampling rates must be positive (got from {from_hz:g} Hz to {to_hz:g} Hz).")
    if to_hz / from_hz > MAX_UPSAMPLING:
        raise ValueError(f"cannot resample from {from_hz:g} Hz to {to_hz:g} Hz: that upsamples "
                         f"{to_hz / from_hz:.3g}x and at most {MAX_UPSAMPLING:g}x is allowed; choose a "
                         f"sampling rate of at most {MAX_UPSAMPLING * from_hz:g} Hz.")
    if math.isclose(from_hz, to_hz):
        signal = np.moveaxis(np.asarray(signal, dtype=_float_dtype(signal)), axis, -1)
        return signal if samples is None else signal[..., :samples]
    from ecgsearch.data import spectral  # deferred: scipy; a dataset plugin is listed without it

    up, down = _ratio(to_hz / from_hz)
    return spectral.resample_poly(signal, up, down, axis, samples)


@functools.lru_cache(maxsize=64)
def _ratio(value: float) -> tuple[int, int]:
    """``up / down`` closest to ``value`` with ``down <= 1000`` (a few rates recur across records)."""
    ratio = Fraction(value).limit_denominator(1000)
    return ratio.numerator, ratio.denominator


def _float_dtype(signal: np.ndarray) -> type:
    return np.float32 if np.asarray(signal).dtype == np.float32 else np.float64


def bandpass(signal: np.ndarray, hz: float, low: float | None = 0.5, high: float | None = None,
             order: int = FILTER_ORDER) -> np.ndarray:
    """Zero-phase Butterworth (``sosfiltfilt``): removes baseline wander (low) and noise (high).

    Zero phase keeps wave timing (PR, QT) intact. ``low=None`` gives a low-pass, ``high=None`` a
    high-pass, both ``None`` returns the signal unchanged. The result is scipy's ``sosfiltfilt``
    (odd padding); float32 stays float32. Records of a whole number of seconds -- the lengths that
    recur across a dataset -- are filtered by its FFT form (``ecgsearch.data.spectral``, a plan per
    length), others by scipy itself: a rule of the record alone, so every build gives the same bits.
    """
    from ecgsearch.data import spectral  # deferred: scipy; a dataset plugin is listed without it

    check_band(hz, low, high)
    if low is None and high is None:
        return np.asarray(signal, dtype=_float_dtype(signal))
    sos = _butter(float(hz), None if low is None else float(low), None if high is None else float(high), order)
    samples = np.shape(signal)[-1]
    padlen = min(3 * (2 * len(sos) + 1), max(samples - 1, 0))  # short records: pad what exists
    seconds = samples / hz
    return spectral.sosfiltfilt(sos, signal, padlen, fast=math.isclose(seconds, round(seconds)))


@functools.lru_cache(maxsize=64)
def _butter(hz: float, low: float | None, high: float | None, order: int) -> np.ndarray:
    """The filter's second-order sections, designed once per (rate, band): datasets filter every record."""
    from scipy import signal as sps  # deferred: scipy; a dataset plugin is listed without it

    if low is not None and high is not None:
        return sps.butter(order, [low, high], btype="bandpass", fs=hz, output="sos")
    if low is not None:
        return sps.butter(order, low, btype="highpass", fs=hz, output="sos")
    return sps.butter(order, high, btype="lowpass", fs=hz, output="sos")


def check_band(hz: float, low: float | None, high: float | None) -> None:
    """Raise ValueError unless ``0 < low < high < hz / 2`` (edges that are set)."""
    nyquist = hz / 2
    if low is not None and not 0 < low < nyquist:
        raise ValueError(f"bandpass low edge {low:g} Hz must be above 0 and below the Nyquist "
                         f"frequency {nyquist:g} Hz of {hz:g} Hz.")
    if high is not None and not 0 < high < nyquist:
        raise ValueError(f"bandpass high edge {high:g} Hz must be below the Nyquist frequency "
                         f"{nyquist:g} Hz of the {hz:g} Hz sampling rate; lower it or raise the rate.")
    if low is not None and high is not None and low >= high:
        raise ValueError(f"bandpass low edge {low:g} Hz must be below the high edge {high:g} Hz.")


def fix_length(signal: np.ndarray, samples: int, mode: str = "center") -> np.ndarray:
    """Crop (centre or start window) or zero-pad at the end to exactly ``samples`` along the last axis."""
    if mode not in CROP_MODES:
        raise ValueError(f"fix_length mode must be one of {', '.join(CROP_MODES)} (got {mode!r}).")
    have = signal.shape[-1]
    if have >= samples:
        start = (have - samples) // 2 if mode == "center" else 0
        return signal[..., start:start + samples]
    pad = [(0, 0)] * (signal.ndim - 1) + [(0, samples - have)]
    return np.pad(signal, pad)


def normalize(signal: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Per-lead z-score; a flat lead (std < eps) is only centred, never divided by ~0."""
    centred = signal - signal.mean(axis=-1, keepdims=True)
    # The std as np.std computes it, without its temporaries: the squares summed as dot products.
    std = np.sqrt(np.einsum("...i,...i->...", centred, centred)[..., None] / max(signal.shape[-1], 1))
    centred /= np.where(std < eps, 1.0, std)
    return centred


@dataclass(frozen=True)
class Preprocessing:
    """One record -> float32 ``(len(leads), round(seconds * sampling_rate))`` at ``sampling_rate`` Hz."""

    sampling_rate: float = 100.0
    seconds: float = 10.0
    leads: tuple[str, ...] = STANDARD_LEADS
    bandpass_low: float | None = 0.5
    bandpass_high: float | None = None
    normalize: bool = True
    crop: str = "center"

    def __post_init__(self) -> None:
        if not is_number(self.sampling_rate) or self.sampling_rate <= 0:
            raise ValueError(f"sampling_rate must be a positive number of Hz (got {self.sampling_rate!r}).")
        if not is_number(self.seconds) or self.seconds <= 0:
            raise ValueError(f"seconds must be a positive number (got {self.seconds!r}).")
        for name in ("bandpass_low", "bandpass_high"):
            value = getattr(self, name)
            if value is not None and not is_number(value):
                raise ValueError(f"{name} must be a number of Hz or None (got {value!r}).")
        if self.crop not in CROP_MODES:
            raise ValueError(f"crop must be one of {', '.join(CROP_MODES)} (got {self.crop!r}).")
        object.__setattr__(self, "sampling_rate", float(self.sampling_rate))
        object.__setattr__(self, "seconds", float(self.seconds))
        for name in ("bandpass_low", "bandpass_high"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "leads", resolve_leads(self.leads))
        check_band(float(self.sampling_rate), self.bandpass_low, self.bandpass_high)

    @property
    def samples(self) -> int:
        return round(self.seconds * self.sampling_rate)

    def apply(self, signal: np.ndarray, from_hz: float, lead_names: Sequence[str]) -> np.ndarray:
        """Select leads, fill NaN, resample, band-pass, crop, z-score, pad: see the module docstring."""
        return self.apply_batch(np.asarray(signal)[None], from_hz, lead_names)[0]

    def padded_length(self, samples: int, from_hz: float) -> int:
        """How long a buffer for ``apply_batch(..., samples=samples)`` may be: records of ``samples``
        at ``from_hz``, zeros after them, are resampled without a padded copy."""
        if math.isclose(from_hz, self.sampling_rate):
            return samples
        from ecgsearch.data import spectral  # deferred: scipy; a dataset plugin is listed without it

        return spectral.fft_length(samples, *_ratio(self.sampling_rate / from_hz))

    def apply_batch(self, signals: np.ndarray, from_hz: float, lead_names: Sequence[str],
                    leads_last: bool = False, samples: int | None = None) -> np.ndarray:
        """``apply`` to a stack ``(records, leads, samples)`` sharing rate and leads, in one pass.

        One call per batch instead of per record: the FFTs run over all rows at once, in float32.
        ``leads_last``: the stack is ``(records, samples, leads)``, as MATLAB/WFDB files store samples;
        the result is lead-major all the same (the transposition rides on the resampling FFT).
        ``samples``: each record is that many samples, zeros follow (a ``padded_length`` buffer).
        """
        leads_axis, time_axis = (-1, -2) if leads_last else (-2, -1)
        full = select_leads(signals, lead_names, self.leads, leads_axis).astype(np.float32, copy=False)
        x = full if samples is None else full[(Ellipsis, slice(samples)) + (slice(None),) * (-1 - time_axis)]
        resampled = resample(full, float(from_hz), float(self.sampling_rate), time_axis, samples)
        # A NaN or inf in a record reaches its resampled output (the FFT form spreads it over the whole
        # record, scipy's filter over its taps) and survives a sum: one pass over the output finds it.
        if np.isfinite(np.add.reduce(resampled, axis=None)):
            x = resampled
        else:  # missing samples: interpolated over, and resampled again
            x = resample(fill_nan(np.moveaxis(x, time_axis, -1)), float(from_hz), float(self.sampling_rate))
        x = bandpass(x, float(self.sampling_rate), self.bandpass_low, self.bandpass_high)
        x = fix_length(x, min(self.samples, x.shape[-1]), self.crop)
        if self.normalize:
            x = normalize(x)
        out = np.ascontiguousarray(fix_length(x, self.samples), dtype=np.float32)
        return out.copy() if np.may_share_memory(out, signals) else out  # never a view of the input

    def fingerprint(self) -> dict[str, Any]:
        """Every parameter that changes ``apply``'s output (JSON-able), plus the code version."""
        values = asdict(self)
        values["leads"] = list(self.leads)
        values["version"] = PREPROCESS_VERSION
        return values
