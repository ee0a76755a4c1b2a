"""A fused model: several encoders of one architecture side by side, their features concatenated, one output layer.

A transfer section with several pretrainings (``ecgsearch.space.transfer``) gives each trial one pretrained
model per pretraining; ``fuse`` turns them into one model for the target task. Each encoder is a model of
the ``ecgsearch.train.models`` contract without its output layer (stem, stages and the head's pooling);
every encoder reads the same input, and the pooled vectors are concatenated for a fresh output layer.

The fused model follows the same contract, so freezing, costs, the receptive field, checkpoints, predict,
export and latency treat it like any other model:

- ``stem``: every encoder's stem (``Branches``: one input in, one output per encoder);
- ``stages``: stage ``i`` of every encoder, side by side (``Branches``); freezing the first N stages
  freezes them in every encoder;
- ``head``: every encoder's pooling, concatenated, then ``fc`` (``FusionHead``; ``in_features`` is the sum
  of the encoders' feature widths).

Its parameter names are ``stem.branches.<k>.*``, ``stages.<i>.branches.<k>.*``, ``head.pools.<k>.*`` and
``head.fc.*``. ``make_model`` rebuilds the same structure from an architecture factory (for a checkpoint's
weights); it needs only the number of encoders, which the space file's transfer section gives.

Fusion needs the contract's optional part: the head's output layer is ``head.fc`` (an ``nn.Linear``), as
in every built-in family; ``check_fusable`` says in one sentence when it is not.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import nn

from ecgsearch.train.models import stage_count
from ecgsearch.train.receptive_field import Span, trace_span


class Branches(nn.Module):
    """One module per encoder, applied side by side: the input (a tensor, or one tensor per branch) -> one
    output per branch."""

    def __init__(self, branches: Sequence[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        inputs = x if isinstance(x, (tuple, list)) else (x,) * len(self.branches)
        return tuple(branch(one) for branch, one in zip(self.branches, inputs))

    def receptive_span(self, span: Span) -> Span:
        return Span.widest(*(trace_span(branch, span) for branch in self.branches))


class FusionHead(nn.Module):
    """Each encoder's pooling (its head without the output layer), concatenated, then the output layer ``fc``."""

    def __init__(self, heads: Sequence[nn.Module], num_outputs: int) -> None:
        super().__init__()
        widths = [int(head.in_features) for head in heads]  # type: ignore[arg-type]
        for head in heads:
            head.fc = nn.Identity()  # the head now gives its pooled vector
        self.pools = nn.ModuleList(heads)
        self.fc = nn.Linear(sum(widths), num_outputs)

    @property
    def in_features(self) -> int:
        return self.fc.in_features

    def forward(self, features: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return self.fc(torch.cat([pool(x) for pool, x in zip(self.pools, features)], dim=1))

    def receptive_span(self, span: Span) -> Span:
        return span.whole()

    def reset(self, num_outputs: int) -> None:
        """A fresh output layer (PyTorch's default initialisation) on the old one's device and dtype."""
        old = self.fc.weight
        self.fc = nn.Linear(self.in_features, num_outputs, device=old.device, dtype=old.dtype)


class FusedModel(nn.Module):
    """Encoders of one architecture side by side (see the module docstring); ``forward(x)`` is
    ``head(features(x))`` like every model of the contract, with one feature tensor per encoder."""

    def __init__(self, models: Sequence[nn.Module], num_outputs: int) -> None:
        super().__init__()
        self.stem = Branches([model.stem for model in models])
        self.stages = nn.ModuleList(Branches([model.stages[i] for model in models])  # type: ignore[index]
                                    for i in range(stage_count(models[0])))
        self.head = FusionHead([model.head for model in models], num_outputs)  # type: ignore[misc]

    @property
    def encoders(self) -> int:
        return len(self.stem.branches)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.stem(x)
        for stage in self.stages:
            out = stage(out)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def reset_head(self, num_outputs: int) -> None:
        self.head.reset(num_outputs)


def check_fusable(models: Sequence[nn.Module], owner: str) -> None:
    """Raise a one-sentence ``TypeError`` when the models cannot be fused (see the module docstring)."""
    if not isinstance(getattr(models[0].head, "fc", None), nn.Linear):
        raise TypeError(f"{owner}: the model's head has no output layer head.fc (an nn.Linear), which fusing "
                        "several pretrainings replaces; use one pretraining, or give the head an fc layer "
                        "(see ecgsearch.train.fusion).")
    counts = {stage_count(model) for model in models}
    if len(counts) > 1:
        raise TypeError(f"{owner}: the encoders have {sorted(counts)} stages; encoders to fuse must have the "
                        "same number of stages.")


def fuse(models: Sequence[nn.Module], num_outputs: int, owner: str = "transfer") -> FusedModel:
    """One model of ``models`` (their output layers dropped) with a fresh output layer of ``num_outputs``."""
    check_fusable(models, owner)
    return FusedModel(models, num_outputs)


def make_model(factory: Callable[..., nn.Module], encoders: int, leads: int, samples: int, outputs: int,
               **hparams: Any) -> nn.Module:
    """``factory(leads, samples, outputs, **hparams)`` with one encoder; with more, the fused model of that
    many fresh such encoders: the structure of a fused trial's checkpoint (its weights load into it)."""
    if encoders <= 1:
        return factory(leads, samples, outputs, **hparams)
    return fuse([factory(leads, samples, outputs, **hparams) for _ in range(encoders)], outputs)
