"""Search efficiency on public HPO benchmarks (YAHPO Gym): SurrogateSearcher vs random, TPE and SMAC3.

    pip install -e ".[bench]"          # optuna, smac, onnxruntime
    git clone https://github.com/slds-lmu/yahpo_data ~/.cache/ecgsearch/yahpo_data   # or --data / $YAHPO_DATA
    nice python tests/benchmarks/public_hpo/bench_public_hpo.py [--seeds 20] [--budget 100] [--jobs 2]

Each scenario instance is a YAHPO Gym surrogate benchmark (``yahpo.py``: its published ONNX model
evaluated directly, fidelities at their maximum). For each searcher, instance and seed a run evaluates
``--budget`` configurations one at a time. Per instance, the top 1% is the 99th percentile of
``--reference`` random configurations of the space; a run's "evaluations to the top 1%" is its first
evaluation at or beyond it (a run that never gets there counts as ``budget + 1``). Normalised regret
after k evaluations is ``(y* - best of the first k) / (y* - y_median)``, with y* the best value known for
the instance (the reference sample and every recorded run) and y_median the median of the reference
sample: 0 is the best known value, 1 a typical random configuration.

The scenarios are split in two: ``--tuning`` scenarios (where the searcher's defaults were chosen) and
held-out ones (never used to choose anything); the summary reports them separately. Runs are appended
to ``--results`` (JSON lines, one per run, keyed by ``--label``, searcher, instance and seed) and runs
already there are not repeated, so a long benchmark can be resumed and several labels (e.g. the code
before a change, run with ``PYTHONPATH`` pointing at it) compared in one summary. Without the data the
script says where to get it and exits 0.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from optimizers import RUNNERS, run_surrogate, signed  # noqa: E402
from yahpo import DATA_URL, SCENARIOS, YahpoProblem, data_dir, missing  # noqa: E402

TUNING = ("iaml_glmnet",)
DEFAULT_RESULTS = Path.home() / ".cache" / "ecgsearch" / "public_hpo_runs.jsonl"
CHECKPOINTS = (25, 50, 100)


def reference(root: Path, scenario: str, instance: str, n: int) -> dict[str, float]:
    """Threshold of the top 1%, best and median of ``n`` random configurations (signed: larger better)."""
    problem = YahpoProblem.load(root, scenario, instance)
    values = signed(list(problem.evaluate(problem.random_configs(n, seed=7))), problem.scenario.mode)
    return {"top1": float(np.quantile(values, 0.99)), "best": float(values.max()), "median": float(np.median(values))}


def _task(args: tuple[str, str, str, str, int, int, str, str | None]) -> dict[str, Any]:
    label, method, scenario, instance, seed, budget, root, options = args
    problem = YahpoProblem.load(Path(root), scenario, instance)
    started = time.perf_counter()
    if method == "surrogate":
        values = run_surrogate(problem, seed, budget, json.loads(options) if options else None)
    else:
        values = RUNNERS[method](problem, seed, budget)
    return {"label": label, "method": method, "scenario": scenario, "instance": instance, "seed": seed,
            "budget": budget, "options": options, "seconds": time.perf_counter() - started, "values": values}


def load_runs(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def evaluations_to_top(values: np.ndarray, threshold: float, budget: int) -> int:
    hits = np.flatnonzero(values >= threshold)
    return int(hits[0]) + 1 if len(hits) else budget + 1


def summarise(runs: list[dict[str, Any]], refs: dict[tuple[str, str], dict[str, float]], budget: int,
              tuning: tuple[str, ...]) -> None:
    best_known = dict((k, r["best"]) for k, r in refs.items())
    for run in runs:
        key = (run["scenario"], run["instance"])
        if key in best_known:
            best_known[key] = max(best_known[key], float(signed(run["values"], SCENARIOS[run["scenario"]].mode).max()))
    stats: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        key = (run["scenario"], run["instance"])
        if key not in refs or run["budget"] != budget:
            continue
        ref, y = refs[key], signed(run["values"], SCENARIOS[run["scenario"]].mode)
        name = run["method"] if run["label"] == "after" else f"{run['method']} ({run['label']})"
        entry = stats[(run["scenario"], name)]
        entry["hits"].append(evaluations_to_top(y, ref["top1"], budget))
        entry["instances"].append(run["instance"])
        entry["seconds"].append(run["seconds"])
        best = np.maximum.accumulate(y)
        for k in CHECKPOINTS:
            if k <= len(best):
                entry[f"regret{k}"].append((best_known[key] - best[k - 1]) / (best_known[key] - ref["median"]))
    methods = sorted({m for _, m in stats}, key=lambda m: (m.split(" ")[0] != "surrogate", m))
    scenarios = sorted({s for s, _ in stats})
    for title, group in (("tuning scenarios (defaults chosen here)", [s for s in scenarios if s in tuning]),
                         ("held-out scenarios (nothing chosen here)", [s for s in scenarios if s not in tuning])):
        if not group:
            continue
        print(f"\n## {title}: {', '.join(group)}")
        header = ("| searcher | runs | median evaluations to top 1% | missed | regret@25 | regret@50 | regret@100 "
                  "| s/run |")
        print(header + "\n|" + "---|" * (header.count("|") - 1))
        pooled: dict[str, dict[str, list[float]]] = {}
        for method in methods:
            merged: dict[str, list[float]] = defaultdict(list)
            for s in group:
                for k, v in stats.get((s, method), {}).items():
                    merged[k] += v
            if not merged:
                continue
            pooled[method] = merged
            hits = np.array(merged["hits"])
            regrets = " | ".join(f"{np.mean(merged[f'regret{k}']):.3f}" if merged[f"regret{k}"] else "-"
                                 for k in CHECKPOINTS)
            print(f"| {method} | {len(hits)} | {np.median(hits):g} | {int((hits > budget).sum())} | {regrets} "
                  f"| {np.mean(merged['seconds']):.1f} |")
        print("\nmedian evaluations to the top 1% per scenario (per instance in brackets):")
        for s in group:
            cells = []
            for method in methods:
                entry = stats.get((s, method))
                if not entry:
                    continue
                per = defaultdict(list)
                for i, h in zip(entry["instances"], entry["hits"]):
                    per[i].append(h)
                inner = ", ".join(f"{np.median(v):g}" for _, v in sorted(per.items()))
                cells.append(f"{method} {np.median(entry['hits']):g} [{inner}]")
            print(f"  {s}: " + "; ".join(cells))
        if "surrogate" in pooled:
            ours = float(np.median(pooled["surrogate"]["hits"]))
            for other, goal in (("random", 1 / 3), ("tpe", 0.8), ("smac", 0.8)):
                if other in pooled:
                    ratio = ours / float(np.median(pooled[other]["hits"]))
                    print(f"  surrogate / {other}: {ratio:.3f} (goal <= {goal:.3g})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help=f"YAHPO data (default $YAHPO_DATA or {data_dir()})")
    parser.add_argument("--scenarios", default="iaml_glmnet,lcbench,rbv2_xgboost,rbv2_rpart")
    parser.add_argument("--tuning", default=",".join(TUNING), help="scenarios the defaults were chosen on")
    parser.add_argument("--instances", type=int, default=3, help="instances per scenario (the first N listed)")
    parser.add_argument("--methods", default="surrogate,random,tpe,smac")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--reference", type=int, default=20_000, help="random configurations per instance")
    parser.add_argument("--label", default="after", help="names these runs (e.g. 'before' for older code)")
    parser.add_argument("--options", default=None, help="SurrogateSearcher keyword arguments as JSON (tuning)")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--summary-only", action="store_true")
    parser.add_argument("--labels", default=None, help="summarise only these labels (comma-separated)")
    args = parser.parse_args()
    root = data_dir(args.data)
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        print(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")
        return 2
    absent = missing(root, scenarios)
    if absent:
        print(f"skipped: the YAHPO Gym data is not in {root} (missing {absent[0]}, and {len(absent) - 1} more); "
              f"clone {DATA_URL} there (v1.0: the scenarios used here need about 10 MB), or pass --data DIR.")
        return 0
    instances = [(s, i) for s in scenarios for i in SCENARIOS[s].instances[:args.instances]]
    refs = {key: reference(root, *key, args.reference) for key in instances}
    for (s, i), r in refs.items():
        print(f"{s:13s} {i:>7s}: top 1% at {SCENARIOS[s].target} {'>=' if SCENARIOS[s].mode == 'max' else '<='} "
              f"{abs(r['top1']):.4f} (best of {args.reference} random {abs(r['best']):.4f}, median "
              f"{abs(r['median']):.4f})")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["label"], r["method"], r["scenario"], r["instance"], r["seed"], r["budget"])
            for r in load_runs(args.results)}
    tasks = [(args.label, m, s, i, seed, args.budget, str(root), args.options)  # seed-major: a partial run is even
             for seed in range(args.first_seed, args.first_seed + args.seeds) for s, i in instances
             for m in args.methods.split(",") if (args.label, m, s, i, seed, args.budget) not in done]
    if tasks and not args.summary_only:
        print(f"\n{len(tasks)} runs to do ({len(done)} recorded in {args.results}), {args.jobs} at a time", flush=True)
        started = time.perf_counter()
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.jobs) as pool, args.results.open("a") as out:
            for n, run in enumerate(pool.imap_unordered(_task, tasks), 1):
                out.write(json.dumps(run) + "\n")
                out.flush()
                if n % 20 == 0 or n == len(tasks):
                    print(f"  {n}/{len(tasks)} runs ({time.perf_counter() - started:.0f} s)", flush=True)
    runs = load_runs(args.results)
    if args.labels:
        runs = [r for r in runs if r["label"] in args.labels.split(",")]
    print(f"\nbudget {args.budget} evaluations; a run that misses the top 1% counts as {args.budget + 1}; regret: "
          "mean over runs of (y* - best so far) / (y* - median random)")
    summarise(runs, refs, args.budget, tuple(args.tuning.split(",")))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
