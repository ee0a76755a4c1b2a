"""The shape every architecture plugin's model has, so the core can freeze, re-head and describe it
without knowing any concrete family.

A model built by an ``ArchitectureInfo.factory`` has:

- ``stem``: the input layer(s) (a convolution, a patch embedding...);
- ``stages``: an ``nn.ModuleList``, one entry per stage in forward order (for CNNs a stage is a run of
  blocks at one temporal resolution; for a Transformer each encoder block is a stage);
- ``head``: pooling and the output layer, with ``in_features`` (the final feature width);
- ``forward(x) == head(features(x))`` with ``features(x) == stages(stem(x))`` applied in order;
- ``reset_head(num_outputs)``: a fresh, trainable output layer for another task (transfer learning);
- optionally ``head.fc``, the output layer as an ``nn.Linear``: a transfer with several pretrainings fuses
  models without it (``ecgsearch.train.fusion``).

``check_model`` says in one sentence what a third-party model lacks.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class EcgModel(Protocol):
    stem: nn.Module
    stages: nn.ModuleList
    head: nn.Module

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's output, before the head's pooling."""

    def reset_head(self, num_outputs: int) -> None:
        """Replace the output layer with a freshly initialised one of ``num_outputs`` outputs."""


def check_model(model: nn.Module, owner: str) -> None:
    """Raise a one-sentence ``TypeError`` when ``model`` does not follow the contract above."""
    missing = [name for name in ("stem", "stages", "head", "features", "reset_head") if not hasattr(model, name)]
    if missing:
        raise TypeError(f"{owner}: the model lacks {', '.join(missing)}; an architecture plugin's model must "
                        "have stem, stages (nn.ModuleList), head, features() and reset_head() "
                        "(see ecgsearch.train.models).")
    if not isinstance(model.stages, nn.ModuleList):
        raise TypeError(f"{owner}: model.stages is a {type(model.stages).__name__}, not an nn.ModuleList "
                        "of stages (see ecgsearch.train.models).")


def stage_count(model: nn.Module) -> int:
    return len(model.stages)  # type: ignore[arg-type]


def feature_width(model: nn.Module) -> int:
    return int(model.head.in_features)  # type: ignore[union-attr]


def freeze_stages(model: nn.Module, frozen: int) -> None:
    """Freeze the stem and the first ``frozen`` stages (0 freezes nothing; the head always trains).

    Frozen parts also stay in evaluation mode during training (``train()`` is wrapped), so their
    BatchNorm statistics keep the pretrained values.
    """
    stages = model.stages  # type: ignore[union-attr]
    if not 0 <= frozen <= len(stages):
        raise ValueError(f"freeze_stages={frozen} is outside 0..{len(stages)}, the model's stage count.")
    parts = [model.stem, *list(stages)[:frozen]] if frozen else []  # type: ignore[union-attr]
    for part in parts:
        part.requires_grad_(False)
        part.eval()
        part.train = _stay_eval.__get__(part)  # type: ignore[method-assign]


def _stay_eval(self: nn.Module, mode: bool = True) -> nn.Module:
    return self
