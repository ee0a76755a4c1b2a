"""Fault-injection figures: faults injected, faults survived, trials lost, for docs/benchmarks.md.

Run:  python tests/benchmarks/bench_faults.py [--trials 20] [--repeats 1]

Runs the scenario of tests/test_faults.py (through the CLI, a private local Ray per driver): one trial
that always raises, one that diverges, one that hangs (stopped by the watchdog after
``budget.hang_timeout_s``), one that runs out of memory, one SIGKILLed mid-epoch, 10% of all trials
failing once at random, and the driver SIGKILLed once half the trials are recorded, then resumed with
``--resume``. Prints, per repeat, the figures and the wall time, and the fault log's events by kind.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: conftest and the scenario

from test_faults import fault_figures, run_fault_scenario  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="ecgsearch-bench-faults-") as folder:
            facts = run_fault_scenario(Path(folder), trials=args.trials)
            figures = fault_figures(facts)
            kinds = collections.Counter(event["kind"] for event in facts["faults"])
            print(f"repeat {repeat}: {args.trials} trials, wall {facts['seconds']:.0f} s")
            print(f"  plan: {facts['plan']}")
            for key, value in figures.items():
                print(f"  {key}: {value}")
            print(f"  fault events by kind: {dict(sorted(kinds.items()))}")
            statuses = facts["final"]["status"].value_counts().to_dict()
            print(f"  final statuses: {statuses}")


if __name__ == "__main__":
    main()
