"""A trial's per-epoch history, read from Ray Tune's trial folder of the run (never through the engine).

A trial reports after every epoch; Tune keeps the reports in ``OUT/tune/<trial_id>/result.json`` (one
JSON object a line) and ``progress.csv`` (the same, as a table). Each report holds ``epoch``, ``loss``
and ``current.val.<metric>`` (that epoch's value; ``val.<metric>`` is the best epoch's so far). A run
kept at a URI, a run whose ``tune/`` folder was removed or a trial that finished no epoch has no history
here: ``epoch_history`` says why instead of failing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

TUNE_DIR = "tune"  # the run folder's Tune experiment (ecgsearch.engine.storage.EXPERIMENT)
RESULT_LINES = "result.json"
PROGRESS_TABLE = "progress.csv"


@dataclass(frozen=True)
class EpochHistory:
    """``frame``: one row per epoch (``epoch``, ``value``, ``loss`` when reported), or None and ``reason``."""

    trial_id: str
    frame: pd.DataFrame | None
    reason: str = ""


def _reports(folder: Path) -> pd.DataFrame | None:
    """Every report of the trial in ``folder`` (None when neither file can be read)."""
    lines = folder / RESULT_LINES
    if lines.is_file():
        rows = []
        for line in lines.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:  # a line torn by a kill: the reports before it still count
                continue
        return pd.DataFrame([r for r in rows if isinstance(r, dict)])
    table = folder / PROGRESS_TABLE
    if table.is_file():
        try:
            return pd.read_csv(table)
        except (ValueError, OSError):
            return None
    return None


def _per_epoch(reports: pd.DataFrame, column: str) -> pd.DataFrame:
    """One row per epoch, the last report of an epoch winning (a retried trial reports some twice)."""
    source = f"current.{column}" if f"current.{column}" in reports else column
    frame = pd.DataFrame({"epoch": pd.to_numeric(reports["epoch"], errors="coerce"),
                          "value": pd.to_numeric(reports[source], errors="coerce")})
    if "loss" in reports:
        frame["loss"] = pd.to_numeric(reports["loss"], errors="coerce")
    frame = frame[np.isfinite(frame["epoch"]) & np.isfinite(frame["value"])]
    return frame.drop_duplicates("epoch", keep="last").sort_values("epoch").reset_index(drop=True)


def epoch_history(run_dir: str | Path, trial_id: str, column: str) -> EpochHistory:
    """The per-epoch ``column`` (``val.<metric>``) of trial ``trial_id`` of the run in ``run_dir``."""
    folder = Path(run_dir) / TUNE_DIR / trial_id
    reports = _reports(folder)
    if reports is None:
        return EpochHistory(trial_id, None, f"{folder} holds no {RESULT_LINES} or {PROGRESS_TABLE} (the run is kept "
                                            f"elsewhere, or its {TUNE_DIR}/ folder was removed)")
    if "epoch" not in reports or not {column, f"current.{column}"} & set(reports.columns):
        return EpochHistory(trial_id, None, f"the reports in {folder} have no epoch and {column} columns")
    frame = _per_epoch(reports, column)
    if frame.empty:
        return EpochHistory(trial_id, None, f"the reports in {folder} hold no epoch with a value of {column}")
    return EpochHistory(trial_id, frame)
