"""A tolerant reader of WFDB ``.hea`` headers and MATLAB v4 ``val`` signals, as PhysioNet 2021 ships them.

``wfdb.rdheader`` rejects some real Challenge headers (a ``.mat`` in the record name on line 1, in
Georgia v1.0.2), so this module parses the three layouts seen in the wild itself:

- original:  ``A0001 12 500 7500 05-Feb-2020 11:39:16`` / ``A0001.mat 16+24 1000/mV 16 0 28 -1716 0 I`` /
  ``#Dx: 164889003``;
- wfdb-rewritten: no date, ``16x1+24 1000.0(0)/mV``, ``# Dx: ...``;
- ``E07835.mat 12 500 5000`` (record name with the extension).

Only what the Challenge records use is supported: one signal file, format 16, a gain per lead.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io

MISSING_RAW = -32768  # WFDB format 16 "no sample" value
DEFAULT_GAIN = 200.0  # WFDB: a gain of 0 or none means 200 ADC units per physical unit
# "1000", "1000/mV", "1000.0(0)/mV": gain, optional (baseline), optional /units
_GAIN = re.compile(r"^(?P<gain>[-+]?[\d.]+(?:[eE][-+]?\d+)?)(?:\((?P<baseline>[-+]?\d+)\))?"
                   r"(?:/(?P<units>\S+))?$")


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
        fmts.add(re.split(r"[x:+]", parts[1])[0])
        match = _GAIN.match(parts[2]) if len(parts) > 2 else None
        if len(parts) > 2 and match is None:
            raise RecordError(f"signal line {line!r} has an unreadable gain {parts[2]!r}")
        gain = _number(match["gain"], "gain") if match else 0.0
        adc_zero = int(_number(parts[4], "ADC zero")) if len(parts) > 4 else 0
        gains.append(gain or DEFAULT_GAIN)
        baselines.append(int(match["baseline"]) if match and match["baseline"] else adc_zero)
        units.append((match["units"] if match and match["units"] else "mV"))
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


def read_header(path: Path) -> Header:
    try:
        return parse_header(Path(path).read_text(encoding="utf-8", errors="replace"))
    except OSError as error:
        raise RecordError(f"cannot read the header ({error.strerror or error})") from None


def read_raw(header: Header, hea_path: Path) -> np.ndarray:
    """The int16 ``val`` matrix ``(n_sig, n_samples)`` of the ``.mat`` beside the header."""
    mat = Path(hea_path).with_name(header.file_name)
    if not mat.is_file():
        mat = Path(hea_path).with_suffix(".mat")
    if not mat.is_file():
        raise RecordError(f"the signal file {header.file_name} is missing")
    try:
        val = scipy.io.loadmat(str(mat), variable_names=["val"]).get("val")
    except Exception as error:  # scipy raises ValueError/TypeError/OSError variants for bad files
        raise RecordError(f"the signal file {mat.name} is unreadable ({str(error).split(';')[0]})") from None
    if val is None:
        raise RecordError(f"the signal file {mat.name} holds no 'val' matrix")
    if val.shape != (header.n_sig, header.n_samples):
        raise RecordError(f"the signal file {mat.name} holds a {val.shape[0]}x{val.shape[1]} matrix but the "
                          f"header announces {header.n_sig}x{header.n_samples}")
    return val


def to_physical(raw: np.ndarray, header: Header) -> np.ndarray:
    """``(raw - baseline) / gain`` per lead as float64 (mV for the Challenge), -32768 -> NaN."""
    gains = np.asarray(header.gains, dtype=np.float64)[:, None]
    baselines = np.asarray(header.baselines, dtype=np.float64)[:, None]
    physical = (raw.astype(np.float64) - baselines) / gains
    physical[raw == MISSING_RAW] = np.nan
    return physical
