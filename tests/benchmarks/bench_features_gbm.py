"""The classical baseline (``features_gbm``) next to a small network, on the same data, split and metric.

Run:  python tests/benchmarks/bench_features_gbm.py [--records 1200] [--epochs 4] [--leads II V5]

Data: the quickstart's synthetic ECGs (8 leads, 100 Hz, 10 s; 9 SNOMED labels, multilabel). One search of
two trials through the real path (``ecgsearch.engine.run_search`` on a local Ray, one CPU per trial):
``features_gbm`` (its defaults; features from ``--leads``) and ``resnet`` (depth 8, 16 channels, kernel 7,
AdamW, ``--epochs`` epochs). Printed: each trial's validation and test macro AUROC, its cost columns and
its time (for the baseline: feature extraction and fit apart), then a second ``features_gbm`` trial on
the same cache entry, whose extraction is a cache hit. Nothing here is tuned: both use fixed settings.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from ecgsearch.engine import run_search
from ecgsearch.space import parse_space

SPACE = """
name: gbm-vs-net
seed: 0
data: {{dataset: synthetic, records: {records}, sampling_rate: 100, seconds: 10, leads: [I, II, V1, V2, V3, V4, V5, V6]}}
task: multilabel
metric: macro_auroc
budget: {{trials: 2, epochs: {epochs}}}
resources: {{cpu: 1, gpu: 0}}
search: {{algorithm: grid}}
space:
  architecture:
    features_gbm: {{feature_leads: {leads}}}
    resnet: {{depth: 8, channels: 16, kernel: 7}}
  optimizer: {{adamw: {{lr: 1.0e-3, weight_decay: 1.0e-4}}}}
  batch_size: 64
"""
COLUMNS = ["architecture", "val.macro_auroc", "test.macro_auroc", "cost.params", "cost.flops", "cost.macs",
           "train_seconds", "features_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1200)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--leads", nargs="+", default=["II", "V5"])
    args = parser.parse_args()
    text = SPACE.format(records=args.records, epochs=args.epochs, leads="[" + ", ".join(args.leads) + "]")
    with tempfile.TemporaryDirectory() as tmp:
        frame = run_search(parse_space(text, source="gbm-vs-net.yaml"), Path(tmp) / "first").results
        print("side by side (first run: the baseline extracts its features):")
        print(frame[[c for c in COLUMNS if c in frame.columns]].to_string(index=False))
        again = parse_space(text.replace("trials: 2", "trials: 1").replace(
            "    resnet: {depth: 8, channels: 16, kernel: 7}\n", ""), source="gbm-again.yaml")
        second = run_search(again, Path(tmp) / "second").results
        print("the baseline again on the same cache entry (features loaded):")
        print(second[[c for c in COLUMNS if c in second.columns]].to_string(index=False))


if __name__ == "__main__":
    main()
