"""Where fault tolerance meets Ray Tune: around a trial in its worker, and around failures in the driver.

In the worker, ``run_in_worker`` wraps the trial loop: it makes sure this node has the dataset's cache
entry (built once per node under the cache lock, never per trial), starts the hang watchdog, hands the
loop a reporter that saves a checkpoint every ``checkpoint_every`` epochs and restores the latest one
when Tune retries or resumes the trial, and turns an out-of-memory error into a recorded, failed trial
with the worst objective (never retried: it would fail again). In the driver, ``FaultLogCallback``
records every retried and every failed attempt with its reason, and ``run_options`` gives Tune the
retry and checkpoint settings of the space file.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ray import tune

from ecgsearch.checkpoints import STATE_FILE, EpochState, Resumed, restore_state, save_state
from ecgsearch.faults import Watchdog, fault_reason, hang_reason, is_out_of_memory, record_fault
from ecgsearch.plugins import get_registries

log = logging.getLogger(__name__)

HANG_GRACE_S = 60.0  # without hang_timeout_s: trial_time_limit_s + max(this, trial_time_limit_s)
WORST = {"max": -1e30, "min": 1e30}  # the objective of a trial without a usable result (as trial.py)


@dataclass(frozen=True)
class TrialRuntime:
    """Settings a worker needs around the trial loop (picklable; part of the trial context)."""

    checkpoint_every: int = 0
    hang_timeout_s: float | None = None
    hang_key: str = "budget.hang_timeout_s"
    dataset: str | None = None  # how to rebuild the cache entry on a node that does not have it
    dataset_params: Mapping[str, Any] = field(default_factory=dict)
    cache_dir: str | None = None
    data_on_gpu: bool | None = None  # None: automatic (see ecgsearch.accel)
    compile: bool = False
    storage_uri: str | None = None  # a URI run: workers copy each trial's best weights there


def trial_runtime(spec: Any, out_dir: str | Path | None = None) -> TrialRuntime:
    """The worker-side settings of a space file (and of the run's storage, for ``out_dir``)."""
    from ecgsearch.storage import storage_of

    budget, resources = spec.budget, spec.resources
    timeout, key = budget.hang_timeout_s, "budget.hang_timeout_s"
    if timeout is None and budget.trial_time_limit_s:  # the limit is checked at each epoch's report;
        limit = budget.trial_time_limit_s                # an epoch that never ends is stopped after a grace
        timeout, key = limit + max(HANG_GRACE_S, limit), "budget.trial_time_limit_s plus a grace"
    return TrialRuntime(
        checkpoint_every=int(budget.checkpoint_every),
        hang_timeout_s=timeout,
        hang_key=key,
        dataset=spec.data.dataset, dataset_params=dict(spec.data.params), cache_dir=spec.data.cache_dir,
        data_on_gpu=getattr(resources, "data_on_gpu", None), compile=bool(getattr(resources, "compile", False)),
        storage_uri=storage_of(out_dir).uri if out_dir is not None else None,
    )


def run_options(spec: Any) -> dict[str, Any]:
    """``RunConfig`` keywords: retries per trial, and every checkpoint of a running trial kept.

    Keeping only the latest is not enough: Tune saves its experiment state at most every 10 s or so,
    so after the driver is killed the state it restores may name a checkpoint a few epochs old. A trial's
    checkpoints are deleted when it ends instead (``CheckpointCleanup``).
    """
    return {"failure_config": tune.FailureConfig(max_failures=int(spec.budget.max_failures)),
            "checkpoint_config": tune.CheckpointConfig(num_to_keep=None)}


def check_trial_fits(spec: Any, cluster: bool) -> None:
    """A trial asking for more CPUs or GPUs than any node has would wait forever: say so instead.

    On a local Ray that is an error; on a cluster it is a warning, as an autoscaler may add the node.
    """
    import ray

    need = {"CPU": float(spec.resources.cpu), "GPU": float(spec.resources.gpu)}
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if not nodes or any(all(node.get(k, 0.0) >= v for k, v in need.items() if v > 0) for node in nodes):
        return
    largest = {k: max(node.get(k, 0.0) for node in nodes) for k in need}
    message = (f"{spec.path}: resources: one trial needs cpu {need['CPU']:g} and gpu {need['GPU']:g}, but the "
               f"largest node has {largest['CPU']:g} CPUs and {largest['GPU']:g} GPUs")
    if cluster:
        log.warning("%s; trials wait until the cluster has such a node", message)
        return
    from ecgsearch.errors import UserError

    raise UserError(f"{message}; lower resources.cpu/resources.gpu (gpu: 0 trains on the CPU).")


def node_local_context(context: Any, runtime: TrialRuntime) -> Any:
    """The context with a cache entry that exists on this node, preparing it here if it does not.

    The driver prepared the entry on its node; on another node of a cluster without a shared cache the
    first trial builds it (others wait on the cache lock and reuse it), so no trial decodes records.
    """
    from ecgsearch.cache import _is_complete

    if _is_complete(Path(context.cache_entry)) or runtime.dataset is None:
        return context
    from ecgsearch.prepare import prepare_entry

    cache_root = Path(runtime.cache_dir).expanduser() if runtime.cache_dir else None
    entry = prepare_entry(runtime.dataset, dict(runtime.dataset_params), cache_root, "trial data")
    log.info("dataset cache entry %s prepared on this node for %s", entry, context.cache_entry)
    return dataclasses.replace(context, cache_entry=str(entry))


class TuneReporter:
    """The trial loop's ``report``: Tune reports, periodic checkpoints, restore, and the watchdog's pulse."""

    def __init__(self, context: Any, trial_id: str, runtime: TrialRuntime, watchdog: Watchdog | None) -> None:
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

    def restore(self, setup: Any, generator: Any) -> Resumed | None:
        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            return None
        with checkpoint.as_directory() as folder:
            resumed = restore_state(Path(folder) / STATE_FILE, setup, generator)
        self.epoch, self.last = resumed.epoch, dict(resumed.last)
        record_fault(self.context.out_dir, self.trial_id, "resumed",
                     f"continued from the checkpoint of epoch {resumed.epoch}", epoch=resumed.epoch)
        return resumed

    def out_of_memory(self, error: BaseException) -> None:
        """Record an OOM trial as failed with the worst objective (the searcher learns to avoid it)."""
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        reason = f"out of memory: {type(error).__name__}: {first}".rstrip(": ")[:500]
        record_fault(self.context.out_dir, self.trial_id, "oom", reason, epoch=self.epoch)
        from ecgsearch.trial import OBJECTIVE

        self._report({**self.last, "status": "failed", "error": reason, OBJECTIVE: WORST[self.context.mode]})

    def _report(self, metrics: dict[str, Any], checkpoint: Any = None) -> None:
        if self.watchdog is not None:
            self.watchdog.pet()
        self.last = dict(metrics)
        tune.report(metrics, checkpoint=checkpoint)
        if self.runtime.storage_uri and metrics.get("best_epoch") == metrics.get("epoch"):  # new best weights
            from ecgsearch.storage import push_trial

            push_trial(self.runtime.storage_uri, self.context.out_dir, self.trial_id)


def run_in_worker(config: Mapping[str, Any], context: Any, run: Callable[..., Any]) -> None:
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
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class FaultLogCallback(tune.Callback):
    """Records each retried and each final failed attempt in ``OUT/faults/`` with its reason."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._record(trial, "retry")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._record(trial, "failed")

    def _record(self, trial: Any, kind: str) -> None:
        from ecgsearch.tune_glue import _trial_error

        trial_id = str(trial.config.get("_trial_id", trial.trial_id))
        reason = fault_reason(self.out_dir, trial_id, _trial_error(trial))
        record_fault(self.out_dir, trial_id, kind, reason, attempt=int(trial.num_failures),
                     recorded_at=time.strftime("%Y-%m-%dT%H:%M:%S"))


class CheckpointCleanup(tune.Callback):
    """Deletes an ended trial's checkpoints: they exist to continue a retried or resumed trial, and its
    best weights are kept apart (``OUT/trials/<id>/best.pt``)."""

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._clean(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._clean(trial)

    @staticmethod
    def _clean(trial: Any) -> None:
        import pyarrow.fs

        storage = trial.storage
        try:
            entries = storage.storage_filesystem.get_file_info(pyarrow.fs.FileSelector(storage.trial_fs_path))
            for entry in entries:
                if entry.type == pyarrow.fs.FileType.Directory and entry.base_name.startswith("checkpoint_"):
                    storage.storage_filesystem.delete_dir(entry.path)
        except OSError as error:  # disk space only: the trial's row is already recorded
            log.warning("could not delete the checkpoints of trial %s: %s", trial.trial_id, error)


def fault_callbacks(out_dir: str | Path) -> list[Any]:
    """The driver-side callbacks to append after the results callback."""
    return [FaultLogCallback(str(out_dir)), CheckpointCleanup()]
