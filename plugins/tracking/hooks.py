"""The ``tracking`` plugin: creates the trackers a space file's ``tracking`` section turns on when the
search starts, and passes every lifecycle hook on to them.

A tracker that raises is logged once as a warning and dropped: the search, its results table and the other
trackers go on (a tracking server that goes away must not cost a search).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import ecgsearch
from ecgsearch import hookimpl

log = logging.getLogger(__name__)

_active: dict[str, Any] = {}  # tracker name -> the tracker of the search running in this driver


def _call(name: str, method: str, *args: Any) -> None:
    tracker = _active.get(name)
    step = getattr(tracker, method, None)
    if step is None:
        return
    try:
        step(*args)
    except Exception as error:  # a tracker never loses the search's results
        log.warning("tracker %s failed in %s (%s: %s); the search goes on without it",
                    name, method, type(error).__name__, error)
        _active.pop(name, None)


def _each(method: str, *args: Any) -> None:
    for name in list(_active):
        _call(name, method, *args)


def _start(name: str, settings: Mapping[str, Any], spec: Any, out_dir: Path) -> None:
    try:
        _active[name] = ecgsearch.get_registries().trackers.get(name).create(spec, out_dir, **settings)
    except Exception as error:
        log.warning("tracker %s could not start (%s: %s); the search goes on without it",
                    name, type(error).__name__, error)


@hookimpl
def ecgsearch_search_started(spec: Any, out_dir: Path) -> None:
    _active.clear()
    for name, settings in getattr(spec, "tracking", {}).items():
        _start(name, settings, spec, Path(out_dir))


@hookimpl
def ecgsearch_trial_started(trial_id: str, config: Mapping[str, Any]) -> None:
    _each("trial_started", trial_id, config)


@hookimpl
def ecgsearch_trial_result(trial_id: str, epoch: int, metrics: Mapping[str, float]) -> None:
    _each("trial_result", trial_id, epoch, metrics)


@hookimpl
def ecgsearch_trial_finished(trial_id: str, row: Mapping[str, Any]) -> None:
    _each("trial_finished", trial_id, row)


@hookimpl
def ecgsearch_search_finished(spec: Any, out_dir: Path, results: Any) -> None:
    _each("search_finished", results)
    _active.clear()
