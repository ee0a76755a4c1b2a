"""Time to generate the quickstart's synthetic data (1200 records, 8 leads, 100 Hz, 10 s) on this machine.

Run:  python tests/benchmarks/bench_synthetic.py [--workers 2] [--repeats 2]

Each repeat builds the data from scratch into a fresh temporary cache (no cache hit) and prints the wall
time; the target is < 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ecgsearch.data.cache import prepare_dataset
from ecgsearch.plugins import get_registries

QUICKSTART = dict(records=1200, sampling_rate=100, seconds=10, leads=["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    info = get_registries().datasets.get("synthetic")
    times = []
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            prepare_dataset("synthetic", info.create(workers=args.workers, **QUICKSTART), Path(tmp))
            times.append(time.perf_counter() - started)
        print(f"repeat {r}: {times[-1]:.1f} s", flush=True)
    median = statistics.median(times)
    print(f"synthetic quickstart data, {args.workers} workers: median {median:.1f} s (target < 60 s)")
    return 0 if median < 60 else 1


if __name__ == "__main__":
    sys.exit(main())
