"""The row log beside the results table: ``OUT/results.appended.jsonl``, the trials that ended since
``results.parquet`` was last written, one JSON object per line.

Appending a row writes one line (``O_APPEND``, then ``fsync``), whatever the size of the table, and
``ecgsearch.results.table`` merges the lines into the table it reads and folds them into the parquet
file now and then (its ``compact``). A line is complete once its newline is on disk: a last line without
one is a write cut short (a killed driver, or a reader racing the writer) and is skipped with a warning;
any other line that is not a row is a damaged file and one ``UserError`` sentence.

Values are stored plain: ``None``, booleans, integers, floats (``NaN`` and infinities included, as
JSON's ``NaN``/``Infinity``) and strings; numpy scalars are unwrapped, and anything else (a list, a
tuple) is stored as its ``str``, which is what the parquet table always made of it.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ecgsearch.errors import UserError

LOG_FILE = "results.appended.jsonl"

log = logging.getLogger(__name__)


def plain(value: Any) -> Any:
    """``value`` as the log stores it: a JSON scalar, or its ``str``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return plain(value.item())
    return str(value)


def encode_row(row: Mapping[str, Any]) -> bytes:
    """One log line (ASCII, newline-terminated) holding ``row``."""
    text = json.dumps({str(k): plain(v) for k, v in row.items()}, separators=(",", ":"), allow_nan=True)
    return text.encode("ascii") + b"\n"


def sync_folder(folder: Path) -> None:
    """Make a file's creation, rename or removal in ``folder`` durable (a no-op where folders cannot be
    opened, as on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def append_line(path: Path, line: bytes) -> None:
    """Append ``line`` to the log and ``fsync`` it; the one write an ended trial costs."""
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(line)
        while view:  # a regular file takes the whole line at once; a short write (disk full) continues
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        sync_folder(path.parent)


@dataclass
class LogRead:
    """What a log holds: its rows in the order they ended, its complete lines, and a torn last line."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    lines: int = 0
    torn: bool = False


def read_log(path: Path, command: str | None = None) -> LogRead:
    """The rows of the log at ``path`` (none when there is no log), read in one read of the file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return LogRead()
    *complete, tail = data.split(b"\n")
    if tail:
        log.warning("%s: ignoring its last line, a write cut short (%d bytes without a newline); every "
                    "complete line is read", path, len(tail))
    try:  # every line in one parse (a third of the time of a parse per line); then a damaged one is found
        rows = json.loads(b"[" + b",".join(complete) + b"]") if complete else []
    except (UnicodeDecodeError, ValueError):
        rows = None
    if rows is None or len(rows) != len(complete) or not all(map(is_row, rows)):
        rows = [parse_line(line, number, path, command) for number, line in enumerate(complete, 1)]
    return LogRead(rows, len(complete), bool(tail))


def is_row(value: Any) -> bool:
    return isinstance(value, dict) and "trial_id" in value and "status" in value


def parse_line(line: bytes, number: int, path: Path, command: str | None) -> dict[str, Any]:
    """One complete line as a row; anything else is one ``UserError`` naming the file and line."""
    try:
        row = json.loads(line.decode("ascii"))
        reason = "" if isinstance(row, dict) else f"a JSON {type(row).__name__}, not an object"
    except (UnicodeDecodeError, ValueError) as error:
        row, reason = None, f"not JSON: {error}"
    if not reason and not is_row(row):
        reason = "no trial_id or no status"
    if reason:
        prefix = f"{command}: " if command else ""
        raise UserError(f"{prefix}{path} line {number} cannot be read ({reason}); it is not a row written by "
                        f"`ecgsearch run`: restore the file from a copy, or delete that line (that trial's row "
                        "is then lost).")
    return row
