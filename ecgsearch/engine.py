"""run_search(spec): prepare the data once, then run the trials on Ray Tune and record every one.

Layout of an output directory::

    OUT/results.parquet   one row per finished trial (the source of truth, written as trials end)
    OUT/space.yaml        a copy of the space file that produced the run
    OUT/tune/             Ray Tune's experiment state (what --resume restores)
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch

from ecgsearch.cache import open_dataset
from ecgsearch.errors import UserError
from ecgsearch.plugins import get_registries
from ecgsearch.latency.plan import check_latency, latency_plan
from ecgsearch.latency.screen import latency_screen
from ecgsearch.latency.bench import measure_after_search
from ecgsearch.prepare import prepare_entry
from ecgsearch.results import RESULTS_FILE, ResultsTable
from ecgsearch.search.candidates import InputShape
from ecgsearch.search.factory import make_searcher
from ecgsearch.transfer import plan_transfer
from ecgsearch.storage import EXPERIMENT, check_run_location, open_run_storage, storage_callbacks, storage_of
from ecgsearch.tune_faults import check_trial_fits
from ecgsearch.trial import OBJECTIVE, TrialContext
from ecgsearch.tune_faults import fault_callbacks, run_options, trial_runtime
from ecgsearch.tune_glue import ResultsCallback, make_trainable

log = logging.getLogger(__name__)

SPACE_COPY = "space.yaml"


@dataclass(frozen=True)
class SearchOutcome:
    out_dir: Path
    results: pd.DataFrame
    metric: str
    mode: str

    def best(self, n: int = 5) -> pd.DataFrame:
        """The ``n`` best finished trials by the search metric."""
        key = f"val.{self.metric}"
        if key not in self.results:
            return self.results.head(0)
        ranked = self.results.dropna(subset=[key])
        return ranked.sort_values(key, ascending=self.mode == "min").head(n)


def check_out_dir(out_dir: Path, resume: bool) -> None:
    """Refuse to mix two runs in one directory; refuse a resume with nothing to resume."""
    check_run_location(out_dir, "folder", (out_dir / EXPERIMENT).exists() or (out_dir / RESULTS_FILE).exists(),
                       resume)


def check_supported(spec: Any) -> None:
    """Refuse what the file asks for but cannot be done, rather than ignore it silently."""
    check_latency(spec)  # a latency limit needs a usable backend measured for every trial


def prepare_data(spec: Any, progress: Callable[[int, int, str], None] | None = None,
                 **overrides: Any) -> Path:
    """Build (or reuse) the cache entry of the space file's ``data`` section (``overrides`` replace keys)."""
    cache_root = Path(spec.data.cache_dir).expanduser() if spec.data.cache_dir else None
    return prepare_entry(spec.data.dataset, {**dict(spec.data.params), **overrides}, cache_root,
                         f"{spec.path}: data", progress)


def init_ray(spec: Any) -> None:
    """Join RAY_ADDRESS's cluster if set, else start a small local one sized for this machine."""
    import ray

    # Tune's own console output would interleave with ecgsearch's progress display; verbose=0 silences
    # it only with the classic reporter.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    if address:  # a cluster (inside a submitted job, Ray sets it): trials go wherever resources are
        ray.init(address=address, logging_level=logging.WARNING)
        check_trial_fits(spec, cluster=True)
        return
    ray.init(
        num_cpus=max(os.cpu_count() or 1, int(spec.resources.cpu + 0.999)),
        object_store_memory=int(os.environ.get("ECGSEARCH_OBJECT_STORE_BYTES", 512 * 1024**2)),
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    check_trial_fits(spec, cluster=False)


def build_tuner(spec: Any, out_dir: Path, cache_entry: Path, resume: bool, transfer: Any = None) -> Any:
    """A Ray Tune ``Tuner`` for the space file (or the one restored from ``out_dir``).

    transfer: the ``ecgsearch.transfer.TransferPlan`` of a space with a ``transfer`` section.
    """
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import ConcurrencyLimiter

    data = open_dataset(cache_entry)
    task = get_registries().tasks.get(spec.task.name).create(data.targets.shape[1], **dict(spec.task.params))
    shape = InputShape(leads=data.signals.shape[1], samples=data.signals.shape[2], outputs=task.num_outputs,
                       sampling_rate=float(data.sampling_rate))
    context = TrialContext(cache_entry=str(cache_entry), out_dir=str(out_dir), epochs=spec.budget.epochs,
                           metric=spec.metric, mode=spec.mode, task=spec.task.name,
                           task_params=dict(spec.task.params), seed=spec.seed, space=spec.space,
                           threads=max(1, int(spec.resources.cpu)), gpu=float(spec.resources.gpu),
                           transfer=transfer,
                           runtime=trial_runtime(spec, out_dir),  # checkpoints, hang watchdog, node-local data
                           latency=latency_plan(spec))  # measured before training (ecgsearch.latency)
    trainable = make_trainable(context, spec.resources)
    state = out_dir / EXPERIMENT
    experiment = storage_of(out_dir).experiment  # OUT/tune, or URI/tune (ecgsearch.storage)
    if resume and tune.Tuner.can_restore(experiment):
        return tune.Tuner.restore(experiment, trainable=trainable, resume_unfinished=True,
                                  resume_errored=False, restart_errored=False)
    if resume and state.exists():
        # Killed before Tune saved any experiment state: start the trials again in a fresh experiment;
        # those already in results.parquet are recognised by their trial id and not trained again.
        log.warning("no restorable Tune state in %s; restarting the search, keeping recorded trials", state)
        state.rename(out_dir / f"{EXPERIMENT}.incomplete-{int(time.time())}")

    searcher: Any = make_searcher(spec, shape, OBJECTIVE, screen=latency_screen(spec, out_dir))  # search.algorithm
    if spec.budget.max_concurrent:
        searcher = ConcurrencyLimiter(searcher, max_concurrent=spec.budget.max_concurrent)
    if spec.budget.scheduler == "asha":
        scheduler: Any = ASHAScheduler(time_attr="training_iteration", max_t=spec.budget.epochs,
                                       grace_period=spec.budget.grace_period,
                                       reduction_factor=spec.budget.reduction_factor)
    else:
        scheduler = FIFOScheduler()
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(metric=OBJECTIVE, mode=spec.mode, search_alg=searcher, scheduler=scheduler,
                                    num_samples=spec.budget.trials,
                                    reuse_actors=True,  # a fresh worker per trial pays seconds of imports
                                    trial_dirname_creator=lambda trial: f"{trial.config.get('_trial_id', trial.trial_id)}"),
        run_config=tune.RunConfig(name=EXPERIMENT, storage_path=storage_of(out_dir).tune_root, verbose=0,
                                  callbacks=[ResultsCallback(str(out_dir), spec.metric), *fault_callbacks(out_dir),
                                             *storage_callbacks(out_dir)],
                                  **run_options(spec),  # retries (max_failures), checkpoints kept
                                  # checked after each epoch's report; the trial is recorded as stopped
                                  stop=({"time_total_s": spec.budget.trial_time_limit_s}
                                        if spec.budget.trial_time_limit_s else None)),
    )


def run_search(spec: Any, out_dir: Path | str, resume: bool = False, display: Any = None) -> SearchOutcome:
    """Run (or resume) the search a space file describes; results land in ``out_dir``."""
    out_dir = open_run_storage(out_dir, resume).local  # a folder, or a URI's staging folder (ecgsearch.storage)
    check_out_dir(out_dir, resume)
    check_supported(spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not resume and Path(spec.path).is_file():
        shutil.copyfile(spec.path, out_dir / SPACE_COPY)
    cache_entry = prepare_data(spec, display.data_progress if display else None)
    transfer = plan_transfer(spec, cache_entry, display.data_progress if display else None)
    init_ray(spec)
    regs = get_registries()
    regs.manager.hook.ecgsearch_search_started(spec=spec, out_dir=out_dir)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the driver only builds candidates to cost them; the cores are the trials'
    try:
        build_tuner(spec, out_dir, cache_entry, resume, transfer=transfer).fit()
    finally:
        torch.set_num_threads(threads)
    measure_after_search(spec, out_dir, cache_entry)  # latency.measure: pareto or best
    results = ResultsTable(out_dir).frame()
    regs.manager.hook.ecgsearch_search_finished(spec=spec, out_dir=out_dir, results=results)
    return SearchOutcome(out_dir=out_dir, results=results, metric=spec.metric, mode=spec.mode)


def with_trials(spec: Any, trials: int | None) -> Any:
    """The spec with ``budget.trials`` overridden (the CLI's ``--trials``)."""
    if trials is None:
        return spec
    if trials < 1:
        raise UserError(f"--trials: {trials} is not an integer >= 1; pass a positive number of trials.")
    return replace(spec, budget=replace(spec.budget, trials=trials))
