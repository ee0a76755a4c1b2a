"""Dataset parameters every reader checks alike: integers, numbers, and the shares of the split.

A dataset's factory validates its keyword arguments before anything is read, each mistake one
``ValueError`` sentence naming the dataset and the parameter (the core turns it into a user error).
``SplitShares`` is the ``val_fraction`` / ``test_fraction`` / ``seed`` trio of a dataset that draws its
own split (synthetic, deepfake, code15), checked and fingerprinted in one place.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any


def is_int(value: Any) -> bool:
    """An integer that is not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite real number that is not a bool (YAML gives ``true`` where a user meant a flag)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check_int(owner: str, name: str, value: Any, low: int = 0, high: int | None = None, note: str = "") -> int:
    """An integer parameter of a dataset in ``[low, high]``, else one ValueError sentence naming it."""
    if is_int(value) and value >= low and (high is None or value <= high):
        return int(value)
    if high is not None:
        what = f"an integer between {low} and {high}"
    else:
        what = "a non-negative integer" if low == 0 else f"an integer of at least {low}"
    raise ValueError(f"{owner}: {name} must be {what}{note} (got {value!r}).")


def check_number(owner: str, name: str, value: Any, low: float, high: float, what: str = "a number",
                 note: str = "") -> float:
    """A number parameter of a dataset in ``[low, high]``, else one ValueError sentence naming it."""
    if is_number(value) and low <= value <= high:
        return float(value)
    raise ValueError(f"{owner}: {name} must be {what} between {low:g} and {high:g}{note} (got {value!r}).")


@dataclass(frozen=True)
class SplitShares:
    """The shares of records in the validation and test splits, and the seed that draws them."""

    val_fraction: float
    test_fraction: float
    seed: int

    @classmethod
    def checked(cls, owner: str, val_fraction: Any, test_fraction: Any, seed: Any, below: float = 1.0,
                total_below: float | None = None) -> SplitShares:
        """The shares, each in ``(0, below)`` and together below ``total_below``; else one ValueError."""
        check_int(owner, "seed", seed)
        for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not is_number(value) or not 0 < value < below:
                within = ("between 0 and 1, both excluded, so that every split has records" if below == 1.0
                          else f"above 0 and below {below:g}")
                raise ValueError(f"{owner}: {name} must be a number {within} (got {value!r}).")
        if total_below is not None and val_fraction + test_fraction >= total_below:
            raise ValueError(f"{owner}: val_fraction + test_fraction must stay below {total_below:g} so that "
                             f"training keeps records (got {val_fraction} + {test_fraction}).")
        return cls(float(val_fraction), float(test_fraction), int(seed))

    def fingerprint(self) -> dict[str, Any]:
        """The split's part of a source's fingerprint (a change of any share or of the seed is a new entry)."""
        return {"val_fraction": self.val_fraction, "test_fraction": self.test_fraction, "seed": self.seed}

    def counts(self, records: int) -> tuple[int, int]:
        """How many of ``records`` go to validation and to test: each share rounded, at least one."""
        return max(1, round(self.val_fraction * records)), max(1, round(self.test_fraction * records))
