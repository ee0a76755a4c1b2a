"""Data on a cluster: a node without the driver's cache entry builds it once and every trial reuses it."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from ecgsearch.engine.run import check_trial_fits
from ecgsearch.engine.worker import node_local_context
from ecgsearch.errors import UserError
from ecgsearch.space import parse_space
from ecgsearch.train.context import TrialContext, TrialRuntime

PARAMS = {"records": 24, "sampling_rate": 50, "seconds": 2, "leads": ["I", "II"], "seed": 3}


def test_a_node_without_the_entry_prepares_it_once(tmp_path, monkeypatch):
    monkeypatch.setenv("ECGSEARCH_CACHE", str(tmp_path / "node-cache"))
    context = TrialContext(cache_entry="/driver/only/cache/synthetic-0123", out_dir=str(tmp_path), epochs=1,
                           metric="macro_auroc", mode="max", task="multilabel", task_params={}, seed=0, space=None)
    runtime = TrialRuntime(dataset="synthetic", dataset_params=PARAMS)
    built: list[Path] = []
    from ecgsearch.data import cache

    original = cache._write_entry
    monkeypatch.setattr(cache, "_write_entry", lambda *a, **k: (built.append(a[0]), original(*a, **k))[1])
    results: list[str] = []

    def trial() -> None:
        results.append(node_local_context(context, runtime).cache_entry)

    trials = [threading.Thread(target=trial) for _ in range(3)]  # three trials start on the node at once
    for t in trials:
        t.start()
    for t in trials:
        t.join()
    assert len(set(results)) == 1 and Path(results[0]).parent == tmp_path / "node-cache"
    assert Path(results[0]).name.startswith("synthetic-") and len(built) == 1
    again = node_local_context(dataclasses.replace(context, cache_entry=results[0]), runtime)
    assert again.cache_entry == results[0] and len(built) == 1  # an existing entry is used as it is


def test_a_trial_larger_than_every_node_is_refused_locally(ray_session):
    spec = parse_space("""
data: {dataset: synthetic}
task: multilabel
budget: {trials: 1, epochs: 1}
resources: {cpu: 64, gpu: 0}
space: {architecture: resnet, optimizer: adamw}
""", source="big.yaml")
    with pytest.raises(UserError, match=r"^big.yaml: resources: one trial needs cpu 64 and gpu 0, but the largest "
                                        r"node has \d+ CPUs and 0 GPUs; lower resources.cpu/resources.gpu"):
        check_trial_fits(spec, cluster=False)
    check_trial_fits(spec, cluster=True)  # a cluster may grow: only a warning
    check_trial_fits(dataclasses.replace(spec, resources=dataclasses.replace(spec.resources, cpu=1)), cluster=False)
