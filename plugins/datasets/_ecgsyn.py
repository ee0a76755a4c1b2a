"""One ECGSYN trace from neurokit2, made safe and exact enough for narrow QRS complexes.

``neurokit2.ecg_simulate(method="ecgsyn")`` has three properties that matter at scale:

* It can hang: it upsamples the 1 Hz RR series with ``scipy.ndimage.zoom``; at some rates (100 and
  500 Hz among them) the last sample comes back 0, and its loop building the RR step function never
  ends when a beat lands there. :func:`internal_rate` picks a rate where that cannot happen.
* It integrates with ``solve_ivp``'s defaults, whose steps (bounded only by the smooth phase
  oscillator) can straddle a 10 ms wide R wave: about a quarter of records then get a missing QRS or a
  baseline step. A ``max_step`` of three widths of the narrowest wave removes that.
* It integrates the next power of two of seconds (16 s for a 10 s record) and then throws the rest
  away, a third of the cost. Integration stops at the requested duration instead.

neurokit2 exposes no solver options, so during the call its module sees a ``scipy`` whose
``integrate.solve_ivp`` adds ``max_step`` and clips the interval; everything else is the real scipy.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import math
import threading
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

INTERNAL_RATES = (512, 1024, 2048)  # powers of two: see internal_rate()
_SWAP_LOCK = threading.Lock()


@dataclass(frozen=True)
class Ecgsyn:
    """The arguments of one ``neurokit2.ecg_simulate(method="ecgsyn")`` call."""

    heart_rate: float
    heart_rate_std: float
    ti: tuple[float, ...]
    ai: tuple[float, ...]
    bi: tuple[float, ...]
    narrowest_s: float  # the narrowest wave's Gaussian width in seconds (bounds the ODE step)


@functools.lru_cache(maxsize=None)
def internal_rate(min_rate: float) -> int:
    """An ECGSYN rate (Hz) >= ``min_rate`` whose RR upsampling never yields 0 for any RR length
    a record can need (2..1024 s); it depends only on the lengths, so the choice is deterministic."""
    from neurokit2 import signal_resample

    for rate in INTERNAL_RATES:
        if rate >= min_rate and all(
            signal_resample(np.ones(2**k), sampling_rate=1, desired_sampling_rate=rate).min() > 0.5
            for k in range(1, 11)
        ):
            return rate
    raise RuntimeError(f"no ECGSYN integration rate >= {min_rate:g} Hz is safe with this neurokit2 "
                       f"(tried {INTERNAL_RATES}); install another neurokit2 or scipy version.")


class _Integrate:
    """``scipy.integrate`` with a bounded-step, clipped ``solve_ivp``."""

    def __init__(self, real: Any, max_step: float, t_end: float) -> None:
        self._real, self._max_step, self._t_end = real, max_step, t_end

    def solve_ivp(self, fun: Any, t_span: Any, y0: Any, t_eval: Any = None, **kwargs: Any) -> Any:
        end = min(float(t_span[1]), self._t_end)
        if t_eval is not None:
            t_eval = np.asarray(t_eval)[np.asarray(t_eval) <= end]
        kwargs.setdefault("max_step", self._max_step)
        return self._real.solve_ivp(fun, (t_span[0], end), y0, t_eval=t_eval, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _Scipy:
    def __init__(self, real: Any, integrate: _Integrate) -> None:
        self._real, self.integrate = real, integrate

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@contextlib.contextmanager
def _solver_options(max_step: float, t_end: float) -> Iterator[None]:
    """Give neurokit2's ecg_simulate module the adjusted scipy for the duration of one call."""
    module = importlib.import_module("neurokit2.ecg.ecg_simulate")
    with _SWAP_LOCK:
        real = module.scipy
        module.scipy = _Scipy(real, _Integrate(importlib.import_module("scipy.integrate"), max_step, t_end))
        try:
            yield
        finally:
            module.scipy = real


def ecgsyn_trace(params: Ecgsyn, duration: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """``duration`` seconds of ECGSYN at ``rate`` Hz, float64, its start-up transient removed."""
    import neurokit2 as nk  # here, not at import: listing the plugin must not pay for neurokit2
    from scipy.ndimage import median_filter

    length = int(math.ceil(duration * rate))
    # neurokit2 makes round(duration * hr / 60) beats; with RR variability they can end before the
    # record does. Ask for spare beats (the clipped integration below keeps their cost small) and trim.
    padded = duration + max(2.0, 0.25 * duration)
    with _solver_options(max_step=3.0 * params.narrowest_s, t_end=(length + 1) / rate):
        z = np.asarray(nk.ecg_simulate(
            duration=padded, sampling_rate=rate, heart_rate=params.heart_rate,
            heart_rate_std=params.heart_rate_std, method="ecgsyn", noise=0.0, random_state=rng,
            ti=params.ti, ai=params.ai, bi=params.bi,
        ), dtype=np.float64)[:length]
    if len(z) != length:
        raise RuntimeError(f"neurokit2 ECGSYN returned {len(z)} samples instead of {length}")
    # ECGSYN starts its z state off the limit cycle; the deviation decays exactly as exp(-t): fit it
    # on a one-beat moving median (the isoelectric level) and subtract it.
    t = np.arange(length) / rate
    step = max(1, rate // 128)
    beat = max(3, round(60.0 / params.heart_rate * rate / step))
    level = median_filter(z[::step], size=beat, mode="nearest")
    design = np.stack([np.ones_like(level), np.exp(-t[::step])], axis=1)
    return z - np.linalg.lstsq(design, level, rcond=None)[0][1] * np.exp(-t)
