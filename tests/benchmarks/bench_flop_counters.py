"""fvcore vs torch's FLOP counter on every registered architecture (the cost convention cross-check).

Run:  python tests/benchmarks/bench_flop_counters.py [--leads 12] [--samples 1000]

For each architecture's default configuration: MACs from the analytic path (what the search uses),
from ``torch.utils.flop_counter`` on the CPU model, from fvcore under the project's convention
(``ecgsearch.train.costs.fvcore_macs``: matrix-product ops only, attention handled) and from fvcore with its
own defaults (norms counted, ``scaled_dot_product_attention`` not), with the ratios to torch's count.
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

from ecgsearch.plugins import get_registries
from ecgsearch.train.costs import estimate_costs, torch_macs


def fvcore_default_macs(model: torch.nn.Module, leads: int, samples: int) -> int:
    from fvcore.nn import FlopCountAnalysis

    model.eval()
    with torch.no_grad():
        analysis = FlopCountAnalysis(model, torch.zeros(1, leads, samples))
        return int(analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).total())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=12)
    parser.add_argument("--samples", type=int, default=1100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    from ecgsearch.train.costs import fvcore_macs

    leads, samples = args.leads, args.samples
    print(f"MACs per {leads} x {samples} input, default configuration of each architecture\n")
    print("| architecture | params | analytic MACs | torch counter MACs | fvcore MACs | fvcore / torch "
          "| fvcore defaults / torch | seconds (torch, fvcore) |")
    print("|---|---|---|---|---|---|---|---|")
    for info in get_registries().architectures:
        if info.plugin == "ecg_test_plugins" or info.model_kind != "torch":  # networks only
            continue
        model = info.create(leads, samples, 5)
        analytic = estimate_costs(info.load(), leads, samples, 5, {})
        t0 = time.perf_counter()
        counted = torch_macs(model, leads, samples)
        t1 = time.perf_counter()
        fv = fvcore_macs(model, leads, samples)
        t2 = time.perf_counter()
        fv_default = fvcore_default_macs(model, leads, samples)
        print(f"| {info.name} | {analytic.params:,} | {analytic.macs:,} | {counted:,} | {fv:,} | {fv / counted:.4f} "
              f"| {fv_default / counted:.4f} | {t1 - t0:.2f}, {t2 - t1:.2f} |")


if __name__ == "__main__":
    main()
