"""``ecgsearch run``, ``validate`` and ``plugins``: a search from a space file, and what it can use."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from ecgsearch.errors import UserError, shown
from ecgsearch.infos import BackendInfo
from ecgsearch.plugins import get_registries

if TYPE_CHECKING:
    from ecgsearch.infos import PluginInfo


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
    from ecgsearch.api import Space  # deferred: validating loads the plugin registries

    print(f"{path}: ok ({Space.from_yaml(path).validate().summary()})")


def cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console

    # deferred: a run imports the engine (Ray, torch) and the display (rich)
    from ecgsearch.api import prepare_search
    from ecgsearch.cli.display import RunDisplay, best_table

    search = prepare_search(args.file, args.out, args.trials, args.resume)  # the budget it started with on resume
    spec = search.spec
    with RunDisplay(spec.budget.trainings, spec.metric, spec.mode) as display:
        run = search.run(display)  # the display is a lifecycle-hook plugin like any logger
    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(best_table(run.best(5), run.results, spec.metric))
    console.print(f"results: {search.out if isinstance(search.out, str) else run.out_dir}/results.parquet")
    return 0


def usability(info: PluginInfo, devices: bool = False) -> tuple[bool, str]:
    """``(usable, reason)``: the packages an item needs; with ``devices``, for a latency backend, also its device
    and runtime (which imports them: torch, ONNX Runtime, OpenVINO)."""
    if devices and isinstance(info, BackendInfo):
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


DEVICES_NOTE = ("backends: 'installed' says their packages are; `ecgsearch plugins --devices` also checks each one's "
                "device and runtime")


def cmd_plugins(args: argparse.Namespace) -> int:
    if args.params:
        return cmd_params(args)
    regs = get_registries()
    listing = {}
    for kind, registry in regs.by_kind().items():
        listing[kind] = []
        for info in registry:
            usable, reason = usability(info, args.devices)
            listing[kind].append({"name": info.name, "description": info.description, "plugin": info.plugin,
                                  "usable": usable, "reason": reason})
    broken = [{"name": b.name, "error": b.error, "fix": b.fix} for b in regs.broken]
    if args.json:
        print(json.dumps({"plugins": regs.plugins, "kinds": listing, "broken": broken,
                          "devices_checked": args.devices}, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table("kind", "name", "usable", "description", "plugin")
    for kind, items in listing.items():
        for item in items:
            usable = "yes" if item["usable"] else f"no: {item['reason']}"
            if item["usable"] and kind == "backends" and not args.devices:
                usable = "installed"  # the device is not checked (DEVICES_NOTE)
            table.add_row(kind, item["name"], usable, item["description"], item["plugin"])
    console = Console()
    console.print(table)
    if not args.devices and listing["backends"]:
        console.print(DEVICES_NOTE, highlight=False)
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
    plugins.add_argument("--devices", action="store_true",
                         help="also check each latency backend's device and runtime (imports PyTorch, ONNX Runtime "
                              "and OpenVINO: slower)")
    plugins.set_defaults(func=cmd_plugins)
