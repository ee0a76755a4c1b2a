"""A tolerant reader of WFDB ``.hea`` headers and MATLAB v4 ``val`` signals, as PhysioNet 2021 ships them.

``wfdb.rdheader`` rejects some real Challenge headers (a ``.mat`` in the record name on line 1, in
Georgia v1.0.2), so this module parses the three layouts seen in the wild itself:

- original:  ``A0001 12 500 7500 05-Feb-2020 11:39:16`` / ``A0001.mat 16+24 1000/mV 16 0 28 -1716 0 I`` /
  ``#Dx: 164889003``;
- wfdb-rewritten: no date, ``16x1+24 1000.0(0)/mV``, ``# Dx: ...``;
- ``E07835.mat 12 500 5000`` (record name with the extension).

Only what the Challenge records use is supported: one signal file, format 16, a gain per lead.
The ``.mat`` files are MATLAB v4 (a 20-byte header, the name ``val``, int16 column-major): they are
read directly with ``np.frombuffer`` (about 10x faster than ``scipy.io.loadmat``); any file that is
not a complete plain v4 file goes to ``scipy.io.loadmat``, whose messages explain what is wrong.
"""

from __future__ import annotations

import functools
import math
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MISSING_RAW = -32768  # WFDB format 16 "no sample" value
DEFAULT_GAIN = 200.0  # WFDB: a gain of 0 or none means 200 ADC units per physical unit
# "1000", "1000/mV", "1000.0(0)/mV": gain, optional (baseline), optional /units
_GAIN = re.compile(r"^(?P<gain>[-+]?[\d.]+(?:[eE][-+]?\d+)?)(?:\((?P<baseline>[-+]?\d+)\))?"
                   r"(?:/(?P<units>\S+))?$")


# MATLAB v4 precision digit P of the type code (M*1000 + O*100 + P*10 + T) -> numpy type.
_V4_TYPES = {0: "f8", 1: "f4", 2: "i4", 3: "i2", 4: "u2", 5: "u1"}


class RecordError(ValueError):
    """A record that cannot be read (corrupt header or signal file); readers skip it with the reason."""


@dataclass(frozen=True)
class Header:
    """What a reader needs from one ``.hea``; ``comments`` maps ``Age``/``Sex``/``Dx``... to raw text."""

    record: str
    n_sig: int
    fs: float
    n_samples: int
    file_name: str
    fmt: str
    gains: tuple[float, ...]
    baselines: tuple[int, ...]
    units: tuple[str, ...]
    lead_names: tuple[str, ...]
    comments: dict[str, str] = field(default_factory=dict)


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RecordError(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise RecordError(f"{what} {text!r} is not a finite number")
    return value


@functools.lru_cache(maxsize=256)
def _signal_format(field: str) -> str:
    """``16``, ``16+24``, ``16x1+24`` -> ``16`` (fields repeat on every line: parsed once each)."""
    return re.split(r"[x:+]", field)[0]


@functools.lru_cache(maxsize=256)
def _gain_field(field: str) -> tuple[float, int | None, str] | None:
    """``1000/mV``, ``1000.0(0)/mV`` -> (gain, baseline or None, units); None when unreadable."""
    match = _GAIN.match(field)
    if match is None:
        return None
    baseline = int(match["baseline"]) if match["baseline"] else None
    return _number(match["gain"], "gain"), baseline, match["units"] or "mV"


def _integer(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:  # "1e3", "12.0", or not a number: the general parser decides
        return int(_number(text, what))


def parse_header(text: str) -> Header:
    """Parse header text; raise ``RecordError`` naming the problem when it is not a usable header."""
    lines = [line.strip() for line in text.splitlines()]
    comments: dict[str, str] = {}
    body: list[str] = []
    for line in lines:
        if line.startswith("#"):
            key, sep, value = line.lstrip("#").partition(":")
            if sep:
                comments[key.strip()] = value.strip()
        elif line:
            body.append(line)
    if not body:
        raise RecordError("the header has no record line")
    first = body[0].split()
    if len(first) < 4:
        raise RecordError(f"the record line {body[0]!r} lacks a signal count, rate or length")
    record = first[0].split("/")[0]
    record = record[:-4] if record.lower().endswith(".mat") else record
    n_sig = int(_number(first[1], "signal count"))
    fs = _number(first[2].split("/")[0].split("(")[0], "sampling rate")
    n_samples = int(_number(first[3], "sample count"))
    if n_sig < 1 or fs <= 0 or n_samples < 1:
        raise RecordError(f"the record line {body[0]!r} gives no signals, rate or samples")
    signals = body[1:]
    if len(signals) != n_sig:
        raise RecordError(f"the header announces {n_sig} signals but describes {len(signals)}")
    files, fmts, gains, baselines, units, names = set(), set(), [], [], [], []
    for line in signals:
        parts = line.split()
        if len(parts) < 2:
            raise RecordError(f"signal line {line!r} lacks a format")
        files.add(parts[0])
        fmts.add(_signal_format(parts[1]))
        field = _gain_field(parts[2]) if len(parts) > 2 else (0.0, None, "mV")
        if field is None:
            raise RecordError(f"signal line {line!r} has an unreadable gain {parts[2]!r}")
        gain, baseline, unit = field
        adc_zero = _integer(parts[4], "ADC zero") if len(parts) > 4 else 0
        gains.append(gain or DEFAULT_GAIN)
        baselines.append(adc_zero if baseline is None else baseline)
        units.append(unit)
        names.append(" ".join(parts[8:]) if len(parts) > 8 else f"lead{len(names) + 1}")
    if len(files) != 1 or len(fmts) != 1:
        raise RecordError(f"signals span {len(files)} files in {len(fmts)} formats; "
                          "expected one file in format 16")
    fmt = fmts.pop()
    if fmt != "16":
        raise RecordError(f"signal format {fmt} is not supported (PhysioNet 2021 uses format 16)")
    return Header(record=record, n_sig=n_sig, fs=fs, n_samples=n_samples, file_name=files.pop(), fmt=fmt,
                  gains=tuple(gains), baselines=tuple(baselines), units=tuple(units),
                  lead_names=tuple(names), comments=comments)


def read_header(path: Path | str) -> Header:
    try:
        with open(path, "rb", buffering=0) as handle:  # unbuffered bytes: one read, decoded below
            text = handle.read().decode("utf-8", errors="replace")
    except OSError as error:
        raise RecordError(f"cannot read the header ({error.strerror or error})") from None
    return parse_header(text)


def read_v4_val(data: bytes | bytearray) -> np.ndarray | None:
    """The ``val`` matrix of the bytes of a MATLAB v4 file, or None when they are not a complete plain
    v4 file holding one (scipy then reads the file and names the problem). Little- and big-endian,
    real full matrices of the six v4 numeric types; other variables before ``val`` are skipped."""
    offset = 0
    while offset + 20 <= len(data):
        code = int.from_bytes(data[offset:offset + 4], "little")
        order = "<"
        if code >= 100:  # M digit 1: big-endian IEEE
            order, code = ">", int.from_bytes(data[offset:offset + 4], "big") - 1000
        precision, kind = divmod(code, 10)
        if not 0 <= code < 100 or kind != 0 or precision not in _V4_TYPES:
            return None
        rows, cols, imaginary, name_length = struct.unpack_from(order + "4i", data, offset + 4)
        dtype = np.dtype(order + _V4_TYPES[precision])
        start = offset + 20 + name_length
        end = start + rows * cols * dtype.itemsize
        if imaginary or rows < 0 or cols < 0 or name_length < 1 or end > len(data):
            return None
        if bytes(data[offset + 20:start]).rstrip(b"\0") == b"val":
            return np.frombuffer(data, dtype=dtype, count=rows * cols, offset=start).reshape(cols, rows).T
        offset = end
    return None


def read_raw(header: Header, hea_path: Path | str) -> np.ndarray:
    """The int16 ``val`` matrix ``(n_sig, n_samples)`` of the ``.mat`` beside the header."""
    val = None
    # The file the header names, else the .mat beside the header; opened directly (no stat first).
    named = os.path.join(os.path.dirname(hea_path), header.file_name)
    for mat in (named, os.path.splitext(hea_path)[0] + ".mat"):
        try:
            with open(mat, "rb", buffering=0) as handle:
                data = bytearray(os.fstat(handle.fileno()).st_size)  # writable, so the matrix is too
                val = read_v4_val(data) if handle.readinto(data) == len(data) else None
            break
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            continue
        except OSError:
            break  # it exists but cannot be read: scipy below reports the reason
    else:
        raise RecordError(f"the signal file {header.file_name} is missing")
    mat = Path(mat)
    try:
        if val is None:
            import scipy.io  # deferred: only for a file the direct reader does not take; listing the plugin skips it

            val = scipy.io.loadmat(str(mat), variable_names=["val"]).get("val")
    except Exception as error:  # scipy raises ValueError/TypeError/OSError variants for bad files
        raise RecordError(f"the signal file {mat.name} is unreadable ({str(error).split(';')[0]})") from None
    if val is None:
        raise RecordError(f"the signal file {mat.name} holds no 'val' matrix")
    if val.shape != (header.n_sig, header.n_samples):
        raise RecordError(f"the signal file {mat.name} holds a {val.shape[0]}x{val.shape[1]} matrix but the "
                          f"header announces {header.n_sig}x{header.n_samples}")
    return val


def to_physical(raw: np.ndarray, header: Header, dtype: type = np.float64, out: np.ndarray | None = None,
                leads_last: bool = False) -> np.ndarray:
    """``(raw - baseline) / gain`` per lead (mV for the Challenge), -32768 -> NaN; float64 by default,
    float32 for preprocessing that runs in float32 anyway (half the memory traffic). ``out``: write
    into this array (a row of a batch) instead of a new one. ``leads_last``: return
    ``(n_samples, n_sig)``, the order the ``.mat`` file stores, which needs no transposition."""
    if leads_last:
        raw = raw.T
    shape = (1, -1) if leads_last else (-1, 1)
    gains = np.asarray(header.gains, dtype=dtype).reshape(shape)
    baselines = np.asarray(header.baselines, dtype=dtype).reshape(shape)
    if len(set(header.gains)) == 1 and len(set(header.baselines)) == 1:
        gains, baselines = gains.flat[0], baselines.flat[0]  # the usual case: scalars run faster
    physical = np.empty(raw.shape, dtype=dtype) if out is None else out
    if np.ndim(baselines) == 0 and baselines == 0 and np.dtype(dtype) == np.float32:
        np.multiply(raw, np.float32(1) / gains, out=physical)  # one pass; float32 rounds anyway
    elif np.ndim(baselines) == 0 and baselines == 0:
        np.divide(raw, gains, out=physical)  # one pass
    else:
        np.subtract(raw, baselines, out=physical)  # two passes, no temporary copies
        np.divide(physical, gains, out=physical)
    if raw.size and raw.min() <= MISSING_RAW:  # -32768 is the int16 minimum: one pass, no mask
        physical[raw == MISSING_RAW] = np.nan
    return physical
