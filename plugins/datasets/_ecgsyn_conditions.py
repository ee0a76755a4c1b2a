"""The physiology of the synthetic dataset: its classes and how each one shapes an ECGSYN trace.

Wave timings are chosen in seconds relative to the R peak (so that PR, QRS and QT mean what a
cardiologist means) and converted to ECGSYN's phase angles, undoing the heart-rate scaling that
ECGSYN applies internally (``ti * sqrt(sqrt(hr/60))``, ``bi * sqrt(hr/60)``). One ECGSYN call per
record (the costly part, ~60 ms for 10 s) gives a trace that is projected onto the 12 leads with
record-specific gains, then per-lead noise and baseline wander are added.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ecgsearch_plugins.datasets._ecgsyn import Ecgsyn, ecgsyn_trace, internal_rate

# SNOMED-CT codes of scored PhysioNet/CinC 2021 classes (tests check them against dx_mapping_scored.csv).
NSR, SB, STACH, SA = "426783006", "426177001", "427084000", "427393009"
IAVB, NSIVCB, LQT, TINV, LQRSV = "270492004", "698252002", "111975006", "59931005", "251146004"

RHYTHMS: tuple[str, ...] = (NSR, SB, STACH, SA)
ABNORMALITIES: tuple[str, ...] = (IAVB, NSIVCB, LQT, TINV, LQRSV)
CLASSES: tuple[str, ...] = RHYTHMS + ABNORMALITIES
ABBREVIATIONS: dict[str, str] = {
    NSR: "NSR", SB: "SB", STACH: "STach", SA: "SA",
    IAVB: "IAVB", NSIVCB: "NSIVCB", LQT: "LQT", TINV: "TInv", LQRSV: "LQRSV",
}
RHYTHM_FRACTIONS: dict[str, float] = {NSR: 0.4, SB: 0.2, STACH: 0.2, SA: 0.2}
ABNORMALITY_FRACTION = 0.2

STANDARD_LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF",
                                   "V1", "V2", "V3", "V4", "V5", "V6")

# Heart rate (bpm) and RR coefficient of variation per rhythm; sinus arrhythmia differs from NSR only
# by its large respiratory RR variation.
HEART_RATE = {NSR: (60.0, 100.0), SB: (40.0, 58.0), STACH: (102.0, 150.0), SA: (60.0, 100.0)}
RR_VARIATION = {NSR: (0.005, 0.02), SB: (0.005, 0.02), STACH: (0.005, 0.02), SA: (0.09, 0.14)}

# Precordial leads: gain on the trace and on its (scaled) derivative, which turns the dominant R of
# V5-V6 into the rS of V1-V2 (R-wave progression).
PRECORDIAL_GAIN = (-0.45, -0.2, 0.4, 1.1, 1.2, 1.0)
PRECORDIAL_SLOPE = (0.35, 0.8, 0.8, 0.4, 0.1, 0.0)
DERIVATIVE_SCALE_S = 0.012

# Peak-to-peak of the largest limb lead (mV): low QRS voltage is < 0.5 mV in every limb lead.
LIMB_PTP_MV = (0.8, 2.0)
LOW_LIMB_PTP_MV = (0.25, 0.42)

SETTINGS = {
    "heart_rate_bpm": {k: list(v) for k, v in HEART_RATE.items()},
    "rr_variation": {k: list(v) for k, v in RR_VARIATION.items()},
    "pr_interval_ms": {"normal": [120, 190], IAVB: [220, 300]},
    "qrs_ms": {"normal": [80, 107], NSIVCB: [145, 196]},
    "qtc_ms": {"normal": [370, 430], LQT: [490, 560]},
    "t_amplitude": {"normal": [0.2, 0.35], TINV: [-0.3, -0.15]},
    "limb_ptp_mv": {"normal": list(LIMB_PTP_MV), LQRSV: list(LOW_LIMB_PTP_MV)},
    "qrs_axis_deg": [-15, 80],
}


INTERVAL_NAMES: tuple[str, ...] = ("hr_bpm", "pr_ms", "qrs_ms", "qt_ms")


class Intervals(NamedTuple):
    """A record's regression targets as constructed: mean heart rate (bpm) and PR, QRS, QT (ms)."""

    hr_bpm: float
    pr_ms: float
    qrs_ms: float
    qt_ms: float


def ecgsyn_parameters(rng: np.random.Generator, labels: set[str]) -> Ecgsyn:
    """The ECGSYN arguments of a record (see :func:`draw_waves`, which also gives its intervals)."""
    return draw_waves(rng, labels)[0]


def draw_waves(rng: np.random.Generator, labels: set[str]) -> tuple[Ecgsyn, Intervals]:
    """Draw a record's heart rate and P, Q, R, S, T waves (time, relative amplitude, width).

    Every choice takes one draw whatever the labels, so a record and its twin with one more label
    share all other draws and differ only in what that label changes. Intervals follow their
    clinical definitions: QRS = Q onset to S end, PR = P onset to QRS onset, QT = QRS onset to T end
    (onset/end = 2 Gaussian widths from the peak), QTc = QT / sqrt(RR). The intervals returned are
    those of the waves as placed (after the clamps below), at the requested rate; ``hr_bpm`` is that
    rate, which :func:`synthesize` replaces by the rate the record actually has.
    """
    rhythm = next(code for code in RHYTHMS if code in labels)
    hr = rng.uniform(*HEART_RATE[rhythm])
    hr_std = hr * rng.uniform(*RR_VARIATION[rhythm])
    rr = 60.0 / hr

    wide = NSIVCB in labels  # QRS 145-196 ms instead of 80-107 ms
    sigma_r = rng.uniform(0.018, 0.024) if wide else rng.uniform(0.010, 0.013)
    qs_offset = rng.uniform(0.040, 0.055) if wide else rng.uniform(0.022, 0.030)
    sigma_q = sigma_s = 0.9 * sigma_r
    qrs_onset = qs_offset + 2 * sigma_q  # before the R peak
    sigma_p = rng.uniform(0.018, 0.025)
    pr_interval = rng.uniform(0.22, 0.30) if IAVB in labels else rng.uniform(0.12, 0.19)
    # P peak before R; at fast rates a long PR pushes P into the previous T wave, as in real ECGs,
    # but never past 75 % of the cycle (which keeps PR >= 238 ms up to 150 bpm).
    p_peak = min(pr_interval + qrs_onset - 2 * sigma_p, 0.75 * rr)
    qtc = rng.uniform(0.49, 0.56) if LQT in labels else rng.uniform(0.37, 0.43)
    sigma_t = rng.uniform(0.040, 0.055) * math.sqrt(rr) * (1.3 if LQT in labels else 1.0)
    t_peak = max(qtc * math.sqrt(rr) - qrs_onset - 2 * sigma_t, qs_offset + 2 * sigma_s + sigma_t)

    times = (-p_peak, -qs_offset, 0.0, qs_offset, t_peak)
    sigmas = (sigma_p, sigma_q, sigma_r, sigma_s, sigma_t)
    amplitudes = (
        rng.uniform(0.10, 0.18),
        -rng.uniform(0.05, 0.15),
        1.0,
        -rng.uniform(0.15, 0.40),
        -rng.uniform(0.15, 0.30) if TINV in labels else rng.uniform(0.20, 0.35),
    )
    # ECGSYN scales angles by (hr/60)^[1/4, 1/2, 0, 1/2, 1/4] and widths by (hr/60)^1/2; undo it.
    hrfact = math.sqrt(hr / 60.0)
    angle_factor = (math.sqrt(hrfact), hrfact, 1.0, hrfact, math.sqrt(hrfact))
    omega = 2 * math.pi / rr
    # ECGSYN changes the RR interval where the phase crosses 0; with the R wave there, every RR change
    # leaves a baseline step (as large as the relative RR change). Put phase 0 in the quiet T-P segment.
    theta = [360.0 * t / rr for t in times]
    t_end = theta[4] + 2 * 360.0 * sigma_t / rr
    p_start = theta[0] - 2 * 360.0 * sigma_p / rr + 360.0
    quiet = (t_end + p_start) / 2
    ti = tuple((th - quiet) / f for th, f in zip(theta, angle_factor))
    b_internal = tuple(omega * s for s in sigmas)
    bi = tuple(b / hrfact for b in b_internal)
    # A Gaussian forcing of height a and width b on the phase gives a wave of height ~ a*b^2/omega.
    ai = tuple(a * omega / b**2 for a, b in zip(amplitudes, b_internal))
    intervals = Intervals(hr_bpm=hr, pr_ms=1000.0 * (p_peak + 2 * sigma_p - qrs_onset),
                          qrs_ms=1000.0 * 2 * qrs_onset, qt_ms=1000.0 * (qrs_onset + t_peak + 2 * sigma_t))
    return Ecgsyn(hr, hr_std, ti, ai, bi, min(sigmas)), intervals


def lead_matrix(rng: np.random.Generator, labels: set[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-lead gains on the trace and on its derivative, shape ``(12,)`` each, in mV.

    Limb leads follow Einthoven and Goldberger from a random electrical axis (so III = II - I and
    aVR is negative); precordial leads follow a jittered R-wave progression.
    """
    axis = math.radians(rng.uniform(-15.0, 80.0))
    g_i, g_ii = math.cos(axis), math.cos(axis - math.radians(60.0))
    limb = np.array([g_i, g_ii, g_ii - g_i, -(g_i + g_ii) / 2, g_i - g_ii / 2, g_ii - g_i / 2])
    target = rng.uniform(*(LOW_LIMB_PTP_MV if LQRSV in labels else LIMB_PTP_MV))
    scale = target / np.abs(limb).max()
    chest = rng.uniform(1.0, 1.5)
    gain = np.concatenate([limb, chest * (np.array(PRECORDIAL_GAIN) + rng.normal(0, 0.1, 6))]) * scale
    slope = np.concatenate([np.zeros(6), chest * (np.array(PRECORDIAL_SLOPE) + rng.normal(0, 0.1, 6))])
    return gain, slope * scale


def lead_noise(rng: np.random.Generator, samples: int, sampling_rate: float) -> np.ndarray:
    """Per-lead white noise and baseline wander (mV), shape ``(12, samples)``."""
    t = np.arange(samples) / sampling_rate
    white = rng.normal(0.0, 1.0, (12, samples)) * rng.uniform(0.005, 0.02, (12, 1))
    freq = rng.uniform(0.05, 0.5, (12, 2, 1))
    amp = rng.uniform(0.0, 0.08, (12, 2, 1))
    phase = rng.uniform(0.0, 2 * math.pi, (12, 2, 1))
    wander = (amp * np.sin(2 * math.pi * freq * t + phase)).sum(axis=1)
    return white + wander


def assign_labels(records: int, seed: int) -> np.ndarray:
    """Multilabel targets ``(records, len(CLASSES))`` with exact class fractions, shuffled by seed.

    Exact counts (rather than coin flips) make every class present even in small datasets.
    """
    rng = np.random.default_rng([seed, 2])
    targets = np.zeros((records, len(CLASSES)), dtype=np.float32)
    counts = {code: round(frac * records) for code, frac in RHYTHM_FRACTIONS.items() if code != NSR}
    rhythm = np.concatenate([np.full(counts[code], CLASSES.index(code)) for code in counts])
    rhythm = np.concatenate([rhythm, np.full(records - len(rhythm), CLASSES.index(NSR))])
    targets[np.arange(records), rng.permutation(rhythm)] = 1.0
    positives = max(1, round(ABNORMALITY_FRACTION * records))
    for code in ABNORMALITIES:
        targets[rng.permutation(records)[:positives], CLASSES.index(code)] = 1.0
    return targets


def synthesize_record(seed: int, index: int, labels: set[str], seconds: float,
                      sampling_rate: float) -> np.ndarray:
    """One record's 12 standard leads in mV, ``(12, round(seconds * sampling_rate))`` float64."""
    return synthesize(seed, index, labels, seconds, sampling_rate)[0]


def mean_heart_rate(z: np.ndarray, rate: float, start: float, stop: float, requested: float) -> float:
    """Mean rate (bpm) of the R waves of a clean ECGSYN trace between ``start`` and ``stop`` seconds.

    ECGSYN's RR process wanders around the requested rate (by several bpm over 10 s with sinus
    arrhythmia), so the target is the rate of the beats the record holds: R waves are the tallest,
    noise-free peaks of the trace. Under two beats in the window, the requested rate is all there is.
    """
    from scipy.signal import find_peaks

    rr = 60.0 / requested
    peaks, _ = find_peaks(z, distance=max(1, int(0.6 * rr * rate)), prominence=0.5 * np.ptp(z))
    times = peaks / rate
    times = times[(times >= start) & (times < stop)]
    if len(times) < 2:
        return float(requested)
    return float(60.0 * (len(times) - 1) / (times[-1] - times[0]))


def synthesize(seed: int, index: int, labels: set[str], seconds: float,
               sampling_rate: float, patient: int | None = None) -> tuple[np.ndarray, Intervals]:
    """One record's 12 standard leads in mV, ``(12, round(seconds * sampling_rate))`` float64, and its
    intervals. Randomness comes only from ``(seed, index)``, so a record is the same in any worker.
    patient: the record's patient when a patient has several records: the waves (heart rate, timings,
    amplitudes) and lead geometry then come from ``(seed, patient)``, shared by the patient's records,
    and only the beat-to-beat variation, the first beat's phase, noise and wander from the record.
    """
    rng = np.random.default_rng([seed, 0, index])
    traits = rng if patient is None else np.random.default_rng([seed, 5, patient])
    params, intervals = draw_waves(traits, labels)
    rate = internal_rate(float(sampling_rate))
    offset = rng.uniform(0.05, 0.3)  # random phase of the first beat
    z = ecgsyn_trace(params, seconds + 0.35, rate, np.random.default_rng([seed, 1, index]))
    t_in = np.arange(len(z)) / rate
    samples = round(seconds * sampling_rate)
    t_out = offset + np.arange(samples) / sampling_rate
    trace = np.interp(t_out, t_in, z)
    slope = np.interp(t_out, t_in, np.gradient(z, 1.0 / rate) * DERIVATIVE_SCALE_S)
    flat = np.abs(np.diff(trace, prepend=trace[0]))
    trace -= np.median(trace[flat <= np.quantile(flat, 0.3)])  # isoelectric line at 0 mV
    ptp = max(float(np.ptp(trace)), 1e-9)
    gain, slope_gain = lead_matrix(traits, labels)
    leads = gain[:, None] * (trace / ptp) + slope_gain[:, None] * (slope / ptp)
    hr = mean_heart_rate(z, rate, offset, offset + samples / sampling_rate, params.heart_rate)
    return leads + lead_noise(rng, samples, sampling_rate), intervals._replace(hr_bpm=hr)
