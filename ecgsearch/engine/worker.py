"""What runs in a Ray Tune worker around one trial: the trainable, and the protections around the loop.

``tune_trainable`` is the function Tune runs per trial. It skips a trial the results table already
holds (a resumed run never trains one twice), then ``run_in_worker`` wraps the trial loop
(``ecgsearch.train.trial.run_trial``, preceded by its latency measurement): it makes sure this node has
the dataset's cache entry (built once per node under the cache lock, never per trial), starts the hang
watchdog, hands the loop a reporter that saves a checkpoint every ``checkpoint_every`` epochs and
restores the latest one when Tune retries or resumes the trial, and turns an out-of-memory error into a
recorded, failed trial with the worst objective (never retried: it would fail again).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import Any, Callable, Mapping

from ray import tune

from ecgsearch.data.cache import is_complete
from ecgsearch.data.prepare import prepare_entry
from ecgsearch.engine.faults import (
    Watchdog,
    hang_reason,
    is_out_of_memory,
    record_fault,
)
from ecgsearch.engine.storage import push_trial
from ecgsearch.latency.plan import with_latency
from ecgsearch.plugins import get_registries
from ecgsearch.results import RESULTS_FILE, read_results
from ecgsearch.space import ResourceSpec
from ecgsearch.train.checkpoints import (
    STATE_FILE,
    EpochState,
    Resumed,
    restore_state,
    save_state,
)
from ecgsearch.train.context import OBJECTIVE, WORST, TrialContext, TrialRuntime
from ecgsearch.train.trial import run_trial

log = logging.getLogger(__name__)


def _already_recorded(context: TrialContext, trial_id: str) -> dict[str, Any] | None:
    """The recorded row of a trial that finished before a crash, so a resume never trains it twice."""
    path = Path(context.out_dir) / RESULTS_FILE
    if not path.exists():
        return None
    frame = read_results(path)
    rows = frame[frame["trial_id"] == trial_id]
    return None if rows.empty else rows.iloc[0].to_dict()


def tune_trainable(config: dict[str, Any], context: TrialContext) -> None:
    """Ray Tune function trainable: one trial, reporting each epoch through ``tune.report``."""
    recorded = _already_recorded(context, config["_trial_id"])
    if recorded is not None:
        value = recorded.get(f"val.{context.metric}")
        tune.report({"restored": True, OBJECTIVE: float(value) if value == value and value is not None else 0.0})
        return
    # latency measured first (ecgsearch.latency.plan); checkpoints, hang watchdog, OOM (ecgsearch.engine.worker)
    run_in_worker(config, context, with_latency(run_trial))


def outside_trainable(config: dict[str, Any], context: TrialContext) -> None:
    """``tune_trainable`` for a configuration the engine did not draw (a Ray Tune user's own searcher):
    only its active parameters, Tune's trial id, and a training seed derived from that id."""
    trial_id = str(tune.get_context().get_trial_id())
    seed = context.seed * 100_003 + zlib.crc32(trial_id.encode()) % 100_003
    tune_trainable({**context.space.active(config), "_trial_id": trial_id, "_seed": seed}, context)


def make_trainable(context: TrialContext, resources: ResourceSpec, drawn_by_engine: bool = True) -> Any:
    """The trainable with its context in Ray's object store and the per-trial resources attached.

    drawn_by_engine: configurations come from the engine's searchers (with their trial ids), else from a
    user's own Tuner (``outside_trainable``).
    """
    trainable = tune.with_parameters(tune_trainable if drawn_by_engine else outside_trainable, context=context)
    return tune.with_resources(trainable, {"cpu": float(resources.cpu), "gpu": float(resources.gpu)})


def node_local_context(context: TrialContext, runtime: TrialRuntime) -> TrialContext:
    """The context with a cache entry that exists on this node, preparing it here if it does not.

    The driver prepared the entry on its node; on another node of a cluster without a shared cache the
    first trial builds it (others wait on the cache lock and reuse it), so no trial decodes records.
    """
    if is_complete(Path(context.cache_entry)) or runtime.dataset is None:
        return context
    cache_root = Path(runtime.cache_dir).expanduser() if runtime.cache_dir else None
    entry = prepare_entry(runtime.dataset, dict(runtime.dataset_params), cache_root, "trial data")
    log.info("dataset cache entry %s prepared on this node for %s", entry, context.cache_entry)
    return dataclasses.replace(context, cache_entry=str(entry))


class TuneReporter:
    """The trial loop's ``report``: Tune reports, periodic checkpoints, restore, and the watchdog's pulse."""

    def __init__(self, context: TrialContext, trial_id: str, runtime: TrialRuntime,
                 watchdog: Watchdog | None) -> None:
        self.context, self.trial_id, self.runtime, self.watchdog = context, trial_id, runtime, watchdog
        self.last: dict[str, Any] = {}
        self.epoch = 0

    def __call__(self, metrics: dict[str, Any]) -> None:
        self._report(metrics)

    def epoch_end(self, metrics: dict[str, Any], state: EpochState) -> None:
        every = self.runtime.checkpoint_every
        self.epoch = state.epoch
        if not every or state.epoch % every or state.epoch >= self.context.epochs:
            self._report(metrics)  # the last epoch needs no checkpoint: the trial is over
            return
        folder = Path(tempfile.mkdtemp(prefix=f"ecgsearch-{self.trial_id}-"))
        try:
            save_state(state, folder)
            self._report(metrics, tune.Checkpoint.from_directory(str(folder)))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def restore(self, setup: Any, generator: Any, config: Any = None) -> Resumed | None:
        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            return None
        with checkpoint.as_directory() as folder:
            resumed = restore_state(Path(folder) / STATE_FILE, setup, generator, config)
        self.epoch, self.last = resumed.epoch, dict(resumed.last)
        if resumed.trial_id in ("", self.trial_id):  # else not a fault: PBT continues a better trial's state
            record_fault(self.context.out_dir, self.trial_id, "resumed",
                         f"continued from the checkpoint of epoch {resumed.epoch}", epoch=resumed.epoch)
        return resumed

    def out_of_memory(self, error: BaseException) -> None:
        """Record an OOM trial as failed with the worst objective (the searcher learns to avoid it)."""
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        reason = f"out of memory: {type(error).__name__}: {first}".rstrip(": ")[:500]
        record_fault(self.context.out_dir, self.trial_id, "oom", reason, epoch=self.epoch)
        self._report({**self.last, "status": "failed", "error": reason, OBJECTIVE: WORST[self.context.mode]})

    def _report(self, metrics: dict[str, Any], checkpoint: Any = None) -> None:
        if self.watchdog is not None:
            self.watchdog.pet()
        self.last = dict(metrics)
        tune.report(metrics, checkpoint=checkpoint)
        if self.runtime.storage_uri and metrics.get("best_epoch") == metrics.get("epoch"):  # new best weights
            push_trial(self.runtime.storage_uri, self.context.out_dir, self.trial_id)


def run_in_worker(config: Mapping[str, Any], context: TrialContext, run: Callable[..., Any]) -> None:
    """Run the trial loop ``run(config, context, report=...)`` with the runtime's protections."""
    runtime: TrialRuntime = getattr(context, "runtime", None) or TrialRuntime()
    trial_id = str(config.get("_trial_id", "trial"))
    context = node_local_context(context, runtime)
    get_registries()  # plugins load before the watchdog's clock starts: a slow import is no hang
    watchdog: Watchdog | None = None
    reporter = TuneReporter(context, trial_id, runtime, None)
    if runtime.hang_timeout_s:
        def on_timeout(silent: float) -> None:
            record_fault(context.out_dir, trial_id, "hang",
                         hang_reason(runtime.hang_timeout_s, runtime.hang_key, reporter.epoch), silent_s=silent)
        watchdog = Watchdog(runtime.hang_timeout_s, on_timeout)
        reporter.watchdog = watchdog
    try:
        run(config, context, report=reporter)
    except Exception as error:
        if not is_out_of_memory(error):
            raise
        _free_accelerator_memory()
        reporter.out_of_memory(error)
    finally:
        if watchdog is not None:
            watchdog.stop()


def _free_accelerator_memory() -> None:
    import torch  # deferred: only an out-of-memory trial needs it

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
