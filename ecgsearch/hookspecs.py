"""Every hook a plugin can implement. These docstrings are the plugin reference (docs/plugins.md).

A plugin is a module (or object) with functions decorated by ``ecgsearch.hookimpl`` and named after
the hooks below. Built-in plugins (``ecgsearch_plugins.*``) are registered exactly like third-party ones,
which are found through the ``ecgsearch`` entry-point group::

    [project.entry-points.ecgsearch]
    my_models = "my_package.ecg_models"

Collection hooks return a list of info records (``ecgsearch.infos``); all plugins' lists are joined
and a name registered twice within a kind is an error naming both plugins. Lifecycle hooks are called
in the driver process and their return values are ignored: use them to notify Slack, a queue...
(MLflow, TensorBoard and W&B are built-in trackers: ``ecgsearch_register_trackers``, docs/tracking.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import pluggy

from ecgsearch.infos import (
    ArchitectureInfo,
    BackendInfo,
    DatasetInfo,
    MetricInfo,
    OptimizerInfo,
    ScheduleInfo,
    SchedulerInfo,
    SearcherInfo,
    SurrogateInfo,
    TaskInfo,
    TrackerInfo,
)

if TYPE_CHECKING:  # annotations only: the contracts import no stage
    import pandas as pd

    from ecgsearch.space import SearchSpec

PROJECT = "ecgsearch"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- collection hooks -------------------------------------------------------------------------


@hookspec
def ecgsearch_register_architectures() -> list[ArchitectureInfo]:
    """Return the model families (and named variants) this plugin provides.

    Each ``ArchitectureInfo.factory(in_leads, num_samples, num_outputs, **hparams)`` returns a
    ``torch.nn.Module`` mapping ``(batch, leads, samples)`` to ``(batch, num_outputs)``. Its
    ``default_space`` is the sub-space used by ``architecture: {NAME: {default: true}}``.

    Not firstresult: every plugin's list is collected.
    """


@hookspec
def ecgsearch_register_optimizers() -> list[OptimizerInfo]:
    """Return optimizers: ``OptimizerInfo.factory(parameters, **hparams) -> torch.optim.Optimizer``.

    Not firstresult: every plugin's list is collected.
    """


@hookspec
def ecgsearch_register_schedules() -> list[ScheduleInfo]:
    """Return learning-rate schedules: ``ScheduleInfo.factory(optimizer, run, **hparams) -> Schedule``.

    ``run`` (``ecgsearch.ScheduleRun``) says how many epochs and optimizer steps per epoch the
    schedule spans and whether the search metric is maximised or minimised; the returned object
    (``ecgsearch.Schedule``) is stepped after every optimizer step when ``per_step`` is true,
    and after every epoch with that epoch's validation metric. A space file picks one with
    ``space: {schedule: {NAME: {...}}}``; without it the learning rate stays constant.

    Not firstresult: every plugin's list is collected.
    """


@hookspec
def ecgsearch_register_datasets() -> list[DatasetInfo]:
    """Return data sources: ``DatasetInfo.factory(**data_params) -> ecgsearch.EcgSource``.

    ``data_params`` are the keys of the space file's ``data`` section other than ``dataset``,
    ``cache_dir`` and ``seed``. The source's ``build()`` returns arrays that the core caches once per
    (dataset, parameters) key and memory-maps into every trial.

    Not firstresult: every plugin's list is collected.
    """


@hookspec
def ecgsearch_register_tasks() -> list[TaskInfo]:
    """Return tasks: ``TaskInfo.factory(num_targets, **params) -> ecgsearch.Task``.

    A task says how many outputs the model needs, computes the loss, and turns outputs into the
    scores the metrics read. Not firstresult: every plugin's list is collected.
    """


@hookspec
def ecgsearch_register_metrics() -> list[MetricInfo]:
    """Return metrics: ``MetricInfo.factory() -> fn(y_true, y_score, label_names) -> float``.

    ``MetricInfo.mode`` (``max`` or ``min``) sets the search direction for a space file that optimises
    this metric. Not firstresult: every plugin's list is collected.
    """


@hookspec
def ecgsearch_register_backends() -> list[BackendInfo]:
    """Return hardware latency backends (``torch-cpu``, ``onnxruntime-cpu``, ``openvino-cpu``, ...).

    Not firstresult: every plugin's list is collected.
    """


@hookspec
def ecgsearch_register_surrogates() -> list[SurrogateInfo]:
    """Return surrogate regressors used to predict trial performance from hyperparameters.

    ``SurrogateInfo.factory(seed, **params)`` returns an object with scikit-learn's ``fit(X, y)`` and
    ``predict(X)``; with ``has_uncertainty`` also ``predict_mean_std(X) -> (mean, std)`` (the surrogate
    search's acquisition needs the spread). ``feature_importances_`` is used when present. Not
    firstresult: every plugin's list is collected.
    """


@hookspec
def ecgsearch_register_schedulers() -> list[SchedulerInfo]:
    """Return trial schedulers (``fifo``, ``asha``, ``hyperband``, ``median_stopping``, ``pbt``, ...).

    ``SchedulerInfo.factory(run, **options)`` returns a Ray Tune ``TrialScheduler``; ``run`` is an
    ``ecgsearch.SchedulerRun``. A space file picks one with ``budget: {scheduler: NAME}`` or
    ``budget: {scheduler: {name: NAME, option: value}}``, options checked against ``params``.

    Not firstresult: every plugin's list is collected.
    """


@hookspec
def ecgsearch_register_searchers() -> list[SearcherInfo]:
    """Return searchers (``random``, ``grid``, ``surrogate``, ``optuna``, ...).

    ``SearcherInfo.factory(problem, **options)`` returns a Ray Tune ``Searcher`` whose suggestions carry
    the engine's private keys (``problem.annotate``); ``problem`` is an ``ecgsearch.SearchProblem``. A
    space file picks one with ``search: {algorithm: NAME, option: value}``, options checked against
    ``params``.

    Not firstresult: every plugin's list is collected.
    """


@hookspec
def ecgsearch_register_trackers() -> list[TrackerInfo]:
    """Return experiment trackers (``mlflow``, ``tensorboard``, ``wandb``, ...).

    ``TrackerInfo.factory(spec, out_dir, **settings)`` returns the tracker of one search, created in the
    driver when the search starts; the built-in ``tracking`` plugin then passes every lifecycle hook on to
    it (``trial_started``, ``trial_result``, ``trial_finished``, ``search_finished`` methods, each optional).
    A space file turns one on with ``tracking: {NAME: {setting: value}}``, settings checked against
    ``params``; a tracker whose ``requires`` are not installed is refused when the file is read.

    Not firstresult: every plugin's list is collected.
    """


# --- lifecycle hooks ---------------------------------------------------------------------------


@hookspec
def ecgsearch_search_started(spec: SearchSpec, out_dir: Path) -> None:
    """Called once in the driver before the first trial starts.

    spec: the parsed ``ecgsearch.space.SearchSpec``; out_dir: where results are written.
    """


@hookspec
def ecgsearch_trial_started(trial_id: str, config: Mapping[str, Any]) -> None:
    """Called in the driver when a trial starts, with its sampled (active) hyperparameters."""


@hookspec
def ecgsearch_trial_result(trial_id: str, epoch: int, metrics: Mapping[str, float]) -> None:
    """Called in the driver after each epoch a trial reports (not for a trial the table already holds).

    epoch: the epoch just finished (1, 2, ...); metrics: that epoch's own numbers, ``loss``,
    ``samples_per_second`` and its validation scores ``val.<metric>`` (the row's ``val.*`` columns are
    the best epoch's instead).
    """


@hookspec
def ecgsearch_trial_finished(trial_id: str, row: Mapping[str, Any]) -> None:
    """Called in the driver after a trial's row was written to ``results.parquet``.

    row: the row exactly as in the results table (``status``, ``val.<metric>``, ``cost.flops``, ...).
    """


@hookspec
def ecgsearch_search_finished(spec: SearchSpec, out_dir: Path, results: pd.DataFrame) -> None:
    """Called once in the driver when the search ends; ``results`` is the results ``DataFrame``."""
