"""Search algorithms (Ray Tune searchers) over a parsed space."""

from ecgsearch.search.random import RandomSearcher

__all__ = ["RandomSearcher"]
