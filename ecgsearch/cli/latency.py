"""``ecgsearch bench`` (latency of a run's trials per backend) and ``ecgsearch export`` (deployable model).

Both work on the output folder of a finished ``ecgsearch run``; the measuring happens in separate
processes (``ecgsearch.latency.runner``), so a crashing runtime shows up as an error in the table.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import TYPE_CHECKING, Any

from ecgsearch.errors import UserError
from ecgsearch.latency.options import HINTS, PRECISIONS, BackendOptions, MeasureSettings

if TYPE_CHECKING:
    import pandas as pd

    from ecgsearch.space import SearchSpec

REFERENCE_BACKEND = "torch-cpu"  # speedups are relative to PyTorch eager when it was measured
ERROR_WIDTH = 80


def parse_precisions(values: list[str], backends: tuple[str, ...]) -> dict[str, str]:
    """``--precision int8`` (every backend) or ``--precision openvino-cpu=int8`` (one backend)."""
    chosen = {b: "fp32" for b in backends}
    for value in values:
        backend, _, precision = value.rpartition("=")
        if precision not in PRECISIONS:
            raise UserError(f"--precision: '{precision}' is not a precision (allowed: {', '.join(PRECISIONS)}); "
                            "pass e.g. --precision int8 or --precision openvino-cpu=int8.")
        if backend and backend not in chosen:
            raise UserError(f"--precision {value}: '{backend}' is not one of the --backend names "
                            f"({', '.join(backends)}); name a measured backend.")
        for name in ([backend] if backend else backends):
            chosen[name] = precision
    return chosen


def bench_options(args: argparse.Namespace, spec: SearchSpec) -> tuple[tuple[str, ...], dict[str, BackendOptions],
                                                                   MeasureSettings]:
    """Backends, per-backend options and measuring settings from the flags (defaults: the run's ``latency``)."""
    section = spec.latency
    backends = tuple(dict.fromkeys(args.backend or (section.backends if section else ())))
    if not backends:
        raise UserError("--backend: name at least one backend (e.g. --backend torch-cpu --backend onnxruntime-cpu); "
                        "this run's space file has no latency section to take them from.")
    for flag, value in (("--batch-size", args.batch_size), ("--threads", args.threads)):
        if value is not None and value < 1:
            raise UserError(f"{flag}: {value} is not an integer >= 1; pass a positive number.")
    if not args.time_budget > 0:
        raise UserError(f"--time-budget: {args.time_budget} is not a number > 0; pass seconds, e.g. 2.")
    threads = args.threads or (section.threads if section and section.threads else 1)
    precisions = parse_precisions(args.precision, backends)
    hint = args.hint or (section.hint if section else "latency")
    options = {b: BackendOptions(threads=threads, precision=precisions[b], hint=hint) for b in backends}
    batch = args.batch_size or (section.batch_size if section else 1)
    settings = MeasureSettings(batch_size=batch, time_budget_s=args.time_budget)
    return backends, options, settings


def _ms(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) and math.isfinite(value) else "-"


def bench_table(frame: pd.DataFrame, backends: tuple[str, ...], metric: str) -> Any:
    """A rich table: per trial, each backend's median (p90) and its speedup over PyTorch eager."""
    from rich.table import Table

    table = Table("trial", "architecture", f"val.{metric}", *[f"{b} p50 (p90) ms" for b in backends],
                  *[f"{b} speedup" for b in backends if b != REFERENCE_BACKEND and REFERENCE_BACKEND in backends])
    for _, row in frame.iterrows():
        cells = []
        speedups = []
        reference = row.get(f"latency.{REFERENCE_BACKEND}.p50_ms")
        for b in backends:
            error = row.get(f"latency.{b}.error")
            p50 = row.get(f"latency.{b}.p50_ms")
            if isinstance(error, str) and error:
                cells.append(f"error: {error[:ERROR_WIDTH]}")  # the whole reason is in bench.parquet
            else:
                cells.append(f"{_ms(p50)} ({_ms(row.get(f'latency.{b}.p90_ms'))})")
            if b != REFERENCE_BACKEND and REFERENCE_BACKEND in backends:
                ok = isinstance(p50, float) and isinstance(reference, float) and p50 > 0
                speedups.append(f"{reference / p50:.2f}" if ok else "-")
        score = row.get(f"val.{metric}")
        table.add_row(str(row["trial_id"]), str(row.get("architecture")), _ms(score), *cells, *speedups)
    return table


def cmd_bench(args: argparse.Namespace) -> int:
    from rich.console import Console

    # deferred: measuring imports torch and the runtimes
    from ecgsearch.data.prepare import prepare_data
    from ecgsearch.latency.bench import (
        BENCH_FILE,
        check_backends,
        measure_trials,
        select_trials,
        write_frame,
    )
    from ecgsearch.latency.predictor import cross_validate
    from ecgsearch.results import open_run

    run = open_run(args.run_dir, "bench")
    run_dir, spec, results = run.path, run.spec, run.results()
    backends, options, settings = bench_options(args, spec)
    check_backends(backends, options)
    if args.trial:
        trial_ids = [run.choose_trial(t, results) for t in args.trial]
    else:
        trial_ids = select_trials(results, spec.metric, spec.mode, args.trials, run_dir)
    frame = measure_trials(run, spec, results, trial_ids, backends, options, settings,
                           prepare_data(spec.data, f"{spec.path}: data"), accuracy=args.accuracy,
                           backend_timeout_s=args.timeout)
    path = write_frame(frame, run_dir / BENCH_FILE)
    scores = [s for s in (cross_validate(frame, b) for b in backends) if s is not None]
    if args.json:
        print(json.dumps({"file": str(path), "rows": json.loads(frame.to_json(orient="records")),
                          "predictor": [s.__dict__ for s in scores]}, indent=2))
        return 0
    console = Console(width=None if sys.stdout.isatty() else 200)
    console.print(bench_table(frame, backends, spec.metric))
    if args.accuracy:
        for b in backends:
            column = f"latency.{b}.val.{spec.metric}"
            if column in frame:
                reference = frame.get(f"reference.val.{spec.metric}")
                console.print(f"{b}: val.{spec.metric} " + ", ".join(
                    f"{t} {_ms(v)} (PyTorch {_ms(r)})" for t, v, r in
                    zip(frame["trial_id"], frame[column], reference if reference is not None else [math.nan] * len(frame))))
    for score in scores:
        console.print(f"latency predictor: {score.sentence()}")
    console.print(f"bench: {path}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    # deferred: imports torch and the runtimes
    from ecgsearch.deploy.export import export_trial

    done = export_trial(args.run_dir, args.trial, args.format, args.out, precision=args.precision,
                        bootstrap=args.bootstrap)
    verdict = "ok" if done.precision != "fp32" or done.max_abs_diff <= 1e-3 else "LARGER THAN 1e-3"
    print(f"trial {done.trial_id} exported as {done.format} ({done.precision}, by {done.backend}): "
          + ", ".join(str(f) for f in done.files))
    print(f"numerics check: max abs difference vs PyTorch {done.max_abs_diff:.3g} ({verdict})")
    return 0


def add_parser(sub: Any) -> None:
    """``bench`` and ``export`` subcommands."""
    bench = sub.add_parser("bench", help="measure the latency of a run's trials on hardware backends")
    bench.add_argument("run_dir", help="the --out folder of a run")
    bench.add_argument("--trials", choices=("best", "pareto", "all"), default="best",
                       help="which trials: the best, the Pareto front of the metric vs FLOPs, or all (default best)")
    bench.add_argument("--trial", action="append", default=[], metavar="ID", help="measure this trial (repeatable)")
    bench.add_argument("--backend", action="append", default=[], metavar="NAME",
                       help="a latency backend (repeatable; default: the run's latency.backends)")
    bench.add_argument("--batch-size", type=int, help="batch size (default: the run's, else 1)")
    bench.add_argument("--threads", type=int, help="runtime threads (default: the run's, else 1)")
    bench.add_argument("--precision", action="append", default=[], metavar="[BACKEND=]PRECISION",
                       help=f"precision for all or one backend ({', '.join(PRECISIONS)}; default fp32)")
    bench.add_argument("--hint", choices=HINTS, help="OpenVINO performance hint (default latency)")
    bench.add_argument("--time-budget", type=float, default=2.0, metavar="S",
                       help="seconds of timing per backend and trial (default 2)")
    bench.add_argument("--accuracy", action="store_true",
                       help="also compute the run metric on the validation split from each backend's outputs")
    bench.add_argument("--timeout", type=float, default=300.0, metavar="S",
                       help="give up on a backend after this long (default 300)")
    bench.add_argument("--json", action="store_true", help="machine-readable output")
    bench.set_defaults(func=cmd_bench)

    export = sub.add_parser("export", help="write a trial as a deployable ONNX or OpenVINO model, numerics checked")
    export.add_argument("run_dir", help="the --out folder of a run")
    export.add_argument("--trial", help="a trial id (default: the best by the run's metric)")
    export.add_argument("--format", required=True, choices=("onnx", "openvino"))
    export.add_argument("--out", required=True, help="folder for the model files")
    export.add_argument("--precision", default="fp32", choices=("fp32", "int8"),
                        help="fp32, or int8 (OpenVINO, NNCF post-training quantisation on training records)")
    export.add_argument("--bootstrap", type=int, metavar="N",
                        help="resamples of the test records for the model card's metric intervals (default 200; "
                             "0: none)")
    export.set_defaults(func=cmd_export)
