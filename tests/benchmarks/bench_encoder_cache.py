"""Trials per hour with and without the encoder cache: one self-supervised pretraining, many downstream trials.

    nice python tests/benchmarks/bench_encoder_cache.py [--trials 8] [--pretrain-epochs 6] [--rounds 1]

One space, run twice side by side through ``ecgsearch.run`` (real Ray Tune, 2 CPUs, one trial at a time):
a masked-reconstruction pretraining (``--pretrain-epochs`` on the synthetic ECGs) and a grid of downstream
trials that differ only in what the pretraining ignores (``transfer.mode`` x ``data_fraction`` x
``freeze_stages``), so with ``transfer.cache: true`` every trial after the first loads the first's encoder
and with ``cache: false`` every trial pretrains. ``--rounds`` alternates the two (cache first, then
without) to average out the machine's load. Printed per run: wall seconds, trials per hour, pretrainings
done (rows with ``pretrain.cached`` false), the seconds spent pretraining and fine-tuning (training steps
only, summed over trials), and the mean downstream ``val.macro_auroc`` (the two must
train the same kind of models: the cached run's pretrainings are seeded from the key, the uncached run's
from each trial's seed, so the values differ by seed noise only).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ecgsearch


def space(trials: int, pretrain_epochs: int, cache: bool) -> dict:
    return {
        "name": f"encoder_cache_{'on' if cache else 'off'}",
        "seed": 0,
        "data": {"dataset": "synthetic", "records": 400, "sampling_rate": 50, "seconds": 10,
                 "leads": ["I", "II", "V1", "V5"]},
        "task": "multilabel",
        "metric": "macro_auroc",
        "budget": {"trials": trials, "epochs": 2, "scheduler": "fifo"},
        "resources": {"cpu": 2, "gpu": 0},
        "search": {"algorithm": "grid"},
        "transfer": {"pretrain": {"task": {"name": "masked_reconstruction"}, "epochs": pretrain_epochs},
                     "mode": {"choice": ["finetune", "linear_probe"]}, "freeze_stages": {"choice": [0, 1]},
                     "cache": cache},
        "space": {"architecture": {"resnet": {"depth": 10, "channels": 16, "kernel": 7}},
                  "optimizer": {"adamw": {"lr": 0.003}}, "batch_size": 32,
                  "data_fraction": {"choice": [0.5, 1.0]}},
    }


def measure(trials: int, pretrain_epochs: int, cache: bool, root: Path) -> dict:
    out = root / f"cache_{'on' if cache else 'off'}_{time.time_ns()}"
    started = time.perf_counter()
    run = ecgsearch.run(space(trials, pretrain_epochs, cache), out=out)
    seconds = time.perf_counter() - started
    rows = run.results
    return {"cache": cache, "seconds": seconds, "trials": len(rows), "per_hour": 3600 * len(rows) / seconds,
            "pretrainings": int((~rows["pretrain.cached"].astype(bool)).sum()) if cache else len(rows),
            "auroc": float(rows["val.macro_auroc"].mean()),
            # seconds spent pretraining in this run: a loaded encoder's pretrain.train_seconds were spent once
            "pretrain_s": float(rows.loc[~rows["pretrain.cached"].astype(bool), "pretrain.train_seconds"].sum()
                                if cache else rows["pretrain.train_seconds"].sum()),
            "finetune_s": float(rows["train_seconds"].sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--pretrain-epochs", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            for cache in (True, False):
                results.append(measure(args.trials, args.pretrain_epochs, cache, Path(folder)))
    print(f"{'cache':<6} {'seconds':>8} {'trials':>7} {'trials/h':>9} {'pretrainings':>13} {'pretrain s':>11} "
          f"{'fine-tune s':>12} {'val.macro_auroc':>16}")
    for r in results:
        print(f"{'on' if r['cache'] else 'off':<6} {r['seconds']:8.1f} {r['trials']:7d} {r['per_hour']:9.0f} "
              f"{r['pretrainings']:13d} {r['pretrain_s']:11.1f} {r['finetune_s']:12.1f} {r['auroc']:16.3f}")
    on = sum(r["per_hour"] for r in results if r["cache"]) / args.rounds
    off = sum(r["per_hour"] for r in results if not r["cache"]) / args.rounds
    print(f"trials/hour with the cache / without: {on:.0f} / {off:.0f} = {on / off:.2f}x")


if __name__ == "__main__":
    main()
