"""The Python API for notebooks and scripts: run a search, load a run, get its models back.

``Space.from_yaml(path)`` / ``Space.from_dict(d)`` and ``space.validate()``; ``run(space, out=...)``
returns a ``Run``, as does ``load_run(dir)``; a ``Run`` has ``results``, ``best``, ``pareto``, ``model``,
``predict``, ``report`` and ``scaling``. The CLI verbs ``run`` and ``validate`` are thin layers over it
(``prepare_search(...).run(display)``, ``Space.validate``). docs/python-api.md is the guide. May import
every stage below the CLI; the heavy ones (Ray, torch) only when a call needs them. Read ``runs.py`` first.
"""

from ecgsearch.api.runs import Run, Search, load_run, prepare_search, run
from ecgsearch.api.space import Space

__all__ = ["Run", "Search", "Space", "load_run", "prepare_search", "run"]
