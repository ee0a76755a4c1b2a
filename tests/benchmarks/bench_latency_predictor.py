"""The latency predictors' accuracy on models they never saw: fraction predicted within +-10%.

Samples N configurations from every registered architecture's default space (the space language's own
sampler) and, in this process, one model after the other:

1. measures each model on every backend in ``--rounds`` passes over all models;
2. cuts each into kernels as the backend fuses them (``fusion_rules``) and measures the kernels missing
   from the backend's kernel table (a fresh table in a temporary folder unless ``--kernel-cache`` names
   one, so its build cost is counted), each kernel in ``--rounds`` passes too;
3. measures each model in ``--rounds`` more passes. The target the predictors learn and are scored on
   is each model's median over the odd passes, the repeat its median over the even ones (both straddle
   the kernel table, minutes apart): how often the two agree within +-10% is the repeatability, the
   ceiling of any predictor on this machine. A shared host's speed drifts by +-10% over minutes (one
   model timed every 2 s for 150 s on an idle guest: 5th-95th percentile 0.94-1.13 of its median), so
   one pass is not a measurement of the model; a median of passes spread in time is.

A random ``--calibration`` share of the models is the calibration set: the whole-model predictor
(random forest on architecture + ``cost.*``) and the kernel-level predictor's correction are fitted on
it; both are scored on the other, unseen models. Also printed: the plain kernel sum (no correction),
the kernel predictor's error band (90th percentile of its cross-validated error on the calibration
set) and how many unseen models it covered, and the kernel predictor's share within +-10% over ``--splits``
more random calibration splits of the same measurements (mean and range: one split of 30 models may lack a
family the unseen half has).

    nice python tests/benchmarks/bench_latency_predictor.py --models 60 --time-budget 0.3 --out rows.parquet
    python tests/benchmarks/bench_latency_predictor.py --rows rows.parquet   # score saved measurements again
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from bench_latency import measure_model

from ecgsearch.latency.kernel_predictor import STATS, KernelPredictor, KernelSum, kernel_sum
from ecgsearch.latency.kernel_table import KERNEL_RUNNERS, KernelTable
from ecgsearch.latency.kernels import fusion_rules, model_kernels
from ecgsearch.latency.options import BackendOptions, MeasureSettings
from ecgsearch.latency.predictor import TOLERANCE, LatencyPredictor, relative_errors
from ecgsearch.plugins import get_registries
from ecgsearch.space import parse_space
from ecgsearch.train.costs import model_costs

DEFAULT_BACKENDS = ("onnxruntime-cpu", "openvino-cpu")
SUM_FIELDS = ("kernels", "overhead_ms", "class_ms", "output_mb", "concats", "weight_mb")


def sampled_models(n: int, seed: int) -> list[tuple[str, dict]]:
    """``n`` (architecture, parameters) drawn from every architecture's default space."""
    archs = [a.name for a in get_registries().architectures if a.plugin != "ecg_test_plugins" and a.model_kind == "torch"]
    spec = parse_space({"data": {"dataset": "synthetic"}, "task": "multilabel", "budget": {"trials": n, "epochs": 1},
                        "space": {"architecture": {a: {"default": True} for a in archs}, "optimizer": "adamw"}})
    out = []
    for i in range(n):
        resolved = spec.space.resolve(spec.space.active(spec.space.sample(seed, i)))
        out.append(resolved.choices["architecture"])
    return out


def measure_pass(models: dict[str, torch.nn.Module], x: torch.Tensor, backends: tuple[str, ...],
                 options: BackendOptions, settings: MeasureSettings, name: str) -> dict[str, dict[str, float]]:
    """``{trial_id: {"<backend>.p50_ms": ..., "<backend>.min_ms": ...}}`` of every model (nan: failed)."""
    out = {}
    for k, (trial, model) in enumerate(models.items()):
        got = measure_model(model, x, backends, options, settings)
        out[trial] = {f"{b}.{stat}_ms": got[b].get(stat, np.nan) for b in backends for stat in ("p50", "min")}
        print(f"# pass {name} {k + 1}/{len(models)} {trial}: "
              + ", ".join(f"{b} {out[trial][f'{b}.p50_ms']:.3f} ms" for b in backends), flush=True)
    return out


def sum_columns(prefix: str, total: KernelSum) -> dict[str, float]:
    """A kernel sum as ``<prefix>.<field>`` columns (one per kernel class for ``class_ms``)."""
    values = total.as_dict()
    columns = {f"{prefix}.{f}": values[f] for f in SUM_FIELDS if f != "class_ms"}
    columns.update({f"{prefix}.class_ms.{k}": v for k, v in enumerate(total.class_ms)})
    return columns


def sums_of(frame: pd.DataFrame, prefix: str) -> list[KernelSum]:
    """The kernel sums stored by ``sum_columns``."""
    classes = sorted(c for c in frame.columns if c.startswith(f"{prefix}.class_ms."))
    return [KernelSum(int(row[f"{prefix}.kernels"]), float(row[f"{prefix}.overhead_ms"]),
                      tuple(float(row[c]) for c in classes), float(row[f"{prefix}.output_mb"]),
                      int(row.get(f"{prefix}.concats", 0)),  # rows saved before the Concat term: none counted
                      # rows saved before the weight term: the parameters' fp32 bytes
                      float(row.get(f"{prefix}.weight_mb", row["cost.params"] * 4 / 1e6)))
            for _, row in frame.iterrows()]


def measure_rows(args: argparse.Namespace, backends: tuple[str, ...]) -> tuple[pd.DataFrame, dict[str, str]]:
    """The measured rows (costs, pass A and B medians, kernel sums) and each kernel table's build cost."""
    options = BackendOptions(threads=args.threads)
    settings = MeasureSettings(time_budget_s=args.time_budget)
    x = torch.randn(1, args.leads, args.samples, generator=torch.Generator().manual_seed(0))
    models, rows = {}, {}
    for i, (arch, params) in enumerate(sampled_models(args.models, args.seed)):
        torch.manual_seed(i)
        try:
            model = get_registries().architectures.get(arch).create(args.leads, args.samples, 5, **params).eval()
        except ValueError as error:  # a combination the architecture rejects
            print(f"# skipped {arch} {params}: {error}")
            continue
        trial = f"m{i:04d}"
        models[trial] = model
        rows[trial] = {"trial_id": trial, "architecture": arch, **model_costs(model, args.leads, args.samples).columns()}
    passes = [measure_pass(models, x, backends, options, settings, f"{k + 1}/{2 * args.rounds}")
              for k in range(args.rounds)]
    cache = Path(args.kernel_cache or tempfile.mkdtemp(prefix="ecgsearch-bench-kernels-"))
    built = {}
    for b in (b for b in backends if b in KERNEL_RUNNERS):
        started = time.perf_counter()
        kernels = {trial: model_kernels(model, x, fusion_rules(b)) for trial, model in models.items()}
        print(f"# {sum(map(len, kernels.values()))} kernels cut for {b} in {time.perf_counter() - started:.0f} s",
              flush=True)
        table = KernelTable(b, options, cache_dir=cache, rounds=args.rounds)
        for trial, cut in kernels.items():
            timings = table.times(cut)
            for stat in STATS:
                total = kernel_sum(cut, timings, getattr(table.overhead(), stat), stat)
                rows[trial].update(sum_columns(f"kernel.{b}.{stat}", total))
        built[b] = f"{table.log.measured} measured, {table.log.reused} reused, {table.log.seconds:.0f} s"
        print(f"# kernel table {b}: {built[b]}", flush=True)
    passes += [measure_pass(models, x, backends, options, settings, f"{k + 1}/{2 * args.rounds}")
               for k in range(args.rounds, 2 * args.rounds)]
    for trial, row in rows.items():  # odd passes make the target, even ones the repeat it is compared with
        row.update({f"latency.{k}": v for k, v in combined(passes[0::2], trial).items()})
        row.update({f"repeat.{k}": v for k, v in combined(passes[1::2], trial).items()})
    return pd.DataFrame(list(rows.values())), built


def combined(passes: list[dict[str, dict[str, float]]], trial: str) -> dict[str, float]:
    """One model's passes as one measurement: the median of their medians, the least of their fastest calls."""
    keys = passes[0][trial]
    return {k: float(np.nanmedian([p[trial][k] for p in passes]) if k.endswith("p50_ms")
                     else np.nanmin([p[trial][k] for p in passes])) for k in keys}


def fraction(errors: np.ndarray) -> str:
    return f"{np.mean(errors <= TOLERANCE):.0%} ({np.median(errors):.1%})"


def kernel_errors(frame: pd.DataFrame, backend: str, stat: str, calibration: np.ndarray
                  ) -> tuple[KernelPredictor, np.ndarray]:
    """The kernel predictor fitted on the ``calibration`` models, and its relative errors on the others."""
    target, sums = f"latency.{backend}.{stat}", f"kernel.{backend}.{stat}"
    cal, unseen = frame[frame["trial_id"].isin(calibration)], frame[~frame["trial_id"].isin(calibration)]
    predictor = KernelPredictor(backend, stat=stat)  # scoring saved sums: its kernel table is never opened
    predictor.fit(sums_of(cal, sums), cal[target].to_numpy(dtype=float))
    return predictor, relative_errors(predictor.predict(sums_of(unseen, sums)), unseen[target].to_numpy(dtype=float))


def calibration_split(trials: np.ndarray, share: float, seed: object) -> np.ndarray:
    """A random ``share`` of the models, the calibration set (the rest are unseen)."""
    return np.random.default_rng(seed).permutation(trials)[:int(share * len(trials))]


def split_scores(frame: pd.DataFrame, backend: str, stat: str, share: float, splits: int, seed: int) -> np.ndarray:
    """Share within +-10% of the unseen models over ``splits`` further random calibration splits of the same
    measurements (repeated random sub-sampling): one split's 30 models may miss a family altogether."""
    trials = frame["trial_id"].to_numpy()
    return np.array([np.mean(kernel_errors(frame, backend, stat, calibration_split(trials, share, [seed, k]))[1]
                             <= TOLERANCE) for k in range(splits)])


def score_row(frame: pd.DataFrame, backend: str, stat: str, calibration: np.ndarray, built: str,
              args: argparse.Namespace) -> str:
    """One table row: repeatability, the whole-model and the kernel predictor on the unseen models."""
    target, sums = f"latency.{backend}.{stat}", f"kernel.{backend}.{stat}"
    frame = frame[np.isfinite(frame[target]) & (frame[target] > 0)]
    cal, unseen = frame[frame["trial_id"].isin(calibration)], frame[~frame["trial_id"].isin(calibration)]
    measured = unseen[target].to_numpy(dtype=float)
    repeat = relative_errors(unseen[f"repeat.{backend}.{stat}"].to_numpy(dtype=float), measured)
    whole = cal.assign(**{f"latency.{backend}.p50_ms": cal[target]})  # it learns the column asked for
    old = relative_errors(LatencyPredictor(backend).fit(whole).predict(unseen), measured)
    cells = [f"{backend} ({stat})", f"{len(cal)} / {len(unseen)}", fraction(repeat), fraction(old)]
    if f"{sums}.kernels" in frame.columns:
        plain = relative_errors(KernelPredictor(backend, stat=stat).predict(sums_of(unseen, sums)), measured)
        predictor, new = kernel_errors(frame, backend, stat, calibration)
        cells += [fraction(new), fraction(plain),
                  f"{predictor.error_band:.1%} / {np.mean(new <= predictor.error_band):.0%}", built]
        if args.splits:
            scores = split_scores(frame, backend, stat, args.calibration, args.splits, args.seed)
            cells.append(f"{scores.mean():.1%} ({scores.min():.0%}-{scores.max():.0%})")
    else:
        cells += ["-", "-", "-", "-"] + (["-"] if args.splits else [])
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=60)
    parser.add_argument("--backend", action="append", default=[])
    parser.add_argument("--leads", type=int, default=12)
    parser.add_argument("--samples", type=int, default=2500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--time-budget", type=float, default=0.3)
    parser.add_argument("--rounds", type=int, default=3,
                        help="passes per measurement, interleaved: the target is the median of the odd passes, "
                             "the repeat of the even ones, and the kernel tables are measured in this many rounds")
    parser.add_argument("--calibration", type=float, default=0.5, help="share of the models calibrated on")
    parser.add_argument("--splits", type=int, default=20,
                        help="also score the kernel predictor over this many more random calibration splits of the "
                             "same measurements (0: only the seed's split)")
    parser.add_argument("--target", action="append", choices=STATS, default=[],
                        help="the statistic predicted and scored (default: p50_ms, then min_ms)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kernel-cache", help="kernel table folder (default: a fresh temporary one)")
    parser.add_argument("--out", help="also write the measured rows to this parquet file")
    parser.add_argument("--rows", help="score the rows of an earlier --out instead of measuring")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    backends = tuple(args.backend) or DEFAULT_BACKENDS
    started = time.perf_counter()
    if args.rows:
        frame, built = pd.read_parquet(args.rows), {}
    else:
        load = os.getloadavg()[0]
        frame, built = measure_rows(args, backends)
        print(f"# load average {load:.1f} before, {os.getloadavg()[0]:.1f} after")
    if args.out:
        frame.to_parquet(args.out, index=False)
    calibration = calibration_split(frame["trial_id"].to_numpy(), args.calibration, args.seed)
    print(f"# {len(frame)} models ({frame['architecture'].nunique()} architectures), input "
          f"{args.leads}x{args.samples}, threads {args.threads}, batch 1, {time.perf_counter() - started:.0f} s")
    print("| backend | calibration / unseen models | repeatability: 2nd measurement within +-10% (median diff) "
          "| whole-model predictor within +-10% (median error) | kernel predictor within +-10% (median error) "
          "| plain kernel sum within +-10% (median error) | kernel error band / unseen within it | kernel table |"
          + (f" kernel predictor within +-10%, {args.splits} more calibration splits: mean (range) |"
             if args.splits else ""))
    print("|---|---|---|---|---|---|---|---|" + ("---|" if args.splits else ""))
    for stat in args.target or STATS:
        for b in backends:
            print(score_row(frame, b, stat, calibration, built.get(b, "saved"), args))


if __name__ == "__main__":
    main()
