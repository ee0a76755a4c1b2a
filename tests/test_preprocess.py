"""Shared preprocessing: lead sets, NaN filling, resampling, filtering, length, z-score, the dataclass."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from scipy import signal as sps

from ecgsearch.data import preprocess as pp
from ecgsearch.data import spectral
from ecgsearch.data.preprocess import Preprocessing


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


# The FFT forms in ecgsearch.data.spectral must give scipy's numbers (PREPROCESS_VERSION 1 used scipy).


def _scipy_pipeline(prep: Preprocessing, x: np.ndarray, fs: float, names) -> np.ndarray:
    """``Preprocessing.apply`` as version 1 computed it: float64, scipy's resample_poly and sosfiltfilt."""
    from fractions import Fraction

    y = pp.fill_nan(pp.select_leads(np.asarray(x, dtype=np.float64), names, prep.leads))
    if not np.isclose(fs, prep.sampling_rate):
        ratio = Fraction(prep.sampling_rate / fs).limit_denominator(1000)
        y = sps.resample_poly(y, ratio.numerator, ratio.denominator, axis=-1)
    if prep.bandpass_low is not None or prep.bandpass_high is not None:
        sos = pp._butter(prep.sampling_rate, prep.bandpass_low, prep.bandpass_high, pp.FILTER_ORDER)
        y = sps.sosfiltfilt(sos, y, axis=-1, padlen=min(3 * (2 * len(sos) + 1), y.shape[-1] - 1))
    y = pp.fix_length(y, min(prep.samples, y.shape[-1]), prep.crop)
    if prep.normalize:
        y = (y - y.mean(axis=-1, keepdims=True)) / np.maximum(y.std(axis=-1, keepdims=True), 1e-300)
    return pp.fix_length(y, prep.samples).astype(np.float32)


@pytest.mark.parametrize("n, up, down", [(5000, 1, 5), (5001, 1, 2), (3000, 1, 10), (2500, 2, 5),
                                         (777, 3, 7), (1000, 4, 5), (7, 1, 5), (2570, 100, 257)])
def test_resample_equals_scipy_polyphase(n, up, down):
    x = np.random.default_rng(n).standard_normal((3, n)) + 2.0
    expected = sps.resample_poly(x, up, down, axis=-1)
    got = spectral.resample_poly(x, up, down)
    assert got.shape == expected.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(spectral.resample_poly(x.T.copy(), up, down, axis=0), expected, atol=1e-12)
    x32 = x.astype(np.float32)
    got32 = spectral.resample_poly(x32, up, down)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, sps.resample_poly(x32, up, down, axis=-1), rtol=0, atol=2e-5)
    padded = np.zeros((3, spectral.fft_length(n, up, down, np.float64)))  # a caller's zero-padded buffer
    padded[:, :n] = x
    np.testing.assert_allclose(spectral.resample_poly(padded, up, down, n=n), expected, atol=1e-12)


def test_resample_is_anti_aliased():
    """A 70 Hz tone sampled at 500 Hz must not fold onto 30 Hz at 100 Hz; 10 Hz passes unchanged."""
    y = pp.resample(np.stack([_sine(70, 500), _sine(10, 500)]), 500, 100)
    assert _power_at(y[0, 100:-100], 30, 100) < 1e-3 * _power_at(_sine(70, 500), 70, 500)
    assert _power_at(y[1, 100:-100], 10, 100) == pytest.approx(_power_at(_sine(10, 500), 10, 500), rel=0.01)


def test_sosfiltfilt_transpose_is_the_transpose():
    sos = pp._butter(100.0, 0.5, 40.0, pp.FILTER_ORDER)
    matrix = sps.sosfiltfilt(sos, np.eye(60), axis=-1, padlen=27)  # row j: the response to unit j
    np.testing.assert_allclose(spectral._sosfiltfilt_transpose(sos, np.eye(60), 27), matrix.T, atol=1e-12)


@pytest.mark.parametrize("low, high", [(0.5, None), (0.5, 40.0), (None, 40.0), (0.05, None)])
def test_bandpass_equals_scipy_sosfiltfilt(low, high):
    sos = pp._butter(100.0, low, high, pp.FILTER_ORDER)
    for n in (20, 64, 1000, 1234):
        x = np.random.default_rng(n).standard_normal((4, n)).cumsum(axis=1)  # wander, as in ECGs
        padlen = min(3 * (2 * len(sos) + 1), n - 1)
        expected = sps.sosfiltfilt(sos, x, axis=-1, padlen=padlen)
        scale = np.abs(expected).max()
        if n >= spectral.FILTFILT_MIN:  # shorter records go to scipy itself
            assert spectral._filtfilt_plan(n, sos.tobytes(), len(sos), padlen, "<f8") is not None
        np.testing.assert_allclose(spectral.sosfiltfilt(sos, x, padlen), expected, rtol=0, atol=1e-9 * scale)
        got32 = spectral.sosfiltfilt(sos, x.astype(np.float32), padlen)
        assert got32.dtype == np.float32
        np.testing.assert_allclose(got32, expected, rtol=0, atol=1e-5 * scale)
        # bandpass: whole seconds (10 s) by the FFT form, other lengths by scipy itself
        np.testing.assert_allclose(pp.bandpass(x, 100.0, low, high), expected, rtol=0, atol=1e-9 * scale)
        if n % 100:
            np.testing.assert_array_equal(pp.bandpass(x, 100.0, low, high), expected)


def test_apply_equals_the_scipy_pipeline_on_real_records(shared_data):
    """Version 2 (float32, FFT forms) against version 1 (float64 scipy) on real Challenge records."""
    from ecgsearch_plugins.datasets._wfdb_header import read_header, read_raw, to_physical

    records = []
    for path in sorted((shared_data / "physionet2021" / "sample_records").glob("*.hea")):
        header = read_header(path)
        records.append(to_physical(read_raw(header, path), header))
    x = np.stack(records)
    x[2, 5, 1000:1100] = np.nan  # a gap, as real records have
    for prep in (Preprocessing(), Preprocessing(bandpass_high=40), Preprocessing(sampling_rate=250, leads=6),
                 Preprocessing(sampling_rate=500, seconds=8, normalize=False),
                 Preprocessing(sampling_rate=400, bandpass_low=1, bandpass_high=30, crop="start")):
        expected = np.stack([_scipy_pipeline(prep, r, 500, pp.STANDARD_LEADS) for r in x])
        got = prep.apply_batch(x, 500, pp.STANDARD_LEADS)
        assert got.shape == expected.shape and got.dtype == np.float32
        assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max(), prep


def test_apply_batch_layouts_agree_and_never_alias_the_input():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 12, 5000)).astype(np.float32).cumsum(axis=-1)
    x[1, 4, 100:110] = np.nan
    prep = Preprocessing(leads=8)
    single = np.stack([prep.apply(r, 500, pp.STANDARD_LEADS) for r in x])
    np.testing.assert_allclose(prep.apply_batch(x, 500, pp.STANDARD_LEADS), single, atol=2e-5)
    time_major = np.ascontiguousarray(x.transpose(0, 2, 1))  # (records, samples, leads), as .mat files store
    np.testing.assert_allclose(prep.apply_batch(time_major, 500, pp.STANDARD_LEADS, leads_last=True), single,
                               atol=2e-5)
    buffer = np.zeros((5, prep.padded_length(5000, 500), 12), np.float32)  # zero-padded for the FFT
    buffer[:, :5000] = time_major
    np.testing.assert_allclose(prep.apply_batch(buffer, 500, pp.STANDARD_LEADS, leads_last=True, samples=5000),
                               single, atol=2e-5)
    identity = Preprocessing(sampling_rate=500, bandpass_low=None, normalize=False)
    out = identity.apply_batch(x[[0]], 500, pp.STANDARD_LEADS)
    out[:] = 0
    assert np.isfinite(x[0]).all() and np.abs(x[0]).max() > 0  # the input is untouched
