"""``ecgsearch data inspect``: what a dataset holds once prepared, before an hour of search runs on it.

A search trusts the cache entry blindly: a wrong ``root``, a lead set that drops a class's evidence or
a split without positives of a class only shows up as odd metrics much later. This command prepares
(or reuses) the same cache entry a search would use and summarises it: shape, label counts, split
sizes, sources and the records the reader skipped, with the reason for each.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import yaml

from ecgsearch.cache import open_dataset
from ecgsearch.data import SPLITS, Progress
from ecgsearch.errors import UserError
from ecgsearch.prepare import prepare_entry

COMMAND = "data inspect"


def _is_binary(targets: np.ndarray) -> bool:
    return bool(np.isin(targets, (0.0, 1.0)).all())


def _targets(targets: np.ndarray, names: list[str], labels: Mapping[str, Any]) -> tuple[str, list[dict]]:
    """Positive counts per class (0/1 targets) or mean/std per regression target (NaN ignored)."""
    if _is_binary(targets):
        positives = targets.sum(axis=0) if len(targets) else np.zeros(len(names))
        return "multilabel", [
            {"name": n, "label": str(labels.get(n, "")), "positives": int(p),
             "fraction": float(p / len(targets)) if len(targets) else 0.0}
            for n, p in zip(names, positives)]
    rows = []
    for column, n in enumerate(names):
        values = targets[:, column]
        finite = values[np.isfinite(values)]
        rows.append({"name": n, "label": str(labels.get(n, "")), "count": int(finite.size),
                     "mean": float(finite.mean()) if finite.size else None,
                     "std": float(finite.std()) if finite.size else None})
    return "regression", rows


def inspect_dataset(name: str, params: dict, cache_root: Path | None = None,
                    progress: Progress | None = None) -> dict:
    """Prepare (or reuse) the cache entry of ``name`` with ``params`` and summarise it as JSON-able data.

    Keys: dataset, params, entry, records, leads, sampling_rate, samples, seconds, task (``multilabel``
    or ``regression``), targets (per class: positives and fraction; per regression target: count, mean,
    std), splits, sources (when the dataset reports them), skipped (record and reason).
    """
    entry = prepare_entry(name, params, Path(cache_root) if cache_root is not None else None, COMMAND, progress)
    arrays = open_dataset(entry)
    targets = np.asarray(arrays.targets)
    extra = arrays.extra
    task, rows = _targets(targets, list(arrays.target_names), extra.get("class_names") or {})
    records, _, samples = arrays.signals.shape
    sources = extra.get("source_counts")
    return {
        "dataset": name,
        "params": json.loads(json.dumps(dict(params), default=str)),
        "entry": str(entry),
        "records": int(records),
        "leads": list(arrays.leads),
        "sampling_rate": float(arrays.sampling_rate),
        "samples": int(samples),
        "seconds": float(samples / arrays.sampling_rate),
        "task": task,
        "targets": rows,
        "splits": {s: int((arrays.split == s).sum()) for s in SPLITS},
        "sources": {str(k): int(v) for k, v in sources.items()} if isinstance(sources, dict) else None,
        "skipped": [{"record": str(s.get("record", "?")), "reason": str(s.get("reason", "?"))}
                    for s in extra.get("skipped") or []],
    }


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
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

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


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
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
