"""``ecgsearch data inspect``, ``evaluate``, ``evaluate-run`` and ``predict``: datasets, official scores, a run's
models out of distribution, a model on new records."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Mapping

import yaml

from ecgsearch.data.inspect import COMMAND, inspect_dataset
from ecgsearch.data.source import Progress
from ecgsearch.errors import UserError
from ecgsearch.infos import resolve
from ecgsearch.plugins import get_registries


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    """Rows as aligned plain-text columns (numbers right-aligned), indented two spaces."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def format_summary(summary: Mapping[str, Any]) -> str:
    """The summary of ``inspect_dataset`` as plain text with aligned columns, for a terminal or a log."""
    leads = summary["leads"]
    lines = [f"dataset        {summary['dataset']}",
             f"cache entry    {summary['entry']}",
             f"records        {summary['records']}",
             f"leads          {len(leads)} ({', '.join(leads)})",
             f"sampling rate  {summary['sampling_rate']:g} Hz",
             f"samples        {summary['samples']} per lead ({summary['seconds']:g} s)",
             "", "splits"]
    lines += _table(["split", "records"], [[s, str(n)] for s, n in summary["splits"].items()], {1})
    targets = summary["targets"]
    lines += ["", f"targets ({len(targets)}, {summary['task']})"]
    if summary["task"] == "multilabel":
        rows = [[t["name"], t["label"], str(t["positives"]), f"{100 * t['fraction']:.1f}%"] for t in targets]
        lines += _table(["class", "label", "positives", "fraction"], rows, {2, 3})
    else:
        rows = [[t["name"], t["label"], str(t["count"]), _number(t["mean"]), _number(t["std"])]
                for t in targets]
        lines += _table(["target", "label", "count", "mean", "std"], rows, {2, 3, 4})
    if summary.get("sources"):
        lines += ["", "sources"]
        lines += _table(["source", "records"], [[s, str(n)] for s, n in summary["sources"].items()], {1})
    if summary.get("label_groups"):
        lines += ["", "label groups"]
        lines += _table(["group", "classes", "records with a positive"],
                        [[g["group"], str(len(g["classes"])), str(g["records"])] for g in summary["label_groups"]],
                        {1, 2})
    patients = summary.get("patients")
    if patients:
        least, most = patients["records_per_patient"]
        lines += ["", f"patients       {patients['patients']} ({least}-{most} records each; "
                      f"{patients['in_several_splits']} with records in two splits or more)"]
    skipped = summary["skipped"]
    lines += ["", f"skipped records: {len(skipped) or 'none'}"]
    lines += _table(["record", "reason"], [[s["record"], s["reason"]] for s in skipped], set()) if skipped else []
    return "\n".join(lines)


def parse_params(pairs: list[str] | None, root: str | None = None) -> dict[str, Any]:
    """``KEY=VALUE`` strings to a dict, values read as YAML (``records=40``, ``leads=[I, II]``)."""
    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{COMMAND}: --param expects KEY=VALUE (got {pair!r}); for example "
                            "--param sampling_rate=100.")
        try:
            params[key.strip()] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as error:
            first = str(error).splitlines()[0]
            raise UserError(f"{COMMAND}: --param {key.strip()}: {text!r} is not a valid YAML value "
                            f"({first}); quote strings and close lists, e.g. leads=[I, II].") from None
    if root is not None:
        if "root" in params:
            raise UserError(f"{COMMAND}: the data folder is given twice (--root and --param root=...); "
                            "keep one of them.")
        params["root"] = root
    return params


def _progress_display() -> tuple[Any, Progress]:
    """A transient progress bar on stderr for the (possibly long) first build of an entry."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.progress import Progress as Bar

    bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
              console=Console(stderr=True), transient=True)
    tasks: dict[str, Any] = {}

    def update(done: int, total: int, what: str) -> None:
        if what not in tasks:
            tasks[what] = bar.add_task(what, total=total)
        bar.update(tasks[what], completed=done, total=total)

    return bar, update


def cmd_inspect(args: argparse.Namespace) -> int:
    """Print the summary of one dataset (text, or JSON with ``--json``); exit code 0."""
    params = parse_params(args.param, args.root)
    bar, update = _progress_display()
    with bar:
        summary = inspect_dataset(args.name, params, progress=update)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    sys.stdout.flush()
    return 0


def _add_inspect(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``data inspect NAME [--root DIR] [--param KEY=VALUE ...] [--json]`` to a CLI's subparsers."""
    data = subparsers.add_parser("data", help="inspect the datasets a search can use")
    commands = data.add_subparsers(dest="data_command", required=True)
    inspect = commands.add_parser(
        "inspect", help="prepare (or reuse) a dataset's cache entry and summarise records, labels, "
                        "splits, sources and skipped records")
    inspect.add_argument("name", help="a registered dataset (see `ecgsearch plugins`)")
    inspect.add_argument("--root", metavar="DIR", help="the dataset's data folder (its `root` parameter)")
    inspect.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                         help="a dataset parameter, the value read as YAML (repeatable): "
                              "--param sampling_rate=100 --param leads=[I,II]")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    inspect.set_defaults(func=cmd_inspect)
    return data


def cmd_evaluate(args: argparse.Namespace) -> int:
    registry = get_registries().datasets
    info = registry.get(args.dataset)
    if info.evaluator is None:
        scored = [i.name for i in registry if i.evaluator is not None]
        raise UserError(f"evaluate --dataset {args.dataset}: this dataset has no official scoring of output files "
                        f"(datasets that have one: {', '.join(scored) or 'none'}); choose one of those.")
    result = resolve(info.evaluator)(args.labels, args.outputs)
    print(json.dumps(dict(result), indent=2) if args.json else str(result))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ecgsearch.deploy.predict import run_predict  # deferred: imports torch

    done = run_predict(args.run_dir, args.data, args.out, trial_id=args.trial)
    print(f"{done.records} records scored by trial {done.trial_id}; outputs in {done.out_dir}")
    return 0


def cmd_evaluate_run(args: argparse.Namespace) -> int:
    from ecgsearch.deploy.evaluate import evaluate_run  # deferred: imports torch

    done = evaluate_run(args.run_dir, args.evaluate)
    print(f"{len(done.trials)} trials scored on {', '.join(done.names)}; {len(done.columns)} ood.* columns written "
          f"to {done.out_dir / 'results.parquet'}")
    return 0


def add_parser(subparsers: Any) -> None:
    """Add ``data inspect``, ``evaluate``, ``evaluate-run`` and ``predict`` to a CLI's subparsers."""
    _add_inspect(subparsers)
    evaluate = subparsers.add_parser("evaluate", help="score PhysioNet/CinC 2021 output files against .hea labels "
                                                      "like the official evaluate_model.py")
    evaluate.add_argument("--labels", required=True, metavar="DIR", help="folder of the records' .hea files")
    evaluate.add_argument("--outputs", required=True, metavar="DIR", help="folder of one .csv output per record")
    evaluate.add_argument("--dataset", default="physionet2021",
                          help="the dataset whose official scoring to use (default: physionet2021)")
    evaluate.add_argument("--json", action="store_true", help="machine-readable output")
    evaluate.set_defaults(func=cmd_evaluate)

    evaluate_run = subparsers.add_parser("evaluate-run", help="score a finished run's trained models on corrupted "
                                                              "test splits and other datasets (ood.* columns)")
    evaluate_run.add_argument("run_dir", help="the --out folder of a finished run")
    evaluate_run.add_argument("--evaluate", metavar="FILE.yaml",
                              help="a YAML file holding an evaluate: section (default: the run's space file's)")
    evaluate_run.set_defaults(func=cmd_evaluate_run)

    predict = subparsers.add_parser("predict", help="score a folder of records with a run's best trial or an "
                                                    "exported model (Challenge output format)")
    predict.add_argument("run_dir", help="the --out folder of a run, or of an `ecgsearch export`")
    predict.add_argument("--data", required=True, help="folder of records, read as the run's dataset reads them")
    predict.add_argument("--out", required=True, help="folder for one CSV per record")
    predict.add_argument("--trial", help="a trial id (default: the best by the run's metric; an export holds one)")
    predict.set_defaults(func=cmd_predict)
