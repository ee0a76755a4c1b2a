"""The driver of a search on Ray Tune: run, resume, faults, the results table's writer, storage.

``run.run_search(spec, out)`` prepares the data and plans once, starts Ray and runs the Tune ``Tuner``;
``worker`` is what runs in each Ray worker around a trial (``ecgsearch.train``); ``callbacks`` turns
each ended trial into a results row and each fault into a log entry (``faults``); ``storage`` puts a
run on a shared folder or an object store. May import latency, search, train, the run folder, space,
data and the contracts; nothing but the CLI imports it. Read ``run.py`` first.
"""

from ecgsearch.engine.run import (
    SearchOutcome,
    check_out_dir,
    check_supported,
    prepare_data,
    resumed_spec,
    run_search,
    tune_adapter,
)
from ecgsearch.space.spec import with_trials  # the CLI's --trials, kept here for existing callers

__all__ = ["SearchOutcome", "check_out_dir", "check_supported", "prepare_data", "resumed_spec", "run_search",
           "tune_adapter", "with_trials"]
