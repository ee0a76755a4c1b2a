"""The results table: ``OUT/results.parquet``, one row per trial, the single source of truth.

A trial that ends costs one line appended to ``OUT/results.appended.jsonl`` (``ecgsearch.results.rowlog``),
whatever the size of the table; ``read_results`` merges those lines into the parquet file's rows. When
the log holds a quarter as many rows as the parquet file (``COMPACT_FRACTION``), the writer folds it in
(``ResultsTable.compact``: the merged table to a temporary file, ``fsync``, renamed over
``results.parquet``, then the log removed), so every row is rewritten a bounded number of times and the
total cost of a search's appends is linear in its trials. The engine compacts once more when the
search ends, leaving a single ``results.parquet``.

A kill at any moment leaves a readable table holding every trial that had finished, once: a row is in the
log before anything else happens, a renamed parquet file is whole, a log whose rows are already in the
parquet file (killed between the rename and the removal) adds nothing (rows are told apart by trial id,
the parquet file's row winning), and a half-written last line or temporary file is ignored.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa

from ecgsearch.errors import UserError
from ecgsearch.results.rowlog import (
    LOG_FILE,
    LogRead,
    append_line,
    encode_row,
    read_log,
    sync_folder,
)

RESULTS_FILE = "results.parquet"
RESULTS_LOG = LOG_FILE
STATUSES = ("ok", "failed", "diverged", "stopped", "pruned")
LEADING = ["trial_id", "config_id", "status", "error", "architecture", "optimizer", "schedule"]
TRAILING = ["seed", "epochs", "train_seconds", "cost.params", "cost.macs", "cost.flops"]
COMPACT_FRACTION = 0.25  # the log is folded into the parquet file once it holds this share of its rows


def column_order(columns: Iterable[str]) -> list[str]:
    """The contract's order: identity, hyperparameters, metrics, epochs/time, costs, latency."""
    cols = list(dict.fromkeys(columns))
    groups = [
        [c for c in LEADING if c in cols],
        sorted(c for c in cols if c.startswith("hp.")),
        sorted(c for c in cols if c.startswith("val.")),
        sorted(c for c in cols if c.startswith("test.")),
        [c for c in TRAILING if c in cols],
        sorted(c for c in cols if c.startswith("latency.")),
    ]
    known = {c for g in groups for c in g}
    return [c for g in groups for c in g] + sorted(c for c in cols if c not in known)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(value: Any) -> str:
    """A cell of a column stored as strings: a number in its shortest form (``3``, ``0.5``: an integer
    reads the same once a missing cell made its column float), anything else (a list) as its ``str``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    number = float(value)
    return str(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number)


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns mixing strings and numbers (a choice over both), or holding lists, are stored as strings
    (``_text``); a cell a trial does not have stays empty (None), and a column of booleans stays boolean."""
    for col in frame.columns:
        if frame[col].dtype == object:
            kinds = {type(v) for v in frame[col] if not _missing(v)}
            if kinds <= {bool}:
                frame[col] = frame[col].map(lambda v: None if _missing(v) else bool(v))
            elif len(kinds) > 1 or not kinds <= {str}:
                frame[col] = frame[col].map(lambda v: None if _missing(v) else _text(v))
    return frame


def _as_stored(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as reading it back from parquet gives it (the same dtypes and empty cells)."""
    return pa.Table.from_pandas(frame, preserve_index=False).to_pandas()


def _merged(stored: pd.DataFrame, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The table of the parquet file's rows followed by the log's, as if all had been written at once."""
    logged = _as_stored(_parquet_safe(pd.DataFrame(rows)))
    columns = column_order([*stored.columns, *logged.columns])
    frame = pd.DataFrame({c: _joined(stored.get(c), logged.get(c), len(stored), len(logged)) for c in columns})
    return _as_stored(_parquet_safe(frame))


def _joined(head: pd.Series | None, tail: pd.Series | None, n: int, m: int) -> pd.Series:
    """One column of two stored tables of ``n`` and ``m`` rows (None: a table without it), one after the
    other. Numbers with numbers and a type with itself are concatenated; otherwise the cells are gathered
    as Python objects and typed as a frame of the rows would be (then ``_parquet_safe``: a column mixing
    kinds becomes strings, the same strings ``_text`` made of the cells already stored as such)."""
    if head is not None and tail is not None and (
            head.dtype == tail.dtype != object or head.dtype.kind in "iuf" and tail.dtype.kind in "iuf"):
        return pd.concat([head, tail], ignore_index=True)
    values = np.empty(n + m, dtype=object)
    values[:n] = head.to_numpy(dtype=object) if head is not None else None
    values[n:] = tail.to_numpy(dtype=object) if tail is not None else None
    return pd.Series(values).infer_objects()


@dataclass
class _Loaded:
    """A table as read: the merged frame, the parquet file's row count, and what its log held."""

    frame: pd.DataFrame
    stored: int
    log: LogRead


def _read_parquet(path: Path, command: str | None) -> pd.DataFrame:
    data = path.read_bytes()  # one read of one file: the writer replaces it atomically, and pyarrow
    try:                       # opening the path twice could see the old footer and the new pages
        return pd.read_parquet(io.BytesIO(data))
    except Exception as error:  # a truncated or foreign file: pyarrow's own message says which
        prefix = f"{command}: " if command else ""
        raise UserError(f"{prefix}{path} cannot be read ({error}); it is not a results table written by "
                        "`ecgsearch run`.") from None


def _load(path: Path, command: str | None = None) -> _Loaded:
    """The table at ``path`` with its log's rows merged in.

    The log is read before the parquet file: a compaction in between has put the log's rows into the
    parquet file first, so a reader racing the writer sees every row it would have seen a moment before.
    """
    logged = read_log(path.parent / RESULTS_LOG, command) if path.name == RESULTS_FILE else LogRead()
    if path.exists() or not (logged.lines or logged.torn):
        stored = _read_parquet(path, command)  # no table at all: FileNotFoundError, as always
    else:  # only a log (killed before the first compaction, or the parquet file deleted): its rows
        stored = pd.DataFrame()
    seen = set(stored["trial_id"].astype(str).tolist()) if logged.rows and "trial_id" in stored else set()
    new = []
    for row in logged.rows:  # a row the parquet file holds already: a compaction killed before its end
        if str(row["trial_id"]) not in seen:
            seen.add(str(row["trial_id"]))
            new.append(row)
    return _Loaded(_merged(stored, new) if new else stored, len(stored), logged)


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Replace ``path`` by ``frame``, atomically and durably (temporary file, fsync, rename)."""
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    _parquet_safe(frame).to_parquet(tmp, index=False)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    sync_folder(path.parent)


class ResultsTable:
    """Rows of finished trials, each on disk when ``append`` returns; one writer per run folder.

    Opening reads the table once to learn the recorded trials; an append then writes one log line and,
    now and then, compacts (``COMPACT_FRACTION``). Other instances and ``read_results`` may read at any
    time.
    """

    def __init__(self, out_dir: Path | str) -> None:
        self.path = Path(out_dir) / RESULTS_FILE
        self.log_path = self.path.with_name(RESULTS_LOG)
        self._status: dict[str, str] = {}
        self._stored = self._logged = 0
        self._repair = False  # the log ends in a torn line: compact before appending after it
        if self.path.exists() or self.log_path.exists():
            self._refresh(_load(self.path))

    def _refresh(self, loaded: _Loaded) -> None:
        frame = loaded.frame
        if "trial_id" in frame:
            self._status = dict(zip(frame["trial_id"].astype(str), frame["status"].astype(str)))
        self._stored, self._logged, self._repair = loaded.stored, loaded.log.lines, loaded.log.torn

    def finished_ids(self) -> set[str]:
        return set(self._status)

    def status_of(self, trial_id: str) -> str | None:
        """The recorded status of a trial (None when it has no row)."""
        return self._status.get(trial_id)

    def append(self, row: Mapping[str, Any]) -> bool:
        """Record a row, on disk when this returns; False (and nothing written) if the trial is already
        recorded. Its cost does not depend on the size of the table (the compactions' included, spread)."""
        if row.get("status") not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {row.get('status')!r}")
        trial_id = str(row["trial_id"])
        if trial_id in self._status:
            return False  # a resumed run reporting a trial that is already recorded
        line = encode_row(row)
        if self._repair:
            self.compact()  # drops the torn line a killed writer left, before a new line follows it
        self.path.parent.mkdir(parents=True, exist_ok=True)
        append_line(self.log_path, line)
        self._status[trial_id] = str(row["status"])
        self._logged += 1
        if self._logged >= max(1, int(self._stored * COMPACT_FRACTION)):
            self.compact()
        else:
            os.utime(self.path)  # the table changed: whoever watches results.parquet's mtime sees it
        return True

    def compact(self) -> bool:
        """Fold the log into ``results.parquet`` and remove it; False when there is no log."""
        if not self.log_path.exists():
            return False
        loaded = _load(self.path)
        if len(loaded.frame) or self.path.exists():
            _write_parquet(loaded.frame, self.path)
        self.log_path.unlink(missing_ok=True)  # killed before this: its rows are in the parquet file
        sync_folder(self.path.parent)
        self._refresh(_Loaded(loaded.frame, len(loaded.frame), LogRead()))
        return True

    def frame(self) -> pd.DataFrame:
        """The table as ``read_results`` reads it (an empty frame before the first row)."""
        if not (self.path.exists() or self.log_path.exists()):
            return pd.DataFrame()
        return _load(self.path).frame


def read_results(path: Path | str, command: str | None = None) -> pd.DataFrame:
    """Read a results table (a run directory or the parquet file itself): the one reader every verb uses.

    The rows still in the log beside ``results.parquet`` are merged in. A file that pyarrow cannot read
    (truncated, empty, not parquet), or a damaged log line, is one ``UserError`` sentence, prefixed with
    ``command`` when given (``report: ...``), never a pyarrow traceback.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    return _load(path, command).frame


def set_columns(out_dir: Path | str, values: Mapping[str, Mapping[str, Any]]) -> int:
    """Add or overwrite cells of a finished run's table: ``values`` maps a trial id to ``{column: value}``
    (``ecgsearch evaluate-run``'s ``ood.*``); the number of rows changed.

    Every row is kept: the log is folded in and the whole table written to a temporary file that replaces
    ``results.parquet`` atomically (as ``ResultsTable.compact`` does), so a kill leaves the old table or the
    new one. The run must not be searching meanwhile (one writer per run folder).
    """
    table = ResultsTable(out_dir)
    table.compact()
    frame = _load(table.path).frame.copy()
    ids = frame["trial_id"].astype(str)
    changed = 0
    for trial_id, cells in values.items():
        rows = ids == str(trial_id)
        if not rows.any() or not cells:
            continue
        for column, value in cells.items():
            if column not in frame:
                frame[column] = None if not isinstance(value, (int, float)) else np.nan
            frame.loc[rows, column] = value
        changed += 1
    if changed:
        ordered = frame[column_order(frame.columns)]
        _write_parquet(_as_stored(_parquet_safe(ordered.copy())), table.path)
    return changed
