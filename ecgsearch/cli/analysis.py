"""``ecgsearch report RUN_DIR``, ``compare RUN_DIR RUN_DIR ...``, ``scale RUN_DIR --target-flops X`` and ``prune``.

``report`` writes ``RUN_DIR/report/report.html``, one self-contained interactive page (``--static``: PNG
figures beside the page; ``--watch``: rebuilt while the search runs; docs/analysis.md explains how to read
each part); ``compare`` writes one self-contained page of several runs overlaid; ``scale`` fits the run's
compute scaling law and proposes configurations near a larger FLOP budget, ranked by the surrogate;
``prune`` writes the narrower space a run's results support, and shows what changed.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from typing import TYPE_CHECKING, Any

from ecgsearch.errors import UserError
from ecgsearch.results.names import PRUNED_FILE
from ecgsearch.space import load_space

if TYPE_CHECKING:
    from ecgsearch.space import SearchSpec, Space


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 1")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (write e.g. 2e8)") from None


WATCH_SECONDS = 10  # --watch alone: look at the results every 10 s (ecgsearch.report.watch.DEFAULT_SECONDS)


def cmd_report(args: argparse.Namespace) -> int:
    if args.folds < 2:
        raise UserError(f"report: --folds {args.folds} is below 2; cross-validation needs at least 2 folds.")
    if args.watch is not None and args.static:
        raise UserError("report: --watch rebuilds the interactive page and --static writes PNGs for papers; drop "
                        "--static to watch a running search, and write the static report once it has finished.")
    # deferred: the report imports matplotlib (and plotly when it draws)
    from ecgsearch.report import build_report, watch_report
    from ecgsearch.report.watch import watch_seconds

    options = {"out_dir": args.out, "metric": args.metric, "surrogate": args.surrogate, "folds": args.folds,
               "bootstrap": args.bootstrap, "seed": args.seed}
    if args.watch is not None:
        watch_report(args.run_dir, watch_seconds(args.watch), **options)
        return 0
    report = build_report(args.run_dir, static=args.static, **options)
    for note in report.notes:
        print(f"note: {note}")
    kind = "figures" if args.static else "interactive figures"
    print(f"report: {report.path} ({report.figures} {kind})")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from ecgsearch.report import compare_runs  # deferred: the comparison imports matplotlib

    comparison = compare_runs(args.run_dirs, args.out, labels=args.label, metric=args.metric, cost=args.cost)
    for note in comparison.notes:
        print(f"note: {note}")
    print(f"compare: {comparison.path} ({', '.join(comparison.labels)})")
    return 0


def _add_compare(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``compare RUN_DIR RUN_DIR [...] --out FILE [--label NAME ...] [--metric M] [--cost COLUMN]``."""
    compare = subparsers.add_parser("compare", help="one HTML page comparing runs: fronts, search progress and "
                                                    "learning curves overlaid, labelled by run")
    compare.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="the --out folders of two or more runs")
    compare.add_argument("--out", metavar="FILE", required=True, help="the HTML file to write (figures embedded)")
    compare.add_argument("--label", action="append", metavar="NAME",
                         help="a run's label, once per RUN_DIR in order (default: its space file's name)")
    compare.add_argument("--metric", help="compare val.<METRIC> (default: the first run's metric)")
    compare.add_argument("--cost", default="cost.flops", metavar="COLUMN",
                         help="the cost of the Pareto fronts (default: cost.flops)")
    compare.set_defaults(func=cmd_compare)
    return compare


def _candidate_space(path: str | None, spec: SearchSpec) -> Any:
    if path is None:
        return spec.space

    other = load_space(path).space
    if set(other.choices) != set(spec.space.choices):
        raise UserError(f"scale: {path} chooses {', '.join(other.choices)} but the run chose "
                        f"{', '.join(spec.space.choices)}; --space must be a copy of the run's space file with "
                        "wider ranges.")
    return other


def format_proposal(proposal: Any) -> str:
    """The law's expectation and the ranked candidates as plain text."""
    metric, lines = proposal.metric, []
    if proposal.expected_error is not None:
        value, low, high = proposal.expected_error
        law = proposal.law.law
        as_metric = (f"; {metric} {1 - value:.3f} [{1 - high:.3f}, {1 - low:.3f}]" if proposal.mode == "max" else "")
        lines.append(f"law (compute, {proposal.law.n} trials: the best of each half-decade of FLOPs on the Pareto "
                     f"front): error = {law.e_inf:.3g} + {law.a:.3g} x^-{law.alpha:.3g}, R^2 {proposal.law.r2:.3f}")
        lines.extend(f"warning: the law cannot be trusted: {reason}" for reason in proposal.law.warnings)
        lines.append(f"expected at {proposal.target_flops:.3g} FLOPs: error {value:.3f} [{low:.3f}, {high:.3f}] "
                     f"(95% band){as_metric}")
        check = proposal.law.extrapolation
        if check is not None:
            lines.append(f"extrapolation check: a law fitted on the {check.n_fit} points with x <= {check.split:.3g} "
                         f"predicts the {check.n_test} above with a mean relative error of "
                         f"{check.mean_relative_error:.1%}")
        else:
            lines.append(f"extrapolation check: {proposal.law.extrapolation_note}")
    else:
        lines.append(f"no scaling law: {proposal.law_note}")
    kept = proposal.candidates
    lines.append(f"{len(kept)} best of the candidates within range ({proposal.sampled} sampled, spanning "
                 f"{proposal.flops_span[0]:.3g} to {proposal.flops_span[1]:.3g} FLOPs), by surrogate-predicted "
                 f"{metric}:")
    for _, row in kept.iterrows():
        lines.append(f"  {row['rank']}. {row['configuration']}")
        lines.append(f"     {row['cost.flops']:.3g} FLOPs, {row['cost.params']:.3g} parameters, predicted "
                     f"{metric} {row['predicted']:.3f} +- {row['predicted_std']:.3f}")
    return "\n".join(lines)


def cmd_scale(args: argparse.Namespace) -> int:
    import torch

    # deferred: scaling up builds candidate models (torch)
    from ecgsearch.analysis.run import load_run
    from ecgsearch.analysis.scale_up import ScaleSettings, check_request, propose
    from ecgsearch.data.cache import open_dataset
    from ecgsearch.data.prepare import prepare_data
    from ecgsearch.search.candidates import input_shape

    check_request(args.target_flops, args.tolerance)  # before the data is opened and candidates built
    run = load_run(args.run_dir, command="scale")
    space = _candidate_space(args.space, run.spec)
    spec = run.spec
    shape = input_shape(open_dataset(prepare_data(spec.data, f"{spec.path}: data")), spec.task.name,
                        spec.task.params, spec.encoders)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        settings = ScaleSettings(candidates=args.candidates, top=args.top, tolerance=args.tolerance,
                                 surrogate=args.surrogate, bootstrap=args.bootstrap, seed=args.seed)
        proposal = propose(run.trials, spec, args.target_flops, cost=functools.partial(_cost, space=space, shape=shape),
                           candidate_space=space, settings=settings)
    finally:
        torch.set_num_threads(threads)
    if args.json:
        value = proposal.expected_error
        print(json.dumps({
            "target_flops": proposal.target_flops, "metric": proposal.metric, "mode": proposal.mode,
            "law": None if proposal.law is None else {
                "e_inf": proposal.law.law.e_inf, "a": proposal.law.law.a, "alpha": proposal.law.law.alpha,
                "ci": proposal.law.ci, "r2": proposal.law.r2, "points": proposal.law.n},
            "law_note": proposal.law_note,
            "expected_error": None if value is None else dict(zip(("value", "low", "high"), value)),
            "candidates": json.loads(proposal.candidates.to_json(orient="records")),
        }, indent=2))
    else:
        print(format_proposal(proposal))
    sys.stdout.flush()
    return 0


def _cost(config: dict[str, Any], space: Space, shape: Any) -> Any:
    from ecgsearch.search.candidates import candidate_costs  # deferred: imports torch

    return candidate_costs(config, space, shape)


def add_parser(subparsers: Any) -> None:
    """Add ``report``, ``compare``, ``scale`` and ``prune`` to a CLI's subparsers."""
    report = subparsers.add_parser(
        "report", help="write RUN_DIR/report/report.html, one self-contained interactive page: Pareto fronts "
                       "(filter by architecture or optimizer), the best trials in parallel coordinates, surrogate "
                       "CV and importance, scaling laws, progress, latency; hover a point for its trial",
        description="Write RUN_DIR/report/report.html: one self-contained interactive page (plotly.js inlined, "
                    "no network needed to open it). Hover a trial's point for its id and configuration; each "
                    "Pareto figure's menu shows the fronts per optimizer or per architecture, or one of them "
                    "alone. --static writes the PNG report instead (for papers); --watch rebuilds the page "
                    "while a search runs.")
    report.add_argument("run_dir", help="the --out folder of an `ecgsearch run`")
    report.add_argument("--out", metavar="DIR", help="write the report here instead of RUN_DIR/report")
    report.add_argument("--static", action="store_true",
                        help="PNG figures beside the page (for papers) instead of the interactive page")
    report.add_argument("--watch", nargs="?", const=WATCH_SECONDS, metavar="SECONDS",
                        help="rebuild the page whenever the run's results change, looking every SECONDS "
                             f"(default {WATCH_SECONDS}); the page reloads itself as often; Ctrl-C stops")
    report.add_argument("--metric", help="analyse val.<METRIC> instead of the run's metric")
    report.add_argument("--surrogate", default="random_forest", help="surrogate for the CV and importance "
                                                                     "sections (default: random_forest)")
    report.add_argument("--folds", type=int, default=3, help="cross-validation folds (default: 3)")
    report.add_argument("--bootstrap", type=_positive_int, default=500,
                        help="ignored, kept for old scripts: the scaling-law intervals are profile likelihood")
    report.add_argument("--seed", type=int, default=0, help="seed of the CV split")
    report.set_defaults(func=cmd_report)
    _add_compare(subparsers)

    scale = subparsers.add_parser("scale", help="propose configurations at a larger FLOP budget from the run's "
                                                "scaling law and surrogate")
    scale.add_argument("run_dir", help="the --out folder of an `ecgsearch run`")
    scale.add_argument("--target-flops", type=_float, required=True, metavar="X",
                       help="the FLOPs per sample of the models to propose (e.g. 2e8)")
    scale.add_argument("--tolerance", type=_float, default=0.5,
                       help="keep candidates within a factor 1+TOLERANCE of the target (default: 0.5)")
    scale.add_argument("--candidates", type=_positive_int, default=200,
                       help="candidates to sample and cost (default: 200)")
    scale.add_argument("--top", type=_positive_int, default=5, help="how many to propose (default: 5)")
    scale.add_argument("--space", metavar="FILE", help="draw candidates from this space file (a copy of the "
                                                       "run's with wider size ranges) instead of the run's")
    scale.add_argument("--surrogate", default="random_forest", help="surrogate that ranks the candidates")
    scale.add_argument("--bootstrap", type=_positive_int, default=500,
                       help="ignored, kept for old scripts: the law's intervals are profile likelihood")
    scale.add_argument("--seed", type=int, default=0, help="seed of the surrogate")
    scale.add_argument("--json", action="store_true", help="machine-readable output")
    scale.set_defaults(func=cmd_scale)
    _add_prune(subparsers)


def cmd_prune(args: argparse.Namespace) -> int:
    if args.candidates < 100:
        raise UserError(f"--candidates {args.candidates} is too few to judge the space; pass at least 100.")
    if args.kappa < 0:
        raise UserError(f"--kappa {args.kappa} is negative; pass 0 (prune on the mean) or more (more cautious).")
    from ecgsearch.analysis.prune import (  # deferred: fits a surrogate (scikit-learn)
        PruneSettings,
        prune_run,
    )

    settings = PruneSettings(surrogate=args.surrogate, candidates=args.candidates, kappa=args.kappa,
                             min_trials=args.min_trials, seed=args.seed)
    pruned, path = prune_run(args.run_dir, args.out, settings)
    print(pruned.diff(before=f"{args.run_dir}/space.yaml", after=str(path)), end="")
    print(f"pruned space: {path} ({len(pruned.changes)} change(s); the best trial so far stays inside)")
    return 0


def _add_prune(subparsers: Any) -> argparse.ArgumentParser:
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
