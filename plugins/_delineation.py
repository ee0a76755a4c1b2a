"""One lead of an ECG delineated by neurokit2 (R peaks, then the DWT wave positions), and what follows
from the positions: per-beat PR, QRS and QT intervals. Shared by the ``deepfake`` dataset (its
targets) and the ``features_gbm`` model (its features)."""

from __future__ import annotations

import warnings

import numpy as np


class DelineationError(ValueError):
    """The lead could not be delineated; the message says why, in a few words."""


def delineate(signal: np.ndarray, sampling_rate: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(R peak sample indices, {neurokit2 wave key: positions as floats, NaN where a beat lacks it}))``.

    Raises ``DelineationError`` when fewer than 3 R peaks are found or neurokit2 fails.
    """
    import neurokit2 as nk

    hz = int(round(sampling_rate))
    with warnings.catch_warnings():  # neurokit2 warns on every imperfect beat; failures are raised
        warnings.simplefilter("ignore")
        try:
            signal = np.asarray(signal, dtype=np.float64)
            _, info = nk.ecg_peaks(signal, sampling_rate=hz)
            rpeaks = np.asarray(info["ECG_R_Peaks"], dtype=np.int64)
            if len(rpeaks) < 3:
                raise DelineationError(f"only {len(rpeaks)} R peak(s) found")
            _, waves = nk.ecg_delineate(signal, rpeaks, sampling_rate=hz, method="dwt")
        except DelineationError:
            raise
        except Exception as error:  # neurokit2 raises many kinds on degenerate signals
            raise DelineationError(f"delineation failed: {type(error).__name__}: {error}") from None
    return rpeaks, {key: np.asarray(value, dtype=np.float64) for key, value in waves.items()}


def beat_intervals(waves: dict[str, np.ndarray], sampling_rate: float) -> dict[str, np.ndarray]:
    """Per beat, in ms: PR = QRS onset - P onset, QRS = QRS offset - QRS onset, QT = T offset - QRS onset
    (NaN where a position is missing; over the beats that have all four positions)."""
    ms = 1000.0 / sampling_rate

    def wave(key: str) -> np.ndarray:
        return waves.get(key, np.zeros(0))

    p_on, qrs_on, qrs_off, t_off = (wave("ECG_P_Onsets"), wave("ECG_R_Onsets"), wave("ECG_R_Offsets"),
                                    wave("ECG_T_Offsets"))
    beats = min(map(len, (p_on, qrs_on, qrs_off, t_off)))
    return {"pr_ms": (qrs_on[:beats] - p_on[:beats]) * ms,
            "qrs_ms": (qrs_off[:beats] - qrs_on[:beats]) * ms,
            "qt_ms": (t_off[:beats] - qrs_on[:beats]) * ms}


def positive_median(series: np.ndarray) -> float:
    """The median of the finite, positive values (NaN when there are none)."""
    series = series[np.isfinite(series) & (series > 0)]
    return float(np.median(series)) if len(series) else float("nan")
