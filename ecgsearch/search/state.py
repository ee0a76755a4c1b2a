"""Searcher state files: what Tune asks a searcher to write with the experiment and read on resume."""

from __future__ import annotations

import os
import pickle
import tempfile
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


def saved_bytes(searcher: Searcher) -> bytes:
    """What ``searcher.save`` writes, as bytes (a wrapping searcher keeps its inner searcher's state so)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "inner.pkl")
        searcher.save(path)
        with open(path, "rb") as f:
            return f.read()


def restore_bytes(searcher: Searcher, state: bytes) -> None:
    """``searcher.restore`` from the bytes ``saved_bytes`` returned."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "inner.pkl")
        with open(path, "wb") as f:
            f.write(state)
        searcher.restore(path)
