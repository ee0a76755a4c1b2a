"""A tiny, instantly built dataset for trial-level tests (not collected: no ``test_`` prefix).

Each record is a sine on two leads whose frequency and amplitude are the regression targets, so a
small CNN learns them in a few epochs; ``targets="labels"`` gives two binary labels derived from them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ecgsearch.data import EcgArrays
from ecgsearch.data.cache import prepare_dataset
from ecgsearch.space import parse_space
from ecgsearch.train.context import TrialContext

SPACE = """
data: {{dataset: synthetic, records: 40, targets: {targets}}}
task: {task}
budget: {{trials: 1, epochs: {epochs}}}
space:
  architecture: {{resnet: {{depth: 8, channels: 8, kernel: 7}}}}
  optimizer: {{adamw: {{lr: 0.01}}}}
  batch_size: 16
{extra}
"""


class ToySines:
    """``records`` two-lead sines, 100 Hz x 2 s; targets ``freq_hz, amplitude`` or two labels."""

    def __init__(self, records: int = 96, targets: str = "values", samples: int = 200, leads: int = 2,
                 seed: int = 0) -> None:
        self.records, self.targets, self.samples, self.leads, self.seed = records, targets, samples, leads, seed

    def fingerprint(self) -> dict[str, Any]:
        return {"records": self.records, "targets": self.targets, "samples": self.samples, "leads": self.leads,
                "seed": self.seed, "version": 1}

    def build(self, workdir: Path | None, progress: Any = None) -> EcgArrays:
        rng = np.random.default_rng(self.seed)
        freq = rng.uniform(1.0, 4.0, self.records)
        amp = rng.uniform(0.5, 2.0, self.records)
        t = np.arange(self.samples) / 100.0
        wave = amp[:, None] * np.sin(2 * np.pi * freq[:, None] * t[None, :])
        signals = np.repeat(wave[:, None, :], self.leads, axis=1)
        signals = (signals + 0.05 * rng.standard_normal(signals.shape)).astype(np.float32)
        if self.targets == "values":
            targets, names = np.stack([freq, amp], axis=1).astype(np.float32), ["freq_hz", "amplitude"]
        else:
            targets = np.stack([freq > 2.5, amp > 1.25], axis=1).astype(np.float32)
            names = ["fast", "tall"]
        split = np.array(["train", "train", "val", "test"] * (self.records // 4))
        return EcgArrays(signals=signals, targets=targets, target_names=names, split=split, sampling_rate=100.0,
                         leads=["I", "II", "V1", "V2", "V3", "V4"][:self.leads],
                         record_ids=np.arange(self.records).astype(str))


def toy_entry(root: Path, **params: Any) -> Path:
    return prepare_dataset("toy", ToySines(**params), root)


def toy_context(entry: Path, task: str = "regression", epochs: int = 2, extra: str = "", **fields: Any) -> TrialContext:
    """A trial context over ``entry`` with a one-configuration space (resnet depth 8, AdamW)."""
    # the space only carries the trial's settings (the data is ``entry``); its data section names the synthetic
    # targets that fit the task, as the parser checks the pair
    targets = "intervals" if task in ("regression", "probabilistic") else "labels"
    spec = parse_space(SPACE.format(task=task, epochs=epochs, extra=extra, targets=targets))
    return TrialContext(cache_entry=str(entry), out_dir="", epochs=epochs, metric=spec.metric, mode=spec.mode,
                        task=spec.task.name, task_params=dict(spec.task.params), seed=0, space=spec.space,
                        **fields)


# The synthetic data of the regression and transfer searches (one cache entry per targets kind).
SEARCH_DATA = {"dataset": "synthetic", "records": 400, "sampling_rate": 50, "seconds": 10,
               "leads": ["I", "II", "V1", "V5"]}


def reduced_space(name: str, tmp_path: Path, **changes: Any) -> Any:
    """``spaces/<name>.yaml`` with some sections replaced (dotted keys: ``space.architecture``), parsed."""
    from conftest import ROOT

    from ecgsearch.space.yamlio import load_yaml

    path = ROOT / "spaces" / f"{name}.yaml"
    document, _ = load_yaml(path.read_text(), str(path))
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        target = document
        for key in parents:
            target = target[key]
        target[last] = value
    return parse_space(document, source=str(tmp_path / f"{name}.yaml"))
