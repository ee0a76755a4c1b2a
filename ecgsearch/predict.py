"""``ecgsearch predict``: the best trial of a run, applied to a folder of records, in Challenge format.

The run's own space file says how to read and preprocess the records (only ``root`` changes), the
trial's checkpoint holds its weights, sampled configuration and the thresholds fitted on its validation
split; one CSV per record is written in the official PhysioNet/CinC 2021 output format.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecgsearch.augment import center_crop
from ecgsearch.cache import open_dataset
from ecgsearch.checkpoints import load_weights
from ecgsearch.challenge_io import write_outputs
from ecgsearch.engine import SPACE_COPY, prepare_data
from ecgsearch.errors import UserError
from ecgsearch.plugins import get_registries
from ecgsearch.results import RESULTS_FILE, read_results
from ecgsearch.trial import EVAL_BATCH, checkpoint_path, input_samples


@dataclass(frozen=True)
class Prediction:
    trial_id: str
    records: int
    out_dir: Path


def choose_trial(results: Any, metric: str, mode: str, trial_id: str | None, run_dir: Path) -> str:
    """The requested trial, or the best finished one by the run's metric."""
    if trial_id is not None:
        if trial_id not in set(results["trial_id"]):
            raise UserError(f"{run_dir}: there is no trial '{trial_id}' in {RESULTS_FILE}; "
                            f"choose one of {', '.join(sorted(results['trial_id']))}.")
        return trial_id
    key = f"val.{metric}"
    ok = results[(results["status"] == "ok") & results[key].map(lambda v: v is not None and not math.isnan(v))]
    if ok.empty:
        raise UserError(f"{run_dir}: no trial finished with a {key}; there is no model to predict with.")
    return str(ok.sort_values(key, ascending=mode == "min").iloc[0]["trial_id"])


def load_checkpoint(run_dir: Path, trial_id: str) -> dict[str, Any]:
    path = checkpoint_path(run_dir, trial_id)
    if not path.is_file():
        raise UserError(f"{path}: trial {trial_id} has no saved weights (it never finished an epoch with a "
                        "validation score); choose another trial with --trial.")
    return load_weights(path)  # weights_only: a checkpoint holding code is refused, never run


def run_predict(run_dir: str | Path, data_dir: str | Path, out_dir: str | Path, trial_id: str | None = None,
                progress: Any = None) -> Prediction:
    """Write ``OUT/<record>.csv`` for every record under ``data_dir``, scored by one trial of ``run_dir``."""
    from ecgsearch.space import load_space

    run_dir, data_dir, out_dir = Path(run_dir), Path(data_dir), Path(out_dir)
    if not (run_dir / RESULTS_FILE).is_file() or not (run_dir / SPACE_COPY).is_file():
        raise UserError(f"{run_dir}: not a run folder (it needs {RESULTS_FILE} and {SPACE_COPY}); "
                        "pass the --out folder of an `ecgsearch run`.")
    spec = load_space(run_dir / SPACE_COPY)
    if spec.task.name != "multilabel":
        raise UserError(f"{run_dir}: predict writes Challenge classification outputs, but this run's task "
                        f"is '{spec.task.name}'; use a run with task: multilabel.")
    if "root" not in inspect.signature(get_registries().datasets.get(spec.data.dataset).load()).parameters:
        raise UserError(f"predict: dataset '{spec.data.dataset}' does not read a folder of records, so --data "
                        "cannot point it at new ones; use a run on physionet2021 (or another folder dataset).")
    data = open_dataset(prepare_data(spec, progress, root=str(data_dir)))
    regs = get_registries()

    chosen = choose_trial(read_results(run_dir), spec.metric, spec.mode, trial_id, run_dir)
    checkpoint = load_checkpoint(run_dir, chosen)
    resolved = spec.space.resolve(spec.space.active(checkpoint["config"]))
    arch, arch_params = resolved.choices["architecture"]
    task = regs.tasks.get(spec.task.name).create(data.targets.shape[1], **dict(spec.task.params))
    leads, samples = data.signals.shape[1], input_samples(data.signals.shape[2], resolved.params)
    model = regs.architectures.get(arch).create(leads, samples, task.num_outputs, **arch_params)
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    thresholds = np.asarray(checkpoint["thresholds"] if checkpoint["thresholds"] is not None
                            else [0.5] * task.num_outputs)
    # merged equivalent classes ("a|b") are written as their first code, which the official scorer maps
    classes = [name.split("|")[0] for name in data.target_names]
    out_dir.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode():
        for start in range(0, len(data.signals), EVAL_BATCH):
            batch = center_crop(torch.from_numpy(np.ascontiguousarray(data.signals[start:start + EVAL_BATCH])),
                                samples)
            scores = task.scores(model(batch))
            for record, probs in zip(data.record_ids[start:start + EVAL_BATCH], scores):
                write_outputs(out_dir / f"{record}.csv", str(record), classes, probs >= thresholds, probs)
    return Prediction(trial_id=chosen, records=len(data.signals), out_dir=out_dir)
