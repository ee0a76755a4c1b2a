"""Synthetic records as PhysioNet/CinC 2021 Challenge files, and read back through the Challenge reader.

Writing every record as a ``.hea`` + MATLAB v4 ``.mat`` pair and decoding it with the physionet2021
reader's own functions (``_wfdb_header``) means the synthetic arrays carry the real data's quantisation
(int16 at 1000/mV: 1 µV steps) and that the reader is exercised on every synthetic build: a record the
generator and the reader disagree on fails here, not in a search. The header follows the Challenge's
original layout (as in CPSC ``A0001.hea``): a date on the record line, ``16+24 1000/mV`` signal lines
with the first value and the WFDB checksum, and ``#Key: value`` comments.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Sequence

import numpy as np

from ecgsearch_plugins.datasets._wfdb_header import (
    MISSING_RAW,
    read_header,
    read_raw,
    to_physical,
)

GAIN_PER_MV = 1000  # ADC units per mV, as in every Challenge 2021 record
INT16_MAX = 32767
AGE_RANGE = (18, 90)
FIRST_DATE = datetime.datetime(2020, 1, 1, 8, 0, 0)


def checksum(row: np.ndarray) -> int:
    """WFDB signal checksum: the sum of the samples as a signed 16-bit integer (wraps around)."""
    total = int(np.asarray(row, dtype=np.int64).sum())
    return (total + 32768) % 65536 - 32768


def demographics(seed: int, index: int) -> tuple[int, str, str]:
    """Age, sex and a recording date/time (``05-Feb-2020 11:39:16``) of a record, from its seed alone.

    They carry no signal information; they exist so that the headers look like the Challenge's and
    so that readers parsing ``#Age``/``#Sex`` see realistic values.
    """
    rng = np.random.default_rng([seed, 4, index])
    age = int(rng.integers(AGE_RANGE[0], AGE_RANGE[1] + 1))
    sex = "Male" if rng.random() < 0.5 else "Female"
    when = FIRST_DATE + datetime.timedelta(seconds=int(rng.integers(0, 365 * 24 * 3600)))
    return age, sex, when.strftime("%d-%b-%Y %H:%M:%S")


def header_text(name: str, raw: np.ndarray, fs: float, leads: Sequence[str], dx: Sequence[str],
                age: int, sex: str, when: str) -> str:
    """A ``.hea`` in the original Challenge layout for ``raw`` (int16, ``(leads, samples)``)."""
    lines = [f"{name} {len(leads)} {fs:g} {raw.shape[1]} {when}"]
    for lead, row in zip(leads, raw):
        lines.append(f"{name}.mat 16+24 {GAIN_PER_MV}/mV 16 0 {int(row[0])} {checksum(row)} 0 {lead}")
    lines += [f"#Age: {age}", f"#Sex: {sex}", f"#Dx: {','.join(dx)}", "#Rx: Unknown", "#Hx: Unknown",
              "#Sx: Unknown"]
    return "\n".join(lines) + "\n"


def to_raw(signal_mv: np.ndarray) -> np.ndarray:
    """mV -> int16 ADC units at 1000/mV, rounded; clipped short of -32768, WFDB's "no sample" value."""
    raw = np.rint(np.asarray(signal_mv, dtype=np.float64) * GAIN_PER_MV)
    return np.clip(raw, MISSING_RAW + 1, INT16_MAX).astype(np.int16)


def write_record(folder: Path, name: str, signal_mv: np.ndarray, fs: float, leads: Sequence[str],
                 dx: Sequence[str], age: int, sex: str, when: str) -> Path:
    """Write ``name.mat`` (MATLAB v4, int16 ``val``) and ``name.hea`` into folder; return the header path."""
    import scipy.io  # deferred: writing records imports scipy; listing the plugin does not

    raw = to_raw(signal_mv)
    scipy.io.savemat(str(folder / f"{name}.mat"), {"val": raw}, format="4")
    hea = folder / f"{name}.hea"
    hea.write_text(header_text(name, raw, fs, leads, dx, age, sex, when), encoding="utf-8")
    return hea


def read_back(hea: Path, leads: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Signals (mV, float32, ``(len(leads), samples)`` in the order asked) and Dx codes of a written record,
    decoded by the physionet2021 reader's functions."""
    from ecgsearch_plugins.datasets.physionet2021 import parse_dx

    header = read_header(hea)
    physical = to_physical(read_raw(header, hea), header)
    order = [header.lead_names.index(lead) for lead in leads]
    return physical[order].astype(np.float32), parse_dx(header.comments.get("Dx", ""))
