"""run_search(spec): prepare the data once, then run the trials on Ray Tune and record every one.

The driver's side of a search: the run folder (``ecgsearch.results.folder`` has its layout), the data
and transfer plans, the latency plan (built once here and handed to everything that measures), Ray,
and the Tune ``Tuner``: trainable (``engine.worker``), searcher (``ecgsearch.search``), scheduler,
callbacks (``engine.callbacks``), retries and storage (``engine.storage``).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pandas as pd
import torch
from ray import tune

from ecgsearch.data.cache import open_dataset
from ecgsearch.data.prepare import prepare_data as prepare_section
from ecgsearch.engine.budget import BudgetCallback, BudgetedSearcher, SearchBudget, TrialStopper
from ecgsearch.engine.callbacks import ResultsCallback, fault_callbacks
from ecgsearch.engine.storage import (
    EXPERIMENT,
    check_run_location,
    is_uri,
    open_run_storage,
    storage_callbacks,
    storage_of,
)
from ecgsearch.engine.worker import make_trainable
from ecgsearch.errors import UserError
from ecgsearch.latency.bench import measure_after_search
from ecgsearch.latency.plan import LatencyPlan, check_latency, latency_plan
from ecgsearch.latency.screen import candidate_models, latency_screen
from ecgsearch.plugins import get_registries
from ecgsearch.results import RESULTS_FILE, SPACE_COPY, ResultsTable, read_results
from ecgsearch.results.folder import recorded_trials, write_run_record
from ecgsearch.search.candidates import input_shape
from ecgsearch.search.factory import make_searcher
from ecgsearch.search.problem import SchedulerRun
from ecgsearch.search.repeats import RepeatedSearcher
from ecgsearch.search.warm_start import WarmPoint, load_warm_start
from ecgsearch.space.messages import Context
from ecgsearch.space.spec import with_trials
from ecgsearch.train.context import OBJECTIVE, TrialContext, TrialRuntime
from ecgsearch.train.ood import EvaluatePlan, plan_evaluate
from ecgsearch.train.transfer import TransferPlan, plan_transfer

if TYPE_CHECKING:
    from ecgsearch.space import SearchSpec

log = logging.getLogger(__name__)

HANG_GRACE_S = 60.0  # without hang_timeout_s: trial_time_limit_s + max(this, trial_time_limit_s)


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
    """Refuse to mix two runs in one directory; refuse a resume with nothing to resume, or over a results
    table that cannot be read (resuming would fail the unfinished trials and lose the finished ones)."""
    check_run_location(out_dir, "folder", (out_dir / EXPERIMENT).exists() or (out_dir / RESULTS_FILE).exists(),
                       resume)
    if resume and (out_dir / RESULTS_FILE).exists():
        try:
            read_results(out_dir / RESULTS_FILE)
        except UserError as error:  # the parquet file or its row log (the error names which)
            raise UserError(f"run --resume: {str(error).rstrip('.')}; the finished trials it held would be lost, so nothing was "
                            "resumed: restore that file from a copy, or start a new run in another --out.") from None


def resumed_spec(spec: SearchSpec, out_dir: Path | str) -> SearchSpec:
    """On resume, the budget the run started with (``--trials`` may have differed from the space file)."""
    trials = recorded_trials(out_dir) if not is_uri(out_dir) else None
    return with_trials(spec, trials)


def check_supported(spec: SearchSpec, plan: LatencyPlan | None = None) -> None:
    """Refuse what the file asks for but cannot be done, rather than ignore it silently."""
    check_latency(spec, plan if plan is not None else latency_plan(spec))  # a limit needs a usable backend


def prepare_data(spec: SearchSpec, progress: Callable[[int, int, str], None] | None = None,
                 **overrides: Any) -> Path:
    """Build (or reuse) the cache entry of the space file's ``data`` section (``overrides`` replace keys)."""
    return prepare_section(spec.data, f"{spec.path}: data", progress, **overrides)


def init_ray(spec: SearchSpec) -> None:
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


def check_trial_fits(spec: SearchSpec, cluster: bool) -> None:
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
    raise UserError(f"{message}; lower resources.cpu/resources.gpu (gpu: 0 trains on the CPU).")


def trial_runtime(spec: SearchSpec, out_dir: str | Path | None = None) -> TrialRuntime:
    """The worker-side settings of a space file (and of the run's storage, for ``out_dir``)."""
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


def run_options(spec: SearchSpec) -> dict[str, Any]:
    """``RunConfig`` keywords: retries per trial, and every checkpoint of a running trial kept.

    Keeping only the latest is not enough: Tune saves its experiment state at most every 10 s or so,
    so after the driver is killed the state it restores may name a checkpoint a few epochs old. A trial's
    checkpoints are deleted when it ends instead (``CheckpointCleanup``).
    """
    return {"failure_config": tune.FailureConfig(max_failures=int(spec.budget.max_failures)),
            "checkpoint_config": tune.CheckpointConfig(num_to_keep=None)}


def evaluate_plan(spec: SearchSpec, cache_entry: Path, progress: Any = None) -> EvaluatePlan | None:
    """The ``evaluate`` section's plan (its OOD datasets prepared and matched to the run's data), or None."""
    return plan_evaluate(spec.evaluate, spec.seed, spec.task.name, cache_entry, Context(spec.path, spec.lines),
                         progress)


def trial_context(spec: SearchSpec, out_dir: Path, cache_entry: Path, transfer: TransferPlan | None,
                  plan: LatencyPlan | None, evaluate: EvaluatePlan | None = None) -> TrialContext:
    """What every trial gets besides its configuration (sent once to Ray's object store)."""
    return TrialContext(cache_entry=str(cache_entry), out_dir=str(out_dir), epochs=spec.budget.epochs,
                        metric=spec.metric, mode=spec.mode, task=spec.task.name,
                        task_params=dict(spec.task.params), seed=spec.seed, space=spec.space,
                        threads=max(1, int(spec.resources.cpu)), gpu=float(spec.resources.gpu),
                        transfer=transfer,
                        runtime=trial_runtime(spec, out_dir),  # checkpoints, hang watchdog, node-local data
                        latency=plan,  # measured before training (ecgsearch.latency)
                        evaluate=evaluate)  # scored after the last epoch (ecgsearch.train.ood)


def make_scheduler(spec: SearchSpec) -> Any:
    """The trial scheduler plugin ``budget.scheduler`` names, created with its options."""
    info = get_registries().schedulers.get(spec.budget.scheduler)
    run = SchedulerRun(metric=OBJECTIVE, mode=spec.mode, max_t=spec.budget.epochs, space=spec.space, seed=spec.seed)
    try:
        return info.create(run, **dict(spec.budget.scheduler_params))
    except ValueError as error:  # an option the declaration could not judge (pbt with nothing to mutate, ...)
        raise UserError(f"{spec.path}: budget.scheduler: {error}") from None


def restore_tuner(out_dir: Path, trainable: Any) -> Any:
    """The Tuner restored from ``OUT/tune`` (None when there is nothing to restore).

    Killed before Tune saved any experiment state: the folder is set aside and the search starts again;
    trials already in results.parquet are recognised by their trial id and not trained again.
    """
    experiment = storage_of(out_dir).experiment  # OUT/tune, or URI/tune (ecgsearch.engine.storage)
    if tune.Tuner.can_restore(experiment):
        return tune.Tuner.restore(experiment, trainable=trainable, resume_unfinished=True,
                                  resume_errored=True, restart_errored=False)  # errored: by a killed driver
    state = out_dir / EXPERIMENT
    if state.exists():
        log.warning("no restorable Tune state in %s; restarting the search, keeping recorded trials", state)
        state.rename(out_dir / f"{EXPERIMENT}.incomplete-{int(time.time())}")
    return None


def build_tuner(spec: SearchSpec, out_dir: Path, cache_entry: Path, resume: bool,
                transfer: TransferPlan | None = None, plan: LatencyPlan | None = None,
                evaluate: EvaluatePlan | None = None) -> Any:
    """A Ray Tune ``Tuner`` for the space file (or the one restored from ``out_dir``)."""
    from ray.tune.search import ConcurrencyLimiter

    trainable = make_trainable(trial_context(spec, out_dir, cache_entry, transfer, plan, evaluate), spec.resources)
    restored = restore_tuner(out_dir, trainable) if resume else None
    if restored is not None:
        return restored
    # max_latency_ms: the predictor screens candidates (the kernel predictor builds them: candidate_models)
    screen = latency_screen(plan, out_dir, spec.seed, candidate_models(spec, cache_entry))
    shape = input_shape(open_dataset(cache_entry), spec.task.name, spec.task.params, spec.encoders)
    searcher: Any = make_searcher(spec, shape, OBJECTIVE, screen=screen, warm_start=warm_start(spec))
    if spec.budget.repeats > 1:  # each configuration with several seeds; the searcher learns their mean
        searcher = RepeatedSearcher(searcher, spec.budget.repeats)
    if spec.budget.max_concurrent:
        searcher = ConcurrencyLimiter(searcher, max_concurrent=spec.budget.max_concurrent)
    budget = search_budget(spec, out_dir)  # budget.time / gpu_hours, over every resume (engine.budget)
    if budget.limited:
        searcher = BudgetedSearcher(searcher, budget)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(metric=OBJECTIVE, mode=spec.mode, search_alg=searcher,
                                    scheduler=make_scheduler(spec), num_samples=spec.budget.trainings,
                                    reuse_actors=True,  # a fresh worker per trial pays seconds of imports
                                    trial_dirname_creator=lambda trial: f"{trial.config.get('_trial_id', trial.trial_id)}"),
        run_config=tune.RunConfig(name=EXPERIMENT, storage_path=storage_of(out_dir).tune_root, verbose=0,
                                  callbacks=[ResultsCallback(str(out_dir), spec.metric), *fault_callbacks(out_dir),
                                             *storage_callbacks(out_dir),
                                             *([BudgetCallback(budget)] if budget.limited else [])],
                                  **run_options(spec),  # retries (max_failures), checkpoints kept
                                  # checked after each epoch's report; the trial is recorded as stopped
                                  stop=TrialStopper(budget, spec.budget.trial_time_limit_s)),
    )


def warm_start(spec: SearchSpec) -> tuple[WarmPoint, ...]:
    """``search.warm_start``: the earlier runs' trials inside this space, with what was left out logged."""
    if not spec.search.warm_start:
        return ()
    try:
        warm = load_warm_start(spec.space, spec.search.warm_start, f"val.{spec.metric}")
    except UserError as error:
        raise UserError(f"{spec.path}: {error}") from None
    log.info("warm start: %s", warm.summary())
    return warm.points


def search_budget(spec: SearchSpec, out_dir: Path) -> SearchBudget:
    """The run's whole-search budget (``budget.time``, ``budget.gpu_hours``, ``budget.on_budget``)."""
    return SearchBudget(out_dir, spec.budget.time, spec.budget.gpu_hours, float(spec.resources.gpu),
                        spec.budget.on_budget)


def tune_adapter(spec: SearchSpec, out_dir: Path) -> Any:
    """A trainable of the space file for a Ray Tune user's own ``Tuner`` (``ecgsearch.Space.trainable``).

    The data, transfer and latency plans are made here, once, as a search makes them; each configuration
    of ``spec.space.to_tune()`` then trains as a trial (its best weights in ``out_dir/trials/<id>/``). The
    searcher, scheduler, callbacks and ``num_samples`` are the user's; no results table is written.
    """
    plan = latency_plan(spec)
    check_supported(spec, plan)
    out_dir = out_dir.resolve()  # Tune runs each trial in its own working folder
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_entry = prepare_data(spec)
    transfer = plan_transfer(spec, cache_entry)
    return make_trainable(trial_context(spec, out_dir, cache_entry, transfer, plan, evaluate_plan(spec, cache_entry)),
                          spec.resources, drawn_by_engine=False)


def run_search(spec: SearchSpec, out_dir: Path | str, resume: bool = False, display: Any = None,
               space_text: str | None = None) -> SearchOutcome:
    """Run (or resume) the search a space file describes; results land in ``out_dir``.

    space_text: the space file's text to keep in the run folder (a space built in Python has no file).
    """
    out_dir = open_run_storage(out_dir, resume).local  # a folder, or a URI's staging folder (engine.storage)
    check_out_dir(out_dir, resume)
    spec = resumed_spec(spec, out_dir) if resume else spec
    plan = latency_plan(spec)  # the one latency plan of this search
    check_supported(spec, plan)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        write_run_record(out_dir, spec.budget.trials)
        if space_text is not None:
            (out_dir / SPACE_COPY).write_text(space_text, encoding="utf-8")
        elif Path(spec.path).is_file():
            shutil.copyfile(spec.path, out_dir / SPACE_COPY)
    progress = display.data_progress if display else None
    cache_entry = prepare_data(spec, progress)
    transfer = plan_transfer(spec, cache_entry, progress)
    evaluate = evaluate_plan(spec, cache_entry, progress)  # OOD datasets prepared once, before Ray starts
    init_ray(spec)
    regs = get_registries()
    regs.manager.hook.ecgsearch_search_started(spec=spec, out_dir=out_dir)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the driver only builds candidates to cost them; the cores are the trials'
    try:
        build_tuner(spec, out_dir, cache_entry, resume, transfer, plan, evaluate).fit()
    finally:
        torch.set_num_threads(threads)
    measure_after_search(spec, out_dir, cache_entry, plan)  # latency.measure: pareto or best
    results = ResultsTable(out_dir).frame()
    regs.manager.hook.ecgsearch_search_finished(spec=spec, out_dir=out_dir, results=results)
    return SearchOutcome(out_dir=out_dir, results=results, metric=spec.metric, mode=spec.mode)
