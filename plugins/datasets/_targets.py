"""The ``targets`` parameter of the interval datasets (``synthetic``, ``deepfake``): a kind of targets
(``intervals``: HR, PR, QRS and QT), or a list of those targets' names to keep only them, in that order
(``targets: [qrs_ms]``: a regression of the QRS duration alone, for a transfer's pretraining)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ecgsearch import ParamSpec, either, list_param, str_param


def targets_param(kinds: Sequence[str], names: Sequence[str], doc: str) -> ParamSpec:
    """One of ``kinds``, or a list of ``names`` (a subset of the interval targets)."""
    return either(str_param(*kinds), list_param("str", choices=tuple(names), max_len=len(names)),
                  doc=f"{doc}; or a list of {', '.join(f'`{n}`' for n in names)} to keep only those targets, "
                      "in that order (regression)")


def check_targets(dataset: str, value: Any, kinds: Sequence[str], names: Sequence[str]) -> str | list[str]:
    """``value`` when it is one of ``kinds`` or a non-empty list of distinct ``names``; else a one-sentence
    ``ValueError``."""
    if isinstance(value, str) and value in kinds:
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) and v in names for v in value) \
            and len(set(value)) == len(value):
        return list(value)
    raise ValueError(f"{dataset}: targets must be one of {', '.join(repr(k) for k in kinds)}, or a list of "
                     f"distinct names from {', '.join(names)} (got {value!r}).")


def chosen_columns(values: np.ndarray, names: Sequence[str], chosen: str | list[str]) -> tuple[np.ndarray, list[str]]:
    """The columns of ``values`` (one per name of ``names``) that ``chosen`` keeps: all for a kind, else
    the listed ones in the listed order."""
    if isinstance(chosen, str):
        return values, list(names)
    index = [list(names).index(name) for name in chosen]
    return np.ascontiguousarray(values[:, index]), list(chosen)


def named_targets(value: Any, kinds: Mapping[str, Sequence[str]], names: Sequence[str]) -> list[str] | None:
    """The target names a ``targets`` value gives, as ``build`` names them (``DatasetInfo.target_names``): a
    kind's names, or the listed ``names`` in the listed order; None for a value ``check_targets`` refuses."""
    if isinstance(value, str):
        return list(kinds[value]) if value in kinds else None
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) and v in names for v in value):
        return list(value)
    return None
