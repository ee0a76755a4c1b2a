"""``ecgsearch predict``: a trained model applied to a folder of records, in Challenge format.

The model is a run's trial (its checkpoint holds the weights, sampled configuration and the thresholds
fitted on its validation split) or an ``ecgsearch export`` folder (recognised by its model card: the
exported file runs on ONNX Runtime or OpenVINO, with the card's classes and thresholds). Either way the
run's space file (in the run folder, or its copy in the export folder) says how to read and preprocess
the records (only ``root`` changes); one CSV per record is written in the official PhysioNet/CinC 2021
output format.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ecgsearch.data.cache import open_dataset
from ecgsearch.data.prepare import prepare_data
from ecgsearch.data.source import EcgArrays
from ecgsearch.deploy.card import CARD_JSON, read_card
from ecgsearch.deploy.model import trained_model
from ecgsearch.deploy.runtime import Forward, batch_scores, exported_forward, torch_forward
from ecgsearch.errors import UserError
from ecgsearch.plugins import get_registries
from ecgsearch.results import RESULTS_FILE, SPACE_COPY, RunFolder, open_run
from ecgsearch.space import load_space

if TYPE_CHECKING:
    from ecgsearch.space import SearchSpec

MODEL_SUFFIX = {"onnx": ".onnx", "openvino": ".xml"}  # the file an export's runtime opens


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


@dataclass(frozen=True)
class Served:
    """A model ready to score records: how to run it, its task (scores), input length, classes, thresholds."""

    trial_id: str
    forward: Forward
    task: Any
    samples: int
    targets: list[str]
    thresholds: list[float] | None


def _from_run(run: RunFolder, trial_id: str, data: EcgArrays) -> Served:
    trained = trained_model(run, trial_id, data)
    return Served(trial_id, torch_forward(trained.model), trained.task, trained.ref.samples, trained.targets,
                  trained.thresholds)


def _from_export(folder: Path, card: dict[str, Any], spec: SearchSpec) -> Served:
    fmt = card["export"]["format"]
    found = [name for name in card["export"]["files"] if name.endswith(MODEL_SUFFIX.get(fmt, "/"))]
    if not found or not all((folder / name).is_file() for name in card["export"]["files"]):
        raise UserError(f"{folder}: the {fmt} model files its card names ({', '.join(card['export']['files'])}) "
                        "are not all in the folder; copy the whole export folder, or export the trial again with "
                        "`ecgsearch export`.")
    targets = [str(target["name"]) for target in card["outputs"]["targets"]]
    task = get_registries().tasks.get(spec.task.name).create(len(targets), **dict(spec.task.params))
    return Served(str(card["model"]["trial_id"]), exported_forward(folder / found[0], fmt), task,
                  int(card["inputs"]["samples"]), targets, card["outputs"]["thresholds"])


def _export_spec(folder: Path) -> SearchSpec:
    """The run's space file as the export copied it (how to read records, the task)."""
    if not (folder / SPACE_COPY).is_file():
        raise UserError(f"{folder}: the export has no {SPACE_COPY} (the run's space file, which says how to read "
                        "records); copy the whole export folder, or export the trial again with `ecgsearch export`.")
    return load_space(folder / SPACE_COPY, check_trackers=False)  # trackers do not matter to predict


def _export_trial(folder: Path, card: dict[str, Any], trial_id: str | None) -> str:
    exported = str(card["model"]["trial_id"])
    if trial_id is not None and trial_id != exported:
        raise UserError(f"--trial {trial_id}: {folder} is an export of trial {exported} only; leave out --trial, "
                        "or export that trial with `ecgsearch export`.")
    return exported


def _open_run(path: Path) -> RunFolder:
    """The run in ``path``; a folder that is neither a run nor an export is one sentence naming both."""
    if not (path / RESULTS_FILE).is_file():
        raise UserError(f"predict: {path} is neither a run folder (no {RESULTS_FILE}) nor an exported model (no "
                        f"{CARD_JSON}); pass the --out folder of an `ecgsearch run` or of an `ecgsearch export`.")
    return open_run(path, "predict")


def _check_servable(spec: SearchSpec, path: Path) -> None:
    """Challenge outputs need a multilabel task, and new records a dataset that reads a folder."""
    if spec.task.name != "multilabel":
        raise UserError(f"{path}: predict writes Challenge classification outputs, but this model's task "
                        f"is '{spec.task.name}'; use a run with task: multilabel.")
    check_folder_dataset(spec)


def check_folder_dataset(spec: SearchSpec, given: str = "--data") -> None:
    """New records are read by the run's dataset from a folder: refuse a dataset that reads none.
    ``given``: how the folder was passed, for the message."""
    if "root" not in inspect.signature(get_registries().datasets.get(spec.data.dataset).load()).parameters:
        raise UserError(f"predict: dataset '{spec.data.dataset}' does not read a folder of records, so {given} "
                        "cannot point it at new ones; use a run on physionet2021 (or another folder dataset).")


def write_predictions(served: Served, data: EcgArrays, out_dir: Path) -> None:
    """One Challenge CSV per record of ``data``: the model's own classes, its scores and thresholded outputs."""
    thresholds = np.asarray(served.thresholds if served.thresholds is not None else [0.5] * len(served.targets))
    # the model's own classes, whatever the new records' label set is (outputs are matched by code, never
    # by position); merged equivalent classes ("a|b") are written as their first code, as the scorer maps
    classes = [name.split("|")[0] for name in served.targets]
    out_dir.mkdir(parents=True, exist_ok=True)
    for rows, scores in batch_scores(served.forward, served.task, data.signals, served.samples):
        for record, probs in zip(data.record_ids[rows], scores):
            write_outputs(out_dir / f"{record}.csv", str(record), classes, probs >= thresholds, probs)


def run_predict(model_dir: str | Path, data_dir: str | Path, out_dir: str | Path, trial_id: str | None = None,
                progress: Any = None) -> Prediction:
    """Write ``OUT/<record>.csv`` for every record under ``data_dir``, scored by one trial of the run in
    ``model_dir`` or by the exported model in ``model_dir``."""
    path, data_dir, out_dir = Path(model_dir), Path(data_dir), Path(out_dir)
    card = read_card(path) if (path / CARD_JSON).is_file() else None
    run = None if card is not None else _open_run(path)
    spec = _export_spec(path) if run is None else run.spec
    chosen = _export_trial(path, card, trial_id) if run is None else run.choose_trial(trial_id)
    _check_servable(spec, path)
    data = open_dataset(prepare_data(spec.data, f"{spec.path}: data", progress, root=str(data_dir)))
    served = _from_export(path, card, spec) if run is None else _from_run(run, chosen, data)
    write_predictions(served, data, out_dir)
    return Prediction(trial_id=chosen, records=len(data.signals), out_dir=out_dir)
