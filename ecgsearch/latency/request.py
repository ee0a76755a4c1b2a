"""What the measuring process is asked to do, as plain JSON: the model, the backends, the options.

The model travels as a recipe (registered architecture, its parameters, the input shape and an
optional checkpoint), not as a pickled module: the measuring process rebuilds it from the registry
exactly as a trial does, and a checkpoint loads with ``weights_only=True``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ecgsearch.latency.options import BackendOptions, MeasureSettings


@dataclass(frozen=True)
class ModelRef:
    """How to rebuild a candidate: ``architectures[architecture].create(leads, samples, outputs, **params)``.

    checkpoint: a trial's ``best.pt`` to load; None keeps the initial weights (timings do not depend on
    the weights, only INT8 accuracy does). encoders: more than 1 for a transfer that fuses several
    pretrainings: that many such models fused into one (``ecgsearch.train.fusion.make_model``).
    """

    architecture: str
    params: Mapping[str, Any]
    leads: int
    samples: int
    outputs: int
    checkpoint: str | None = None
    seed: int = 0
    encoders: int = 1


@dataclass(frozen=True)
class DataRef:
    """The run's cached dataset, for INT8 calibration and for the accuracy of each backend's outputs.

    calibration_batches: batches of the training split NNCF calibrates on.
    accuracy_split: the split the run metric is computed on for every backend (None: no accuracy).
    """

    cache_entry: str
    task: str
    task_params: Mapping[str, Any] = field(default_factory=dict)
    metric: str = ""
    calibration_batches: int = 16
    accuracy_split: str | None = None


@dataclass(frozen=True)
class MeasureRequest:
    model: ModelRef
    backends: tuple[str, ...]
    options: Mapping[str, BackendOptions]  # one per backend
    settings: MeasureSettings
    data: DataRef | None = None
    numerics: bool = True

    def with_backends(self, backends: list[str]) -> MeasureRequest:
        return MeasureRequest(self.model, tuple(backends), self.options, self.settings, self.data, self.numerics)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> MeasureRequest:
        raw = json.loads(text)
        return cls(model=ModelRef(**raw["model"]), backends=tuple(raw["backends"]),
                   options={k: BackendOptions(**v) for k, v in raw["options"].items()},
                   settings=MeasureSettings(**raw["settings"]),
                   data=DataRef(**raw["data"]) if raw.get("data") else None, numerics=raw["numerics"])

    def write(self, path: Path) -> None:
        path.write_text(self.to_json())
