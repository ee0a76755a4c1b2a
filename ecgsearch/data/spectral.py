"""FFT forms of ``scipy.signal.resample_poly`` and ``sosfiltfilt`` that give the same numbers, faster.

Decoding a dataset is dominated by these two calls (about 1 ms and 0.4 ms per 12-lead 10 s record);
the rest of the pipeline is cheap. Both are linear, so both can run as a product in the frequency
domain, batched over records and leads, in the input's precision (float32 halves the cost):

- ``resample_poly``: scipy filters the zero-stuffed signal with a Kaiser-windowed sinc (beta 5,
  ``20 * max(up, down) + 1`` taps) and keeps every ``down``-th sample, the record zero-padded at its
  ends. Here: one real FFT of the zero-padded record, the spectrum tiled ``up`` times, multiplied by
  the exact frequency response of that same filter, folded ``down`` times (aliasing included: that is
  what keeping every ``down``-th sample does) and inverse-transformed at the output length. With
  enough zero padding the circular convolution equals the linear one, so the output is scipy's own.
- ``sosfiltfilt`` (odd extension of ``padlen`` samples, each pass started in the steady state of its
  first value): its interior is a convolution with ``|H|^2``, done here as a circular convolution by
  FFT. What differs from scipy's output -- the start-up at both ends and the wrap-around of the
  circular convolution -- is a linear map of the record whose rank is at most twice the filter order
  (each edge adds the filter's natural modes); it is found once per (length, filter) with a
  randomized range finder on scipy's operator and its transpose and added as two thin matrix
  products. A check on a fresh random vector guards the factorisation; should it fail, scipy runs.

Where the FFT form would not pay (upsampling by more than ``UPSAMPLE_LIMIT``, very short or very long
records, or a band-pass length the caller expects to see once: ``fast=False``) scipy itself runs, so
every input gets scipy's numbers, to floating-point rounding.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import scipy.fft as sfft
from scipy import signal as sps

UPSAMPLE_LIMIT = 8  # the FFT runs at up x the input length: beyond this the polyphase filter is cheaper
FILTFILT_MIN, FILTFILT_MAX = 64, 20_000  # record lengths (samples) for which the low-rank form is used
OVERSAMPLE = 4  # extra probe vectors of the randomized range finder beyond the expected rank
CHECK_TOLERANCE = 1e-8  # relative error of the factorisation on a fresh vector (float64)
# The correction's matrix products run on row blocks of at most this many multiply-adds: OpenBLAS
# keeps such small products on the calling thread, and its worker threads, spinning between calls,
# would cost far more than they save (tens of milliseconds per call on a busy machine).
BLAS_BLOCK = 1 << 18


def _work_dtype(x: np.ndarray) -> np.dtype:
    """float32 stays float32 (as in scipy); everything else is computed in float64."""
    return np.dtype(np.float32) if x.dtype == np.float32 else np.dtype(np.float64)


@dataclass(frozen=True)
class _ResamplePlan:
    n_fft: int  # length of the input FFT (zero-padded record)
    n_dec: int  # length of the output inverse FFT (n_fft * up / down)
    n_out: int  # samples kept, as resample_poly returns
    source: np.ndarray  # (down, n_dec // 2 + 1) bin of the input spectrum folded into each output bin
    real_weight: np.ndarray  # filter gain / down, per folded bin
    imag_weight: np.ndarray  # the same, negated where the bin enters conjugated
    gain: np.ndarray  # up == 1: filter gain / down at the n_fft // 2 + 1 input bins (folded by slicing)
    tiled: dict = field(default_factory=dict, compare=False)  # gain repeated over trailing axes, by shape


@functools.lru_cache(maxsize=32)
def _resample_plan(n: int, up: int, down: int, dtype: str) -> _ResamplePlan:
    half = 10 * max(up, down)  # scipy's filter: 2 * half + 1 taps at the upsampled rate
    taps = sps.firwin(2 * half + 1, 1.0 / max(up, down), window=("kaiser", 5.0)) * up
    # Zero padding: the centred filter reaches half samples (upsampled) past either end, and the last
    # output sample sits up to down - 1 samples beyond the record; the FFT length must fold evenly.
    step = 2 * down // math.gcd(2 * down, up)
    n_fft = step * sfft.next_fast_len(math.ceil((n * up + half + down) / up / step), real=True)
    n_up = n_fft * up
    n_dec = n_up // down
    centred = np.zeros(n_up)
    centred[:half + 1] = taps[half:]
    centred[n_up - half:] = taps[:half]
    gain = sfft.rfft(centred).real  # the filter is symmetric: a real, zero-phase response
    bins = np.arange(n_dec // 2 + 1)[None, :] + n_dec * np.arange(down)[:, None]  # upsampled bins folded
    mirrored = bins > n_up // 2  # negative frequencies: the conjugate of the positive bin
    upsampled = np.where(mirrored, n_up - bins, bins)
    weight = gain[upsampled] / down
    tiled = upsampled % n_fft  # zero-stuffing tiles the input spectrum up times
    conjugate = mirrored ^ (tiled > n_fft // 2)
    source = np.where(tiled > n_fft // 2, n_fft - tiled, tiled)
    n_out = n * up // down + bool(n * up % down)
    return _ResamplePlan(n_fft, n_dec, n_out, source, weight.astype(dtype),
                         np.where(conjugate, -weight, weight).astype(dtype), (gain / down).astype(dtype))


def _fold(spectrum: np.ndarray, plan: _ResamplePlan, down: int, axis: int) -> np.ndarray:
    """Downsampling only (up == 1): the filtered spectrum's ``down`` segments along ``axis`` (< 0)
    summed, the upper half read backwards and conjugated (it mirrors the negative frequencies).
    Working along ``axis`` in place keeps every slice a contiguous block."""
    def along(start: int, stop: int, step: int = 1) -> tuple:
        return (Ellipsis, slice(start, stop, step)) + (slice(None),) * (-axis - 1)

    trailing = spectrum.shape[spectrum.ndim + axis + 1:]
    if trailing not in plan.tiled:  # repeated, not broadcast: numpy then runs one long loop
        tiled = np.broadcast_to(plan.gain.reshape((-1,) + (1,) * len(trailing)), plan.gain.shape + trailing)
        plan.tiled[trailing] = np.repeat(tiled, 2, axis=-1)  # real and imaginary parts alike
    filtered = spectrum  # this module's own temporary: filtered in place, as reals (a real gain)
    filtered.view(plan.gain.dtype).__imul__(plan.tiled[trailing])
    m, bins = plan.n_dec, plan.n_dec // 2 + 1
    out = filtered[along(0, bins)].copy()  # a copy: the mirrored blocks below read bin m / 2 again
    mirrored = None
    for r in range(1, down):
        if 2 * r + 1 <= down:  # segment r lies in the stored half: bins r*m + k
            out += filtered[along(r * m, r * m + bins)]
        else:  # bins (down - r)*m - k, k = 0..m/2: summed forwards, reversed and conjugated once below
            start = (down - r) * m - m // 2
            block = filtered[along(start, start + bins)]
            if mirrored is None:
                mirrored = block.copy()
            else:
                mirrored += block
    if mirrored is not None:
        out += np.conj(mirrored[along(bins - 1, None, -1)])
    return out


def fft_length(n: int, up: int, down: int, dtype: type = np.float32) -> int:
    """The zero-padded length ``resample_poly`` transforms ``n`` samples at (``n`` where it does not):
    a caller filling a buffer this long, zeros beyond ``n``, passes ``n=`` and saves the padded copy."""
    if up == down == 1 or up > UPSAMPLE_LIMIT or n < 2:
        return n
    return _resample_plan(n, up, down, np.dtype(dtype).str).n_fft


def resample_poly(x: np.ndarray, up: int, down: int, axis: int = -1, n: int | None = None) -> np.ndarray:
    """``scipy.signal.resample_poly(x, up, down, axis)`` (default window and padding), by FFT, with
    ``axis`` moved last in the result: samples stored time-major (``(samples, leads)``, as MATLAB and
    WFDB files hold them) come out lead-major, the transposition folded into the transforms.
    ``n``: the record is the first ``n`` samples along ``axis``, zeros follow (see ``fft_length``)."""
    x = np.asarray(x)
    dtype = _work_dtype(x)
    axis = axis % x.ndim - x.ndim
    length = x.shape[axis]
    n = length if n is None else n
    record = x[(Ellipsis, slice(0, n)) + (slice(None),) * (-axis - 1)]
    if up == down == 1:
        return np.moveaxis(record, axis, -1).astype(dtype, copy=True)
    if up > UPSAMPLE_LIMIT or n < 2:
        return sps.resample_poly(np.moveaxis(record, axis, -1).astype(dtype, copy=False), up, down, axis=-1)
    plan = _resample_plan(n, up, down, dtype.str)
    padded = x if length == plan.n_fft else record  # the caller's zero padding, else pocketfft's
    spectrum = sfft.rfft(padded.astype(dtype, copy=False), n=plan.n_fft, axis=axis)
    if up == 1:
        out = np.moveaxis(sfft.irfft(_fold(spectrum, plan, down, axis), n=plan.n_dec, axis=axis), axis, -1)
    else:
        folded = np.moveaxis(spectrum, axis, -1)[..., plan.source]  # (..., down, bins): tiling repeats bins
        out = sfft.irfft(np.einsum("...rk,rk->...k", folded.real, plan.real_weight) + 1j * np.einsum(
            "...rk,rk->...k", folded.imag, plan.imag_weight), n=plan.n_dec, axis=-1)
    return np.ascontiguousarray(out[..., :plan.n_out], dtype=dtype)


def _sosfiltfilt_transpose(sos: np.ndarray, u: np.ndarray, padlen: int) -> np.ndarray:
    """The transpose of ``sosfiltfilt(sos, ., padlen=padlen)`` applied to the rows of ``u``.

    scipy computes ``crop(R (F R + phi e_last') (F + phi e_0') odd_ext(x))``: F the zero-state causal
    filter, R time reversal, phi the free response from the steady state ``sosfilt_zi``. F' = R F R,
    so the transpose is two more ``sosfilt`` passes, two dot products and the adjoint of odd_ext.
    """
    n = u.shape[-1]
    length = n + 2 * padlen
    free = sps.sosfilt(sos, np.zeros(length), zi=sps.sosfilt_zi(sos))[0]
    v = np.zeros(u.shape[:-1] + (length,))
    v[..., padlen:padlen + n] = u
    w = sps.sosfilt(sos, v, axis=-1)
    w[..., -1] += np.einsum("...n,n->...", v, free[::-1])
    z = sps.sosfilt(sos, w[..., ::-1], axis=-1)[..., ::-1].copy()
    z[..., 0] += np.einsum("...n,n->...", w, free)
    out = z[..., padlen:padlen + n].copy()
    if padlen:
        left = z[..., padlen - 1::-1]  # ext[padlen - k] = 2 x[0] - x[k], k = 1..padlen
        right = z[..., padlen + n:]  # ext[padlen + n - 1 + k] = 2 x[-1] - x[-1 - k]
        out[..., 0] += 2 * left.sum(axis=-1)
        out[..., 1:padlen + 1] -= left
        out[..., -1] += 2 * right.sum(axis=-1)
        out[..., n - padlen - 1:n - 1] -= right[..., ::-1]
    return out


@dataclass(frozen=True)
class _FiltfiltPlan:
    n_fft: int
    gain: np.ndarray  # |H|^2 at the FFT bins
    left: np.ndarray  # (k, n): correction = (x @ left.T) @ right
    right: np.ndarray  # (k, n)


def _circular(x: np.ndarray, gain: np.ndarray, n_fft: int) -> np.ndarray:
    n = x.shape[-1]
    return sfft.irfft(sfft.rfft(x, n=n_fft, axis=-1) * gain, n=n_fft, axis=-1)[..., :n]


@functools.lru_cache(maxsize=16)
def _filtfilt_plan(n: int, sos_bytes: bytes, sections: int, padlen: int, dtype: str) -> _FiltfiltPlan | None:
    sos = np.frombuffer(sos_bytes, dtype=np.float64).reshape(sections, 6).copy()
    n_fft = sfft.next_fast_len(n, real=True)
    _, response = sps.sosfreqz(sos, worN=np.arange(n_fft // 2 + 1) / n_fft, fs=1.0)
    gain = np.abs(response) ** 2
    rank = 4 * sections + OVERSAMPLE  # each edge adds the 2 * sections poles' modes, forward and back
    rng = np.random.default_rng(n)
    probes = rng.standard_normal((rank + 1, n))

    def error(x: np.ndarray) -> np.ndarray:  # scipy minus the plain circular convolution
        return sps.sosfiltfilt(sos, x, axis=-1, padlen=padlen) - _circular(x, gain, n_fft)

    # Small products only (einsum, 1-D dots, a k x k eigh): LAPACK's QR/SVD would start BLAS threads.
    basis = _orthonormal_rows(error(probes[:-1]))  # (k, n): the range of the error E
    coupling = _sosfiltfilt_transpose(sos, basis, padlen) - _circular(basis, gain, n_fft)  # (E' q_i)'
    # E = basis' coupling; keep the directions of coupling that carry it (eigenvectors of its Gram).
    values, vectors = np.linalg.eigh(np.einsum("in,jn->ij", coupling, coupling))
    keep = vectors[:, values > values[-1] * 1e-20]  # the exact rank: the rest is rounding (~1e-32)
    left, right = np.einsum("ik,in->kn", keep, coupling), np.einsum("ik,in->kn", keep, basis)
    check = probes[-1]
    expected = error(check[None])[0]
    approx = np.einsum("kn,k->n", right, np.einsum("kn,n->k", left, check))
    if np.linalg.norm(approx - expected) > CHECK_TOLERANCE * np.linalg.norm(expected):
        return None
    return _FiltfiltPlan(n_fft, gain.astype(dtype), left.astype(dtype), right.astype(dtype))


def _orthonormal_rows(rows: np.ndarray) -> np.ndarray:
    """An orthonormal basis of the span of ``rows`` (Gram-Schmidt, twice), numerically null rows dropped."""
    basis: list[np.ndarray] = []
    scale = max(float(np.sqrt(np.dot(row, row))) for row in rows)
    for row in rows:
        for _ in range(2):
            for q in basis:
                row = row - np.dot(q, row) * q
        norm = float(np.sqrt(np.dot(row, row)))
        if norm > 1e-13 * scale:
            basis.append(row / norm)
    return np.array(basis)


def sosfiltfilt(sos: np.ndarray, x: np.ndarray, padlen: int, fast: bool = True) -> np.ndarray:
    """``scipy.signal.sosfiltfilt(sos, x, axis=-1, padlen=padlen)`` (odd padding), by FFT.

    The FFT form needs a plan per (length, filter), built in a few milliseconds (about what scipy
    takes for ten 12-lead records): ``fast=False`` runs scipy, for lengths seen once. The choice
    must not depend on history (which lengths came before), or a rebuilt cache would differ.
    """
    x = np.asarray(x)
    dtype = _work_dtype(x)
    n = x.shape[-1]
    sos = np.ascontiguousarray(sos, dtype=np.float64)
    plan = None
    if fast and FILTFILT_MIN <= n <= FILTFILT_MAX:
        plan = _filtfilt_plan(n, sos.tobytes(), len(sos), padlen, dtype.str)
    if plan is None:
        return sps.sosfiltfilt(sos, x.astype(dtype, copy=False), axis=-1, padlen=padlen).astype(dtype, copy=False)
    flat = x.reshape(-1, n).astype(dtype, copy=False)
    out = _circular(flat, plan.gain, plan.n_fft).astype(dtype, copy=False)
    step = max(1, BLAS_BLOCK // (len(plan.left) * n))
    for start in range(0, len(flat), step):
        out[start:start + step] += (flat[start:start + step] @ plan.left.T) @ plan.right
    return out.reshape(x.shape)
