"""``ecgsearch run``, ``validate`` and ``plugins``: a search from a space file, and what it can use."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecgsearch.errors import UserError, shown
from ecgsearch.infos import BackendInfo
from ecgsearch.plugins import get_registries

if TYPE_CHECKING:
    from ecgsearch.infos import PluginInfo
    from ecgsearch.space import SearchSpec


def _load_spec(path: str, trials: int | None = None) -> SearchSpec:
    """The space file parsed, with every architecture it draws checked buildable (before any data is read)."""
    # deferred: the parser loads the plugin registries, the check imports torch
    from ecgsearch.search.candidates import check_buildable
    from ecgsearch.space import load_space
    from ecgsearch.space.spec import with_trials

    spec = with_trials(load_space(path), trials)
    check_buildable(spec)
    return spec


def cmd_validate(args: argparse.Namespace) -> int:
    """Check every file (a pre-commit hook passes several): ``ok`` lines on stdout, each refused file's
    sentence on stderr; exit 2 when any was refused. One file's refusal propagates as every verb's does."""
    if len(args.files) == 1:
        _print_valid(args.files[0])
        return 0
    refused = 0
    for path in args.files:
        try:
            _print_valid(path)
        except UserError as error:  # the next file is checked too
            refused += 1
            print(shown(error), file=sys.stderr)
    return 2 if refused else 0


def _print_valid(path: str) -> None:
    spec = _load_spec(path)
    print(f"{path}: ok ({spec.name}: {spec.budget.trials} trials of {spec.budget.epochs} epochs, "
          f"metric {spec.metric} ({spec.mode}), architectures {', '.join(spec.space.choices['architecture'])}, "
          f"optimizers {', '.join(spec.space.choices['optimizer'])})")


def cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console

    # deferred: a run imports the engine (Ray, torch) and the display (rich)
    from ecgsearch.cli.display import RunDisplay, best_table
    from ecgsearch.engine import (  # deferred: the engine imports Ray and torch
        check_out_dir,
        resumed_spec,
        run_search,
    )
    from ecgsearch.engine.storage import is_uri
    from ecgsearch.plugins import get_registries

    if args.resume and args.trials is not None:
        raise UserError("--trials cannot change the budget of a resumed run (it continues with the trials it "
                        "started with); drop --trials, or start a new run in another --out.")
    spec = _load_spec(args.file, args.trials)
    out: Any = Path(args.out) if args.out else Path("runs") / spec.name
    if args.out and is_uri(args.out):  # s3://, gs://...: checked when opened (ecgsearch.engine.storage)
        out = args.out
    else:
        check_out_dir(out, args.resume)  # before any output or work
        if args.resume:  # the budget the run started with, for the progress display
            spec = resumed_spec(spec, out)
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


def usability(info: PluginInfo) -> tuple[bool, str]:
    """``(usable, reason)``: the packages an item needs; for a latency backend, also its device and runtime."""
    if isinstance(info, BackendInfo):
        from ecgsearch.latency.backend import backend_status  # deferred: imports torch

        return backend_status(info)
    return info.available()


def parameter_markdown(rows: list[dict[str, Any]]) -> str:
    """The declared parameters as a Markdown table (docs/architectures.md and friends embed it)."""
    lines = ["| item | parameter | takes | default | what |", "|---|---|---|---|---|"]
    for row in rows:
        default = row["default"]
        shown = default if default == "required" else json.dumps(list(default) if isinstance(default, tuple)
                                                                 else default)
        lines.append(f"| `{row['item']}` | `{row['parameter']}` | {row['takes']} | `{shown}` | {row['doc']} |")
    return "\n".join(lines)


def cmd_params(args: argparse.Namespace) -> int:
    """``ecgsearch plugins --params``: what a space file may set, from the plugins' declarations."""
    from ecgsearch.space.params import SETTABLE_KINDS, parameter_rows  # deferred: the space imports torch

    if args.kind is not None and args.kind not in SETTABLE_KINDS:
        raise UserError(f"plugins --kind: '{args.kind}' has no parameters a space file sets (kinds that do: "
                        f"{', '.join(SETTABLE_KINDS)}); pass one of those.")
    kinds = tuple(SETTABLE_KINDS) if args.kind is None else (args.kind,)
    rows = [row for row in parameter_rows(get_registries(), kinds) if args.item in (None, row["item"])]
    if not rows:
        raise UserError(f"plugins --item: '{args.item}' has no parameters a space file sets (or is not an item "
                        "of --kind); `ecgsearch plugins` lists the items.")
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    elif args.markdown:
        print(parameter_markdown(rows))
    else:
        widths = [max(len(row[key]) for row in rows) + 2 for key in ("kind", "item", "parameter")]
        for row in rows:
            print(f"{row['kind']:<{widths[0]}}{row['item']:<{widths[1]}}{row['parameter']:<{widths[2]}}{row['takes']}")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    if args.params:
        return cmd_params(args)
    regs = get_registries()
    listing = {}
    for kind, registry in regs.by_kind().items():
        listing[kind] = []
        for info in registry:
            usable, reason = usability(info)
            listing[kind].append({"name": info.name, "description": info.description, "plugin": info.plugin,
                                  "usable": usable, "reason": reason})
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


def add_parser(subparsers: Any) -> None:
    """Add ``run FILE``, ``validate FILE`` and ``plugins`` to a CLI's subparsers."""
    run = subparsers.add_parser("run", help="run a search described by a space file")
    run.add_argument("file", help="the space file (YAML)")
    run.add_argument("--out", help="output folder (default: runs/<name>)")
    run.add_argument("--trials", type=int, help="override budget.trials")
    run.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    run.set_defaults(func=cmd_run)

    validate = subparsers.add_parser("validate", help="check space files; exit 0 if all are valid, 2 with each "
                                                      "problem if not")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.set_defaults(func=cmd_validate)

    plugins = subparsers.add_parser("plugins", help="list the plugins by kind and whether each is usable here")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.add_argument("--params", action="store_true",
                         help="list the parameters a space file may set for each item, with what each takes")
    plugins.add_argument("--kind", metavar="KIND",
                         help="with --params: only this kind (architectures, optimizers, schedules, datasets, "
                              "tasks)")
    plugins.add_argument("--item", metavar="NAME", help="with --params: only this item (e.g. resnet)")
    plugins.add_argument("--markdown", action="store_true", help="with --params: a Markdown table (as in docs/)")
    plugins.set_defaults(func=cmd_plugins)
