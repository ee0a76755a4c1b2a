"""The run folder and its results table: the contract between what writes a run and what reads it.

``table`` is ``OUT/results.parquet`` (one row per trial, written as trials end, read through one guarded
``read_results``) and its row log ``rowlog`` (the latest rows, a line each, until folded in); ``folder``
is the rest of ``OUT``: the space file's copy, each trial's best weights, and ``open_run``, the one way
a verb opens a finished run. Nothing here trains or searches: it may
import the space language and the contracts only. Read ``folder.py`` first.
"""

from ecgsearch.results.folder import (
    BEST_CHECKPOINT,
    SPACE_COPY,
    RunFolder,
    checkpoint_path,
    load_weights,
    open_run,
)
from ecgsearch.results.table import (
    RESULTS_FILE,
    RESULTS_LOG,
    STATUSES,
    ResultsTable,
    column_order,
    read_results,
)

__all__ = [
    "BEST_CHECKPOINT",
    "RESULTS_FILE",
    "RESULTS_LOG",
    "RunFolder",
    "SPACE_COPY",
    "STATUSES",
    "ResultsTable",
    "checkpoint_path",
    "column_order",
    "load_weights",
    "open_run",
    "read_results",
]
