"""Search algorithms (Ray Tune searchers) over a parsed space, and the surrogate model they learn.

``random``, ``grid`` and ``surrogate`` are searchers, ``adapter`` makes any Ray Tune searcher one; the
searcher plugins create them from the ``SearchProblem`` (``problem``) that ``factory.make_searcher``
poses with the engine's ``candidates`` (feasible, costed configurations). The surrogate's inputs (``features``) and
model (``surrogate_model``), ``sampling`` (the space as a unit cube) and ``acquisition`` serve the
surrogate searcher and the analysis alike; ``warm_start`` reads earlier runs' trials for
``search.warm_start``; ``learning_curve`` extrapolates partial learning curves (the ``learning_curve``
scheduler's stopping rule). May import train (to cost candidates), the space language,
data and the contracts. Read ``factory.py`` first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecgsearch.lazy import lazy_names

# name -> the module that defines it, imported on first use (PEP 562): ``ecgsearch.search.candidates`` (the
# space-file check of ``ecgsearch validate``) must not import Ray Tune through this package
_LAZY: dict[str, str] = {
    "ConstrainedSearcher": "ecgsearch.search.adapter",
    **dict.fromkeys(("GridError", "GridSearcher"), "ecgsearch.search.grid"),
    **dict.fromkeys(("LearningCurveRule", "predict_final"), "ecgsearch.search.learning_curve"),
    **dict.fromkeys(("SchedulerRun", "SearchProblem"), "ecgsearch.search.problem"),
    "RandomSearcher": "ecgsearch.search.random",
    "SurrogateSearcher": "ecgsearch.search.surrogate",
    **dict.fromkeys(("WarmPoint", "WarmStart", "load_warm_start"), "ecgsearch.search.warm_start"),
}

__all__ = ["ConstrainedSearcher", "GridError", "GridSearcher", "LearningCurveRule", "RandomSearcher", "SchedulerRun",
           "SearchProblem", "SurrogateSearcher", "WarmPoint", "WarmStart", "load_warm_start", "predict_final"]


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())


if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from ecgsearch.search.adapter import ConstrainedSearcher
    from ecgsearch.search.grid import GridError, GridSearcher
    from ecgsearch.search.learning_curve import LearningCurveRule, predict_final
    from ecgsearch.search.problem import SchedulerRun, SearchProblem
    from ecgsearch.search.random import RandomSearcher
    from ecgsearch.search.surrogate import SurrogateSearcher
    from ecgsearch.search.warm_start import WarmPoint, WarmStart, load_warm_start
