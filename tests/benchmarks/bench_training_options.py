"""What schedules, gradient clipping and precision cost in the trial loop, side by side with a bare loop.

Run:  python tests/benchmarks/bench_training_options.py [--rounds 8]

Every variant trains the same ResNet-1D (depth 8, 16 channels, kernel 7) with AdamW, batch 32, one
thread, on the synthetic regression data of the HR must-show (400 records, 4 leads, 50 Hz, 10 s,
``targets: intervals``), through ``ecgsearch.train.trial.build_trial`` + ``train_epoch``; ``bare`` is a plain
PyTorch loop over the same tensors (L1 loss on standardised targets). All variants are built first,
then each round trains one epoch of every variant in turn, so load changes on a shared machine hit
them alike; the table gives training samples/s (median and best epoch) and the ratios to ``bare``.
``plain`` (fp32, no clipping, constant learning rate: what a space without these keys gets) should
match ``bare``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ecgsearch.engine import prepare_data
from ecgsearch.space import parse_space
from ecgsearch.train.context import TrialContext
from ecgsearch.train.loop import train_epoch
from ecgsearch.train.setup import build_trial

SPACE = """
data: {dataset: synthetic, records: 400, sampling_rate: 50, seconds: 10, leads: [I, II, V1, V5], targets: intervals}
task: regression
budget: {trials: 1, epochs: EPOCHS}
space:
  architecture: {resnet: {depth: 8, channels: 16, kernel: 7}}
  optimizer: {adamw: {lr: 1.0e-3, weight_decay: 1.0e-4}}
  batch_size: 32
EXTRA
"""
VARIANTS = {
    "plain": "",
    "cosine": "  schedule: {cosine: {warmup_epochs: 1}}",
    "grad_clip": "  grad_clip: 1.0",
    "bf16": "  precision: bf16",
    "all": "  schedule: {onecycle: {}}\n  grad_clip: 1.0\n  precision: bf16",
}


def context(extra: str, epochs: int) -> tuple[TrialContext, dict]:
    spec = parse_space(SPACE.replace("EPOCHS", str(epochs)).replace("EXTRA", extra))
    entry = prepare_data(spec)
    ctx = TrialContext(cache_entry=str(entry), out_dir="", epochs=epochs, metric=spec.metric, mode=spec.mode,
                       task=spec.task.name, task_params=dict(spec.task.params), seed=0, space=spec.space)
    return ctx, spec.space.sample(0, 0)


class Variant:
    """One built trial (or the bare loop) whose epochs can be timed one at a time."""

    def __init__(self, name: str, extra: str | None, epochs: int) -> None:
        ctx, config = context(extra or "", epochs)
        torch.manual_seed(0)
        self.name, self.setup = name, build_trial(config, ctx)
        self.generator = torch.Generator().manual_seed(0)
        self.bare = extra is None
        if self.bare:  # the same model, tensors and AdamW settings, driven by a plain loop
            self.optimizer = torch.optim.AdamW(self.setup.model.parameters(), lr=1e-3, weight_decay=1e-4)
            y = self.setup.train_y
            self.z = (y - y.mean(0)) / y.std(0)

    def epoch(self) -> float:
        """Training samples/s of one epoch."""
        started = time.perf_counter()
        seen = self._bare_epoch() if self.bare else train_epoch(self.setup, self.generator)[1]
        return seen / (time.perf_counter() - started)

    def _bare_epoch(self) -> int:
        model, x = self.setup.model, self.setup.train_x
        model.train()
        order, seen = torch.randperm(len(x), generator=self.generator), 0
        for start in range(0, len(x), 32):
            idx = order[start:start + 32]
            if len(idx) < 2:
                break
            loss = (model(x[idx]) - self.z[idx]).abs().mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            seen += len(idx)
        return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="epochs per variant, taken in turn")
    args = parser.parse_args()
    torch.set_num_threads(1)
    variants = [Variant("bare", None, args.rounds)] + [Variant(n, e, args.rounds) for n, e in VARIANTS.items()]
    results: dict[str, list[float]] = {v.name: [] for v in variants}
    for round_ in range(args.rounds):
        for variant in variants:  # one epoch each, in turn, so load changes hit every variant alike
            results[variant.name].append(variant.epoch())
        print(f"round {round_}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in results.items()), flush=True)
    base_median = statistics.median(results["bare"])
    base_best = max(results["bare"])
    print("\n| variant | samples/s, median | ratio to bare | samples/s, best epoch | ratio to bare |")
    print("|---|---|---|---|---|")
    for name, values in results.items():
        median, best = statistics.median(values), max(values)
        print(f"| {name} | {median:.0f} | {median / base_median:.3f} | {best:.0f} | {best / base_best:.3f} |")


if __name__ == "__main__":
    main()
