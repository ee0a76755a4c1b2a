"""``ecgsearch export``: one trial of a run as a deployable ONNX or OpenVINO model, numerics checked.

The file is written by the backend plugin whose ``export_format`` is the requested format (ONNX by the
ONNX Runtime backend, OpenVINO IR by the OpenVINO backend), with the batch dimension left free. Before
anything is reported, the written model is run on real validation records and compared with the
PyTorch model: the largest absolute output difference is part of the result (fp32 stays within 1e-3).
Beside the model go the model card (``model_card.json`` and ``model_card.md``, ``ecgsearch.deploy.card``:
inputs, outputs, metrics with intervals, costs, latency, where it came from), the run's space file
(``space.yaml``: the folder is self-contained, ``ecgsearch predict`` reads records with it) and
``export.json``, the card's first keys as exports wrote them before the card.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecgsearch.analysis.intervals import BOOTSTRAP_RESAMPLES
from ecgsearch.data.augment import center_crop
from ecgsearch.data.cache import open_dataset
from ecgsearch.data.prepare import prepare_data
from ecgsearch.deploy.card import ExportFacts, build_card, export_metadata, write_card
from ecgsearch.deploy.model import trained_model
from ecgsearch.errors import UserError
from ecgsearch.latency.backend import BackendUnavailable, create_backend
from ecgsearch.latency.dataset_checks import calibration_batches
from ecgsearch.latency.options import BackendOptions
from ecgsearch.latency.request import DataRef
from ecgsearch.plugins import get_registries
from ecgsearch.results import SPACE_COPY, open_run

FORMATS: tuple[str, ...] = ("onnx", "openvino")
EXPORT_PRECISIONS: tuple[str, ...] = ("fp32", "int8")
CHECK_RECORDS = 4
METADATA = "export.json"


@dataclass(frozen=True)
class Export:
    trial_id: str
    format: str
    backend: str
    files: list[Path]
    max_abs_diff: float
    precision: str


def _export_format(info: Any) -> str | None:
    """The format a backend plugin's class writes, read without creating it (``export_format``)."""
    try:
        factory = info.load()
    except Exception:  # its runtime is missing: creating it would say so
        return None
    return getattr(getattr(factory, "func", factory), "export_format", None)


def exporting_backend(fmt: str, options: BackendOptions) -> tuple[str, Any]:
    """The first usable registered backend that writes ``fmt``, CPU ones first (``(name, backend)``)."""
    writers = [info for info in get_registries().backends if _export_format(info) == fmt]
    reasons = []
    for info in sorted(writers, key=lambda info: info.device != "cpu"):
        try:
            return info.name, create_backend(info, options)
        except BackendUnavailable as error:
            reasons.append(str(error))
    why = f" ({reasons[0]})" if reasons else ""
    raise UserError(f"--format {fmt}: no usable backend writes {fmt} models here{why}; `ecgsearch plugins` says "
                    "what each backend needs (int8 also needs pip install 'ecgsearch[latency]'), or choose another "
                    "--format or --precision.")


def export_trial(run_dir: str | Path, trial_id: str | None, fmt: str, out_dir: str | Path,
                 precision: str = "fp32", bootstrap: int | None = None) -> Export:
    """Write trial ``trial_id`` of ``run_dir`` as ``fmt`` into ``out_dir``, check it against PyTorch, and write
    its model card (test intervals from ``bootstrap`` resamples, default ``BOOTSTRAP_RESAMPLES``; 0: none) and the run's space file beside it."""
    out_dir = Path(out_dir)
    if fmt not in FORMATS:
        raise UserError(f"--format: '{fmt}' is not an export format (allowed: {', '.join(FORMATS)}); "
                        "pass onnx or openvino.")
    if precision not in EXPORT_PRECISIONS:
        raise UserError(f"--precision: '{precision}' cannot be exported (allowed: {', '.join(EXPORT_PRECISIONS)}); "
                        "fp16/bf16 are execution precisions: choose them when measuring with ecgsearch bench.")
    bootstrap = BOOTSTRAP_RESAMPLES if bootstrap is None else bootstrap
    if bootstrap < 0:
        raise UserError(f"--bootstrap: {bootstrap} is not a number of resamples >= 0; pass e.g. --bootstrap 1000 "
                        "(0 writes the card without intervals).")
    run = open_run(run_dir, "export")
    spec = run.spec
    trial_id = run.choose_trial(trial_id)
    checkpoint = run.load_checkpoint(trial_id)  # a trial without weights is one sentence before any backend starts
    name, backend = exporting_backend(fmt, BackendOptions(precision=precision))
    cache_entry = prepare_data(spec.data, f"{spec.path}: data")
    arrays = open_dataset(Path(cache_entry))
    trained = trained_model(run, trial_id, arrays)
    ref = trained.ref
    val = (arrays.indices("val") if len(arrays.indices("val")) else np.arange(len(arrays.signals)))[:CHECK_RECORDS]
    records = np.ascontiguousarray(center_crop(torch.from_numpy(np.asarray(arrays.signals[val], dtype=np.float32)),
                                               ref.samples).numpy())
    backend.dynamic_batch = True
    data = DataRef(cache_entry=str(cache_entry), task=spec.task.name, task_params=dict(spec.task.params))
    calibration = calibration_batches(data, ref, 1) if precision == "int8" else None
    backend.prepare(trained.model, torch.from_numpy(records[:1]), calibration)
    diff = backend.numerics_check(trained.model, records)
    files = backend.export(out_dir)
    facts = ExportFacts(fmt, precision, name, [f.name for f in files], diff)
    card = build_card(run, trained, checkpoint, arrays, Path(cache_entry), facts, bootstrap)
    written = [*write_card(out_dir, card), Path(shutil.copyfile(run.path / SPACE_COPY, out_dir / SPACE_COPY))]
    (out_dir / METADATA).write_text(json.dumps(export_metadata(card), indent=2))
    return Export(trial_id, fmt, name, [*files, *written, out_dir / METADATA], diff, precision)
