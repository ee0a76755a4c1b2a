"""Latency of every registered architecture at two sizes on the CPU backends, side by side in one run.

For each architecture (and named variant) of the registry, the smallest and the largest configuration
of its default space are built once and measured, one right after the other in this process, on every
backend asked for (default: torch-cpu, onnxruntime-cpu, openvino-cpu), with the same input, threads and
time budget. Printed: a Markdown table with each backend's median (p90) latency, the speedup of ONNX
Runtime and OpenVINO over PyTorch eager, and the largest output difference from PyTorch.

    python tests/benchmarks/bench_latency.py --time-budget 2 --threads 1
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
import warnings
from typing import Any

import torch

from ecgsearch.latency.backend import backend_status, create_backend
from ecgsearch.latency.options import BackendOptions, MeasureSettings
from ecgsearch.plugins import get_registries
from ecgsearch.train.costs import model_costs

DEFAULT_BACKENDS = ("torch-cpu", "onnxruntime-cpu", "openvino-cpu")
REFERENCE = "torch-cpu"


def corner_configs(default_space: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``small`` and ``large``: every parameter of a default space at its smallest / largest value.

    Ranges include both ends in the space language; a categorical choice takes its first / last value.
    """
    small, large = {}, {}
    for name, dist in default_space.items():
        ((kind, values),) = dist.items()
        values = list(values)
        if kind not in ("choice", "grid"):
            ordered = values[:2]  # [lo, hi] (a step or base after them is not a value)
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            ordered = sorted(values)
        else:
            ordered = values
        small[name], large[name] = ordered[0], ordered[-1]
    return {"small": small, "large": large}


def measure_model(model: torch.nn.Module, x: torch.Tensor, backends: tuple[str, ...], options: BackendOptions,
                  settings: MeasureSettings) -> dict[str, dict[str, Any]]:
    """Each backend's statistics and numerics for one model, measured one after the other."""
    out: dict[str, dict[str, Any]] = {}
    regs = get_registries()
    for name in backends:
        try:
            backend = create_backend(regs.backends.get(name), options)
            backend.prepare(model, x)
            diff = backend.numerics_check(model, x.numpy())
            stats = backend.measure(settings)
            out[name] = {"p50": stats.p50_ms, "p90": stats.p90_ms, "min": stats.min_ms, "diff": diff,
                         "ci": stats.ci_rel, "precision": backend.effective_precision}
        except Exception as error:  # a benchmark reports a failing backend and goes on
            out[name] = {"error": f"{type(error).__name__}: {str(error)[:80]}"}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", action="append", default=[], help=f"default: {', '.join(DEFAULT_BACKENDS)}")
    parser.add_argument("--arch", action="append", default=[], help="only these architectures (default: all)")
    parser.add_argument("--leads", type=int, default=12)
    parser.add_argument("--samples", type=int, default=5000, help="input length (default 10 s at 500 Hz)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--time-budget", type=float, default=2.0, help="seconds of timing per model and backend")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    backends = tuple(args.backend) or DEFAULT_BACKENDS
    options = BackendOptions(threads=args.threads)
    settings = MeasureSettings(batch_size=args.batch_size, time_budget_s=args.time_budget)
    regs = get_registries()
    for name in backends:
        usable, reason = backend_status(regs.backends.get(name), options)
        if not usable:
            print(f"# {name}: not usable here ({reason}); its column says so")
    archs = [a for a in regs.architectures if a.plugin != "ecg_test_plugins" and a.model_kind == "torch"
             and (not args.arch or a.name in args.arch)]
    x = torch.randn(args.batch_size, args.leads, args.samples, generator=torch.Generator().manual_seed(0))
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, threads {args.threads}, "
          f"batch {args.batch_size}, input {args.leads}x{args.samples}, {args.time_budget:g} s per measurement")
    others = [b for b in backends if b != REFERENCE]
    header = ["architecture", "size", "params", "MFLOPs", *[f"{b} p50 (p90) ms" for b in backends],
              *[f"{b} speedup" for b in others if REFERENCE in backends], "max abs diff"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    started = time.perf_counter()
    for info in archs:
        for size, params in corner_configs(dict(info.default_space)).items():
            torch.manual_seed(0)
            model = info.create(args.leads, args.samples, 5, **params).eval()
            costs = model_costs(model, args.leads, args.samples)
            got = measure_model(model, x, backends, options, settings)
            cells = [f"{got[b]['p50']:.3f} ({got[b]['p90']:.3f})" if "p50" in got[b] else got[b]["error"]
                     for b in backends]
            speedups = [f"{got[REFERENCE]['p50'] / got[b]['p50']:.2f}x"
                        if "p50" in got[b] and "p50" in got.get(REFERENCE, {}) else "-" for b in others] \
                if REFERENCE in backends else []
            diff = max((got[b]["diff"] for b in others if "diff" in got[b]), default=0.0)
            print(f"| {info.name} | {size} | {costs.params:,} | {costs.flops / 1e6:.1f} | " + " | ".join(cells)
                  + " | " + " | ".join(speedups) + f" | {diff:.1e} |", flush=True)
    print(f"# total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
