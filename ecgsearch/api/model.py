"""``EcgModel``: a trial's trained network as a ``torch.nn.Module`` that knows its inputs and outputs.

``Run.model`` returns one; ``Run.predict`` scores records with it. Scores go through the same
``batch_scores`` as ``ecgsearch predict`` and the model card (center crop, the task's scores).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ecgsearch.data.cache import open_dataset
from ecgsearch.data.prepare import prepare_data
from ecgsearch.deploy.card import input_facts
from ecgsearch.deploy.model import TrainedModel, trained_model
from ecgsearch.deploy.predict import check_folder_dataset
from ecgsearch.deploy.runtime import batch_scores, torch_forward
from ecgsearch.errors import UserError
from ecgsearch.results import RunFolder


class EcgModel(torch.nn.Module):
    """A trained network (``network``) with what it expects and gives.

    ``model(x)`` is the network's raw outputs on a float32 tensor ``(batch, leads, samples)``;
    ``preprocessing`` says how records must look (leads in order, sampling rate, samples after the center
    crop, the dataset's reading parameters); ``targets`` names each output; ``thresholds`` are the
    validation thresholds of a multilabel task; ``scores``/``predict`` apply the task (probabilities,
    values in the targets' units).
    """

    def __init__(self, trained: TrainedModel, preprocessing: dict[str, Any], folder: RunFolder) -> None:
        super().__init__()
        self.network = trained.model
        self.trial_id = trained.trial_id
        self.targets = list(trained.targets)
        self.thresholds = trained.thresholds
        self.task = trained.task
        self.preprocessing = preprocessing
        self._folder = folder
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def extra_repr(self) -> str:
        p = self.preprocessing
        return (f"trial={self.trial_id}, leads={len(p['leads'])}, sampling_rate={p['sampling_rate']:g}, "
                f"samples={p['samples']}, targets={len(self.targets)}")

    def scores(self, signals: np.ndarray) -> np.ndarray:
        """The task's scores of ``signals`` ``(records, leads, samples)``, center-cropped to the model's length."""
        signals = self._checked(signals)
        out: np.ndarray | None = None
        for rows, scores in batch_scores(torch_forward(self.network), self.task, signals, self.preprocessing["samples"]):
            out = np.empty((len(signals), scores.shape[1]), dtype=np.float64) if out is None else out
            out[rows] = scores
        return out if out is not None else np.empty((0, len(self.targets)))

    def predict(self, records: str | Path | np.ndarray, labels: bool = False) -> pd.DataFrame:
        """One row per record (a folder of records the run's dataset reads, or an array), one column per
        target: the scores, or with ``labels`` the decisions (multilabel: score >= its validation threshold;
        multiclass: the top class)."""
        if isinstance(records, (str, Path)):
            data = self._read_folder(Path(records))
            signals, index = data.signals, pd.Index([str(r) for r in data.record_ids], name="record")
        else:
            signals = np.asarray(records, dtype=np.float32)
            signals = signals[None] if signals.ndim == 2 else signals
            index = pd.RangeIndex(len(signals), name="record")
        scores = self.scores(signals)
        frame = pd.DataFrame(scores, index=index, columns=self._columns(scores.shape[1]))
        return self._decisions(frame) if labels else frame

    def _columns(self, width: int) -> list[str]:
        if width == 2 * len(self.targets):  # a probabilistic task: each target's mean, then its variance
            return [*self.targets, *(f"{name}.variance" for name in self.targets)]
        return list(self.targets)

    def _decisions(self, frame: pd.DataFrame) -> pd.DataFrame:
        kind = getattr(self.task, "kind", "")
        if kind == "multilabel":
            thresholds = self.thresholds if self.thresholds is not None else [0.5] * len(self.targets)
            return frame >= np.asarray(thresholds)
        if kind == "multiclass":
            return frame.eq(frame.max(axis=1), axis=0)
        raise UserError(f"predict: labels=True needs a classification task, but trial {self.trial_id}'s task is "
                        f"'{kind}' (its scores are values in the targets' units); leave labels out.")

    def _checked(self, signals: np.ndarray) -> np.ndarray:
        leads, samples = len(self.preprocessing["leads"]), self.preprocessing["samples"]
        rate = self.preprocessing["sampling_rate"]
        if signals.ndim != 3 or signals.shape[1] != leads or signals.shape[2] < samples:
            raise UserError(f"predict: records of shape {tuple(signals.shape)} do not fit trial {self.trial_id}, "
                            f"which takes (records, {leads} leads, at least {samples} samples at {rate:g} Hz); "
                            f"pass leads {', '.join(self.preprocessing['leads'])} in that order, resampled to "
                            f"{rate:g} Hz (or pass a folder the run's dataset reads).")
        return signals

    def _read_folder(self, folder: Path) -> Any:
        spec = self._folder.spec
        check_folder_dataset(spec, "a folder given to predict")
        return open_dataset(prepare_data(spec.data, f"{spec.path}: data", root=str(folder)))


def load_model(folder: RunFolder, trial_id: str) -> EcgModel:
    """Trial ``trial_id`` of the run in ``folder``, rebuilt with its best weights."""
    spec = folder.spec
    entry = prepare_data(spec.data, f"{spec.path}: data")  # the run's own data: the input shape and leads
    arrays = open_dataset(entry)
    trained = trained_model(folder, trial_id, arrays)
    return EcgModel(trained, input_facts(trained, arrays, entry, folder), folder)
