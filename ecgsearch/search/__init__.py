"""Search algorithms (Ray Tune searchers) over a parsed space, and the surrogate model they learn.

``random`` and ``surrogate`` are the searchers; ``factory.make_searcher`` picks one for a space file and
wires it to ``candidates`` (feasible, costed configurations). The surrogate's inputs (``features``) and
model (``surrogate_model``), ``sampling`` (the space as a unit cube) and ``acquisition`` serve the
surrogate searcher and the analysis alike. May import train (to cost candidates), the space language,
data and the contracts. Read ``factory.py`` first.
"""

from ecgsearch.search.random import RandomSearcher
from ecgsearch.search.surrogate import SurrogateSearcher

__all__ = ["RandomSearcher", "SurrogateSearcher"]
