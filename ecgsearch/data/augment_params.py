"""The train-time augmentations' parameters: their names, defaults and checks, without torch.

The space language declares one trial parameter per augmentation (``augment_<name>``) from these fields,
so reading a space file (``ecgsearch validate``) needs no torch; ``ecgsearch.data.augment`` applies them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping, TypeVar

P = TypeVar("P", bound="AugmentationParams")


@dataclass(frozen=True)
class AugmentationParams:
    """Strengths of the train-time augmentations (0 switches one off) and the fraction ``p`` of records
    each enabled one is applied to (drawn independently per augmentation). ``ecgsearch.data.augment.Augmentation``
    adds applying them to a batch."""

    amplitude_scale: float = 0.0
    noise: float = 0.0
    baseline_wander: float = 0.0
    time_mask: float = 0.0
    lead_mask: float = 0.0
    time_warp: float = 0.0
    p: float = 0.5

    @classmethod
    def from_params(cls: type[P], params: Mapping[str, Any]) -> P:
        """Validate sampled hyperparameters; each error is one sentence naming the key and range."""
        allowed = [f.name for f in fields(cls)]
        values: dict[str, float] = {}
        for key, value in params.items():
            if key not in allowed:
                raise ValueError(f"augmentation.{key} is not an augmentation; "
                                 f"expected one of {', '.join(allowed)}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"augmentation.{key} must be a number in [0, 1], got {value!r}")
            values[key] = float(value)
        return cls(**values)

    @property
    def enabled(self) -> bool:
        """True when calling it can change a batch (some strength and ``p`` above zero)."""
        return self.p > 0 and any(getattr(self, f.name) > 0 for f in fields(self) if f.name != "p")
