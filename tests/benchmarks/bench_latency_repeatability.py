"""Repeatability: the same model measured five times, each time in a fresh measuring process.

Each repeat is a full ``measure_isolated`` call (new interpreter, export, compile, warm-up, adaptive
loop), exactly what a search does for a trial; the backends of one repeat are measured one after the
other, and the repeats follow each other with nothing else in between. Printed per backend: the five
medians, their spread ``max / min - 1`` (target: within 5%), the adaptive loop's own CI estimate, and
the spread of the five fastest calls (``min_ms``), which shows how much of the spread is contention.

    python tests/benchmarks/bench_latency_repeatability.py --repeats 5 --time-budget 2
"""

from __future__ import annotations

import argparse
import time

from ecgsearch.latency.options import BackendOptions, MeasureSettings
from ecgsearch.latency.request import MeasureRequest, ModelRef
from ecgsearch.latency.runner import measure_isolated

DEFAULT_BACKENDS = ("torch-cpu", "onnxruntime-cpu", "openvino-cpu")
MODELS = {  # a small and a mid-size CNN of the registry
    "resnet depth 8, 16 ch, k7": ModelRef("resnet", {"depth": 8, "channels": 16, "kernel": 7}, 12, 5000, 5),
    "convnext 2 stages, width 32": ModelRef("convnext", {"stages": 2, "width": 32, "depth": 1, "kernel": 7},
                                            12, 5000, 5),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", action="append", default=[])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--time-budget", type=float, default=2.0)
    parser.add_argument("--tolerance", type=float, default=0.01, help="the loop's target CI half-width")
    args = parser.parse_args()
    backends = tuple(args.backend) or DEFAULT_BACKENDS
    settings = MeasureSettings(time_budget_s=args.time_budget, rel_tolerance=args.tolerance)
    options = {b: BackendOptions(threads=args.threads) for b in backends}
    print(f"# {args.repeats} repeats, threads {args.threads}, {args.time_budget:g} s budget, "
          f"tolerance {args.tolerance:g}")
    print("| model | backend | medians (ms) | spread max/min-1 | within 5% | median CI half-width | min_ms spread |")
    print("|---|---|---|---|---|---|---|")
    started = time.perf_counter()
    for label, model in MODELS.items():
        runs = [measure_isolated(MeasureRequest(model, backends, options, settings)) for _ in range(args.repeats)]
        for b in backends:
            medians = [r[b].stats.p50_ms for r in runs if r[b].ok]
            if len(medians) < len(runs):
                print(f"| {label} | {b} | error: {next(r[b].error for r in runs if not r[b].ok)} | | | | |")
                continue
            spread = max(medians) / min(medians) - 1
            ci = max(r[b].stats.ci_rel for r in runs)
            fastest = [r[b].stats.min_ms for r in runs]
            print(f"| {label} | {b} | {', '.join(f'{m:.3f}' for m in medians)} | {spread:.1%} | "
                  f"{'yes' if spread <= 0.05 else 'no'} | <= {ci:.1%} | {max(fastest) / min(fastest) - 1:.1%} |",
                  flush=True)
    print(f"# total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
