"""Measure the trained trials of a finished run: ``ecgsearch bench`` and ``latency.measure: pareto|best``.

Each chosen trial's checkpoint is measured on every backend in a separate process (``latency.runner``).
The rows (trial, architecture, costs, the run metric, ``latency.<backend>.*``) go to ``RUN_DIR/bench.parquet``;
after a search with ``measure: pareto`` or ``best`` they are also merged into ``results.parquet``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from ecgsearch.analysis.pareto import pareto_front
from ecgsearch.analysis.repeats import per_config
from ecgsearch.data.cache import open_dataset
from ecgsearch.errors import UserError
from ecgsearch.latency.backend import backend_status
from ecgsearch.latency.options import BackendOptions, MeasureSettings
from ecgsearch.latency.plan import LatencyPlan, latency_plan, model_ref_for
from ecgsearch.latency.request import DataRef, MeasureRequest
from ecgsearch.latency.runner import DEFAULT_BACKEND_TIMEOUT_S, measure_isolated
from ecgsearch.plugins import get_registries
from ecgsearch.results import (
    RESULTS_FILE,
    RunFolder,
    checkpoint_path,
    column_order,
    read_results,
)
from ecgsearch.results.configs import config_keys, ranked

if TYPE_CHECKING:
    from ecgsearch.space import SearchSpec

log = logging.getLogger(__name__)

BENCH_FILE = "bench.parquet"
SELECTIONS: tuple[str, ...] = ("best", "pareto", "all")
REFERENCE_PREFIX = "reference."  # the PyTorch model's metric, computed next to each backend's


def select_trials(results: pd.DataFrame, metric: str, mode: str, which: str, run_dir: Path) -> list[str]:
    """Trial ids with saved weights: the best by the run metric, its Pareto front vs FLOPs, or all. With repeats
    (several seeds per configuration) best and pareto compare configurations by their mean over seeds and
    measure one seed of each chosen configuration, its best (the latency of a configuration's seeds is one)."""
    if which not in SELECTIONS:
        raise UserError(f"--trials: '{which}' is not a selection (allowed: {', '.join(SELECTIONS)}); "
                        "pass best, pareto or all.")
    key = f"val.{metric}"
    values = pd.to_numeric(results.get(key, pd.Series(np.nan, index=results.index)), errors="coerce")
    weighted = results[[checkpoint_path(run_dir, str(t)).is_file() for t in results["trial_id"]]]
    if which == "all":
        chosen = weighted
    else:
        ok = ranked(weighted[(weighted["status"] == "ok") & np.isfinite(values.loc[weighted.index])], key, mode)
        representatives = ok[~config_keys(ok).duplicated()]  # each configuration's best seed, best first
        if which == "best" or not len(ok):
            chosen = representatives.head(1)
        else:
            front = pareto_front(per_config(ok), metric, mode, cost="cost.flops")
            chosen = representatives[config_keys(representatives).isin(front["trial_id"])]
    if chosen.empty:
        raise UserError(f"{run_dir}: no trial with saved weights{'' if which == 'all' else ' and a ' + key} to "
                        f"measure for --trials {which}; run the search longer or choose --trials all.")
    return [str(t) for t in chosen["trial_id"]]


def check_backends(names: Iterable[str], options: Mapping[str, BackendOptions]) -> None:
    """Every named backend is registered and usable here; otherwise one ``UserError`` sentence."""
    registry = get_registries().backends
    for name in names:
        if name not in registry:
            raise UserError(f"--backend: {registry.unknown_message(name)}")
        usable, reason = backend_status(registry.get(name), options[name])
        if not usable:
            raise UserError(f"--backend {name}: {reason}; install what it needs or choose another backend "
                            "(`ecgsearch plugins` lists them).")


def measure_trials(run: RunFolder, spec: SearchSpec, results: pd.DataFrame, trial_ids: list[str], backends: tuple[str, ...],
                   options: Mapping[str, BackendOptions], settings: MeasureSettings, cache_entry: Path,
                   accuracy: bool = False, backend_timeout_s: float = DEFAULT_BACKEND_TIMEOUT_S,
                   progress: Callable[[int, int, str], None] | None = None) -> pd.DataFrame:
    """One row per trial: identity, costs, the run metric and each backend's ``latency.*`` columns."""
    arrays = open_dataset(Path(cache_entry))
    rows = []
    by_id = results.set_index("trial_id", drop=False)
    data = DataRef(cache_entry=str(cache_entry), task=spec.task.name, task_params=dict(spec.task.params),
                   metric=spec.metric, accuracy_split="val" if accuracy else None)
    for done, trial_id in enumerate(trial_ids):
        if progress:
            progress(done, len(trial_ids), trial_id)
        checkpoint = run.load_checkpoint(trial_id)
        model = model_ref_for(checkpoint["config"], spec.space, arrays, spec.task.name, spec.task.params,
                              checkpoint=str(run.checkpoint_path(trial_id)), encoders=spec.encoders)
        measured = measure_isolated(MeasureRequest(model, backends, options, settings, data),
                                    backend_timeout_s=backend_timeout_s)
        source = by_id.loc[trial_id]
        row: dict[str, Any] = {"trial_id": trial_id, "architecture": source.get("architecture"),
                               f"val.{spec.metric}": source.get(f"val.{spec.metric}"),
                               **{k: v for k, v in source.items() if str(k).startswith("cost.")}}
        for result in measured.values():
            row.update(result.columns(spec.metric))
            if result.reference_metric is not None:
                row[f"{REFERENCE_PREFIX}val.{spec.metric}"] = result.reference_metric
        rows.append(row)
    if progress:
        progress(len(trial_ids), len(trial_ids), "")
    frame = pd.DataFrame(rows)
    return frame[column_order(frame.columns)]


def write_frame(frame: pd.DataFrame, path: Path) -> Path:
    """Write a parquet file atomically (temporary file + rename)."""
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


def merge_into_results(out_dir: Path, measured: pd.DataFrame) -> pd.DataFrame:
    """``results.parquet`` with the ``latency.*`` columns of ``measured`` set on its trials' rows."""
    results = read_results(out_dir)
    columns = [c for c in measured.columns if c.startswith("latency.")]
    update = measured.set_index("trial_id")[columns]
    merged = results.set_index("trial_id", drop=False)
    for column in columns:
        if column not in merged.columns:
            merged[column] = None
        merged[column] = merged[column].astype(object)
        merged.loc[update.index, column] = update[column].astype(object)
    merged = merged.reset_index(drop=True)
    merged = merged[column_order(merged.columns)]
    write_frame(merged, Path(out_dir) / RESULTS_FILE)
    return merged


def measure_after_search(spec: SearchSpec, out_dir: Path, cache_entry: Path,
                         plan: LatencyPlan | None = None) -> pd.DataFrame | None:
    """``latency.measure: pareto|best``: measure those trials now and add their columns to the results.

    plan: the search's latency plan (the engine passes the one it built; default: the spec's).
    """
    plan = plan if plan is not None else latency_plan(spec)
    if plan is None or plan.measure == "all":
        return None
    run = RunFolder(Path(out_dir), "latency")
    results = run.results() if (Path(out_dir) / RESULTS_FILE).exists() else None
    if results is None or results.empty:
        return None
    try:
        trial_ids = select_trials(results, spec.metric, spec.mode, plan.measure, Path(out_dir))
    except UserError as error:
        log.warning("no latency measured after the search: %s", error)
        return None
    log.info("measuring the latency of %d %s trial(s)", len(trial_ids), plan.measure)
    try:
        frame = measure_trials(run, spec, results, trial_ids, plan.backends, plan.options, plan.settings, cache_entry,
                               backend_timeout_s=plan.backend_timeout_s)
    except Exception as error:  # the search itself is done and recorded: a failure here must not undo it
        log.error("latency after the search failed (%s: %s); measure later with `ecgsearch bench %s`",
                  type(error).__name__, error, out_dir)
        return None
    write_frame(frame, Path(out_dir) / BENCH_FILE)
    merge_into_results(Path(out_dir), frame)
    return frame
