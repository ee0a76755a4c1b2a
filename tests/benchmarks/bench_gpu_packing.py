"""Trials per hour on one GPU with 1, 2, 4 and 8 small ECG trials packed on it (fractional GPUs).

Run:  python tests/benchmarks/bench_gpu_packing.py [--packs 1 2 4 8] [--trials-per-slot 2] [--epochs 3]
                                                     [--precision bf16] [--data-on-gpu auto|true|false]

For each packing k the same search runs with ``resources: {gpu: 1/k}`` and ``max_concurrent: k``
(Ray places k trials on the GPU at once), ``k x trials-per-slot`` trials of a ResNet-1D on synthetic
12-lead ECGs, and the wall time of the whole search gives trials/hour; the ratio to k = 1 says what
packing buys. Without a CUDA GPU it prints why and exits 0 (nothing to measure).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

SPACE = """
name: packing{k}
seed: 0
data: {{dataset: synthetic, records: 2000, sampling_rate: 100, seconds: 10,
        leads: [I, II, III, aVR, aVL, aVF, V1, V2, V3, V4, V5, V6]}}
task: multilabel
budget: {{trials: {trials}, epochs: {epochs}, max_concurrent: {k}, checkpoint_every: 0}}
resources: {{cpu: {cpu}, gpu: {gpu}, data_on_gpu: {data_on_gpu}}}
space:
  architecture: {{resnet: {{depth: 18, channels: 32, kernel: 7}}}}
  optimizer: {{adamw: {{lr: {{loguniform: [1.0e-4, 3.0e-3]}}}}}}
  batch_size: 64
  precision: {precision}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packs", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--trials-per-slot", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--data-on-gpu", default="auto", choices=["auto", "true", "false"])
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA GPU here: the packing benchmark has nothing to measure (skipped)")
        return

    import ray

    from ecgsearch.engine import run_search
    from ecgsearch.results import read_results
    from ecgsearch.space import parse_space

    cpus = os.cpu_count() or 1
    ray.init(num_cpus=cpus, num_gpus=1, include_dashboard=False, log_to_driver=False)
    print(f"GPU: {torch.cuda.get_device_name(0)}; {cpus} CPUs; torch {torch.__version__}; "
          f"precision {args.precision}; data_on_gpu {args.data_on_gpu}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="ecgsearch-bench-packing-") as folder:
        for k in args.packs:
            trials = k * args.trials_per_slot
            text = SPACE.format(k=k, trials=trials, epochs=args.epochs, cpu=max(1, cpus // k),
                                gpu=round(1 / k, 6), data_on_gpu=args.data_on_gpu, precision=args.precision)
            spec = parse_space(text, source=f"packing{k}.yaml")
            started = time.perf_counter()
            run_search(spec, Path(folder) / f"k{k}")
            wall = time.perf_counter() - started
            frame = read_results(Path(folder) / f"k{k}")
            ok = int((frame["status"] == "ok").sum())
            rows.append((k, trials, ok, wall, 3600 * ok / wall, float(frame["train_seconds"].median())))
            print(f"packed {k}: {ok}/{trials} trials ok in {wall:.1f} s -> {rows[-1][4]:.1f} trials/hour", flush=True)
    base = rows[0][4]
    print("\n| trials packed on the GPU | trials | wall s | trials/hour | vs 1 packed | median train s/trial |")
    print("|---|---|---|---|---|---|")
    for k, trials, ok, wall, per_hour, train in rows:
        print(f"| {k} | {ok}/{trials} | {wall:.1f} | {per_hour:.1f} | {per_hour / base:.2f}x | {train:.1f} |")
    ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
