"""Real ECGs for the backends: INT8 calibration batches and the run metric of a backend's outputs.

Quantisation changes what a model computes, so its latency is only half the story: the run metric on
the validation split is computed for the PyTorch model and for each backend's outputs, side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ecgsearch.data.augment import center_crop
from ecgsearch.data.cache import open_dataset
from ecgsearch.latency.request import DataRef, ModelRef
from ecgsearch.plugins import get_registries
from ecgsearch.train.tasks import fit_task
from ecgsearch.train.thresholds import fit_thresholds

CALIBRATION_SEED = 11


def _inputs(signals: Any, idx: np.ndarray, samples: int) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(signals[np.sort(idx)], dtype=np.float32))
    return center_crop(x, samples).numpy()


def calibration_batches(data: DataRef, model: ModelRef, batch_size: int) -> list[np.ndarray]:
    """``data.calibration_batches`` batches of training records (a fixed random subset), centre-cropped."""
    arrays = open_dataset(Path(data.cache_entry))
    train = arrays.indices("train")
    rng = np.random.default_rng(CALIBRATION_SEED)
    count = min(len(train), data.calibration_batches * batch_size)
    chosen = rng.choice(train, count, replace=False) if count else train[:0]
    return [_inputs(arrays.signals, chosen[i:i + batch_size], model.samples)
            for i in range(0, count - batch_size + 1, batch_size)]


def split_metric(run: Callable[[np.ndarray], np.ndarray], data: DataRef, model: ModelRef, batch_size: int,
                 thresholds: Sequence[float] | None) -> float:
    """The run metric of ``run``'s outputs on ``data.accuracy_split`` (fixed-size batches, last one padded).

    The task is fitted on the training targets first, as in the trial, so a regression's outputs are
    mapped back to physical units before the metric reads them.
    """
    regs = get_registries()
    arrays = open_dataset(Path(data.cache_entry))
    task = regs.tasks.get(data.task).create(arrays.targets.shape[1], **dict(data.task_params))
    fit_task(task, np.asarray(arrays.targets[arrays.indices("train")]), arrays.target_names)
    idx = arrays.indices(str(data.accuracy_split))
    outputs = []
    for start in range(0, len(idx), batch_size):
        x = _inputs(arrays.signals, idx[start:start + batch_size], model.samples)
        n = len(x)
        if n < batch_size:  # the backends are compiled for one batch size
            x = np.concatenate([x, np.zeros((batch_size - n, *x.shape[1:]), dtype=np.float32)])
        outputs.append(np.asarray(run(x))[:n])
    scores = task.scores(torch.from_numpy(np.concatenate(outputs).astype(np.float32)))
    y_true, y_score = np.asarray(arrays.targets[idx]), np.asarray(scores)
    info = regs.metrics.get(data.metric)
    if info.thresholded:  # the checkpoint's validation thresholds; fitted here only when it has none
        fn = info.create(thresholds=np.asarray(thresholds) if thresholds is not None
                         else fit_thresholds(y_true, y_score))
    else:
        fn = info.create()
    return float(fn(y_true, y_score, list(arrays.target_names)))
