"""Regenerate ``table.parquet``: every configuration of the grid spaces here, trained by ecgsearch.

    nice python tests/benchmarks/tabular/make_table.py

Each ``grid_*.yaml`` is parsed by ecgsearch, its data prepared by ``ecgsearch.engine.prepare_data``,
and every grid point (``Space.sample(seed, index)`` for ``index < grid_size``) trained by
``ecgsearch.train.trial.run_trial`` and turned into a results row by ``ecgsearch.engine.callbacks.result_row`` with
the costs of ``ecgsearch.search.candidates.candidate_costs``: exactly what a Ray Tune worker runs for
``ecgsearch run``, but in this process, because on a loaded 2-core machine a Tune worker's per-trial
start-up (tens of seconds) dwarfs these one-second trials.

Every configuration is trained ``--replicates`` times with different seeds and the table holds the
mean validation metric (``val.macro_auroc``) and its spread (``replicate_sd``): with tiny models on
small data, one seed's value carries enough noise to reshuffle the top 1%. Rows are appended to
``WORK/<name>/results.parquet`` as they finish, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import pandas as pd
import torch

from ecgsearch.data.cache import open_dataset
from ecgsearch.engine import prepare_data
from ecgsearch.engine.callbacks import result_row
from ecgsearch.plugins import get_registries
from ecgsearch.results import ResultsTable
from ecgsearch.search.candidates import InputShape, candidate_costs
from ecgsearch.space import load_space
from ecgsearch.train.context import TrialContext
from ecgsearch.train.trial import run_trial

HERE = Path(__file__).resolve().parent
TABLE = HERE / "table.parquet"
KEEP_PREFIXES = ("hp.", "cost.")
KEEP = ("trial_id", "status", "error", "architecture", "optimizer", "epochs", "train_seconds")
log = logging.getLogger("make_table")


def run_grid(path: Path, work: Path, replicates: int) -> pd.DataFrame:
    """Train every grid point of one space file ``replicates`` times; one row per (point, replicate)."""
    spec = load_space(path)
    entry = prepare_data(spec)
    data = open_dataset(entry)
    task = get_registries().tasks.get(spec.task.name).create(data.targets.shape[1], **dict(spec.task.params))
    shape = InputShape(leads=data.signals.shape[1], samples=data.signals.shape[2], outputs=task.num_outputs)
    context = TrialContext(cache_entry=str(entry), out_dir="", epochs=spec.budget.epochs, metric=spec.metric,
                           mode=spec.mode, task=spec.task.name, task_params=dict(spec.task.params),
                           seed=spec.seed, space=spec.space, threads=1)
    table = ResultsTable(work / spec.name)
    done = table.finished_ids()
    points = spec.space.grid_size()
    for index in range(points):
        config = spec.space.sample(spec.seed, index)
        try:
            costs = candidate_costs(config, spec.space, shape).columns()
        except Exception:  # the trial raises the same error below and is recorded as failed
            costs = {}
        for replicate in range(replicates):
            trial_id = f"{spec.name}/p{index:03d}/r{replicate}"
            if trial_id in done:
                continue
            full = {**config, "_trial_id": trial_id, "_seed": 1_000 * replicate + index, "_costs": costs}
            started = time.perf_counter()
            try:
                last = run_trial(full, context, report=lambda result: None)
                table.append(result_row(full, last))
            except Exception as error:  # as the engine records a trial whose worker raised
                last = {}
                table.append(result_row(full, {}, status="failed", error=f"{type(error).__name__}: {error}"))
            log.info("%s: %s = %.4f (%.1f s)", trial_id, spec.metric, last.get(f"val.{spec.metric}", float("nan")),
                     time.perf_counter() - started)
    return table.frame()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/ecgsearch-tabular", help="where the per-trial rows are kept")
    parser.add_argument("--replicates", type=int, default=2, help="seeds per configuration (averaged)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    rows = pd.concat([run_grid(path, Path(args.work), args.replicates) for path in sorted(HERE.glob("grid_*.yaml"))],
                     ignore_index=True)
    rows["point"] = rows["trial_id"].str.rsplit("/", n=1).str[0]
    metric = [c for c in rows.columns if c.startswith("val.")]
    first = rows.groupby("point", sort=False).first()
    keep = [c for c in rows.columns if c in KEEP or c.startswith(KEEP_PREFIXES)]
    table = first[[c for c in keep if c != "trial_id"]].copy()
    for column in metric:
        table[column] = rows.groupby("point", sort=False)[column].mean()
    key = "val.macro_auroc"
    table["replicate_sd"] = rows.groupby("point", sort=False)[key].std()
    table["replicates"] = rows.groupby("point", sort=False)[key].count()
    table["train_seconds"] = rows.groupby("point", sort=False)["train_seconds"].mean()
    table = table.reset_index().rename(columns={"point": "trial_id"})
    table.to_parquet(TABLE, index=False)
    print(f"{len(table)} configurations x {args.replicates} seeds -> {TABLE}; "
          f"{int((table['status'] != 'ok').sum())} failed (cannot be built)")
    print(table.groupby("architecture")[key].describe().to_string())
    print(f"mean replicate sd {table['replicate_sd'].mean():.4f}; spread of the table {table[key].std():.4f}")


if __name__ == "__main__":
    main()
