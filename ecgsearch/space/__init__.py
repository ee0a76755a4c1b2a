"""The space-file language: parse and validate a search definition, sample it, compile it to Ray Tune.

``load_space(path)`` / ``parse_space(text)`` return a ``SearchSpec``; its ``space`` is a ``Space`` that
samples candidates deterministically (``sample(seed, index)``), compiles to a Tune ``param_space``
(``to_tune()``) and turns flat configurations into factory kwargs (``resolve``). The reference is
docs/space-file.md. ``parse`` reads a file section by section (``sections``, ``params``, ``transfer``,
``search_options``, ``tracking``) into the records of ``spec``; ``model`` and ``distributions`` are the searchable
space. May import data (the augmentation names) and the contracts. Read ``parse.py`` first.
"""

from ecgsearch.errors import SpaceError
from ecgsearch.space.distributions import (
    DISTRIBUTIONS,
    Distribution,
    Fixed,
    make_distribution,
)
from ecgsearch.space.model import TRIAL_PARAMS, Param, Resolved, Space, TrialParam
from ecgsearch.space.params import CONDITIONAL_CHOICES
from ecgsearch.space.parse import TOP_LEVEL_KEYS, load_space, parse_space
from ecgsearch.space.spec import (
    BudgetSpec,
    ConstraintSpec,
    DataSpec,
    LatencySpec,
    ResourceSpec,
    SearchAlgSpec,
    SearchSpec,
    TaskSpec,
)

__all__ = [
    "BudgetSpec",
    "CONDITIONAL_CHOICES",
    "ConstraintSpec",
    "DISTRIBUTIONS",
    "DataSpec",
    "Distribution",
    "Fixed",
    "LatencySpec",
    "Param",
    "Resolved",
    "ResourceSpec",
    "SearchAlgSpec",
    "SearchSpec",
    "Space",
    "SpaceError",
    "TOP_LEVEL_KEYS",
    "TRIAL_PARAMS",
    "TaskSpec",
    "TrialParam",
    "load_space",
    "make_distribution",
    "parse_space",
]
