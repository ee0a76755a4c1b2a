"""Costing sampled candidates of the RegNet design space A: the fast path the search uses vs the others.

Run:  python tests/benchmarks/bench_costing.py [--configs 1000] [--compare 40]

Draws ``--configs`` candidates from ``spaces/regnet_space_a.yaml`` exactly as the search does
(``Space.sample(seed, index)``) and costs each one with ``ecgsearch.search.candidates.candidate_costs``
for the file's input (12 leads x 1000 samples at 100 Hz, 26 outputs), on one thread like the search
driver; the target is < 10 s for 1,000 configurations on 2 cores. Invalid draws (the factory's
``ValueError``) count as costed: rejecting them is part of the work. Then, on the first ``--compare``
valid candidates, alternating per candidate: the analytic path, building on the meta device + torch's
FLOP counter, and the old path (built on the CPU with weights + fvcore), with the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch

from ecgsearch.plugins import get_registries
from ecgsearch.search.candidates import InputShape, candidate_costs
from ecgsearch.space import load_space
from ecgsearch.train.costs import build_on_meta, estimate_costs, fvcore_macs, model_costs

SHAPE = InputShape(leads=12, samples=1000, outputs=26, sampling_rate=100.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=1000)
    parser.add_argument("--compare", type=int, default=40)
    parser.add_argument("--space", default="spaces/regnet_space_a.yaml")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    spec = load_space(args.space)
    configs = [spec.space.sample(spec.seed, i) for i in range(args.configs)]
    get_registries()  # plugin loading is a one-off, not part of costing

    started = time.perf_counter()
    valid, invalid = [], 0
    for config in configs:
        try:
            candidate_costs(config, spec.space, SHAPE)
            valid.append(config)
        except ValueError:
            invalid += 1
    total = time.perf_counter() - started
    print(f"candidate_costs on {len(configs)} configurations of {args.space}: {total:.2f} s total, "
          f"{1000 * total / len(configs):.3f} ms per configuration ({invalid} rejected as invalid)")

    factory = get_registries().architectures.get("regnet").load()
    times: dict[str, list[float]] = {"analytic": [], "meta + torch counter": [], "cpu + fvcore": []}
    for config in valid[:args.compare]:
        hparams = spec.space.resolve(config).choices["architecture"][1]
        for name, run in (("analytic", lambda: estimate_costs(factory, 12, 1000, 26, hparams, 100.0)),
                          ("meta + torch counter", lambda: model_costs(build_on_meta(factory, 12, 1000, 26, **hparams),
                                                                       12, 1000, 100.0)),
                          ("cpu + fvcore", lambda: fvcore_macs(factory(12, 1000, 26, **hparams), 12, 1000))):
            t = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t)
    base = statistics.median(times["analytic"])
    print(f"\nper configuration, median over {len(times['analytic'])} valid candidates (same candidates, alternating):")
    print("| path | median ms | x analytic |\n|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {1000 * statistics.median(values):.2f} | {statistics.median(values) / base:.0f} |")


if __name__ == "__main__":
    main()
