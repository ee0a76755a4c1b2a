"""Overhead of an ecgsearch trial vs a bare PyTorch training loop, same model, data and threads.

Run:  python tests/benchmarks/bench_overhead.py [--repeats 3] [--epochs 3]

Both sides train ResNet-1D (depth 8, 16 channels, kernel 7) with AdamW, batch 64, on the quickstart's
synthetic data (1200 records, 8 leads, 100 Hz, 10 s), one thread each, alternating bare/trial so
machine noise hits both alike. The trial runs through the real path: ``ecgsearch.engine.run_search``
on a local Ray, i.e. a Ray Tune worker reading the memory-mapped cache. Two ratios are printed:

- training throughput: training samples per second inside the epochs (trial / bare); target >= 0.9;
- whole trial: wall seconds of the bare loop (train + validation AUROC each epoch) / the trial's
  Tune ``time_total_s`` (setup, epochs, evaluation and reporting included).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ecgsearch.data.cache import open_dataset
from ecgsearch.engine import prepare_data, run_search
from ecgsearch.plugins import get_registries
from ecgsearch.results import read_results
from ecgsearch.space import load_space

SPACE = """
name: overhead
seed: 0
data: {{dataset: synthetic, records: 1200, sampling_rate: 100, seconds: 10, leads: [I, II, V1, V2, V3, V4, V5, V6]}}
task: multilabel
metric: macro_auroc
budget: {{trials: 1, epochs: {epochs}}}
resources: {{cpu: 1, gpu: 0}}
space:
  architecture: {{resnet: {{depth: 8, channels: 16, kernel: 7}}}}
  optimizer: {{adamw: {{lr: 1.0e-3, weight_decay: 1.0e-4}}}}
  batch_size: 64
"""


def bare_loop(entry: Path, epochs: int, seed: int) -> tuple[float, float]:
    """A plain PyTorch loop: (training samples/s, wall seconds incl. setup and per-epoch validation)."""
    started = time.perf_counter()
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    regs = get_registries()
    data = open_dataset(entry)
    train = data.indices("train")
    x = torch.from_numpy(np.ascontiguousarray(data.signals[train]))
    y = torch.from_numpy(np.ascontiguousarray(data.targets[train]))
    val = data.indices("val")
    xv = torch.from_numpy(np.ascontiguousarray(data.signals[val]))
    yv = np.asarray(data.targets[val])
    model = regs.architectures.get("resnet").create(x.shape[1], x.shape[2], y.shape[1], depth=8, channels=16, kernel=7)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    auroc = regs.metrics.get("macro_auroc").create()
    train_time, seen = 0.0, 0
    for _ in range(epochs):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = order[i:i + 64]
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(idx)
        train_time += time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            auroc(yv, torch.sigmoid(model(xv)).numpy(), data.target_names)
    return seen / train_time, time.perf_counter() - started


def ecgsearch_trial(space_file: Path, entry: Path, out: Path) -> tuple[float, float]:
    """The same training as one ecgsearch trial: (training samples/s, Tune's time_total_s)."""
    import ray

    run_search(load_space(space_file), out)
    row = read_results(out).iloc[0]
    assert row["status"] == "ok", row["error"]
    state = ray.tune.ExperimentAnalysis(str(out / "tune"))
    last = next(iter(state.trial_dataframes.values())).iloc[-1]
    n_train = len(open_dataset(entry).indices("train"))
    return n_train * int(row["epochs"]) / float(row["train_seconds"]), float(last["time_total_s"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        space_file = Path(tmp) / "overhead.yaml"
        space_file.write_text(SPACE.format(epochs=args.epochs))
        entry = prepare_data(load_space(space_file))
        ray.init(num_cpus=2, object_store_memory=256 * 1024**2, include_dashboard=False, log_to_driver=False)
        bare, trial = [], []
        for r in range(args.repeats):
            bare.append(bare_loop(entry, args.epochs, seed=r))
            trial.append(ecgsearch_trial(space_file, entry, Path(tmp) / f"run{r}"))
            print(f"repeat {r}: bare {bare[-1][0]:.1f} samples/s, {bare[-1][1]:.2f} s; "
                  f"trial {trial[-1][0]:.1f} samples/s, {trial[-1][1]:.2f} s", flush=True)
        ray.shutdown()
    bare_tp = statistics.median(b[0] for b in bare)
    trial_tp = statistics.median(t[0] for t in trial)
    bare_wall = statistics.median(b[1] for b in bare)
    trial_wall = statistics.median(t[1] for t in trial)
    print(f"training throughput: bare {bare_tp:.1f} samples/s, ecgsearch trial {trial_tp:.1f} samples/s, "
          f"ratio {trial_tp / bare_tp:.3f} (target >= 0.9)")
    print(f"whole trial: bare {bare_wall:.2f} s, ecgsearch trial (Tune time_total_s) {trial_wall:.2f} s, "
          f"ratio {bare_wall / trial_wall:.3f}")
    return 0 if trial_tp / bare_tp >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
