"""The results table: ``OUT/results.parquet``, one row per trial, the single source of truth.

The file is rewritten atomically (temporary file + ``os.replace``) each time a trial ends, so a run
killed at any moment leaves a readable table holding every trial that had finished.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from ecgsearch.errors import UserError

RESULTS_FILE = "results.parquet"
STATUSES = ("ok", "failed", "diverged", "stopped", "pruned")
LEADING = ["trial_id", "status", "error", "architecture", "optimizer", "schedule"]
TRAILING = ["epochs", "train_seconds", "cost.params", "cost.macs", "cost.flops"]


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


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns mixing strings and numbers (a choice over both), or holding lists, are stored as strings;
    a cell a trial does not have stays empty (None), and a column of booleans stays boolean."""
    for col in frame.columns:
        if frame[col].dtype == object:
            kinds = {type(v) for v in frame[col] if not _missing(v)}
            if kinds <= {bool}:
                frame[col] = frame[col].map(lambda v: None if _missing(v) else bool(v))
            elif len(kinds) > 1 or not kinds <= {str}:
                frame[col] = frame[col].map(lambda v: None if _missing(v) else str(v))
    return frame


class ResultsTable:
    """Rows of finished trials, persisted after every append."""

    def __init__(self, out_dir: Path | str) -> None:
        self.path = Path(out_dir) / RESULTS_FILE
        self._rows: list[dict[str, Any]] = []
        if self.path.exists():
            self._rows = read_results(self.path).to_dict("records")

    def finished_ids(self) -> set[str]:
        return {str(r["trial_id"]) for r in self._rows}

    def status_of(self, trial_id: str) -> str | None:
        """The recorded status of a trial (None when it has no row)."""
        return next((str(r["status"]) for r in self._rows if str(r["trial_id"]) == trial_id), None)

    def append(self, row: Mapping[str, Any]) -> bool:
        """Record and persist a row; False (and nothing written) if the trial is already recorded."""
        if row.get("status") not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {row.get('status')!r}")
        if str(row["trial_id"]) in self.finished_ids():
            return False  # a resumed run reporting a trial that is already recorded
        self._rows.append(dict(row))
        self._write()
        return True

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self._rows)
        return frame[column_order(frame.columns)] if len(frame) else frame

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        _parquet_safe(self.frame()).to_parquet(tmp, index=False)
        os.replace(tmp, self.path)


def read_results(path: Path | str, command: str | None = None) -> pd.DataFrame:
    """Read a results table (a run directory or the parquet file itself): the one reader every verb uses.

    A file that pyarrow cannot read (truncated, empty, not parquet) is one ``UserError`` sentence, prefixed
    with ``command`` when given (``report: ...``), never a pyarrow traceback.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    data = path.read_bytes()  # one read of one file: the writer replaces it atomically, and pyarrow
    try:                       # opening the path twice could see the old footer and the new pages
        return pd.read_parquet(io.BytesIO(data))
    except Exception as error:  # a truncated or foreign file: pyarrow's own message says which
        prefix = f"{command}: " if command else ""
        raise UserError(f"{prefix}{path} cannot be read ({error}); it is not a results table written by "
                        "`ecgsearch run`.") from None
