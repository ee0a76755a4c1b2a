"""Check ``yahpo.py`` against the yahpo-gym package: the same outputs on random configurations.

    python tests/benchmarks/public_hpo/check_yahpo_loader.py [--data DIR] [--n 500]

Run it in an environment with ``yahpo-gym`` (which needs ``numpy<2`` and ``ConfigSpace<=0.6.1``, so
usually not ecgsearch's): for every scenario and instance the benchmark uses, ``--n`` random
configurations are evaluated by yahpo-gym's ``BenchmarkSet.objective_function`` and by
``YahpoProblem.evaluate``; it prints the largest absolute difference of the target and exits 1 above 1e-5.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from yahpo import SCENARIOS, YahpoProblem, data_dir  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--n", type=int, default=500)
    args = parser.parse_args()
    from yahpo_gym import benchmark_set, local_config

    root = data_dir(args.data)
    local_config.init_config()
    local_config.set_data_path(str(root))
    worst = 0.0
    for name, scenario in SCENARIOS.items():
        bench = benchmark_set.BenchmarkSet(name)
        for instance in scenario.instances:
            bench.set_instance(instance)
            ours = YahpoProblem.load(root, name, instance)
            configs = ours.random_configs(args.n, seed=1)
            theirs = [{**c, **scenario.fidelity, scenario.instance: instance} for c in configs]
            reference = np.array([r[scenario.target] for r in bench.objective_function(theirs)], dtype=float)
            mine = ours.evaluate(configs)
            diff = float(np.max(np.abs(reference - mine)))
            worst = max(worst, diff)
            print(f"{name:13s} {instance:>7s}: max |yahpo-gym - ours| = {diff:.2e} over {args.n} configurations "
                  f"({scenario.target} from {reference.min():.4f} to {reference.max():.4f})")
    print("OK" if worst <= 1e-5 else "MISMATCH")
    return 0 if worst <= 1e-5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
