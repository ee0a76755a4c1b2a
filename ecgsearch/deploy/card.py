"""The model card ``export`` writes beside the model: ``model_card.json``, and ``model_card.md`` rendered from it.

Gathered once (``build_card``) from what the run recorded: the trial's results row (``val.*``/``test.*``
metrics, ``cost.*``, ``latency.<backend>.*``), its checkpoint (hyperparameters, thresholds, what the task
learned), the dataset cache entry's fingerprint (the preprocessing the data section applied) and the
export itself (format, files, numerics against PyTorch). The test metrics get percentile-bootstrap
intervals over the test records (``ecgsearch.analysis.intervals``), from the PyTorch model's scores.
``render_markdown`` is a reading of the same JSON; ``read_card`` is how ``predict`` recognises an export.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ecgsearch.analysis.intervals import BOOTSTRAP_RESAMPLES, LEVEL, bootstrap_interval
from ecgsearch.data.cache import META
from ecgsearch.data.source import EcgArrays
from ecgsearch.deploy.model import TrainedModel
from ecgsearch.deploy.runtime import batch_scores, torch_forward
from ecgsearch.errors import UserError
from ecgsearch.plugins import get_registries
from ecgsearch.results import SPACE_COPY, RunFolder

CARD_JSON = "model_card.json"
CARD_MD = "model_card.md"
CARD_VERSION = 1
# a target's unit, read from the end of its name (hr_bpm -> bpm, qrs_ms -> ms)
UNITS = {"bpm": "bpm", "ms": "ms", "s": "s", "hz": "Hz", "mv": "mV", "uv": "µV", "years": "years", "pct": "%"}


@dataclass(frozen=True)
class ExportFacts:
    """What the export wrote: format, precision, the backend that wrote it, its files, its numerics check."""

    format: str
    precision: str
    backend: str
    files: list[str]
    max_abs_diff: float


def target_unit(name: str) -> str | None:
    """The unit a regression target's name ends with (``hr_bpm`` -> ``bpm``), or None."""
    head, _, suffix = name.rpartition("_")
    return UNITS.get(suffix.lower()) if head else None


def _plain(value: Any) -> Any:
    """A table cell as JSON: numbers as float/int, NaN and missing as None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return _plain(value.item())
    return value


def _columns(row: pd.Series, prefix: str) -> dict[str, Any]:
    return {key: _plain(value) for key, value in row.items() if str(key).startswith(prefix)}


def _latency(row: pd.Series) -> dict[str, dict[str, Any]]:
    """``latency.<backend>.<stat>`` columns as ``{backend: {stat: value}}`` (backends never measured left out)."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in _columns(row, "latency.").items():
        backend, _, stat = key.removeprefix("latency.").partition(".")
        out.setdefault(backend, {})[stat] = value
    return {backend: stats for backend, stats in out.items() if any(v is not None for v in stats.values())}


def _test_scores(trained: TrainedModel, arrays: EcgArrays) -> tuple[np.ndarray, np.ndarray]:
    """``(y_true, y_score)`` of the test split, scored by the PyTorch model."""
    rows = arrays.indices("test")
    scores = [s for _, s in batch_scores(torch_forward(trained.model), trained.task, arrays.signals,
                                         trained.ref.samples, rows)]
    return np.asarray(arrays.targets[rows]), np.concatenate(scores) if scores else np.zeros((0, 0))


def _metrics(row: pd.Series, trained: TrainedModel, arrays: EcgArrays, resamples: int) -> dict[str, Any]:
    """Every ``val.*`` and ``test.*`` value of the row; each registered metric's ``test.<name>`` with its
    bootstrap interval over the test records."""
    values = {key: {"value": value, "interval": None} for key, value in
              {**_columns(row, "val."), **_columns(row, "test.")}.items()}
    infos = [info for info in get_registries().metrics if f"test.{info.name}" in values]
    if not infos or resamples <= 0 or not len(arrays.indices("test")):
        return {"values": values, "interval": None}
    y_true, y_score = _test_scores(trained, arrays)
    thresholds = None if trained.thresholds is None else np.asarray(trained.thresholds)
    for info in infos:
        fn = info.create(thresholds=thresholds) if info.thresholded else info.create()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a resample without a class's positives warns, then is skipped
            found = bootstrap_interval(lambda t, s, fn=fn: fn(t, s, trained.targets), y_true, y_score, resamples)
        values[f"test.{info.name}"]["interval"] = None if found is None else list(found)
    return {"values": values, "interval": {"method": "percentile bootstrap over test records", "level": LEVEL,
                                           "resamples": resamples, "records": int(len(y_true))}}


def input_facts(trained: TrainedModel, arrays: EcgArrays, cache_entry: Path, run: RunFolder) -> dict[str, Any]:
    """What the model takes: shape, leads, sampling rate, samples after the center crop, the dataset's
    reading parameters and its preprocessing (the model card's ``inputs``; ``EcgModel.preprocessing``)."""
    fingerprint = json.loads((Path(cache_entry) / META).read_text()).get("fingerprint") or {}
    return {"shape": ["batch", trained.ref.leads, trained.ref.samples], "dtype": "float32",
            "leads": list(arrays.leads), "sampling_rate": float(arrays.sampling_rate),
            "samples": trained.ref.samples, "seconds": trained.ref.samples / float(arrays.sampling_rate),
            "crop": {"mode": "center", "from_samples": int(arrays.signals.shape[-1])},
            "dataset": run.spec.data.dataset, "dataset_parameters": _json_safe(dict(run.spec.data.params)),
            "preprocessing": fingerprint.get("preprocessing")}


def _outputs(trained: TrainedModel, checkpoint: Mapping[str, Any], run: RunFolder) -> dict[str, Any]:
    task = run.spec.task
    return {"task": task.name, "task_parameters": _json_safe(dict(task.params)),
            "task_description": get_registries().tasks.get(task.name).description, "count": trained.ref.outputs,
            "targets": [{"name": name, "unit": target_unit(name)} for name in trained.targets],
            "thresholds": trained.thresholds, "task_state": checkpoint.get("task_state")}


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def build_card(run: RunFolder, trained: TrainedModel, checkpoint: Mapping[str, Any], arrays: EcgArrays,
               cache_entry: Path, facts: ExportFacts, resamples: int = BOOTSTRAP_RESAMPLES) -> dict[str, Any]:
    """The model card of an exported trial (see the module docstring for where each part comes from)."""
    results = run.results()
    row = results[results["trial_id"] == trained.trial_id].iloc[-1]
    return {
        "card_version": CARD_VERSION,
        "model": {"trial_id": trained.trial_id, "run": run.spec.name, "run_dir": str(run.path.resolve()),
                  "space_file": SPACE_COPY, "architecture": trained.ref.architecture,
                  "params": _json_safe(dict(trained.ref.params)), "encoders": trained.ref.encoders,
                  "hyperparameters": _json_safe(checkpoint.get("config") or {}), "epoch": checkpoint.get("epoch")},
        "export": {"format": facts.format, "precision": facts.precision, "backend": facts.backend,
                   "files": facts.files, "max_abs_diff_vs_pytorch": _plain(float(facts.max_abs_diff))},
        "inputs": input_facts(trained, arrays, cache_entry, run),
        "outputs": _outputs(trained, checkpoint, run),
        "metrics": _metrics(row, trained, arrays, resamples),
        "costs": _columns(row, "cost."),
        "latency": _latency(row),
    }


def export_metadata(card: Mapping[str, Any]) -> dict[str, Any]:
    """``export.json`` (what exports wrote before the card): the same facts under their first keys."""
    model, inputs, outputs, export = card["model"], card["inputs"], card["outputs"], card["export"]
    return {"trial_id": model["trial_id"], "format": export["format"], "precision": export["precision"],
            "backend": export["backend"], "architecture": model["architecture"], "params": model["params"],
            "input": {key: inputs[key] for key in ("shape", "dtype", "leads", "sampling_rate")},
            "outputs": {"count": outputs["count"], "targets": [t["name"] for t in outputs["targets"]],
                        "task": outputs["task"], "thresholds": outputs["thresholds"]},
            "max_abs_diff_vs_pytorch": export["max_abs_diff_vs_pytorch"]}


def _number(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_number(v) if not isinstance(v, str) else v for v in row) + " |"
                    for row in rows]


def _metric_rows(metrics: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    def interval(found: list[float] | None) -> str:
        return "" if found is None else f"{found[0]:.4g} to {found[1]:.4g}"
    return [(name, entry["value"], interval(entry["interval"])) for name, entry in metrics["values"].items()]


def render_markdown(card: Mapping[str, Any]) -> str:
    """``model_card.md``: a reading of the card's JSON, section by section."""
    model, export, inputs, outputs = card["model"], card["export"], card["inputs"], card["outputs"]
    about = card["metrics"]["interval"]
    lines = [f"# Model card: trial {model['trial_id']} of run {model['run']}", "",
             f"Exported as {export['format']} ({export['precision']}, by {export['backend']}): "
             f"{', '.join(export['files'])}; largest output difference from PyTorch on validation records "
             f"{_number(export['max_abs_diff_vs_pytorch'])}. Space file: `{model['space_file']}` (the run's copy); "
             f"run folder: `{model['run_dir']}`.", "",
             "## Model", "", f"Architecture `{model['architecture']}`, best epoch {_number(model['epoch'])}.", "",
             *_table(("hyperparameter", "value"), [(k, json.dumps(v)) for k, v in model["hyperparameters"].items()]),
             "", "## Inputs", "",
             f"float32 `({', '.join(map(str, inputs['shape']))})`: leads {', '.join(inputs['leads'])} at {_number(inputs['sampling_rate'])} "
             f"Hz, {inputs['samples']} samples ({_number(inputs['seconds'])} s), the {inputs['crop']['mode']} window "
             f"of the dataset's {inputs['crop']['from_samples']}-sample records.", "",
             f"Dataset `{inputs['dataset']}`, parameters `{json.dumps(inputs['dataset_parameters'])}`.", "",
             "Preprocessing: " + (f"`{json.dumps(inputs['preprocessing'])}`." if inputs["preprocessing"] else
                                  "the dataset records no separate preprocessing step (see its parameters)."), "",
             "## Outputs", "",
             f"Task `{outputs['task']}` ({outputs['task_description']}), {outputs['count']} outputs.", "",
             *_table(("target", "unit", "threshold"),
                     [(t["name"], t["unit"] or "", None if outputs["thresholds"] is None else outputs["thresholds"][i])
                      for i, t in enumerate(outputs["targets"])]),
             "", "## Metrics", "",
             (f"Intervals: {about['method']}, {about['level']:.0%} level, {about['resamples']} resamples of "
              f"{about['records']} records." if about else "No intervals (no test split, or `--bootstrap 0`)."),
             "",
             *_table(("metric", "value", "interval"), _metric_rows(card["metrics"])),
             "", "## Costs", "", *_table(("cost", "value"), list(card["costs"].items())),
             "", "## Latency", ""]
    for backend, stats in card["latency"].items():
        lines += [f"`{backend}`: " + ", ".join(f"{k} {_number(v)}" for k, v in stats.items()), ""]
    if not card["latency"]:
        lines += ["Not measured in the run (`ecgsearch bench` measures it).", ""]
    return "\n".join(lines)


def write_card(out_dir: Path, card: Mapping[str, Any]) -> list[Path]:
    """``model_card.json`` and ``model_card.md`` in ``out_dir``."""
    paths = [out_dir / CARD_JSON, out_dir / CARD_MD]
    paths[0].write_text(json.dumps(card, indent=2, allow_nan=False))
    paths[1].write_text(render_markdown(card))
    return paths


def read_card(folder: Path) -> dict[str, Any]:
    """An export folder's card; a damaged one is one sentence."""
    path = Path(folder) / CARD_JSON
    try:
        card = json.loads(path.read_text())
        for section, key in (("model", "trial_id"), ("export", "format"), ("export", "files"), ("outputs", "targets")):
            card[section][key]  # present, or the card is not one that export wrote
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"{path}: not a readable model card ({type(error).__name__}: {error}); export the "
                        "trial again with `ecgsearch export`.") from None
    return card
