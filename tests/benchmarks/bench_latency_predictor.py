"""The latency predictor's accuracy on models it never saw: fraction predicted within +-10%.

Samples N configurations from every registered architecture's default space (the space language's own
sampler), measures each on the backends (in this process, one model after the other), fits the
predictor on a random 70% of the models and scores it on the other 30%; also 5-fold cross-validation.

    python tests/benchmarks/bench_latency_predictor.py --models 120 --time-budget 0.3
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings

import numpy as np
import pandas as pd
import torch
from bench_latency import measure_model

from ecgsearch.latency.options import BackendOptions, MeasureSettings
from ecgsearch.latency.predictor import cross_validate, score_holdout
from ecgsearch.plugins import get_registries
from ecgsearch.space import parse_space
from ecgsearch.train.costs import model_costs

DEFAULT_BACKENDS = ("torch-cpu", "onnxruntime-cpu", "openvino-cpu")


def sampled_models(n: int, seed: int) -> list[tuple[str, dict]]:
    """``n`` (architecture, parameters) drawn from every architecture's default space."""
    archs = [a.name for a in get_registries().architectures if a.plugin != "ecg_test_plugins"]
    spec = parse_space({"data": {"dataset": "synthetic"}, "task": "multilabel", "budget": {"trials": n, "epochs": 1},
                        "space": {"architecture": {a: {"default": True} for a in archs}, "optimizer": "adamw"}})
    out = []
    for i in range(n):
        resolved = spec.space.resolve(spec.space.active(spec.space.sample(seed, i)))
        out.append(resolved.choices["architecture"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=120)
    parser.add_argument("--backend", action="append", default=[])
    parser.add_argument("--leads", type=int, default=12)
    parser.add_argument("--samples", type=int, default=2500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--time-budget", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the measured rows to this parquet file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    backends = tuple(args.backend) or DEFAULT_BACKENDS
    options, settings = BackendOptions(threads=args.threads), MeasureSettings(time_budget_s=args.time_budget)
    x = torch.randn(1, args.leads, args.samples, generator=torch.Generator().manual_seed(0))
    rows = []
    started = time.perf_counter()
    for i, (arch, params) in enumerate(sampled_models(args.models, args.seed)):
        torch.manual_seed(i)
        try:
            model = get_registries().architectures.get(arch).create(args.leads, args.samples, 5, **params).eval()
        except ValueError as error:  # a combination the architecture rejects
            print(f"# skipped {arch} {params}: {error}")
            continue
        row = {"trial_id": f"m{i:04d}", "architecture": arch,
               **model_costs(model, args.leads, args.samples).columns()}
        for b, got in measure_model(model, x, backends, options, settings).items():
            row[f"latency.{b}.p50_ms"] = got.get("p50", np.nan)
        rows.append(row)
        print(f"# {i + 1}/{args.models} {arch}: " + ", ".join(
            f"{b} {row[f'latency.{b}.p50_ms']:.3f} ms" for b in backends), flush=True)
    frame = pd.DataFrame(rows)
    if args.out:
        frame.to_parquet(args.out, index=False)
    order = np.random.default_rng(args.seed).permutation(len(frame))
    cut = int(0.7 * len(frame))
    train, test = frame.iloc[order[:cut]], frame.iloc[order[cut:]]
    print(f"# {len(frame)} models ({frame['architecture'].nunique()} architectures), input "
          f"{args.leads}x{args.samples}, threads {args.threads}, {time.perf_counter() - started:.0f} s")
    print("| backend | held-out models | within +-10% | median rel. error | 5-fold CV within +-10% |")
    print("|---|---|---|---|---|")
    for b in backends:
        held = score_holdout(train, test, b)
        cv = cross_validate(frame, b, folds=5)
        print(f"| {b} | {held.models} | {held.within:.0%} | {held.median_rel_error:.1%} | "
              f"{cv.within:.0%} |" if cv else f"| {b} | {held.models} | {held.within:.0%} | - | - |")


if __name__ == "__main__":
    main()
