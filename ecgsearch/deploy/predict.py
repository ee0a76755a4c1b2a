"""``ecgsearch predict``: the best trial of a run, applied to a folder of records, in Challenge format.

The run's own space file says how to read and preprocess the records (only ``root`` changes), the
trial's checkpoint holds its weights, sampled configuration and the thresholds fitted on its validation
split; one CSV per record is written in the official PhysioNet/CinC 2021 output format.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ecgsearch.data.augment import center_crop
from ecgsearch.data.cache import open_dataset
from ecgsearch.data.prepare import prepare_data
from ecgsearch.deploy.model import trained_model
from ecgsearch.errors import UserError
from ecgsearch.plugins import get_registries
from ecgsearch.results import open_run
from ecgsearch.train.scoring import EVAL_BATCH


@dataclass(frozen=True)
class Prediction:
    trial_id: str
    records: int
    out_dir: Path


def write_outputs(path: str | Path, record_id: str, classes: Sequence[str], binary: Sequence[bool],
                  probabilities: Sequence[float]) -> None:
    """Write one record's outputs in the official Challenge format (probabilities round-trip exactly):
    ``#RECORD_ID``, then the class codes, the 0/1 outputs and the probabilities, comma-separated."""
    if not len(classes) == len(binary) == len(probabilities):
        raise ValueError(f"{len(classes)} classes, {len(binary)} binary outputs and "
                         f"{len(probabilities)} probabilities must be as many.")
    rows = [f"#{record_id}", ",".join(classes), ",".join(str(int(bool(b))) for b in binary),
            ",".join(repr(float(p)) for p in probabilities)]
    Path(path).write_text("\n".join(rows) + "\n")


def run_predict(run_dir: str | Path, data_dir: str | Path, out_dir: str | Path, trial_id: str | None = None,
                progress: Any = None) -> Prediction:
    """Write ``OUT/<record>.csv`` for every record under ``data_dir``, scored by one trial of ``run_dir``."""
    run = open_run(run_dir, "predict")
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    spec = run.spec
    if spec.task.name != "multilabel":
        raise UserError(f"{run.path}: predict writes Challenge classification outputs, but this run's task "
                        f"is '{spec.task.name}'; use a run with task: multilabel.")
    if "root" not in inspect.signature(get_registries().datasets.get(spec.data.dataset).load()).parameters:
        raise UserError(f"predict: dataset '{spec.data.dataset}' does not read a folder of records, so --data "
                        "cannot point it at new ones; use a run on physionet2021 (or another folder dataset).")
    data = open_dataset(prepare_data(spec.data, f"{spec.path}: data", progress, root=str(data_dir)))
    chosen = run.choose_trial(trial_id)
    trained = trained_model(run, chosen, data)
    thresholds = np.asarray(trained.thresholds if trained.thresholds is not None
                            else [0.5] * trained.ref.outputs)
    # the model's own classes, whatever the new records' label set is (outputs are matched by code, never
    # by position); merged equivalent classes ("a|b") are written as their first code, as the scorer maps
    classes = [name.split("|")[0] for name in trained.targets]
    out_dir.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode():
        for start in range(0, len(data.signals), EVAL_BATCH):
            batch = center_crop(torch.from_numpy(np.ascontiguousarray(data.signals[start:start + EVAL_BATCH])),
                                trained.ref.samples)
            scores = trained.task.scores(trained.model(batch))
            for record, probs in zip(data.record_ids[start:start + EVAL_BATCH], scores):
                write_outputs(out_dir / f"{record}.csv", str(record), classes, probs >= thresholds, probs)
    return Prediction(trial_id=chosen, records=len(data.signals), out_dir=out_dir)
