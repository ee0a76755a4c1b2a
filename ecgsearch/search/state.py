"""Searcher state files: what Tune asks a searcher to write with the experiment and read on resume."""

from __future__ import annotations

import pickle
from typing import Any

from ray.tune.search import Searcher


class StatefulSearcher(Searcher):
    """A ``Searcher`` whose whole state is the plain dict of ``get_state``; ``save``/``restore`` keep it in
    Tune's experiment folder (written by this run only, as Tune's own experiment state is)."""

    def get_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def set_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))
