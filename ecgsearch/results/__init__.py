"""The run folder and its results table: the contract between what writes a run and what reads it.

``table`` is ``OUT/results.parquet`` (one row per trial, written as trials end, read through one guarded
``read_results``) and its row log ``rowlog`` (the latest rows, a line each, until folded in); ``folder``
is the rest of ``OUT``: the space file's copy, each trial's best weights, and ``open_run``, the one way
a verb opens a finished run (``names``: its file names, without pandas, for the CLI's help). Nothing
here trains or searches: it may import the space language and the contracts only. Read ``folder.py`` first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecgsearch.lazy import lazy_names

# name -> the module that defines it, imported on first use (PEP 562): ``ecgsearch.results.names`` (the CLI's
# parser) must not import pandas through this package
_LAZY: dict[str, str] = {
    **dict.fromkeys(("BEST_CHECKPOINT", "SPACE_COPY"), "ecgsearch.results.names"),
    **dict.fromkeys(("RunFolder", "checkpoint_path", "load_weights", "open_run"), "ecgsearch.results.folder"),
    **dict.fromkeys(("RESULTS_FILE", "RESULTS_LOG", "STATUSES", "ResultsTable", "column_order", "read_results"),
                    "ecgsearch.results.table"),
}

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


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())


if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from ecgsearch.results.folder import RunFolder, checkpoint_path, load_weights, open_run
    from ecgsearch.results.names import BEST_CHECKPOINT, SPACE_COPY
    from ecgsearch.results.table import (
        RESULTS_FILE,
        RESULTS_LOG,
        STATUSES,
        ResultsTable,
        column_order,
        read_results,
    )
