"""The ``ecgsearch`` command line: run, validate, plugins, evaluate.

User errors print one sentence and exit 2; tracebacks only with ``--debug``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from ecgsearch.analysis_cli import add_parser as add_analysis_parsers
from ecgsearch.bench_cli import add_parser as add_bench_parsers
from ecgsearch.data_inspect import add_parser as add_inspect_parser
from ecgsearch.errors import SpaceError, UserError
from ecgsearch.jobs.cli import add_parser as add_job_parsers
from ecgsearch.prune_cli import add_parser as add_prune_parser

log = logging.getLogger("ecgsearch")


def _load_spec(path: str, trials: int | None = None) -> Any:
    from ecgsearch.engine import with_trials
    from ecgsearch.space import load_space

    return with_trials(load_space(path), trials)


def cmd_validate(args: argparse.Namespace) -> int:
    spec = _load_spec(args.file)
    print(f"{args.file}: ok ({spec.name}: {spec.budget.trials} trials of {spec.budget.epochs} epochs, "
          f"metric {spec.metric} ({spec.mode}), architectures {', '.join(spec.space.choices['architecture'])}, "
          f"optimizers {', '.join(spec.space.choices['optimizer'])})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ecgsearch.display import RunDisplay, best_table
    from ecgsearch.engine import check_out_dir, run_search
    from ecgsearch.plugins import get_registries
    from ecgsearch.storage import is_uri

    if args.resume and args.trials is not None:
        raise UserError("--trials cannot change the budget of a resumed run (it continues with the trials it "
                        "started with); drop --trials, or start a new run in another --out.")
    spec = _load_spec(args.file, args.trials)
    out: Any = Path(args.out) if args.out else Path("runs") / spec.name
    if args.out and is_uri(args.out):  # s3://, gs://...: checked when opened (ecgsearch.storage)
        out = args.out
    else:
        check_out_dir(out, args.resume)  # before any output or work
    manager = get_registries().manager
    with RunDisplay(spec.budget.trials, spec.metric, spec.mode) as display:
        manager.register(display)  # the progress display is a lifecycle-hook plugin like any logger
        try:
            outcome = run_search(spec, out, resume=args.resume, display=display)
        finally:
            manager.unregister(display)
    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(best_table(outcome.best(5), outcome.results, spec.metric))
    console.print(f"results: {out if isinstance(out, str) else outcome.out_dir}/results.parquet")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from ecgsearch.plugins import get_registries

    regs = get_registries()
    listing = {
        kind: [{"name": info.name, "description": info.description, "plugin": info.plugin,
                "usable": info.available()[0], "reason": info.available()[1]} for info in registry]
        for kind, registry in regs.by_kind().items()
    }
    broken = [{"name": b.name, "error": b.error, "fix": b.fix} for b in regs.broken]
    if args.json:
        print(json.dumps({"plugins": regs.plugins, "kinds": listing, "broken": broken}, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table("kind", "name", "usable", "description", "plugin")
    for kind, items in listing.items():
        for item in items:
            usable = "yes" if item["usable"] else f"no: {item['reason']}"
            table.add_row(kind, item["name"], usable, item["description"], item["plugin"])
    console = Console()
    console.print(table)
    for b in regs.broken:
        console.print(f"[red]broken[/red] {b.message()}", markup=True, highlight=False)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ecgsearch.challenge_io import SCORES, evaluate

    result = evaluate(args.labels, args.outputs)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for key, title in SCORES.items():
        print(f"{title:<17}{result[key]:.3f}")
    print(f"{'records':<17}{result['records']} ({result['missing_outputs']} without outputs, scored all-negative)")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ecgsearch.predict import run_predict

    done = run_predict(args.run_dir, args.data, args.out, trial_id=args.trial)
    print(f"{done.records} records scored by trial {done.trial_id}; outputs in {done.out_dir}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecgsearch", description="AutoML search for ECG neural networks.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("-p", "--plugin", action="append", default=[], metavar="MODULE",
                        help="also load this plugin module (repeatable; same as ECGSEARCH_PLUGINS)")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a search described by a space file")
    run.add_argument("file", help="the space file (YAML)")
    run.add_argument("--out", help="output folder (default: runs/<name>)")
    run.add_argument("--trials", type=int, help="override budget.trials")
    run.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    run.set_defaults(func=cmd_run)

    validate = sub.add_parser("validate", help="check a space file; exit 0 if valid, 2 with the problem if not")
    validate.add_argument("file")
    validate.set_defaults(func=cmd_validate)

    plugins = sub.add_parser("plugins", help="list the plugins by kind and whether each is usable here")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.set_defaults(func=cmd_plugins)

    evaluate = sub.add_parser("evaluate", help="score PhysioNet/CinC 2021 output files against .hea labels "
                                               "like the official evaluate_model.py")
    evaluate.add_argument("--labels", required=True, metavar="DIR", help="folder of the records' .hea files")
    evaluate.add_argument("--outputs", required=True, metavar="DIR", help="folder of one .csv output per record")
    evaluate.add_argument("--json", action="store_true", help="machine-readable output")
    evaluate.set_defaults(func=cmd_evaluate)
    add_inspect_parser(sub)  # data inspect NAME ...
    add_job_parsers(sub)  # submit FILE --address URL, status|stop|logs JOB (docs/cluster.md)
    add_analysis_parsers(sub)  # report RUN_DIR, scale RUN_DIR --target-flops X
    add_bench_parsers(sub)  # bench RUN_DIR --backend ..., export RUN_DIR --format onnx|openvino
    add_prune_parser(sub)  # prune RUN_DIR [--out FILE]

    predict = sub.add_parser("predict", help="score a folder of records with a run's best trial "
                                             "(Challenge output format)")
    predict.add_argument("run_dir", help="the --out folder of a run")
    predict.add_argument("--data", required=True, help="folder of records, read as the run's dataset reads them")
    predict.add_argument("--out", required=True, help="folder for one CSV per record")
    predict.add_argument("--trial", help="a trial id (default: the best by the run's metric)")
    predict.set_defaults(func=cmd_predict)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.plugin:  # explicitly named modules reach the workers too, through the environment
        os.environ["ECGSEARCH_PLUGINS"] = ",".join(filter(None, [os.environ.get("ECGSEARCH_PLUGINS", ""),
                                                                 *args.plugin]))
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except UserError as error:
        if args.debug:
            raise
        # a space-file error already starts with FILE:LINE:, like a compiler's
        print(error if isinstance(error, SpaceError) else f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted; finished trials are in the results table (continue with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
