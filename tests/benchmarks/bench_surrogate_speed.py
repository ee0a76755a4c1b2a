"""How fast the surrogate search proposes a trial with a large history and a large candidate pool.

    nice python tests/benchmarks/bench_surrogate_speed.py [--rows 10000] [--candidates 100000]

On the quickstart's space (two architectures, two optimizers, log-uniform learning rates) and its
data shape (8 leads x 1000 samples, 9 classes), a ``SurrogateSearcher`` with the engine's costs
(``EngineCosts``: each distinct architecture built once and counted; cached by architecture) is given
``--rows`` finished trials with synthetic values, then asked for one suggestion with a pool large
enough that ``--candidates`` of it are within the quickstart's ``max_flops`` and scored. Measured
separately:

- costing: building and counting every distinct architecture once (the cost cache's fill; a search
  pays it once, spread over its first suggestions);
- suggest: one whole model-based suggestion: the features of every trial, fitting the random forest
  on them, sampling the pool, its cost columns from the cache, removing tried configurations, encoding,
  predicting mean and spread, expected improvement and the pick;
- and, within it, fit alone and scoring alone (encode + predict + acquisition on the pool).

Beyond ``--max-fit-rows`` (the searcher's ``max_fit_rows``, 10,000) trials, the model is fitted on the
best half of that many and a uniform sample of the rest, so suggest stays near its 10,000-row figure.

The goal is suggest < 30 s on 2 cores. The model uses one thread (it runs in the driver while trials
use the cores), so the second core is idle here.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from ecgsearch.analysis import SurrogateModel, feature_frame
from ecgsearch.search import SurrogateSearcher
from ecgsearch.search.acquisition import acquire
from ecgsearch.search.candidates import InputShape
from ecgsearch.search.factory import COST_INPUTS, EngineCosts
from ecgsearch.search.features import config_frame
from ecgsearch.search.sampling import dimensions, from_unit, row_configs, signatures
from ecgsearch.search.surrogate import Observation
from ecgsearch.space import load_space

SPACE = Path(__file__).resolve().parents[2] / "spaces" / "quickstart.yaml"
SHAPE = InputShape(leads=8, samples=1000, outputs=9)  # the quickstart's data


def value(config: dict) -> float:
    """A synthetic metric with structure the forest can learn (and noise it cannot)."""
    lr = config.get("optimizer.adamw.lr") or config.get("optimizer.sgd.lr")
    width = config.get("architecture.convnext.width") or config.get("architecture.resnet.channels")
    return 0.8 + 0.02 * (config["architecture"] == "resnet") - 0.03 * (math.log10(lr) + 2.3) ** 2 + 0.001 * width


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--surrogate", default="random_forest")
    parser.add_argument("--max-fit-rows", type=int, default=10_000, help="the searcher's cap on fitted trials")
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec = load_space(SPACE)
    searcher = SurrogateSearcher(spec.space, "score", "max", seed=0, surrogate=args.surrogate,
                                 candidates=args.candidates, costs=EngineCosts(spec, SHAPE),
                                 cost_inputs=COST_INPUTS, max_new_costs=10**6, initial_trials=1,
                                 max_fit_rows=args.max_fit_rows)
    rng = np.random.default_rng(0)
    history = from_unit(spec.space, rng.random((2 * args.rows, len(dimensions(spec.space)))), rng)
    started = time.perf_counter()
    history = searcher._with_costs(history, None)  # fills the cost cache: each architecture built once
    costing = time.perf_counter() - started
    feasible = len(history) / (2 * args.rows)  # the share within the quickstart's max_flops
    history = history.iloc[:args.rows]
    searcher.candidates = int(math.ceil(args.candidates / feasible))  # drawn, so that ~candidates are scored
    archs = len(searcher._cost_cache)
    cost_columns = [c for c in history.columns if c.startswith("cost.")]
    noise = np.random.default_rng(1).normal(0, 0.01, len(history))
    # the history, added in bulk (``add_evaluated_point`` adds one row at a time, ~ms each: 100,000 took
    # most of half an hour); the same observations and tried-set it would build
    configs = row_configs(spec.space, history)
    costs = history[cost_columns].to_dict("records")
    searcher._observations += [Observation(c, k, value(c) + eps, None) for c, k, eps in zip(configs, costs, noise)]
    searcher._seen.update(int(v) for v in signatures(config_frame(configs, spec.space), searcher._columns))
    searcher._metric_seen = True

    started = time.perf_counter()
    config = searcher.suggest("bench")
    suggest = time.perf_counter() - started

    features, rows, done = searcher._training_frame(np.random.default_rng(0))  # capped like the suggestion
    y = searcher._targets(rows, done, None, 1.0)
    started = time.perf_counter()
    model = SurrogateModel(args.surrogate, 0).fit(features, y)
    fit = time.perf_counter() - started
    units = rng.random((searcher.candidates, len(searcher._dims)))  # the searcher's axes (shared ones merged)
    pool = searcher._with_costs(from_unit(spec.space, units, rng, dims=searcher._dims), None)
    pool_features = feature_frame(pool.assign(epochs=1), spec.space, fidelity=True)
    started = time.perf_counter()
    mean, std = model.predict(pool_features)
    acquire("ei", mean, std, float(y.max()), float(y.std()), 1.96, 0.01)
    score = time.perf_counter() - started

    print(f"space {SPACE.name}: {args.rows} trials, {args.candidates} candidates, surrogate {args.surrogate}, "
          f"{len(features.columns)} feature columns, torch threads 1")
    print(f"  costing  {costing:7.2f} s  ({archs} distinct architectures built and counted once, then cached; "
          f"cost columns {', '.join(cost_columns)})")
    print(f"  suggest  {suggest:7.2f} s  (one whole suggestion: {searcher.candidates} candidates drawn, "
          f"{100 * feasible:.0f}% within max_flops; goal < 30 s)")
    print(f"    fit    {fit:7.2f} s  (the surrogate on {len(features)} rows: {done} of the {args.rows} trials, "
          f"max_fit_rows {args.max_fit_rows}, and the running one)")
    print(f"    score  {score:7.2f} s  (encode + predict mean/std + expected improvement on {len(pool)} candidates)")
    print(f"  suggested value {value(config):.4f} vs best trial {float(y.max()):.4f} (synthetic metric)")


if __name__ == "__main__":
    main()
