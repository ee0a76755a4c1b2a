"""``ecgsearch prune RUN_DIR``: write the narrower space a run's results support, and show what changed."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ecgsearch.errors import UserError

PRUNED_FILE = "space.pruned.yaml"


def prune_run(run_dir: str | Path, out: str | Path | None = None, **options: Any) -> tuple[Any, Path]:
    """Prune the space of the run in ``run_dir`` by its results; write and validate the pruned file.

    Returns ``(PrunedSpace, path written)``. ``options`` go to ``ecgsearch.analysis.prune.prune_space``.
    """
    from ecgsearch.analysis.prune import contains, prune_space
    from ecgsearch.engine import SPACE_COPY
    from ecgsearch.results import RESULTS_FILE, read_results
    from ecgsearch.space import load_space, parse_space
    from ecgsearch.space.yamlio import load_yaml, read_text

    run_dir = Path(run_dir)
    space_file, results_file = run_dir / SPACE_COPY, run_dir / RESULTS_FILE
    for path, what in ((space_file, "the copy of the space file"), (results_file, "the results table")):
        if not path.is_file():
            raise UserError(f"{run_dir}: {path.name} ({what}) is missing; pass the --out folder of an "
                            "`ecgsearch run`.")
    spec = load_space(space_file)
    document, _ = load_yaml(read_text(space_file), str(space_file))
    pruned = prune_space(spec, document, read_results(results_file), **options)
    target = Path(out) if out is not None else run_dir / PRUNED_FILE
    header = (f"{spec.name}, pruned by `ecgsearch prune` from {space_file} on the {len(read_results(results_file))} "
              f"trials of {run_dir}.\n" + "\n".join(c.line() for c in pruned.changes))
    text = pruned.text(header)
    new_spec = parse_space(text, source=str(target))  # a pruned file that does not validate is a bug
    missing = contains(new_spec.space, pruned.best)
    if missing:
        raise RuntimeError(f"the pruned space excludes the best trial's {missing}; please report this bug")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return pruned, target


def cmd_prune(args: argparse.Namespace) -> int:
    if args.candidates < 100:
        raise UserError(f"--candidates {args.candidates} is too few to judge the space; pass at least 100.")
    if args.kappa < 0:
        raise UserError(f"--kappa {args.kappa} is negative; pass 0 (prune on the mean) or more (more cautious).")
    pruned, path = prune_run(args.run_dir, args.out, surrogate=args.surrogate, candidates=args.candidates,
                             kappa=args.kappa, min_trials=args.min_trials, seed=args.seed)
    print(pruned.diff(before=f"{args.run_dir}/space.yaml", after=str(path)), end="")
    print(f"pruned space: {path} ({len(pruned.changes)} change(s); the best trial so far stays inside)")
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``prune RUN_DIR [--out FILE] [--surrogate NAME] [--candidates N] [--kappa K] ...``."""
    prune = subparsers.add_parser(
        "prune", help="write a narrower space file from a run's results (dominated values dropped, ranges cut)")
    prune.add_argument("run_dir", help="the --out folder of an `ecgsearch run`")
    prune.add_argument("--out", metavar="FILE", help=f"where to write the pruned space (default RUN_DIR/{PRUNED_FILE})")
    prune.add_argument("--surrogate", default="random_forest", help="the surrogate model (see `ecgsearch plugins`)")
    prune.add_argument("--candidates", type=int, default=20_000, help="candidates sampled to judge the space")
    prune.add_argument("--kappa", type=float, default=1.0,
                       help="optimism: a value survives if mean + kappa x std can reach the best (default 1)")
    prune.add_argument("--min-trials", type=int, default=2, dest="min_trials",
                       help="values tried fewer times than this are never dropped (default 2)")
    prune.add_argument("--seed", type=int, default=0)
    prune.set_defaults(func=cmd_prune)
    return prune
