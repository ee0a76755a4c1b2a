"""Search algorithms (Ray Tune searchers) over a parsed space."""

from ecgsearch.search.random import RandomSearcher
from ecgsearch.search.surrogate import SurrogateSearcher

__all__ = ["RandomSearcher", "SurrogateSearcher"]
