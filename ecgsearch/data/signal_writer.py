"""Signals written straight into a cache entry's ``signals.npy`` while a source decodes its records.

A large dataset cannot be held in memory twice, or at all: PhysioNet 2021 at 500 Hz is 88k x 12 x
5000 float32, 21 GB. So a source that decodes many records opens a ``SignalWriter`` in the ``workdir``
that ``ecgsearch.data.cache`` hands to ``build``, with an upper bound of records, appends batches in record
order (or puts them at their row, for sources that read out of order), and returns ``finish()`` as
``EcgArrays.signals``: a read-only memory map of a standard ``.npy`` file (format 1.0), which
``prepare_dataset`` moves into the entry instead of writing the signals again. Memory use is one
batch, and each sample is written once (no stacked copy, no second write).

Without a workdir (a source built outside the cache, as in tests) the writer fills an in-memory array.
"""

from __future__ import annotations

import contextlib
import os
import struct
import weakref
from pathlib import Path
from typing import Sequence

import numpy as np

FILE = "signals.npy"
MAGIC = b"\x93NUMPY\x01\x00"  # format version 1.0: a 2-byte little-endian header length follows
# Arrays returned by finish(), by id: only these very objects are moved into an entry (a view or a
# copy of one is written out as any other array).
_FINISHED: weakref.WeakValueDictionary[int, np.ndarray] = weakref.WeakValueDictionary()


def _header(shape: Sequence[int], dtype: np.dtype, length: int | None = None) -> bytes:
    """The ``.npy`` 1.0 header of a C-order array, padded with spaces to ``length`` bytes (default:
    the next multiple of 64, as numpy writes it): a header rewritten for fewer rows keeps its length."""
    text = f"{{'descr': {dtype.str!r}, 'fortran_order': False, 'shape': {tuple(int(n) for n in shape)!r}, }}"
    needed = len(MAGIC) + 2 + len(text) + 1
    length = length or -(-needed // 64) * 64
    if needed > length or length - len(MAGIC) - 2 > 0xFFFF:
        raise ValueError(f"a .npy header for shape {tuple(shape)} does not fit in {length} bytes")
    body = text + " " * (length - needed) + "\n"
    return MAGIC + struct.pack("<H", len(body)) + body.encode("latin1")


class SignalWriter:
    """Rows ``(leads, samples)``, up to ``capacity`` of them, appended in order or put at their index
    (see the module docstring); ``finish`` keeps the rows up to the last one written.

    ``workdir``: the folder of the file (None: in memory). Rows go to the file with plain positioned
    writes (the kernel fills the page cache in bulk: faster than a writable memory map, page by page);
    the header, sized for ``capacity``, is rewritten for the rows kept by ``finish``.
    """

    def __init__(self, workdir: Path | str | None, capacity: int, row_shape: Sequence[int],
                 dtype: type = np.float32) -> None:
        self.dtype = np.dtype(dtype)
        self.row_shape = tuple(int(n) for n in row_shape)
        self.row_bytes = int(np.prod(self.row_shape)) * self.dtype.itemsize
        self.capacity = int(capacity)
        self.rows = 0  # one past the last row written
        self.path = None if workdir is None else Path(workdir) / FILE
        self.array: np.ndarray | None = None
        self.handle = None
        if self.path is None:
            self.array = np.zeros((self.capacity, *self.row_shape), dtype=self.dtype)
        else:
            self.header_length = len(_header((self.capacity, *self.row_shape), self.dtype))
            with contextlib.suppress(FileNotFoundError):  # a new file: maps of an old one stay valid
                os.unlink(self.path)
            self.handle = open(self.path, "xb", buffering=0)
            self._write_at(0, _header((0, *self.row_shape), self.dtype, self.header_length))

    def append(self, rows: np.ndarray) -> None:
        """Write ``rows`` ``(n, *row_shape)`` after the last row written so far."""
        self.put(np.arange(self.rows, self.rows + len(rows)), rows)

    def put(self, indices: Sequence[int] | np.ndarray, rows: np.ndarray) -> None:
        """Write ``rows[k]`` as row ``indices[k]``, in any order (rows never written read as zeros)."""
        if self.array is None and self.handle is None:
            raise RuntimeError("SignalWriter: rows written after finish()")
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        low, high = (int(indices.min()), int(indices.max())) if len(indices) else (0, -1)
        if rows.shape != (len(indices), *self.row_shape) or low < 0 or high >= self.capacity:
            raise ValueError(f"cannot write rows of shape {rows.shape} at rows {low}-{high} of at most "
                             f"{self.capacity} rows of shape {self.row_shape}")
        if not len(indices):
            return
        if self.array is not None:
            self.array[indices] = rows
        else:  # one write per run of consecutive rows
            starts = np.concatenate([[0], np.flatnonzero(np.diff(indices) != 1) + 1, [len(indices)]])
            for first, end in zip(starts[:-1], starts[1:]):
                self._write_at(self.header_length + int(indices[first]) * self.row_bytes, rows[first:end])
        self.rows = max(self.rows, high + 1)

    def _write_at(self, offset: int, data: bytes | np.ndarray) -> None:
        view = memoryview(data).cast("B")
        while view:  # a raw write may take fewer bytes than asked
            written = os.pwrite(self.handle.fileno(), view, offset)
            view, offset = view[written:], offset + written

    def finish(self) -> np.ndarray:
        """The rows up to the last written: in memory, or a read-only memory map of the finished file."""
        if self.array is not None:
            array, self.array = self.array, None
            return array[:self.rows]
        if self.handle is None:
            raise RuntimeError("SignalWriter.finish called twice")
        self._write_at(0, _header((self.rows, *self.row_shape), self.dtype, self.header_length))
        handle, self.handle = self.handle, None
        with handle:
            handle.truncate(self.header_length + self.rows * self.row_bytes)  # zeros where never written
        if not self.rows:  # nothing to map: an empty array, written out like any other
            return np.empty((0, *self.row_shape), dtype=self.dtype)
        signals = np.load(self.path, mmap_mode="r", allow_pickle=False)
        _FINISHED[id(signals)] = signals
        return signals


def written_file(signals: np.ndarray, workdir: Path) -> Path | None:
    """The finished ``SignalWriter`` file behind ``signals`` if it is that very array, written in
    ``workdir``; else None (the signals are then written out like any array)."""
    if _FINISHED.get(id(signals)) is not signals:
        return None
    path = Path(signals.filename)  # numpy keeps the absolute path it opened
    return path if path == Path(os.path.abspath(Path(workdir) / FILE)) else None
