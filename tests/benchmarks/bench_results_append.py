"""What appending a finished trial to the results table costs at 100 to 100,000 rows: the former whole-file
rewrite beside the row log, in one run.

    nice python tests/benchmarks/bench_results_append.py [--sizes 100 1000 10000 100000] [--appends 200]
    nice python tests/benchmarks/bench_results_append.py --full 100000   # a whole search's appends, from empty

Rows look like a search's: 28 columns (identity, hyperparameters of two architectures, each missing for
the other, validation and test metrics, epochs, time, costs). For each size N, a table of N rows is
written first (not timed), then, in a fresh folder each:

- **rewrite** (the table before the row log): the rows kept in memory, and every append writes the whole
  table to a temporary parquet file and renames it over ``results.parquet`` (``--old-appends`` of them);
- **log line**: ``ResultsTable.append`` on a compacted table of N rows: one JSON line, ``O_APPEND`` +
  ``fsync`` (``--appends`` of them; median and slowest);
- **compaction**: folding a log of ``COMPACT_FRACTION`` x N rows into the parquet file (read, merge,
  write, ``fsync``, rename), which the writer does once every ``COMPACT_FRACTION`` x N appends;
- **per append**: the mean cost of an append with the compactions spread over the appends between them
  (median log line + compaction / (``COMPACT_FRACTION`` x N));
- **read**: ``read_results`` of N rows, its log empty, and at its fullest (``COMPACT_FRACTION`` x N lines,
  just before a compaction).

``--full N`` appends N rows to an empty table through ``ResultsTable`` and prints the mean append cost of
each tenth of the run, compactions included: flat if an append costs the same at any size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgsearch.results import ResultsTable, column_order, read_results
from ecgsearch.results import table as table_module
from ecgsearch.results.rowlog import encode_row
from ecgsearch.results.table import RESULTS_FILE, RESULTS_LOG


def make_rows(n: int, start: int = 0, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed + start)
    rows = []
    for i in range(start, start + n):
        resnet = bool(i % 2)
        row: dict[str, Any] = {
            "trial_id": f"t{i:06d}", "status": "ok" if i % 10 else "failed", "error": None if i % 10 else "OOM",
            "architecture": "resnet" if resnet else "convnext", "optimizer": "adamw", "schedule": "cosine",
            "hp.batch_size": int(rng.choice([32, 64, 128])), "hp.optimizer.adamw.lr": float(rng.random() / 100),
            "hp.optimizer.adamw.weight_decay": float(rng.random() / 10),
            "epochs": int(rng.integers(1, 20)), "train_seconds": float(rng.random() * 600),
            "cost.params": int(rng.integers(10**4, 10**7)), "cost.macs": int(rng.integers(10**6, 10**9)),
            "cost.flops": int(rng.integers(10**6, 10**9)),
        }
        if resnet:
            row |= {"hp.architecture.resnet.depth": int(rng.choice([8, 16, 34])),
                    "hp.architecture.resnet.channels": int(rng.choice([16, 32, 64]))}
        else:
            row |= {"hp.architecture.convnext.width": int(rng.choice([32, 64])),
                    "hp.architecture.convnext.kernel": int(rng.choice([7, 9]))}
        for metric in ("macro_auroc", "macro_f1", "challenge_score", "loss", "accuracy"):
            row[f"val.{metric}"] = float(rng.random())
            row[f"test.{metric}"] = float(rng.random())
        rows.append(row)
    return rows


class RewriteTable:
    """The results table before the row log (git history of ``ecgsearch/results/table.py``): the rows in
    memory, the whole file rewritten per append."""

    def __init__(self, folder: Path, rows: list[dict[str, Any]]) -> None:
        self.path = folder / RESULTS_FILE
        self.rows = list(rows)

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(dict(row))
        frame = pd.DataFrame(self.rows)
        frame = frame[column_order(frame.columns)]
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        table_module._parquet_safe(frame).to_parquet(tmp, index=False)
        os.replace(tmp, self.path)


def stored_table(folder: Path, rows: list[dict[str, Any]]) -> None:
    """A compacted table of ``rows`` (what the writer leaves after a compaction)."""
    folder.mkdir(parents=True)
    frame = pd.DataFrame(rows)
    table_module._write_parquet(table_module._parquet_safe(frame[column_order(frame.columns)]), folder / RESULTS_FILE)


def timed(action: Any) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def measure(n: int, appends: int, old_appends: int, root: Path) -> dict[str, float]:
    rows = make_rows(n)
    extra = make_rows(max(appends, old_appends), start=n)
    backlog = int(n * table_module.COMPACT_FRACTION)

    old = RewriteTable(root / f"old{n}", rows)
    old.path.parent.mkdir()
    old_ms = [1000 * timed(lambda r=r: old.append(r)) for r in extra[:old_appends]]

    stored_table(root / f"new{n}", rows)
    table = ResultsTable(root / f"new{n}")
    line_ms = [1000 * timed(lambda r=r: table.append(r)) for r in extra[:appends]]

    folder = root / f"full{n}"  # a log at its fullest: COMPACT_FRACTION x N lines beside N rows
    stored_table(folder, rows)
    with open(folder / RESULTS_LOG, "wb") as log:
        log.writelines(encode_row(r) for r in make_rows(backlog, start=n))
    read_empty = 1000 * timed(lambda: read_results(root / f"old{n}"))
    read_full = 1000 * timed(lambda: read_results(folder))
    compact_ms = 1000 * timed(ResultsTable(folder).compact)
    assert len(pd.read_parquet(folder / RESULTS_FILE)) == n + backlog and not (folder / RESULTS_LOG).exists()
    line = statistics.median(line_ms)
    return {"rewrite": statistics.median(old_ms), "line": line, "slowest": max(line_ms), "compact": compact_ms,
            "per_append": line + compact_ms / max(backlog, 1), "read": read_empty, "read_full": read_full}


def full_run(n: int, root: Path) -> None:
    table = ResultsTable(root / "full")
    rows = make_rows(n)
    tenth = max(n // 10, 1)
    print(f"{n} appends to an empty table (compactions included), mean ms per append in each tenth:")
    started = time.perf_counter()
    for start in range(0, n, tenth):
        part = time.perf_counter()
        worst = 0.0
        for row in rows[start:start + tenth]:
            worst = max(worst, timed(lambda row=row: table.append(row)))
        spent = time.perf_counter() - part
        print(f"  rows {start:>7}-{start + tenth:<7} {1000 * spent / tenth:7.2f} ms  (slowest {1000 * worst:7.1f} ms)",
              flush=True)
    print(f"  total {time.perf_counter() - started:.1f} s; {len(read_results(root / 'full'))} rows read back")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000, 100_000])
    parser.add_argument("--appends", type=int, default=200, help="log-line appends timed per size")
    parser.add_argument("--old-appends", type=int, default=5, help="whole-file rewrites timed per size")
    parser.add_argument("--full", type=int, default=0, help="also append this many rows from empty")
    parser.add_argument("--dir", default=None, help="where to write (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as root:
        print(f"results table append, 28 columns, COMPACT_FRACTION {table_module.COMPACT_FRACTION}, "
              f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")
        print(f"{'rows':>8} | {'rewrite':>9} | {'log line':>9} | {'slowest':>8} | {'compaction':>10} | "
              f"{'per append':>10} | {'read':>8} | {'read+log':>8}   (ms)")
        for n in args.sizes:
            m = measure(n, args.appends, args.old_appends, Path(root))
            print(f"{n:>8} | {m['rewrite']:9.1f} | {m['line']:9.2f} | {m['slowest']:8.1f} | {m['compact']:10.0f} | "
                  f"{m['per_append']:10.2f} | {m['read']:8.0f} | {m['read_full']:8.0f}", flush=True)
        if args.full:
            full_run(args.full, Path(root))


if __name__ == "__main__":
    main()
