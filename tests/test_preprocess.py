"""Shared preprocessing: lead sets, NaN filling, resampling, filtering, length, z-score, the dataclass."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from ecgsearch import preprocess as pp
from ecgsearch.preprocess import Preprocessing


def raises(message: str):
    """``pytest.raises`` for a ValueError with exactly this message."""
    return pytest.raises(ValueError, match=f"^{re.escape(message)}$")


def _sine(hz: float, fs: float, seconds: float = 10.0) -> np.ndarray:
    t = np.arange(round(seconds * fs)) / fs
    return np.sin(2 * np.pi * hz * t)


def _power_at(x: np.ndarray, hz: float, fs: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) / len(x)
    return float(spectrum[round(hz * len(x) / fs)])


def test_lead_sets_are_the_challenge_sets():
    assert pp.LEAD_SETS[12] == ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
    assert pp.LEAD_SETS[8] == ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
    assert pp.LEAD_SETS[6] == ("I", "II", "III", "aVR", "aVL", "aVF")
    assert pp.LEAD_SETS[4] == ("I", "II", "III", "V2")
    assert pp.LEAD_SETS[3] == ("I", "II", "V2")
    assert pp.LEAD_SETS[2] == ("I", "II")


def test_resolve_leads():
    assert pp.resolve_leads(None) == pp.LEAD_SETS[12]
    assert pp.resolve_leads(3) == ("I", "II", "V2")
    assert pp.resolve_leads(["avr", "v1"]) == ("aVR", "V1")
    with raises("leads=5 is not a lead set; use one of [2, 3, 4, 6, 8, 12] "
                                                   "or a list of lead names."):
        pp.resolve_leads(5)
    with raises("leads lists II more than once; list each lead once."):
        pp.resolve_leads(["II", "ii"])


def test_select_leads_reorders_and_names_missing_leads():
    x = np.arange(6.0).reshape(3, 2)
    assert pp.select_leads(x, ["I", "II", "V1"], ["v1", "I"]).tolist() == [[4.0, 5.0], [0.0, 1.0]]
    with raises("lead(s) V2, V3 requested but the record has only I, II, "
                                                   "V1."):
        pp.select_leads(x, ["I", "II", "V1"], ["I", "V2", "V3"])


def test_fill_nan_interpolates_and_zeroes_empty_leads():
    x = np.array([[np.nan, 1.0, np.nan, 3.0, np.nan], [np.nan] * 5, [1.0, 2.0, np.inf, 4.0, 5.0]])
    out = pp.fill_nan(x)
    assert out.tolist() == [[1.0, 1.0, 2.0, 3.0, 3.0], [0.0] * 5, [1.0, 2.0, 3.0, 4.0, 5.0]]
    assert np.isnan(x).sum() == 8  # the input is not modified


def test_resample_keeps_the_signal_and_length():
    x = _sine(5, 500)[None]
    y = pp.resample(x, 500, 100)
    assert y.shape == (1, 1000)
    assert np.abs(y[0, 50:-50] - _sine(5, 100)[50:-50]).max() < 0.01
    assert pp.resample(_sine(5, 257)[None], 257, 100).shape == (1, 1000)
    assert pp.resample(x, 500, 500) is not None and pp.resample(x, 500, 500).shape == x.shape
    with raises("cannot resample from 100 Hz to 500 Hz: that upsamples 5x and "
                                                   "at most 4x is allowed; choose a sampling rate of at most "
                                                   "400 Hz."):
        pp.resample(x, 100, 500)


def test_bandpass_removes_baseline_and_noise():
    fs = 500.0
    x = (2 * _sine(0.1, fs) + _sine(10, fs) + 0.5 * _sine(100, fs) + 3.0)[None]
    y = pp.bandpass(x, fs, low=0.5, high=45)[0]
    assert _power_at(y, 10, fs) == pytest.approx(_power_at(x[0], 10, fs), rel=0.02)
    assert _power_at(y, 0.1, fs) < 0.01 and _power_at(y, 100, fs) < 0.001 and abs(y.mean()) < 0.01
    assert np.array_equal(pp.bandpass(x, fs, None, None), x)
    with raises("bandpass high edge 50 Hz must be below the Nyquist frequency "
                                                   "50 Hz of the 100 Hz sampling rate; lower it or raise the "
                                                   "rate."):
        pp.bandpass(x, 100, 0.5, 50)
    with raises("bandpass low edge 40 Hz must be below the high edge 30 Hz."):
        pp.bandpass(x, 100, 40, 30)


def test_bandpass_accepts_very_short_signals():
    assert pp.bandpass(np.ones((2, 5)), 100, 0.5, 40).shape == (2, 5)


def test_fix_length_crops_and_pads():
    x = np.arange(10.0)[None]
    assert pp.fix_length(x, 4).tolist() == [[3.0, 4.0, 5.0, 6.0]]
    assert pp.fix_length(x, 4, "start").tolist() == [[0.0, 1.0, 2.0, 3.0]]
    assert pp.fix_length(x, 12).tolist() == [list(range(10)) + [0.0, 0.0]]
    with raises("fix_length mode must be one of center, start (got 'end')."):
        pp.fix_length(x, 4, "end")


def test_normalize_is_safe_for_flat_leads():
    x = np.stack([_sine(3, 100) * 4 + 2, np.full(1000, 7.0)])
    y = pp.normalize(x)
    assert y[0].mean() == pytest.approx(0, abs=1e-9) and y[0].std() == pytest.approx(1)
    assert np.all(y[1] == 0)


def test_preprocessing_apply_shape_dtype_and_no_nan():
    prep = Preprocessing(sampling_rate=100, seconds=8, leads=6, bandpass_high=40)
    x = np.random.default_rng(0).normal(size=(12, 5000))
    x[3, 100:200] = np.nan
    x[5] = np.nan
    out = prep.apply(x, 500, list(pp.STANDARD_LEADS))
    assert out.shape == (6, 800) and out.dtype == np.float32 and np.isfinite(out).all()
    assert np.allclose(out[:5].std(axis=1), 1, atol=1e-3) and np.all(out[5] == 0)
    short = prep.apply(x[:, :2000], 500, list(pp.STANDARD_LEADS))  # 4 s: padded with zeros at the end
    assert short.shape == (6, 800) and np.all(short[:, 400:] == 0)


def test_preprocessing_identity_keeps_values():
    prep = Preprocessing(sampling_rate=500, seconds=10, leads=["II"], bandpass_low=None, normalize=False)
    x = np.vstack([np.zeros(5000), np.arange(5000) / 1000.0])
    assert np.array_equal(prep.apply(x, 500, ["I", "II"]), x[1:].astype(np.float32))


def test_preprocessing_validation_and_fingerprint():
    with raises("bandpass high edge 50 Hz must be below the Nyquist frequency "
                                                   "50 Hz of the 100 Hz sampling rate; lower it or raise the "
                                                   "rate."):
        Preprocessing(sampling_rate=100, bandpass_high=50)
    with raises("sampling_rate must be a positive number of Hz (got 0)."):
        Preprocessing(sampling_rate=0)
    with raises("crop must be one of center, start (got 'middle')."):
        Preprocessing(crop="middle")
    a, b = Preprocessing(), Preprocessing(sampling_rate=100.0, leads=12)
    assert a == b and a.fingerprint() == b.fingerprint()
    assert json.loads(json.dumps(a.fingerprint()))["leads"] == list(pp.STANDARD_LEADS)
    assert Preprocessing(normalize=False).fingerprint() != a.fingerprint()
    with pytest.raises(AttributeError):
        a.seconds = 5  # type: ignore[misc]
